"""The language 2.0 ops: slice, pad, crop, upsample, scale, rescaling, normalization, and the
batch/layer norm fields eps, momentum, center, scale.

Closed forms for shapes and counts, errors for what PyTorch or Keras would refuse, and,
where torch is installed, the model cnncost builds computes the same function as an
independent torch expression of the op (same weights, same input): not only the counts.
"""

from __future__ import annotations

import pytest

import cnncost
from cnncost import SpecError


def rows(layers: list, input_shape=(8, 10, 12), **spec) -> dict:
    result = cnncost.analyze({"input": list(input_shape), "layers": layers, **spec})
    return {r.name: r for r in result.rows}


def last(layer: dict, input_shape=(8, 10, 12)):
    result = cnncost.analyze({"input": list(input_shape), "layers": [layer]})
    return result.rows[-1], result.totals


def error(layer: dict, input_shape=(8, 10, 12)) -> str:
    with pytest.raises(SpecError) as info:
        cnncost.analyze({"input": list(input_shape), "layers": [layer]})
    return str(info.value.problems[0])


# ------------------------------------------------------------------ closed forms
@pytest.mark.parametrize("start,stop,channels", [(0, None, 8), (2, 5, 3), (0, 4, 4),
                                                  (4, None, 4), (7, 8, 1)])
def test_slice(start, stop, channels):
    layer = {"op": "slice", "start": start} | ({"stop": stop} if stop is not None else {})
    row, totals = last(layer)
    assert (row.shape, row.params, row.macs, row.other_ops, row.act_bytes) == (
        (channels, 10, 12), 0, 0, 0, 0)  # a view: no new memory


def test_two_slices_split_a_map_and_concat_joins_them():
    r = rows([{"op": "slice", "name": "a", "stop": 3},
              {"op": "slice", "name": "b", "from": "input", "start": 3},
              {"op": "concat", "name": "c", "inputs": ["b", "a"]}])
    assert (r["a"].shape, r["b"].shape, r["c"].shape) == ((3, 10, 12), (5, 10, 12), (8, 10, 12))


@pytest.mark.parametrize("start,stop", [(3, 3), (5, 2), (0, 9), (8, None)])
def test_slice_outside_the_channels_is_refused(start, stop):
    layer = {"op": "slice", "start": start} | ({"stop": stop} if stop is not None else {})
    assert "not a non-empty range of the input's 8 channels" in error(layer)


@pytest.mark.parametrize("padding,channels,shape", [
    (1, [0, 0], (8, 12, 14)), ([1, 2], [0, 0], (8, 12, 16)),
    ([1, 2, 3, 4], [0, 0], (8, 13, 19)), (0, [4, 4], (16, 10, 12)), (0, [0, 3], (11, 10, 12))])
def test_pad(padding, channels, shape):
    row, _ = last({"op": "pad", "padding": padding, "channels": channels})
    assert (row.shape, row.params, row.macs, row.other_ops) == (shape, 0, 0, 0)
    assert row.act_bytes == 4 * shape[0] * shape[1] * shape[2]  # a new tensor


def test_pad_refusals():
    assert "channel padding needs mode 'constant'" in error(
        {"op": "pad", "channels": [1, 1], "mode": "reflect"})
    assert "reflect padding must be smaller than the input (10x12)" in error(
        {"op": "pad", "padding": [10, 0, 0, 0], "mode": "reflect"})
    assert "'same'" in error({"op": "pad", "padding": "same"})


def test_crop():
    row, _ = last({"op": "crop", "size": [6, 7]})
    assert (row.shape, row.params, row.other_ops, row.act_bytes) == ((8, 6, 7), 0, 0, 0)
    assert "cannot crop 10x12 to the larger 11x12" in error({"op": "crop", "size": [11, 12]})


@pytest.mark.parametrize("layer,shape,ops_per_out", [
    ({"op": "upsample"}, (8, 20, 24), 0),
    ({"op": "upsample", "scale": 3}, (8, 30, 36), 0),
    ({"op": "upsample", "scale": [2, 1], "mode": "bilinear"}, (8, 20, 12), 7),
    ({"op": "upsample", "size": [7, 30], "mode": "bilinear", "align_corners": True},
     (8, 7, 30), 7)])
def test_upsample(layer, shape, ops_per_out):
    row, _ = last(layer)
    assert (row.shape, row.params, row.macs) == (shape, 0, 0)
    assert row.other_ops == ops_per_out * shape[0] * shape[1] * shape[2]


def test_upsample_refusals():
    assert "not both" in error({"op": "upsample", "scale": 2, "size": 4})
    assert "align_corners applies to mode 'bilinear' only" in error(
        {"op": "upsample", "align_corners": True})


def test_scale():
    row, _ = last({"op": "scale", "init": 1e-6})
    assert (row.params, row.macs, row.other_ops) == (8, 0, 8 * 10 * 12)
    row, _ = last({"op": "scale"}, (16,))
    assert (row.shape, row.params) == ((16,), 16)


def test_rescaling_and_normalization():
    row, _ = last({"op": "rescaling", "scale": 1 / 255})
    assert (row.params, row.buffers, row.other_ops) == (0, 0, 8 * 10 * 12)
    row, _ = last({"op": "rescaling", "scale": 2, "offset": -1})
    assert row.other_ops == 2 * 8 * 10 * 12
    row, totals = last({"op": "normalization"}, (3, 10, 12))
    assert (row.params, row.buffers, row.keras_nontrainable) == (0, 7, 7)
    assert totals.keras_params == 7  # Keras EfficientNet's 7 weights (C = 3: 2C + 1)


