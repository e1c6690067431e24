"""Behaviours a mutation run found unpinned: each test here fails if its bug is planted.

A mutation run (small plausible bugs planted one at a time in the cost rules, the
language, the gate, verify and the builder) found bugs that the rest of the suite let
pass. Each test below pins one of those behaviours at its boundary (the last value
accepted and the first refused, a change just inside and just outside a tolerance), so
that the bug named in its docstring fails it. `benchmarks/mutation_check.py` plants
those bugs again and reports any that survive (docs/benchmarks.md, "Mutation check").

The builder tests compare the analytic engine with the PyTorch model cnncost builds
(marker `torch`; skipped without torch), each on a fixed spec: before, these builder
bugs were found only by the random property test, and not on every run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import cnncost
from cnncost.gate.budget import load_budget
from cnncost.cli import main
from cnncost.errors import SpecError
from cnncost.lang.expr import ExprError, evaluate
from cnncost.lang.spec import RESERVED


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def problems(spec: dict) -> str:
    """The messages of the SpecError that analyzing `spec` raises (fails if it is valid)."""
    with pytest.raises(SpecError) as info:
        cnncost.analyze(spec)
    return str(info.value)


def plant_cost(monkeypatch, op: str, change) -> None:
    """Plant a wrong cost rule: `op`'s own rule, then `change(cost, attrs)` applied."""
    from cnncost.cost.ops import OPS

    rule = OPS[op]

    def planted(ins, out, attrs):
        cost = rule.cost(ins, out, attrs)
        change(cost, attrs)
        return cost

    monkeypatch.setitem(OPS, op, rule._replace(cost=planted))


def shift_one_mac(cost, attrs) -> None:
    """One MAC moved from the 6-channel conv to the 8-channel one: every total stays."""
    cost.macs += 1 if attrs["out"] == 8 else -1 if attrs["out"] == 6 else 0


def layer(layer: dict, input_shape: tuple = (4, 8, 8)) -> cnncost.Analysis:
    return cnncost.analyze({"name": "one", "input": list(input_shape), "layers": [layer]})


# ============================================================== verify's overall verdict
@pytest.mark.torch
def test_verify_verdict_fails_on_a_layer_mismatch_even_when_totals_agree():
    """Mutant: `Verification.ok` joins the layers and the totals with `or`."""
    pytest.importorskip("torch")
    from cnncost.pytorch.verification import LayerCheck, Verification

    agree = {"shape": (4, 2, 2), "params": 10, "buffers": 0, "macs": 40}
    wrong = {**agree, "params": 11}
    totals = {key: (agree[key], agree[key]) for key in agree}

    def result(layers: list, totals: dict) -> Verification:
        return Verification(None, layers, totals, {}, None, 0)

    good = LayerCheck("a", "conv", agree, dict(agree))
    bad = LayerCheck("b", "conv", agree, wrong)
    assert result([good], totals).ok
    assert not result([good, bad], totals).ok  # a layer disagrees, the totals agree
    assert not result([good], {**totals, "macs": (40, 41)}).ok  # only a total disagrees
    assert result([good, bad], totals).first_mismatch() == ("b", "params", 10, 11)


@pytest.mark.torch
def test_verify_fails_when_layers_disagree_but_the_totals_agree(monkeypatch):
    """Mutant: `and` -> `or` in the verdict. A cost rule that moves one MAC from one conv
    to another leaves every total right and two layers wrong: verify must fail, exit 1."""
    pytest.importorskip("torch")
    from cnncost.pytorch.verification import verify

    plant_cost(monkeypatch, "conv", shift_one_mac)
    spec = {"name": "shift", "input": [3, 6, 6], "layers": [
        {"op": "conv", "out": 8, "kernel": 3, "padding": 1},
        {"op": "conv", "out": 6, "kernel": 3, "padding": 1}]}
    result = verify(spec, device="meta")
    assert all(a == m for a, m in result.totals.values())  # the totals agree
    assert [c.name for c in result.mismatched_layers()] == ["conv1", "conv2"]
    assert not result.ok
    assert result.to_dict()["ok"] is False


