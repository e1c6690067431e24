"""Counting profiles: each reproduces what its tool reported on the bundled specs.

tests/data/convention_reference.json is the recorded output of fvcore, ptflops and
torch.utils.flop_counter on the PyTorch model of every bundled spec (regenerate with
`python benchmarks/convention_reference.py`; versions are inside the file).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import cnncost
from cnncost.cli import main
from cnncost.cost.conventions import PROFILES, get
from cnncost.cost.ops import OPS

DATA = json.loads((Path(__file__).parent / "data" / "convention_reference.json")
                  .read_text(encoding="utf-8"))
SPECS = sorted(DATA["specs"])


def test_reference_data_covers_every_bundled_spec():
    assert set(SPECS) == set(cnncost.bundled_specs())
    assert DATA["versions"]["fvcore"] == "0.1.5.post20221221"
    assert DATA["versions"]["ptflops"] == "0.7.5"
    assert DATA["versions"]["thop"] == "0.1.1-2209072238"  # pip: 0.1.1.post2209072238


# profile -> (tool recorded in the reference data, the key of its MAC count there)
RECORDED = {"torchvision": ("torch_flop_counter", "macs"), "fvcore": ("fvcore", "flops"),
            "ptflops": ("ptflops", "macs"), "thop": ("thop", "macs")}


# The zoo families are recorded on torchvision's own models. Where torchvision writes a
# layer as a function call or with another module type than the usual one the profiles
# assume (docs/conventions.md), the hook-based tools count something else: (profile, spec)
# -> (the tool's MACs minus the profile's, params minus the profile's), each explained.
KNOWN_GAPS = {
    # nn.LayerNorm on channels-last tensors in every block: ptflops 1 per element
    # (96*56*56*3 + 192*28*28*3 + 384*14*14*9 + 768*7*7*3 = 2,145,024), thop 4 per element
    # and its 2 x (96*3 + 192*3 + 384*9 + 768*3) params
    ("ptflops", "convnext"): (2_145_024, 0),
    ("thop", "convnext"): (4 * 2_145_024, 13_248),
    # F.adaptive_avg_pool2d over 1024x7x7: ptflops' 2 per input and thop's (49 + 1) x 1024
    ("ptflops", "densenet"): (-2 * 50_176, 0),
    ("thop", "densenet"): (-50 * 1024, 0),
    # F.relu in every conv unit: ptflops counts the 3,226,160 ReLU outputs once, not twice;
    # thop counts no params of the auxiliary classifiers eval mode never calls
    ("ptflops", "googlenet"): (-3_226_160, 0),
    ("thop", "googlenet"): (0, -(13_004_888 - 6_624_904)),
    # F.relu (8,967,488 outputs once, not twice), F.avg_pool2d in A/C/E (2,002,400 inputs)
    # and F.max_pool2d in B/D (288x35x35 + 768x17x17 = 574,752 inputs) once, not twice;
    # thop misses the functional average pools (2,002,400 outputs) and the auxiliary
    # classifier's params
    ("ptflops", "inception_v3"): (-(8_967_488 + 2_002_400 + 574_752), 0),
    ("thop", "inception_v3"): (-2_002_400, -(27_161_264 - 23_834_568)),
    # x.mean([2, 3]) over 1280x7x7 (MnasNet) and 1024x7x7 (ShuffleNetV2): no tool sees it
    ("fvcore", "mnasnet"): (-62_720, 0),
    ("ptflops", "mnasnet"): (-2 * 62_720, 0),
    ("thop", "mnasnet"): (-50 * 1280, 0),
    ("fvcore", "shufflenet_v2"): (-50_176, 0),
    ("ptflops", "shufflenet_v2"): (-2 * 50_176, 0),
    ("thop", "shufflenet_v2"): (-50 * 1024, 0),
}


@pytest.mark.parametrize("name", SPECS)
@pytest.mark.parametrize("convention", RECORDED)
def test_profile_matches_the_recorded_tool(convention, name):
    tool, macs_key = RECORDED[convention]
    ref = DATA["specs"][name][tool]
    t = cnncost.analyze(name, convention=convention).totals
    gap = KNOWN_GAPS.get((convention, name), (0, 0))
    assert (ref[macs_key] - t.macs, ref["params"] - t.params) == gap


OPS_DATA = json.loads((Path(__file__).parent / "data" / "convention_ops_reference.json")
                      .read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", sorted(OPS_DATA["cases"]))
@pytest.mark.parametrize("convention", RECORDED)
def test_profile_matches_the_recorded_tool_op_by_op(convention, case):
    """The language 2.0 ops one at a time (benchmarks/convention_ops_reference.py): each
    tool run on the model cnncost builds for a one-op spec."""
    tool, macs_key = RECORDED[convention]
    recorded = OPS_DATA["cases"][case]
    layer = recorded["layer"]
    spec = {"input": OPS_DATA["input"], "layers": layer if isinstance(layer, list) else [layer]}
    t = cnncost.analyze(spec, convention=convention).totals
    assert (t.macs, t.params) == (recorded[tool][macs_key], recorded[tool]["params"])


def test_op_reference_data_is_of_the_recorded_versions():
    assert OPS_DATA["versions"] == {k: v for k, v in DATA["versions"].items()
                                    if k in OPS_DATA["versions"]}


def test_thop_depthwise_and_adaptive_rules():
    spec = {"name": "dw", "input": [8, 10, 10], "layers": [
        {"op": "depthwise", "kernel": 3, "padding": 1, "bias": False},
        {"op": "adaptive_avgpool", "output": 3}]}
    t = cnncost.analyze(spec, convention="thop").totals
    assert t.macs == 8 * 10 * 10 * 1 * 9 + int((10 / 3 * 10 / 3 + 1) * 8 * 9)


def test_fvcore_by_operator_agrees_with_the_rule_split():
    """fvcore's own split for resnet50: conv + linear = our MACs; batch_norm = 2 x BN elements."""
    by_op = DATA["specs"]["resnet50"]["fvcore"]["by_operator"]
    plain = cnncost.analyze("resnet50")
    bn_elements = sum(r.other_ops // 2 for r in plain.rows if r.op == "batchnorm")
    assert by_op["conv"] + by_op["linear"] == plain.totals.macs
    assert by_op["batch_norm"] == 2 * bn_elements
    assert by_op["adaptive_avg_pool2d"] == 2048 * 7 * 7
    assert "aten::max_pool2d" in DATA["specs"]["resnet50"]["fvcore"]["skipped"]


@pytest.mark.parametrize("name,params", [
    ("mobilenet_v1", 4_253_864),  # Keras applications.MobileNet() Total params
    ("mobilenet_v2", 3_538_984),  # Keras applications.MobileNetV2() Total params
    ("seed_mnist_cnn", 1_199_882),  # Keras mnist_cnn example
    ("seed_mlp_4096", 2_365_450),  # model.summary() printed in seed 000
])
def test_keras_profile_counts_bn_moving_statistics(name, params):
    default = cnncost.analyze(name).totals
    keras = cnncost.analyze(name, convention="keras").totals
    assert keras.params == params == default.keras_params
    assert keras.macs == default.macs
    assert keras.weight_bytes == 4 * params


def test_default_profile_changes_nothing():
    a = cnncost.analyze("mobilenet_v2")
    b = cnncost.analyze("mobilenet_v2", convention="torchvision")
    assert a == b
    assert "convention" not in a.to_dict()


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_states_every_op(name):
    assert set(PROFILES[name].counts) == set(OPS)


def test_profile_scales_with_batch_and_keeps_memory():
    one = cnncost.analyze("resnet18", convention="ptflops")
    four = cnncost.analyze("resnet18", convention="ptflops", batch=4)
    plain = cnncost.analyze("resnet18")
    assert four.totals.macs == 4 * one.totals.macs
    assert four.totals.flops == 2 * four.totals.macs
    assert one.totals.peak_activation_bytes == plain.totals.peak_activation_bytes
    assert sum(r.macs for r in one.rows) == one.totals.macs


def test_ptflops_counts_bias_per_output_element():
    spec = {"name": "one", "input": [3, 8, 8],
            "layers": [{"op": "conv", "out": 4, "kernel": 3, "padding": 1, "bias": True}]}
    t = cnncost.analyze(spec, convention="ptflops").totals
    assert t.macs == 4 * 8 * 8 * 3 * 9 + 4 * 8 * 8


def test_unknown_convention():
    with pytest.raises(cnncost.SpecError, match="did you mean 'fvcore'"):
        cnncost.analyze("resnet18", convention="fvcor")
    with pytest.raises(ValueError, match="conventions: fvcore, keras, ptflops, pycls, thop, torchvision"):
        get("nope")


def test_cli_analyze_convention():
    runner = CliRunner()
    result = runner.invoke(main, ["analyze", "resnet50", "--convention", "fvcore", "--format",
                                  "json"], catch_exceptions=False)
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["convention"] == "fvcore"
    assert data["totals"]["macs"] == DATA["specs"]["resnet50"]["fvcore"]["flops"]
    table = runner.invoke(main, ["analyze", "resnet50", "--convention", "ptflops"])
    assert table.exit_code == 0 and "convention ptflops" in table.output
    bad = runner.invoke(main, ["analyze", "resnet50", "--convention", "thp"])
    assert bad.exit_code == 2


def test_cli_choices_match_the_registry():
    from cnncost.cli import CONVENTIONS

    assert set(CONVENTIONS) == set(PROFILES)
