"""Markdown output: a GitHub-flavoured table of layers and a totals table."""

from __future__ import annotations

from typing import Any

from .common import COLUMNS, HEADERS, caption, cell, header_line, total_lines


def render(analysis: Any, depth: int = 0, **_: Any) -> str:
    lines = [f"### {analysis.name}", "", header_line(analysis), ""]
    if caption(analysis):
        lines[2:2] = [caption(analysis), ""]
    lines.append("| " + " | ".join(HEADERS[c] for c in COLUMNS) + " |")
    lines.append("|" + "|".join("---:" if c not in ("name", "op") else "---" for c in COLUMNS) + "|")
    for row in analysis.collapse(depth):
        lines.append("| " + " | ".join(cell(row, c).replace("|", "\\|") for c in COLUMNS) + " |")
    lines += ["", "| total | value |", "|---|---:|"]
    lines += [f"| {label} | {value} |" for label, value in total_lines(analysis)]
    return "\n".join(lines) + "\n"
