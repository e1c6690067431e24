"""Record what Keras counts for its applications, and check that cnncost's `keras` variants
compute the same function.

Two jobs, both run in a separate virtual environment that has Keras (cnncost's tests and
CI never need it):

``python benchmarks/keras_reference.py record``
    builds keras.applications VGG16, ResNet50, ResNet101, ResNet152, MobileNet,
    MobileNetV2, DenseNet121, InceptionV3 and EfficientNetB0 (``weights=None``,
    ``include_top=True``, 1000 classes, the default input size) and writes
    tests/data/keras_reference.json: per model the input shape (height, width, channels)
    and what ``model.summary()`` prints as "Total params", "Trainable params" and
    "Non-trainable params" (``count_params`` of ``model.weights``,
    ``model.trainable_weights`` and ``model.non_trainable_weights``, the same function
    ``summary()`` calls), with the Keras, backend and torch versions.
    tests/test_keras_zoo.py checks cnncost's ``--convention keras`` totals against it.

``python benchmarks/keras_reference.py check [NAME[=SPEC:VARIANT] ...]``
    for each Keras model (default: FUNCTION_CHECKS below), builds the Keras model and
    ``cnncost.build(SPEC, variant=VARIANT)``, gives the Keras model random weights and
    batch-norm statistics, copies every weight into the cnncost model layer by layer
    (Keras' layer order; kernels transposed from Keras' channels-last layout, a Dense
    after Flatten re-ordered from (H, W, C) to (C, H, W)), compares batch-norm epsilon
    and momentum, runs both on one random input (NHWC for Keras, NCHW for cnncost) and
    prints the largest absolute difference of the logits (Keras built with
    ``classifier_activation=None``; cnncost's input to its final softmax, if it has one)
    relative to the largest logit, and whether the spec ends in Keras' softmax. Anything
    above float noise (1e-4 relative) means the spec is not the same network. It writes
    nothing.

Set up the environment once (Keras 3 on its PyTorch backend; no TensorFlow needed):

    python3 -m venv /tmp/kerasvenv
    /tmp/kerasvenv/bin/pip install torch==2.13.0 keras==3.15.1 numpy   # torch: its CPU build
    /tmp/kerasvenv/bin/pip install pyyaml click   # cnncost's own dependencies, for check
    KERAS_BACKEND=torch PYTHONPATH=. /tmp/kerasvenv/bin/python benchmarks/keras_reference.py record
    KERAS_BACKEND=torch PYTHONPATH=. /tmp/kerasvenv/bin/python benchmarks/keras_reference.py check

Recorded with Keras 3.15.1 on the torch backend (torch 2.13.0+cpu, installed from its
CPU wheel, torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl), numpy 2.4.6,
Python 3.11.7. The counts are the shapes of the weights Keras creates, which the backend
does not change. `record` takes about half a minute, `check` of the three ResNets about a
minute and a half on two CPUs.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "tests" / "data" / "keras_reference.json"

MODELS = ("VGG16", "ResNet50", "ResNet101", "ResNet152", "MobileNet", "MobileNetV2",
          "DenseNet121", "InceptionV3", "EfficientNetB0")

# Keras application -> (bundled spec, variant or None) whose function `check` compares by
# default: the specs written to be the Keras network (variant `keras`).
FUNCTION_CHECKS = {
    "VGG16": ("vgg16", "keras"),
    "ResNet50": ("resnet50", "keras"),
    "ResNet101": ("resnet101", "keras"),
    "ResNet152": ("resnet152", "keras"),
    "MobileNet": ("mobilenet_v1", "keras"),
    "MobileNetV2": ("mobilenet_v2", "keras"),
    "DenseNet121": ("densenet", "keras"),
    "InceptionV3": ("inception_v3", "keras"),
    "EfficientNetB0": ("efficientnet", "keras"),
}


def keras_module() -> Any:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    return keras


def count(weights: list[Any]) -> int:
    """What model.summary() prints: keras.src.utils.summary_utils.count_params, which
    counts each distinct variable once (by its path) as the product of its shape."""
    from keras.src.utils.summary_utils import count_params

    return int(count_params(weights))


def record() -> None:
    keras = keras_module()
    models: dict[str, Any] = {}
    for name in MODELS:
        model = getattr(keras.applications, name)(weights=None)
        entry = {
            "input": [int(d) for d in model.input_shape[1:]],
            "total": count(model.weights),
            "trainable": count(model.trainable_weights),
            "non_trainable": count(model.non_trainable_weights),
        }
        # the same totals from the shapes, independently of Keras' helper
        shapes = sum(int(_product(w.shape)) for w in model.weights)
        assert shapes == entry["total"] == entry["trainable"] + entry["non_trainable"], name
        models[name] = entry
        print(f"{name:16} {entry['input']} total {entry['total']:,} trainable "
              f"{entry['trainable']:,} non-trainable {entry['non_trainable']:,}", flush=True)
        del model
    import torch

    document = {
        "about": ("keras.applications models, weights=None, include_top=True, 1000 classes, "
                  "default input size: model.summary() totals; written by "
                  "benchmarks/keras_reference.py record"),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "torch": torch.__version__,
        "models": models,
    }
    REFERENCE.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


def _product(shape: Any) -> int:
    total = 1
    for d in shape:
        total *= int(d)
    return total


# ---------------------------------------------------------------------------- check


def keras_layer_order(name: str, layers: list[Any]) -> list[Any]:
    """Keras' layers with weights, in the order cnncost's model registers the same layers.

    Keras lists a functional model's layers in graph order, which interleaves parallel
    branches; a cnncost spec registers them in the order its source code creates them.
    - ResNet: Keras creates a block's projection shortcut (`_0_conv`, `_0_bn`) before the
      body (`_1_` .. `_3_`); a cnncost residual block registers its body first.
    - InceptionV3: its conv and batch-norm layers are unnamed, so Keras numbers them in
      the order the code creates them (`conv2d_7`, `batch_normalization_7`): that order.
    Everything else is in Keras' layer order."""
    if name.startswith("ResNet"):
        def key(item: tuple[int, Any]) -> tuple:
            position, layer = item
            parts = layer.name.split("_")   # conv2_block1_0_conv
            if len(parts) >= 4 and parts[1].startswith("block") and parts[2].isdigit():
                block = layers.index(next(x for x in layers
                                          if x.name.startswith(f"{parts[0]}_{parts[1]}_")))
                return (block, 4 if parts[2] == "0" else int(parts[2]), position)
            return (position, 0, position)

        return [layer for _, layer in sorted(enumerate(layers), key=key)]
    if name == "InceptionV3":
        def number(layer: Any) -> tuple:
            stem, _, suffix = layer.name.rpartition("_")
            kind = {"conv2d": 0, "batch_normalization": 1}
            if layer.name in kind:
                return (0, kind[layer.name])
            if stem in kind and suffix.isdigit():
                return (int(suffix), kind[stem])
            return (len(layers), 0)   # the classifier

        return sorted(layers, key=number)
    return layers


