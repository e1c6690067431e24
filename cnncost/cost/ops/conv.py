"""Convolution and linear ops: standard, grouped, depthwise, pointwise, transposed, dense.

MACs = C_out x H_out x W_out x (C_in / groups) x K_h x K_w (bias not counted);
a transposed conv counts C_in x H_in x W_in x (C_out / groups) x K_h x K_w, as
``torch.utils.flop_counter`` does. A bias adds C_out params and one other op per
output element. Separable convs are expanded to depthwise + pointwise layers.
"""

from __future__ import annotations

from typing import Any

from .act import ACTIVATIONS
from .base import (
    Attrs,
    Cost,
    Field,
    OpError,
    Shape,
    Shapes,
    boolean,
    choice,
    fmt_shape,
    need_rank,
    nonneg_pair,
    numel,
    padding,
    pos_int,
    pos_pair,
    register,
)
from .geometry import fmt_pair, resolve_pads, window_hw
from .norm import NORMS

NORM = Field(choice(*NORMS), "none", "normalization after the layer (expanded to a `norm` layer)")
ACT = Field(choice("none", *ACTIVATIONS), "none",
            "activation after the layer and its norm (expanded to an `act` layer)")
BIAS = Field(boolean, True, "learned bias, one per output channel")

WINDOW = {
    "kernel": Field(pos_pair, None, "kernel size: int or [height, width]"),
    "stride": Field(pos_pair, 1, "stride: int or [height, width]"),
    "padding": Field(padding, 0, "'same' (Keras), 'valid', int, [h, w] or [top, bottom, left, right]"),
    "dilation": Field(pos_pair, 1, "spacing between kernel taps: int or [height, width]"),
}


def window_pads(ins: Shapes, attrs: Attrs, what: str) -> dict[str, Any]:
    """Derived: the explicit (top, bottom, left, right) `pads` of a window on this input."""
    need_rank(ins[0], 3, what)
    _, h, w = ins[0]
    return {"pads": resolve_pads(attrs["padding"], (h, w), attrs["kernel"], attrs["stride"],
                                 attrs["dilation"])}


def conv_out(ins: Shapes, attrs: Attrs, c_out: int, groups: int) -> Shape:
    """Output shape of a (grouped) convolution, with every check PyTorch makes."""
    need_rank(ins[0], 3, "a convolution")
    c_in, h, w = ins[0]
    if c_in % groups:
        raise OpError(f"input channels {c_in} are not divisible by groups={groups}")
    if c_out % groups:
        raise OpError(f"output channels {c_out} are not divisible by groups={groups}")
    return (c_out, *window_hw((h, w), attrs["kernel"], attrs["stride"], attrs["dilation"],
                              attrs["pads"]))


