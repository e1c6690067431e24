"""Independent cross-check: the bundled specs against the same models written by hand in
PyTorch (no torchvision, no cnncost builder), compared on params, buffers, MACs
(`torch.utils.flop_counter`, FLOPs // 2) and the Keras-style total.

The models are built on the meta device, so no memory is allocated and no arithmetic
runs
the flop counter and parameter counts work from shapes alone. Skipped without
torch. (The spec -> nn.Module builder and `cnncost verify` are a later capability
this
file checks the analytic engine against code written independently of it.)
"""

from __future__ import annotations

import pytest

import cnncost

torch = pytest.importorskip("torch")
nn = torch.nn
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

pytestmark = pytest.mark.torch


def measure(build, shape):
    with torch.device("meta"):
        model = build()
        x = torch.zeros(1, *shape)
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = model(x)
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for b in model.buffers())
    return params, counter.get_total_flops() // 2, buffers, keras_params(model), tuple(y.shape[1:])


# ---------------------------------------------------------------- AlexNet (torchvision)
def alexnet():
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.AdaptiveAvgPool2d(6), nn.Flatten(),
        nn.Dropout(), nn.Linear(9216, 4096), nn.ReLU(),
        nn.Dropout(), nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 1000))


# ---------------------------------------------------------------- VGG (torchvision)
CFG = {"A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
       "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
       "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
       "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
             512, 512, 512, 512, "M"]}


def vgg(cfg, bn=False):
    layers, c = [], 3
    for v in CFG[cfg]:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers.append(nn.Conv2d(c, v, 3, padding=1))
            if bn:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU())
            c = v
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(7), nn.Flatten(),
                         nn.Linear(512 * 49, 4096), nn.ReLU(), nn.Dropout(),
                         nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(), nn.Linear(4096, 1000))


