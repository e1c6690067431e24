"""Record what torchvision's classification CNNs count, and check that cnncost's zoo specs
compute the same function.

Two jobs, both run in a separate virtual environment that has torchvision (cnncost's
tests and CI never need it):

``python benchmarks/zoo_reference.py record``
    builds every torchvision classification CNN (``weights=None``, eval mode) and writes
    tests/data/torchvision_reference.json: per model name the parameter count
    (``sum(p.numel())``), the buffer count, the MACs at torchvision's evaluation
    resolution (``FlopCounterMode`` total // 2, on the meta device), the MACs of a
    training-mode forward where a model has auxiliary heads, and torchvision's published
    ``num_params`` and ``_ops`` (GFLOPS as torchvision labels them, really GMACs) from the
    weights' metadata, with the torch and torchvision versions.

``python benchmarks/zoo_reference.py doc``
    writes docs/zoo.md from cnncost's catalogue (the bundled specs and published names)
    and the two recordings; needs only cnncost. tests/test_zoo.py fails when the page is
    out of date.

``python benchmarks/zoo_reference.py check [NAME ...]``
    for each name (default: every recorded one), builds ``cnncost.build(NAME)`` and the
    torchvision model, gives the torchvision model random weights and batch-norm
    statistics, copies every parameter and buffer into the cnncost model in the order the
    forward pass first uses them (shapes must agree), runs both on one random input and
    writes the largest absolute output difference, relative to the largest output, to
    tests/data/zoo_function_check.json (docs/zoo.md shows it; `--dry-run` prints only). Anything above float
    noise (1e-4 relative) means the spec is not the same network, and the run says so.

Set up the environment once:

    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install torch==2.13.0 numpy pyyaml click rich pillow
    /tmp/refvenv/bin/pip install --no-deps torchvision==0.28.0
    PYTHONPATH=. /tmp/refvenv/bin/python benchmarks/zoo_reference.py record

torchvision 0.28.0 pairs with torch 2.13.0. The wheel on the registry is built for CUDA
and its compiled operators (nms, roi_align...) do not load into the CPU build of torch;
the classification models are plain Python and never call them, so this script skips
torchvision's registration of those operators (``torchvision._meta_registrations``)
before importing it.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "tests" / "data" / "torchvision_reference.json"
FUNCTION_CHECK = ROOT / "tests" / "data" / "zoo_function_check.json"

# Transformers are not CNNs: the zoo leaves them out.
NOT_CNN = ("vit_", "swin_", "maxvit_")
# torchvision publishes GoogLeNet without the auxiliary classifiers weights=None builds
PUBLISHED_SETTINGS = {"googlenet": {"aux": False}}
# Inception v3's auxiliary classifier needs 299x299 (torchvision's too, in training mode)
CHECK_AT_LEAST = {"inception_v3": 299}
# Models whose training-mode forward also runs auxiliary classifiers.
AUXILIARY = ("googlenet", "inception_v3")


def import_torchvision() -> Any:
    sys.modules.setdefault("torchvision._meta_registrations",
                           types.ModuleType("torchvision._meta_registrations"))
    import torchvision

    return torchvision


def names(models: Any) -> list[str]:
    return [n for n in models.list_models(module=models) if not n.startswith(NOT_CNN)]


def resolution(models: Any, name: str) -> int:
    """The evaluation crop of the model's default weights (what `_ops` is measured at)."""
    weights = models.get_model_weights(name).DEFAULT
    size = weights.transforms().crop_size
    return int(size[0] if isinstance(size, (list, tuple)) else size)


