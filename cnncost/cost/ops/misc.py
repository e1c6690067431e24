"""Shape-only ops (flatten, identity, dropout, channel shuffle) and merges (add, mul, concat).

Flatten, identity and dropout are views at inference: they cost nothing and
allocate no new activation memory. Merges take `inputs: [a, b, ...]`. `add`
needs equal shapes; `mul` also accepts a per-channel gate (C x 1 x 1 or C)
against a C x H x W map, as squeeze-and-excitation does; `concat` joins along
channels and needs equal spatial sizes. Add and mul count one other op per
output element per extra input; concat counts none (it only moves data).
"""

from __future__ import annotations

from typing import Any

from .base import (
    Attrs,
    Cost,
    Field,
    OpError,
    Shape,
    Shapes,
    fmt_shape,
    need_rank,
    nonneg_int,
    numel,
    pos_int,
    probability,
    register,
)


class _Free:
    @staticmethod
    def shape(ins: Shapes, attrs: Attrs) -> Shape:
        return ins[0]

    @staticmethod
    def cost(ins: Shapes, out: Shape, attrs: Attrs) -> Cost:
        return Cost()


@register("identity", doc="passes its input through", category="shape", view=True)
class Identity(_Free):
    pass


@register("dropout", doc="dropout (identity at inference)", category="shape", view=True,
          fields={"p": Field(probability, 0.5, "probability of zeroing an element in training")})
class Dropout(_Free):
    pass


@register("flatten", doc="flattens C x H x W into a vector", category="shape", view=True)
class Flatten(_Free):
    @staticmethod
    def shape(ins: Shapes, attrs: Attrs) -> Shape:
        return (numel(ins[0]),)


@register("channel_shuffle", doc="interleaves channels across groups (ShuffleNet)",
          aliases=("shuffle",), category="shape",
          fields={"groups": Field(pos_int, None, "number of channel groups")})
class ChannelShuffle(_Free):
    @staticmethod
    def shape(ins: Shapes, attrs: Attrs) -> Shape:
        need_rank(ins[0], 3, "channel shuffle")
        if ins[0][0] % attrs["groups"]:
            raise OpError(f"channels {ins[0][0]} are not divisible by groups={attrs['groups']}")
        return ins[0]


def _need_two(ins: Shapes, what: str) -> None:
    if len(ins) < 2:
        raise OpError(f"{what} needs at least two inputs, received {len(ins)}")


@register("add", doc="elementwise sum of equal-shaped inputs", category="merge", merge=True)
class Add:
    @staticmethod
    def shape(ins: Shapes, attrs: Attrs) -> Shape:
        _need_two(ins, "add")
        for other in ins[1:]:
            if other != ins[0]:
                raise OpError("cannot add tensors of different shapes: "
                              + " + ".join(fmt_shape(s) for s in ins))
        return ins[0]

    @staticmethod
    def cost(ins: Shapes, out: Shape, attrs: Attrs) -> Cost:
        return Cost(other_ops=(len(ins) - 1) * numel(out))


def _gate_fits(gate: Shape, full: Shape) -> bool:
    return len(full) == 3 and gate in ((full[0], 1, 1), (full[0],))


@register("mul", doc="elementwise product; a C x 1 x 1 (or C) gate scales each channel",
          aliases=("multiply",), category="merge", merge=True)
class Mul:
    @staticmethod
    def shape(ins: Shapes, attrs: Attrs) -> Shape:
        _need_two(ins, "mul")
        out = max(ins, key=numel)
        for s in ins:
            if s != out and not _gate_fits(s, out):
                raise OpError("cannot multiply tensors of shapes "
                              + " * ".join(fmt_shape(s) for s in ins)
                              + " (allowed: equal shapes, or a C x 1 x 1 or C gate on C x H x W)")
        return out

    @staticmethod
    def cost(ins: Shapes, out: Shape, attrs: Attrs) -> Cost:
        return Cost(other_ops=(len(ins) - 1) * numel(out))


@register("concat", doc="concatenation along channels", aliases=("concatenate", "cat"),
          category="merge", merge=True)
class Concat:
    @staticmethod
    def shape(ins: Shapes, attrs: Attrs) -> Shape:
        _need_two(ins, "concat")
        rest = {s[1:] for s in ins}
        if len(rest) > 1 or len({len(s) for s in ins}) > 1:
            raise OpError("cannot concatenate along channels: spatial sizes differ ("
                          + ", ".join(fmt_shape(s) for s in ins) + ")")
        return (sum(s[0] for s in ins), *ins[0][1:])

    @staticmethod
    def cost(ins: Shapes, out: Shape, attrs: Attrs) -> Cost:
        return Cost()


def _out_shape(value: Any) -> tuple[int, ...]:
    """An output shape per sample: [C, H, W] or [F]."""
    if not isinstance(value, (list, tuple)) or len(value) not in (1, 3):
        raise OpError(f"expected [channels, height, width] or [features], received {value!r}")
    return tuple(pos_int(v) for v in value)


@register("opaque", doc="a module with no spec equivalent (`cnncost import --allow-opaque`): "
                        "its params, buffers and output shape, and no counted work",
          category="other",
          fields={"shape": Field(_out_shape, None, "output shape per sample: [C, H, W] or [F]"),
                  "params": Field(nonneg_int, 0, "its parameters (counted)"),
                  "buffers": Field(nonneg_int, 0, "its buffers (counted)")})
class Opaque:
    """What an imported module computes is not known here: its output shape and tensors
    are taken as given, and its MACs and other ops count as zero (every output flags it)."""

    @staticmethod
    def shape(ins: Shapes, attrs: Attrs) -> Shape:
        return tuple(attrs["shape"])

    @staticmethod
    def cost(ins: Shapes, out: Shape, attrs: Attrs) -> Cost:
        return Cost(params=attrs["params"], buffers=attrs["buffers"])
