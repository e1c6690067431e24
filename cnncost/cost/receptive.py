"""Receptive field and feature geometry of every layer, in input pixels.

For each layer and each spatial axis (height, width) the first output position's field
spans the input pixels ``[start, start + size - 1]`` (start may be negative: padding),
and neighbouring outputs are ``stride`` input pixels apart (the jump; a fraction after
upsampling). Single paths follow the closed forms of Araujo, Norris and Sim,
"Computing Receptive Fields of Convolutional Neural Networks" (Distill, 2019): a
window op of kernel k, stride s, dilation d and leading padding p maps (start, end,
stride) to (start - p * stride, end + (d (k - 1) - p) * stride, stride * s). Where paths
meet (add, mul, concat) the field is their union; paths whose strides or field centres
differ get a note, as in the article's alignment discussion. Global and fully connected
ops see the whole input from there on.

Pure Python over the expanded graph, one rule per op in :data:`RULES`; exact fractions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any, NamedTuple

from ..lang.graph import Graph, Node


class Axis(NamedTuple):
    """One axis of a field: the first output's input pixels [start, end], and the jump."""

    start: Fraction
    end: Fraction
    stride: Fraction

    @property
    def size(self) -> Fraction:
        return self.end - self.start + 1


class Geometry(NamedTuple):
    """A layer's field on both axes; `whole` once a global op has seen every position."""

    h: Axis
    w: Axis
    whole: bool = False
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"receptive_field": [_num(self.h.size), _num(self.w.size)],
                "effective_stride": [_num(self.h.stride), _num(self.w.stride)],
                "field_start": [_num(self.h.start), _num(self.w.start)],
                "whole_input": self.whole, "note": self.note or None}


def _num(x: Fraction) -> int | float:
    return int(x) if x.denominator == 1 else float(x)


Rule = Callable[[Node, list[Geometry], Sequence[Any]], Geometry]
RULES: dict[str, Rule] = {}


def rule(*ops: str) -> Callable[[Rule], Rule]:
    def wrap(fn: Rule) -> Rule:
        for op in ops:
            RULES[op] = fn
        return fn
    return wrap


def _window(a: Axis, k: int, s: Fraction | int, d: int, p: int) -> Axis:
    return Axis(a.start - p * a.stride, a.end + (d * (k - 1) - p) * a.stride, a.stride * s)


def _pair(value: Any) -> tuple[int, int]:
    return (value[0], value[1]) if isinstance(value, (list, tuple)) else (value, value)


@rule("conv", "depthwise", "pointwise", "maxpool", "avgpool")
def _windowed(node: Node, ins: list[Geometry], shapes: Sequence[Any]) -> Geometry:
    a, g = node.attrs, ins[0]
    kh, kw = _pair(a.get("kernel", 1))
    sh, sw = _pair(a.get("stride", 1))
    dh, dw = _pair(a.get("dilation", 1))
    top, _, left, _ = a.get("pads", (0, 0, 0, 0))
    return g._replace(h=_window(g.h, kh, sh, dh, top), w=_window(g.w, kw, sw, dw, left))


