"""Ops that select, pad or resize a feature map: slice, pad, crop and upsample.

None of them has parameters or MACs. `slice` (a channel range) and `crop` (a centred
window) are views of their input: no new activation memory, no work. `pad` writes a
new, larger tensor (zero, constant, reflect or replicate) and counts no work: it only
moves data, as `concat` does. `upsample` counts its interpolation as other ops: none
for nearest (a copy), 7 per output element for bilinear (4 products, 3 sums).
"""

from __future__ import annotations

from typing import Any

from .base import (Attrs, Cost, Field, OpError, Shape, Shapes, boolean, choice, fmt_shape,
                   need_rank, nonneg_int, nonneg_pair, number, numel, pos_int, pos_pair,
                   register)


@register("slice", doc="a channel range [start, stop) of its input (two slices: a split)",
          aliases=("channel_slice",), category="shape", view=True,
          fields={"start": Field(nonneg_int, 0, "first channel taken (0-based)"),
                  "stop": Field(pos_int, None, "channel after the last one taken "
                                "(default: all the rest)", optional=True)})
class Slice:
    @staticmethod
    def derive(ins: Shapes, attrs: Attrs) -> dict[str, Any]:
        """`stop` spelled out: the input's channel count when unset."""
        return {"stop": ins[0][0] if attrs["stop"] is None else attrs["stop"]}

    @staticmethod
    def shape(ins: Shapes, attrs: Attrs) -> Shape:
        c = ins[0][0]
        if len(ins[0]) not in (1, 3):
            raise OpError(f"needs C x H x W or a vector, received {fmt_shape(ins[0])}")
        start, stop = attrs["start"], attrs["stop"]
        if not start < stop <= c:
            raise OpError(f"channels [{start}, {stop}) are not a non-empty range of the "
                          f"input's {c} channels (need 0 <= start < stop <= {c})")
        return (stop - start, *ins[0][1:])

    @staticmethod
    def cost(ins: Shapes, out: Shape, attrs: Attrs) -> Cost:
        return Cost()


def _pad_spatial(value: Any) -> tuple[int, int, int, int]:
    """int, [height, width] or [top, bottom, left, right] (no 'same'/'valid' here)."""
    if isinstance(value, (list, tuple)):
        if len(value) == 2:
            h, w = nonneg_int(value[0]), nonneg_int(value[1])
            return (h, h, w, w)
        if len(value) == 4:
            top, bottom, left, right = (nonneg_int(v) for v in value)
            return (top, bottom, left, right)
        raise OpError(f"padding list must be [height, width] or [top, bottom, left, right], "
                      f"received {len(value)} items")
    v = nonneg_int(value)
    return (v, v, v, v)


_pad_spatial.__name__ = "spatial_padding"  # the JSON Schema keys on it


@register("pad", doc="constant (zero), reflect or replicate padding; channel padding too",
          aliases=("zero_padding", "zeropadding2d"), category="shape",
          fields={"padding": Field(_pad_spatial, 0, "int, [h, w] or [top, bottom, left, right]"),
                  "channels": Field(nonneg_pair, 0, "channels added [before, after] (zeros; "
                                    "ResNet option-A shortcuts)"),
                  "mode": Field(choice("constant", "reflect", "replicate"), "constant",
                                "how the border is filled"),
                  "value": Field(number, 0, "fill value of constant padding")})
class Pad:
    @staticmethod
    def shape(ins: Shapes, attrs: Attrs) -> Shape:
        need_rank(ins[0], 3, "pad")
        c, h, w = ins[0]
        top, bottom, left, right = attrs["padding"]
        before, after = attrs["channels"]
        mode = attrs["mode"]
        if mode != "constant":
            if before or after:
                raise OpError(f"channel padding needs mode 'constant', received {mode!r}")
            if mode == "reflect" and (max(top, bottom) >= h or max(left, right) >= w):
                raise OpError(f"reflect padding must be smaller than the input ({h}x{w}), "
                              f"received [top, bottom, left, right] = "
                              f"{[top, bottom, left, right]}")
        return (c + before + after, h + top + bottom, w + left + right)

    @staticmethod
    def cost(ins: Shapes, out: Shape, attrs: Attrs) -> Cost:
        return Cost()


@register("crop", doc="centre crop of the feature map to `size` (U-Net skip connections)",
          aliases=("center_crop",), category="shape", view=True,
          fields={"size": Field(pos_pair, None, "output size: int or [height, width]")})
class Crop:
    @staticmethod
    def shape(ins: Shapes, attrs: Attrs) -> Shape:
        need_rank(ins[0], 3, "crop")
        c, h, w = ins[0]
        oh, ow = attrs["size"]
        if oh > h or ow > w:
            raise OpError(f"cannot crop {h}x{w} to the larger {oh}x{ow}")
        return (c, oh, ow)

    @staticmethod
    def cost(ins: Shapes, out: Shape, attrs: Attrs) -> Cost:
        return Cost()


# other ops per output element, by interpolation mode
UPSAMPLE_OPS = {"nearest": 0, "bilinear": 7}


@register("upsample", doc="resize by an integer `scale` or to a `size` (nearest or bilinear)",
          aliases=("interpolate", "upsampling2d", "resize"), category="shape",
          fields={"scale": Field(pos_pair, None, "integer factor: int or [height, width] "
                                 "(default 2 without a size, as Keras UpSampling2D)",
                                 optional=True),
                  "size": Field(pos_pair, None, "output size: int or [height, width]",
                                optional=True),
                  "mode": Field(choice(*UPSAMPLE_OPS), "nearest", "interpolation"),
                  "align_corners": Field(boolean, False, "bilinear: align the corner pixels "
                                         "(PyTorch align_corners)")})
class Upsample:
    @staticmethod
    def derive(ins: Shapes, attrs: Attrs) -> dict[str, Any]:
        """The factor spelled out: 2 when neither `scale` nor `size` is given."""
        if attrs["scale"] is None and attrs["size"] is None:
            return {"scale": (2, 2)}
        return {}

    @staticmethod
    def shape(ins: Shapes, attrs: Attrs) -> Shape:
        need_rank(ins[0], 3, "upsample")
        c, h, w = ins[0]
        scale, size = attrs["scale"], attrs["size"]
        if scale is not None and size is not None:
            raise OpError("give scale (a factor) or size (the output size), not both")
        if attrs["align_corners"] and attrs["mode"] != "bilinear":
            raise OpError("align_corners applies to mode 'bilinear' only")
        if size is not None:
            return (c, size[0], size[1])
        return (c, h * scale[0], w * scale[1])

    @staticmethod
    def cost(ins: Shapes, out: Shape, attrs: Attrs) -> Cost:
        return Cost(other_ops=UPSAMPLE_OPS[attrs["mode"]] * numel(out))
