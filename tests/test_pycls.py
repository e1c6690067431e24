"""`--convention pycls` reproduces pycls' own complexity figures (flops, params, acts).

tests/data/pycls_reference.json holds the figures pycls publishes in
dev/model_complexity.json for its ResNet, ResNeXt, EfficientNet and all 24 RegNet
baselines, with the bundled spec and settings that are each network. pycls counts flops
as conv/linear MACs plus one add per output channel of a biased layer, and acts as the
output elements of its conv, linear and pooling layers (pycls/models/blocks.py
conv2d_cx, linear_cx, pool2d_cx); docs/conventions.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import cnncost

DATA = json.loads((Path(__file__).resolve().parent / "data" / "pycls_reference.json")
                  .read_text(encoding="utf-8"))["models"]


@pytest.mark.parametrize("entry", DATA, ids=lambda e: Path(e["config"]).stem)
def test_pycls_complexity(entry: dict) -> None:
    result = cnncost.analyze(entry["spec"], variant=entry["variant"], set=entry["set"],
                             convention="pycls")
    assert (result.totals.macs, result.totals.params, result.acts) == \
        (entry["flops"], entry["params"], entry["acts"])
    totals = result.to_dict()["totals"]
    assert (totals["macs"], totals["acts"]) == (entry["flops"], entry["acts"])


def test_pycls_flops_are_macs_plus_one_add_per_biased_output_channel() -> None:
    plain = cnncost.analyze("resnet50").totals.macs
    assert cnncost.analyze("resnet50", convention="pycls").totals.macs == plain + 1000  # fc bias


def test_pycls_regnets_round_widths_as_pycls_does() -> None:
    """Same parameters, different rounding to the group width: torchvision's RegNetX-400MF
    ends 400 wide (make_divisible never goes below 90%), pycls' 384 (24.5 rounds to 24)."""
    torchvision = cnncost.analyze("regnet_x_400mf")
    pycls = cnncost.analyze("regnet", variant="pycls_x_400mf")
    assert torchvision.output_shape == pycls.output_shape == (1000,)
    widths = {r.shape[0] for r in torchvision.rows if r.name.endswith(".c.conv")}
    assert max(widths) == 400
    assert max(r.shape[0] for r in pycls.rows if r.name.endswith(".c.conv")) == 384
    assert (torchvision.totals.params, pycls.totals.params) == (5_495_976, 5_157_512)