def keras_tensors(layer: Any, flatten_from: tuple[int, int, int] | None) -> list[Any]:
    """A Keras layer's float variables, converted to PyTorch's layout."""
    import numpy as np

    kind = type(layer).__name__
    out = []
    for variable in layer.weights:
        value = np.asarray(variable.numpy())
        if not np.issubdtype(value.dtype, np.floating):
            continue
        if kind == "Conv2D" and value.ndim == 4:          # (kh, kw, in/groups, out)
            value = value.transpose(3, 2, 0, 1)
        elif kind == "DepthwiseConv2D" and value.ndim == 4:  # (kh, kw, in, multiplier)
            kh, kw, c, m = value.shape
            value = value.reshape(kh, kw, c * m).transpose(2, 0, 1)[:, None]
        elif kind == "Dense" and value.ndim == 2:          # (in, out)
            if flatten_from is not None:
                h, w, c = flatten_from
                value = value.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)
            value = value.T
        out.append(np.ascontiguousarray(value))
    return out


def cnncost_modules(model: Any) -> list[Any]:
    """cnncost's modules that own float parameters or buffers, in registration order."""
    result = []
    for module in model.modules():
        own = [t for t in list(module.parameters(recurse=False)) + list(module.buffers(recurse=False))
               if t.dtype.is_floating_point]
        if own:
            result.append((module, own))
    return result


