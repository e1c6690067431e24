"""Closed-form checks of every op's shape and cost rules, and a torch cross-check of the
window arithmetic (output size, params, MACs) where torch is installed."""

from __future__ import annotations

import math

import pytest

import cnncost
from cnncost.cost.ops import OPS, canonical
from cnncost.cost.ops.act import ACTIVATIONS
from cnncost.cost.ops.base import names_in
from cnncost.cost.ops.norm import NORMS
from cnncost.cost.ops.geometry import same_pads
from cnncost.cost.ops.pool import adaptive_reads


def one(layer: dict, input_shape=(32, 56, 56)) -> cnncost.Row:
    """Analyze a one-layer spec and return that layer's row."""
    result = cnncost.analyze({"input": list(input_shape), "layers": [layer]})
    assert len(result.rows) == 2
    return result.rows[1]


def conv_out(n, k, s=1, p=0, d=1):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


@pytest.mark.parametrize("c_in,c_out,k,s,p,d,g,h", [
    (32, 64, 3, 1, 1, 1, 1, 56),     # standard
    (32, 64, 3, 2, 1, 1, 1, 56),     # strided
    (32, 64, 3, 1, 2, 2, 1, 56),     # dilated
    (32, 64, 3, 1, 1, 1, 4, 56),     # grouped
    (32, 32, 3, 1, 1, 1, 32, 56),    # depthwise via groups
    (32, 64, 4, 2, 1, 1, 1, 57),     # even kernel, odd size
    (32, 16, 1, 1, 0, 1, 1, 7),      # pointwise
    (32, 64, 7, 3, 3, 2, 2, 31),     # everything at once
])
def test_conv_closed_form(c_in, c_out, k, s, p, d, g, h):
    row = one({"op": "conv", "out": c_out, "kernel": k, "stride": s, "padding": p,
               "dilation": d, "groups": g, "bias": True}, (c_in, h, h))
    o = conv_out(h, k, s, p, d)
    assert row.shape == (c_out, o, o)
    weights = c_out * (c_in // g) * k * k
    assert row.params == weights + c_out
    assert row.weights == weights
    assert row.macs == weights * o * o
    assert row.flops == 2 * row.macs
    assert row.other_ops == c_out * o * o  # the bias adds


def test_conv_without_bias_and_rectangular_kernel():
    row = one({"op": "conv", "out": 8, "kernel": [1, 7], "padding": [0, 3], "bias": False},
              (4, 17, 17))
    assert row.shape == (8, 17, 17)
    assert row.params == 8 * 4 * 7
    assert row.macs == 8 * 4 * 7 * 17 * 17
    assert row.other_ops == 0


@pytest.mark.parametrize("size,k,s", [(224, 3, 1), (224, 3, 2), (225, 3, 2), (7, 2, 2), (8, 4, 3),
                                      (5, 1, 2), (13, 5, 4), (6, 6, 1)])
def test_same_padding_is_keras(size, k, s):
    """Keras 'same': output ceil(size / stride); odd total padding puts the extra at the end."""
    row = one({"op": "conv", "out": 4, "kernel": k, "stride": s, "padding": "same"}, (2, size, size))
    assert row.shape == (4, math.ceil(size / s), math.ceil(size / s))
    before, after = same_pads(size, k, s, 1)
    total = max((math.ceil(size / s) - 1) * s + k - size, 0)
    assert (before, after) == (total // 2, total - total // 2)


def test_same_padding_asymmetric_example():
    # 7x7 input, 2x2 kernel, stride 2: out 4, padding total 1 -> (0 before, 1 after)
    assert same_pads(7, 2, 2, 1) == (0, 1)
    # 224, 3x3, stride 2: out 112, total 1 -> (0, 1): TensorFlow pads bottom/right
    assert same_pads(224, 3, 2, 1) == (0, 1)


def test_valid_and_per_side_padding():
    assert one({"op": "conv", "out": 4, "kernel": 3, "padding": "valid"}, (2, 10, 10)).shape == (4, 8, 8)
    row = one({"op": "conv", "out": 4, "kernel": 3, "padding": [0, 1, 2, 3]}, (2, 10, 10))
    assert row.shape == (4, 10 + 1 - 2, 10 + 5 - 2)


def test_depthwise_and_multiplier():
    row = one({"op": "depthwise", "kernel": 3, "padding": 1, "multiplier": 2, "bias": False},
              (32, 112, 112))
    assert row.shape == (64, 112, 112)
    assert row.params == 64 * 9
    assert row.macs == 64 * 9 * 112 * 112


def test_seed_efficiency_table():
    """001 seed, 112x112x32: depthwise 3x3 = 3,612,672; pointwise 32->32 = 12,845,056;
    standard 3x3 32->32 = 115,605,504."""
    shape = (32, 112, 112)
    assert one({"op": "depthwise", "kernel": 3, "padding": "same"}, shape).macs == 3_612_672
    assert one({"op": "pointwise", "out": 32}, shape).macs == 12_845_056
    assert one({"op": "conv", "out": 32, "kernel": 3, "padding": "same"}, shape).macs == 115_605_504


def test_mobilenet_table3_example():
    """MobileNetV1 Table 3: 14x14x512 in, 3x3, 512 out."""
    shape = (512, 14, 14)
    std = one({"op": "conv", "out": 512, "kernel": 3, "padding": 1, "bias": False}, shape)
    assert (std.macs, std.params) == (462_422_016, 2_359_296)
    sep = cnncost.analyze({"input": list(shape), "layers": [
        {"op": "separable", "out": 512, "kernel": 3, "padding": 1, "bias": False}]})
    assert (sep.totals.macs, sep.totals.params) == (52_283_392, 266_752)
    assert [r.op for r in sep.rows[1:]] == ["depthwise", "pointwise"]


def test_conv_transpose():
    row = one({"op": "conv_transpose", "out": 16, "kernel": 4, "stride": 2, "padding": 1},
              (32, 14, 14))
    assert row.shape == (16, 28, 28)  # (14 - 1) * 2 - 2 + 3 + 1
    assert row.params == 32 * 16 * 16 + 16
    assert row.macs == 32 * 16 * 16 * 14 * 14  # input positions x weights (torch's counter)


def test_linear():
    result = cnncost.analyze({"input": [3, 4, 4], "layers": [
        "flatten", {"op": "linear", "out": 10}]})
    row = result.rows[2]
    assert row.shape == (10,)
    assert row.params == 48 * 10 + 10
    assert row.macs == 480
    assert result.rows[1].act_bytes == 0  # flatten is a view


@pytest.mark.parametrize("k,s,p,ceil,size", [(2, 2, 0, False, 7), (3, 2, 1, False, 112),
                                              (3, 2, 0, True, 56), (3, 2, 0, True, 7),
                                              (2, 2, 0, True, 5), (3, 3, 1, True, 10)])
def test_pool_output_size(k, s, p, ceil, size):
    row = one({"op": "maxpool", "kernel": k, "stride": s, "padding": p, "ceil_mode": ceil},
              (8, size, size))
    if ceil:
        expected = math.ceil((size + 2 * p - k) / s) + 1
        if (expected - 1) * s >= size + p:
            expected -= 1
    else:
        expected = (size + 2 * p - k) // s + 1
    assert row.shape == (8, expected, expected)
    assert row.params == 0 and row.macs == 0
    assert row.other_ops == k * k * 8 * expected * expected


def test_pool_stride_defaults_to_kernel():
    assert one({"op": "avgpool", "kernel": 2}, (8, 32, 32)).shape == (8, 16, 16)


def test_global_and_adaptive_pool():
    assert one({"op": "global_avgpool"}, (8, 7, 7)).shape == (8, 1, 1)
    assert one({"op": "global_maxpool", "keepdims": False}, (8, 7, 7)).shape == (8,)
    row = one({"op": "adaptive_avgpool", "output": 6}, (8, 13, 13))
    assert row.shape == (8, 6, 6)
    assert row.other_ops == 8 * adaptive_reads(13, 6) ** 2
    assert adaptive_reads(13, 6) == sum(math.ceil((i + 1) * 13 / 6) - (i * 13) // 6 for i in range(6))


def test_adaptive_reads_closed_form_is_the_sum_over_windows():
    for size in range(1, 40):
        for out in range(1, 90):
            windows = sum(math.ceil((i + 1) * size / out) - (i * size) // out for i in range(out))
            assert adaptive_reads(size, out) == windows, (size, out)


def test_adaptive_pool_larger_than_its_input():
    """PyTorch allows an output larger than the input (windows overlap); the cost is
    closed-form, so a huge output costs no time (it once ended in an internal error)."""
    row = one({"op": "adaptive_avgpool", "output": 10001}, (2, 7, 7))
    assert row.shape == (2, 10001, 10001)
    assert row.other_ops == 2 * (7 + 10001 - 1) ** 2  # one read per output: gcd(7, 10001) = 1
    row = one({"op": "adaptive_maxpool", "output": [10**8, 1]}, (1, 8, 8))
    assert row.other_ops == (8 + 10**8 - 8) * 8


def test_cost_rules_take_no_field_checks_of_their_own():
    """Validation is the field checks' and the shape rules' job: no cost rule raises OpError
    (a raise there escapes the located reporting and ends in an internal error)."""
    import ast
    import inspect
    import textwrap

    for name, op in OPS.items():
        tree = ast.parse(textwrap.dedent(inspect.getsource(op.cost)))
        raises = [n for n in ast.walk(tree) if isinstance(n, ast.Raise)]
        assert not raises, f"{name}: its cost rule raises; move the check to the shape rule"


@pytest.mark.parametrize("spec", sorted(cnncost.bundled_specs().values()), ids=lambda p: p.stem)
def test_derive_and_shape_rules_do_not_write_into_attrs(spec):
    """The op contract: derive and shape rules are pure. Each node of every bundled spec is
    re-run with read-only attributes (a write raises TypeError) and gives the same shape."""
    from types import MappingProxyType

    from cnncost.api import build_graph

    nodes = build_graph(spec).nodes
    for node in nodes[1:]:
        op, ins = OPS[node.op], [nodes[i].shape for i in node.inputs]
        fields = MappingProxyType({k: v for k, v in node.attrs.items() if k in op.fields})
        derived = op.derive(ins, fields) if op.derive else {}
        assert {**fields, **derived} == node.attrs, node.name
        assert op.shape(ins, MappingProxyType(node.attrs)) == node.shape, node.name


def test_batchnorm_counts():
    row = one({"op": "batchnorm"}, (16, 8, 8))
    assert (row.params, row.buffers, row.keras_nontrainable) == (32, 33, 32)
    assert row.other_ops == 2 * 16 * 64


def test_layernorm_and_prelu():
    assert one({"op": "layernorm"}, (16, 8, 8)).params == 32
    assert one({"op": "prelu"}, (16, 8, 8)).params == 1
    assert one({"op": "prelu", "per_channel": True}, (16, 8, 8)).params == 16


# Closed forms per activation on a C x H x W input: (params, other ops per element).
# A new activation fails test_every_activation_has_a_closed_form until it gets a row here.
ACTIVATION_FORMS = {
    "relu": (0, 1), "relu6": (0, 1), "leaky_relu": (0, 1), "elu": (0, 1), "gelu": (0, 1),
    "silu": (0, 1), "sigmoid": (0, 1), "hardsigmoid": (0, 1), "hardswish": (0, 1),
    "tanh": (0, 1), "prelu": (1, 1), "softmax": (0, 3),
}
REGISTERED_ACTS = names_in("act")


def test_every_activation_has_a_closed_form():
    assert {canonical(a) for a in REGISTERED_ACTS} == set(ACTIVATION_FORMS)
    assert ACTIVATIONS == REGISTERED_ACTS  # `act:` accepts every registered word


@pytest.mark.parametrize("act", REGISTERED_ACTS)
def test_activations_closed_form(act):
    params, per_element = ACTIVATION_FORMS[canonical(act)]
    row = one({"op": act}, (4, 5, 5))
    assert (row.shape, row.params, row.macs, row.other_ops) == ((4, 5, 5), params, 0,
                                                               per_element * 100)
    fused = cnncost.analyze({"input": [4, 5, 5], "layers": [
        {"op": "conv", "out": 4, "kernel": 1, "act": act}]}).rows[-1]
    assert (fused.name, fused.params, fused.other_ops) == ("conv1.act", params,
                                                           per_element * 100)


def test_every_norm_word_is_accepted():
    assert ("none", *names_in("norm")) == NORMS
    for norm in names_in("norm"):
        rows = cnncost.analyze({"input": [4, 5, 5], "layers": [
            {"op": "conv", "out": 4, "kernel": 1, "norm": norm}]}).rows
        assert rows[-1].name == "conv1.norm" and rows[-1].params == 8


def test_softmax_counts_three_ops():
    assert one({"op": "softmax"}, (10,)).other_ops == 30


def test_merges():
    result = cnncost.analyze({"input": [8, 4, 4], "layers": [
        {"op": "conv", "name": "a", "out": 8, "kernel": 1},
        {"op": "conv", "name": "b", "from": "input", "out": 8, "kernel": 1},
        {"op": "add", "name": "s", "inputs": ["a", "b", "input"]},
        {"op": "concat", "name": "c", "inputs": ["a", "b", "s"]},
        {"op": "global_avgpool", "name": "g"},
        {"op": "mul", "name": "m", "inputs": ["c", "g"]},
        {"op": "channel_shuffle", "groups": 4},
    ]})
    rows = {r.name: r for r in result.rows}
    assert rows["s"].other_ops == 2 * 8 * 16
    assert rows["c"].shape == (24, 4, 4) and rows["c"].other_ops == 0
    assert rows["m"].shape == (24, 4, 4) and rows["m"].other_ops == 24 * 16
    assert rows["channel_shuffle1"].shape == (24, 4, 4)


def test_every_op_has_docs_and_field_docs():
    for name, op in OPS.items():
        assert op.doc, name
        for fname, field in op.fields.items():
            assert field.doc, f"{name}.{fname}"


# --------------------------------------------------------------------- torch cross-check




@pytest.mark.torch
@pytest.mark.parametrize("k,s,p,d,g,h,w", [(3, 1, 1, 1, 1, 9, 9), (3, 2, 0, 1, 2, 10, 7),
                                            (5, 3, 2, 2, 4, 17, 23), (2, 2, 0, 1, 1, 7, 8),
                                            (1, 2, 0, 1, 8, 5, 5), (4, 1, 3, 3, 1, 12, 12)])
def test_conv_matches_torch(k, s, p, d, g, h, w):
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    conv = torch.nn.Conv2d(8, 16, k, stride=s, padding=p, dilation=d, groups=g)
    x = torch.zeros(1, 8, h, w)
    with FlopCounterMode(display=False) as counter:
        y = conv(x)
    row = one({"op": "conv", "out": 16, "kernel": k, "stride": s, "padding": p, "dilation": d,
               "groups": g}, (8, h, w))
    assert row.shape == tuple(y.shape[1:])
    assert row.params == sum(t.numel() for t in conv.parameters())
    assert row.flops == counter.get_total_flops()


@pytest.mark.torch
@pytest.mark.parametrize("k,s,p,ceil,h", [(3, 2, 0, True, 56), (3, 2, 1, False, 112),
                                          (2, 2, 0, True, 7), (3, 3, 1, True, 10), (3, 2, 1, True, 8)])
def test_pool_matches_torch(k, s, p, ceil, h):
    torch = pytest.importorskip("torch")
    y = torch.nn.MaxPool2d(k, s, p, ceil_mode=ceil)(torch.zeros(1, 3, h, h))
    assert one({"op": "maxpool", "kernel": k, "stride": s, "padding": p, "ceil_mode": ceil},
               (3, h, h)).shape == tuple(y.shape[1:])


@pytest.mark.torch
def test_conv_transpose_matches_torch():
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    layer = torch.nn.ConvTranspose2d(8, 12, 3, stride=2, padding=1, output_padding=1, groups=4)
    with FlopCounterMode(display=False) as counter:
        y = layer(torch.zeros(1, 8, 9, 9))
    row = one({"op": "conv_transpose", "out": 12, "kernel": 3, "stride": 2, "padding": 1,
               "output_padding": 1, "groups": 4}, (8, 9, 9))
    assert row.shape == tuple(y.shape[1:])
    assert row.params == sum(t.numel() for t in layer.parameters())
    assert row.flops == counter.get_total_flops()


# --------------------------------------------------------------------- limits
INT64_MAX = 2**63 - 1


def spec_file(tmp_path, text: str):
    path = tmp_path / "limits.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_batched_activation_tensor_limit_names_batch_and_largest_fit(tmp_path):
    """10^12 elements per activation tensor holds for the batched tensor, not per sample."""
    path = spec_file(tmp_path, "name: big\ninput: [3, 100, 100]\nlayers:\n"
                               "  - {op: conv, out: 1000, kernel: 3, padding: 1}\n"
                               "  - relu\n")
    fits = 10**12 // (1000 * 100 * 100)
    assert cnncost.analyze(path, batch=fits).totals.activation_bytes > 0
    with pytest.raises(cnncost.SpecError) as info:
        cnncost.analyze(path, batch=fits + 1)
    (problem,) = info.value.problems
    assert problem.loc.file == path and problem.loc.line == 4
    assert problem.path == "conv1"
    assert f"at batch {fits + 1:,} (--batch)" in problem.message
    assert f"the largest batch this model allows is {fits:,}" in problem.message


def test_counts_stay_within_int64(tmp_path):
    """Every count of an analysis fits a signed 64-bit integer: beyond it, an error names
    the layer where the total crosses 2^63 - 1 and the largest batch that fits."""
    path = spec_file(tmp_path, "name: wide\ninput: [10000000]\nlayers:\n"
                               "  - {op: linear, out: 10000000}\n")
    macs = 10**14  # per sample; FLOPs are 2 x MACs
    fits = INT64_MAX // (2 * macs)
    totals = cnncost.analyze(path, batch=fits).totals
    assert max(totals) <= INT64_MAX and totals.flops == 2 * macs * fits
    with pytest.raises(cnncost.SpecError) as info:
        cnncost.analyze(path, batch=fits + 1)
    (problem,) = info.value.problems
    assert (problem.loc.line, problem.path) == (4, "linear1")
    assert "FLOPs (2 x MACs)" in problem.message and "2^63 - 1" in problem.message
    assert f"the largest batch this model allows is {fits:,}" in problem.message


def test_a_layer_too_large_for_one_sample_is_named_without_batch_advice(tmp_path):
    path = spec_file(tmp_path, "name: huge\ninput: [3, 8, 8]\nlayers:\n"
                               "  - relu\n"
                               "  - {op: conv, out: 1000000, kernel: 1000001, padding: 500000}\n")
    with pytest.raises(cnncost.SpecError) as info:
        cnncost.analyze(path)
    assert {(p.loc.line, p.path) for p in info.value.problems} == {(5, "conv1")}
    assert all("implausibly large" in p.message and "--batch" not in p.message
               for p in info.value.problems)


def test_layers_of_built_in_blocks_are_located_at_their_call_even_when_replayed(tmp_path):
    """A replayed block's layers carry the line of their own call, not the first one's."""
    from cnncost.api import build_graph

    path = spec_file(tmp_path, "name: calls\ninput: [8, 8, 8]\nlayers:\n"
                               "  - {op: basic, out: 8}\n"
                               "  - {op: basic, out: 8}\n"
                               "  - {op: stage, block: basic, repeat: 3, with: {out: 8}}\n")
    lines = {}
    for node in build_graph(path).nodes[1:]:
        assert node.loc.file == path
        lines.setdefault(node.name.split(".")[0], set()).add(node.loc.line)
    assert lines == {"basic1": {4}, "basic2": {5}, "stage1": {6}}


def test_a_fused_norm_and_act_take_the_spec_defaults_of_their_op():
    """Regression: `defaults: {batchnorm: {affine: false}}` used to be ignored for the norm a
    conv creates with `norm: batchnorm` (the expansion hard-coded affine: true), a silent
    miscount of 2C params per layer. The fused norm and act get what a standalone one gets."""
    spec = {"input": [3, 8, 8],
            "defaults": {"batchnorm": {"affine": False, "eps": 0.001},
                         "leaky_relu": {"slope": 0.2}},
            "layers": [{"op": "conv", "out": 4, "kernel": 3, "norm": "batchnorm",
                        "act": "leaky_relu"},
                       {"op": "batchnorm"}]}
    rows = {r.name: r for r in cnncost.analyze(spec).rows}
    assert rows["conv1.norm"].params == 0 == rows["batchnorm1"].params
    assert rows["conv1.norm"].buffers == 2 * 4 + 1
    from cnncost.api import build_graph

    nodes = {n.name: n for n in build_graph(spec).nodes}
    assert nodes["conv1.norm"].attrs == nodes["batchnorm1"].attrs
    assert nodes["conv1.norm"].attrs["eps"] == 0.001
    assert nodes["conv1.act"].attrs["slope"] == 0.2
