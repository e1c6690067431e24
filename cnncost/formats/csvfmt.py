"""CSV output: one row per layer with exact numbers; no totals row (sum the columns)."""

from __future__ import annotations

import csv
import io
from typing import Any

FIELDS = ("name", "op", "shape", "params", "buffers", "macs", "flops", "other_ops", "act_bytes",
          "weight_bytes", "weights", "keras_nontrainable", "layers")


def render(analysis: Any, depth: int = 0, **_: Any) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIELDS)
    for row in analysis.collapse(depth):
        writer.writerow([("x".join(map(str, row.shape)) if f == "shape" else getattr(row, f))
                         for f in FIELDS])
    return out.getvalue()
