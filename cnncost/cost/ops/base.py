"""The op registry: one entry per primitive op, serving both shape and cost.

Each primitive op is an :class:`OpDef` registered with :func:`register`: its
fields (typed, with defaults and one-line docs), a shape rule, and a cost rule,
plus an optional derive rule for values that follow from the input shape (the
explicit pads of ``padding: same``, a pooling stride defaulting to the kernel):
it returns them as a new dict, which the expansion merges into the node's
attributes before calling the shape rule. Derive, shape and cost rules are pure
functions of the input shapes and the resolved field values: none of them
writes into the attributes it is given. All validation happens before the cost rule: the field checks
(types and ranges) and the shape rule (everything that depends on the input
shape) raise :class:`OpError`, which the expansion reports with the layer's
file:line; they never assert. A cost rule never raises: it is only called on
fields and shapes that passed those checks, and it computes in closed form (no
loop over an output size), so any accepted layer is costed in constant time.
The same op names are what the PyTorch builder mirrors.

Shapes are tuples of ints without the batch dimension: ``(C, H, W)`` for feature
maps, ``(F,)`` for vectors. All counts are per sample; the analysis multiplies
by the batch size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from ...errors import did_you_mean, one_of, show

Shape = tuple[int, ...]  # per sample, without the batch: (C, H, W) or (F,)
Shapes = Sequence[Shape]  # the input shapes of one op
Attrs = Mapping[str, Any]  # resolved field values: read-only for every rule


class OpError(ValueError):
    """An op cannot be applied: wrong field value or incompatible input shape."""


class Cost:
    """Costs of one primitive op for one sample."""

    __slots__ = ("params", "buffers", "keras_nontrainable", "macs", "other_ops", "weights",
                 "weighted")

    def __init__(self, params: int = 0, buffers: int = 0, keras_nontrainable: int = 0,
                 macs: int = 0, other_ops: int = 0, weights: int = 0) -> None:
        self.params = params  # trainable parameters, as PyTorch counts them
        self.buffers = buffers  # non-trainable tensors PyTorch keeps (BN running stats, counter)
        self.keras_nontrainable = keras_nontrainable  # Keras non-trainable (BN moving mean/var)
        self.macs = macs  # multiply-accumulates of conv/linear, bias excluded
        self.other_ops = other_ops  # elementwise work: bias, norm, activations, pooling, merges
        self.weights = weights  # the part of `params` that are conv/linear kernels (no bias)
        self.weighted = False  # set by the analysis: the op is a conv or linear layer


# --------------------------------------------------------------------------- fields

def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OpError(f"expected {what}, received {show(value)}")
    if isinstance(value, float):
        if not value.is_integer():
            raise OpError(f"expected {what}, received {value!r} (not a whole number; "
                          "use round(), int() or // in the expression)")
        return int(value)
    return int(value)


def pos_int(value: Any) -> int:
    v = _int(value, "a positive integer")
    if v <= 0:
        raise OpError(f"expected a positive integer, received {v}")
    return v


def nonneg_int(value: Any) -> int:
    v = _int(value, "a non-negative integer")
    if v < 0:
        raise OpError(f"expected a non-negative integer, received {v}")
    return v


def pair_of(element: Callable[[Any], int], name: str) -> Callable[[Any], tuple[int, int]]:
    """A check for an int (same for height and width) or a [height, width] pair."""

    def check(value: Any) -> tuple[int, int]:
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise OpError(f"expected an integer or [height, width], received a list of "
                              f"{len(value)} items")
            return (element(value[0]), element(value[1]))
        v = element(value)
        return (v, v)

    check.__name__ = name
    return check


pos_pair = pair_of(pos_int, "pos_pair")
nonneg_pair = pair_of(nonneg_int, "nonneg_pair")


def number(value: Any) -> float:
    """A finite number (NaN and the infinities are no layer setting)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OpError(f"expected a number, received {show(value)}")
    try:
        result = float(value)
    except OverflowError:
        raise OpError(f"expected a finite number, received an integer of "
                      f"{len(str(abs(value))):,} digits") from None
    if not math.isfinite(result):
        raise OpError(f"expected a finite number, received {show(value)}")
    return result


def positive_number(value: Any) -> float:
    v = number(value)
    if v <= 0:
        raise OpError(f"expected a positive number, received {v}")
    return v


def fraction(value: Any) -> float:
    v = number(value)
    if not 0 < v <= 1:
        raise OpError(f"expected a number in (0, 1], received {v}")
    return v


def probability(value: Any) -> float:
    v = number(value)
    if not 0 <= v < 1:
        raise OpError(f"expected a probability in [0, 1), received {v}")
    return v


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise OpError(f"expected true or false, received {show(value)}")
    return value