def macs(model: Any, size: int, batch: int = 1) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.empty(batch, 3, size, size, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() // 2 // batch


def record() -> None:
    import torch

    torchvision = import_torchvision()
    models = torchvision.models
    table: dict[str, Any] = {}
    for name in names(models):
        weights = models.get_model_weights(name).DEFAULT
        size = resolution(models, name)
        try:
            with torch.device("meta"):
                model = models.get_model(name, weights=None).eval()
        except NotImplementedError:  # RegNet computes its widths with tensors
            model = models.get_model(name, weights=None).eval().to("meta")
        entry = {
            "resolution": size,
            "params": sum(p.numel() for p in model.parameters()),
            "buffers": sum(b.numel() for b in model.buffers()),
            "macs": macs(model, size),
            "published_params": weights.meta["num_params"],
            "published_gmacs": weights.meta["_ops"],
            "published_weights": str(weights).split(".")[-1],
        }
        if name in AUXILIARY:
            entry["macs_training"] = macs(model.train(), size, batch=2)
        table[name] = entry
        print(f"{name:24} {size:4} {entry['params']:>12,} {entry['macs']:>16,}", flush=True)
    data = {
        "about": "torchvision classification CNNs, weights=None, eval mode; written by "
                 "benchmarks/zoo_reference.py record",
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "models": table,
    }
    REFERENCE.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {REFERENCE.relative_to(ROOT)} ({len(table)} models)")


def first_use_order(model: Any, x: Any) -> list[Any]:
    """The model's parameters and buffers in the order its forward pass first reads them,
    then any it never reads (auxiliary heads in eval mode) in registration order."""
    import torch
    from torch.overrides import TorchFunctionMode

    # integer buffers (batch norm's num_batches_tracked) are not read in eval mode and do
    # not change the function: they are left out of the ordered copy
    tensors = {id(t): t for t in list(model.parameters()) + list(model.buffers())
               if t.dtype.is_floating_point}
    seen: dict[int, Any] = {}

    class Watch(TorchFunctionMode):
        def __torch_function__(self, func, types_, args=(), kwargs=None):
            kwargs = kwargs or {}
            for value in list(args) + list(kwargs.values()):
                for item in value if isinstance(value, (list, tuple)) else [value]:
                    if id(item) in tensors and id(item) not in seen:
                        seen[id(item)] = item
            return func(*args, **kwargs)

    with Watch(), torch.no_grad():
        model(x)
    rest = [t for key, t in tensors.items() if key not in seen]
    return list(seen.values()) + rest


def randomize(model: Any, seed: int) -> None:
    """Random weights with fan-in scaling and non-trivial batch-norm statistics."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
            if not tensor.dtype.is_floating_point:
                continue
            shape = tensor.shape
            if name.endswith("running_var"):
                value = torch.rand(shape, generator=generator) + 0.5
            elif tensor.dim() >= 2:
                value = torch.randn(shape, generator=generator) / max(tensor[0].numel(), 1) ** 0.5
            elif name.endswith("weight"):
                value = torch.rand(shape, generator=generator) + 0.5
            else:
                value = torch.randn(shape, generator=generator) * 0.1
            tensor.copy_(value)


def check(requested: list[str], write: bool = True) -> int:
    import torch

    import cnncost

    torchvision = import_torchvision()
    models = torchvision.models
    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))["models"]
    results = json.loads(FUNCTION_CHECK.read_text(encoding="utf-8")) \
        if FUNCTION_CHECK.exists() else {"models": {}}
    failed = 0
    for name in requested or list(reference):
        size = max(min(reference[name]["resolution"], 224), CHECK_AT_LEAST.get(name, 0))
        theirs = models.get_model(name, weights=None).eval()
        ours = cnncost.build(name, set={"resolution": size}).eval()
        randomize(theirs, seed=0)
        x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
        source, target = first_use_order(theirs, x), first_use_order(ours, x)
        if len(source) != len(target):
            print(f"{name}: {len(source)} tensors in torchvision, {len(target)} in cnncost")
            failed += 1
            continue
        with torch.no_grad():
            for i, (a, b) in enumerate(zip(source, target, strict=True)):
                if a.numel() != b.numel():
                    raise SystemExit(f"{name}: tensor {i} is {tuple(a.shape)} in torchvision, "
                                     f"{tuple(b.shape)} in cnncost")
                b.copy_(a.reshape(b.shape))
            expected, got = theirs(x), ours(x)
        scale = float(expected.abs().max())
        difference = float((got - expected).abs().max())
        relative = difference / scale
        ok = got.shape == expected.shape and relative <= 1e-4
        failed += not ok
        results["models"][name] = {"input": [1, 3, size, size], "max_abs_difference": difference,
                                   "relative_to_max_output": relative, "tensors": len(source)}
        print(f"{name:24} {size:4} tensors {len(source):4} max |diff| {difference:.3g} "
              f"(relative {relative:.2g}) {'ok' if ok else 'NOT THE SAME FUNCTION'}", flush=True)
    if not write:
        return 1 if failed else 0
    results["about"] = ("largest output difference between cnncost.build(NAME) and the "
                        "torchvision model with the same random weights; written by "
                        "benchmarks/zoo_reference.py check")
    results["torch"], results["torchvision"] = torch.__version__, torchvision.__version__
    results["models"] = dict(sorted(results["models"].items()))
    FUNCTION_CHECK.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 1 if failed else 0


DOC = ROOT / "docs" / "zoo.md"
DOC_HEAD = """# The zoo

Every bundled spec, and every published model name that stands for a bundled spec with
one of its variants (`specs/_names.yaml`): `cnncost analyze efficientnet_b3` is
`cnncost analyze efficientnet --variant b3`, and `--variant` and `--set` still apply on
top. `cnncost specs` prints the same list.

- **params**, **MACs**: what cnncost computes, at the input shown.
- **torchvision**: the real torchvision model (weights=None, eval mode) counted by
  `benchmarks/zoo_reference.py record` with torch {torch} and torchvision {torchvision}:
  `sum(p.numel())`, and `FlopCounterMode` total // 2 at the resolution torchvision
  evaluates at. **match** is `exact` when params, buffers and MACs all equal it, and the
  published `num_params` and `_ops` (GMACs, 3 decimals) of torchvision's weight metadata
  round from the same numbers. GoogLeNet with weights=None has its two auxiliary classifiers
  (13.0M params); torchvision publishes the model without them: `--set aux=false`
  (6,624,904 params).
- **function**: the largest output difference, relative to the largest output, between
  `cnncost.build(NAME)` and the torchvision model after copying the torchvision model's
  random weights and batch-norm statistics into it (in the order the forward pass uses
  them), on one random input at min(resolution, 224) (Inception v3: 299, which its
  auxiliary classifier needs): `benchmarks/zoo_reference.py check`. Float32 noise is around 1e-7; a different network is around 1e-2 or more.
- Other bundled specs (LeNet-5, MobileNetV1 and the seed models) are checked against their
  published figures in `tests/test_golden.py`.

This page is generated: `python benchmarks/zoo_reference.py doc` (tests/test_zoo.py
fails when it is out of date).

| name | spec | input | params | MACs | torchvision params / GMACs | match | function |
|---|---|---|---:|---:|---|---|---|
"""


def doc_text() -> str:
    sys.path.insert(0, str(ROOT))
    from cnncost.api import analyze
    from cnncost.catalogue import catalogue

    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))
    function = json.loads(FUNCTION_CHECK.read_text(encoding="utf-8"))["models"] \
        if FUNCTION_CHECK.exists() else {}
    lines = [DOC_HEAD.format(torch=reference["torch"], torchvision=reference["torchvision"])]
    for family in catalogue():
        for row in family.rows:
            spec = row.family + (f" `--variant {row.variant}`" if row.variant else "")
            known = reference["models"].get(row.name)
            published, match, checked = "", "", ""
            if known:
                published = f"{known['published_params']:,} / {known['published_gmacs']}"
                totals = analyze(row.name).totals
                same = (totals.params, totals.buffers, totals.macs) == \
                    (known["params"], known["buffers"], known["macs"])
                published_totals = analyze(row.name, set=PUBLISHED_SETTINGS.get(row.name)).totals
                rounds = published_totals.params == known["published_params"] and \
                    round(published_totals.macs / 1e9, 3) == known["published_gmacs"]
                match = "exact" if same and rounds else "**differs**"
            if row.name in function:
                checked = f"{function[row.name]['relative_to_max_output']:.1e}"
            lines.append(f"| {row.name} | {spec} | {row.input} | {row.params:,} | {row.macs:,} "
                         f"| {published} | {match} | {checked} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    command, *rest = sys.argv[1:] or ["record"]
    if command == "record":
        record()
    elif command == "doc":
        DOC.write_text(doc_text(), encoding="utf-8")
        print(f"wrote {DOC.relative_to(ROOT)}")
    elif command == "check":
        dry = "--dry-run" in rest
        raise SystemExit(check([n for n in rest if n != "--dry-run"], write=not dry))
    else:
        raise SystemExit("usage: zoo_reference.py record | doc | check [--dry-run] [NAME ...]")
