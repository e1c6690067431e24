"""The PyTorch builder and `cnncost verify`: exact agreement, and the check can fail.

- The builder covers exactly the op registry; module names are the analytic layer names.
- Every bundled spec verifies with zero mismatches on the meta device and on the CPU
  (and on a GPU, marker `gpu`, skipped without CUDA).
- Modules PyTorch lacks (uneven padding, padded pooling, channel layer norm, gates,
  channel shuffle) compute the right values, checked against native PyTorch forms.
- A built model trains (gradients reach every parameter) and round-trips its state_dict.
- Verify catches a deliberately wrong cost rule and a deliberately wrong builder, naming
  the first divergent layer with both values; CLI exit codes 0 / 1 / 2.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

import cnncost
from cnncost.cli import main

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional
from cnncost.pytorch import builder, torch_modules  # noqa: E402
from cnncost.pytorch.builder import BUILDERS, build  # noqa: E402
from cnncost.cost.ops import OPS  # noqa: E402
from cnncost.pytorch.verification import VerifyError, check_memory, verify  # noqa: E402

pytestmark = pytest.mark.torch
BUNDLED = sorted(cnncost.bundled_specs())


def cli(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


# ------------------------------------------------------------------ registry and names
def test_builder_covers_exactly_the_op_registry():
    assert set(BUILDERS) == set(OPS)


@pytest.mark.parametrize("name", ["resnet50", "mobilenet_v2", "seed_cifar_preact_resnet"])
def test_module_names_are_the_analytic_layer_names(name):
    model = build(name, device="meta")
    rows = cnncost.analyze(name).rows[1:]
    assert model.layer_names == [r.name for r in rows]
    modules = dict(model.named_modules())
    for row in rows:
        assert row.name in modules
    # state_dict keys are those names plus the tensor's own name
    keys = set(model.state_dict())
    weighted = [r.name for r in rows if r.op in ("conv", "linear")]
    assert weighted and all(f"{n}.weight" in keys for n in weighted)


def test_layer_names_that_clash_with_module_attributes(tmp_path):
    spec = {"input": [3, 8, 8], "layers": [
        {"op": "conv", "name": "train", "out": 4, "kernel": 3, "padding": 1},
        {"op": "relu", "name": "forward"},
        {"op": "add", "name": "to", "inputs": ["train", "forward"]}]}
    model = build(spec)
    names = dict(model.named_modules())
    assert isinstance(names["train"], nn.Conv2d) and isinstance(names["forward"], nn.ReLU)
    assert torch_modules.layer(model, "train") is names["train"]
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 4, 8, 8)
    assert verify(spec, device="cpu", latency_runs=0).ok


# ------------------------------------------------------------------ bundled specs
@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_spec_verifies_on_meta(name):
    result = verify(name, device="meta", field_check=False)  # checked in test_receptive.py
    assert result.ok, result.first_mismatch()
    assert result.latency is None
    assert len(result.layers) == result.analysis.totals.layers


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_spec_verifies_on_cpu(name):
    result = verify(name, device="cpu", latency_runs=0)
    assert result.ok, result.first_mismatch()
    assert all(c.measured["shape"] is not None for c in result.layers)


@pytest.mark.gpu
@pytest.mark.parametrize("name", BUNDLED)
@pytest.mark.parametrize("dtype", ["fp32", "fp16"])
def test_bundled_spec_verifies_on_gpu(name, dtype):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    result = verify(name, device="cuda", dtype=dtype, batch=2, latency_runs=3)
    assert result.ok, result.first_mismatch()
    assert result.latency is not None and result.latency.samples == 3
    assert result.env["device"] == "cuda"


def test_variants_and_settings_verify():
    assert verify("resnet50", variant="paper", device="meta").ok
    assert verify("mobilenet_v1", set={"width": 0.5, "resolution": 160}, device="meta").ok
    assert verify("mobilenet_v2", input="3x160x160", batch=4, device="meta").ok


# ------------------------------------------------------------------ values of helper modules
def test_padded_conv_equals_explicit_pad_then_conv():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 9, 10)
    layer = torch_modules.PaddedConv2d(3, 5, kernel_size=3, stride=2, pads=(0, 1, 1, 0))
    reference = F.conv2d(F.pad(x, (1, 0, 0, 1)), layer.weight, layer.bias, stride=2)
    torch.testing.assert_close(layer(x), reference)


@pytest.mark.parametrize("include", [True, False])
@pytest.mark.parametrize("ceil", [False, True])
def test_padded_avgpool_equals_native_on_symmetric_padding(include, ceil):
    x = torch.randn(2, 3, 11, 9)
    ours = torch_modules.PaddedAvgPool2d(kernel_size=3, stride=2, pads=(1, 1, 1, 1), ceil_mode=ceil,
                                   count_include_pad=include)
    native = nn.AvgPool2d(3, 2, 1, ceil_mode=ceil, count_include_pad=include)
    if ceil:  # windows that overhang the padding differ by definition; compare inside
        assert ours(x).shape == native(x).shape
        return
    torch.testing.assert_close(ours(x), native(x))


def test_padded_avgpool_keras_same_divides_by_real_inputs():
    x = torch.ones(1, 1, 4, 4)
    pool = torch_modules.PaddedAvgPool2d(kernel_size=3, stride=1, pads=(1, 1, 1, 1),
                                   count_include_pad=False)
    torch.testing.assert_close(pool(x), torch.ones(1, 1, 4, 4))  # mean of ones is one
    pool = torch_modules.PaddedAvgPool2d(kernel_size=2, stride=2, pads=(0, 1, 0, 1),
                                   count_include_pad=False)
    x = torch.arange(9.0).reshape(1, 1, 3, 3)
    # windows: [[0,1],[3,4]] -> 2; [[2],[5]] -> 3.5; [[6,7]] -> 6.5; [[8]] -> 8
    torch.testing.assert_close(pool(x), torch.tensor([[[[2.0, 3.5], [6.5, 8.0]]]]))


def test_padded_maxpool_equals_native_on_symmetric_padding():
    x = torch.randn(2, 3, 10, 7)
    ours = torch_modules.PaddedMaxPool2d(kernel_size=3, stride=2, pads=(1, 1, 1, 1))
    torch.testing.assert_close(ours(x), nn.MaxPool2d(3, 2, 1)(x))
    x = -torch.ones(1, 1, 3, 3)  # padding must never win a max
    assert ours(x).max().item() == -1.0


def test_channel_layernorm_normalizes_over_channels():
    x = torch.randn(2, 6, 4, 5)
    ln = torch_modules.ChannelLayerNorm(6)
    ref = F.layer_norm(x.permute(0, 2, 3, 1), (6,), ln.weight, ln.bias).permute(0, 3, 1, 2)
    torch.testing.assert_close(ln(x), ref)


def test_channel_shuffle_matches_torch():
    x = torch.randn(2, 12, 3, 3)
    torch.testing.assert_close(torch_modules.ChannelShuffle(3)(x), nn.ChannelShuffle(3)(x))


def test_mul_gate_scales_channels():
    x = torch.randn(2, 4, 3, 3)
    gate = torch.randn(2, 4)
    torch.testing.assert_close(torch_modules.Mul()(x, gate), x * gate[:, :, None, None])
    torch.testing.assert_close(torch_modules.Mul()(gate[:, :, None, None], x), x * gate[:, :, None, None])


def test_keras_same_conv_values_match_explicit_padding():
    """'same' with an odd total pads one more at the end (Keras), as F.pad does here."""
    spec = {"input": [2, 6, 6], "layers": [{"op": "conv", "name": "c", "out": 3, "kernel": 2,
                                            "padding": "same"}]}
    model = build(spec)
    x = torch.randn(1, 2, 6, 6)
    conv = model.get_submodule("c")
    ref = F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, conv.bias)
    torch.testing.assert_close(model(x), ref)


# ------------------------------------------------------------------ usable for training
def test_built_model_trains_and_round_trips_state_dict():
    torch.manual_seed(0)
    model = build("seed_cifar_depthwise")
    model.train()
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    loss = F.nll_loss(torch.log(model(x) + 1e-9), y)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    copy = build("seed_cifar_depthwise")
    copy.load_state_dict(model.state_dict())
    model.eval(), copy.eval()
    torch.testing.assert_close(model(x), copy(x))


def test_frees_activations_after_last_use():
    """The forward pass keeps only live tensors (the analytic peak relies on it)."""
    model = build("resnet18")
    done = [step[3] for step in model._plan]
    freed = {i for d in done for i in d}
    assert len(freed) == len(model._plan)  # every tensor but the output is freed once


# ------------------------------------------------------------------ the check can fail
def test_wrong_cost_rule_is_caught(monkeypatch):
    conv = OPS["conv"]

    def off_by_one(ins, out, attrs):
        cost = conv.cost(ins, out, attrs)
        cost.macs += 1
        return cost

    monkeypatch.setitem(OPS, "conv", conv._replace(cost=off_by_one))
    result = verify("resnet18", device="meta")
    assert not result.ok
    layer, quantity, analytic, measured = result.first_mismatch()
    assert (layer, quantity) == ("stem.conv", "macs")
    assert analytic == measured + 1 == 118_013_953
    out = cli("verify", "resnet18", "--device", "meta")
    assert out.exit_code == 1
    assert "MISMATCH" in out.output and "first: stem.conv: MACs analytic 118,013,953, " \
        "PyTorch 118,013,952" in out.output


def test_wrong_builder_is_caught(monkeypatch):
    def bad_maxpool(node, ins):  # forgets the padding
        a = node.attrs
        return builder.Make(nn.MaxPool2d, dict(kernel_size=a["kernel"], stride=a["stride"],
                                               ceil_mode=a["ceil_mode"]))

    monkeypatch.setitem(BUILDERS, "maxpool", bad_maxpool)
    result = verify("resnet18", device="meta")
    assert not result.ok
    layer, quantity, analytic, measured = result.first_mismatch()
    assert (layer, quantity, analytic, measured) == ("pool", "shape", (64, 56, 56),
                                                     (64, 55, 55))
    out = cli("verify", "resnet18", "--device", "meta", "--format", "json")
    assert out.exit_code == 1
    data = json.loads(out.output)
    assert data["ok"] is False and data["first_mismatch"]["layer"] == "pool"


def test_missing_builder_is_an_error(monkeypatch):
    monkeypatch.delitem(BUILDERS, "channel_shuffle")
    spec = {"input": [4, 8, 8], "layers": [{"op": "channel_shuffle", "groups": 2}]}
    with pytest.raises(builder.BuildError, match="no op 'channel_shuffle'"):
        build(spec)


# ------------------------------------------------------------------ memory guard
def test_refuses_a_model_that_does_not_fit():
    analysis = cnncost.analyze("vgg16", batch=64)
    with pytest.raises(VerifyError, match="use --device meta"):
        check_memory(analysis, torch.device("cpu"), free=2**30)
    assert check_memory(analysis, torch.device("meta"), free=1) > 2**30  # meta: never refused
    with pytest.raises(VerifyError, match="not enough memory on cpu"):
        verify("vgg16", batch=64, device="cpu", free_bytes=2**30)


def test_cli_memory_refusal_exit_2(monkeypatch):
    import cnncost.pytorch.verification as module

    monkeypatch.setattr(module, "free_memory", lambda device: 10 * 2**20)
    out = cli("verify", "vgg16", "--device", "cpu")
    assert out.exit_code == 2
    assert "not enough memory on cpu" in out.stderr and "--device meta" in out.stderr
    assert "Traceback" not in out.output


# ------------------------------------------------------------------ CLI
def test_cli_verify_ok_table_and_latency():
    out = cli("verify", "lenet5", "--device", "cpu", "--runs", "3", "--threads", "1")
    assert out.exit_code == 0, out.output
    assert "verified: all 12 layers agree exactly with PyTorch" in out.output
    assert "forward latency: median" in out.output and "3 runs" in out.output
    assert "1 thread" in out.output and "1 threads" not in out.output


def test_cli_verify_json():
    out = cli("verify", "mobilenet_v2", "--device", "meta", "--format", "json", "--batch", "2")
    assert out.exit_code == 0
    data = json.loads(out.output)
    assert data["ok"] is True and data["first_mismatch"] is None
    assert data["totals"]["macs"] == {"analytic": 601_548_544, "pytorch": 601_548_544, "ok": True}
    assert data["totals"]["shape"]["pytorch"] == [1000]
    assert data["latency"] is None and data["env"]["device"] == "meta"
    assert len(data["layers"]) == cnncost.analyze("mobilenet_v2").totals.layers


def test_cli_only_mismatches_lists_no_layers_when_all_agree():
    out = cli("verify", "lenet5", "--device", "meta", "--only-mismatches")
    assert out.exit_code == 0
    assert "conv1" not in out.output and "verified: all 12 layers" in out.output


def test_cli_bad_spec_exit_2(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("input: [3, 8, 8]\nlayers:\n  - {op: convv, out: 4, kernel: 3}\n")
    out = cli("verify", path)
    assert out.exit_code == 2
    assert f"{path}:3: layers[0]: unknown op 'convv'; did you mean 'conv'?" in out.stderr


def test_cli_int8_is_refused_by_usage():
    out = cli("verify", "lenet5", "--dtype", "int8")
    assert out.exit_code == 2 and "int8" in out.output


def test_cli_cuda_without_gpu_exit_2():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    out = cli("verify", "lenet5", "--device", "cuda")
    assert out.exit_code == 2
    assert "no CUDA device is available" in out.stderr


def test_cli_without_torch_says_how_to_install():
    code = ("import sys; sys.modules['torch'] = None\n"
            "from cnncost.cli import main\n"
            "main(['verify', 'lenet5'])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert "cnncost verify needs PyTorch" in done.stderr and "pip install" in done.stderr
    assert "Traceback" not in done.stderr


def test_busy_cpu_note(monkeypatch):
    import cnncost.pytorch.verification as module

    monkeypatch.setattr(module.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(module.os, "getloadavg", lambda: (1.8, 1.0, 1.0))
    note = module.cpu_contention(2)
    assert note and "load average 1.8 on 2 CPUs" in note and "--threads 1" in note
    monkeypatch.setattr(module.os, "getloadavg", lambda: (1.0, 1.0, 1.0))
    assert module.cpu_contention(1) is None  # one thread, one free CPU
    monkeypatch.setattr(module.os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    assert module.cpu_contention(2) is None
    monkeypatch.setattr(module.os, "getloadavg", lambda: (3.0, 1.0, 1.0))
    result = verify("lenet5", device="cpu", latency_runs=3)
    assert result.notes and "the CPU is busy" in result.notes[0]
    out = cli("verify", "lenet5", "--device", "cpu", "--runs", "3")
    assert "note: the CPU is busy (load average 3.0 on 2 CPUs)" in out.output


def test_no_numpy_warning_without_numpy():
    """torch warns at import when NumPy is missing (as with `pip install torch` alone);
    cnncost never uses NumPy, so its torch commands stay quiet."""
    code = ("import sys; sys.modules['numpy'] = None\n"
            "from cnncost.cli import main\n"
            "main(['verify', 'lenet5', '--device', 'meta'])\n")
    done = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert "NumPy" not in done.stderr
