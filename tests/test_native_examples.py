"""The worked examples of docs/spec.md ("Standard designs, written natively") compute the
same function as the original designs, not only the same counts.

Each example is built by cnncost and compared with an independent, hand-written PyTorch
module of the design (as torchvision or the paper writes it), loaded with the same
random weights and batch-norm statistics: the outputs must agree to float precision.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import cnncost

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional
pytestmark = pytest.mark.torch

DOC = (Path(__file__).resolve().parent.parent / "docs" / "spec.md").read_text(encoding="utf-8")


def example(name: str) -> dict:
    for block in re.findall(r"```yaml\n(.*?)```", DOC, re.S):
        spec = yaml.safe_load(block)
        if isinstance(spec, dict) and spec.get("name") == name:
            return spec
    raise AssertionError(f"docs/spec.md has no example named {name!r}")


def same_function(name: str, reference: nn.Module, batch: int = 2) -> None:
    """Copy random weights into both models in state-dict order (shapes must agree, up to
    a Linear's (out, in) against a 1x1 conv's (out, in, 1, 1)) and compare outputs."""
    spec = example(name)
    built = cnncost.build(spec).eval()
    reference = reference.eval()
    ours, theirs = built.state_dict(), reference.state_dict()
    assert len(ours) == len(theirs), (list(ours), list(theirs))
    torch.manual_seed(0)
    with torch.no_grad():
        for (k1, a), (k2, b) in zip(ours.items(), theirs.items(), strict=True):
            assert a.numel() == b.numel(), (k1, k2, a.shape, b.shape)
            if a.dtype.is_floating_point:
                if k1.endswith(("running_var", "variance")):
                    value = torch.rand(a.shape) + 0.5
                elif a.dim() >= 2 and a[0].numel() > 1:  # kernels: scaled by fan-in
                    value = torch.randn(a.shape) / a[0].numel() ** 0.5
                elif k1.endswith("weight"):
                    value = torch.rand(a.shape) + 0.5
                else:
                    value = torch.randn(a.shape) * 0.1
                a.copy_(value)
                b.copy_(value.reshape(b.shape))
    x = torch.randn(batch, *spec["input"])
    with torch.no_grad():
        y, expected = built(x), reference(x)
    assert y.shape == expected.shape
    # float32 rounding only: sums in another order (a 1x1 conv against nn.Linear)
    tolerance = 1e-5 * float(expected.abs().max())
    assert float((y - expected).abs().max()) <= tolerance, (y - expected).abs().max()
    counts = cnncost.analyze(spec).totals
    assert counts.params == sum(p.numel() for p in reference.parameters())
    assert counts.buffers == sum(b.numel() for b in reference.buffers())


def conv_bn(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1,
            relu: bool = True) -> list[nn.Module]:
    layers = [nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False),
              nn.BatchNorm2d(c_out)]
    return layers + [nn.ReLU()] if relu else layers


class ShuffleUnit(nn.Module):
    """torchvision's shufflenetv2.InvertedResidual with stride 1."""

    def __init__(self, c: int) -> None:
        super().__init__()
        half = c // 2
        self.branch2 = nn.Sequential(*conv_bn(half, half, 1), *conv_bn(half, half, 3,
                                                                        groups=half,
                                                                        relu=False),
                                     *conv_bn(half, half, 1))

    def forward(self, x):
        x1, x2 = x.chunk(2, dim=1)
        out = torch.cat((x1, self.branch2(x2)), dim=1)
        n, c, h, w = out.shape
        return out.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)


class LayerScale(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.layer_scale = nn.Parameter(torch.ones(dim, 1, 1) * 1e-6)


class CNBlock(nn.Module):
    """torchvision's convnext.CNBlock at eval (stochastic depth is the identity); its
    layer_scale parameter sits in a child module so that the state dicts list the
    tensors in the same order."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.fc1, self.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
        self.scale = LayerScale(dim)

    def forward(self, x):
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.fc2(F.gelu(self.fc1(self.norm(y)))).permute(0, 3, 1, 2)
        return x + self.scale.layer_scale * y


class UNetSmall(nn.Module):
    """Ronneberger et al.: valid 3x3 convs, 2x2 up-convolution, cropped skip."""

    def __init__(self) -> None:
        super().__init__()
        self.e1a, self.e1 = nn.Conv2d(1, 16, 3), nn.Conv2d(16, 16, 3)
        self.e2a, self.e2 = nn.Conv2d(16, 32, 3), nn.Conv2d(32, 32, 3)
        self.up = nn.ConvTranspose2d(32, 16, 2, stride=2)
        self.d1a, self.d1 = nn.Conv2d(32, 16, 3), nn.Conv2d(16, 16, 3)
        self.head = nn.Conv2d(16, 2, 1)

    def forward(self, x):
        skip = F.relu(self.e1(F.relu(self.e1a(x))))
        y = F.max_pool2d(skip, 2)
        y = self.up(F.relu(self.e2(F.relu(self.e2a(y)))))
        top = (skip.shape[2] - y.shape[2]) // 2
        left = (skip.shape[3] - y.shape[3]) // 2
        skip = skip[:, :, top:top + y.shape[2], left:left + y.shape[3]]
        y = torch.cat([skip, y], 1)
        return self.head(F.relu(self.d1(F.relu(self.d1a(y)))))


class OptionABlock(nn.Module):
    """The CIFAR ResNet BasicBlock with option-A shortcut (akamaster/pytorch_resnet_cifar10)."""

    def __init__(self, c_in: int, planes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, planes, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = planes // 4

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(out + shortcut)


class KerasPreprocessing(nn.Module):
    """Rescaling(1/255), Normalization() and a Keras-style stem conv (same padding)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(3, 1, 1))
        self.register_buffer("variance", torch.ones(3, 1, 1))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))
        self.conv = nn.Conv2d(3, 8, 3, 2, bias=False)
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x):
        x = x * (1 / 255)
        x = (x - self.mean) / torch.clamp(self.variance.sqrt(), min=1e-7)
        x = F.pad(x, (0, 1, 0, 1))  # Keras 'same' on 32 with stride 2: the odd pixel after
        return F.silu(self.bn(self.conv(x)))