def randomize_keras(model: Any, seed: int) -> None:
    """Random weights with fan-in scaling, non-trivial batch-norm statistics and
    Normalization mean and variance."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for variable in layer.weights:
            shape = tuple(int(d) for d in variable.shape)
            dtype = str(variable.dtype)
            if "float" not in dtype:
                continue
            path = variable.path
            if path.endswith("variance") or path.endswith("gamma"):   # batch norm, Normalization
                value = rng.uniform(0.5, 1.5, shape)
            elif len(shape) >= 2:
                fan_in = _product(shape[:-1]) if type(layer).__name__ != "DepthwiseConv2D" \
                    else _product(shape[:2])
                value = rng.standard_normal(shape) / max(fan_in, 1) ** 0.5
            else:
                value = rng.standard_normal(shape) * 0.1
            variable.assign(value.astype("float32"))
        if hasattr(layer, "finalize_state"):   # Normalization reads its mean and variance there
            layer.finalize_state()


def check(requested: list[str]) -> int:
    import numpy as np
    import torch

    import cnncost

    keras = keras_module()
    targets: dict[str, tuple[str, str | None]] = {}
    for item in requested or [f"{k}={s}:{v}" for k, (s, v) in FUNCTION_CHECKS.items()]:
        name, _, target = item.partition("=")
        if not target:
            if name not in FUNCTION_CHECKS:
                raise SystemExit(f"{name}: give the spec as {name}=SPEC[:VARIANT]")
            spec, variant = FUNCTION_CHECKS[name]
        else:
            spec, _, variant_text = target.partition(":")
            variant = variant_text or None
        targets[name] = (spec, variant)
    failed = 0
    for name, (spec, variant) in targets.items():
        ours = cnncost.build(spec, variant=variant).eval()
        last = list(ours.modules())[-1]
        softmax = type(last).__name__ == "Softmax"
        logits: list[Any] = []

        def keep(module: Any, args: tuple, store: list[Any] = logits) -> None:
            store.append(args[0])

        if softmax:   # compare logits, not saturated probabilities
            last.register_forward_pre_hook(keep)
        theirs = getattr(keras.applications, name)(weights=None, classifier_activation=None)
        randomize_keras(theirs, seed=0)
        flatten_shape = None
        keras_layers = []
        for layer in theirs.layers:
            if type(layer).__name__ == "Flatten":
                flatten_shape = tuple(int(d) for d in layer.input.shape[1:])
            if any("float" in str(v.dtype) for v in layer.weights):
                keras_layers.append((layer, flatten_shape))
                if type(layer).__name__ == "Dense":
                    flatten_shape = None
        order = keras_layer_order(name, [layer for layer, _ in keras_layers])
        flatten_of = {id(layer): shape for layer, shape in keras_layers}
        modules = cnncost_modules(ours)
        label = f"{name} vs {spec}" + (f" --variant {variant}" if variant else "")
        if len(order) != len(modules):
            print(f"{label}: {len(order)} layers with weights in Keras, {len(modules)} in cnncost")
            failed += 1
            continue
        problems = []
        with torch.no_grad():
            for layer, (module, tensors) in zip(order, modules, strict=True):
                values = keras_tensors(layer, flatten_of[id(layer)])
                if len(values) != len(tensors):
                    problems.append(f"{layer.name}: {len(values)} tensors, cnncost "
                                    f"{type(module).__name__} has {len(tensors)}")
                    continue
                for value, tensor in zip(values, tensors, strict=True):
                    if value.size != tensor.numel() or (value.ndim == tensor.dim()
                                                        and value.shape != tuple(tensor.shape)):
                        problems.append(f"{layer.name}: {value.shape} in Keras, "
                                        f"{tuple(tensor.shape)} in cnncost")
                        continue
                    tensor.copy_(torch.from_numpy(value).reshape(tensor.shape))
                if type(layer).__name__ == "BatchNormalization":
                    if abs(layer.epsilon - module.eps) > 1e-12:
                        problems.append(f"{layer.name}: epsilon {layer.epsilon} in Keras, "
                                        f"{module.eps} in cnncost")
                    if abs((1 - layer.momentum) - module.momentum) > 1e-9:
                        problems.append(f"{layer.name}: momentum {layer.momentum} in Keras "
                                        f"({1 - layer.momentum:g} in PyTorch's sense), "
                                        f"{module.momentum} in cnncost")
        if problems:
            print(f"{label}: " + "; ".join(problems[:8])
                  + (f" (and {len(problems) - 8} more)" if len(problems) > 8 else ""))
            failed += 1
            if any("tensors" in p or " in Keras, (" in p for p in problems):
                continue
        height, width, channels = (int(d) for d in theirs.input_shape[1:])
        x = np.random.default_rng(1).standard_normal((1, height, width, channels)).astype("float32")
        with torch.no_grad():
            expected = np.asarray(keras.ops.convert_to_numpy(theirs(x, training=False)))
            got = ours(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
            got = (logits[-1] if softmax else got).numpy()
        scale = float(np.abs(expected).max())
        difference = float(np.abs(got - expected).max()) if got.shape == expected.shape else float("inf")
        relative = difference / scale
        ok = relative <= 1e-4 and not problems
        failed += not ok and not problems
        what = "softmax" if softmax else "no softmax (Keras: softmax)"
        print(f"{label:40} {height}x{width} layers {len(order):4} logits max |diff| "
              f"{difference:.3g} (relative {relative:.2g}) "
              f"{'ok' if ok else 'NOT THE SAME FUNCTION'}; {what}", flush=True)
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["record"]:
        record()
        return 0
    if argv[:1] == ["check"]:
        return check(argv[1:])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
