"""Pooling ops: max/avg windows, global pooling and adaptive pooling.

No parameters and no MACs. Other ops: K_h x K_w per output element for window
pooling (comparisons or adds plus the divide), the exact number of inputs read
per output for adaptive pooling, and every input element once for global pooling.
"""

from __future__ import annotations

import math
from typing import Any

from .base import (
    Attrs,
    Cost,
    Field,
    OpError,
    Shape,
    Shapes,
    boolean,
    need_rank,
    numel,
    padding,
    pos_pair,
    register,
)
from .geometry import fmt_pair, resolve_pads, window_hw

_WINDOW = {
    "kernel": Field(pos_pair, None, "window size: int or [height, width]"),
    "stride": Field(pos_pair, None, "stride (default: the kernel size)", optional=True),
    "padding": Field(padding, 0, "'same' (Keras), 'valid', int, [h, w] or [top, bottom, left, right]"),
    "ceil_mode": Field(boolean, False, "round the output size up (PyTorch ceil_mode)"),
}


class _Window:
    @staticmethod
    def derive(ins: Shapes, attrs: Attrs) -> dict[str, Any]:
        """The stride (default: the kernel), the dilation (avgpool: 1) and explicit `pads`."""
        need_rank(ins[0], 3, "pooling")
        _, h, w = ins[0]
        kernel = attrs["kernel"]
        stride = kernel if attrs["stride"] is None else attrs["stride"]
        dilation = attrs.get("dilation", (1, 1))
        return {"stride": stride, "dilation": dilation,
                "pads": resolve_pads(attrs["padding"], (h, w), kernel, stride, dilation)}

    @staticmethod
    def shape(ins: Shapes, attrs: Attrs) -> Shape:
        c, h, w = ins[0]
        kernel, pads = attrs["kernel"], attrs["pads"]
        if not isinstance(attrs["padding"], str) and (
                max(pads[0], pads[1]) > kernel[0] // 2 or max(pads[2], pads[3]) > kernel[1] // 2):
            raise OpError(f"padding {max(pads)} is more than half the kernel {fmt_pair(kernel)} "
                          "(PyTorch pooling allows at most kernel // 2)")
        if attrs["ceil_mode"] and isinstance(attrs["padding"], tuple) and (
                pads[0] != pads[1] or pads[2] != pads[3]):
            raise OpError(f"ceil_mode needs the same padding on both sides (PyTorch pads "
                          f"pooling symmetrically), received [top, bottom, left, right] = "
                          f"{list(pads)}")
        return (c, *window_hw((h, w), kernel, attrs["stride"], attrs["dilation"], pads,
                              attrs["ceil_mode"]))

    @staticmethod
    def cost(ins: Shapes, out: Shape, attrs: Attrs) -> Cost:
        kh, kw = attrs["kernel"]
        return Cost(other_ops=kh * kw * numel(out))


@register("maxpool", doc="max pooling over windows", aliases=("max_pool", "maxpool2d"),
          category="pool",
          fields={**_WINDOW, "dilation": Field(pos_pair, 1, "spacing between window taps")})
class MaxPool(_Window):
    pass


@register("avgpool", doc="average pooling over windows", aliases=("avg_pool", "avgpool2d"),
          category="pool",
          fields={**_WINDOW, "count_include_pad": Field(
              boolean, True, "zero padding counts in the average (PyTorch default)")})
class AvgPool(_Window):
    pass


class _Global:
    @staticmethod
    def shape(ins: Shapes, attrs: Attrs) -> Shape:
        need_rank(ins[0], 3, "global pooling")
        c = ins[0][0]
        return (c, 1, 1) if attrs["keepdims"] else (c,)

    @staticmethod
    def cost(ins: Shapes, out: Shape, attrs: Attrs) -> Cost:
        return Cost(other_ops=numel(ins[0]))


_KEEP = {"keepdims": Field(boolean, True, "keep a C x 1 x 1 map (false: a C vector)")}


@register("global_avgpool", doc="average over all positions of each channel",
          aliases=("global_avg_pool", "gap"), category="pool", fields=_KEEP)
class GlobalAvgPool(_Global):
    pass


@register("global_maxpool", doc="maximum over all positions of each channel",
          aliases=("global_max_pool",), category="pool", fields=_KEEP)
class GlobalMaxPool(_Global):
    pass


def adaptive_reads(size: int, out: int) -> int:
    """Inputs read along one axis by adaptive pooling (windows may overlap).

    Window i spans [floor(i * size / out), ceil((i + 1) * size / out)), as PyTorch
    computes it. Summed over the `out` windows that is ``size + out - gcd(size, out)``:
    the ceilings and floors telescope to `size`, and a window end is rounded up
    except at the gcd(size, out) multiples of `out` where it is exact. Closed form, so
    the cost does not grow with the output size.
    """
    return size + out - math.gcd(size, out)


class _Adaptive:
    @staticmethod
    def shape(ins: Shapes, attrs: Attrs) -> Shape:
        need_rank(ins[0], 3, "adaptive pooling")
        return (ins[0][0], *attrs["output"])

    @staticmethod
    def cost(ins: Shapes, out: Shape, attrs: Attrs) -> Cost:
        c, h, w = ins[0]
        oh, ow = attrs["output"]
        return Cost(other_ops=c * adaptive_reads(h, oh) * adaptive_reads(w, ow))


_OUT = {"output": Field(pos_pair, None, "output size: int or [height, width]")}


@register("adaptive_avgpool", doc="average pooling to a fixed output size",
          aliases=("adaptive_avg_pool",), category="pool", fields=_OUT)
class AdaptiveAvgPool(_Adaptive):
    pass


@register("adaptive_maxpool", doc="max pooling to a fixed output size",
          aliases=("adaptive_max_pool",), category="pool", fields=_OUT)
class AdaptiveMaxPool(_Adaptive):
    pass