@pytest.mark.torch
def test_verify_cli_exit_1_on_a_layer_only_mismatch(monkeypatch, tmp_path):
    """Mutant: `and` -> `or` in the verdict, seen from `cnncost verify` (exit 1, not 0)."""
    pytest.importorskip("torch")
    plant_cost(monkeypatch, "conv", shift_one_mac)
    path = tmp_path / "shift.yaml"
    path.write_text("name: shift\ninput: [3, 6, 6]\nlayers:\n"
                    "  - {op: conv, out: 8, kernel: 3, padding: 1}\n"
                    "  - {op: conv, out: 6, kernel: 3, padding: 1}\n")
    out = run("verify", path, "--device", "meta", "--format", "json")
    assert out.exit_code == 1, out.output
    data = json.loads(out.output)
    assert data["ok"] is False and all(t["ok"] for t in data["totals"].values())
    assert data["first_mismatch"]["layer"] == "conv1"


@pytest.mark.torch
def test_verify_compares_buffers(monkeypatch):
    """Mutant: buffers dropped from the quantities verify checks."""
    pytest.importorskip("torch")
    from cnncost.pytorch.verification import verify

    plant_cost(monkeypatch, "batchnorm", lambda cost, attrs: setattr(cost, "buffers",
                                                                     cost.buffers + 1))
    result = verify({"name": "bn", "input": [4, 3, 3], "layers": ["batchnorm"]}, device="meta")
    assert result.first_mismatch() == ("batchnorm1", "buffers", 10, 9)
    assert not result.ok


# ============================================================== gate tolerances and budgets
LINEAR_SPEC = """\
name: lin
input: [100]
vars: {n: 1000}
layers:
  - {op: linear, out: n, bias: false}
"""


@pytest.fixture
def gate_repo(tmp_path, monkeypatch):
    """A repository with specs/lin.yaml: MACs = 100 x n (100,000 at the default n)."""
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "lin.yaml").write_text(LINEAR_SPEC)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "no-git"))
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return tmp_path


def gate_after_growth(repo: Path, tolerance: str, n: int):
    """Save a baseline at n = 1000, set n, gate; (exit code, {metric: row})."""
    (repo / "cnncost.budget.yaml").write_text(
        f"models:\n  - spec: specs/lin.yaml\n    regression:\n      macs: {tolerance}\n")
    saved = run("baseline", "save")
    assert saved.exit_code == 0, saved.output
    spec = repo / "specs" / "lin.yaml"
    spec.write_text(LINEAR_SPEC.replace("n: 1000", f"n: {n}"))
    result = run("gate", "--format", "json")
    assert result.exit_code in (0, 1), result.output
    rows = {r["metric"]: r for r in json.loads(result.output)["rows"]}
    return result.exit_code, rows


@pytest.mark.parametrize(("n", "growth", "passes"), [
    (1000, 0, True),
    (1005, 500, True),    # +0.5%: 500 units, far more than 1 unit, within 1%
    (1010, 1000, True),   # +1% exactly: the limit itself is allowed
    (1011, 1100, False),  # +1.1%
    (1020, 2000, False),  # +2%
])
def test_relative_tolerance_is_relative_to_the_baseline(gate_repo, n, growth, passes):
    """Mutants: `worse > tol.relative` (a 1% tolerance read as 0.01 units, so any growth
    fails) and `>=` for `>` (the limit itself refused)."""
    code, rows = gate_after_growth(gate_repo, "1%", n)
    macs = rows["macs"]
    assert macs["baseline"] == 100_000 and macs["current"] == 100_000 + growth
    assert macs["tolerance"] == "+1%"
    assert macs["status"] == ("pass" if passes else "fail")
    assert code == (0 if passes else 1)


