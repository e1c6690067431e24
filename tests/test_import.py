"""`cnncost import`: a PyTorch model as a spec that counts exactly what torch counts.

Hand-written models (residual, depthwise + SE gate, channel split + concat, an upsample
decoder, inception-style branches) import exactly; the round trip holds for random
architectures (built by cnncost, imported back: the same counts) and for every bundled
spec; unsupported operations are named, never zeroed.
"""

from __future__ import annotations

import textwrap

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings

import cnncost
from cnncost.cli import main

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional
pytestmark = pytest.mark.torch

from cnncost.pytorch.importer import check, to_spec  # noqa: E402
from test_property_verify import architectures  # noqa: E402


def exact(model: nn.Module, shape: tuple[int, ...]) -> dict:
    spec = to_spec(model.eval(), shape, "m")
    check(spec, model, shape)  # raises when a count differs
    return spec


class SEBlock(nn.Module):
    """Depthwise conv, then a squeeze-and-excitation gate applied with `*`."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.fc1 = nn.Conv2d(c, c // 4, 1)
        self.fc2 = nn.Conv2d(c // 4, c, 1)

    def forward(self, x):
        y = F.relu6(self.bn(self.dw(x)))
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(y, 1)))))
        return y * s


class SplitConcat(nn.Module):
    """Half the channels pass, the other half are convolved; then concatenated."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c // 2, c // 2, 3, padding=1)

    def forward(self, x):
        half = x.shape[1] // 2 if False else 8  # a literal split, as written by hand
        return torch.cat([x[:, :half], F.relu(self.conv(x[:, half:]))], dim=1)


class Decoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.down = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.head = nn.Conv2d(16 + 3, 4, 1)

    def forward(self, x):
        return self.head(torch.cat([self.up(F.relu(self.down(x))), x], 1))


