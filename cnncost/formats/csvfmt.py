"""CSV output: one row per layer with exact numbers; no totals row (sum the columns)."""

from __future__ import annotations

import csv
import io
from typing import Any

FIELDS = ("name", "op", "shape", "params", "buffers", "macs", "flops", "other_ops", "act_bytes",
          "weight_bytes", "weights", "keras_nontrainable", "layers")


GEOMETRY_FIELDS = ("field_h", "field_w", "stride_h", "stride_w", "start_h", "start_w")


def render(analysis: Any, depth: int = 0, **_: Any) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIELDS + (GEOMETRY_FIELDS if analysis.geometry else ()))
    geo = analysis.geometry_of(depth) if analysis.geometry else {}
    for row in analysis.collapse(depth):
        values = [("x".join(map(str, row.shape)) if f == "shape" else getattr(row, f))
                  for f in FIELDS]
        if analysis.geometry:
            g = geo.get(row.name)
            d = g.to_dict() if g is not None else None
            values += ([*d["receptive_field"], *d["effective_stride"], *d["field_start"]]
                       if d is not None else [""] * len(GEOMETRY_FIELDS))
        writer.writerow(values)
    return out.getvalue()
