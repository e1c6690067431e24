"""The `opaque` op: a module imported without a spec equivalent (`cnncost import
--allow-opaque`). Its params, buffers and output shape count; its work does not; every
output says so; nothing builds it as the network it stands for except verify's
placeholders, which are flagged."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import cnncost
from cnncost.cli import main as cli
from cnncost.errors import SpecError

SPEC = """name: with_opaque
input: [3, 8, 8]
vars: {w: 4}
layers:
- {op: conv, out: w, kernel: 3}
- {op: opaque, name: mixer, shape: [5, 2, 2], params: 7, buffers: 3}
- {op: flatten}
- {op: linear, out: 2}
"""


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "with_opaque.yaml"
    path.write_text(SPEC)
    return path


def test_counts_params_buffers_and_shape_and_no_work(spec_file):
    result = cnncost.analyze(spec_file)
    row = next(r for r in result.rows if r.name == "mixer")
    assert (row.op, tuple(row.shape), row.params, row.buffers, row.macs, row.other_ops) == \
        ("opaque", (5, 2, 2), 7, 3, 0, 0)
    assert result.totals.params == 4 * 3 * 9 + 4 + 7 + 20 * 2 + 2
    assert result.totals.buffers == 3
    assert result.notes and "opaque layers: 1 (mixer)" in result.notes[0]


@pytest.mark.parametrize("fields, message", [
    ({"shape": [5, 2]}, "expected [channels, height, width] or [features]"),
    ({"shape": [5, 0, 2]}, "positive integer"),
    ({"shape": [5, 2, 2], "params": -1}, "non-negative integer"),
    ({"shape": [5, 2, 2], "buffers": 1.5}, "integer"),
    ({}, "shape"),
])
def test_bad_fields_are_located_errors(fields, message):
    spec = {"name": "bad", "input": [3, 8, 8], "layers": [{"op": "opaque", **fields}]}
    with pytest.raises(SpecError) as info:
        cnncost.analyze(spec)
    assert message in str(info.value)


def test_every_output_flags_it(spec_file):
    runner = CliRunner()
    table = runner.invoke(cli, ["analyze", str(spec_file)], catch_exceptions=False)
    assert table.exit_code == 0 and "opaque layers: 1 (mixer)" in table.output
    assert "│ mixer" in table.output and "opaque" in table.output
    data = json.loads(runner.invoke(cli, ["analyze", str(spec_file), "--format", "json"],
                                    catch_exceptions=False).output)
    assert any("opaque layers: 1" in n for n in data["notes"])
    markdown = runner.invoke(cli, ["analyze", str(spec_file), "--format", "markdown"],
                             catch_exceptions=False).output
    assert "opaque layers: 1" in markdown
    compared = runner.invoke(cli, ["compare", str(spec_file), "lenet5"],
                             catch_exceptions=False)
    assert compared.exit_code == 0
    assert "note: with_opaque: opaque layers: 1 (mixer)" in compared.output
    swept = runner.invoke(cli, ["compare", str(spec_file), "--sweep", "w=4,8",
                                "--format", "json"], catch_exceptions=False)
    notes = json.loads(swept.output)["notes"]
    assert notes == [f"2 rows (with_opaque w=4, ...): {cnncost.analyze(spec_file).notes[0]}"]


def test_export_and_bench_refuse_it(spec_file):
    pytest.importorskip("torch")
    runner = CliRunner()
    for command in (["export", str(spec_file)], ["bench", str(spec_file), "--device", "cpu"]):
        result = runner.invoke(cli, command)
        assert result.exit_code == 2, command
        assert f"{spec_file}:6: mixer: an opaque layer cannot be" in result.output
    with pytest.raises(SpecError, match="cannot be built in PyTorch"):
        cnncost.build(spec_file)


def test_verify_checks_the_counts_with_flagged_placeholders(spec_file):
    pytest.importorskip("torch")
    result = CliRunner().invoke(cli, ["verify", str(spec_file), "--device", "cpu"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "mixer" in result.output and "ok" in result.output
    assert "placeholders" in result.output and "not reproduced" in result.output