class Branches(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.b1 = nn.Conv2d(16, 8, 1)
        self.b3 = nn.Sequential(nn.Conv2d(16, 8, 1), nn.ReLU(), nn.Conv2d(8, 12, 3, padding=1))
        self.pool = nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True)
        self.proj = nn.Conv2d(16, 4, 1)

    def forward(self, x):
        return torch.cat([self.b1(x), self.b3(x), self.proj(self.pool(x))], 1)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2's stride-1 unit as torchvision writes it: chunk, concat, and a channel
    shuffle made of size/view/transpose/contiguous/view."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.branch = nn.Sequential(nn.Conv2d(c // 2, c // 2, 1, bias=False),
                                    nn.BatchNorm2d(c // 2), nn.ReLU(),
                                    nn.Conv2d(c // 2, c // 2, 3, padding=1, groups=c // 2))

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        out = torch.cat((a, self.branch(b)), dim=1)
        n, c, h, w = out.size()
        out = out.view(n, 2, c // 2, h, w)
        out = torch.transpose(out, 1, 2).contiguous()
        return out.view(n, c, h, w)


class ChannelsLastBlock(nn.Module):
    """ConvNeXt's block as torchvision writes it: channels-last LayerNorm and Linear
    layers between two permutes, a layer scale parameter, the residual add."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c, eps=1e-6)
        self.pw1, self.pw2 = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)
        self.gamma = nn.Parameter(torch.full((c, 1, 1), 1e-6))

    def forward(self, x):
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.pw2(F.gelu(self.pw1(self.norm(y)))).permute(0, 3, 1, 2)
        return x + self.gamma * y


class ViewHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4 * 6 * 6, 5)

    def forward(self, x):
        y = self.conv(x)
        return self.fc(y.view(y.size(0), -1))


@pytest.mark.parametrize("model, shape", [
    (ShuffleUnit(16), (16, 8, 8)),
    (ChannelsLastBlock(8), (8, 14, 14)),
    (ViewHead(), (3, 8, 8)),
    (SEBlock(16), (16, 14, 14)),
    (SplitConcat(16), (16, 10, 10)),
    (Decoder(), (3, 32, 32)),
    (Branches(), (16, 12, 12)),
], ids=["shuffle-chunk", "channels-last", "view-flatten", "se-gate", "split-concat",
        "upsample-decoder", "inception-branches"])
def test_hand_written_models_import_exactly(model, shape):
    spec = exact(model, shape)
    assert spec["layers"]  # a real spec, checked against torch's counts by exact()


def test_conv_norm_act_fuse_and_references_name_their_sources():
    spec = exact(SEBlock(16), (16, 14, 14))
    first = spec["layers"][0]
    assert first == {"op": "conv", "name": "dw", "out": 16, "kernel": 3, "padding": 1,
                     "groups": 16, "bias": False, "norm": "batchnorm", "act": "relu6"}
    gate = spec["layers"][-1]
    assert gate["op"] == "mul" and gate["inputs"] == ["dw", "fc2"]
    assert spec["layers"][-2]["act"] == "sigmoid"  # torch.sigmoid fused into its conv


@pytest.mark.parametrize("name", sorted(set(cnncost.bundled_specs())
                                        - {"googlenet", "inception_v3"}))
def test_every_bundled_spec_round_trips(name):
    """cnncost.build(spec), imported back, counts what the spec counts."""
    shape = tuple(cnncost.analyze(name).input_shape)
    spec = exact(cnncost.build(name), shape)
    totals, again = cnncost.analyze(name).totals, cnncost.analyze(spec).totals
    assert (again.params, again.buffers, again.macs) == (totals.params, totals.buffers,
                                                         totals.macs)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(spec=architectures())
def test_random_architectures_round_trip(spec):
    model = cnncost.build(spec).eval()
    shape = tuple(cnncost.analyze(spec).input_shape)
    imported = exact(model, shape)
    a, b = cnncost.analyze(spec).totals, cnncost.analyze(imported).totals
    assert (b.params, b.buffers, b.macs) == (a.params, a.buffers, a.macs)


def test_training_only_heads_are_named_not_dropped():
    with pytest.raises(cnncost.SpecError, match="never uses aux1, aux2"):
        to_spec(cnncost.build("googlenet").eval(), (3, 224, 224))


def test_unsupported_operations_are_listed(tmp_path):
    source = tmp_path / "odd.py"
    source.write_text(textwrap.dedent("""
        import torch
        from torch import nn

        class Odd(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 8, 3)

            def forward(self, x):
                y = self.conv(x)
                return torch.log1p(y.abs()) + 1
    """))
    result = CliRunner().invoke(main, ["import", f"{source}:Odd", "--input", "3x16x16"])
    assert result.exit_code == 2
    assert "3 operations without a spec equivalent" in result.stderr
    assert "abs" in result.stderr and "log1p" in result.stderr and "add" in result.stderr


def test_cli_writes_a_spec_that_analyzes_to_torchs_counts(tmp_path):
    source = tmp_path / "net.py"
    source.write_text(textwrap.dedent("""
        from torch import nn

        def build():
            return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                                 nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                 nn.Linear(8, 10))
    """))
    out = tmp_path / "net.yaml"
    result = CliRunner().invoke(main, ["import", f"{source}:build", "--input", "3x32x32",
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Imported by `cnncost import")
    assert "- {op: conv, name: l_0, out: 8, kernel: 3, padding: 1, bias: false, norm: " \
           "batchnorm, act: relu}" in text
    assert cnncost.analyze(str(out)).totals.params == 8 * 27 + 16 + 90
    assert CliRunner().invoke(main, ["verify", str(out), "--device", "meta"]).exit_code == 0


def test_a_model_that_fails_on_the_input_exits_2(tmp_path):
    source = tmp_path / "net.py"
    source.write_text("from torch import nn\n\ndef build():\n    return nn.Sequential("
                      "nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8, 10))\n")
    result = CliRunner().invoke(main, ["import", f"{source}:build", "--input", "3x16x16"])
    assert result.exit_code == 2
    assert "running the model on one input of shape 3x16x16 failed" in result.stderr


def test_bad_model_argument_exits_2(tmp_path):
    for argument, message in (("nocolon", "FILE.py:CALLABLE"),
                              (f"{tmp_path}/none.py:f", "no such file"),
                              ("json:loads", "calling it failed")):
        result = CliRunner().invoke(main, ["import", argument, "--input", "3x8x8"])
        assert result.exit_code == 2 and message in result.stderr, result.stderr


def test_analyze_and_compare_take_a_model_directly(tmp_path):
    """A model reference (FILE.py:CALLABLE, package.module:CALLABLE) is a spec argument:
    imported on the fly for --input; without --input the error says so."""
    source = tmp_path / "nets.py"
    source.write_text(textwrap.dedent("""
        from torch import nn

        def small():
            return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))

        def large():
            return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    """))
    small, large = f"{source}:small", f"{source}:large"
    result = cnncost.analyze(small, input="3x16x16")
    assert result.totals.params == 8 * 27 + 8 + 90
    assert result.name == "small"
    with pytest.raises(cnncost.SpecError, match="give --input CxHxW"):
        cnncost.analyze(small)
    run = CliRunner().invoke(main, ["compare", small, large, "--input", "3x16x16",
                                    "--format", "csv"])
    assert run.exit_code == 0, run.output
    rows = run.output.splitlines()
    assert rows[1].startswith("small,") and rows[2].startswith("large,")
    assert ",314," in rows[1] and f",{32 * 27 + 32 + 330}," in rows[2]


def test_gate_takes_a_model_entry(tmp_path, monkeypatch):
    """A budget file's `model: FILE.py:CALLABLE` (with `input:`) is imported and gated like
    a spec; the baseline keys it by the source file's sha256; its edits are noticed."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "no-git"))
    (tmp_path / "net.py").write_text(textwrap.dedent("""
        from torch import nn

        def build():
            return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                                 nn.Linear(8 * 16 * 16, 10))
    """))
    (tmp_path / "cnncost.budget.yaml").write_text(
        "defaults:\n  regression: {params: 0%}\nmodels:\n  - model: net.py:build\n"
        "    input: 3x16x16\n    budgets: {params: 30k}\n")
    assert CliRunner().invoke(main, ["baseline", "save"]).exit_code == 0
    run = CliRunner().invoke(main, ["gate", "--format", "json"])
    assert run.exit_code == 0, run.output
    assert '"current": 20714' in run.output  # 8*27 + 8 + 2048*10 + 10
    (tmp_path / "net.py").write_text((tmp_path / "net.py").read_text().replace(
        "nn.ReLU()", "nn.Conv2d(8, 8, 1), nn.ReLU()"))  # 72 more params
    again = CliRunner().invoke(main, ["gate"])
    assert again.exit_code == 1  # params grew past the 0% tolerance
    assert "spec net.py:build changed since the baseline" in again.output
    (tmp_path / "cnncost.budget.yaml").write_text(
        "models:\n  - model: net.py:build\n    budgets: {params: 30k}\n")
    bad = CliRunner().invoke(main, ["gate"])
    assert bad.exit_code == 2 and "give input:" in bad.stderr


