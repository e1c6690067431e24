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
    diffed = runner.invoke(cli, ["diff", "lenet5", str(spec_file)], catch_exceptions=False)
    assert diffed.exit_code == 0 and "note: B: opaque layers: 1 (mixer)" in diffed.output
    diffed = json.loads(runner.invoke(cli, ["diff", str(spec_file), "lenet5", "--format",
                                            "json"], catch_exceptions=False).output)
    assert diffed["notes"][0].startswith("A: opaque layers: 1 (mixer)")


def test_the_gate_notes_it(spec_file, monkeypatch):
    monkeypatch.chdir(spec_file.parent)
    monkeypatch.setenv("GIT_DIR", str(spec_file.parent / "no-git"))
    (spec_file.parent / "cnncost.budget.yaml").write_text(
        f"models:\n  - spec: {spec_file.name}\n    budgets: {{params: 1M}}\n")
    result = CliRunner().invoke(cli, ["gate"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "note: with_opaque: opaque layers: 1 (mixer)" in result.output


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


# --------------------------------------------------------------- cnncost import --allow-opaque
MODEL = '''
import torch
import torch.nn as nn


class Mix(nn.Module):
    """A spectral mixer: nothing the spec language has."""

    def __init__(self, c):
        super().__init__()
        self.w = nn.Parameter(torch.ones(c, 1, 1))
        self.proj = nn.Conv2d(c, c, 1)
        self.register_buffer("scale", torch.ones(c))

    def forward(self, x):
        y = torch.fft.rfft2(x).abs()[..., : x.shape[-1]]
        y = torch.nn.functional.pad(y, (0, x.shape[-1] - y.shape[-1]))
        return self.proj(y * self.w) * self.scale.view(1, -1, 1, 1)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.mix = Mix(8)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        x = self.mix(x)
        return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1))


class TopLevel(nn.Module):
    """The unsupported call in the model's own forward."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return torch.special.erfinv(torch.tanh(self.conv(x)))
'''


@pytest.fixture
def model_file(tmp_path):
    pytest.importorskip("torch")
    path = tmp_path / "mixnet.py"
    path.write_text(MODEL)
    return path


def test_import_stops_at_an_unsupported_op_without_the_flag(model_file, tmp_path):
    out = tmp_path / "net.yaml"
    result = CliRunner().invoke(cli, ["import", f"{model_file}:Net", "--input", "3x16x16",
                                      "-o", str(out)])
    assert result.exit_code == 2
    assert "fft_rfft2" in result.stderr and "--allow-opaque" in result.stderr
    assert not out.exists()


def test_import_with_the_flag_writes_an_exact_opaque_layer(model_file, tmp_path):
    import torch

    out = tmp_path / "net.yaml"
    result = CliRunner().invoke(cli, ["import", f"{model_file}:Net", "--input", "3x16x16",
                                      "--allow-opaque", "-o", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "#   mix: Mix at mix, 80 params, 8 buffers" in text
    analysis = cnncost.analyze(out)
    mix = next(r for r in analysis.rows if r.name == "mix")
    assert (mix.op, tuple(mix.shape), mix.params, mix.buffers, mix.macs) == \
        ("opaque", (8, 16, 16), 8 + 8 * 8 + 8, 8, 0)
    import importlib.util

    module_spec = importlib.util.spec_from_file_location("mixnet", model_file)
    mixnet = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(mixnet)
    net = mixnet.Net()
    assert analysis.totals.params == sum(p.numel() for p in net.parameters())
    assert analysis.totals.buffers == sum(b.numel() for b in net.buffers())
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.zeros(1, 3, 16, 16))
    inside = sum(counter.get_flop_counts()["Net.mix"].values()) // 2
    assert inside == 8 * 8 * 16 * 16  # the mixer's 1x1 conv, which the spec does not count
    assert analysis.totals.macs == counter.get_total_flops() // 2 - inside
    assert f"except the {inside:,} MACs torch counts inside its 1 opaque layer" in text
    assert "opaque layers: 1 (mix)" in analysis.notes[0]
    verified = CliRunner().invoke(cli, ["verify", str(out), "--device", "cpu"],
                                  catch_exceptions=False)
    assert verified.exit_code == 0 and "not reproduced" in verified.output
    assert CliRunner().invoke(cli, ["export", str(out)]).exit_code == 2


def test_an_unsupported_call_in_the_models_forward_is_opaque_itself(model_file, tmp_path):
    out = tmp_path / "top.yaml"
    result = CliRunner().invoke(cli, ["import", f"{model_file}:TopLevel", "--input",
                                      "3x8x8", "--allow-opaque", "-o", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = {r.name: r for r in cnncost.analyze(out).rows}
    opaque = [r for r in rows.values() if r.op == "opaque"]
    assert len(opaque) == 1 and tuple(opaque[0].shape) == (4, 6, 6)
    assert opaque[0].params == 0 and "in the model's forward" in out.read_text()


def test_onnx_import_with_the_flag(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    import warnings

    class Odd(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return torch.log1p(self.conv(x).abs())

    path = tmp_path / "odd.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Odd(), torch.zeros(1, 3, 8, 8), str(path), dynamo=False)
    runner = CliRunner()
    assert runner.invoke(cli, ["import", str(path)]).exit_code == 2
    out = tmp_path / "odd.yaml"
    result = runner.invoke(cli, ["import", str(path), "--allow-opaque", "-o", str(out)],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    ops = [r.op for r in cnncost.analyze(out).rows]
    assert ops.count("opaque") >= 1 and ops[1] == "conv"
    assert cnncost.analyze(out).totals.params == 3 * 4 * 9 + 4
