"""Property tests: the error path never crashes.

Whatever a spec file holds (a bundled spec with random damage, random text, random
bytes, random YAML-looking token soup, or a random mapping handed to the library),
`cnncost.analyze` either returns an Analysis or raises SpecError whose problems are
one-line, located messages. Any other exception is a bug. The CLI, on the same
inputs, exits 0 or 2, never 3 ("internal error") and never with a traceback.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnncost
from cnncost import Analysis, Problem, SpecError
from cnncost.cli import main
from cnncost.ops import OPS

SPECS_DIR = Path(__file__).resolve().parent.parent / "specs"

FUZZ = settings(max_examples=200, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])
FUZZ_SMALL = settings(FUZZ, max_examples=100)


def bundled_texts() -> dict[str, str]:
    """The bundled specs as they are when the tests run (others may be added later)."""
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(SPECS_DIR.glob("*.yaml"))}


def without_comment_lines(text: str) -> str:
    """Mutations aimed at the header comments would be wasted: drop whole-line comments."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if not line.lstrip().startswith("#"))


SPEC_TEXTS = {name: without_comment_lines(text) for name, text in bundled_texts().items()}

# Words a mutation may put in place of another: ops, aliases, structure, fields, block
# names, variables of the bundled specs, YAML 1.1 surprises and plain junk.
WORDS = sorted(set(OPS) | {
    "conv", "conv2d", "maxpool", "avgpool", "linear", "dense", "relu", "relu6", "flatten",
    "add", "concat", "mul", "depthwise", "pointwise", "batchnorm", "dropout", "identity",
    "global_avgpool", "adaptive_avgpool", "conv_transpose", "channel_shuffle", "softmax",
    "sequential", "residual", "branches", "stage", "act", "separable",
    "basic", "bottleneck", "inverted_residual", "se", "inception", "preact_unit",
    "op", "name", "when", "from", "inputs", "layers", "shortcut", "post", "merge", "block",
    "repeat", "with", "fn", "out", "kernel", "stride", "padding", "dilation", "groups", "bias",
    "norm", "multiplier", "p", "output", "keepdims", "ceil_mode", "params", "blocks",
    "vars", "defaults", "variants", "input", "description", "source",
    "projection", "auto", "if_match", "none", "same", "valid",
    "width", "resolution", "classes", "stride_on", "in_channels", "in_h", "in_w",
    "yes", "no", "on", "off", "true", "false", "null", "~", "True", "None",
    "__import__", "__class__", "eval", "exec", "lambda", "self", "x", "_", "a1",
})

SPECIAL_NUMBERS = ["0", "-0", "-1", "1", "2", "10**9", "10**18", "10**100", "2**64",
                   "99999999999999999999999", "1e3", "1e-3", "1.0e+3", "0.5", "2.5", "-3.5",
                   ".inf", "-.inf", ".nan", "0x10", "0o7", "1_000", "3x3", "abc", "''", "null",
                   "[]", "{}", "[1, 2]", "[1, 2, 3]", "true", "no", "1/0", "max()", "width//0"]

number_replacement = st.one_of(
    st.integers(min_value=-3, max_value=300).map(str),
    st.sampled_from(SPECIAL_NUMBERS),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
word_replacement = st.one_of(
    st.sampled_from(WORDS),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=10),
)

NUMBER = re.compile(r"(?<![A-Za-z_])-?\d+(\.\d+)?")
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@st.composite
def mutated_spec(draw: st.DrawFn) -> tuple[str, str]:
    name = draw(st.sampled_from(sorted(SPEC_TEXTS)))
    text = SPEC_TEXTS[name]
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        kind = draw(st.sampled_from(["delete_line", "duplicate_line", "number", "number",
                                     "word", "word", "truncate", "swap_lines", "indent"]))
        lines = text.splitlines(keepends=True)
        if not lines:
            break
        if kind == "delete_line":
            i = draw(st.integers(0, len(lines) - 1))
            del lines[i]
            text = "".join(lines)
        elif kind == "duplicate_line":
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(i, lines[i])
            text = "".join(lines)
        elif kind == "swap_lines":
            i = draw(st.integers(0, len(lines) - 1))
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            text = "".join(lines)
        elif kind == "indent":
            i = draw(st.integers(0, len(lines) - 1))
            lines[i] = draw(st.sampled_from(["  ", " ", "\t", "- "])) + lines[i]
            text = "".join(lines)
        elif kind == "truncate":
            text = text[:draw(st.integers(0, len(text)))]
        else:
            pattern = NUMBER if kind == "number" else WORD
            matches = list(pattern.finditer(text))
            if not matches:
                continue
            m = draw(st.sampled_from(matches))
            new = draw(number_replacement if kind == "number" else word_replacement)
            text = text[:m.start()] + new + text[m.end():]
    return name, text