try:  # the ONNX tests need the onnx package (the test extra has it)
    import onnx
except ImportError:  # pragma: no cover
    onnx = None


def export_onnx(module: nn.Module, shape: tuple[int, ...], path, **options) -> None:
    """torch.onnx.export with the TorchScript exporter, its warnings silenced."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, torch.zeros(1, *shape), str(path), dynamo=False, **options)


@pytest.mark.skipif(onnx is None, reason="the onnx package is not installed")
@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "seed_cifar_depthwise", "vgg11",
                                  "shufflenet_v2", "efficientnet"])
def test_onnx_export_imports_to_the_modules_numbers(name, tmp_path):
    """torch.onnx.export of a model, imported: the same params, MACs and output shape as
    importing the module, and the buffers PyTorch holds (running statistics plus one
    counter per batch norm, which ONNX does not keep). ShuffleNetV2's channel shuffle
    (Reshape, Transpose, Reshape), its split (Slice) and EfficientNet's gates pass through
    the exporter's shape arithmetic, which the importer folds."""
    model = cnncost.build(name).eval()
    shape = tuple(cnncost.analyze(name).input_shape)
    path = tmp_path / f"{name}.onnx"
    export_onnx(model, shape, path, do_constant_folding=False)  # folding merges BN into convs
    result = CliRunner().invoke(main, ["import", str(path), "-o", str(tmp_path / "x.yaml")])
    assert result.exit_code == 0, result.output
    ours = cnncost.analyze(str(tmp_path / "x.yaml"))
    theirs = cnncost.analyze(to_spec(model, shape))
    assert (ours.totals.params, ours.totals.buffers, ours.totals.macs, ours.output_shape) == \
        (theirs.totals.params, theirs.totals.buffers, theirs.totals.macs, theirs.output_shape)


@pytest.mark.skipif(onnx is None, reason="the onnx package is not installed")
def test_onnx_nodes_without_a_rule_are_named(tmp_path):
    class Odd(nn.Module):
        def forward(self, x):
            return torch.log1p(x.abs())

    path = tmp_path / "odd.onnx"
    export_onnx(Odd(), (3, 4, 4), path)
    result = CliRunner().invoke(main, ["import", str(path)])
    assert result.exit_code == 2
    assert "ONNX node(s) without a spec equivalent" in result.stderr and "Abs" in result.stderr


