"""Table output for terminals: layers, then the totals.

Up to PLAIN_ABOVE rows the table is drawn with rich; beyond that rich's layout (about
1.5 ms a row) would take seconds, so the same columns are aligned as plain text.
"""

from __future__ import annotations

import io
from typing import Any

from .common import COLUMNS, HEADERS, cell, header_line, total_lines

PLAIN_ABOVE = 1000  # rows


def render(analysis: Any, depth: int = 0, color: bool = False, width: int | None = None,
           **_: Any) -> str:
    rows = analysis.collapse(depth)
    if len(rows) > PLAIN_ABOVE:
        return plain(analysis, rows)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=header_line(analysis), title_justify="left", show_lines=False,
                  caption=analysis.description or None, caption_justify="left")
    for column in COLUMNS:
        table.add_column(HEADERS[column], justify="left" if column in ("name", "op") else "right",
                         no_wrap=column != "name", overflow="fold")
    for row in rows:
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


def plain(analysis: Any, rows: list) -> str:
    """The same table as aligned plain text, for very long tables."""
    cells = [[HEADERS[c] for c in COLUMNS]] + [[cell(r, c) for c in COLUMNS] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    left = [c in ("name", "op") for c in COLUMNS]

    def fmt(line: list[str]) -> str:
        return "  ".join(text.ljust(w) if lj else text.rjust(w)
                         for text, w, lj in zip(line, widths, left, strict=True)).rstrip()

    out = [header_line(analysis),
           f"({len(rows):,} rows, shown as plain text; --depth N collapses them)",
           fmt(cells[0]), "  ".join("-" * w for w in widths)]
    out += [fmt(line) for line in cells[1:]]
    if analysis.description:
        out.append(analysis.description)
    label_width = max(len(label) for label, _ in total_lines(analysis))
    out += [f"{label:<{label_width}}  {value}" for label, value in total_lines(analysis)]
    return "\n".join(out) + "\n"
