"""Property: for random valid layer stacks, the analytic engine equals PyTorch.

Hypothesis draws sequential stacks of convolutions (random kernel, stride, dilation,
groups, padding as int, per-side list, 'same' or 'valid', bias on or off), depthwise
convs, max/avg pooling (ceil mode, padding), batch norm, activations, residual adds,
channel splits (two slices and a concat), spatial and channel padding, centre crops,
upsampling, layer scale, Keras rescaling/normalization and gamma- or beta-only batch
norms, then flatten and a linear head, on random input sizes. Each stack is analyzed by
cnncost and translated here, independently of cnncost's code, into torch modules
(Keras 'same' as explicit F.pad); every layer's output shape, params, buffers and MACs
(FlopCounterMode // 2) must agree. Runs on the meta device: no memory, no arithmetic.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnncost

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

pytestmark = pytest.mark.torch


def keras_same(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    out = math.ceil(size / s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


class Pad(nn.Module):
    def __init__(self, pads: tuple[int, int, int, int], value: float = 0.0) -> None:
        super().__init__()
        self.pads, self.value = pads, value  # (top, bottom, left, right)

    def forward(self, x):
        top, bottom, left, right = self.pads
        return F.pad(x, (left, right, top, bottom), value=self.value)


class Residual(nn.Module):
    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x):
        return x + self.body(x)


class Split(nn.Module):
    """x[:, :cut] and x[:, cut:] concatenated again (the counts of a ShuffleNet split)."""

    def __init__(self, cut: int) -> None:
        super().__init__()
        self.cut = cut

    def forward(self, x):
        return torch.cat([x[:, :self.cut], x[:, self.cut:]], 1)


class ChannelPad(nn.Module):
    def __init__(self, pads, channels) -> None:
        super().__init__()
        self.pads, self.channels = pads, channels

    def forward(self, x):
        top, bottom, left, right = self.pads
        return F.pad(x, (left, right, top, bottom, *self.channels))


class Crop(nn.Module):
    def __init__(self, h: int, w: int) -> None:
        super().__init__()
        self.h, self.w = h, w

    def forward(self, x):
        top, left = (x.shape[2] - self.h) // 2, (x.shape[3] - self.w) // 2
        return x[:, :, top:top + self.h, left:left + self.w]


class LayerScale(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((c, 1, 1), 1e-6))

    def forward(self, x):
        return x * self.gamma


class KerasNormalization(nn.Module):
    """Keras Normalization's weights: mean and variance per channel and a count."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(c, 1, 1))
        self.register_buffer("variance", torch.ones(c, 1, 1))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    def forward(self, x):
        return (x - self.mean) / self.variance.sqrt()


class BetaOrGammaBatchNorm(nn.BatchNorm2d):
    """Keras BatchNormalization with center or scale off: one learned vector of C."""

    def __init__(self, c: int, center: bool) -> None:
        super().__init__(c, affine=False)
        self.beta = nn.Parameter(torch.zeros(c)) if center else None
        self.gamma = None if center else nn.Parameter(torch.ones(c))


def explicit_pads(padding, hw, k, s, d):
    if padding == "same":
        return (*keras_same(hw[0], k, s, d), *keras_same(hw[1], k, s, d))
    if padding == "valid":
        return (0, 0, 0, 0)
    if isinstance(padding, list):
        return tuple(padding)
    return (padding,) * 4