def _transposed(a: Axis, k: int, s: int, d: int, p: int, size: int) -> Axis:
    """Output 0 of a transposed conv reads the inputs i with i * s - p + t * d == 0."""
    taps = [(p - t * d) // s for t in range(k) if (p - t * d) % s == 0 and
            0 <= (p - t * d) // s < size]
    if not taps:  # output 0 is padding only: keep the position where it would read
        taps = [0]
    return Axis(a.start + min(taps) * a.stride, a.end + max(taps) * a.stride,
                a.stride / s)


@rule("conv_transpose")
def _conv_transpose(node: Node, ins: list[Geometry], shapes: Sequence[Any]) -> Geometry:
    a, g, (_, h, w) = node.attrs, ins[0], shapes[0]
    kh, kw = _pair(a["kernel"])
    sh, sw = _pair(a["stride"])
    dh, dw = _pair(a["dilation"])
    ph, pw = _pair(a["padding"])
    return g._replace(h=_transposed(g.h, kh, sh, dh, ph, h), w=_transposed(g.w, kw, sw, dw, pw, w))


def _resize(a: Axis, size: int, out: int, mode: str, align: bool) -> Axis:
    """The inputs output 0 of an interpolation reads (non-zero weight), PyTorch's rules."""
    ratio = Fraction(size, out)
    if mode == "nearest":
        return Axis(a.start, a.end, a.stride * ratio)
    if align:
        scale = Fraction(size - 1, out - 1) if out > 1 else Fraction(0)
        return Axis(a.start, a.end, a.stride * scale)
    src = max(Fraction(0), (Fraction(1, 2)) * ratio - Fraction(1, 2))
    first = math.floor(src)
    last = min(first + 1, size - 1) if src != first else first
    return Axis(a.start + first * a.stride, a.end + last * a.stride, a.stride * ratio)


@rule("upsample")
def _upsample(node: Node, ins: list[Geometry], shapes: Sequence[Any]) -> Geometry:
    (_, h, w), (_, oh, ow) = shapes[0], _known(node)
    mode, align = node.attrs["mode"], node.attrs["align_corners"]
    g = ins[0]
    return g._replace(h=_resize(g.h, h, oh, mode, align), w=_resize(g.w, w, ow, mode, align))


def _adaptive(a: Axis, size: int, out: int) -> Axis:
    """Output 0 of adaptive pooling reads [0, ceil(size / out) - 1]; outputs start
    size / out apart (PyTorch's window rule)."""
    return Axis(a.start, a.end + (-(-size // out) - 1) * a.stride, a.stride * Fraction(size, out))


@rule("adaptive_avgpool", "adaptive_maxpool")
def _adaptive_pool(node: Node, ins: list[Geometry], shapes: Sequence[Any]) -> Geometry:
    (_, h, w), (_, oh, ow) = shapes[0], _known(node)
    g = ins[0]
    return g._replace(h=_adaptive(g.h, h, oh), w=_adaptive(g.w, w, ow))


def _everything(node: Node, ins: list[Geometry], shapes: Sequence[Any]) -> Geometry:
    """A global op: every output sees every input position."""
    g, shape = ins[0], shapes[0]
    if len(shape) != 3 or g.whole:
        return g._replace(whole=True)
    _, h, w = shape
    return Geometry(Axis(g.h.start, g.h.end + (h - 1) * g.h.stride, g.h.stride * h),
                    Axis(g.w.start, g.w.end + (w - 1) * g.w.stride, g.w.stride * w), True)


for _op in ("global_avgpool", "global_maxpool", "flatten", "linear", "softmax_global"):
    RULES[_op] = _everything


def _known(node: Node) -> tuple[int, ...]:
    assert node.shape is not None  # noqa: S101 - geometry runs on expanded graphs only
    return node.shape


def _shift(a: Axis, by: int) -> Axis:
    return Axis(a.start + by * a.stride, a.end + by * a.stride, a.stride)


@rule("pad")
def _pad(node: Node, ins: list[Geometry], shapes: Sequence[Any]) -> Geometry:
    top, _, left, _ = node.attrs["padding"]
    g = ins[0]
    return g._replace(h=_shift(g.h, -top), w=_shift(g.w, -left))


@rule("crop")
def _crop(node: Node, ins: list[Geometry], shapes: Sequence[Any]) -> Geometry:
    (_, h, w), (_, oh, ow) = shapes[0], _known(node)
    g = ins[0]
    return g._replace(h=_shift(g.h, (h - oh) // 2), w=_shift(g.w, (w - ow) // 2))


def _union(node: Node, ins: list[Geometry], shapes: Sequence[Any]) -> Geometry:
    """Where paths meet: the union of their fields; a note when they disagree."""
    if any(g.whole for g in ins):  # a global gate (squeeze-and-excitation): everything
        spatial = [g for g, s in zip(ins, shapes, strict=True) if not g.whole]
        base = spatial[0] if spatial else ins[0]
        whole = [g for g in ins if g.whole][0]
        return Geometry(Axis(whole.h.start, whole.h.end, base.h.stride),
                        Axis(whole.w.start, whole.w.end, base.w.stride), True)
    notes = []
    axes = []
    for name, parts in (("height", [g.h for g in ins]), ("width", [g.w for g in ins])):
        strides = {a.stride for a in parts}
        centres = {a.start + a.end for a in parts}
        if len(strides) > 1:
            notes.append(f"paths differ in stride along the {name}")
        elif len(centres) > 1:
            notes.append(f"paths' fields are not centred alike along the {name}")
        axes.append(Axis(min(a.start for a in parts), max(a.end for a in parts),
                         max(a.stride for a in parts)))
    return Geometry(axes[0], axes[1], any(g.whole for g in ins), "; ".join(notes))


for _op in ("add", "mul", "concat"):
    RULES[_op] = _union


def _same(node: Node, ins: list[Geometry], shapes: Sequence[Any]) -> Geometry:
    return ins[0]


def geometry(graph: Graph) -> list[Geometry | None]:
    """Each node's geometry (None for a vector input, which has no pixels)."""
    nodes = graph.nodes
    shape = nodes[0].shape
    if shape is None or len(shape) != 3:
        return [None] * len(nodes)
    zero = Fraction(0)
    out: list[Geometry | None] = [Geometry(Axis(zero, zero, Fraction(1)),
                                           Axis(zero, zero, Fraction(1)))]
    for node in nodes[1:]:
        ins = [out[i] for i in node.inputs]
        if any(g is None for g in ins):
            out.append(None)
            continue
        fn = RULES.get(node.op, _same)
        out.append(fn(node, [g for g in ins if g is not None],
                      [nodes[i].shape for i in node.inputs]))
    return out


def covers(g: Geometry, input_shape: Sequence[int]) -> bool:
    """The field is at least as large as the input on both axes (a unit placed at the
    centre sees every pixel)."""
    _, h, w = input_shape
    return g.whole or (g.h.size >= h and g.w.size >= w)


__all__ = ["Axis", "Geometry", "RULES", "covers", "geometry"]


# ------------------------------------------------------------------ one output position
Span = tuple[int, int]  # first and last index along one axis, first > last when empty
Cells = set[int]  # the exact indices along one axis (dilation and padding leave holes)


def _window_back(cells: Cells, k: int, s: int, d: int, p: int, size: int) -> Cells:
    return {v for o in cells for t in range(k) if 0 <= (v := o * s - p + t * d) < size}


def _transposed_back(cells: Cells, k: int, s: int, d: int, p: int, size: int) -> Cells:
    """Inputs i that outputs o read: o = i * s - p + t * d for a tap t."""
    return {i for o in cells for t in range(k)
            if (o + p - t * d) % s == 0 and 0 <= (i := (o + p - t * d) // s) < size}


def _resize_back(cells: Cells, size: int, out: int, mode: str, align: bool) -> Cells:
    def reads(o: int) -> list[int]:
        if mode == "nearest":
            return [min(size - 1, math.floor(Fraction(o * size, out)))]
        if align:
            src = Fraction(o * (size - 1), out - 1) if out > 1 else Fraction(0)
        else:
            src = max(Fraction(0), (o + Fraction(1, 2)) * Fraction(size, out) - Fraction(1, 2))
        first = min(math.floor(src), size - 1)
        return [first, min(first + 1, size - 1)] if src != first else [first]
    return {i for o in cells for i in reads(o)}


def _adaptive_back(cells: Cells, size: int, out: int) -> Cells:
    return {i for o in cells for i in range(o * size // out, -(-(o + 1) * size // out))}


def _padded_source(cells: Cells, before: int, size: int, mode: str) -> Cells:
    """The input pixels that padded positions read: themselves shifted, the border copied
    (replicate) or mirrored (reflect), nothing for a constant fill."""
    def source(o: int) -> int | None:
        i = o - before
        if mode == "constant":
            return i if 0 <= i < size else None
        if mode == "replicate":
            return min(max(i, 0), size - 1)
        period = 2 * (size - 1) or 1  # reflect without repeating the edge, as F.pad
        i %= period
        return period - i if i >= size else i
    return {i for o in cells if (i := source(o)) is not None}


def position_field(graph: Graph, target: int, position: tuple[int, int]) -> tuple[Span, Span]:
    """The input pixels (rows, columns) that output `position` of node `target` depends
    on, exactly: padding contributes nothing, borders clip the field, dilation leaves
    holes. Propagated backwards through the graph as index sets; returns their extents."""
    nodes = graph.nodes
    cells: dict[int, tuple[Cells, Cells]] = {target: ({position[0]}, {position[1]})}
    for node in reversed(nodes[1:target + 1]):
        here = cells.get(node.index)
        if here is None or not here[0] or not here[1]:
            continue
        for i in node.inputs:
            shape = nodes[i].shape
            assert shape is not None  # noqa: S101 - expanded graphs only
            rows, cols = _back(node, here, shape)
            if not rows or not cols:
                continue
            old = cells.get(i)
            cells[i] = (rows, cols) if old is None else (old[0] | rows, old[1] | cols)
    rows, cols = cells.get(0, (set(), set()))
    if not rows or not cols:
        return (0, -1), (0, -1)
    return (min(rows), max(rows)), (min(cols), max(cols))


def _back(node: Node, here: tuple[Cells, Cells],
          shape: tuple[int, ...]) -> tuple[Cells, Cells]:
    """The cells of input `shape` that output cells `here` of `node` read."""
    if len(shape) != 3 or (node.shape is not None and len(node.shape) != 3) or node.op in (
            "global_avgpool", "global_maxpool"):
        return (set(range(shape[1])), set(range(shape[2]))) if len(shape) == 3 else here
    (rows, cols), (_, h, w), a = here, shape, node.attrs
    op = node.op
    if op in ("conv", "depthwise", "pointwise", "maxpool", "avgpool"):
        kh, kw = _pair(a.get("kernel", 1))
        sh, sw = _pair(a.get("stride", 1))
        dh, dw = _pair(a.get("dilation", 1))
        top, _, left, _ = a.get("pads", (0, 0, 0, 0))
        return _window_back(rows, kh, sh, dh, top, h), _window_back(cols, kw, sw, dw, left, w)
    if op == "conv_transpose":
        kh, kw = _pair(a["kernel"])
        sh, sw = _pair(a["stride"])
        dh, dw = _pair(a["dilation"])
        ph, pw = _pair(a["padding"])
        return (_transposed_back(rows, kh, sh, dh, ph, h),
                _transposed_back(cols, kw, sw, dw, pw, w))
    if op == "upsample":
        (_, oh, ow) = _known(node)
        return (_resize_back(rows, h, oh, a["mode"], a["align_corners"]),
                _resize_back(cols, w, ow, a["mode"], a["align_corners"]))
    if op in ("adaptive_avgpool", "adaptive_maxpool"):
        (_, oh, ow) = _known(node)
        return _adaptive_back(rows, h, oh), _adaptive_back(cols, w, ow)
    if op == "pad":
        top, _, left, _ = a["padding"]
        return (_padded_source(rows, top, h, a["mode"]),
                _padded_source(cols, left, w, a["mode"]))
    if op == "crop":
        (_, oh, ow) = _known(node)
        dy, dx = (h - oh) // 2, (w - ow) // 2
        return {o + dy for o in rows}, {o + dx for o in cols}
    if op == "mul" and node.shape is not None and shape[1:] == (1, 1) != node.shape[1:]:
        return {0}, {0}  # a per-channel gate: its one position serves every output
    return here
