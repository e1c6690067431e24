"""Property tests: the error path never crashes.

Whatever a spec file holds (a bundled spec with random damage, random text, random
bytes, random YAML-looking token soup, or a random mapping handed to the library),
`cnncost.analyze` either returns an Analysis or raises SpecError whose problems are
one-line, located messages. Any other exception is a bug. The CLI, on the same
inputs, exits 0 or 2, never 3 ("internal error") and never with a traceback. Every
field of every op (from the registries) is also driven with out-of-range and odd values.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnncost
from cnncost import Analysis, Problem, SpecError
from cnncost.cli import main
from cnncost.cost.ops import OPS

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


# ------------------------------------------------------------ every field of every op
# Each op of the registry (primitive ops, structural ops, built-in blocks: taken from the
# registries, so a new op or field is driven without editing this file), each of its
# fields, driven with out-of-range and odd values on small, large, vector and 1x1 inputs.
# Validation belongs to the field checks and shape rules; a cost rule never raises. So the
# CLI must exit 0 or 2, never 3 ("internal error"), every error located at file:line, and
# an analysis that succeeds keeps every count within a signed 64-bit integer.
#
# One spec holds many cases (each layer reads the model input and is named L<i>), so a run
# covers ~150 cases. The layers reported as errors are dropped and the rest analyzed again
# until they pass: then every valid case has gone through its cost rule too (the analysis
# runs only on specs without errors). A crash is narrowed down to its case and named.
INT64_MAX = 2**63 - 1
ODD_VALUES = [0, -1, 1, 2, 3, 9, 10001, 10**6, 10**13, 10**30, 2.5, 4.0, 1e300,
              float("nan"), float("inf"), True, False, None, "", "abc", "same", "none", "relu",
              "1 / 0", "10**17", "in_channels * 100000", [], [1], [2, 3], [0, 1], [10001, 1],
              [10**13, 10**13], [1, 2, 3], [1, 2, 3, 4], [-1, 1], [1.5, 2], [[1, 2]], {"a": 1}]
FIELD_INPUTS = {"small": [3, 8, 8], "large": [64, 512, 512], "vector": [16], "pixel": [1, 1, 1]}
# Structural ops and built-in blocks are driven on feature maps (small, large); on a vector
# or a single pixel nearly all of them fail on the first layer, which the primitive ops
# already cover. The counting conventions are run on the small input's survivors.
FEATURE_MAPS = ("small", "large")
# A plausible value for the fields a layer cannot go without (else 8).
GOOD_VALUES = {"out": 8, "kernel": 3, "output": 2, "groups": 1, "block": "basic",
               "with": {"out": 8}, "layers": ["relu"], "post": ["relu"],
               "branches": {"a": ["relu"], "b": ["identity"]}, "fn": "relu",
               "each": "i", "in": "range(2)", "shape": [8, 4, 4]}
CHUNK = 150  # cases per spec: their errors stay under the 200 problems a run reports


def driven_ops() -> dict[str, tuple[dict, list[str]]]:
    """op -> (a valid layer using it, the fields to drive), from the registries."""
    from cnncost.api import builtin_blocks
    from cnncost.lang.spec import REQUIRED, STRUCTURAL

    out = {}
    for op, opdef in sorted(OPS.items()):
        layer = {"op": op, **{f: GOOD_VALUES.get(f, 8) for f, d in opdef.fields.items()
                              if d.required}}
        wiring = "inputs" if opdef.merge else "from"
        layer[wiring] = ["input", "input"] if opdef.merge else "input"
        out[op] = (layer, [*opdef.fields, "when", wiring])
    for op, fields in sorted(STRUCTURAL.items()):
        layer = {"op": op, "from": "input", **{f: GOOD_VALUES[f] for f in fields
                                               if f in GOOD_VALUES}}
        out[op] = (layer, [*fields, "when", "from"])
    for name, block in sorted(builtin_blocks().items()):
        layer = {"op": name, "from": "input", **{p: GOOD_VALUES.get(p, 8)
                                                 for p, d in block.params.items()
                                                 if d is REQUIRED}}
        out[name] = (layer, [*block.params, "when", "from"])
    return out


def field_cases(primitive_only: bool = False) -> list[tuple[str, dict]]:
    """(what, layer): each op's valid layer, then one case per field and odd value."""
    cases = []
    for op, (layer, fields) in driven_ops().items():
        if primitive_only and op not in OPS:
            continue
        cases.append((f"{op} as is", layer))
        cases += [(f"{op} {field}={value!r}", {**layer, field: value})
                  for field in fields for value in ODD_VALUES]
    return cases


