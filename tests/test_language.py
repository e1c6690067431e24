"""The spec language: structure, naming, blocks, variables, defaults, memory, options."""

from __future__ import annotations

import pytest

import cnncost


def run(layers, input_shape=(8, 16, 16), **spec):
    return cnncost.analyze({"input": list(input_shape), "layers": layers, **spec})


def names(result):
    return [r.name for r in result.rows]


def row(result, name):
    return next(r for r in result.rows if r.name == name)


def test_auto_names_count_per_op_and_skip_explicit_names():
    result = run([{"op": "conv", "out": 8, "kernel": 1}, "relu",
                  {"op": "conv", "name": "conv2", "out": 8, "kernel": 1},
                  {"op": "conv", "out": 8, "kernel": 1}, "relu"])
    assert names(result) == ["input", "conv1", "relu1", "conv2", "conv3", "relu2"]


def test_norm_and_act_expand_to_a_named_group():
    result = run([{"op": "conv", "name": "c", "out": 8, "kernel": 3, "padding": 1,
                   "norm": "batchnorm", "act": "relu6"}])
    assert names(result) == ["input", "c.conv", "c.norm", "c.act"]
    assert [r.op for r in result.rows[1:]] == ["conv", "batchnorm", "relu6"]


def test_defaults_plain_and_per_op():
    result = run([{"op": "conv", "out": 8, "kernel": 1}, {"op": "global_avgpool", "keepdims": False},
                  {"op": "linear", "out": 4}],
                 defaults={"bias": False, "norm": "bn", "act": "relu",
                           "linear": {"bias": True, "norm": "none", "act": "none"}})
    assert names(result)[1:4] == ["conv1.conv", "conv1.norm", "conv1.act"]
    assert row(result, "conv1.conv").params == 64
    assert row(result, "linear1").params == 8 * 4 + 4


def test_residual_modes():
    body = [{"op": "conv", "out": 16, "kernel": 3, "stride": 2, "padding": 1, "bias": False}]
    auto = run([{"op": "residual", "name": "r", "layers": body, "shortcut": "auto"}])
    assert "r.shortcut" in names(auto) and "r.add" in names(auto)
    sc = row(auto, "r.shortcut")
    assert sc.shape == (16, 8, 8) and sc.params == 8 * 16 + 16  # 1x1 conv, stride 2, bias default
    same = [{"op": "conv", "out": 8, "kernel": 3, "padding": 1}]
    ident = run([{"op": "residual", "name": "r", "layers": same, "shortcut": "identity",
                  "post": ["relu"]}])
    assert names(ident) == ["input", "r.conv1", "r.add", "r.relu1"]
    assert row(ident, "r.add").other_ops == 8 * 16 * 16
    skip = run([{"op": "residual", "name": "r", "layers": body, "shortcut": "if_match"}])
    assert names(skip) == ["input", "r.conv1"]
    proj = run([{"op": "residual", "name": "r", "layers": same, "shortcut": "projection"}])
    assert "r.shortcut" in names(proj)
    custom = run([{"op": "residual", "name": "r", "layers": body,
                   "shortcut": [{"op": "avgpool", "kernel": 2}, {"op": "pointwise", "out": 16}]}])
    assert "r.shortcut.avgpool1" in names(custom) and "r.shortcut.pointwise1" in names(custom)


def test_projection_uses_norm_defaults():
    body = [{"op": "conv", "out": 16, "kernel": 1, "act": "none"}]
    result = run([{"op": "residual", "name": "r", "layers": body}],
                 defaults={"bias": False, "norm": "batchnorm"})
    assert [n for n in names(result) if "shortcut" in n] == ["r.shortcut.conv", "r.shortcut.norm"]


def test_branches_and_named_references():
    result = run([{"op": "branches", "name": "mix", "branches": {
        "a": [{"op": "pointwise", "out": 4}],
        "b": [{"op": "pointwise", "out": 2}, {"op": "conv", "out": 6, "kernel": 3, "padding": 1}],
    }}, {"op": "conv", "name": "tail", "from": "mix.b", "out": 3, "kernel": 1}])
    assert row(result, "mix.merge").shape == (10, 16, 16)
    assert names(result)[1:4] == ["mix.a.pointwise1", "mix.b.pointwise1", "mix.b.conv1"]
    assert row(result, "tail").params == 6 * 3 + 3


def test_from_and_inputs_reach_outer_names():
    result = run([{"op": "conv", "name": "stem", "out": 8, "kernel": 1},
                  {"op": "sequential", "name": "s", "layers": [
                      {"op": "conv", "name": "x", "out": 8, "kernel": 1},
                      {"op": "add", "name": "sum", "inputs": ["x", "stem"]}]},
                  {"op": "concat", "inputs": ["s.x", "s.sum", "input"]}])
    assert row(result, "concat1").shape == (24, 16, 16)


