"""The command line: output formats parse back to the library's numbers, options work,
exit codes follow the contract (0 ok, 2 bad input)."""

from __future__ import annotations

import re

import csv
import io
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

import cnncost
from cnncost.cli import main


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_analyze_table_by_bundled_name():
    result = invoke("analyze", "resnet50")
    assert result.exit_code == 0
    assert "25,557,032" in result.output and "4,089,184,256" in result.output
    assert "layer1.block1.conv2.conv" in result.output
    assert "peak live activations" in result.output


def test_json_round_trips_exact_numbers():
    result = invoke("analyze", "specs/mobilenet_v2.yaml", "--format", "json", "--batch", "4",
                    "--dtype", "bf16")
    data = json.loads(result.output)
    lib = cnncost.analyze("mobilenet_v2", batch=4, dtype="bf16")
    assert data["totals"]["params"] == lib.totals.params == 3_504_872
    assert data["totals"]["macs"] == lib.totals.macs == 4 * 300_774_272
    assert data["totals"]["peak_activation_bytes"] == lib.totals.peak_activation_bytes
    assert [r["name"] for r in data["layers"]] == [r.name for r in lib.rows]
    assert data["batch"] == 4 and data["dtype"] == "bf16"
    assert sum(r["macs"] for r in data["layers"]) == data["totals"]["macs"]


def test_csv_round_trips_and_sums_to_totals():
    result = invoke("analyze", "vgg16_bn", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.output)))
    lib = cnncost.analyze("vgg16_bn")
    assert len(rows) == len(lib.rows)
    for column in ("params", "buffers", "macs", "flops", "other_ops", "act_bytes"):
        assert sum(int(r[column]) for r in rows) == getattr(
            lib.totals, {"act_bytes": "activation_bytes"}.get(column, column))


def test_markdown_table_rows():
    result = invoke("analyze", "lenet5", "--format", "markdown")
    lines = [line for line in result.output.splitlines() if line.startswith("| ")]
    lib = cnncost.analyze("lenet5")
    layer_rows = [line for line in lines if line.split("|")[1].strip() in
                  {r.name for r in lib.rows}]
    assert len(layer_rows) == len(lib.rows)
    assert f"{lib.totals.params:,}" in result.output


def test_depth_collapses_rows():
    result = invoke("analyze", "resnet50", "--format", "json", "--depth", "1")
    names = [r["name"] for r in json.loads(result.output)["layers"]]
    assert names == ["input", "stem", "pool", "layer1", "layer2", "layer3", "layer4", "avgpool",
                     "fc"]


def test_input_set_and_variant_options():
    data = json.loads(invoke("analyze", "mobilenet_v1", "--format", "json", "--set", "width=0.5",
                             "--input", "3x160x160").output)
    assert data["vars"]["width"] == 0.5 and data["input_shape"] == [3, 160, 160]
    paper = json.loads(invoke("analyze", "resnet50", "--variant", "paper", "--format",
                              "json").output)
    assert paper["totals"]["macs"] == 3_857_973_248


def test_output_file(tmp_path):
    target = tmp_path / "out.json"
    result = invoke("analyze", "resnet18", "--format", "json", "-o", str(target))
    assert result.exit_code == 0 and result.output == ""
    assert json.loads(target.read_text())["totals"]["params"] == 11_689_512


def test_specs_lists_every_bundled_spec():
    result = invoke("specs")
    assert result.exit_code == 0
    for name in cnncost.bundled_specs():
        assert name in result.output


def test_validate_exit_codes(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [3, 8, 8]\nlayers: [{op: conv, out: 4, kernel: 9}]\n")
    ok = invoke("validate", "specs/resnet50.yaml", "lenet5")
    assert ok.exit_code == 0 and ok.output.count("ok:") == 2
    mixed = invoke("validate", "resnet50", str(bad))
    assert mixed.exit_code == 2
    assert "ok: resnet50" in mixed.stdout
    assert "bad.yaml:2: conv1: conv: kernel 9 is larger than the padded input" in mixed.stderr


@pytest.mark.parametrize("args", [["analyze", "resnet50", "--batch", "0"],
                                  ["analyze", "resnet50", "--dtype", "fp8"],
                                  ["analyze", "resnet50", "--format", "yaml"],
                                  ["analyze", "resnet50", "--set", "width"],
                                  ["analyze"], ["nosuchcommand"]])
def test_usage_errors_exit_2(args):
    result = invoke(*args)
    assert result.exit_code == 2


def test_python_dash_m():
    out = subprocess.run([sys.executable, "-m", "cnncost", "analyze", "seed_mnist_cnn",
                          "--format", "json"], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["totals"]["params"] == 1_199_882


def test_schema_command(tmp_path):
    target = tmp_path / "schema.json"
    assert invoke("schema", "-o", str(target)).exit_code == 0
    assert json.loads(target.read_text())["required"] == ["input", "layers"]


def test_table_header_names_variant_and_hides_default_caption():
    default = invoke("analyze", "resnet50", "--depth", "1").output
    assert default.splitlines()[0].startswith("resnet50 | input 3x224x224 | batch 1 | fp32 |")
    assert "4.09 GMACs)" in default  # the spec's description, figures for its defaults
    paper = invoke("analyze", "resnet50", "--depth", "1", "--variant", "paper").output
    assert paper.splitlines()[0].startswith("resnet50 (variant paper) | input 3x224x224")
    assert "4.09 GMACs)" not in paper and "3,857,973,248" in paper


def test_table_never_crops_numbers():
    from cnncost.formats import render

    text = render("table", cnncost.analyze("vgg16"), 0, color=False, width=60)
    assert "stage1.convs.block2.conv.conv" in text  # the longest name, whole
    assert "1,849,688,064" in text and "3,699,376,128" in text  # whole numbers
    assert "activations" in text


def test_specs_lists_variants():
    """Variants that are no published name are listed beside the spec; each published
    name is a row of its own under its family, with the variant it stands for."""
    output = invoke("specs").output
    line = next(row for row in output.splitlines() if row.startswith("resnet50 "))
    assert "[variants: paper" in line and "resnext50_32x4d" not in line
    assert re.search(r"^  resnext50_32x4d +3x224x224 +25\.03 M +4\.230 +resnet50 --variant "
                     r"resnext50_32x4d$", output, re.M)


def test_spec_argument_that_is_a_directory(tmp_path):
    result = invoke("analyze", str(tmp_path))
    assert result.exit_code == 2 and "is a directory" in result.stderr
