"""Property: for random valid layer stacks, the analytic engine equals PyTorch.

Hypothesis draws sequential stacks of convolutions (random kernel, stride, dilation,
groups, padding as int, per-side list, 'same' or 'valid', bias on or off), depthwise
convs, max/avg pooling (ceil mode, padding), batch norm, activations, residual adds,
then flatten and a linear head, on random input sizes. Each stack is analyzed by
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
        kind = draw(st.sampled_from(["conv", "conv", "depthwise", "pool", "bn_act", "residual"]))
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
        else:
            k = draw(st.sampled_from([1, 3, 5]))
            layers.append({"op": "residual", "shortcut": "identity", "layers": [
                {"op": "conv", "out": c, "kernel": k, "padding": k // 2, "bias": False}]})
            modules.append(Residual(nn.Conv2d(c, c, k, 1, k // 2, bias=False)))
    classes = draw(st.integers(1, 12))
    layers += ["flatten", {"op": "linear", "out": classes}]
    modules += [nn.Flatten(), nn.Linear(shape[0] * shape[1] * shape[2], classes)]
    return layers, modules
