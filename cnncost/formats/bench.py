"""Output of `cnncost bench`: latency per batch size and, with --per-layer, the roofline.

One function per format, registered in cnncost.formats: table (rich, or aligned plain
text past PLAIN_ABOVE rows), markdown, csv and json. Table and Markdown show the same
tables: one row per batch size, then per batch one row per layer (the `top` slowest
if asked). CSV gives the batch rows, or the layer rows (with the batch and its
end-to-end median in the first columns) under --per-layer. JSON is the whole
:meth:`BenchResult.to_dict` document.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from ..cost.ops import fmt_shape
from ..errors import count
from ..quality import UNRELIABLE_WARNING
from .common import aligned, binary, si
from .table import PLAIN_ABOVE

BATCH_HEADERS = ("batch", "median ms", "p10 ms", "p90 ms", "IQR ms", "runs", "first ms",
                 "images/s", "FLOP/s", "of peak", "quality", "cross-check")
LAYER_HEADERS = ("layer", "op", "MACs", "bytes", "FLOP/B", "time ms", "share", "bound ms",
                 "bound", "efficiency")
TEXT_COLUMNS = {"layer", "op", "bound", "quality", "cross-check"}


# ----------------------------------------------------------------- cells
def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _quality(r: Any) -> str:
    from ..quality import quality_text

    return quality_text(r.latency, r.quality)


def _check(r: Any) -> str:
    c = r.cross_check
    if c is None:
        return "-"
    verdict = "agrees" if c.agrees else "DISAGREES"
    return f"{c.median_ms:.2f} ms ({100 * c.difference:+.1f}%) {verdict}"


def batch_cells(result: Any) -> list[list[str]]:
    out = []
    for r in result.results:
        lat = r.latency
        out.append([str(r.batch), f"{lat.median_ms:.2f}", f"{lat.p10_ms:.2f}", f"{lat.p90_ms:.2f}",
                    f"{lat.iqr_ms:.2f}", str(lat.samples), f"{lat.first_ms:.1f}",
                    f"{lat.images_per_s:,.1f}", si(r.tflops * 1e12), _pct(r.peak_share),
                    _quality(r), _check(r)])
    return out


def _num(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def layer_rows(per_layer: Any, top: int | None) -> list:
    layers = list(per_layer.layers)
    if top:
        layers = sorted(layers, key=lambda layer: -layer.time_ms)[:top]
    return layers


def layer_cells(per_layer: Any, top: int | None = None) -> list[list[str]]:
    return [[layer.name, layer.op, si(layer.macs) if layer.macs else "-",
             binary(layer.bytes) if layer.bytes else "-",
             "-" if layer.intensity is None else f"{layer.intensity:.2f}",
             f"{layer.time_ms:.3f}", _pct(layer.share), _num(layer.bound_ms),
             layer.bound or "-", _pct(layer.efficiency)]
            for layer in layer_rows(per_layer, top)]


# ----------------------------------------------------------------- prose lines
def header(result: Any) -> str:
    spec, env, s = result.spec, result.env, result.settings
    name = f"{spec['name']} (variant {spec['variant']})" if spec["variant"] else spec["name"]
    flags = [s.dtype]
    if s.channels_last:
        flags.append("channels-last")
    if s.compile:
        flags.append("torch.compile")
    where = f"{env['device']} ({env['device_name']})"
    if env["device"] == "cpu":
        where += f", {env['threads']} thread{'s' if env['threads'] != 1 else ''}"
    versions = f"torch {env['torch']}"
    if env.get("cuda"):
        versions += f", CUDA {env['cuda']}, cuDNN {env['cudnn']}"
    parts = [name, f"input {fmt_shape(spec['input_shape'])}", ", ".join(flags), where, versions]
    return " | ".join(parts)


def peaks_line(result: Any) -> str:
    p = result.peaks
    if p is None:
        return ("peaks: unknown (--peaks none, or the device is not in the datasheet table): "
                "no share of peak and no roofline verdicts; see cnncost peaks")
    return (f"peaks: {si(p.flops_per_s, 'FLOP/s')}, {si(p.bandwidth_bytes_per_s, 'B/s')}, "
            f"ridge {p.ridge:.1f} FLOP/B ({p.source}: {p.reference})")


def per_layer_caption(r: Any, top: int | None) -> str:
    pl = r.per_layer
    shown = f"the {top} slowest of {count(len(pl.layers), 'layer')}" \
        if top and top < len(pl.layers) else count(len(pl.layers), "layer")
    return (f"per layer, batch {r.batch}: {shown}; {pl.mode} model, median of {pl.runs} runs; "
            f"layers sum to {pl.total_ms:.2f} ms of {pl.end_to_end_ms:.2f} ms hooked end to end; "
            f"a trivial layer takes {pl.overhead_ms:.3f} ms")


def bound_summary(r: Any) -> str | None:
    """'compute-bound 52 layers (61% of time), memory-bound ...' for one batch."""
    pl = r.per_layer
    counts: dict[str, list] = {}
    for layer in pl.layers:
        if layer.bound is not None:
            counts.setdefault(layer.bound, []).append(layer)
    if not counts:
        return None
    parts = [f"{bound}-bound {count(len(layers), 'layer')} ({_pct(sum(x.share for x in layers))} of time)"
             for bound, layers in sorted(counts.items(), key=lambda kv: -sum(
                 x.share for x in kv[1]))]
    return f"roofline, batch {r.batch}: " + ", ".join(parts)


def footer(result: Any) -> list[str]:
    lines = []
    for r in result.results:
        if r.cross_check is not None and not r.cross_check.agrees:
            lines.append(f"warning: batch {r.batch}: the independent measurement differs by "
                         f"{100 * r.cross_check.difference:+.1f}% (more than "
                         f"{100 * r.cross_check.tolerance:.0f}%): the timing is not stable here")
        if r.quality == "unreliable":
            lines.append(f"warning: batch {r.batch}: {UNRELIABLE_WARNING}")
    return lines + [f"note: {note}" for note in result.notes]


# ----------------------------------------------------------------- formats
def _blocks(result: Any, top: int | None) -> list[tuple[str | None, tuple, list]]:
    """(caption, headers, cells) of every table, in order."""
    blocks: list[tuple[str | None, tuple[str, ...], list[list[str]]]] = [
        (None, BATCH_HEADERS, batch_cells(result))]
    for r in result.results:
        if r.per_layer is not None:
            blocks.append((per_layer_caption(r, top), LAYER_HEADERS, layer_cells(r.per_layer, top)))
    return blocks


def _summaries(result: Any) -> list[str]:
    return [line for r in result.results if r.per_layer is not None
            for line in [bound_summary(r)] if line]


def render_table(result: Any, top: int | None = None, color: bool = False,
                 width: int | None = None) -> str:
    blocks = _blocks(result, top)
    lines = [header(result), peaks_line(result)]
    if max(len(cells) for _, _, cells in blocks) > PLAIN_ABOVE:
        for caption, headers, cells in blocks:
            lines += [""] + ([caption] if caption else [])
            lines += aligned(list(headers), cells, [h in TEXT_COLUMNS for h in headers])
        return "\n".join(lines + [""] + _summaries(result) + footer(result)) + "\n"
    from rich.console import Console
    from rich.table import Table

    out = io.StringIO()
    need = max(sum(max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers))
               + 3 * len(headers) + 1 for _, headers, cells in blocks)
    console = Console(file=out, force_terminal=color, no_color=not color, highlight=False,
                      markup=False, width=max(width or 0, need), soft_wrap=True)
    for line in lines:
        console.print(line)
    for caption, headers, cells in blocks:
        table = Table(title=caption, title_justify="left")
        for h in headers:
            table.add_column(h, justify="left" if h in TEXT_COLUMNS else "right", no_wrap=True)
        for row in cells:
            bad = any(("DISAGREES" in c or c.startswith("unreliable")) for c in row)
            table.add_row(*row, style="bold red" if bad else None)
        console.print(table)
    for line in _summaries(result):
        console.print(line)
    for line in footer(result):
        console.print(line, style="yellow" if line.startswith("warning") else None)
    return out.getvalue()


def render_markdown(result: Any, top: int | None = None, **_: Any) -> str:
    lines = [f"### bench: {result.spec['name']}", "", header(result), "", peaks_line(result)]
    for caption, headers, cells in _blocks(result, top):
        lines += [""] + ([caption, ""] if caption else [])
        lines.append("| " + " | ".join(headers) + " |")
        lines.append("|" + "|".join("---" if h in TEXT_COLUMNS else "---:" for h in headers) + "|")
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
    extra = _summaries(result) + footer(result)
    return "\n".join(lines + ([""] + extra if extra else [])) + "\n"


BATCH_FIELDS = ("batch", "median_ms", "p10_ms", "p90_ms", "iqr_ms", "samples", "first_ms",
                "spread", "images_per_s", "tflops", "peak_share", "quality",
                "cross_check_ms", "cross_check_difference")
LAYER_FIELDS = ("batch", "batch_median_ms", "name", "op", "shape", "macs", "flops", "other_ops",
                "bytes", "intensity", "time_ms", "share", "bound_ms", "bound", "efficiency")


def render_csv(result: Any, top: int | None = None, **_: Any) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    data = result.to_dict()["results"]
    if any(r["per_layer"] for r in data):
        writer.writerow(LAYER_FIELDS)
        for r, raw in zip(result.results, data, strict=True):
            keep = {layer.name for layer in layer_rows(r.per_layer, top)}
            for layer in raw["per_layer"]["layers"]:
                if layer["name"] in keep:
                    layer = {**layer, "batch": r.batch, "batch_median_ms": r.latency.median_ms,
                             "shape": "x".join(map(str, layer["shape"]))}
                    writer.writerow(["" if layer[f] is None else layer[f] for f in LAYER_FIELDS])
        return out.getvalue()
    writer.writerow(BATCH_FIELDS)
    for raw in data:
        check = raw["cross_check"] or {}
        flat = {**raw, **raw["latency"], "cross_check_ms": check.get("median_ms"),
                "cross_check_difference": check.get("difference")}
        writer.writerow(["" if flat[f] is None else flat[f] for f in BATCH_FIELDS])
    return out.getvalue()


def render_json(result: Any, **_: Any) -> str:
    return json.dumps(result.to_dict(), indent=2) + "\n"