@pytest.mark.parametrize(("n", "passes"), [(1010, True), (1011, False)])
def test_absolute_tolerance_boundary(gate_repo, n, passes):
    """Mutant: `>=` for `>` on the absolute limit (1,000 MACs of growth allowed)."""
    code, rows = gate_after_growth(gate_repo, "1k", n)
    assert rows["macs"]["status"] == ("pass" if passes else "fail")
    assert code == (0 if passes else 1)


@pytest.mark.parametrize(("tolerance", "n", "passes"), [
    ("{relative: 1%, absolute: 300}", 1005, False),  # within 1%, over 300: fails
    ("{relative: 0.4%, absolute: 1k}", 1005, False),  # within 1k, over 0.4%: fails
    ("{relative: 1%, absolute: 1k}", 1005, True),
])
def test_relative_and_absolute_both_apply(gate_repo, tolerance, n, passes):
    """Mutant: the two limits joined with `and` (a growth had to break both to fail)."""
    code, rows = gate_after_growth(gate_repo, tolerance, n)
    assert rows["macs"]["status"] == ("pass" if passes else "fail")
    assert code == (0 if passes else 1)


def test_budget_default_batch_and_dtype_apply_to_every_model(gate_repo):
    """Mutants: a budget file's `defaults: {batch: 4}` (or dtype) ignored for models that
    do not set their own."""
    path = gate_repo / "cnncost.budget.yaml"
    path.write_text("defaults: {batch: 4, dtype: fp16}\nmodels:\n"
                    "  - spec: specs/lin.yaml\n"
                    "  - {name: own, spec: specs/lin.yaml, batch: 2, dtype: int8}\n")
    default, own = load_budget(path).models
    assert (default.settings["batch"], default.settings["dtype"]) == (4, "fp16")
    assert (own.settings["batch"], own.settings["dtype"]) == (2, "int8")
    # and the gate counts at that batch: MACs 4 x 100,000 for the first model
    path.write_text("defaults: {batch: 4, dtype: fp16}\nmodels:\n"
                    "  - spec: specs/lin.yaml\n    budgets: {macs: 400k, weights: 200kB}\n")
    assert run("gate").exit_code == 0
    path.write_text("defaults: {batch: 4, dtype: fp16}\nmodels:\n"
                    "  - spec: specs/lin.yaml\n    budgets: {macs: 399999}\n")
    assert run("gate").exit_code == 1
    path.write_text("defaults: {batch: 4, dtype: fp16}\nmodels:\n"
                    "  - spec: specs/lin.yaml\n    budgets: {weights: 199999B}\n")
    assert run("gate").exit_code == 1  # 100,000 params x 2 bytes


def test_baseline_schema_version_true_is_refused(gate_repo):
    """Mutant: the baseline's `schema_version` check forgets that JSON true == 1."""
    (gate_repo / "cnncost.budget.yaml").write_text(
        "models:\n  - spec: specs/lin.yaml\n    regression: {macs: 1%}\n")
    assert run("baseline", "save").exit_code == 0
    path = gate_repo / "cnncost.baseline.json"
    text = path.read_text()
    assert '"schema_version": 1,' in text
    path.write_text(text.replace('"schema_version": 1,', '"schema_version": true,'))
    result = run("gate")
    assert result.exit_code == 2, result.output
    assert "schema_version" in result.output and "cnncost.baseline.json" in result.output


# ============================================================== bytes per element
@pytest.mark.parametrize(("dtype", "size"), [("fp32", 4), ("fp16", 2), ("bf16", 2), ("int8", 1)])
def test_bytes_per_element(dtype, size):
    """Mutant: bf16 (or another dtype) weighs the wrong number of bytes."""
    spec = {"name": "b", "input": [3, 8, 8], "layers": [
        {"op": "conv", "out": 4, "kernel": 3, "padding": 1}]}
    t = cnncost.analyze(spec, dtype=dtype, batch=2).totals
    assert t.params == 4 * 3 * 9 + 4
    assert t.weight_bytes == t.params * size
    assert t.activation_bytes == 2 * (3 + 4) * 64 * size  # input and output, batch 2
    assert t.peak_activation_bytes == 2 * (3 + 4) * 64 * size