def padding(value: Any) -> Any:
    """'same', 'valid', an int, [height, width] or [top, bottom, left, right]."""
    if isinstance(value, str):
        if value in ("same", "valid"):
            return value
        raise OpError(f"expected 'same', 'valid', an integer, [height, width] or "
                      f"[top, bottom, left, right], received {value!r}"
                      f"{did_you_mean(value, ['same', 'valid'])}")
    if isinstance(value, (list, tuple)):
        if len(value) == 2:
            h, w = nonneg_int(value[0]), nonneg_int(value[1])
            return (h, h, w, w)
        if len(value) == 4:
            return tuple(nonneg_int(v) for v in value)
        raise OpError(f"padding list must be [height, width] or [top, bottom, left, right], "
                      f"received {len(value)} items")
    v = nonneg_int(value)
    return (v, v, v, v)


def choice(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if isinstance(value, bool):
            raise OpError(f"expected one of {one_of(choices)}, received {show(value)} "
                          f"(YAML reads unquoted yes/no/on/off as booleans; write 'none' or "
                          f"quote the word)")
        if not isinstance(value, str) or value not in choices:
            raise OpError(f"expected one of {one_of(choices)}, received {show(value)}"
                          f"{did_you_mean(value, choices)}")
        return value
    check.choices = choices  # type: ignore[attr-defined]  # read back by Field
    return check


class Field:
    """A typed field of an op: how to check it, its default, what it means."""

    __slots__ = ("check", "default", "doc", "optional", "choices")

    def __init__(self, check: Callable[[Any], Any], default: Any = None, doc: str = "",
                 optional: bool = False) -> None:
        self.check = check
        self.default = default  # None: required (unless `optional`)
        self.doc = doc
        self.optional = optional  # may stay unset (None) without a default
        self.choices: tuple[str, ...] = getattr(check, "choices", ())  # allowed words, for word fields

    @property
    def required(self) -> bool:
        return self.default is None and not self.optional


# --------------------------------------------------------------------------- registry

ShapeRule = Callable[[Shapes, Attrs], Shape]
CostRule = Callable[[Shapes, Shape, Attrs], Cost]
DeriveRule = Callable[[Shapes, Attrs], dict[str, Any]]


class OpDef(NamedTuple):
    """A primitive op: fields, shape rule, cost rule and a few traits."""

    name: str
    doc: str
    fields: dict[str, Field]
    shape: ShapeRule
    cost: CostRule
    merge: bool = False  # takes `inputs: [a, b, ...]` instead of one input
    fused: bool = False  # accepts `norm:` and `act:` (expanded to sibling layers)
    view: bool = False  # output is a view of its input (no new memory)
    category: str = "other"  # conv, linear, norm, act, pool, merge, shape, other
    aliases: tuple[str, ...] = ()
    derive: DeriveRule | None = None  # attributes that follow from the input shape


OPS: dict[str, OpDef] = {}
ALIASES: dict[str, str] = {}


def register(name: str, *, doc: str, fields: dict[str, Field] | None = None,
             aliases: tuple[str, ...] = (), **traits: Any) -> Callable[[Any], Any]:
    """Class decorator: the class provides static `shape` and `cost` rules, and
    optionally a static `derive` rule."""

    def wrap(cls: Any) -> Any:
        op = OpDef(name=name, doc=doc, fields=dict(fields or {}), shape=cls.shape,
                   cost=cls.cost, aliases=aliases, derive=getattr(cls, "derive", None),
                   **traits)
        if name in OPS or name in ALIASES:
            raise RuntimeError(f"op {name!r} registered twice")
        OPS[name] = op
        for alias in aliases:
            ALIASES[alias] = name
        return cls

    return wrap


def names_in(category: str) -> tuple[str, ...]:
    """The names and aliases of the ops registered so far in `category`, in order."""
    return tuple(word for op in OPS.values() if op.category == category
                 for word in (op.name, *op.aliases))


def canonical(name: str) -> str | None:
    """The registered name for `name` or one of its aliases; None if unknown."""
    if name in OPS:
        return name
    return ALIASES.get(name)


def registered(name: str) -> str:
    """The registered name of a word already checked against the registry (a field's
    choices); KeyError for an unknown one, which no user input can reach."""
    op = canonical(name)
    if op is None:
        raise KeyError(name)
    return op


def numel(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def need_rank(shape: Shape, rank: int, op: str) -> None:
    if len(shape) != rank:
        want = "a feature map C x H x W" if rank == 3 else "a flat vector (use flatten first)"
        raise OpError(f"{op} needs {want}, received input of shape {fmt_shape(shape)}")


def fmt_shape(shape: Shape | None) -> str:
    if shape is None:
        return "?"
    return "x".join(str(d) for d in shape)
