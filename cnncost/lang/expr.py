"""A small, whitelisted expression language for numeric spec fields.

Spec fields may hold expressions such as ``out // 4``, ``round(64 * width)`` or
``stride if first else 1``. They are parsed with :mod:`ast`, checked against a
whitelist of node types, names and functions, and compiled into nested Python
closures; nothing is ever passed to ``eval``. Compiled expressions are cached by
source text, so a template evaluated a thousand times is parsed once.

Allowed: numbers, strings, booleans; ``+ - * / // % **`` (bounded), unary ``-
+ not``, comparisons, ``and``/``or``, ``x if c else y``; variables from the
spec; and the functions in :data:`FUNCTIONS`. Lists: a variable may hold a list of
numbers or words, indexed as ``widths[i]`` (negative indices count from the end) or
sliced as ``widths[1:3]``; ``[a, b, c]`` writes one; ``len``, ``sum``, ``range``,
``min`` and ``max`` take them. Every list has at most :data:`MAX_LIST` items, and
arithmetic on a list (``widths + 1``) is an error, never a Python list operation.
Math: ``log(x)`` (natural) and ``log(x, base)``, ``exp``, ``sqrt`` and ``pow``; like
``**`` they refuse, with an :class:`ExprError`, a result beyond :data:`MAX_MAGNITUDE`
(``exp(1000)``, ``pow(10, 400)``) and an argument outside their domain (``log(0)``,
``sqrt(-1)``), before computing anything.
"""

from __future__ import annotations

import ast
import math
import operator
from functools import lru_cache
from typing import Any
from collections.abc import Callable, Mapping

from ..errors import did_you_mean

MAX_LENGTH = 500  # characters in one expression
MAX_NODES = 200  # AST nodes in one expression
MAX_MAGNITUDE = 10**18  # largest absolute value an expression may produce
MAX_LIST = 10_000  # items in one list (a literal, a range, a slice)

Env = Mapping[str, Any]  # variable name -> value
Compiled = Callable[[Env], Any]


