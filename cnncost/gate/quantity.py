"""Quantities in budget files: ``5M`` parameters, ``8MiB`` of memory, ``1%`` of growth.

Parsing is exact (``fractions.Fraction``), so ``1.5MiB`` is 1,572,864 bytes and a
budget compares with the engine's integers without rounding. Suffixes:

- counts (params, MACs, ...): ``k`` = 10^3, ``M`` = 10^6, ``G`` = 10^9, ``T`` = 10^12 (SI),
  and ``Ki`` = 2^10, ``Mi`` = 2^20, ``Gi`` = 2^30, ``Ti`` = 2^40 (binary);
- bytes: ``B``; ``kB``/``KB`` = 10^3, ``MB`` = 10^6, ``GB`` = 10^9, ``TB`` = 10^12 bytes (SI,
  as disks and networks count), and ``KiB`` = 2^10, ``MiB`` = 2^20, ``GiB`` = 2^30, ``TiB`` =
  2^40 bytes (binary, as ``cnncost analyze`` prints memory). ``MB`` is never 2^20;
- milliseconds: a plain number, or with ``ms`` (or ``s``, times 1000);
- rates (images per second): a plain number with an optional SI suffix;
- percentages: ``1%``, ``0.5 %``.

Numbers may be written with an exponent (``5e6``, ``1.2e9``), which YAML 1.1 leaves as
text; here they are read as numbers.

A parse error is a ValueError whose message says what is allowed.
"""

from __future__ import annotations

import re
from fractions import Fraction

SI = {"k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}

# unit kind -> suffix -> factor ("" is a plain number)
SUFFIXES: dict[str, dict[str, Fraction | int]] = {
    "count": {"": 1, **SI, **BINARY},
    "bytes": {"": 1, "B": 1, **{f"{p}B": f for p, f in SI.items()},
              **{f"{p}B": f for p, f in BINARY.items()}},
    "ms": {"": 1, "ms": 1, "s": 1000},
    "rate": {"": 1, **SI},
}
EXAMPLES = {"count": "5M, 600k, 1.5G or 4Mi", "bytes": "20MB (10^6 bytes), 8MiB (2^20 bytes) "
            "or 1024 (bytes)", "ms": "12.5 or 12.5ms", "rate": "250 or 1.2k"}
INTEGER_KINDS = ("count", "bytes")  # whole numbers only

# a number (digits, optional fraction, optional exponent: YAML 1.1 leaves 5e6 as text), then
# an optional unit suffix
_NUMBER = re.compile(r"^\s*([+]?(?:\d+(?:_\d+)*)?(?:\.\d+)?(?:[eE][+-]?\d+)?)\s*"
                     r"([A-Za-z]*)\s*$")


def parse_quantity(value: object, kind: str) -> Fraction:
    """A budget value (number or text with a suffix) of unit `kind` -> an exact Fraction."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"expected a {kind_name(kind)} such as {EXAMPLES[kind]}")
    if isinstance(value, (int, float)):
        number, suffix = Fraction(str(value)), ""
        if number < 0:
            raise ValueError(f"expected a non-negative {kind_name(kind)}")
    else:
        match = _NUMBER.match(value)
        if not match or not re.match(r"^\+?(\d|\.\d)", match.group(1)):
            raise ValueError(f"expected a {kind_name(kind)} such as {EXAMPLES[kind]}")
        number, suffix = Fraction(match.group(1).replace("_", "")), match.group(2)
    factors = SUFFIXES[kind]
    if suffix not in factors:
        hint = ""
        if kind == "bytes" and suffix in SI:
            hint = f"; memory needs a byte unit: {suffix}B (SI) or {suffix.upper()}iB (binary)"
        elif kind == "bytes" and suffix in BINARY:
            hint = f"; memory needs a byte unit: {suffix}B"
        elif kind == "count" and suffix in SUFFIXES["bytes"]:
            hint = "; this metric is a count, not bytes"
        raise ValueError(f"unknown unit {suffix!r} for a {kind_name(kind)}{hint} (allowed: "
                         f"{', '.join(repr(s) for s in factors if s)})")
    result = number * factors[suffix]
    if kind in INTEGER_KINDS and result.denominator != 1:
        raise ValueError(f"{value!r} is not a whole number of {kind_name(kind)}s")
    return result


def parse_percent(value: object) -> Fraction:
    """'1%' or '0.5 %' -> Fraction(1, 100) or Fraction(1, 200)."""
    if isinstance(value, str):
        match = re.match(r"^\s*\+?(\d+(?:\.\d+)?|\.\d+)\s*%\s*$", value)
        if match:
            return Fraction(match.group(1)) / 100
    raise ValueError("expected a percentage such as 1% or 0.5%")


def kind_name(kind: str) -> str:
    return {"count": "count", "bytes": "byte size", "ms": "time in milliseconds",
            "rate": "rate (per second)"}[kind]


def fmt_value(value: float | int | None, kind: str) -> str:
    """A metric value for a report table: exact integers grouped; bytes with a binary size."""
    if value is None:
        return "-"
    if kind == "bytes":
        from ..formats.common import binary

        return f"{value:,} ({binary(value)})" if value >= 1024 else f"{value:,} B"
    if kind == "count":
        return f"{value:,}"
    return f"{value:,.2f}"


def fmt_delta(delta: float | int | None, kind: str) -> str:
    if delta is None:
        return "-"
    sign = "+" if delta > 0 else ""
    if kind in INTEGER_KINDS:
        return f"{sign}{delta:,}"
    return f"{sign}{delta:,.2f}"


def fmt_percent(fraction: float | None) -> str:
    if fraction is None:
        return "-"
    sign = "+" if fraction > 0 else ""
    return f"{sign}{fraction * 100:.2f}%"
