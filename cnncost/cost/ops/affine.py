"""Per-channel affine ops: a learned `scale` (layer scale) and Keras preprocessing.

`scale` multiplies each channel by a learned factor (ConvNeXt's and CaiT's layer scale):
C params, no MACs (PyTorch's flop counter counts a plain multiply as nothing), one other
op per element. `rescaling` is Keras Rescaling, ``x * scale + offset``: no weights, one
other op per element, two with an offset. `normalization` is Keras Normalization over
channels, ``(x - mean) / max(sqrt(variance), 1e-7)``: a mean and a variance per channel
and a sample count, non-trainable (PyTorch buffers; Keras counts 2C + 1 non-trainable
weights), two other ops per element.
"""

from __future__ import annotations

from .base import (Attrs, Cost, Field, OpError, Shape, Shapes, fmt_shape, number, numel,
                   register)

KERAS_EPSILON = 1e-7  # keras.config.epsilon(): Normalization's floor on the deviation


def _per_channel_shape(ins: Shapes, what: str) -> Shape:
    if len(ins[0]) not in (1, 3):
        raise OpError(f"{what} needs C x H x W or a vector, received {fmt_shape(ins[0])}")
    return ins[0]


@register("scale", doc="a learned multiplier per channel (layer scale)",
          aliases=("layer_scale",), category="other",
          fields={"init": Field(number, 1.0, "initial value of every factor (ConvNeXt: 1e-6)")})
class Scale:
    @staticmethod
    def shape(ins: Shapes, attrs: Attrs) -> Shape:
        return _per_channel_shape(ins, "scale")

    @staticmethod
    def cost(ins: Shapes, out: Shape, attrs: Attrs) -> Cost:
        return Cost(params=out[0], other_ops=numel(out))


@register("rescaling", doc="x * scale + offset (Keras Rescaling), no weights",
          category="other",
          fields={"scale": Field(number, None, "the factor, e.g. 1 / 255"),
                  "offset": Field(number, 0, "added after scaling")})
class Rescaling:
    @staticmethod
    def shape(ins: Shapes, attrs: Attrs) -> Shape:
        return ins[0]

    @staticmethod
    def cost(ins: Shapes, out: Shape, attrs: Attrs) -> Cost:
        return Cost(other_ops=(2 if attrs["offset"] else 1) * numel(out))


@register("normalization", doc="(x - mean) / sqrt(variance) per channel, statistics "
          "non-trainable (Keras Normalization)", category="other",
          aliases=("keras_normalization",))
class Normalization:
    @staticmethod
    def shape(ins: Shapes, attrs: Attrs) -> Shape:
        return _per_channel_shape(ins, "normalization")

    @staticmethod
    def cost(ins: Shapes, out: Shape, attrs: Attrs) -> Cost:
        c = out[0]
        return Cost(buffers=2 * c + 1, keras_nontrainable=2 * c + 1, other_ops=2 * numel(out))
