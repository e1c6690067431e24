"""Receptive field and effective stride per layer (cnncost.cost.receptive): the seeds'
statements, the published VGG/ResNet figures, closed forms per op, and the gradient
check on the built model (cnncost.pytorch.fieldcheck) for every bundled spec and for
random stacks."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnncost
from cnncost.api import build_graph
from cnncost.cost.receptive import geometry


def fields(spec) -> dict:
    graph = build_graph(spec)
    return {n.name: g.to_dict() for n, g in zip(graph.nodes, geometry(graph), strict=True)
            if g is not None}


def one(layers: list, input_shape=(3, 64, 64)) -> dict:
    return list(fields({"input": list(input_shape), "layers": layers}).values())[-1]


def test_two_3x3_convs_see_5x5_three_see_7x7():
    """The seed (VGG): stacked 3x3 convs have the field of one larger kernel."""
    conv = {"op": "conv", "out": 4, "kernel": 3, "padding": 1}
    assert one([conv])["receptive_field"] == [3, 3]
    assert one([conv, conv])["receptive_field"] == [5, 5]
    assert one([conv, conv, conv])["receptive_field"] == [7, 7]


def test_vgg16_pool5_and_resnets_match_the_published_figures():
    vgg = fields("vgg16")
    assert vgg["stage5.pool"]["receptive_field"] == [212, 212]
    assert vgg["stage5.pool"]["effective_stride"] == [32, 32]
    r50 = fields("resnet50")
    assert r50["layer4.block3.act"]["receptive_field"] == [427, 427]
    assert r50["layer4.block3.act"]["effective_stride"] == [32, 32]
    assert fields("resnet18")["layer4.block2.act"]["receptive_field"] == [435, 435]
    data = cnncost.analyze("vgg16", geometry=True).to_dict()
    assert data["receptive_field"]["receptive_field"] == [212, 212]
    layer = next(entry for entry in data["layers"] if entry["name"] == "stage5.pool")
    assert (layer["receptive_field"], layer["effective_stride"]) == ([212, 212], [32, 32])


@pytest.mark.parametrize("layer,field,stride,start", [
    ({"op": "conv", "out": 4, "kernel": 3, "dilation": 2}, [5, 5], [1, 1], [0, 0]),
    ({"op": "conv", "out": 4, "kernel": [3, 5], "stride": [2, 1], "padding": [1, 2]},
     [3, 5], [2, 1], [-1, -2]),
    ({"op": "conv", "out": 4, "kernel": 3, "stride": 2, "padding": "same"}, [3, 3], [2, 2],
     [0, 0]),  # Keras 'same' on 64 with stride 2: the odd pixel of padding at the end
    ({"op": "maxpool", "kernel": 3, "stride": 2, "padding": 1}, [3, 3], [2, 2], [-1, -1]),
    ({"op": "global_avgpool"}, [64, 64], [64, 64], [0, 0]),
    ({"op": "adaptive_avgpool", "output": 4}, [16, 16], [16, 16], [0, 0]),
    ({"op": "upsample", "scale": 2}, [1, 1], [0.5, 0.5], [0, 0]),
    ({"op": "conv_transpose", "out": 4, "kernel": 3, "stride": 2, "padding": 1}, [1, 1],
     [0.5, 0.5], [0, 0]),
    ({"op": "pad", "padding": [2, 0, 3, 0]}, [1, 1], [1, 1], [-2, -3]),
    ({"op": "crop", "size": [60, 50]}, [1, 1], [1, 1], [2, 7]),
])
def test_closed_forms_per_op(layer, field, stride, start):
    g = one([layer])
    assert (g["receptive_field"], g["effective_stride"], g["field_start"]) == (
        field, stride, start)


def test_branches_take_the_union_and_a_global_gate_sees_everything():
    g = one([{"op": "branches", "merge": "concat", "branches": {
        "a": [{"op": "conv", "out": 4, "kernel": 1}],
        "b": [{"op": "conv", "out": 4, "kernel": 5, "padding": 2}]}}])
    assert g["receptive_field"] == [5, 5] and g["note"] is None
    g = one([{"op": "branches", "merge": "concat", "branches": {
        "a": [{"op": "conv", "out": 4, "kernel": 1}],
        "b": [{"op": "conv", "out": 4, "kernel": 2, "padding": [0, 1, 0, 1]}]}}])
    assert "not centred alike" in g["note"]
    se = one([{"op": "conv", "out": 8, "kernel": 3, "padding": 1}, {"op": "se"}])
    assert se["whole_input"] is True


def test_the_cli_shows_the_field():
    from click.testing import CliRunner

    from cnncost.cli import main

    result = CliRunner().invoke(main, ["analyze", "vgg16", "--geometry", "--depth", "2"])
    assert result.exit_code == 0
    assert "receptive field          212 px, stride 32 at avgpool" in result.output
    csv_out = CliRunner().invoke(main, ["analyze", "lenet5", "--format", "csv"]).output
    assert csv_out.splitlines()[0].endswith("field_h,field_w,stride_h,stride_w,start_h,start_w")


# ------------------------------------------------------------------ gradients
@pytest.mark.torch
@pytest.mark.parametrize("name", sorted(cnncost.bundled_specs()))
def test_every_bundled_spec_field_is_confirmed_by_gradients(name):
    pytest.importorskip("torch")
    from cnncost.pytorch.fieldcheck import field_check

    checked = field_check(build_graph(name))
    if checked is None:  # an MLP (no feature map), or a layer norm before the last map,
        graph = build_graph(name)  # whose mean subtraction gradients cannot see through
        assert len(graph.input_shape) == 1 or any(n.op == "layernorm" for n in graph.nodes)
        return
    analytic, measured, layer = checked
    assert analytic == measured
    # at the centre, the exact field is the closed form analyze reports, clipped
    from cnncost.pytorch.fieldcheck import _clipped

    graph = build_graph(name)
    node = next(n for n in graph.nodes if n.name == layer)
    geo = geometry(graph)[node.index]
    _, h, w = graph.input_shape
    rows, cols = _clipped(geo.h, node.shape[1] // 2, h), _clipped(geo.w, node.shape[2] // 2, w)
    assert analytic[0] == (*rows, *cols)


@pytest.mark.torch
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_stacks_analytic_field_equals_gradient_field(data):
    pytest.importorskip("torch")
    from cnncost.pytorch.fieldcheck import field_check

    layers = []
    size = data.draw(st.integers(16, 48), label="size")
    for _ in range(data.draw(st.integers(1, 5), label="depth")):
        kind = data.draw(st.sampled_from(["conv", "conv", "pool", "branches", "residual"]))
        k = data.draw(st.integers(1, 4))
        if kind == "conv":
            layers.append({"op": "conv", "out": 3, "kernel": k,
                           "stride": data.draw(st.integers(1, 2)),
                           "dilation": data.draw(st.integers(1, 2)),
                           "padding": data.draw(st.sampled_from([0, 1, "same"]))})
        elif kind == "pool":
            layers.append({"op": data.draw(st.sampled_from(["maxpool", "avgpool"])),
                           "kernel": k, "stride": data.draw(st.integers(1, 2)),
                           "padding": data.draw(st.integers(0, k // 2))})
        elif kind == "branches":
            layers.append({"op": "branches", "merge": "add", "branches": {
                "a": [{"op": "conv", "out": 3, "kernel": 1}],
                "b": [{"op": "conv", "out": 3, "kernel": 3, "padding": 1}]}})
        else:
            layers.append({"op": "residual", "shortcut": "identity", "layers": [
                {"op": "conv", "out": 3, "kernel": 3, "padding": 1, "act": "relu"}]})
    spec = {"input": [3, size, size], "layers": layers}
    try:
        graph = build_graph(spec)
    except cnncost.SpecError:
        return  # a stack cnncost rejects for this size (tested elsewhere)
    checked = field_check(graph)
    if checked is not None:
        assert checked[0] == checked[1], (layers, checked)


@pytest.mark.torch
def test_resnet18_field_of_435_is_measured_whole_on_a_larger_input():
    """At 224 the 435-pixel field is clipped by the image; at 480 the centre of layer4's
    15x15 map sees a whole 435x435 window, and the gradients say so."""
    pytest.importorskip("torch")
    from cnncost.pytorch.fieldcheck import field_check

    analytic, measured, layer = field_check(build_graph("resnet18", input="3x480x480"))
    assert layer == "layer4.block2.act" and analytic == measured
    rows_first, rows_last, cols_first, cols_last = measured[0]
    assert rows_last - rows_first + 1 == 435 == cols_last - cols_first + 1