def test_when_skips_layers():
    spec = {"vars": {"pool": False}}
    layers = [{"op": "maxpool", "kernel": 2, "when": "pool"}, {"op": "conv", "out": 4, "kernel": 1}]
    assert names(run(layers, **spec)) == ["input", "conv1"]
    result = cnncost.analyze({"input": [8, 16, 16], "layers": layers, **spec}, set={"pool": True})
    assert names(result) == ["input", "maxpool1", "conv1"]


def test_stage_puts_stride_on_first_block_only():
    result = run([{"op": "stage", "name": "s", "block": "basic", "repeat": 3, "stride": 2,
                   "with": {"out": 16}}])
    assert row(result, "s.block1.conv1.conv").shape == (16, 8, 8)
    assert "s.block1.shortcut.conv" in names(result)
    assert row(result, "s.block2.conv1.conv").shape == (16, 8, 8)
    assert not any(n.startswith("s.block2.shortcut") for n in names(result))
    assert sum(n.endswith(".add") for n in names(result)) == 3


def test_user_blocks_params_defaults_and_in_channels():
    blocks = {"unit": {"params": {"out": None, "mid": "in_channels // 2", "pool": False},
                       "layers": [{"op": "maxpool", "kernel": 2, "when": "pool"},
                                  {"op": "pointwise", "name": "a", "out": "mid"},
                                  {"op": "pointwise", "name": "b", "out": "out"}]}}
    result = run([{"op": "unit", "out": 6}, {"op": "unit", "name": "u", "out": 4, "pool": True}],
                 blocks=blocks)
    assert row(result, "unit1.a").shape == (4, 16, 16)
    assert row(result, "u.a").shape == (3, 8, 8)  # in_channels of the second call is 6
    assert names(result)[-3:] == ["u.maxpool1", "u.a", "u.b"]


def test_spec_block_shadows_builtin():
    blocks = {"se": {"params": {}, "layers": ["identity"]}}
    assert names(run([{"op": "se"}], blocks=blocks)) == ["input", "se1.identity1"]


def test_builtin_se_and_inception():
    se = run([{"op": "se", "ratio": 4}], input_shape=(16, 8, 8))
    assert row(se, "se1.fc1.conv").shape == (4, 1, 1)
    assert row(se, "se1.scale").shape == (16, 8, 8)
    assert se.totals.params == (16 * 4 + 4) + (4 * 16 + 16)
    inc = run([{"op": "inception", "c1": 64, "c3_reduce": 96, "c3": 128, "c5_reduce": 16, "c5": 32,
                "pool_proj": 32}], input_shape=(192, 28, 28))
    assert inc.output_shape == (256, 28, 28)


def test_inverted_residual_residual_only_when_shapes_match():
    result = run([{"op": "inverted_residual", "name": "a", "out": 8, "expand": 1},
                  {"op": "inverted_residual", "name": "b", "out": 16, "stride": 2}])
    assert "a.add" in names(result) and "a.expand.conv" not in names(result)
    assert "b.add" not in names(result) and row(result, "b.expand.conv").shape == (48, 16, 16)


def test_separable_is_depthwise_then_pointwise():
    result = run([{"op": "separable", "name": "s", "out": 16, "kernel": 3, "padding": "same",
                   "act": "relu"}])
    assert names(result) == ["input", "s.depthwise", "s.pointwise.pointwise", "s.pointwise.act"]
    assert row(result, "s.depthwise").params == 8 * 9  # no bias on the depthwise part


def test_variants_and_sets_override_in_order():
    spec = {"input": [3, "res", "res"], "vars": {"res": 32, "c": 8},
            "variants": {"small": {"res": 16}},
            "layers": [{"op": "conv", "out": "c", "kernel": 1}]}
    assert cnncost.analyze(spec).output_shape == (8, 32, 32)
    assert cnncost.analyze(spec, variant="small").output_shape == (8, 16, 16)
    assert cnncost.analyze(spec, variant="small", set={"res": 8}).output_shape == (8, 8, 8)
    assert cnncost.analyze(spec, input="3x5x5").output_shape == (8, 5, 5)


def test_batch_and_dtype_scale_what_they_should():
    base = cnncost.analyze("resnet50")
    big = cnncost.analyze("resnet50", batch=8, dtype="fp16")
    assert big.totals.params == base.totals.params
    assert big.totals.macs == 8 * base.totals.macs
    assert big.totals.activation_bytes == base.totals.activation_bytes * 8 // 2
    assert big.totals.peak_activation_bytes == base.totals.peak_activation_bytes * 8 // 2
    assert big.totals.weight_bytes == base.totals.weight_bytes // 2


def test_peak_memory_chain_and_skip():
    # a chain: at most the input and output of one layer are alive
    chain = run([{"op": "pointwise", "out": 8}, {"op": "pointwise", "out": 8}], (8, 4, 4))
    assert chain.totals.peak_activation_bytes == 2 * 8 * 16 * 4
    # a skip keeps the block input alive across the block: input + a + b at the add
    skip = run([{"op": "residual", "shortcut": "identity", "layers": [
        {"op": "pointwise", "out": 8}, {"op": "pointwise", "out": 8}]}], (8, 4, 4))
    assert skip.totals.peak_activation_bytes == 3 * 8 * 16 * 4
    # views allocate nothing
    flat = run(["flatten", "identity", {"op": "linear", "out": 2}], (8, 4, 4))
    assert flat.totals.peak_activation_bytes == (128 + 2) * 4


