"""Record what other FLOP counters report on the bundled specs' PyTorch models.

For every bundled spec, take its hand-written PyTorch model from
tests/test_torch_reference.py (for the ResNets, with torchvision's forward: one
``nn.ReLU`` module called after each block's batch norms and after ``out += identity``,
because hook-based counters see module calls, not ``torch.relu``), and for the zoo's
family specs the torchvision model itself (ZOO_FAMILIES), and run:

- fvcore ``FlopCountAnalysis(model, x).total()`` and ``parameter_count(model)[""]``;
- ptflops ``get_model_complexity_info(..., backend="pytorch")`` (module hooks plus its
  default patching of torch.nn.functional), its MACs and params;
- thop ``profile(model, inputs=(x,))`` (the ``thop`` package on PyPI), its MACs and params;
- ``torch.utils.flop_counter.FlopCounterMode`` (FLOPs, halved to MACs: what torchvision
  publishes);

and write the totals, with the tool versions, to tests/data/convention_reference.json,
which tests/test_conventions.py checks every counting profile against. Regenerate with

    pip install torch==2.13.0 fvcore==0.1.5.post20221221 ptflops==0.7.5 thop==0.1.1.post2209072238
    pip install --no-deps torchvision==0.28.0   # the zoo families; see benchmarks/zoo_reference.py
    python benchmarks/convention_reference.py

(these tools are not cnncost dependencies; install them only to regenerate the data).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import types
import warnings
from pathlib import Path

import torch
from torch import nn

# torchvision's CUDA wheel registers operators the CPU build of torch lacks; the tools
# below import torchvision when it is there, so skip that registration first (see
# benchmarks/zoo_reference.py)
sys.modules.setdefault("torchvision._meta_registrations",
                       types.ModuleType("torchvision._meta_registrations"))

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))
import test_torch_reference as ref  # noqa: E402  (the hand-written models)


def mlp(sizes: list[int], last: nn.Module) -> nn.Module:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        layers.append(nn.ReLU() if i < len(sizes) - 2 else last)
    return nn.Sequential(*layers)


class BasicTV(ref.Basic):
    """torchvision's BasicBlock.forward: one nn.ReLU module, in-place residual add."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        identity = self.down(x) if self.down is not None else x
        out = self.relu(self.b1(self.c1(x)))
        out = self.b2(self.c2(out))
        out += identity
        return self.relu(out)