def check_outcome(target) -> object:
    """analyze(target) must return an Analysis or raise a well-formed SpecError."""
    try:
        result = cnncost.analyze(target)
    except SpecError as exc:
        assert exc.problems, "SpecError without problems"
        for problem in exc.problems:
            assert isinstance(problem, Problem)
            assert isinstance(problem.message, str) and problem.message.strip()
            assert isinstance(problem.loc.line, int) and problem.loc.line >= 0
            assert "\n" not in str(problem), f"problem spans lines: {str(problem)!r}"
            assert "Traceback" not in problem.message
        return exc
    assert isinstance(result, Analysis)
    assert result.totals.params >= 0 and result.totals.macs >= 0
    return result


def test_there_are_bundled_specs_to_mutate():
    assert "resnet50.yaml" in SPEC_TEXTS


@pytest.fixture(scope="module")
def scratch():
    with tempfile.TemporaryDirectory(prefix="cnncost-fuzz-") as folder:
        yield Path(folder)


@FUZZ
@given(case=mutated_spec())
def test_mutated_bundled_specs_analyze_or_raise_spec_error(scratch, case):
    name, text = case
    path = scratch / name
    path.write_text(text, encoding="utf-8")
    outcome = check_outcome(str(path))
    if isinstance(outcome, SpecError):  # every problem points into the user's file
        assert all(p.loc.file == str(path) for p in outcome.problems), outcome.problems


@FUZZ_SMALL
@given(case=mutated_spec())
def test_mutated_bundled_specs_cli_exits_0_or_2(scratch, case):
    name, text = case
    path = scratch / f"cli_{name}"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(main, ["analyze", str(path), "--format", "json"],
                                catch_exceptions=False)
    assert result.exit_code in (0, 2), result.output
    assert "internal error" not in result.output and "Traceback" not in result.output
    if result.exit_code == 2:
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert errors, result.stderr
        assert all(line.startswith(f"error: {path}") for line in errors), result.stderr


@FUZZ
@given(data=st.binary(max_size=2000))
def test_random_bytes_raise_spec_error(scratch, data):
    path = scratch / "bytes.yaml"
    path.write_bytes(data)
    outcome = check_outcome(str(path))
    assert isinstance(outcome, SpecError)


@FUZZ
@given(text=st.text(max_size=1000))
def test_random_text_raises_spec_error(scratch, text):
    path = scratch / "text.yaml"
    path.write_text(text, encoding="utf-8")
    outcome = check_outcome(str(path))
    assert isinstance(outcome, SpecError)


YAML_TOKENS = ["input:", "layers:", "vars:", "blocks:", "defaults:", "variants:", "params:",
               "- ", "  ", "    ", "\n", "\n  ", "\n  - ", "{", "}", "[", "]", ", ", ": ", "? ",
               "&a ", "*a", "&b ", "*b", "!!str ", "!!int ", "!!python/name:os.system ",
               "!!binary ", "'", '"', "# c", "|", ">", "---", "...", "%YAML 1.1", "\t",
               "op: conv", "op: stage", "op: residual", "op: branches", "op: sequential",
               "block: basic", "block: x", "repeat: 3", "with: {out: 8}", "out: 8", "kernel: 3",
               "stride: 2", "padding: same", "relu", "3", "32", "0", "-1", "1e3", "no", "null",
               "[3, 32, 32]", "x", "name: a", "from: a", "inputs: [a, input]", "when: false",
               "shortcut: identity", "out: \"w // 0\"", "2020-01-01", "0x1F", ".inf"]


