"""`cnncost diff`: layers added, removed and changed, and deltas that sum to the totals."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

import cnncost
from cnncost.cli import main
from cnncost.comparison.diff import diff


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.mark.parametrize("a,b,kw_a,kw_b,depth", [
    ("resnet18", "resnet34", {}, {}, 0),
    ("vgg16", "vgg16_bn", {}, {}, 0),
    ("mobilenet_v1", "mobilenet_v1", {}, {"set": {"width": 0.5}}, 0),
    ("resnet50", "resnet50", {}, {"variant": "paper"}, 2),
    ("resnet50", "mobilenet_v2", {}, {}, 1),
])
def test_deltas_sum_to_the_difference_of_totals(a, b, kw_a, kw_b, depth):
    ra, rb = cnncost.analyze(a, **kw_a), cnncost.analyze(b, **kw_b)
    d = diff(ra, rb, depth)
    assert sum(c.params for c in d.changes) == rb.totals.params - ra.totals.params
    assert sum(c.macs for c in d.changes) == rb.totals.macs - ra.totals.macs
    assert sum(c.act_bytes for c in d.changes) == (rb.totals.activation_bytes
                                                   - ra.totals.activation_bytes)
    assert d.unchanged + d.count("changed") + d.count("removed") == len(ra.collapse(depth))
    assert d.unchanged + d.count("changed") + d.count("added") == len(rb.collapse(depth))


def test_resnet18_to_34_adds_blocks():
    d = diff(cnncost.analyze("resnet18"), cnncost.analyze("resnet34"), depth=2)
    assert [c.name for c in d.changes if c.kind == "added"] == [
        "layer1.block3", "layer2.block3", "layer2.block4", "layer3.block3", "layer3.block4",
        "layer3.block5", "layer3.block6", "layer4.block3"]
    assert d.count("removed") == d.count("changed") == 0
    # a basic block of layer3 (256 channels, 14x14): two 3x3 convs and two batch norms
    block = next(c for c in d.changes if c.name == "layer3.block3")
    assert block.params == 2 * (256 * 256 * 9 + 2 * 256)
    assert block.macs == 2 * 256 * 256 * 9 * 14 * 14


def test_vgg16_to_bn_adds_norms_only():
    d = diff(cnncost.analyze("vgg16"), cnncost.analyze("vgg16_bn"))
    assert {c.b.op for c in d.changes} == {"batchnorm"} and d.count("added") == 13
    assert sum(c.params for c in d.changes) == 138_365_992 - 138_357_544


def test_same_spec_is_all_unchanged():
    d = diff(cnncost.analyze("resnet18"), cnncost.analyze("resnet18"))
    assert d.changes == [] and d.unchanged == len(cnncost.analyze("resnet18").rows)


def test_removed_layers_in_place(tmp_path):
    a = {"name": "a", "input": [3, 8, 8], "layers": [
        {"op": "conv", "name": "c1", "out": 4, "kernel": 3},
        {"op": "conv", "name": "c2", "out": 4, "kernel": 3},
        {"op": "flatten", "name": "f"}]}
    b = {**a, "name": "b", "layers": [a["layers"][0], a["layers"][2]]}
    d = diff(cnncost.analyze(a), cnncost.analyze(b))
    kinds = [(c.kind, c.name) for c in d.changes]
    assert ("removed", "c2") in kinds and ("changed", "f") in kinds
    removed = next(c for c in d.changes if c.name == "c2")
    assert removed.params == -(4 * 4 * 9 + 4) and removed.macs == -(4 * 4 * 9 * 4 * 4)


def test_cli_table_json_csv():
    table = invoke("diff", "resnet18", "resnet34", "--depth", "2")
    assert table.exit_code == 0
    assert "8 added, 0 removed, 0 changed" in table.output
    assert "+1,849,688,064" in table.output  # 3,663,761,408 - 1,814,073,344
    data = json.loads(invoke("diff", "mobilenet_v1", "mobilenet_v1", "--set-b", "width=0.5",
                             "--format", "json").output)
    assert data["totals"]["macs"] == {"a": 568_740_352, "b": 149_497_088,
                                      "delta": 149_497_088 - 568_740_352}
    assert data["b"]["vars"]["width"] == 0.5 and data["a"]["vars"]["width"] == 1.0
    rows = list(csv.DictReader(io.StringIO(invoke("diff", "vgg16", "vgg16_bn", "--format",
                                                  "csv").output)))
    assert len(rows) == 13 and all(r["kind"] == "added" for r in rows)
    assert sum(int(r["params"]) for r in rows) == 8_448
    md = invoke("diff", "resnet18", "resnet34", "--depth", "1", "--format", "markdown").output
    assert "| total | A | B | B - A |" in md


def test_cli_bad_specs_exit_2_with_both_reported():
    result = CliRunner().invoke(main, ["diff", "nosuch_a.yaml", "resnet18", "--set-b",
                                       "widht=3"])
    assert result.exit_code == 2
    assert "nosuch_a.yaml: no such spec file" in result.stderr
    assert "unknown variable 'widht'; did you mean 'width'?" in result.stderr
    assert "Traceback" not in result.output


def test_header_names_files_as_a_reader_types_them(tmp_path, monkeypatch):
    """Bundled specs are `bundled:NAME` outside the repository, never an absolute path."""
    from click.testing import CliRunner

    from cnncost.cli import main

    monkeypatch.chdir(tmp_path)
    first = CliRunner().invoke(main, ["diff", "resnet18", "resnet34", "--depth", "1"])
    assert first.exit_code == 0
    header = first.output.splitlines()[0]
    assert header.startswith("diff resnet18 (bundled:resnet18) -> resnet34 (bundled:resnet34)")
    (tmp_path / "mine.yaml").write_text("input: [3, 8, 8]\nlayers: [relu]\n")
    own = CliRunner().invoke(main, ["diff", "mine.yaml", str(tmp_path / "mine.yaml")])
    assert own.output.splitlines()[0].startswith("diff mine (mine.yaml) -> mine (mine.yaml)")