def conv_cost(c_in: int, out: Shape, attrs: Attrs, groups: int) -> Cost:
    kh, kw = attrs["kernel"]
    c_out = out[0]
    weights = c_out * (c_in // groups) * kh * kw
    bias = c_out if attrs["bias"] else 0
    return Cost(params=weights + bias, weights=weights, macs=weights * out[1] * out[2],
                other_ops=numel(out) if bias else 0)


_FUSED = {"bias": BIAS, "norm": NORM, "act": ACT}


@register("conv", doc="2-D convolution (standard, grouped or dilated)", aliases=("conv2d",),
          fused=True, category="conv",
          fields={"out": Field(pos_int, None, "output channels"), **WINDOW,
                  "groups": Field(pos_int, 1, "channel groups (groups = in = out: depthwise)"),
                  **_FUSED})
class Conv:
    @staticmethod
    def derive(ins: Shapes, attrs: Attrs) -> dict[str, Any]:
        return window_pads(ins, attrs, "a convolution")

    @staticmethod
    def shape(ins: Shapes, attrs: Attrs) -> Shape:
        return conv_out(ins, attrs, attrs["out"], attrs["groups"])

    @staticmethod
    def cost(ins: Shapes, out: Shape, attrs: Attrs) -> Cost:
        return conv_cost(ins[0][0], out, attrs, attrs["groups"])


@register("depthwise", doc="depthwise convolution: groups = input channels, out = in x multiplier",
          aliases=("depthwise_conv", "dwconv"), fused=True, category="conv",
          fields={**WINDOW, "multiplier": Field(pos_int, 1, "output channels per input channel"),
                  **_FUSED})
class Depthwise:
    @staticmethod
    def derive(ins: Shapes, attrs: Attrs) -> dict[str, Any]:
        return window_pads(ins, attrs, "a depthwise convolution")

    @staticmethod
    def shape(ins: Shapes, attrs: Attrs) -> Shape:
        return conv_out(ins, attrs, ins[0][0] * attrs["multiplier"], ins[0][0])

    @staticmethod
    def cost(ins: Shapes, out: Shape, attrs: Attrs) -> Cost:
        return conv_cost(ins[0][0], out, attrs, ins[0][0])


@register("pointwise", doc="1x1 convolution (optionally grouped and strided)", fused=True,
          category="conv",
          fields={"out": Field(pos_int, None, "output channels"),
                  "stride": Field(pos_pair, 1, "stride: int or [height, width]"),
                  "groups": Field(pos_int, 1, "channel groups"), **_FUSED})
class Pointwise:
    @staticmethod
    def derive(ins: Shapes, attrs: Attrs) -> dict[str, Any]:
        """A 1x1 window without padding, spelled out for the builder and the exporters."""
        return {"kernel": (1, 1), "padding": (0, 0, 0, 0), "dilation": (1, 1),
                "pads": (0, 0, 0, 0)}

    @staticmethod
    def shape(ins: Shapes, attrs: Attrs) -> Shape:
        return conv_out(ins, attrs, attrs["out"], attrs["groups"])

    @staticmethod
    def cost(ins: Shapes, out: Shape, attrs: Attrs) -> Cost:
        return conv_cost(ins[0][0], out, attrs, attrs["groups"])


def _sym_padding(value: object) -> tuple[int, int]:
    """Transposed convs take symmetric padding only: int or [height, width]."""
    if isinstance(value, str):
        raise OpError(f"expected an integer or [height, width], received {value!r} "
                      "('same'/'valid' are not defined for transposed convs here)")
    return nonneg_pair(value)


@register("conv_transpose", doc="2-D transposed convolution (PyTorch ConvTranspose2d)",
          aliases=("conv_transpose2d", "deconv"), fused=True, category="conv",
          fields={"out": Field(pos_int, None, "output channels"),
                  "kernel": Field(pos_pair, None, "kernel size: int or [height, width]"),
                  "stride": Field(pos_pair, 1, "stride: int or [height, width]"),
                  "padding": Field(_sym_padding, 0, "int or [height, width]"),
                  "output_padding": Field(nonneg_pair, 0, "extra rows/cols at the end"),
                  "dilation": Field(pos_pair, 1, "spacing between kernel taps"),
                  "groups": Field(pos_int, 1, "channel groups"), **_FUSED})
class ConvTranspose:
    @staticmethod
    def shape(ins: Shapes, attrs: Attrs) -> Shape:
        need_rank(ins[0], 3, "a transposed convolution")
        c_in, h, w = ins[0]
        groups, c_out = attrs["groups"], attrs["out"]
        if c_in % groups or c_out % groups:
            raise OpError(f"channels in={c_in} and out={c_out} must both be divisible by "
                          f"groups={groups}")
        size = []
        for axis, n in enumerate((h, w)):
            s, d = attrs["stride"][axis], attrs["dilation"][axis]
            op = attrs["output_padding"][axis]
            if op >= max(s, d):
                raise OpError(f"output_padding {fmt_pair(attrs['output_padding'])} must be "
                              f"smaller than stride or dilation")
            o = (n - 1) * s - 2 * attrs["padding"][axis] + d * (attrs["kernel"][axis] - 1) + op + 1
            if o <= 0:
                raise OpError(f"output size would be {o} (input {n}, padding "
                              f"{attrs['padding'][axis]} too large)")
            size.append(o)
        return (c_out, size[0], size[1])

    @staticmethod
    def cost(ins: Shapes, out: Shape, attrs: Attrs) -> Cost:
        c_in, h, w = ins[0]
        kh, kw = attrs["kernel"]
        weights = c_in * (out[0] // attrs["groups"]) * kh * kw
        bias = out[0] if attrs["bias"] else 0
        return Cost(params=weights + bias, weights=weights, macs=weights * h * w,
                    other_ops=numel(out) if bias else 0)


@register("linear", doc="fully connected layer on a vector", aliases=("dense", "fc"), fused=True,
          category="linear",
          fields={"out": Field(pos_int, None, "output features"), **_FUSED})
class Linear:
    @staticmethod
    def shape(ins: Shapes, attrs: Attrs) -> Shape:
        if len(ins[0]) != 1:
            hint = ("set keepdims: false on the global pooling, or add a flatten"
                    if ins[0][1:] == (1, 1)
                    else "add a flatten, or a global pooling with keepdims: false; for the "
                    "same linear map at every position (ConvNeXt's channels-last Linear) "
                    "use pointwise")
            raise OpError(f"needs a flat vector, received {fmt_shape(ins[0])} ({hint})")
        return (attrs["out"],)

    @staticmethod
    def cost(ins: Shapes, out: Shape, attrs: Attrs) -> Cost:
        weights = ins[0][0] * out[0]
        bias = out[0] if attrs["bias"] else 0
        return Cost(params=weights + bias, weights=weights, macs=weights,
                    other_ops=bias)
