"""Property: for random valid architectures, `cnncost verify` finds no disagreement.

Hypothesis writes random specs: convs with random kernel (square or not), stride,
dilation, groups and padding (int, [h, w], [top, bottom, left, right], `same`, `valid`),
depthwise, pointwise and transposed convs, max/avg/adaptive pooling (ceil mode, `same`,
count_include_pad), batch and layer norm, activations (PReLU, leaky ReLU, softmax, ...),
dropout, channel shuffle, channel splits (slice), spatial/channel padding (constant,
reflect, replicate), centre crops, upsampling, layer scale, Keras rescaling and
normalization, batch norms with eps/momentum/center/scale, residual blocks with identity
and projection shortcuts,
parallel branches merged by concat or add, squeeze-and-excitation, global pooling and
linear heads, on random input sizes. (Not `opaque`: it stands for a module the spec does
not describe, so there is no network to build and compare it with; its counts and
verify's placeholders are tested in tests/test_opaque.py.) Each spec is built in PyTorch
by the builder and
every layer's output shape, params, buffers and MACs must equal the analytic ones
(meta device: no memory, no arithmetic). A layer the analytic engine rejects for the
current shape is not kept, so every example is a valid spec.

Edge cases are pinned as explicit examples (run on every CI run whatever hypothesis
draws): ceil-mode windows that would start in the padding, Keras `same` pooling with
an odd total and dilation, transposed convs with output padding, average pooling
without padding in the divisor. Any failure hypothesis finds goes there too (none
has so far: 5,000 examples were run while writing this test).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnncost
from cnncost.errors import SpecError

pytest.importorskip("torch")
from cnncost.pytorch.verification import verify  # noqa: E402

pytestmark = pytest.mark.torch

ACTS = ["relu", "relu6", "silu", "gelu", "hardswish", "hardsigmoid", "sigmoid", "tanh", "elu",
        "leaky_relu", "prelu", "softmax", "none"]


def _padding(draw):
    kind = draw(st.sampled_from(["same", "valid", "int", "pair", "sides"]))
    if kind in ("same", "valid"):
        return kind
    if kind == "int":
        return draw(st.integers(0, 2))
    if kind == "pair":
        return [draw(st.integers(0, 2)), draw(st.integers(0, 2))]
    return [draw(st.integers(0, 2)) for _ in range(4)]


def _kernel(draw, top=5):
    if draw(st.booleans()):
        return draw(st.integers(1, top))
    return [draw(st.integers(1, top)), draw(st.integers(1, top))]


def _conv_fields(draw, c):
    groups = draw(st.sampled_from([g for g in (1, 2, 3, 4) if c % g == 0]))
    return {"op": "conv", "out": groups * draw(st.integers(1, 4)), "kernel": _kernel(draw),
            "stride": draw(st.sampled_from([1, 1, 2, 3, [1, 2]])),
            "dilation": draw(st.sampled_from([1, 1, 2])), "padding": _padding(draw),
            "groups": groups, "bias": draw(st.booleans()),
            "norm": draw(st.sampled_from(["none", "batchnorm", "layernorm"])),
            "act": draw(st.sampled_from(ACTS))}


def draw_layer(draw, shape):
    """One random layer for an input of `shape` (C, H, W)."""
    c = shape[0]
    kind = draw(st.sampled_from([
        "conv", "conv", "conv", "depthwise", "pointwise", "transpose", "pool", "pool",
        "adaptive", "norm", "act", "misc", "shuffle", "residual", "residual", "branches",
        "se", "split", "pad", "crop", "upsample", "affine"]), label="kind")
    if kind == "conv":
        return _conv_fields(draw, c)
    if kind == "depthwise":
        return {"op": "depthwise", "kernel": _kernel(draw), "multiplier": draw(st.integers(1, 2)),
                "stride": draw(st.integers(1, 2)), "dilation": draw(st.integers(1, 2)),
                "padding": _padding(draw), "bias": draw(st.booleans()),
                "norm": draw(st.sampled_from(["none", "batchnorm"])),
                "act": draw(st.sampled_from(ACTS))}
    if kind == "pointwise":
        groups = draw(st.sampled_from([g for g in (1, 2) if c % g == 0]))
        return {"op": "pointwise", "out": groups * draw(st.integers(1, 6)), "groups": groups,
                "stride": draw(st.integers(1, 2)), "bias": draw(st.booleans())}
    if kind == "transpose":
        stride = draw(st.integers(1, 3))
        dilation = draw(st.integers(1, 2))
        groups = draw(st.sampled_from([g for g in (1, 2) if c % g == 0]))
        return {"op": "conv_transpose", "out": groups * draw(st.integers(1, 4)),
                "kernel": _kernel(draw, 4), "stride": stride, "dilation": dilation,
                "padding": draw(st.integers(0, 1)), "groups": groups,
                "output_padding": draw(st.integers(0, max(stride, dilation) - 1)),
                "bias": draw(st.booleans())}
    if kind == "pool":
        op = draw(st.sampled_from(["maxpool", "avgpool"]))
        k = draw(st.integers(1, 4))
        layer = {"op": op, "kernel": k}
        if draw(st.booleans()):
            layer["stride"] = draw(st.integers(1, 3))
        if draw(st.booleans()):
            layer["padding"] = "same"
        else:
            layer["padding"] = draw(st.integers(0, k // 2))
            layer["ceil_mode"] = draw(st.booleans())
        if op == "avgpool":
            layer["count_include_pad"] = draw(st.booleans())
        elif draw(st.booleans()):
            layer["dilation"] = 2
        return layer
    if kind == "adaptive":
        return {"op": draw(st.sampled_from(["adaptive_avgpool", "adaptive_maxpool"])),
                "output": [draw(st.integers(1, 5)), draw(st.integers(1, 5))]}
    if kind == "norm":
        layer = {"op": draw(st.sampled_from(["batchnorm", "layernorm"])),
                 "affine": draw(st.booleans()), "eps": draw(st.sampled_from([1e-5, 1e-3]))}
        if layer["op"] == "batchnorm":
            layer.update(center=draw(st.booleans()), scale=draw(st.booleans()),
                         momentum=draw(st.sampled_from([0.1, 0.01])))
        return layer
    if kind == "split":  # ShuffleNetV2: half the channels pass, half are transformed
        if c < 2:
            return "identity"
        cut = draw(st.integers(1, c - 1))
        return {"op": "branches", "merge": "concat", "branches": {
            "keep": [{"op": "slice", "stop": cut}],
            "work": [{"op": "slice", "start": cut},
                     {"op": "conv", "out": c - cut, "kernel": 1, "norm": "batchnorm",
                      "act": "relu"}]}}
    if kind == "pad":
        mode = draw(st.sampled_from(["constant", "reflect", "replicate"]))
        layer = {"op": "pad", "padding": [draw(st.integers(0, 2)) for _ in range(4)],
                 "mode": mode}
        if mode == "constant":
            layer["channels"] = [draw(st.integers(0, 2)), draw(st.integers(0, 2))]
        return layer
    if kind == "crop":
        return {"op": "crop", "size": [draw(st.integers(1, max(1, shape[1]))),
                                       draw(st.integers(1, max(1, shape[2])))]}
    if kind == "upsample":
        if draw(st.booleans()):
            return {"op": "upsample", "scale": [draw(st.integers(1, 2)), draw(st.integers(1, 3))],
                    "mode": draw(st.sampled_from(["nearest", "bilinear"]))}
        return {"op": "upsample", "size": [draw(st.integers(1, 20)), draw(st.integers(1, 20))],
                "mode": "bilinear", "align_corners": draw(st.booleans())}
    if kind == "affine":
        return draw(st.sampled_from([{"op": "scale", "init": 1e-6}, "normalization",
                                     {"op": "rescaling", "scale": 0.5, "offset": -1}]))
    if kind == "act":
        act = draw(st.sampled_from(ACTS[:-1]))
        if act == "prelu":
            return {"op": "prelu", "per_channel": draw(st.booleans())}
        return act
    if kind == "misc":
        return draw(st.sampled_from(["identity", "dropout"]))
    if kind == "shuffle":
        return {"op": "channel_shuffle",
                "groups": draw(st.sampled_from([g for g in (1, 2, 3) if c % g == 0]))}
    if kind == "residual":
        stride = draw(st.sampled_from([1, 1, 2]))
        out = draw(st.sampled_from([c, c, c * 2, 4]))
        return {"op": "residual",
                "shortcut": draw(st.sampled_from(["auto", "projection", "if_match"])),
                "layers": [
                    {"op": "conv", "out": out, "kernel": 3, "stride": stride, "padding": 1,
                     "bias": False, "norm": "batchnorm", "act": "relu"},
                    {"op": "conv", "out": out, "kernel": draw(st.sampled_from([1, 3])),
                     "padding": "same", "bias": False, "norm": "batchnorm"}],
                "post": draw(st.sampled_from([[], ["relu"]]))}
    if kind == "branches":
        stride = draw(st.integers(1, 2))
        merge = draw(st.sampled_from(["concat", "add"]))
        out = draw(st.integers(1, 6))
        count = draw(st.integers(2, 3))
        branches = {}
        for i in range(count):
            if draw(st.booleans()):
                branch = [{"op": "conv", "out": out if merge == "add" else draw(st.integers(1, 6)),
                           "kernel": draw(st.sampled_from([1, 3, 5])), "stride": stride,
                           "padding": "same", "bias": draw(st.booleans())}]
            else:
                branch = [{"op": "maxpool", "kernel": 3, "stride": stride, "padding": "same"},
                          {"op": "pointwise", "out": out if merge == "add" else
                           draw(st.integers(1, 6))}]
            branches[f"b{i}"] = branch
        return {"op": "branches", "merge": merge, "branches": branches}
    return {"op": "se", "ratio": draw(st.sampled_from([1, 2, 4, 16]))}


def draw_head(draw):
    head = []
    if draw(st.booleans()):
        head.append({"op": draw(st.sampled_from(["global_avgpool", "global_maxpool"])),
                     "keepdims": False})
    else:
        head.append("flatten")
    if draw(st.booleans()):
        head.append({"op": draw(st.sampled_from(["batchnorm", "layernorm"]))})
    head.append({"op": "linear", "out": draw(st.integers(1, 12)), "bias": draw(st.booleans()),
                 "act": draw(st.sampled_from(["none", "relu", "softmax", "prelu"]))})
    return head


def valid(spec: dict):
    try:
        return cnncost.build_graph(spec)
    except SpecError:
        return None


@st.composite
def architectures(draw):
    shape = (draw(st.integers(1, 8), label="channels"), draw(st.integers(4, 33), label="h"),
             draw(st.integers(4, 33), label="w"))
    spec = {"input": list(shape), "layers": []}
    for _ in range(draw(st.integers(1, 6), label="depth")):
        layer = draw_layer(draw, shape)
        spec["layers"].append(layer)
        graph = valid(spec)
        if graph is None:  # not valid on this shape (e.g. kernel larger than the map)
            spec["layers"].pop()
            continue
        shape = graph.nodes[graph.output].shape
        if len(shape) != 3:
            break
    if len(shape) == 3:
        head = draw_head(draw)
        spec["layers"] += head
        if valid(spec) is None:  # e.g. layer norm on a 1-feature vector
            del spec["layers"][-len(head):]
    return spec


def check(spec: dict) -> None:
    result = verify(spec, device="meta", latency_runs=0)
    bad = [(c.name, c.mismatches(), c.analytic, c.measured) for c in result.mismatched_layers()]
    assert result.ok, (spec, bad, result.totals)


PINNED = [
    # ceil mode: the last window would start in the right padding and is dropped
    {"input": [2, 5, 5], "layers": [{"op": "maxpool", "kernel": 2, "stride": 2, "padding": 1,
                                     "ceil_mode": True}, "flatten", {"op": "linear", "out": 3}]},
    # Keras 'same' pooling, odd total padding, dilation 2 (padded explicitly with -inf)
    {"input": [3, 7, 6], "layers": [{"op": "maxpool", "kernel": 3, "stride": 2,
                                     "dilation": 2, "padding": "same"},
                                    {"op": "avgpool", "kernel": 2, "stride": 1,
                                     "padding": "same", "count_include_pad": False},
                                    {"op": "global_avgpool", "keepdims": False},
                                    {"op": "linear", "out": 2}]},
    # transposed conv with output padding and groups, then an uneven 'same' conv
    {"input": [4, 5, 7], "layers": [{"op": "conv_transpose", "out": 6, "kernel": 3,
                                     "stride": 2, "output_padding": 1, "groups": 2,
                                     "padding": 1},
                                    {"op": "conv", "out": 4, "kernel": [2, 4], "stride": 3,
                                     "padding": "same", "norm": "layernorm", "act": "prelu"},
                                    "flatten", {"op": "linear", "out": 5}]},
    # projection residual with stride, SE, concat branches and a channel shuffle
    {"input": [6, 9, 9], "layers": [
        {"op": "residual", "shortcut": "projection", "layers": [
            {"op": "conv", "out": 8, "kernel": 3, "stride": 2, "padding": 1,
             "norm": "batchnorm", "act": "relu"}]},
        {"op": "se", "ratio": 4},
        {"op": "branches", "merge": "concat", "branches": {
            "a": [{"op": "pointwise", "out": 3}],
            "b": [{"op": "maxpool", "kernel": 3, "stride": 1, "padding": "same"},
                  {"op": "pointwise", "out": 3}]}},
        {"op": "channel_shuffle", "groups": 2},
        {"op": "global_maxpool", "keepdims": False}, {"op": "linear", "out": 4}]},
]


@pytest.mark.parametrize("spec", PINNED, ids=["ceil", "same-pool", "transpose", "structure"])
def test_pinned_edge_cases(spec):
    assert valid(spec) is not None
    check(spec)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.data_too_large])
@given(spec=architectures())
def test_random_architectures_verify(spec):
    assert valid(spec) is not None
    check(spec)