@FUZZ
@given(tokens=st.lists(st.sampled_from(YAML_TOKENS), max_size=60))
def test_yaml_token_soup_analyzes_or_raises_spec_error(scratch, tokens):
    path = scratch / "soup.yaml"
    path.write_text("".join(tokens), encoding="utf-8")
    check_outcome(str(path))


# ----------------------------------------------------------------- random mappings
# Layers are built per op from that op's real fields, mostly with plausible values and
# sometimes with junk, so that examples get past name checks into expansion and shape
# inference, where the interesting failures are.
scalars = st.one_of(
    st.sampled_from(WORDS),
    st.integers(min_value=-2, max_value=64),
    st.sampled_from([0, -1, 10**9, 10**30, 0.5, 1.5, float("inf"), float("nan"), True, False,
                     None, "", "same", "2 * width", "in_channels // 2", "1 / 0", "max(1, 2)",
                     "w if w > 2 else 1", "make_divisible(in_channels * 1.5, 8)"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(WORDS), inner, max_size=4)),
    max_leaves=12,
)
LAYER_NAMES = ["a", "b", "c", "input"]
small = st.integers(min_value=1, max_value=6)
pair = st.lists(small, min_size=2, max_size=2)
GOOD: dict[str, st.SearchStrategy] = {
    "out": st.one_of(st.integers(1, 16), st.sampled_from(["w", "2 * w", "in_channels"])),
    "kernel": st.one_of(small, pair), "stride": st.one_of(st.integers(1, 3), pair),
    "padding": st.one_of(st.integers(0, 2), st.sampled_from(["same", "valid", [1, 0],
                                                             [0, 1, 1, 0]])),
    "dilation": st.integers(1, 2), "groups": st.sampled_from([1, 2, 3, 4]),
    "multiplier": st.integers(1, 2), "bias": st.booleans(), "affine": st.booleans(),
    "norm": st.sampled_from(["none", "batchnorm", "layernorm", "bn"]),
    "act": st.sampled_from(["none", "relu", "relu6", "silu", "softmax"]),
    "fn": st.sampled_from(["none", "relu", "gelu"]),
    "p": st.floats(0, 0.99), "output": st.one_of(small, pair), "keepdims": st.booleans(),
    "ceil_mode": st.booleans(), "count_include_pad": st.booleans(),
    "output_padding": st.integers(0, 1), "slope": st.floats(0, 1), "alpha": st.floats(0, 2),
    "per_channel": st.booleans(),
    "name": st.sampled_from(["a", "b", "c"]), "from": st.sampled_from(LAYER_NAMES),
    "inputs": st.lists(st.sampled_from(LAYER_NAMES), min_size=1, max_size=3),
    "when": st.sampled_from([True, False, "w > 2", "w"]),
    "repeat": st.integers(0, 3), "block": st.sampled_from(["basic", "bottleneck", "blk",
                                                           "inverted_residual", "se", "nope"]),
    "with": st.fixed_dictionaries({}, optional={"out": st.integers(1, 16),
                                                 "expand": st.integers(1, 6),
                                                 "k": small, "x": small}),
    "shortcut": st.sampled_from(["identity", "projection", "auto", "if_match", "none"]),
    "merge": st.sampled_from(["concat", "add"]),
    "expand": st.integers(1, 6), "channels": small, "ratio": small,
}
EXTRA_FIELDS = {"sequential": ("layers",), "residual": ("layers", "shortcut", "post"),
                "branches": ("branches", "merge"), "stage": ("block", "repeat", "stride", "with"),
                "act": ("fn",), "separable": ("out", "kernel", "stride", "padding", "multiplier",
                                              "bias", "norm", "act"),
                "basic": ("out", "stride", "act", "norm", "bias"),
                "bottleneck": ("out", "stride", "groups", "expand"),
                "inverted_residual": ("out", "stride", "expand", "kernel"),
                "se": ("channels", "ratio"), "blk": ("out", "k")}
LEAF_OPS = sorted(OPS) + ["separable", "act", "stage", "basic", "bottleneck",
                          "inverted_residual", "se", "blk", "bogus"]


