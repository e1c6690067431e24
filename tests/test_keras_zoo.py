"""Keras applications: the bundled specs count what Keras' model.summary() prints.

tests/data/keras_reference.json was written by ``benchmarks/keras_reference.py record``
from the real keras.applications models (weights=None, include_top=True, 1000 classes,
default input size; the versions are in the file): "Total params", "Trainable params"
and "Non-trainable params". `--convention keras` (docs/conventions.md) states params as
Keras' total, and its JSON totals carry `trainable` and `non_trainable`; the default
convention's params are Keras' trainable ones. These tests need
neither Keras nor TensorFlow. Whether a spec also computes Keras' function is checked by
``benchmarks/keras_reference.py check`` (Keras needed), for the `keras` variants.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import cnncost

DATA = Path(__file__).resolve().parent / "data"
REFERENCE = json.loads((DATA / "keras_reference.json").read_text(encoding="utf-8"))
MODELS = REFERENCE["models"]

# Keras application -> (bundled spec, variant). The `keras` variants are Keras' network
# layer for layer (benchmarks/keras_reference.py check: same outputs): VGG16 ends in a
# softmax; Keras' MobileNet uses ReLU6 and batch-norm epsilon 1e-3; Keras' MobileNetV2 pads
# its stride-2 convs bottom/right only (TensorFlow's 'same'), uses epsilon 1e-3 and has
# no dropout.
SPECS: dict[str, tuple[str, str | None]] = {
    "VGG16": ("vgg16", "keras"),
    "ResNet50": ("resnet50", "keras"),
    "ResNet101": ("resnet101", "keras"),
    "ResNet152": ("resnet152", "keras"),
    "MobileNet": ("mobilenet_v1", "keras"),
    "MobileNetV2": ("mobilenet_v2", "keras"),
    # Keras' DenseNet121: batch-norm epsilon 1.001e-5, ZeroPadding2D before the valid stem
    # conv and pool, softmax; InceptionV3: no auxiliary head, batch norms without a scale
    # (gamma), 'same' average pools that do not count padding, softmax; EfficientNetB0:
    # Rescaling and Normalization input layers, batch-norm epsilon 1e-3, TensorFlow's
    # 'same' padding (bottom/right) at stride 2, softmax.
    "DenseNet121": ("densenet", "keras"),
    "InceptionV3": ("inception_v3", "keras"),
    "EfficientNetB0": ("efficientnet", "keras"),
}

def test_every_recorded_model_is_accounted_for() -> None:
    assert set(SPECS) == set(MODELS)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_counts_equal_keras_summary(name: str) -> None:
    expected = MODELS[name]
    spec, variant = SPECS[name]
    height, width, channels = expected["input"]
    assert height == width
    result = cnncost.analyze(spec, variant=variant, convention="keras",
                             set={"resolution": height})
    assert tuple(result.input_shape) == (channels, height, width)
    totals = result.to_dict()["totals"]   # what `--format json` prints
    assert (totals["params"], totals["keras_params"]) == (expected["total"], expected["total"])
    assert (totals["trainable"], totals["non_trainable"]) == \
        (expected["trainable"], expected["non_trainable"])
    # the same without the convention: PyTorch's params are Keras' trainable ones
    default = cnncost.analyze(spec, variant=variant, set={"resolution": height}).totals
    assert (default.params, default.keras_params) == (expected["trainable"], expected["total"])


def test_footer_says_when_the_layout_is_not_keras_own() -> None:
    """--convention keras on a spec whose `keras` variant is not the one analyzed: a note
    names each setting that differs (ResNet-50 in Keras has conv biases, ...)."""
    from click.testing import CliRunner

    from cnncost.cli import main

    notes = cnncost.analyze("resnet50", convention="keras").notes
    assert len(notes) == 1 and "conv_bias=false (Keras: true)" in notes[0]
    assert "stride_on=conv2 (Keras: conv1)" in notes[0]
    assert cnncost.analyze("resnet50", variant="keras", convention="keras").notes == ()
    assert cnncost.analyze("lenet5", convention="keras").notes == ()  # no Keras layout known
    assert cnncost.analyze("resnet50").notes == ()  # only under the keras convention
    output = CliRunner().invoke(main, ["analyze", "resnet50", "--convention", "keras",
                                       "--depth", "1"]).output
    assert output.rstrip().splitlines()[-1].startswith("note: this is not Keras' own layout")
    data = cnncost.analyze("resnet50", convention="keras").to_dict()
    assert data["notes"] == list(notes)