@pytest.mark.parametrize("affine,center,scale,params", [
    (True, True, True, 16), (True, False, True, 8), (True, True, False, 8),
    (True, False, False, 0), (False, True, True, 0)])
def test_batchnorm_center_and_scale(affine, center, scale, params):
    row, totals = last({"op": "batchnorm", "affine": affine, "center": center,
                        "scale": scale})
    assert (row.params, row.buffers, row.keras_nontrainable) == (params, 17, 16)


def test_norm_field_checks():
    assert "expected a positive number, received 0" in error({"op": "batchnorm", "eps": 0})
    assert "expected a number in (0, 1]" in error({"op": "batchnorm", "momentum": 1.5})
    assert "expected a positive number" in error({"op": "layernorm", "eps": -1})


# ------------------------------------------------------------------ same function in torch
torch_cases = pytest.mark.torch


def built(layers: list, input_shape=(8, 10, 12), **spec):
    torch = pytest.importorskip("torch")
    model = cnncost.build({"input": list(input_shape), "layers": layers, **spec}).eval()
    torch.manual_seed(0)
    x = torch.randn(2, *input_shape)
    with torch.no_grad():
        return model, x, model(x)


@torch_cases
def test_slice_pad_crop_compute_what_torch_does():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    _, x, y = built([{"op": "slice", "start": 2, "stop": 6}])
    assert torch.equal(y, x[:, 2:6])
    _, x, y = built([{"op": "pad", "padding": [1, 2, 3, 4], "value": 0.5}])
    assert torch.equal(y, F.pad(x, (3, 4, 1, 2), value=0.5))
    _, x, y = built([{"op": "pad", "channels": [2, 6]}])  # option-A shortcut padding
    assert torch.equal(y, torch.cat([x.new_zeros(2, 2, 10, 12), x, x.new_zeros(2, 6, 10, 12)], 1))
    for mode in ("reflect", "replicate"):
        _, x, y = built([{"op": "pad", "padding": [2, 1, 0, 3], "mode": mode}])
        assert torch.equal(y, F.pad(x, (0, 3, 2, 1), mode=mode))
    _, x, y = built([{"op": "crop", "size": [5, 7]}])
    assert torch.equal(y, x[:, :, 2:7, 2:9])  # (10 - 5) // 2 = 2, (12 - 7) // 2 = 2


@torch_cases
def test_upsample_computes_what_interpolate_does():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    _, x, y = built([{"op": "upsample", "scale": [2, 3]}])
    assert torch.equal(y, x.repeat_interleave(2, 2).repeat_interleave(3, 3))
    _, x, y = built([{"op": "upsample", "size": [15, 17], "mode": "bilinear"}])
    assert torch.equal(y, F.interpolate(x, size=(15, 17), mode="bilinear", align_corners=False))
    _, x, y = built([{"op": "upsample", "mode": "bilinear", "align_corners": True}])
    assert torch.equal(y, F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True))


@torch_cases
def test_scale_rescaling_normalization_compute_their_formulas():
    torch = pytest.importorskip("torch")
    model, x, y = built([{"op": "scale", "init": 1e-6}])
    assert torch.equal(y, x * 1e-6)
    weight = torch.arange(8.0).reshape(8, 1, 1)
    with torch.no_grad():
        model.get_submodule("scale1").scale.copy_(weight)
        assert torch.equal(model(x), x * weight)
    _, x, y = built([{"op": "rescaling", "scale": 1 / 255, "offset": -1}])
    assert torch.equal(y, x * (1 / 255) + -1)
    model, x, _ = built([{"op": "normalization"}], (3, 4, 4))
    mean, var = torch.tensor([0.5, -1.0, 2.0]), torch.tensor([4.0, 0.25, 0.0])
    norm = model.get_submodule("normalization1")
    norm.mean.copy_(mean.reshape(3, 1, 1))
    norm.variance.copy_(var.reshape(3, 1, 1))
    expected = (x - mean.reshape(3, 1, 1)) / torch.clamp(var.sqrt(), min=1e-7).reshape(3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(model(x), expected, rtol=0, atol=0)


@torch_cases
def test_norm_fields_reach_the_built_model():
    torch = pytest.importorskip("torch")
    model, x, y = built([{"op": "batchnorm", "eps": 0.001, "momentum": 0.01},
                         {"op": "layernorm", "eps": 1e-6}],
                        defaults={})
    bn, ln = model.get_submodule("batchnorm1"), model.get_submodule("layernorm1")
    assert (bn.eps, bn.momentum, ln.eps) == (0.001, 0.01, 1e-6)
    # Keras BatchNormalization(scale=False): beta only, the running statistics as usual
    model, x, y = built([{"op": "batchnorm", "scale": False, "eps": 0.001}])
    bn = model.get_submodule("batchnorm1")
    assert bn.weight is None and bn.bias.shape == (8,)
    with torch.no_grad():
        bn.bias.copy_(torch.arange(8.0))
        bn.running_mean.copy_(torch.full((8,), 0.5))
        bn.running_var.copy_(torch.full((8,), 2.0))
        expected = (x - 0.5) / torch.sqrt(torch.tensor(2.0 + 0.001)) + torch.arange(8.0).reshape(
            8, 1, 1)
        assert torch.allclose(model(x), expected, atol=1e-6)
    assert sum(b.numel() for b in model.buffers()) == 17