def field_strategy(name: str) -> st.SearchStrategy:
    good = GOOD.get(name, values)
    return st.one_of(*[good] * 12, values)  # mostly plausible, sometimes junk


def layer_for(op: str, nested: st.SearchStrategy | None) -> st.SearchStrategy:
    opdef = OPS.get(op)
    fields = list(opdef.fields) if opdef else list(EXTRA_FIELDS.get(op, ()))
    fields += ["name", "when", "inputs" if opdef is not None and opdef.merge else "from"]
    optional = {f: field_strategy(f) for f in fields if f not in ("layers", "post", "branches")}
    if nested is not None:
        for key in ("layers", "post"):
            if key in fields:
                optional[key] = nested
        if "branches" in fields:
            optional["branches"] = st.dictionaries(st.sampled_from(["x", "y", "z"]), nested,
                                                   min_size=1, max_size=3)
    required = {"op": st.just(op)}
    if opdef is not None:  # usually give the required fields
        for f, d in opdef.fields.items():
            if d.required:
                optional.pop(f, None)
                required[f] = field_strategy(f)
    return st.fixed_dictionaries(required, optional=optional)


def layer_lists(depth: int) -> st.SearchStrategy:
    nested = None if depth == 0 else st.deferred(lambda: layer_lists(depth - 1))
    ops = LEAF_OPS + (["sequential", "residual", "branches"] if depth else [])
    layer = st.sampled_from(ops).flatmap(lambda op: layer_for(op, nested))
    return st.lists(st.one_of(layer, layer, layer, st.sampled_from(["relu", "flatten", "x"])),
                    min_size=1, max_size=5)


random_specs = st.fixed_dictionaries(
    {"input": st.one_of(*[st.sampled_from([[3, 16, 16], [4, 8, 8], [8], "3x12x12"])] * 6,
                        values),
     "layers": layer_lists(2)},
    optional={"vars": st.fixed_dictionaries({"w": st.one_of(st.integers(1, 8), scalars)}),
              "defaults": st.dictionaries(st.sampled_from(sorted(GOOD) + sorted(OPS)[:8]),
                                          values, max_size=3),
              "blocks": st.fixed_dictionaries({
                  "blk": st.fixed_dictionaries(
                      {"params": st.fixed_dictionaries({"out": st.sampled_from([None, 8]),
                                                        "k": st.one_of(small, scalars)}),
                       "layers": layer_lists(1)},
                      optional={"shortcut": st.sampled_from(["auto", "identity", "if_match",
                                                             "bogus"]),
                                "post": layer_lists(0)})}),
              "variants": st.one_of(st.just({"v": {"w": 2}}), values)},

)


@FUZZ
@given(spec=random_specs)
def test_random_mappings_analyze_or_raise_spec_error(spec):
    check_outcome(spec)


# ------------------------------------------------------------ command-line values
option_values = st.one_of(
    st.integers(min_value=-10, max_value=10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "0", "-1", "1e3", "true", "no", "none", "conv1", "conv3", "abc",
                     "10**9", "2 * width", "__import__('os')", "[1]", "{}", "1/0", "0.5"]),
    st.text(max_size=12),
)


@FUZZ_SMALL
@given(spec=st.sampled_from(["resnet18", "mobilenet_v2", "lenet5"]),
       sets=st.lists(st.tuples(st.sampled_from(["resolution", "width", "classes", "dropout",
                                                "stride_on", "widht", ""]), option_values),
                     max_size=3),
       variant=st.one_of(st.none(), st.sampled_from(["paper", "w050", "w140", "nope", ""])),
       input_=st.one_of(st.none(), st.sampled_from(["3x64x64", "3x0x4", "1x1x1", "10",
                                                   "3x64", "x", "3,32,32", "3x9999999x9999999"]),
                        st.text(alphabet="0123456789x,-", max_size=12)))
def test_random_command_line_values_exit_0_or_2(spec, sets, variant, input_):
    args = ["validate", spec]
    for key, value in sets:
        args += ["--set", f"{key}={value}"]
    if variant is not None:
        args += ["--variant", variant]
    if input_ is not None:
        args += ["--input", input_]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code in (0, 2), (args, result.output)
    assert "internal error" not in result.output and "Traceback" not in result.output