# ============================================================== counting profiles
@pytest.mark.parametrize(("convention", "bn_affine", "bn_plain", "ln_affine", "ln_plain",
                          "ln_map"), [
    ("torchvision", 0, 0, 0, 0, 0),
    ("keras", 0, 0, 0, 0, 0),
    ("fvcore", 2, 1, 5, 4, 5),
    ("ptflops", 2, 1, 1, 1, 0),
    ("thop", 4, 2, 4, 2, 0),
])
def test_norm_counts_per_profile(convention, bn_affine, bn_plain, ln_affine, ln_plain, ln_map):
    """Mutant: one profile's batch-norm (or layer-norm) count per element changed, with or
    without a learned scale and shift (no bundled spec has `affine: false`). Layer norm on
    vectors is nn.LayerNorm; on feature maps cnncost's ChannelLayerNorm, which ptflops and
    thop have no hook for (tests/data/convention_ops_reference.json)."""
    elements = 4 * 5 * 5
    for op, affine, per in [("batchnorm", True, bn_affine), ("batchnorm", False, bn_plain)]:
        spec = {"name": "n", "input": [4, 5, 5], "layers": [{"op": op, "affine": affine}]}
        t = cnncost.analyze(spec, convention=convention).totals
        assert t.macs == per * elements, (op, affine)
    for affine, per in [(True, ln_affine), (False, ln_plain)]:
        spec = {"name": "n", "input": [elements], "layers": [{"op": "layernorm",
                                                             "affine": affine}]}
        assert cnncost.analyze(spec, convention=convention).totals.macs == per * elements
    spec = {"name": "n", "input": [4, 5, 5], "layers": [{"op": "layernorm"}]}
    assert cnncost.analyze(spec, convention=convention).totals.macs == ln_map * elements


# ============================================================== residual shortcuts
DEFAULTS = {"bias": False, "norm": "batchnorm", "act": "relu"}


def rows_of(spec: dict) -> dict:
    return {r.name: r for r in cnncost.analyze(spec).rows}


def test_auto_shortcut_projects_a_strided_block_with_equal_channels():
    """Mutant: `auto` picks identity when the channels match, ignoring the spatial size."""
    spec = {"name": "r", "input": [16, 8, 8], "defaults": DEFAULTS, "layers": [
        {"op": "residual", "name": "down", "layers": [
            {"op": "conv", "out": 16, "kernel": 3, "stride": 2, "padding": 1, "act": "none"}]},
        {"op": "basic", "name": "b", "out": 16, "stride": 2}]}
    rows = rows_of(spec)
    assert rows["down.shortcut.conv"].shape == (16, 4, 4)
    assert rows["down.shortcut.conv"].params == 16 * 16
    assert rows["b.shortcut.conv"].shape == (16, 2, 2)
    graph = cnncost.build_graph(spec)
    strides = {n.name: tuple(n.attrs["stride"]) for n in graph.nodes if n.op == "conv"}
    assert strides["down.shortcut.conv"] == strides["b.shortcut.conv"] == (2, 2)
    # equal shapes: identity (no shortcut layers at all)
    same = {"name": "s", "input": [16, 8, 8], "defaults": DEFAULTS, "layers": [
        {"op": "basic", "name": "b", "out": 16}]}
    assert not [name for name in rows_of(same) if "shortcut" in name]


def test_if_match_shortcut_drops_the_residual_of_a_strided_block():
    """Mutant: `if_match` compares channels only (MobileNetV2 stride-2 block, equal channels)."""
    spec = {"name": "ir", "input": [16, 8, 8], "defaults": DEFAULTS, "layers": [
        {"op": "inverted_residual", "name": "down", "out": 16, "stride": 2, "expand": 1},
        {"op": "inverted_residual", "name": "keep", "out": 16, "expand": 1}]}
    names = list(rows_of(spec))
    assert "down.add" not in names and "keep.add" in names