class BottleTV(ref.Bottle):
    """torchvision's Bottleneck.forward: one nn.ReLU module, in-place residual add."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        identity = self.down(x) if self.down is not None else x
        out = self.relu(self.b1(self.c1(x)))
        out = self.relu(self.b2(self.c2(out)))
        out = self.b3(self.c3(out))
        out += identity
        return self.relu(out)


BasicTV.expansion, BottleTV.expansion = 1, 4
REF = "tests/test_torch_reference.py"


def models() -> dict:
    """Bundled spec name -> (builder, input shape, where the model code comes from)."""
    out = {
        "alexnet": (ref.alexnet, (3, 224, 224), REF),
        **{f"vgg{n}": ((lambda c=c: ref.vgg(c)), (3, 224, 224), REF)
           for n, c in (("11", "A"), ("13", "B"), ("16", "D"), ("19", "E"))},
        "vgg16_bn": (lambda: ref.vgg("D", bn=True), (3, 224, 224), REF),
        **{f"resnet{n}": ((lambda b=b, n_=layers: ref.resnet(b, n_)), (3, 224, 224),
                          REF + " with torchvision's block forward")
           for n, b, layers in (("18", BasicTV, [2, 2, 2, 2]), ("34", BasicTV, [3, 4, 6, 3]),
                                ("50", BottleTV, [3, 4, 6, 3]), ("101", BottleTV, [3, 4, 23, 3]),
                                ("152", BottleTV, [3, 8, 36, 3]))},
        "mobilenet_v2": (ref.mobilenet_v2, (3, 224, 224), REF),
    }
    out["mobilenet_v1"] = (ref.mobilenet_v1, (3, 224, 224), REF)
    out["seed_cifar_preact_resnet"] = (lambda: ref.seed_cifar(False), (3, 32, 32),
                                       REF)
    out["seed_cifar_depthwise"] = (lambda: ref.seed_cifar(True), (3, 32, 32),
                                   REF)
    out["seed_bottleneck_unit"] = (ref.seed_bottleneck, (32, 112, 112),
                                   REF)
    out["seed_mnist_cnn"] = (ref.mnist_cnn, (1, 28, 28), REF)
    out["lenet5"] = (ref.lenet5, (1, 32, 32), REF)
    out["seed_conv_arithmetic"] = (ref.conv_arith, (3, 224, 224), REF)
    out["seed_mlp_4096"] = (lambda: mlp([4096, 512, 512, 10], nn.Softmax(-1)), (4096,),
                            "benchmarks/convention_reference.py (nn.Linear/ReLU/Softmax)")
    out["seed_mnist_mlp"] = (lambda: mlp([784, 128, 128, 128, 10], nn.Softmax(-1)), (784,),
                             "benchmarks/convention_reference.py (nn.Linear/ReLU/Softmax)")
    out.update(torchvision_models())
    return out


# The zoo's family specs (their default variables) and the torchvision model each is.
ZOO_FAMILIES = {"convnext": "convnext_tiny", "efficientnet": "efficientnet_b0",
                "efficientnet_v2": "efficientnet_v2_s", "regnet": "regnet_x_400mf",
                "densenet": "densenet121", "googlenet": "googlenet",
                "inception_v3": "inception_v3", "mobilenet_v3": "mobilenet_v3_large",
                "mnasnet": "mnasnet1_0", "shufflenet_v2": "shufflenet_v2_x1_0",
                "squeezenet": "squeezenet1_0"}


def torchvision_models() -> dict:
    """The zoo families as torchvision builds them (weights=None), at the spec's default
    input; needs torchvision (see benchmarks/zoo_reference.py for the environment)."""
    import zoo_reference

    import cnncost

    models = zoo_reference.import_torchvision().models
    out = {}
    for family, name in ZOO_FAMILIES.items():
        shape = cnncost.analyze(family).input_shape
        out[family] = ((lambda n=name: models.get_model(n, weights=None)), tuple(shape),
                       f"torchvision {name}")
    return out


def fvcore_counts(model: nn.Module, x: torch.Tensor) -> dict:
    from fvcore.nn import FlopCountAnalysis, parameter_count

    analysis = FlopCountAnalysis(model, x)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    total = int(analysis.total())
    return {"flops": total, "params": int(parameter_count(model)[""]),
            "by_operator": {k: int(v) for k, v in sorted(analysis.by_operator().items())},
            "skipped": sorted(analysis.unsupported_ops())}


def ptflops_counts(model: nn.Module, shape: tuple) -> dict:
    from ptflops import get_model_complexity_info

    with contextlib.redirect_stdout(io.StringIO()):
        macs, params = get_model_complexity_info(model, shape, as_strings=False,
                                                 print_per_layer_stat=False, backend="pytorch")
    return {"macs": int(macs), "params": int(params)}


def thop_counts(model: nn.Module, x: torch.Tensor) -> dict:
    from thop import profile

    with contextlib.redirect_stdout(io.StringIO()):
        macs, params = profile(model, inputs=(x,), verbose=False)
    return {"macs": int(macs), "params": int(params)}


def torch_counts(model: nn.Module, x: torch.Tensor) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model(x)
    return {"macs": counter.get_total_flops() // 2,
            "params": sum(p.numel() for p in model.parameters())}


def main() -> None:
    from importlib.metadata import version

    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    versions = {"torch": torch.__version__, "fvcore": version("fvcore"),
                "ptflops": version("ptflops"), "thop": version("thop")}
    specs = {}
    for name, (build, shape, source) in models().items():
        model = build().eval()
        x = torch.zeros(1, *shape)
        with torch.no_grad():
            entry = {"input": list(shape), "model": source,
                     "torch_flop_counter": torch_counts(model, x),
                     "fvcore": fvcore_counts(model, x),
                     "ptflops": ptflops_counts(build().eval(), shape),
                     "thop": thop_counts(build().eval(), x)}
        specs[name] = entry
        print(f"{name:26} torch {entry['torch_flop_counter']['macs']:>15,}  "
              f"fvcore {entry['fvcore']['flops']:>15,}  ptflops {entry['ptflops']['macs']:>15,}  "
              f"thop {entry['thop']['macs']:>15,}",
              flush=True)
    out = ROOT / "tests" / "data" / "convention_reference.json"
    out.parent.mkdir(exist_ok=True)
    data = {"generated_by": "python benchmarks/convention_reference.py", "batch": 1,
            "versions": versions, "specs": specs}
    out.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
