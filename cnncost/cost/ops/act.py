"""Activation ops: elementwise, shape-preserving; only PReLU has parameters.

Every activation counts one "other op" per output element except softmax, which
counts three (exponential, sum, divide). See docs/conventions.md.
"""

from __future__ import annotations

from .base import Attrs, Cost, Field, Shape, Shapes, boolean, names_in, number, numel, register


class _Elementwise:
    ops_per_element = 1

    @staticmethod
    def shape(ins: Shapes, attrs: Attrs) -> Shape:
        return ins[0]

    @classmethod
    def cost(cls, ins: Shapes, out: Shape, attrs: Attrs) -> Cost:
        return Cost(other_ops=cls.ops_per_element * numel(out))


def _simple(name: str, doc: str, aliases: tuple[str, ...] = (), fields: dict[str, Field] | None = None,
            per_element: int = 1) -> None:
    cls = type(f"Act_{name}", (_Elementwise,), {"ops_per_element": per_element})
    register(name, doc=doc, aliases=aliases, fields=fields, category="act")(cls)


_simple("relu", "max(x, 0)")
_simple("relu6", "min(max(x, 0), 6)")
_simple("leaky_relu", "x if x > 0 else slope * x",
        fields={"slope": Field(number, 0.01, "negative slope")})


@register("prelu", doc="leaky ReLU with a learned slope, one shared or one per channel",
          category="act",
          fields={"per_channel": Field(boolean, False, "one slope per channel (else one in all)")})
class PReLU(_Elementwise):
    @staticmethod
    def cost(ins: Shapes, out: Shape, attrs: Attrs) -> Cost:
        n = out[0] if attrs["per_channel"] else 1
        return Cost(params=n, other_ops=numel(out))


_simple("elu", "x if x > 0 else alpha * (exp(x) - 1)",
        fields={"alpha": Field(number, 1.0, "saturation value for negative inputs")})
_simple("gelu", "x * Phi(x) (exact erf form)")
_simple("silu", "x * sigmoid(x)", aliases=("swish",))
_simple("sigmoid", "1 / (1 + exp(-x))")
_simple("hardsigmoid", "relu6(x + 3) / 6")
_simple("hardswish", "x * relu6(x + 3) / 6", aliases=("hard_swish",))
_simple("tanh", "hyperbolic tangent")
_simple("softmax", "softmax over channels", per_element=3)


# The words `act:` accepts: every activation registered above, with its aliases.
ACTIVATIONS = names_in("act")
