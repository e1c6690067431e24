"""The zoo: every torchvision classification CNN name analyzes exactly as torchvision
counts it.

tests/data/torchvision_reference.json was written by ``benchmarks/zoo_reference.py
record`` from the real torchvision models (weights=None, eval mode; the versions are in
the file): parameters, buffers, and MACs at the resolution torchvision evaluates at
(``FlopCounterMode`` // 2). These tests need neither torch nor torchvision.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import cnncost
from cnncost.api import bundled_specs, zoo_names

DATA = Path(__file__).resolve().parent / "data"
REFERENCE = json.loads((DATA / "torchvision_reference.json").read_text(encoding="utf-8"))
MODELS = REFERENCE["models"]
# torchvision publishes these without the auxiliary classifiers its weights=None model has
PUBLISHED_WITHOUT_AUX = {"googlenet": {"aux": False}}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_counts_equal_torchvision(name: str) -> None:
    expected = MODELS[name]
    result = cnncost.analyze(name, set={"resolution": expected["resolution"]})
    totals = result.totals
    assert (totals.params, totals.buffers, totals.macs) == \
        (expected["params"], expected["buffers"], expected["macs"])


@pytest.mark.parametrize("name", sorted(n for n in MODELS if "macs_training" in MODELS[n]))
def test_auxiliary_heads_work_only_in_training(name: str) -> None:
    expected = MODELS[name]
    result = cnncost.analyze(name, set={"resolution": expected["resolution"], "training": True})
    assert result.totals.macs == expected["macs_training"]
    assert result.totals.params == expected["params"]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_rounds_to_the_published_figures(name: str) -> None:
    """torchvision's weight metadata: num_params exactly, _ops (GMACs) to 3 decimals."""
    expected = MODELS[name]
    settings = {"resolution": expected["resolution"], **PUBLISHED_WITHOUT_AUX.get(name, {})}
    totals = cnncost.analyze(name, set=settings).totals
    assert totals.params == expected["published_params"]
    assert round(totals.macs / 1e9, 3) == pytest.approx(expected["published_gmacs"], abs=1e-9)


def test_every_name_resolves_to_a_bundled_spec_and_variant() -> None:
    bundled = bundled_specs()
    names = zoo_names()
    assert set(MODELS) <= set(bundled) | set(names)
    for name, entry in names.items():
        assert entry.spec in bundled, name
        assert entry.variant in cnncost.load(entry.spec).variants, name
        assert name not in bundled, f"{name} is both a file and a zoo name"


def test_a_zoo_name_is_its_spec_with_the_variant() -> None:
    by_name = cnncost.analyze("resnext50_32x4d")
    by_variant = cnncost.analyze("resnet50", variant="resnext50_32x4d")
    assert by_name.totals == by_variant.totals
    assert cnncost.load("resnext50_32x4d").name == "resnext50_32x4d"
    # --variant and --set still apply on top of the name's variant
    paper = cnncost.analyze("resnext50_32x4d", variant="paper")
    assert paper.totals.params == by_name.totals.params
    assert paper.totals.macs < by_name.totals.macs
    assert cnncost.analyze("resnext50_32x4d", set={"groups": 1, "base_width": 64}).totals.params \
        == cnncost.analyze("resnet50").totals.params


def test_docs_zoo_page_is_current() -> None:
    """docs/zoo.md is generated from the catalogue and the recordings; regenerate it with
    `python benchmarks/zoo_reference.py doc`."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "zoo_reference.py"
    module_spec = importlib.util.spec_from_file_location("zoo_reference", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    assert module.PUBLISHED_SETTINGS == PUBLISHED_WITHOUT_AUX
    page = (path.parent.parent / "docs" / "zoo.md").read_text(encoding="utf-8")
    assert page == module.doc_text(), "docs/zoo.md is out of date: python benchmarks/zoo_reference.py doc"


def test_validate_checks_a_name_table(tmp_path) -> None:
    """`cnncost validate specs/_names.yaml` (the pre-commit hook passes it with the specs)
    checks that every name's spec and variant exist, with file:line on a mistake."""
    from click.testing import CliRunner

    from cnncost.cli import main

    ok = CliRunner().invoke(main, ["validate", "specs/_names.yaml"])
    assert ok.exit_code == 0 and "published names" in ok.output, ok.output
    (tmp_path / "net.yaml").write_text("input: [3, 8, 8]\nvars: {w: 4}\nvariants: {wide: {w: 8}}\n"
                                       "layers:\n  - {op: conv, out: w, kernel: 1}\n")
    table = tmp_path / "_names.yaml"
    table.write_text("net_wide: {spec: net, variant: wide}\nnet_x: {spec: net, variant: wdie}\n"
                     "other: {spec: nett, variant: wide}\n")
    result = CliRunner().invoke(main, ["validate", str(table)])
    assert result.exit_code == 2
    assert f"{table}:2: net_x: spec 'net' has no variant 'wdie'; did you mean 'wide'?" \
        in result.stderr
    assert f"{table}:3: other: no spec 'nett' beside this file" in result.stderr


# The largest size of each family whose sizes are variants (the family's default size is
# verified with every bundled spec in tests/test_verify.py).
LARGEST = ["convnext_large", "efficientnet_b7", "efficientnet_v2_l", "resnext101_64x4d",
           "wide_resnet101_2", "vgg19_bn", "regnet_y_32gf", "regnet_x_32gf", "densenet201",
           "mobilenet_v3_small", "mnasnet1_3", "shufflenet_v2_x2_0", "squeezenet1_1"]


@pytest.mark.torch
@pytest.mark.parametrize("name", LARGEST)
def test_largest_size_verifies_on_meta(name: str) -> None:
    """The PyTorch model cnncost builds for the name agrees with the analysis layer by
    layer (shapes, params, buffers, MACs), on the meta device (no memory, no arithmetic)."""
    pytest.importorskip("torch")
    from cnncost.pytorch.verification import verify

    result = verify(name, device="meta", field_check=False, latency_runs=0)
    assert result.ok, result.first_mismatch()


def test_import_record_covers_every_torchvision_name() -> None:
    """benchmarks/import_torchvision.py's record: every name tried; an exact import counts
    torchvision's params (GoogLeNet and Inception v3 built without auxiliary heads); a
    failed one names its operations."""
    record = json.loads((DATA / "import_torchvision.json").read_text(encoding="utf-8"))
    assert set(record["models"]) == set(MODELS)
    for name, entry in record["models"].items():
        if entry["exact"] and "built_with" in entry:  # without the auxiliary heads
            assert entry["params"] < MODELS[name]["params"], name
        elif entry["exact"]:
            assert entry["params"] == MODELS[name]["params"], name
        else:
            assert "without a spec equivalent" in entry["error"], name
    assert sum(e["exact"] for e in record["models"].values()) == 68
    assert record["models"]["googlenet"]["params"] == MODELS["googlenet"]["published_params"]
