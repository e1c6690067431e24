"""Rich table output for terminals: layers, then a totals panel."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console
from rich.table import Table

from .common import COLUMNS, HEADERS, cell, header_line, total_lines


def render(analysis: Any, depth: int = 0, color: bool = False, width: int | None = None,
           **_: Any) -> str:
    table = Table(title=header_line(analysis), title_justify="left", show_lines=False,
                  caption=analysis.description or None, caption_justify="left")
    for column in COLUMNS:
        table.add_column(HEADERS[column], justify="left" if column in ("name", "op") else "right",
                         no_wrap=column != "name", overflow="fold")
    for row in analysis.collapse(depth):
        table.add_row(*(cell(row, c) for c in COLUMNS))
    totals = Table(show_header=False, box=None, pad_edge=False)
    totals.add_column(style="bold")
    totals.add_column(justify="right")
    for label, value in total_lines(analysis):
        totals.add_row(label, value)
    out = io.StringIO()
    console = Console(file=out, force_terminal=color, no_color=not color,
                      width=width or 120, highlight=False)
    console.print(table)
    console.print(totals)
    return out.getvalue()