def test_depth_collapse_sums_to_totals():
    result = cnncost.analyze("resnet50")
    for depth in (1, 2, 3):
        rows = result.collapse(depth)
        assert sum(r.params for r in rows) == result.totals.params
        assert sum(r.macs for r in rows) == result.totals.macs
        assert sum(r.act_bytes for r in rows) == result.totals.activation_bytes
    assert [r.name for r in result.collapse(1)][:3] == ["input", "stem", "pool"]


def test_to_dict_and_dataframe():
    result = cnncost.analyze("resnet50")
    data = result.to_dict(depth=1)
    assert data["totals"]["params"] == 25_557_032
    frame = result.to_dataframe()
    assert int(frame["macs"].sum()) == result.totals.macs
    assert len(frame) == len(result.rows)


def test_analytic_path_does_not_import_torch_or_pandas():
    import subprocess
    import sys

    code = ("import sys, cnncost, cnncost.cli; from cnncost.formats import render; "
            "a = cnncost.analyze('resnet50'); render('json', a); render('table', a); "
            "render('csv', a); render('markdown', a); "
            "print(sorted(m for m in ('torch', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("bad", [0, -1, True, 2.5])
def test_batch_must_be_positive_int(bad):
    with pytest.raises(cnncost.SpecError):
        cnncost.analyze("resnet50", batch=bad)


def test_bool_variables_accept_only_booleans():
    spec = {"input": [3, 8, 8], "vars": {"pool": False},
            "layers": [{"op": "maxpool", "kernel": 2, "when": "pool"}, "relu"]}
    with pytest.raises(cnncost.SpecError) as info:
        cnncost.analyze(spec, set={"pool": "yes"})
    assert "variable 'pool' is true or false" in str(info.value)


def test_projection_ignores_spec_variables_named_like_fields():
    """Only a block's own norm/bias parameters override the conv defaults of a projection."""
    spec = {"input": [4, 8, 8], "vars": {"norm": "batchnorm"},
            "defaults": {"norm": "none"},
            "blocks": {"b": {"params": {}, "shortcut": "auto",
                             "layers": [{"op": "pointwise", "out": 8}]}},
            "layers": [{"op": "b"}]}
    assert [r.name for r in cnncost.analyze(spec).rows if "shortcut" in r.name] == ["b1.shortcut"]


def test_references_into_replayed_blocks():
    """Blocks 2 and 3 are replays of one recorded expansion; names inside still resolve."""
    result = run([{"op": "stage", "name": "s", "block": "basic", "repeat": 3, "with": {"out": 8}},
                  {"op": "stage", "name": "t", "block": "basic", "repeat": 2, "stride": 2,
                   "with": {"out": 16}},
                  {"op": "concat", "name": "c", "inputs": ["s.block3.conv1", "s.block2.add"]},
                  {"op": "add", "name": "a", "inputs": ["t.block2.conv2", "t.block2.add"]}])
    assert row(result, "c").shape == (16, 16, 16)
    assert row(result, "a").shape == (16, 8, 8)
    graph = cnncost.build_graph({"input": [8, 16, 16], "layers": [
        {"op": "stage", "name": "s", "block": "basic", "repeat": 3, "with": {"out": 8}},
        {"op": "identity", "name": "x", "from": "s.block3.conv1"}]})
    by_name = {n.name: n for n in graph.nodes}
    assert graph.nodes[by_name["x"].inputs[0]].name == "s.block3.conv1.act"


def test_empty_blocks_nested_deeply_stay_fast():
    spec = {"input": [3, 8, 8],
            "blocks": {"empty": {"layers": [{"op": "relu", "when": False}]},
                       "outer": {"layers": [{"op": "stage", "block": "empty", "repeat": 10000}]}},
            "layers": [{"op": "stage", "block": "outer", "repeat": 10000}]}
    assert cnncost.analyze(spec).totals.layers == 0


def test_references_into_replays_nested_in_replays():
    spec = {"input": [8, 16, 16],
            "blocks": {"double": {"params": {}, "layers": [
                {"op": "stage", "name": "st", "block": "basic", "repeat": 3, "with": {"out": 8}}]}},
            "layers": [{"op": "double", "name": "d1"}, {"op": "double", "name": "d2"},
                       {"op": "double", "name": "d3"},
                       {"op": "identity", "name": "x", "from": "d3.st.block3.conv2"},
                       {"op": "identity", "name": "y", "from": "d2.st.block2.add"},
                       {"op": "identity", "name": "z", "from": "d1.st.block3.conv1"}]}
    graph = cnncost.build_graph(spec)
    by_name = {n.name: n for n in graph.nodes}
    source = {k: graph.nodes[by_name[k].inputs[0]].name for k in "xyz"}
    assert source == {"x": "d3.st.block3.conv2.norm", "y": "d2.st.block2.add",
                      "z": "d1.st.block3.conv1.act"}
