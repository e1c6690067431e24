"""The whitelisted expression evaluator: what it computes and what it refuses."""

from __future__ import annotations

import pytest

from cnncost.lang.expr import ExprError, evaluate, make_divisible


@pytest.mark.parametrize("source,env,expected", [
    ("out // 4", {"out": 256}, 64),
    ("round(64 * width)", {"width": 0.75}, 48),
    ("max(1.0, width)", {"width": 0.5}, 1.0),
    ("make_divisible(32 * width, 8)", {"width": 0.35}, 16),
    ("stride if first else 1", {"stride": 2, "first": False}, 1),
    ("kind == 'conv1' and n > 2", {"kind": "conv1", "n": 3}, True),
    ("2 ** 10", {}, 1024),
    ("ceil(7 / 2) + floor(7 / 2)", {}, 7),
    ("-x % 3", {"x": 4}, 2),
    ("1e3", {}, 1000.0),
    ("not a or b", {"a": True, "b": False}, False),
    ("1 < x <= 3", {"x": 3}, True),
    ("int(2.9) + abs(-1) + min(3, 4)", {}, 6),
    ("make_divisible(value=100, divisor=16)", {}, 96),
])
def test_evaluates(source, env, expected):
    assert evaluate(source, env) == expected


def test_make_divisible_matches_torchvision_rule():
    # torchvision _make_divisible: nearest multiple, never below 90% of the value
    assert make_divisible(32 * 1.0) == 32
    assert make_divisible(24 * 0.35) == 8
    assert make_divisible(1280 * 1.4) == 1792
    assert make_divisible(91) == 88  # 88 >= 0.9 * 91
    assert make_divisible(10, 8) == 16  # 8 < 0.9 * 10 -> bumped
    assert make_divisible(3, 8, min_value=4) == 4  # rounds to 0, raised to min_value


@pytest.mark.parametrize("source,fragment", [
    ("__import__('os')", "function '__import__' is not allowed"),
    ("open('x')", "function 'open' is not allowed"),
    ("x.__class__", "attribute access is not allowed"),
    ("[1, 2][0]", "not allowed"),
    ("lambda: 1", "lambda is not allowed"),
    ("(y := 2)", "assignment is not allowed"),
    ("1 // 0", "division by zero"),
    ("10 ** 100", "too large"),
    ("9 ** 9 ** 9", "too large"),
    ("1 +", "cannot parse"),
    ("x" * 600, "limit 500"),
    ("wdith * 2", "did you mean 'width'"),
    ("'a' * 3", "needs numbers"),
    ("make_divisible(5, 0)", "divisor must be positive"),
    ("max()", "max(...) failed"),
    ("round(*[1])", "not allowed"),
])
def test_refuses(source, fragment):
    with pytest.raises(ExprError) as info:
        evaluate(source, {"width": 1.0, "x": 1})
    assert fragment in str(info.value)


def test_deep_nesting_is_refused_cleanly():
    with pytest.raises(ExprError):
        evaluate("(" * 300 + "1" + ")" * 300, {})
    with pytest.raises(ExprError):
        evaluate("+".join(["1"] * 150), {})
