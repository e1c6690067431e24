"""Normalization ops: batch norm (1-D or 2-D by input rank) and channel layer norm.

BatchNorm: 2C params (scale, shift), 2C + 1 buffers (running mean, running var,
num_batches_tracked), 2 other ops per element at inference (scale and shift).
LayerNorm over channels: 2C params, 5 other ops per element.
"""

from __future__ import annotations

from .base import (
    Attrs,
    Cost,
    Field,
    OpError,
    Shape,
    Shapes,
    boolean,
    fmt_shape,
    names_in,
    numel,
    register,
)


class _PerChannel:
    @staticmethod
    def shape(ins: Shapes, attrs: Attrs) -> Shape:
        shape = ins[0]
        if len(shape) not in (1, 3):
            raise OpError(f"needs C x H x W or a vector, received {fmt_shape(shape)}")
        return shape


@register("batchnorm", doc="batch normalization over channels (BatchNorm2d, or 1d on vectors)",
          aliases=("bn", "batch_norm"), category="norm",
          fields={"affine": Field(boolean, True, "learned scale and shift")})
class BatchNorm(_PerChannel):
    @staticmethod
    def cost(ins: Shapes, out: Shape, attrs: Attrs) -> Cost:
        c = out[0]
        return Cost(params=2 * c if attrs["affine"] else 0, buffers=2 * c + 1,
                    keras_nontrainable=2 * c, other_ops=2 * numel(out))


@register("layernorm", doc="layer normalization over the channel dimension at each position",
          aliases=("layer_norm",), category="norm",
          fields={"affine": Field(boolean, True, "learned scale and shift")})
class LayerNorm(_PerChannel):
    @staticmethod
    def cost(ins: Shapes, out: Shape, attrs: Attrs) -> Cost:
        return Cost(params=2 * out[0] if attrs["affine"] else 0, other_ops=5 * numel(out))


# The words `norm:` accepts: "none" and every norm registered above, with its aliases.
NORMS = ("none", *names_in("norm"))