def test_projection_takes_the_blocks_bias_and_norm():
    """Mutant: the projection shortcut ignores the enclosing block's `bias` parameter."""
    spec = {"name": "p", "input": [8, 8, 8], "defaults": DEFAULTS, "layers": [
        {"op": "basic", "name": "with_bias", "out": 16, "stride": 2, "bias": True},
        {"op": "basic", "name": "plain", "out": 32, "stride": 2},
        {"op": "basic", "name": "no_norm", "out": 64, "stride": 2, "norm": "none"}]}
    rows = rows_of(spec)
    assert rows["with_bias.shortcut.conv"].params == 8 * 16 + 16  # the block's bias: true
    assert rows["plain.shortcut.conv"].params == 16 * 32  # the default bias: false
    assert "no_norm.shortcut.norm" not in rows and "plain.shortcut.norm" in rows


def test_projection_follows_conv_defaults_and_never_has_an_activation():
    """Mutants: the projection ignores the spec's bias default, or gets the default act."""
    spec = {"name": "p", "input": [8, 8, 8],
            "defaults": {"bias": True, "norm": "none", "act": "relu"}, "layers": [
                {"op": "residual", "name": "r", "shortcut": "projection", "layers": [
                    {"op": "conv", "out": 16, "kernel": 1, "act": "none"}]}]}
    rows = rows_of(spec)
    # a conv without norm and activation is one layer, named after the shortcut itself
    assert [n for n in rows if n.startswith("r.shortcut")] == ["r.shortcut"]
    assert rows["r.shortcut"].op == "conv" and rows["r.shortcut"].params == 8 * 16 + 16


# ============================================================== peak live memory
def test_peak_keeps_the_model_output_alive():
    """Mutant: the peak frees the model output after its last reader (it has none here:
    the output is `a`, computed before the larger `b`, which nothing reads)."""
    spec = {"name": "p", "input": [3, 8, 8], "layers": [
        {"op": "conv", "name": "a", "out": 1, "kernel": 1},
        {"op": "conv", "name": "b", "from": "input", "out": 64, "kernel": 1},
        {"op": "sequential", "name": "tail", "from": "a", "layers": [
            {"op": "relu", "when": False}]}]}
    analysis = cnncost.analyze(spec)
    assert analysis.output_shape == (1, 8, 8)
    size = {r.name: r.act_bytes for r in analysis.rows}
    assert size == {"input": 3 * 64 * 4, "a": 64 * 4, "b": 64 * 64 * 4}
    # while b is computed: the input (read by b), the output a, and b itself
    assert analysis.totals.peak_activation_bytes == size["input"] + size["a"] + size["b"]


def test_peak_of_a_chain_is_the_largest_neighbouring_pair():
    spec = {"name": "c", "input": [2, 4, 4], "layers": [
        {"op": "conv", "out": 8, "kernel": 1}, {"op": "conv", "out": 1, "kernel": 1},
        {"op": "conv", "out": 4, "kernel": 1}]}
    t = cnncost.analyze(spec).totals
    assert t.peak_activation_bytes == (2 + 8) * 16 * 4