def torch_counts(modules, input_shape):
    model = nn.Sequential(*modules).to("meta").eval()
    x = torch.zeros(1, *input_shape, device="meta")
    with FlopCounterMode(display=False) as counter:
        y = model(x)
    return (sum(p.numel() for p in model.parameters()),
            sum(b.numel() for b in model.buffers()),
            counter.get_total_flops() // 2, tuple(y.shape[1:]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.filter_too_much])
@given(data=st.data())
def test_random_stacks_match_torch(data):
    c = data.draw(st.integers(1, 6), label="channels")
    h = data.draw(st.integers(4, 40), label="height")
    w = data.draw(st.integers(4, 40), label="width")
    spec, modules = draw_stack(data, [c, h, w])
    result = cnncost.analyze({"input": [c, h, w], "layers": spec})
    params, buffers, macs, out = torch_counts(modules, (c, h, w))
    assert result.output_shape == out
    assert (result.totals.params, result.totals.buffers, result.totals.macs) == (
        params, buffers, macs)


def draw_stack(data, shape):
    """Draw layers on `shape`, returning (spec layers, equivalent torch modules)."""
    layers, modules = [], []
    draw = data.draw
    for _ in range(draw(st.integers(1, 5), label="depth")):
        c, h, w = shape
        kind = draw(st.sampled_from(["conv", "conv", "depthwise", "pool", "bn_act", "residual",
                                     "split", "pad", "crop", "upsample", "affine"]))
        if kind in ("conv", "depthwise"):
            k = draw(st.integers(1, 5))
            s = draw(st.integers(1, 3))
            d = draw(st.integers(1, 2))
            padding = draw(st.sampled_from(["same", "valid", 0, 1, 2, "list"]))
            if padding == "list":
                padding = [draw(st.integers(0, 2)) for _ in range(4)]
            pads = explicit_pads(padding, (h, w), k, s, d)
            span = (k - 1) * d + 1
            if h + pads[0] + pads[1] < span or w + pads[2] + pads[3] < span:
                continue  # cnncost rejects it (tested in test_errors); draw another layer
            bias = draw(st.booleans())
            if kind == "conv":
                groups = draw(st.sampled_from([g for g in (1, 2, 3) if c % g == 0]))
                out = groups * draw(st.integers(1, 4))
                layers.append({"op": "conv", "out": out, "kernel": k, "stride": s,
                               "dilation": d, "padding": padding, "groups": groups,
                               "bias": bias})
            else:
                mult = draw(st.integers(1, 2))
                groups, out = c, c * mult
                layers.append({"op": "depthwise", "kernel": k, "stride": s, "dilation": d,
                               "padding": padding, "multiplier": mult, "bias": bias})
            modules.append(nn.Sequential(Pad(pads),
                                         nn.Conv2d(c, out, k, s, 0, d, groups, bias=bias)))
            shape = [out, (h + pads[0] + pads[1] - span) // s + 1,
                     (w + pads[2] + pads[3] - span) // s + 1]
        elif kind == "pool":
            k = draw(st.integers(1, 3))
            s = draw(st.integers(1, 3))
            p = draw(st.integers(0, k // 2))
            ceil = draw(st.booleans())
            op = draw(st.sampled_from(["maxpool", "avgpool"]))
            if h + 2 * p < k or w + 2 * p < k:
                continue
            module = (nn.MaxPool2d if op == "maxpool" else nn.AvgPool2d)(k, s, p, ceil_mode=ceil)
            with torch.device("meta"):
                out_shape = list(module(torch.zeros(1, c, h, w)).shape[1:])
            if min(out_shape) <= 0:
                continue
            layers.append({"op": op, "kernel": k, "stride": s, "padding": p, "ceil_mode": ceil})
            modules.append(module)
            shape = out_shape
        elif kind == "bn_act":
            act = draw(st.sampled_from(["relu", "relu6", "silu", "hardswish", "sigmoid"]))
            layers += [{"op": "batchnorm"}, {"op": act}]
            torch_act = {"relu": nn.ReLU, "relu6": nn.ReLU6, "silu": nn.SiLU,
                         "hardswish": nn.Hardswish, "sigmoid": nn.Sigmoid}[act]
            modules += [nn.BatchNorm2d(c), torch_act()]
        elif kind == "split":  # ShuffleNetV2-style: two slices, one transformed, concat
            if c < 2:
                continue
            cut = draw(st.integers(1, c - 1))
            n = len(layers)
            layers += [{"op": "identity", "name": f"in{n}"},
                       {"op": "slice", "name": f"keep{n}", "stop": cut},
                       {"op": "slice", "name": f"work{n}", "from": f"in{n}", "start": cut},
                       {"op": "concat", "inputs": [f"keep{n}", f"work{n}"]}]
            modules.append(Split(cut))
        elif kind == "pad":
            pads = [draw(st.integers(0, 3)) for _ in range(4)]
            channels = [draw(st.integers(0, 2)) for _ in range(2)]
            layers.append({"op": "pad", "padding": pads, "channels": channels})
            modules.append(ChannelPad(pads, channels))
            shape = [c + sum(channels), h + pads[0] + pads[1], w + pads[2] + pads[3]]
        elif kind == "crop":
            oh, ow = draw(st.integers(1, h)), draw(st.integers(1, w))
            layers.append({"op": "crop", "size": [oh, ow]})
            modules.append(Crop(oh, ow))
            shape = [c, oh, ow]
        elif kind == "upsample":
            if h * w > 400:
                continue
            sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
            mode = draw(st.sampled_from(["nearest", "bilinear"]))
            layers.append({"op": "upsample", "scale": [sh, sw], "mode": mode})
            modules.append(nn.Upsample(scale_factor=(sh, sw), mode=mode))
            shape = [c, h * sh, w * sw]
        elif kind == "affine":  # layer scale, Keras preprocessing, a gamma- or beta-only BN
            op = draw(st.sampled_from(["scale", "rescaling", "normalization", "bn_partial"]))
            if op == "scale":
                layers.append({"op": "scale", "init": 1e-6})
                modules.append(LayerScale(c))
            elif op == "rescaling":
                layers.append({"op": "rescaling", "scale": 0.5, "offset": 1})
                modules.append(nn.Identity())
            elif op == "normalization":
                layers.append({"op": "normalization"})
                modules.append(KerasNormalization(c))
            else:
                center = draw(st.booleans())
                layers.append({"op": "batchnorm", "center": center, "scale": not center})
                modules.append(BetaOrGammaBatchNorm(c, center))
        else:  # residual
            k = draw(st.sampled_from([1, 3, 5]))
            layers.append({"op": "residual", "shortcut": "identity", "layers": [
                {"op": "conv", "out": c, "kernel": k, "padding": k // 2, "bias": False}]})
            modules.append(Residual(nn.Conv2d(c, c, k, 1, k // 2, bias=False)))
    classes = draw(st.integers(1, 12))
    layers += ["flatten", {"op": "linear", "out": classes}]
    modules += [nn.Flatten(), nn.Linear(shape[0] * shape[1] * shape[2], classes)]
    return layers, modules