def flow(value: object) -> str:
    """`value` as one line of flow YAML that reads back as the same value (yaml.safe_dump
    is exact too, but slow enough to dominate these tests)."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return ".nan" if value != value else ("-.inf" if value < 0 else ".inf")
        text = repr(value)  # YAML 1.1 floats need a dot: 1e+300 -> 1.0e+300
        return text if "." in text else text.replace("e", ".0e", 1)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(map(flow, value)) + "]"
    return "{" + ", ".join(f"{flow(k)}: {flow(v)}" for k, v in value.items()) + "}"


def spec_text(shape: list, layers: list[dict], defaults: dict | None = None) -> str:
    head = f"name: fields\ninput: {shape}\n"
    if defaults:
        head += f"defaults: {flow(defaults)}\n"
    return head + "layers:\n" + "".join(f"  - {flow(layer)}\n" for layer in layers)


def test_flow_yaml_reads_back_exactly():
    for value in [*ODD_VALUES, {"op": "conv", "out": [1.5, "x: y", None]}]:
        back = yaml.safe_load(flow(value))
        assert back == value or (value != value and back != back), (value, back)


LAYER_IN_ERROR = re.compile(r"error: [^:]+:\d+: (?:layers\[\d+\]\()?(L\d+)\b")


def check_exit(result, path: Path) -> set[str]:
    """Exit 0 or 2, never a crash; errors at file:line; counts within int64. Returns the
    names of the layers the errors are about."""
    assert result.exit_code in (0, 2), result.output
    assert "internal error" not in result.output and "Traceback" not in result.output
    if result.exit_code == 0:
        data = json.loads(result.stdout)
        figures = [*data["totals"].values(),
                   *(v for row in data["layers"] for v in row.values() if isinstance(v, int))]
        assert all(v <= INT64_MAX for v in figures), data["totals"]
        return set()
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors, result.stderr
    unlocated = [e for e in errors if not re.match(rf"error: {re.escape(str(path))}:\d+: ", e)]
    assert not unlocated, unlocated
    return {m.group(1) for e in errors for m in [LAYER_IN_ERROR.match(e)] if m}


def run_cases(path: Path, shape: list, cases: list[tuple[str, dict]], args: tuple = (),
              defaults: dict | None = None) -> list[str]:
    """Analyze the cases CHUNK at a time, dropping the layers reported as errors until the
    rest analyze; the names of the cases that analyzed."""
    named = {f"L{i}": (what, {**layer, "name": f"L{i}"}) for i, (what, layer) in
             enumerate(cases)}
    passed = []
    runner = CliRunner()
    order = list(named)
    for start in range(0, len(order), CHUNK):
        alive = order[start:start + CHUNK]
        while alive:
            path.write_text(spec_text(shape, [named[n][1] for n in alive], defaults),
                            encoding="utf-8")
            result = runner.invoke(main, ["analyze", str(path), "--format", "json", *args])
            if result.exit_code not in (0, 2):  # name the case that crashes
                for n in alive:
                    path.write_text(spec_text(shape, [named[n][1]], defaults), encoding="utf-8")
                    alone = runner.invoke(main, ["analyze", str(path), "--format", "json",
                                                 *args])
                    assert alone.exit_code in (0, 2), (named[n][0], shape, args, alone.output)
            failed = check_exit(result, path)
            if result.exit_code == 0:
                passed += alive
                break
            if not failed and defaults:  # the defaults themselves are wrong: nothing to drop
                break
            assert failed & set(alive), ("exit 2 without naming a layer", result.stderr)
            alive = [n for n in alive if n not in failed]
    return passed


@pytest.mark.parametrize("input_name", sorted(FIELD_INPUTS))
def test_every_field_of_every_op_exits_0_or_2(scratch, input_name):
    shape = FIELD_INPUTS[input_name]
    cases = field_cases(primitive_only=input_name not in FEATURE_MAPS)
    path = scratch / f"fields_{input_name}.yaml"
    passed = run_cases(path, shape, cases)
    assert passed  # the valid cases went through the analysis (and their cost rules)
    # The survivors once more under every counting convention (each has its own rules),
    # and at huge batches, where the batched limits are errors at file:line.
    from cnncost.cost.conventions import PROFILES

    survivors = [cases[int(n[1:])] for n in passed]
    for convention in sorted(PROFILES) if input_name == "small" else ():
        run_cases(path, shape, survivors, ("--convention", convention))
    path.write_text(spec_text(shape, [{**layer, "name": f"L{i}"}
                                      for i, (_, layer) in enumerate(survivors)]),
                    encoding="utf-8")
    for batch in ("1000000", str(10**15)):
        check_exit(CliRunner().invoke(main, ["analyze", str(path), "--format", "json",
                                             "--batch", batch]), path)


def test_every_op_is_driven_from_a_valid_layer(scratch):
    """Each op's unmodified layer analyzes on some input, so its fields are driven from
    a valid starting point (a new op whose required field needs a better value than 8
    shows up here: add it to GOOD_VALUES)."""
    ops = driven_ops()
    valid = set()
    for name, shape in FIELD_INPUTS.items():
        passed = run_cases(scratch / f"as_is_{name}.yaml", shape,
                           [(op, layer) for op, (layer, _) in ops.items()])
        valid |= {list(ops)[int(n[1:])] for n in passed}
    assert valid == set(ops), sorted(set(ops) - valid)


@pytest.mark.parametrize("input_name", ["small", "large"])
def test_odd_defaults_exit_0_or_2(scratch, input_name):
    """The same odd values given through `defaults:` (per op) instead of on the layer."""
    plain = [(op, {k: v for k, v in layer.items() if k in ("op", "from", "inputs")})
             for op, (layer, _) in driven_ops().items() if op in OPS]
    path = scratch / f"defaults_{input_name}.yaml"
    for value in ODD_VALUES:
        defaults = {op: {f: value for f in opdef.fields} for op, opdef in OPS.items()
                    if opdef.fields}
        run_cases(path, FIELD_INPUTS[input_name], plain, defaults=defaults)


def test_odd_layer_names_exit_0_or_2(scratch):
    path = scratch / "names.yaml"
    layers = [{"op": "relu", "name": value, "from": "input"} for value in ODD_VALUES]
    layers += [{"op": "relu", "from": value} for value in ODD_VALUES]
    path.write_text(spec_text([3, 8, 8], layers), encoding="utf-8")
    check_exit(CliRunner().invoke(main, ["analyze", str(path), "--format", "json"]), path)
