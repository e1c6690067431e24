"""Output of `cnncost compare`: one row per model in table, CSV, JSON or markdown.

One function per format, of (Comparison, columns), registered in cnncost.formats. JSON and CSV carry
exact integers (ratios as floats) and parse back to the library's numbers; table and
markdown show readable sizes (bytes with binary prefixes, ratios as 0.27x).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from .common import aligned, binary, grouped

BYTES = ("weight_bytes", "peak_activation_bytes")


def header(comparison: Any) -> str:
    """'compare | batch 1 | fp32 | convention torchvision | baseline resnet50 | ...'."""
    s = comparison.settings
    n = len(comparison.rows)
    parts = ["compare", f"{n} model{'s' if n != 1 else ''}"]
    if s.get("input"):
        parts.append(f"input {s['input']}")
    parts += [f"batch {s.get('batch', 1)}", s.get("dtype", "fp32"),
              f"convention {s.get('convention', 'torchvision')}"]
    if s.get("variant"):
        parts.append(f"variant {s['variant']}")
    if s.get("set"):
        parts.append(", ".join(f"{k}={v}" for k, v in s["set"].items()))
    if comparison.baseline:
        parts.append(f"ratios vs {comparison.baseline}")
    line = " | ".join(parts)
    env = comparison.env
    if env is not None:
        measured = ", ".join(f"{k} {v}" for k, v in env.items() if v not in (None, ""))
        line += f"\nmeasured: {measured}"
    return line


def title(column: str) -> str:
    from ..comparison.compare import COLUMNS

    return COLUMNS[column][0] if column in COLUMNS else column


def text_cell(row: dict, column: str) -> str:
    value = row.get(column)
    if value is None:
        return "-"
    if column.endswith("_ratio"):
        return f"{value:.3f}x"
    if column in BYTES:
        return binary(value)
    if column in ("latency_ms", "latency_p10_ms", "latency_p90_ms"):
        return f"{value:.3f}"
    if column == "images_per_s":
        return f"{value:,.1f}"
    if column == "quality":
        return row.get("quality_text") or value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return grouped(value)
    return str(value)


def footer(comparison: Any) -> list[str]:
    """Warnings for measured rows that cannot be trusted, then the measurement's notes:
    the lines `cnncost bench` prints under its table."""
    from ..quality import UNRELIABLE_WARNING

    lines = [f"warning: {row['model']}: {UNRELIABLE_WARNING}" for row in comparison.rows
             if row.get("quality") == "unreliable"]
    return lines + [f"note: {note}" for note in comparison.notes]


def _left(column: str, comparison: Any) -> bool:
    return column == "model" or column == "quality" or (column in comparison.sweep and any(
        isinstance(r.get(column), str) for r in comparison.rows))


def table(comparison: Any, columns: list[str], color: bool = False, width: int = 0) -> str:
    from rich.console import Console
    from rich.table import Table

    cells = [[text_cell(r, c) for c in columns] for r in comparison.rows]
    widths = [max([len(title(c))] + [len(line[i]) for line in cells]) for i, c in enumerate(columns)]
    needed = sum(widths) + 3 * len(columns) + 1
    if len(cells) > 1000:  # rich lays out ~1.5 ms a row: plain text beyond
        return plain(comparison, columns, cells)
    grid = Table()
    for column, w in zip(columns, widths, strict=True):
        grid.add_column(title(column), justify="left" if _left(column, comparison) else "right",
                        no_wrap=True, min_width=w)
    for row, line in zip(comparison.rows, cells, strict=True):
        grid.add_row(*line, style="bold red" if row.get("quality") == "unreliable" else None)
    out = io.StringIO()
    console = Console(file=out, force_terminal=color, no_color=not color,
                      width=max(width, needed), highlight=False, soft_wrap=True,
                      markup=False)  # labels are data, never rich markup
    console.print(header(comparison))
    console.print(grid)
    for note in footer(comparison):
        console.print(note, style="yellow" if note.startswith("warning") else None)
    return out.getvalue()


def plain(comparison: Any, columns: list[str], cells: list) -> str:
    table = aligned([title(c) for c in columns], cells, [_left(c, comparison) for c in columns])
    return "\n".join([header(comparison), *table, *footer(comparison)]) + "\n"


def markdown(comparison: Any, columns: list[str], **_: Any) -> str:
    lines = [header(comparison).replace("\n", "  \n"), ""]
    lines.append("| " + " | ".join(title(c) for c in columns) + " |")
    lines.append("|" + "|".join("---" if _left(c, comparison) else "---:" for c in columns) + "|")
    for row in comparison.rows:
        lines.append("| " + " | ".join(text_cell(row, c).replace("|", "\\|") for c in columns)
                     + " |")
    extra = footer(comparison)
    return "\n".join(lines + ([""] + extra if extra else [])) + "\n"


def as_csv(comparison: Any, columns: list[str], **_: Any) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in comparison.rows:
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    return out.getvalue()


def as_json(comparison: Any, columns: list[str], **_: Any) -> str:
    data = {
        "settings": comparison.settings,
        "baseline": comparison.baseline,
        "sweep": list(comparison.sweep),
        "measured": comparison.env,
        "notes": list(comparison.notes),
        "columns": columns,
        "rows": [{c: row.get(c) for c in columns} for row in comparison.rows],
        "failures": [{"model": o.point.label, "errors": [str(p) for p in o.problems]}
                     for o in comparison.failures],
    }
    return json.dumps(data, indent=2, default=str) + "\n"