# ============================================================== window limits
@pytest.mark.parametrize("op", ["maxpool", "avgpool"])
@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_pool_padding_at_most_half_the_kernel(op, k):
    """Mutant: pooling accepts padding up to the kernel (PyTorch allows kernel // 2)."""
    ok = layer({"op": op, "kernel": k, "stride": 1, "padding": k // 2}, (2, 9, 9))
    assert ok.output_shape == (2, 9 + 2 * (k // 2) - k + 1, 9 + 2 * (k // 2) - k + 1)
    message = problems({"name": "p", "input": [2, 9, 9], "layers": [
        {"op": op, "kernel": k, "stride": 1, "padding": k // 2 + 1}]})
    assert "more than half the kernel" in message


@pytest.mark.parametrize(("kernel", "padding", "valid"), [
    ([5, 3], [2, 1], True),
    ([5, 3], [2, 2], False),  # width padding over 3 // 2
    ([3, 5], [2, 2], False),  # height padding over 3 // 2
    ([3, 5], [1, 2], True),
    ([5, 3], [2, 2, 1, 1], True),
    ([5, 3], [2, 2, 0, 2], False),  # one side over half the width of the kernel
    ([5, 3], [3, 0, 1, 1], False),
])
def test_pool_padding_limit_per_axis(kernel, padding, valid):
    """Mutants: the width padding checked against the height of the kernel, or one side."""
    spec = {"name": "p", "input": [2, 9, 9], "layers": [
        {"op": "maxpool", "kernel": kernel, "stride": 1, "padding": padding}]}
    if valid:
        cnncost.analyze(spec)
    else:
        assert "more than half the kernel" in problems(spec)


@pytest.mark.parametrize(("stride", "dilation", "output_padding", "valid"), [
    (2, 1, 1, True),
    (2, 1, 2, False),  # equal to the stride
    (3, 1, 2, True),
    (3, 1, 3, False),
    (1, 3, 2, True),  # smaller than the dilation is enough
    (1, 3, 3, False),
    ([2, 3], 1, [1, 2], True),
    ([2, 3], 1, [1, 3], False),
    ([2, 3], 1, [2, 1], False),
])
def test_transposed_conv_output_padding_below_stride_or_dilation(stride, dilation,
                                                                  output_padding, valid):
    """Mutant: output_padding accepted when equal to the stride (PyTorch refuses it)."""
    spec = {"name": "t", "input": [2, 5, 5], "layers": [
        {"op": "conv_transpose", "out": 3, "kernel": 3, "stride": stride, "dilation": dilation,
         "output_padding": output_padding}]}
    if valid:
        out = cnncost.analyze(spec).output_shape
        s = stride if isinstance(stride, list) else [stride] * 2
        p = output_padding if isinstance(output_padding, list) else [output_padding] * 2
        assert out == (3, *((5 - 1) * s[i] + dilation * 2 + p[i] + 1 for i in range(2)))
    else:
        assert "must be smaller than stride or dilation" in problems(spec)


@pytest.mark.torch
@pytest.mark.parametrize(("stride", "dilation", "output_padding"), [(2, 1, 1), (2, 1, 2),
                                                                    (1, 3, 2), (1, 3, 3)])
def test_transposed_conv_limit_is_pytorchs(stride, dilation, output_padding):
    """The limit above is PyTorch's own: it refuses what cnncost refuses."""
    torch = pytest.importorskip("torch")
    spec = {"name": "t", "input": [2, 5, 5], "layers": [
        {"op": "conv_transpose", "out": 3, "kernel": 3, "stride": stride, "dilation": dilation,
         "output_padding": output_padding}]}
    module = torch.nn.ConvTranspose2d(2, 3, 3, stride, 0, output_padding, dilation=dilation)
    try:
        torch_shape = tuple(module(torch.zeros(1, 2, 5, 5)).shape[1:])
    except RuntimeError:
        torch_shape = None
    try:
        ours = cnncost.analyze(spec).output_shape
    except SpecError:
        ours = None
    assert ours == torch_shape


# ============================================================== the language refuses
@pytest.mark.parametrize("name", RESERVED)
def test_reserved_layer_names_are_refused(name):
    """Mutant: a layer named `input` (or in_channels, True, ...) accepted."""
    message = problems({"name": "r", "input": [3, 8, 8], "layers": [
        {"op": "conv", "name": name, "out": 4, "kernel": 1}]})
    assert "name must be an identifier" in message and repr(name) in message


@pytest.mark.parametrize("name", ["input", "in_channels"])
def test_reserved_variable_and_parameter_names_are_refused(name):
    """Mutants: a variable, or a block parameter, named like a reserved name accepted."""
    message = problems({"name": "r", "input": [3, 8, 8], "vars": {name: 1},
                        "layers": [{"op": "conv", "out": 4, "kernel": 1}]})
    assert f"variable name '{name}' is not allowed" in message
    message = problems({"name": "r", "input": [3, 8, 8],
                        "blocks": {"blk": {"params": {name: 1}, "layers": ["relu"]}},
                        "layers": [{"op": "blk"}]})
    assert f"parameter name '{name}' is not allowed" in message


def test_a_variant_without_settings_is_refused():
    """Mutant: `variants: {small: }` (YAML null: no mapping of settings) accepted."""
    base = {"name": "v", "input": [3, 8, 8], "vars": {"width": 1},
            "layers": [{"op": "conv", "out": 4, "kernel": 1}]}
    message = problems({**base, "variants": {"small": None}})
    assert "variants.small: expected a mapping of variable -> value, received null" in message
    for bad in ([], 2, "width"):
        assert "variants.small: expected a mapping" in problems({**base, "variants": {"small": bad}})
    assert cnncost.analyze({**base, "variants": {"small": {"width": 2}}}, variant="small")


@pytest.mark.parametrize("source", ["True + 1", "1 - False", "2 * True", "True / 1",
                                    "False // 1", "True % 2", "2 ** True", "w + flag"])
def test_booleans_are_not_numbers_in_arithmetic(source):
    """Mutant: a boolean accepted as 0/1 in `+ - * / // % **`."""
    with pytest.raises(ExprError, match="needs numbers, received (True|False)"):
        evaluate(source, {"w": 1, "flag": True})


def test_a_boolean_in_a_spec_expression_is_an_error():
    message = problems({"name": "b", "input": [3, 8, 8], "vars": {"wide": True},
                        "layers": [{"op": "conv", "out": "8 + wide", "kernel": 1}]})
    assert "'+' needs numbers, received True" in message


# ============================================================== builder against analytic
def check_built(spec: dict, input_shape: tuple) -> cnncost.Analysis:
    """verify on the meta device finds no mismatch; the built model's output, params and
    buffers equal the analytic ones. Returns the analysis."""
    pytest.importorskip("torch")
    import torch

    from cnncost.pytorch.verification import verify

    spec = {"name": "b", "input": list(input_shape), **spec}
    result = verify(spec, device="meta")
    assert result.first_mismatch() is None, result.first_mismatch()
    assert result.mismatched_layers() == []
    analysis = cnncost.analyze(spec)
    model = cnncost.build(spec, device="meta").eval()
    out = model(torch.zeros(1, *input_shape, device="meta"))
    assert tuple(out.shape[1:]) == analysis.output_shape
    assert sum(p.numel() for p in model.parameters()) == analysis.totals.params
    assert sum(b.numel() for b in model.buffers()) == analysis.totals.buffers
    return analysis


@pytest.mark.torch
@pytest.mark.parametrize("padding", [[1, 2], [0, 1], [2, 0]])
def test_builder_conv_width_padding(padding):
    """Builder mutant: the width padding of a symmetric [h, w] padding taken from h."""
    a = check_built({"layers": [{"op": "conv", "out": 3, "kernel": 3, "padding": padding}]},
                    (2, 7, 9))
    assert a.output_shape == (3, 7 - 2 + 2 * padding[0], 9 - 2 + 2 * padding[1])


@pytest.mark.torch
@pytest.mark.parametrize("op", ["maxpool", "avgpool"])
def test_builder_pool_width_padding(op):
    """Builder mutant: native pooling padding (h, w) built as (h, h)."""
    a = check_built({"layers": [{"op": op, "kernel": [3, 5], "stride": 1,
                                 "padding": [0, 2]}]}, (2, 7, 9))
    assert a.output_shape == (2, 5, 9)


@pytest.mark.torch
@pytest.mark.parametrize("pads", [[1, 1, 0, 1], [1, 1, 1, 0], [1, 1, 2, 0], [0, 0, 1, 2]])
def test_builder_conv_uneven_width_pads(pads):
    """Builder mutant: padding equal top/bottom but uneven left/right built as symmetric."""
    a = check_built({"layers": [{"op": "conv", "out": 3, "kernel": 3, "padding": pads}]},
                    (2, 7, 9))
    assert a.output_shape == (3, 7 - 2 + pads[0] + pads[1], 9 - 2 + pads[2] + pads[3])


@pytest.mark.torch
@pytest.mark.parametrize("op", ["maxpool", "avgpool"])
def test_builder_pool_uneven_width_pads(op):
    """Builder mutant: uneven left/right pooling padding built with PyTorch's symmetric one."""
    a = check_built({"layers": [{"op": op, "kernel": 3, "stride": 1,
                                 "padding": [1, 1, 0, 1]}]}, (2, 7, 9))
    assert a.output_shape == (2, 7, 8)


@pytest.mark.torch
@pytest.mark.parametrize("multiplier", [2, 3])
def test_builder_depthwise_multiplier(multiplier):
    """Builder mutant: the depthwise multiplier dropped (out channels = in channels)."""
    a = check_built({"layers": [{"op": "depthwise", "kernel": 3, "padding": 1,
                                 "multiplier": multiplier, "bias": True}]}, (4, 6, 6))
    assert a.output_shape == (4 * multiplier, 6, 6)
    assert a.totals.params == 4 * multiplier * 9 + 4 * multiplier


@pytest.mark.torch
@pytest.mark.parametrize("input_shape", [(5, 4, 4), (5,)])
def test_builder_batchnorm_without_affine(input_shape):
    """Builder mutant: `affine: false` ignored (PyTorch would get a learned scale/shift)."""
    a = check_built({"layers": [{"op": "batchnorm", "affine": False}]}, input_shape)
    assert (a.totals.params, a.totals.buffers) == (0, 2 * 5 + 1)
    a = check_built({"layers": [{"op": "batchnorm", "affine": True}]}, input_shape)
    assert (a.totals.params, a.totals.buffers) == (2 * 5, 2 * 5 + 1)


@pytest.mark.torch
@pytest.mark.parametrize("op", ["maxpool", "avgpool"])
@pytest.mark.parametrize(("size", "kernel", "stride", "padding", "floor", "ceil"), [
    (7, 2, 2, 0, 3, 4),
    (8, 3, 2, 1, 4, 5),
    (4, 2, 3, 1, 2, 2),   # ceil would start a window in the padding: PyTorch drops it
    (10, 3, 3, 0, 3, 4),
])
def test_builder_pool_ceil_mode(op, size, kernel, stride, padding, floor, ceil):
    """Builder mutant: `ceil_mode` not passed to PyTorch's pooling."""
    for ceil_mode, expected in ((False, floor), (True, ceil)):
        a = check_built({"layers": [{"op": op, "kernel": kernel, "stride": stride,
                                     "padding": padding, "ceil_mode": ceil_mode}]},
                        (2, size, size))
        assert a.output_shape == (2, expected, expected)


def test_an_empty_variant_mapping_is_refused():
    spec = {"input": [3, 8, 8], "vars": {"w": 4}, "variants": {"small": {}},
            "layers": [{"op": "conv", "out": "w", "kernel": 3}]}
    with pytest.raises(cnncost.SpecError) as info:
        cnncost.analyze(spec)
    assert "variants.small" in str(info.value) and "at least one variable" in str(info.value)


def test_a_baseline_schema_version_of_1_0_is_refused(tmp_path):
    from cnncost.gate.baseline import load_baseline

    path = tmp_path / "b.json"
    path.write_text(json.dumps({"schema": "cnncost.baseline", "schema_version": 1.0,
                                "tool_version": "0", "git_commit": None, "models": {}}))
    with pytest.raises(cnncost.SpecError, match="schema_version: expected 1, received 1.0"):
        load_baseline(path)
