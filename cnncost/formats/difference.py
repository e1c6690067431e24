"""Output of `cnncost diff`: changed layers and the change of the totals, in four formats.

JSON and CSV carry exact integers (B minus A); table and markdown show signed,
grouped numbers and readable byte sizes.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from ..cost.ops import fmt_shape
from .common import binary

MARK = {"added": "+", "removed": "-", "changed": "~"}
TOTAL_LABELS = {"params": "params", "macs": "MACs", "flops": "FLOPs",
                "weight_bytes": "weight memory", "activation_bytes": "activation memory (all)",
                "peak_activation_bytes": "peak live activations"}


def signed(n: int) -> str:
    return f"{n:+,}" if n else "0"


def signed_bytes(n: int) -> str:
    return ("+" if n > 0 else "-" if n < 0 else "") + binary(abs(n)) if n else "0"


def _pair(a: Any, b: Any) -> str:
    return str(b if a is None else a if b is None or a == b else f"{a} -> {b}")


def _shown_file(file: str) -> str:
    """A spec file as a reader would type it: relative to the working folder when inside
    it, else `bundled:NAME` for a bundled spec, else as given."""
    import os
    from pathlib import Path

    from ..api import bundled_specs

    path = Path(file)
    try:
        relative = os.path.relpath(path.resolve())
        if not relative.startswith(".."):
            return relative
        bundled = {p.resolve(): n for n, p in bundled_specs().items()}
        return f"bundled:{bundled[path.resolve()]}" if path.resolve() in bundled else file
    except (OSError, ValueError):
        return file


def header(d: Any) -> str:
    def side(x: Any, other: Any) -> str:
        extra = [f"variant {x.variant}"] if x.variant and x.variant != other.variant else []
        extra += [f"{k}={v}" for k, v in x.vars.items() if other.vars.get(k, v) != v]
        inside = "; ".join(([_shown_file(x.file)] if x.file else []) + extra)
        return f"{x.name} ({inside})" if inside else x.name

    return (f"diff {side(d.a, d.b)} -> {side(d.b, d.a)} | {d.count('added')} added, "
            f"{d.count('removed')} removed, {d.count('changed')} changed, "
            f"{d.unchanged} unchanged")


def _cells(c: Any) -> list[str]:
    shape = _pair(fmt_shape(c.a.shape) if c.a else None, fmt_shape(c.b.shape) if c.b else None)
    return [MARK[c.kind], c.name, _pair(c.a.op if c.a else None, c.b.op if c.b else None), shape,
            signed(c.params), signed(c.macs), signed_bytes(c.act_bytes)]


HEAD = ["", "layer", "op", "output", "params", "MACs", "activations"]


def _total_rows(d: Any) -> list[list[str]]:
    rows = []
    for key, (a, b, delta) in d.totals().items():
        fmt = binary if key.endswith("bytes") else (lambda n: f"{n:,}")
        change = signed_bytes(delta) if key.endswith("bytes") else signed(delta)
        rows.append([TOTAL_LABELS[key], fmt(a), fmt(b), change])
    return rows


def table(d: Any, color: bool = False, width: int = 0) -> str:
    from rich.console import Console
    from rich.table import Table

    out = io.StringIO()
    console = Console(file=out, force_terminal=color, no_color=not color,
                      width=max(width, 200), highlight=False, soft_wrap=True,
                      markup=False)  # layer names are data, never rich markup
    console.print(header(d))
    if d.changes:
        grid = Table()
        for i, h in enumerate(HEAD):
            grid.add_column(h, justify="right" if i >= 4 else "left", no_wrap=True)
        for c in d.changes:
            grid.add_row(*_cells(c))
        console.print(grid)
    totals = Table(box=None, pad_edge=False)
    for i, h in enumerate(["total", "A", "B", "B - A"]):
        totals.add_column(h, justify="left" if i == 0 else "right", no_wrap=True)
    for line in _total_rows(d):
        totals.add_row(*line)
    console.print(totals)
    for note in d.notes():
        console.print(f"note: {note}")
    return out.getvalue()


def markdown(d: Any, **_: Any) -> str:
    lines = [header(d), ""]
    if d.changes:
        lines += ["| " + " | ".join(HEAD) + " |", "|---|---|---|---:|---:|---:|---:|"]
        lines += ["| " + " | ".join(x.replace("|", "\\|") for x in _cells(c)) + " |"
                  for c in d.changes]
        lines.append("")
    lines += ["| total | A | B | B - A |", "|---|---:|---:|---:|"]
    lines += ["| " + " | ".join(line) + " |" for line in _total_rows(d)]
    lines += [f"\nnote: {note}" for note in d.notes()]
    return "\n".join(lines) + "\n"


CSV_FIELDS = ("kind", "name", "op_a", "op_b", "shape_a", "shape_b", "params", "macs",
              "act_bytes")


def as_csv(d: Any, **_: Any) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for c in d.changes:
        writer.writerow([c.kind, c.name, c.a.op if c.a else "", c.b.op if c.b else "",
                         fmt_shape(c.a.shape) if c.a else "", fmt_shape(c.b.shape) if c.b else "",
                         c.params, c.macs, c.act_bytes])
    return out.getvalue()


def as_json(d: Any, **_: Any) -> str:
    return json.dumps(d.to_dict(), indent=2) + "\n"

