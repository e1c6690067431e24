"""Normalization ops: batch norm (1-D or 2-D by input rank) and channel layer norm.

BatchNorm: 2C params (scale, shift; C each with Keras' `scale` or `center` off), 2C + 1 buffers (running mean, running var,
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
    fraction,
    positive_number,
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


EPS = Field(positive_number, 1e-5, "added to the variance before the square root (PyTorch "
            "1e-5, Keras 1e-3)")


def learned(attrs: Attrs) -> int:
    """Learned vectors of a batch norm: gamma (`scale`) and beta (`center`), if `affine`."""
    return (attrs["scale"] + attrs["center"]) if attrs["affine"] else 0


@register("batchnorm", doc="batch normalization over channels (BatchNorm2d, or 1d on vectors)",
          aliases=("bn", "batch_norm"), category="norm",
          fields={"affine": Field(boolean, True, "learned scale and shift"),
                  "eps": EPS,
                  "momentum": Field(fraction, 0.1, "running-statistics update rate, PyTorch's "
                                    "sense (Keras momentum m is 1 - m here)"),
                  "center": Field(boolean, True, "learned shift (beta); Keras `center`"),
                  "scale": Field(boolean, True, "learned scale (gamma); Keras `scale`")})
class BatchNorm(_PerChannel):
    @staticmethod
    def cost(ins: Shapes, out: Shape, attrs: Attrs) -> Cost:
        c = out[0]
        return Cost(params=learned(attrs) * c, buffers=2 * c + 1,
                    keras_nontrainable=2 * c, other_ops=2 * numel(out))


@register("layernorm", doc="layer normalization over the channel dimension at each position",
          aliases=("layer_norm",), category="norm",
          fields={"affine": Field(boolean, True, "learned scale and shift"), "eps": EPS})
class LayerNorm(_PerChannel):
    @staticmethod
    def cost(ins: Shapes, out: Shape, attrs: Attrs) -> Cost:
        return Cost(params=2 * out[0] if attrs["affine"] else 0, other_ops=5 * numel(out))


# The words `norm:` accepts: "none" and every norm registered above, with its aliases.
NORMS = ("none", *names_in("norm"))