# ---------------------------------------------------------------- ResNet (torchvision)
class Basic(nn.Module):
    expansion = 1

    def __init__(self, inp, planes, stride):
        super().__init__()
        self.c1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(planes)
        self.c2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(planes)
        self.down = None
        if stride != 1 or inp != planes:
            self.down = nn.Sequential(nn.Conv2d(inp, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        o = torch.relu(self.b1(self.c1(x)))
        o = self.b2(self.c2(o))
        return torch.relu(o + (self.down(x) if self.down is not None else x))


class Bottle(nn.Module):
    expansion = 4

    def __init__(self, inp, planes, stride, stride_on="conv2"):
        super().__init__()
        s1, s2 = (stride, 1) if stride_on == "conv1" else (1, stride)
        out = planes * 4
        self.c1 = nn.Conv2d(inp, planes, 1, s1, bias=False)
        self.b1 = nn.BatchNorm2d(planes)
        self.c2 = nn.Conv2d(planes, planes, 3, s2, 1, bias=False)
        self.b2 = nn.BatchNorm2d(planes)
        self.c3 = nn.Conv2d(planes, out, 1, bias=False)
        self.b3 = nn.BatchNorm2d(out)
        self.down = None
        if stride != 1 or inp != out:
            self.down = nn.Sequential(nn.Conv2d(inp, out, 1, stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x):
        o = torch.relu(self.b1(self.c1(x)))
        o = torch.relu(self.b2(self.c2(o)))
        o = self.b3(self.c3(o))
        return torch.relu(o + (self.down(x) if self.down is not None else x))


def resnet(block, layers, **kw):
    mods = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    inp = 64
    for i, n in enumerate(layers):
        planes = 64 * 2 ** i
        for j in range(n):
            mods.append(block(inp, planes, (1 if i == 0 else 2) if j == 0 else 1, **kw))
            inp = planes * block.expansion
    return nn.Sequential(*mods, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(inp, 1000))


# ---------------------------------------------------------------- MobileNetV2 (torchvision)
def make_div(v, d=8, mn=None):
    mn = mn or d
    new = max(mn, int(v + d / 2) // d * d)
    if new < 0.9 * v:
        new += d
    return new


def cbr(i, o, k, s, g=1):
    return [nn.Conv2d(i, o, k, s, (k - 1) // 2, groups=g, bias=False), nn.BatchNorm2d(o), nn.ReLU6()]


class IR(nn.Module):
    def __init__(self, inp, oup, s, t):
        super().__init__()
        hid = int(round(inp * t))
        self.res = s == 1 and inp == oup
        layers = [] if t == 1 else cbr(inp, hid, 1, 1)
        layers += cbr(hid, hid, 3, s, hid) + [nn.Conv2d(hid, oup, 1, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.res else self.conv(x)


def mobilenet_v2(width=1.0):
    inp = make_div(32 * width)
    last = make_div(1280 * max(1.0, width))
    feats = cbr(3, inp, 3, 2)
    for t, c, n, s in [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1],
                       [6, 160, 3, 2], [6, 320, 1, 1]]:
        out = make_div(c * width)
        for i in range(n):
            feats.append(IR(inp, out, s if i == 0 else 1, t))
            inp = out
    feats += cbr(inp, last, 1, 1)
    return nn.Sequential(*feats, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(last, 1000))


# ---------------------------------------------------------------- MobileNetV1 (TF-slim rule)
class SamePad(nn.Module):
    """Keras/TF 'same' padding for a k x k, stride s window."""
    def __init__(self, k, s):
        super().__init__()
        self.k, self.s = k, s

    def forward(self, x):
        h = x.shape[-1]
        out = -(-h // self.s)
        tot = max((out - 1) * self.s + self.k - h, 0)
        return nn.functional.pad(x, (tot // 2, tot - tot // 2, tot // 2, tot - tot // 2))


def mobilenet_v1(width=1.0):
    def d(c):
        return max(int(c * width), 8)

    layers = [SamePad(3, 2), nn.Conv2d(3, d(32), 3, 2, bias=False), nn.BatchNorm2d(d(32)), nn.ReLU()]
    c = d(32)
    for out, s in [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]:
        layers += [SamePad(3, s), nn.Conv2d(c, c, 3, s, groups=c, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                   nn.Conv2d(c, d(out), 1, bias=False), nn.BatchNorm2d(d(out)), nn.ReLU()]
        c = d(out)
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.001), nn.Linear(c, 1000))


# ---------------------------------------------------------------- seed CIFAR models (Keras -> torch)
class ResnetModule(nn.Module):
    """seed 001 ResnetModule(x, filters, pool)
    Keras 'same' = pad 1 for 3x3 s1, 0 for 1x1."""
    def __init__(self, inp, filters, pool=False, depthwise=False):
        super().__init__()
        self.pool = pool
        self.mp = nn.MaxPool2d(2) if pool else None
        self.sc = nn.Conv2d(inp, filters, 1, 2) if pool else None
        if depthwise:  # Unit: dw 3x3 (bias) then 1x1
            self.body = nn.Sequential(nn.BatchNorm2d(inp), nn.ReLU(), nn.Conv2d(inp, inp, 3, 1, 1, groups=inp),
                                      nn.BatchNorm2d(inp), nn.ReLU(), nn.Conv2d(inp, filters, 1))
        else:
            self.body = nn.Sequential(nn.BatchNorm2d(inp), nn.ReLU(), nn.Conv2d(inp, filters, 3, 1, 1),
                                      nn.BatchNorm2d(filters), nn.ReLU(), nn.Conv2d(filters, filters, 3, 1, 1))

    def forward(self, x):
        res = self.sc(x) if self.pool else x
        if self.pool:
            x = self.mp(x)
        return res + self.body(x)


def seed_cifar(depthwise):
    mods = [nn.Conv2d(3, 32, 3, 1, 1)]
    plan = [(32, False)] * (2 if depthwise else 3)
    for c in (64, 128, 256):
        plan += [(c, True), (c, False), (c, False)]
    inp = 32
    for c, pool in plan:
        mods.append(ResnetModule(inp, c, pool, depthwise))
        inp = c
    return nn.Sequential(*mods, nn.BatchNorm2d(256), nn.ReLU(), nn.Dropout(0.25), nn.AvgPool2d(4),
                         nn.Flatten(), nn.Linear(256, 10), nn.Softmax(-1))


def keras_params(model):
    """Keras 'Total params': trainable + BN moving mean/var (no num_batches_tracked)."""
    p = sum(q.numel() for q in model.parameters())
    bn = sum(m.running_mean.numel() + m.running_var.numel() for m in model.modules()
             if isinstance(m, nn.BatchNorm2d))
    return p + bn


def seed_bottleneck(kernel2=3):
    class U(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.BatchNorm2d(32), nn.ReLU(), nn.Conv2d(32, 16, 1), nn.BatchNorm2d(16),
                                      nn.ReLU(), nn.Conv2d(16, 32, kernel2, padding=kernel2 // 2))

        def forward(self, x):
            return x + self.body(x)
    return U()


def mnist_cnn():
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Dropout(0.25), nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(128, 10), nn.Softmax(-1))


def lenet5():
    return nn.Sequential(nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Conv2d(6, 16, 5), nn.Tanh(),
                         nn.AvgPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.Tanh(), nn.Linear(120, 84),
                         nn.Tanh(), nn.Linear(84, 10))


def conv_arith():
    return nn.Sequential(nn.Conv2d(3, 64, 3), nn.Conv2d(64, 64, 4, 2, 1))


CASES = [
    ("alexnet", {}, alexnet, (3, 224, 224)),
    ("vgg11", {}, lambda: vgg("A"), (3, 224, 224)),
    ("vgg13", {}, lambda: vgg("B"), (3, 224, 224)),
    ("vgg16", {}, lambda: vgg("D"), (3, 224, 224)),
    ("vgg19", {}, lambda: vgg("E"), (3, 224, 224)),
    ("vgg16_bn", {}, lambda: vgg("D", bn=True), (3, 224, 224)),
    ("resnet18", {}, lambda: resnet(Basic, [2, 2, 2, 2]), (3, 224, 224)),
    ("resnet34", {}, lambda: resnet(Basic, [3, 4, 6, 3]), (3, 224, 224)),
    ("resnet50", {}, lambda: resnet(Bottle, [3, 4, 6, 3]), (3, 224, 224)),
    ("resnet50", {"variant": "paper"}, lambda: resnet(Bottle, [3, 4, 6, 3], stride_on="conv1"), (3, 224, 224)),
    ("resnet101", {}, lambda: resnet(Bottle, [3, 4, 23, 3]), (3, 224, 224)),
    ("resnet152", {}, lambda: resnet(Bottle, [3, 8, 36, 3]), (3, 224, 224)),
    ("mobilenet_v2", {}, mobilenet_v2, (3, 224, 224)),
    ("mobilenet_v2", {"variant": "w075"}, lambda: mobilenet_v2(0.75), (3, 224, 224)),
    ("mobilenet_v2", {"variant": "w140"}, lambda: mobilenet_v2(1.4), (3, 224, 224)),
    ("mobilenet_v1", {}, mobilenet_v1, (3, 224, 224)),
    ("mobilenet_v1", {"variant": "w075"}, lambda: mobilenet_v1(0.75), (3, 224, 224)),
    ("mobilenet_v1", {"variant": "w025"}, lambda: mobilenet_v1(0.25), (3, 224, 224)),
    ("mobilenet_v1", {"variant": "r160"}, mobilenet_v1, (3, 160, 160)),
    ("seed_cifar_preact_resnet", {}, lambda: seed_cifar(False), (3, 32, 32)),
    ("seed_cifar_depthwise", {}, lambda: seed_cifar(True), (3, 32, 32)),
    ("seed_bottleneck_unit", {}, seed_bottleneck, (32, 112, 112)),
    ("seed_bottleneck_unit", {"set": {"kernel2": 1}}, lambda: seed_bottleneck(1), (32, 112, 112)),
    ("seed_mnist_cnn", {}, mnist_cnn, (1, 28, 28)),
    ("lenet5", {}, lenet5, (1, 32, 32)),
    ("seed_conv_arithmetic", {}, conv_arith, (3, 224, 224)),
]


@pytest.mark.parametrize("name,kwargs,build,shape", CASES,
                         ids=[f"{c[0]}{'-' + str(list(c[1].values())[0]) if c[1] else ''}"
                              for c in CASES])
def test_spec_matches_hand_written_torch_model(name, kwargs, build, shape):
    params, macs, buffers, keras, out = measure(build, shape)
    result = cnncost.analyze(name, **kwargs)
    totals = result.totals
    assert (totals.params, totals.macs, totals.buffers) == (params, macs, buffers)
    assert totals.keras_params == keras
    assert result.output_shape == out
