"""Number formatting and the column set shared by the text formats."""

from __future__ import annotations

from typing import Any

from ..cost.ops import fmt_shape

COLUMNS = ("name", "op", "shape", "params", "macs", "flops", "act_bytes")
HEADERS = {"name": "layer", "op": "op", "shape": "output", "params": "params", "macs": "MACs",
           "flops": "FLOPs", "act_bytes": "activations"}


def si(n: float, unit: str = "") -> str:
    """1234567 -> '1.23 M' (decimal prefixes, for counts)."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= factor:
            return f"{n / factor:.2f} {prefix}{unit}"
    return f"{n:g} {unit}".rstrip()


def binary(n: float) -> str:
    """Bytes with binary prefixes: 1536 -> '1.50 KiB'."""
    for factor, prefix in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if abs(n) >= factor:
            return f"{n / factor:.2f} {prefix}"
    return f"{int(n)} B"


def grouped(n: int) -> str:
    return f"{n:,}"


def cell(row: object, column: str) -> str:
    value = getattr(row, column)
    if column == "shape":
        return fmt_shape(value)
    if column == "act_bytes":
        return binary(value) if value else "-"
    if isinstance(value, int):
        return grouped(value) if value else "-"
    return str(value)


def note_lines(analysis: object) -> list[str]:
    """Caveats about the figures, printed under the totals ('note: ...')."""
    return [f"note: {note}" for note in getattr(analysis, "notes", ())]


def total_lines(analysis: object) -> list[tuple[str, str]]:
    """(label, value) pairs for the totals footer, exact numbers with a readable size."""
    t = analysis.totals  # type: ignore[attr-defined]
    trainable = getattr(analysis, "trainable", None)
    if trainable is not None:  # a convention whose params are not PyTorch's: its labels
        params = [("Total params", f"{t.params:,} ({si(t.params)})"),
                  ("Trainable params", f"{trainable:,} ({si(trainable)})"),
                  ("Non-trainable params", f"{t.params - trainable:,} (moving mean/var, "
                                           "normalization statistics)"),
                  ("buffers (PyTorch)", f"{t.buffers:,}")]
    else:
        params = [("params (trainable)", f"{t.params:,} ({si(t.params)})"),
                  ("buffers (non-trainable)", f"{t.buffers:,}"),
                  ("params, Keras total", f"{t.keras_params:,} (params + BN moving mean/var)")]
    return [
        *params,
        ("MACs", f"{t.macs:,} ({si(t.macs)})"),
        ("FLOPs (2 x MACs)", f"{t.flops:,} ({si(t.flops)})"),
        ("other ops (elementwise)", f"{t.other_ops:,} ({si(t.other_ops)})"),
        ("weight memory", binary(t.weight_bytes)),
        ("activation memory (all)", binary(t.activation_bytes)),
        ("peak live activations", binary(t.peak_activation_bytes)),
        ("layers", f"{t.layers} ({t.weighted_layers} conv/linear)"),
        *([("acts (pycls)", f"{analysis.acts:,} ({si(analysis.acts)}; conv/linear/pool "  # type: ignore[attr-defined]
                            "outputs)")] if getattr(analysis, "acts", None) is not None else []),
        *field_total(analysis),
    ]


GEOMETRY_HEADERS = ("field", "stride")


def _pair_text(pair: list[Any], sep: str = "x") -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}{sep}{pair[1]}"


def geometry_cells(analysis: Any, rows: list[Any], depth: int) -> list[list[str]]:
    """Per row: the receptive field and effective stride ('' for vectors), or nothing
    when the analysis has no geometry."""
    if not analysis.geometry:
        return [[] for _ in rows]
    geo = analysis.geometry_of(depth)
    out = []
    for row in rows:
        g = geo.get(row.name)
        if g is None:
            out.append(["", ""])
            continue
        d = g.to_dict()
        if g.whole:  # every output sees every input pixel: no stride between outputs
            out.append(["all", "-"])
            continue
        out.append([_pair_text(d["receptive_field"]) + ("*" if g.note else ""),
                    _pair_text(d["effective_stride"])])
    return out


def field_total(analysis: Any) -> list[tuple[str, str]]:
    if not getattr(analysis, "geometry", ()):
        return []
    f = analysis.field_totals()
    if not f:
        return []
    covers = "covers the input" if f["covers_input"] else "smaller than the input"
    return [("receptive field", f"{_pair_text(f['receptive_field'])} px, stride "
             f"{_pair_text(f['effective_stride'])} at {f['layer']} ({covers})")]


def aligned(headers: list[str], rows: list[list[str]], left: list[bool]) -> list[str]:
    """A plain-text table: the header, a rule of dashes, then the rows, each column as wide
    as its widest cell, left- or right-aligned, two spaces apart."""
    widths = [max(len(line[i]) for line in [headers, *rows]) for i in range(len(headers))]

    def fmt(line: list[str]) -> str:
        return "  ".join(text.ljust(w) if lj else text.rjust(w)
                         for text, w, lj in zip(line, widths, left, strict=True)).rstrip()

    return [fmt(headers), "  ".join("-" * w for w in widths), *(fmt(line) for line in rows)]


def header_line(analysis: Any) -> str:
    """'resnet50 (variant paper) | input 3x224x224 | batch 1 | fp32 | var=value, ...'."""
    a = analysis
    name = f"{a.name} (variant {a.variant})" if a.variant else a.name
    parts = [name, f"input {fmt_shape(a.input_shape)}", f"batch {a.batch}", a.dtype]
    if getattr(a, "convention", "torchvision") != "torchvision":
        from ..cost.conventions import get

        parts.append(f"convention {a.convention} (MACs = {get(a.convention).label})")
    if a.vars:
        parts.append(", ".join(f"{k}={v}" for k, v in a.vars.items()))
    return " | ".join(parts)


def caption(analysis: Any) -> str:
    """The spec's description, unless the figures in it may not apply (changed settings)."""
    return analysis.description if analysis.description and not analysis.custom else ""
