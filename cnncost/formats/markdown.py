"""Markdown output: a GitHub-flavoured table of layers and a totals table."""

from __future__ import annotations

from typing import Any

from .common import (COLUMNS, note_lines, GEOMETRY_HEADERS, HEADERS, caption, cell, geometry_cells,
                     header_line, total_lines)


def render(analysis: Any, depth: int = 0, **_: Any) -> str:
    lines = [f"### {analysis.name}", "", header_line(analysis), ""]
    if caption(analysis):
        lines[2:2] = [caption(analysis), ""]
    headers = [HEADERS[c] for c in COLUMNS] + (list(GEOMETRY_HEADERS) if analysis.geometry
                                               else [])
    lines.append("| " + " | ".join(headers) + " |")
    lines.append("|" + "|".join("---" if i < 2 else "---:" for i in range(len(headers))) + "|")
    rows = analysis.collapse(depth)
    for row, more in zip(rows, geometry_cells(analysis, rows, depth), strict=True):
        texts = [cell(row, c) for c in COLUMNS] + more
        lines.append("| " + " | ".join(t.replace("|", "\\|") for t in texts) + " |")
    lines += ["", "| total | value |", "|---|---:|"]
    lines += [f"| {label} | {value} |" for label, value in total_lines(analysis)]
    lines += ["", *note_lines(analysis)] if note_lines(analysis) else []
    return "\n".join(lines) + "\n"