class ExprError(ValueError):
    """An expression that cannot be parsed or evaluated; the message says why."""


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round `value` to a multiple of `divisor`, never below 90% of it.

    The rule of torchvision's and TensorFlow's MobileNets (`_make_divisible`):
    round to the nearest multiple (halves up), at least `min_value` (default
    `divisor`), and add one `divisor` if rounding lost more than 10%.
    """
    if divisor <= 0:
        raise ExprError(f"make_divisible: divisor must be positive, received {divisor}")
    if min_value is None:
        min_value = divisor
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return int(new)


def _round(value: float, ndigits: int | None = None) -> float | int:
    if ndigits is None:
        return round(value)
    # Clamped: round(5, -10**9) would compute 10 ** 10**9; beyond +-400 digits every
    # number within MAX_MAGNITUDE rounds to itself or to 0 anyway.
    return round(value, max(-400, min(400, ndigits)))


def _numbers(value: Any, name: str) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise ExprError(f"{name}() needs a list, received {value!r}")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            raise ExprError(f"{name}() needs a list of numbers, received the item {item!r}")
    return list(value)


def _len(value: Any) -> int:
    if not isinstance(value, (list, tuple)):
        raise ExprError(f"len() needs a list, received {value!r}")
    return len(value)


def _sum(value: Any) -> Any:
    return sum(_numbers(value, "sum"))


def _range(*args: Any) -> list[int]:
    if not 1 <= len(args) <= 3:
        raise ExprError(f"range() takes 1 to 3 integers, received {len(args)}")
    for a in args:
        if isinstance(a, bool) or not isinstance(a, int):
            raise ExprError(f"range() needs integers, received {a!r}")
    if len(args) == 3 and args[2] == 0:
        raise ExprError("range() step must not be zero")
    span = range(*args)
    if len(span) > MAX_LIST:
        raise ExprError(f"range{args} has {len(span):,} items (limit {MAX_LIST:,})")
    return list(span)


def _extreme(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """min/max of one list (`max(widths)`) or of several values (`max(1, x)`)."""
    def run(*args: Any) -> Any:
        if len(args) == 1 and isinstance(args[0], (list, tuple)):
            values = _numbers(args[0], name)
            if not values:
                raise ExprError(f"{name}() of an empty list")
            return fn(values)
        if not args:
            raise ExprError(f"{name}() needs numbers or a list")
        for a in args:
            if isinstance(a, (list, tuple)):
                raise ExprError(f"{name}() takes one list or several numbers, "
                                f"received the list {a!r} among {len(args)} arguments")
        return fn(*args)
    return run


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ExprError(f"{name}() needs a number, received {value!r}")
    return float(value)


def _log(value: Any, base: Any = None) -> float:
    x = _number(value, "log")
    if x <= 0:
        raise ExprError(f"log() needs a positive number, received {value!r}")
    if base is None:
        return math.log(x)
    b = _number(base, "log")
    if b <= 0 or b == 1:
        raise ExprError(f"log() base must be positive and not 1, received {base!r}")
    return math.log(x, b)


def _exp(value: Any) -> float:
    x = _number(value, "exp")
    if x > math.log(MAX_MAGNITUDE):
        raise ExprError(f"exp({value!r}) is too large (limit {MAX_MAGNITUDE:.0e})")
    return math.exp(x)


def _sqrt(value: Any) -> float:
    x = _number(value, "sqrt")
    if x < 0:
        raise ExprError(f"sqrt() needs a number >= 0, received {value!r}")
    return math.sqrt(x)


def _power(a: Any, b: Any) -> Any:
    """a ** b within the bounds of MAX_MAGNITUDE (the check `**` and pow() share).

    |a ** b| == 2 ** (b * log2|a|), so the size is known before computing it: this
    refuses 10 ** 400 and also 1e-300 ** -64 (a float OverflowError otherwise).
    """
    if abs(b) > 64 or (a != 0 and b * math.log2(abs(a)) > 62):
        raise ExprError(f"{a!r} ** {b!r} is too large")
    if a == 0 and b < 0:
        raise ExprError(f"division by zero in {a!r} ** {b!r}")
    result = a ** b
    if isinstance(result, complex):
        raise ExprError(f"{a!r} ** {b!r} is not a real number")
    return result


def _pow(a: Any, b: Any) -> Any:
    return _power(_int_or_float(a, "pow"), _int_or_float(b, "pow"))


def _int_or_float(value: Any, name: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ExprError(f"{name}() needs numbers, received {value!r}")
    return value


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": _extreme(min, "min"),  # of numbers, or of one list
    "max": _extreme(max, "max"),
    "abs": abs,
    "round": _round,  # Python's round: halves to even, e.g. round(2.5) == 2
    "int": int,  # truncates toward zero
    "float": float,
    "floor": math.floor,
    "ceil": math.ceil,
    "make_divisible": make_divisible,
    "len": _len,  # items of a list
    "sum": _sum,  # of a list of numbers
    "range": _range,  # a list of integers, as Python's range (at most MAX_LIST)
    "log": _log,  # natural, or log(x, base)
    "exp": _exp,
    "sqrt": _sqrt,
    "pow": _pow,  # bounded as ** is
}

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Not: operator.not_,
}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_SYMBOL = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
           ast.Mod: "%", ast.Pow: "**"}


def _check_number(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_LIST:
            raise ExprError(f"a list of {len(value):,} items (limit {MAX_LIST:,})")
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise ExprError(f"result is not a finite number ({value})")
        if abs(value) > MAX_MAGNITUDE:
            raise ExprError(f"result {value:.3g} is too large (limit {MAX_MAGNITUDE:.0e})")
    return value


def _binop(op: type[ast.operator], left: Compiled, right: Compiled) -> Compiled:
    fn = _BINOPS[op]
    symbol = _SYMBOL[op]

    def run(env: Env) -> Any:
        a, b = left(env), right(env)
        for x in (a, b):
            if not isinstance(x, (int, float)) or isinstance(x, bool):
                raise ExprError(f"'{symbol}' needs numbers, received {x!r}")
        if op is ast.Pow:
            return _check_number(_power(a, b))
        try:
            return _check_number(fn(a, b))
        except ZeroDivisionError:
            raise ExprError(f"division by zero in {a!r} {symbol} {b!r}") from None
        except OverflowError:
            raise ExprError(f"{a!r} {symbol} {b!r} overflows") from None

    return run


def _call(name: str, args: list[Compiled], kwargs: dict[str, Compiled]) -> Compiled:
    fn = FUNCTIONS[name]

    def run(env: Env) -> Any:
        values = [a(env) for a in args]
        named = {k: v(env) for k, v in kwargs.items()}
        try:
            return _check_number(fn(*values, **named))
        except ExprError:
            raise
        except (TypeError, ValueError, OverflowError) as exc:
            raise ExprError(f"{name}(...) failed: {exc}") from None

    return run


def _unary(op: type[ast.unaryop], operand: Compiled) -> Compiled:
    fn = _UNARY[op]

    def run(env: Env) -> Any:
        value = operand(env)
        if op is not ast.Not and (isinstance(value, bool) or
                                  not isinstance(value, (int, float))):
            raise ExprError(f"'{'-' if op is ast.USub else '+'}' needs a number, "
                            f"received {value!r}")
        return fn(value)

    return run


def _index(value: Any, what: str, items: list[Any]) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ExprError(f"{what} must be an integer, received {value!r} "
                        f"(the list has {len(items)} items)")
    return value


def _subscript(node: ast.Subscript) -> Compiled:
    """`x[i]` (negative i counts from the end) and `x[a:b]` on a list."""
    target = _compile(node.value)
    if isinstance(node.slice, ast.Slice):
        if node.slice.step is not None:
            raise ExprError("slices with a step are not allowed (write x[a:b])")
        lower = _compile(node.slice.lower) if node.slice.lower else None
        upper = _compile(node.slice.upper) if node.slice.upper else None

        def run_slice(env: Env) -> Any:
            items = _listed(target(env))
            a = _index(lower(env), "a slice start", items) if lower else None
            b = _index(upper(env), "a slice end", items) if upper else None
            return items[a:b]
        return run_slice
    index = _compile(node.slice)

    def run(env: Env) -> Any:
        items = _listed(target(env))
        i = _index(index(env), "a list index", items)
        assert i is not None  # noqa: S101 - _index returns None for None only
        if not -len(items) <= i < len(items):
            raise ExprError(f"index {i} is outside a list of {len(items)} items "
                            f"(0 to {len(items) - 1}, or negative from the end)")
        return items[i]

    return run


def _listed(value: Any) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise ExprError(f"indexing needs a list, received {value!r}")
    return list(value)


def _name(name: str) -> Compiled:
    def run(env: Env) -> Any:
        try:
            return env[name]
        except KeyError:
            if name in ("in_channels", "in_h", "in_w"):
                raise ExprError(f"'{name}' is the shape entering a block, known inside a "
                                "block's layers and parameters; outside blocks write the "
                                "number or a variable") from None
            known = [k for k in env if not k.startswith("_")]
            raise ExprError(f"unknown variable '{name}'{did_you_mean(name, known)} "
                            f"(known: {', '.join(sorted(known)) or 'none'})") from None

    return run


def _compile(node: ast.AST) -> Compiled:
    """Turn one whitelisted AST node into a closure; refuse everything else."""
    if isinstance(node, ast.Expression):
        return _compile(node.body)
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, (bool, int, float, str)) or value is None:
            _check_number(value)
            return lambda env: value
        raise ExprError(f"constant {value!r} is not allowed")
    if isinstance(node, ast.Name):
        if node.id in ("True", "False", "None"):  # pragma: no cover - parsed as Constant
            raise ExprError(f"'{node.id}' is not allowed")
        return _name(node.id)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _binop(type(node.op), _compile(node.left), _compile(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _unary(type(node.op), _compile(node.operand))
    if isinstance(node, ast.List):
        if len(node.elts) > MAX_LIST:  # pragma: no cover - MAX_NODES comes first
            raise ExprError(f"a list of {len(node.elts):,} items (limit {MAX_LIST:,})")
        items = [_compile(e) for e in node.elts]
        return lambda env: [item(env) for item in items]
    if isinstance(node, ast.Subscript):
        return _subscript(node)
    if isinstance(node, ast.BoolOp):
        parts = [_compile(v) for v in node.values]
        if isinstance(node.op, ast.And):
            def run_and(env: Env) -> Any:
                result: Any = True
                for part in parts:
                    result = part(env)
                    if not result:
                        return result
                return result
            return run_and

        def run_or(env: Env) -> Any:
            result: Any = False
            for part in parts:
                result = part(env)
                if result:
                    return result
            return result
        return run_or
    if isinstance(node, ast.Compare) and all(type(o) in _COMPARE for o in node.ops):
        first = _compile(node.left)
        rest = [(_COMPARE[type(o)], _compile(c))
                for o, c in zip(node.ops, node.comparators, strict=True)]

        def run_compare(env: Env) -> bool:
            left = first(env)
            for fn, comp in rest:
                right = comp(env)
                try:
                    if not fn(left, right):
                        return False
                except TypeError:
                    raise ExprError(f"cannot compare {left!r} with {right!r}") from None
                left = right
            return True
        return run_compare
    if isinstance(node, ast.IfExp):
        test, body, orelse = _compile(node.test), _compile(node.body), _compile(node.orelse)
        return lambda env: body(env) if test(env) else orelse(env)
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            called = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            raise ExprError(f"function '{called}' is not allowed{did_you_mean(called, FUNCTIONS)} "
                            f"(allowed: {', '.join(sorted(FUNCTIONS))})")
        if any(isinstance(a, ast.Starred) for a in node.args) or any(
                k.arg is None for k in node.keywords):
            raise ExprError("argument unpacking (*, **) is not allowed")
        return _call(node.func.id, [_compile(a) for a in node.args],
                     {k.arg: _compile(k.value) for k in node.keywords if k.arg})
    what = type(node).__name__
    hint = {"Attribute": "attribute access", "Lambda": "lambda",
            "ListComp": "comprehensions", "GeneratorExp": "comprehensions",
            "SetComp": "comprehensions", "DictComp": "comprehensions",
            "Tuple": "tuples (write a list: [a, b])",
            "NamedExpr": "assignment"}.get(what, what)
    raise ExprError(f"{hint} is not allowed in expressions (allowed: arithmetic, comparisons, "
                    f"'x if c else y', variables and {', '.join(sorted(FUNCTIONS))})")


@lru_cache(maxsize=4096)
def compile_expr(source: str) -> Compiled:
    """Parse and compile `source`; raises :class:`ExprError` with a readable reason."""
    text = source.strip()
    if not text:
        raise ExprError("empty expression")
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression is {len(text)} characters long (limit {MAX_LENGTH})")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ExprError(f"cannot parse expression {text!r}: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError):
        raise ExprError(f"cannot parse expression {text!r}") from None
    count = sum(1 for _ in ast.walk(tree))
    if count > MAX_NODES:
        raise ExprError(f"expression has {count} parts (limit {MAX_NODES})")
    return _compile(tree)


@lru_cache(maxsize=4096)
def free_names(source: str) -> frozenset[str] | None:
    """The names `source` reads (variables, parameters; not the functions it calls), or
    None when it does not parse (its evaluation then fails with the reason)."""
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return frozenset(n.id for n in ast.walk(tree)
                     if isinstance(n, ast.Name) and id(n) not in called)


def names_in(raw: Any) -> frozenset[str] | None:
    """The names a raw spec value can read when it is resolved: a bare word's own, an
    expression's, a list's items'; none for other values (None: one does not parse)."""
    if isinstance(raw, list):
        found: set[str] = set()
        for item in raw:
            names = names_in(item)
            if names is None:
                return None
            found |= names
        return frozenset(found)
    if not isinstance(raw, str):
        return frozenset()
    if raw.isidentifier():
        return frozenset((raw,))
    return free_names(raw)


def evaluate(source: str, env: Env) -> Any:
    """Evaluate an expression string in `env` (a dict of variables)."""
    try:
        return compile_expr(source)(env)
    except RecursionError:
        raise ExprError("expression is nested too deeply") from None
