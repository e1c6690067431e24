"""Output of `cnncost verify`: a per-layer table of analytic vs PyTorch, totals, latency.

:func:`render_table` (rich up to PLAIN_ABOVE rows, aligned plain text beyond) and
:func:`render_json` (exact integers, one document), registered in cnncost.formats. Where PyTorch agrees a cell
shows the value once; where it does not, ``analytic != pytorch``.
"""

from __future__ import annotations

import io
import json
from typing import Any

from ..cost.ops import fmt_shape
from ..errors import count
from .common import aligned, binary
from .table import PLAIN_ABOVE

HEADERS = ("layer", "op", "output", "params", "buffers", "MACs", "check")
QUANTITIES = {"shape": "output shape", "params": "params", "buffers": "buffers", "macs": "MACs",
              "receptive_field": "receptive field"}


def _extent(e: Any) -> str:
    """Rows r0-r1, columns c0-c1 of the input: one measured or analytic field."""
    return "none" if e[0] < 0 else f"{e[0]}-{e[1]} x {e[2]}-{e[3]}"


def _value(key: str, value: Any) -> str:
    if key == "shape":
        return "(not run)" if value is None else fmt_shape(value)
    if key == "receptive_field":  # at the last map's centre and first position
        return ", ".join(_extent(e) for e in value)
    return f"{value:,}" if value else "-"


def _cell(key: str, analytic: Any, measured: Any) -> str:
    if analytic == measured:
        return _value(key, analytic)
    return f"{_value(key, analytic)} != {_value(key, measured)}"


def layer_cells(v: Any, only_mismatches: bool = False) -> list[list[str]]:
    out = []
    for c in v.layers:
        if only_mismatches and c.ok:
            continue
        out.append([c.name, c.op, *(_cell(k, c.analytic[k], c.measured[k]) for k in
                                    ("shape", "params", "buffers", "macs")),
                    "ok" if c.ok else "MISMATCH"])
    return out


def header(v: Any) -> str:
    a, env = v.analysis, v.env
    name = f"{a.name} (variant {a.variant})" if a.variant else a.name
    where = env["device"] if env["device"] == "meta" else f"{env['device']} ({env['device_name']})"
    parts = [name, f"input {fmt_shape(a.input_shape)}", f"batch {a.batch}", a.dtype,
             f"torch {env['torch']} on {where}"]
    if a.vars:
        parts.append(", ".join(f"{k}={val}" for k, val in a.vars.items()))
    return " | ".join(parts)


def summary_lines(v: Any) -> list[str]:
    """Totals (analytic vs PyTorch), the verdict, and the latency."""
    width = len("memory estimate")
    counts = {k: am for k, am in v.totals.items() if k != "receptive_field"}
    cells = {k: (_value(k, a), _value(k, m)) for k, (a, m) in counts.items()}
    num = max(len(text) for pair in cells.values() for text in pair)
    lines = [f"{'':<{width}}  {'analytic':>{num}}  {'PyTorch':>{num}}"]
    for key, (a, m) in counts.items():
        lines.append(f"{QUANTITIES[key]:<{width}}  {cells[key][0]:>{num}}  "
                     f"{cells[key][1]:>{num}}  {'ok' if a == m else 'MISMATCH'}")
    if "receptive_field" in v.totals:  # extents at the last map's centre and first position
        a, m = v.totals["receptive_field"]
        verdict = "ok (gradients)" if a == m else f"MISMATCH: PyTorch {_value('receptive_field', m)}"
        lines.append(f"{QUANTITIES['receptive_field']:<{width}}  "
                     f"{_value('receptive_field', a)} px  {verdict}")
    lines.append(f"{'memory estimate':<{width}}  {binary(v.memory_estimate):>{num}}  "
                 "(weights + buffers + peak activations)")
    bad = v.mismatched_layers()
    if v.ok:
        field = ("; the receptive field by gradients" if "receptive_field" in v.totals
                 else "")
        lines.append(f"verified: {'all ' if len(v.layers) != 1 else ''}"
                     f"{count(len(v.layers), 'layer')} "
                     f"{'agree' if len(v.layers) != 1 else 'agrees'} exactly with PyTorch "
                     f"(output shapes, params, buffers, MACs{field})")
    else:
        first = v.first_mismatch()
        assert first is not None  # noqa: S101 - not ok implies a mismatch
        layer, key, a, m = first
        lines.append(f"MISMATCH: {len(bad)} of {count(len(v.layers), 'layer')} "
                     f"{'differ' if len(bad) != 1 else 'differs'}; first: {layer}: "
                     f"{QUANTITIES[key]} analytic {_value(key, a)}, PyTorch {_value(key, m)}")
    lat = v.latency
    if lat is not None:
        env = lat.env
        lines.append(
            f"forward latency: median {lat.median_ms:.2f} ms (p10 {lat.p10_ms:.2f}, p90 "
            f"{lat.p90_ms:.2f}, IQR {lat.iqr_ms:.2f}; {lat.samples} runs; first call "
            f"{lat.first_ms:.1f} ms), {lat.images_per_s:,.1f} images/s on {env['device']} "
            f"({env['device_name']}), {env['dtype']}, batch {env['batch']}, "
            f"{count(env['threads'], 'thread')}")
    elif v.env["device"] == "meta":
        lines.append("forward latency: not measured on the meta device")
    lines += [f"note: {note}" for note in v.notes]
    return lines


def render_json(v: Any, **_: Any) -> str:
    return json.dumps(v.to_dict(), indent=2) + "\n"


def render_table(v: Any, color: bool = False, width: int | None = None,
                 only_mismatches: bool = False) -> str:
    cells = layer_cells(v, only_mismatches)
    if len(cells) > PLAIN_ABOVE:
        plain = aligned(list(HEADERS), cells, [i < 2 for i in range(len(HEADERS))])
        return "\n".join([header(v), *plain, *summary_lines(v)]) + "\n"
    from rich.console import Console
    from rich.table import Table

    widths = [max([len(h)] + [len(line[i]) for line in cells]) for i, h in enumerate(HEADERS)]
    table = Table()
    for i, name in enumerate(HEADERS):
        table.add_column(name, justify="left" if i < 2 else "right", no_wrap=True,
                         min_width=widths[i])
    for line in cells:
        style = None if line[-1] == "ok" else "bold red"
        table.add_row(*line, style=style)
    out = io.StringIO()
    console = Console(file=out, force_terminal=color, no_color=not color, highlight=False,
                      markup=False,
                      width=max(width or 0, sum(widths) + 3 * len(HEADERS) + 1), soft_wrap=True)
    console.print(header(v))
    if cells:
        console.print(table)
    for summary in summary_lines(v):
        console.print(summary, style="bold red" if summary.startswith("MISMATCH") else None)
    return out.getvalue()

