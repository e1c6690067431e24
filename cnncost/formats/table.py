"""Table output for terminals: a header line, the layers, then the totals.

Numbers are never cropped: the table is laid out at the width its widest cells need,
at least the terminal's (a narrow terminal wraps long lines instead of cutting digits).
Up to PLAIN_ABOVE rows it is drawn with rich; beyond that rich's layout (about 1.5 ms a
row) would take seconds, so the same columns are aligned as plain text.
"""

from __future__ import annotations

import io
from typing import Any

from .common import (COLUMNS, note_lines, GEOMETRY_HEADERS, HEADERS, aligned, caption, cell, geometry_cells,
                     header_line, total_lines)

PLAIN_ABOVE = 1000  # rows


def render(analysis: Any, depth: int = 0, color: bool = False, width: int | None = None,
           **_: Any) -> str:
    rows = analysis.collapse(depth)
    extra = geometry_cells(analysis, rows, depth)
    cells = [[cell(r, c) for c in COLUMNS] + more for r, more in zip(rows, extra, strict=True)]
    headers = [HEADERS[c] for c in COLUMNS] + (list(GEOMETRY_HEADERS) if analysis.geometry
                                               else [])
    if len(rows) > PLAIN_ABOVE:
        return plain(analysis, cells, headers)
    from rich.console import Console
    from rich.table import Table

    widths = [max([len(h)] + [len(line[i]) for line in cells]) for i, h in enumerate(headers)]
    needed = sum(widths) + 3 * len(headers) + 1  # cell padding and borders
    table = Table(caption=caption(analysis) or None, caption_justify="left")
    for i, (header, w) in enumerate(zip(headers, widths, strict=True)):
        table.add_column(header, justify="left" if i < 2 else "right", no_wrap=True,
                         min_width=w)
    for line in cells:
        table.add_row(*line)
    totals = Table(show_header=False, box=None, pad_edge=False)
    totals.add_column(style="bold", no_wrap=True)
    totals.add_column(justify="right", no_wrap=True)
    for label, value in total_lines(analysis):
        totals.add_row(label, value)
    out = io.StringIO()
    console = Console(file=out, force_terminal=color, no_color=not color,
                      width=max(width or 0, needed), highlight=False, soft_wrap=True)
    console.print(header_line(analysis))
    console.print(table)
    console.print(totals)
    for note in note_lines(analysis):
        console.print(note)
    return out.getvalue()


def plain(analysis: Any, cells: list, headers: list[str]) -> str:
    """The same table as aligned plain text, for very long tables."""
    out = [header_line(analysis),
           f"({len(cells):,} rows, shown as plain text; --depth N collapses them)",
           *aligned(headers, cells, [i < 2 for i in range(len(headers))])]
    if caption(analysis):
        out.append(caption(analysis))
    label_width = max(len(label) for label, _ in total_lines(analysis))
    out += [f"{label:<{label_width}}  {value}" for label, value in total_lines(analysis)]
    out += note_lines(analysis)
    return "\n".join(out) + "\n"