class TwoStage(nn.Module):
    """A stem and two stages of identical residual blocks (ResNet's layout)."""

    class Block(nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(c)
            self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(c)

        def forward(self, x):
            return F.relu(x + self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.layer1 = nn.Sequential(*[TwoStage.Block(16) for _ in range(3)])
        self.down = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.layer2 = nn.Sequential(*[TwoStage.Block(32) for _ in range(2)])

    def forward(self, x):
        return self.layer2(self.down(self.layer1(self.stem(x))))


def test_repeated_blocks_become_a_stage():
    """Identical numbered submodules are written once as a block used in a stage with
    repeat (the spec still counts exactly what torch counts)."""
    spec = exact(TwoStage(), (3, 16, 16))
    # the two stages' blocks differ only by their width: one block with a parameter
    assert set(spec["blocks"]) == {"layer_block"}
    block = spec["blocks"]["layer_block"]
    assert [layer["op"] for layer in block["layers"]] == ["conv", "conv", "add", "relu"]
    assert list(block["params"]) == ["conv1_out"]
    assert [layer["out"] for layer in block["layers"][:2]] == ["conv1_out", "conv1_out"]
    stages = [layer for layer in spec["layers"] if layer["op"] == "stage"]
    assert [(s["name"], s["block"], s["repeat"], s["with"]) for s in stages] == \
        [("layer1_0", "layer_block", 3, {"conv1_out": 16}),
         ("layer2_0", "layer_block", 2, {"conv1_out": 32})]
    assert len(spec["layers"]) == 4  # stem, stage, down, stage
    from cnncost.importing import written

    text = written(spec)  # what is written reads back as the spec that was checked
    assert "params: {conv1_out: null}" in text
    assert cnncost.analyze(yaml.safe_load(text)).totals == cnncost.analyze(spec).totals


class _Crop(nn.Module):
    """A centred crop of H and W (U-Net's skip), written as tensor slicing."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        return self.conv(x)[:, :, 2:-2, 1:-1]


class _Split(nn.Module):
    """torch.split into channel groups read by different layers; F.pad's pads, which the
    exporter computes by reversing a constant (Reshape, Slice with step -1, Transpose)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.a = nn.Conv2d(3, 4, 1)
        self.b = nn.Conv2d(5, 4, 3)

    def forward(self, x):
        left, right = torch.split(self.conv(x), [3, 5], dim=1)
        return self.a(left) + F.pad(self.b(right), (1, 1, 1, 1))


class _Chunk(nn.Module):
    def forward(self, x):
        a, b = torch.chunk(x, 2, dim=1)
        return a * b


class _MatMul(nn.Module):
    """x @ W with W a parameter, and nn.Linear without bias (exported as MatMul)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(12, 7))
        self.fc = nn.Linear(7, 3, bias=False)

    def forward(self, x):
        return self.fc(torch.flatten(x, 1) @ self.w)


class _ChannelPad(nn.Module):
    """F.pad of the channels (ResNet's option-A shortcut)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return F.pad(self.conv(x), (0, 0, 0, 0, 2, 2))


@pytest.mark.skipif(onnx is None, reason="the onnx package is not installed")
@pytest.mark.parametrize("model, shape, op", [
    (_Crop, (3, 12, 12), "crop"), (_Split, (3, 10, 10), "slice"), (_Chunk, (4, 3, 3), "slice"),
    (_MatMul, (3, 2, 2), "linear"), (_ChannelPad, (3, 8, 8), "pad")],
    ids=["crop", "split", "chunk", "matmul", "channel_pad"])
def test_onnx_slices_splits_matmul_and_channel_pads_import_exactly(model, shape, op, tmp_path):
    """Each exported by torch.onnx and imported: the module's exact params, MACs and output
    shape (FlopCounterMode, as `cnncost import` of the module itself checks), with the
    spec op that computes the same."""
    from torch.utils.flop_counter import FlopCounterMode

    module = model().eval()
    path = tmp_path / "m.onnx"
    export_onnx(module, shape, path)
    result = CliRunner().invoke(main, ["import", str(path), "-o", str(tmp_path / "m.yaml")])
    assert result.exit_code == 0, result.output
    ours = cnncost.analyze(str(tmp_path / "m.yaml"))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        y = module(torch.zeros(1, *shape))
    assert (ours.totals.params, ours.totals.macs, tuple(ours.output_shape)) == \
        (sum(p.numel() for p in module.parameters()), counter.get_total_flops() // 2,
         tuple(y.shape[1:]))
    assert op in {row.op for row in ours.rows}


@pytest.mark.skipif(onnx is None, reason="the onnx package is not installed")
def test_onnx_off_centre_slice_is_named(tmp_path):
    class OffCentre(nn.Module):
        def forward(self, x):
            return x[:, :, 1:, :]

    path = tmp_path / "off.onnx"
    export_onnx(OffCentre(), (3, 6, 6), path)
    result = CliRunner().invoke(main, ["import", str(path)])
    assert result.exit_code == 2
    assert "other than a centred crop" in result.stderr