def test_shufflenet_v2_unit():
    same_function("shufflenet_v2_unit", ShuffleUnit(116))


def test_convnext_block():
    same_function("convnext_block", CNBlock(96))


def test_unet_small():
    same_function("unet_small", UNetSmall())


def test_resnet20_option_a_shortcut():
    same_function("resnet20_downsample_block", OptionABlock(16, 32))


def test_keras_preprocessing():
    same_function("keras_preprocessing", KerasPreprocessing())
    keras = cnncost.analyze(example("keras_preprocessing"), convention="keras").totals
    assert keras.params == 3 * 3 * 3 * 8 + 4 * 8 + 7  # conv, BN (with moving stats), 2C + 1


def regnet_stages(depth: int, w_0: float, w_a: float, w_m: float, group_width: int):
    """torchvision's BlockParams.from_init_params (models/regnet.py), bottleneck multiplier 1:
    (width, depth, group width) per stage, computed in float32 torch as torchvision does."""
    import math

    widths_cont = torch.arange(depth) * w_a + w_0
    block_capacity = torch.round(torch.log(widths_cont / w_0) / math.log(w_m))
    block_widths = (torch.round(torch.divide(w_0 * torch.pow(w_m, block_capacity), 8))
                    * 8).int().tolist()
    stages: list[list[int]] = []
    for w in block_widths:
        if stages and stages[-1][0] == w:
            stages[-1][1] += 1
        else:
            stages.append([w, 1])
    out = []
    for w, d in stages:  # _adjust_widths_groups_compatibilty: widths divisible by groups
        g = min(group_width, w)
        divisible = max(g, int(w + g / 2) // g * g)  # torchvision's _make_divisible
        out.append((divisible + g if divisible < 0.9 * w else divisible, d, g))
    return out


class XBlock(nn.Module):
    """torchvision's ResBottleneckBlock for RegNetX (no SE), body registered before the
    projection so that the state dicts list tensors in the same order."""

    def __init__(self, w_in: int, w: int, stride: int, g: int) -> None:
        super().__init__()
        self.f = nn.Sequential(*conv_bn(w_in, w, 1), *conv_bn(w, w, 3, stride, groups=w // g),
                               *conv_bn(w, w, 1, relu=False))
        self.proj = (nn.Sequential(nn.Conv2d(w_in, w, 1, stride, bias=False), nn.BatchNorm2d(w))
                     if w_in != w or stride != 1 else None)

    def forward(self, x):
        return F.relu((self.proj(x) if self.proj is not None else x) + self.f(x))


class RegNetX(nn.Module):
    def __init__(self, depth, w_0, w_a, w_m, group_width, classes=1000) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32),
                                  nn.ReLU())
        blocks, w_in = [], 32
        for w, d, g in regnet_stages(depth, w_0, w_a, w_m, group_width):
            for i in range(d):
                blocks.append(XBlock(w_in, w, 2 if i == 0 else 1, g))
                w_in = w
        self.trunk = nn.Sequential(*blocks)
        self.fc = nn.Linear(w_in, classes)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(self.trunk(self.stem(x)), 1).flatten(1))


def test_regnet_from_its_published_parameters():
    spec = example("regnet_x_400mf")
    assert cnncost.analyze(spec).totals.params == 5_495_976  # torchvision regnet_x_400mf
    assert [w for w, _, _ in regnet_stages(22, 24, 24.48, 2.54, 16)] == [32, 64, 160, 400]
    same_function("regnet_x_400mf", RegNetX(22, 24, 24.48, 2.54, 16), batch=1)


EXAMPLES = ["shufflenet_v2_unit", "convnext_block", "unet_small", "resnet20_downsample_block",
            "keras_preprocessing", "regnet_x_400mf"]


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_exported_file_computes_what_the_built_model_does(name, tmp_path):
    """`cnncost export` writes the same function: load the built model's weights into the
    exported class and compare outputs (loops, slices, layer scale, crops and the Keras
    ops included)."""
    import importlib.util

    from click.testing import CliRunner

    from cnncost.cli import main

    spec_path = tmp_path / f"{name}.yaml"
    spec_path.write_text(yaml.safe_dump(example(name), sort_keys=False), encoding="utf-8")
    out = tmp_path / f"{name}_model.py"
    result = CliRunner().invoke(main, ["export", str(spec_path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    module_spec = importlib.util.spec_from_file_location(f"exported_{name}", out)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    built = cnncost.build(example(name)).eval()
    classes = [v for v in vars(module).values() if isinstance(v, type)
               and issubclass(v, nn.Module) and v.__module__ == module.__name__
               and v.__name__ not in vars(cnncost.pytorch.torch_modules)]
    (cls,) = classes
    exported = cls().eval()
    exported.load_state_dict(built.state_dict())
    torch.manual_seed(1)
    x = torch.randn(1, *example(name)["input"])
    with torch.no_grad():
        assert torch.equal(built(x), exported(x))
