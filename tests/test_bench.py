"""`cnncost bench`: measurement logic, roofline arithmetic, peaks, JSON schema, CLI.

No assertion on absolute times: the tests check what is measured (runs, warm-up,
which layers), that derived figures follow from the measured ones exactly (throughput,
FLOP/s, share of peak, shares, efficiencies, verdicts), the quality and cross-check
rules at their boundaries, and the documents against their schema. GPU tests carry the
`gpu` marker and skip without CUDA.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from cnncost.cli import main
from cnncost.pytorch.peaks import Peaks, lookup

torch = pytest.importorskip("torch")
jsonschema = pytest.importorskip("jsonschema")
from cnncost.pytorch import bench as lib  # noqa: E402
from cnncost.pytorch.bench_schema import SCHEMA  # noqa: E402
from cnncost.pytorch.measure import Latency  # noqa: E402

pytestmark = pytest.mark.torch

TINY = textwrap.dedent("""\
    name: tiny
    input: [3, 16, 16]
    defaults: {bias: false, norm: batchnorm, act: relu}
    layers:
      - {op: conv, name: stem, out: 8, kernel: 3, padding: 1}
      - op: residual
        name: res
        layers:
          - {op: conv, out: 8, kernel: 3, padding: 1}
          - {op: conv, out: 8, kernel: 3, padding: 1, act: none}
        post: [relu]
      - {op: global_avgpool, name: pool}
      - {op: flatten, name: flat}
      - {op: linear, name: fc, out: 4, bias: true, norm: none, act: none}
""")
THREADS_AT_START = torch.get_num_threads()
# Fake roofs: 1 GFLOP/s and 1 GB/s (ridge 1 FLOP/B), so verdicts follow from intensities.
ROOFS = Peaks("test device", "fp32", 1e9, 1e9, "measured", "test")


@pytest.fixture()
def tiny(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return str(path)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNCOST_CACHE", str(tmp_path / "cache"))


def quick(spec, **kwargs):
    options = dict(device="cpu", threads=1, runs=5, warmup=1, warmup_s=0.0, budget_s=1.0,
                   peaks=ROOFS)
    return lib.bench(spec, **{**options, **kwargs})


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


# ----------------------------------------------------------------- statistics
def latency(median, iqr):
    return Latency(median, median, median, iqr, 10, 1.0, {}, 0.0)


@pytest.mark.parametrize("value", [0.1009, 0.0005 * 7, 1.23456789, 2.5])
@pytest.mark.parametrize("n", [2, 3, 7, 8, 50])
def test_tied_samples_keep_quantiles_around_the_median(value, n):
    """Interpolating between equal samples must not put p10 above the median (a bench file
    with p10 > median is refused by compare and gate)."""
    from cnncost.pytorch.measure import summarize

    lat = summarize([value] * n + [value * 2], batch=1, env={})
    assert lat.p10_ms <= lat.median_ms <= lat.p90_ms and lat.iqr_ms >= 0
    tied = summarize([value] * n, batch=1, env={})
    assert tied.p10_ms == tied.median_ms == tied.p90_ms == value and tied.iqr_ms == 0


def test_few_runs_are_never_ok():
    assert lib.quality(latency(100.0, 0.0)._replace(samples=4)) == "warn"
    assert lib.quality(latency(100.0, 0.0)._replace(samples=5)) == "ok"


@pytest.mark.parametrize(("iqr", "expected"), [
    (0.0, "ok"), (10.0, "ok"), (10.001, "warn"), (25.0, "warn"), (25.001, "unreliable"),
    (80.0, "unreliable")])
def test_quality_thresholds(iqr, expected):
    assert lib.quality(latency(100.0, iqr)) == expected
    assert lib.spread(latency(100.0, iqr)) == pytest.approx(iqr / 100)


@pytest.mark.parametrize(("mine", "theirs", "agrees"), [
    (105.0, 100.0, True), (95.0, 100.0, True), (105.1, 100.0, False), (94.9, 100.0, False)])
def test_cross_check_tolerance(mine, theirs, agrees):
    check = lib.cross_check_result(mine, theirs, "m")
    assert check.difference == pytest.approx((mine - theirs) / theirs)
    assert check.agrees is agrees and check.tolerance == 0.05


# ----------------------------------------------------------------- roofline
def test_layer_bytes_closed_forms(tiny):
    from cnncost.api import analyze, build_graph
    from cnncost.pytorch.roofline import layer_bytes

    graph = build_graph(tiny)
    analysis = analyze(tiny, batch=2)
    moved = dict(zip([r.name for r in analysis.rows], layer_bytes(graph, analysis), strict=True))
    per = 2 * 4  # batch 2, fp32
    assert moved["stem.conv"] == (3 * 16 * 16 + 8 * 16 * 16) * per + 8 * 3 * 9 * 4
    # batch norm reads input, writes output, reads weight, bias, running mean and variance
    assert moved["stem.norm"] == 2 * 8 * 16 * 16 * per + 4 * 8 * 4
    assert moved["res.add"] == 3 * 8 * 16 * 16 * per  # two inputs, one output
    assert moved["pool"] == (8 * 16 * 16 + 8) * per
    assert moved["flat"] == 0  # a view
    assert moved["fc"] == (8 + 4) * per + (8 * 4 + 4) * 4


@pytest.mark.parametrize(("work", "nbytes", "time_s", "overhead_s", "bound", "bound_s"), [
    (4000, 1000, 1e-5, 1e-6, "compute", 4e-6),  # intensity 4 >= ridge 1
    (1000, 1000, 1e-5, 1e-6, "compute", 1e-6),  # exactly at the ridge
    (500, 1000, 1e-5, 1e-7, "memory", 1e-6),  # intensity 0.5
    (500, 1000, 3e-6, 2e-6, "overhead", 1e-6),  # the roofs allow less than a trivial layer
    (500, 1000, 4e-6, 2e-6, "overhead", 1e-6),  # ... and the fixed cost is half its time
    (500, 1000, 5e-6, 2e-6, "memory", 1e-6),  # slower than that: not the fixed cost
    (4000, 1000, 2e-5, 5e-6, "compute", 4e-6),  # bound below the fixed cost, but slow
    (0, 1000, 1e-5, 1e-7, "memory", 1e-6),  # data movement only
])
def test_classify(work, nbytes, time_s, overhead_s, bound, bound_s):
    from cnncost.pytorch.roofline import classify

    roof = classify(work, nbytes, time_s, ROOFS, overhead_s)
    assert roof.bound == bound
    assert roof.bound_s == pytest.approx(bound_s)
    assert roof.efficiency == pytest.approx(bound_s / time_s)
    assert roof.intensity == pytest.approx(work / nbytes)


def test_classify_without_peaks_or_traffic():
    from cnncost.pytorch.roofline import classify

    assert classify(10, 100, 1e-3, None, 1e-6)[2:] == (0.1, None, None, None)
    view = classify(0, 0, 1e-3, ROOFS, 1e-6)  # a view: no work, no traffic, no verdict
    assert view.intensity is None and view.bound is None and view.efficiency is None


# ----------------------------------------------------------------- peaks
@pytest.mark.parametrize(("name", "row", "bandwidth"), [
    ("NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM", 3350),
    ("NVIDIA H100 PCIe", "NVIDIA H100 PCIe", 2000),
    ("NVIDIA H100 NVL", "NVIDIA H100 NVL", 3900),
    ("NVIDIA H200", "NVIDIA H200", 4800),
    ("NVIDIA A100-SXM4-80GB", "NVIDIA A100 80GB SXM", 2039),
    ("NVIDIA A100 80GB PCIe", "NVIDIA A100 80GB PCIe", 1935),
    ("NVIDIA A100-SXM4-40GB", "NVIDIA A100 40GB", 1555),
    ("NVIDIA A100-PCIE-40GB", "NVIDIA A100 40GB", 1555),
    ("NVIDIA A10", "NVIDIA A10", 600),
    ("NVIDIA L4", "NVIDIA L4", 300),
    ("NVIDIA L40S", "NVIDIA L40S", 864),
    ("Tesla T4", "NVIDIA T4", 320),
    ("Tesla V100-SXM2-16GB", "NVIDIA V100 SXM2", 900),
    ("NVIDIA H200 NVL", "NVIDIA H200 NVL", 4800),
    ("NVIDIA GeForce RTX 4090", "NVIDIA GeForce RTX 4090", 1008),
])
def test_datasheet_lookup(name, row, bandwidth):
    peaks = lookup(name, "fp32")
    assert peaks is not None and peaks.source == "table" and peaks.device_name == name
    assert peaks.reference.endswith(row)
    assert peaks.bandwidth_bytes_per_s == bandwidth * 1e9


def test_datasheet_dtypes_and_unknown_devices():
    h100 = lookup("NVIDIA H100 80GB HBM3", "fp16")
    assert h100.flops_per_s == 989.4e12 and h100.ridge == pytest.approx(989.4e12 / 3350e9)
    assert lookup("NVIDIA H100 80GB HBM3", "tf32").flops_per_s == 494.7e12
    assert lookup("Tesla T4", "bf16") is None  # Turing has no bf16 tensor cores
    assert lookup("AMD EPYC 7B13", "fp32") is None
    assert lookup("NVIDIA GeForce GTX 1080", "fp32") is None


def test_peaks_cache_round_trip(tmp_path, monkeypatch):
    from cnncost.pytorch import peaks

    monkeypatch.setenv("CNNCOST_CACHE", str(tmp_path / "c"))
    key = peaks.cache_key("X", "fp32", 2, "2.13")
    assert peaks.cached(key) is None
    assert peaks.store(key, ROOFS) == ROOFS
    path = peaks.cache_file()
    assert path == tmp_path / "c" / "peaks.json" and path.exists()
    assert peaks.cached(key) == ROOFS
    assert peaks.cached(peaks.cache_key("X", "fp32", 1, "2.13")) is None  # threads differ
    better = ROOFS._replace(flops_per_s=2e9, reference="faster run")
    assert peaks.store(key, better).flops_per_s == 2e9
    kept = peaks.store(key, ROOFS._replace(bandwidth_bytes_per_s=3e9))  # slower FLOP/s run
    assert (kept.flops_per_s, kept.bandwidth_bytes_per_s, kept.reference) == (
        2e9, 3e9, "faster run")  # each roof keeps its best
    assert peaks.cached(key) == kept
    for broken in ('"1e9"', "Infinity", "-1", "true"):
        entry = {**ROOFS.to_dict(), "flops_per_s": "@"}
        path.write_text(json.dumps({key: entry}).replace('"@"', broken))
        assert peaks.cached(key) is None, broken
    path.write_text("{not json")
    assert peaks.cached(key) is None  # a broken cache means: measure again
    monkeypatch.delenv("CNNCOST_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert peaks.cache_file() == tmp_path / "xdg" / "cnncost" / "peaks.json"


def test_resolve_peaks_order(monkeypatch):
    """auto: the cache, else the table, else measure (and cache); table and none as said."""
    from cnncost.pytorch import microbench, peaks

    calls = []

    def fake_measure(device, dtype):
        calls.append(dtype)
        return ROOFS._replace(device_name="cpu thing")

    monkeypatch.setattr(microbench, "measure_peaks", fake_measure)
    cpu = torch.device("cpu")
    assert lib.resolve_peaks("none", cpu, "fp32") is None
    assert lib.resolve_peaks("table", cpu, "fp32") is None  # no CPU is in the table
    first = lib.resolve_peaks("auto", cpu, "fp32")
    assert first.device_name == "cpu thing" and calls == ["fp32"]
    assert lib.resolve_peaks("auto", cpu, "fp32") == first and calls == ["fp32"]  # cached
    lib.resolve_peaks("measure", cpu, "fp32")
    assert calls == ["fp32", "fp32"]
    assert json.loads(peaks.cache_file().read_text())
    with pytest.raises(lib.BenchError, match="expected one of"):
        lib.resolve_peaks("best", cpu, "fp32")


def test_microbenchmark_measures_something():
    from cnncost.pytorch.microbench import conv_flops, copy_bandwidth, matmul_flops

    flops, n = matmul_flops(torch.device("cpu"), "fp32", budget_s=0.2)
    conv, batch = conv_flops(torch.device("cpu"), "fp32", budget_s=0.2)
    bandwidth, size = copy_bandwidth(torch.device("cpu"), budget_s=0.2)
    assert flops > 0 and n >= 512 and conv > 0 and batch >= 1
    assert bandwidth > 0 and size >= 1 << 20


def test_measured_peak_is_the_better_of_matmul_and_conv(monkeypatch):
    from cnncost.pytorch import microbench

    monkeypatch.setattr(microbench, "matmul_flops", lambda d, t, b: (5e9, 1024))
    monkeypatch.setattr(microbench, "conv_flops", lambda d, t, b: (7e9, 4))
    monkeypatch.setattr(microbench, "copy_bandwidth", lambda d, b: (2e9, 1 << 28))
    peaks = microbench.measure_peaks(torch.device("cpu"), "fp16")
    assert (peaks.flops_per_s, peaks.bandwidth_bytes_per_s) == (7e9, 2e9)
    assert "3x3 conv" in peaks.reference and peaks.source == "measured"
    monkeypatch.setattr(microbench, "conv_flops", lambda d, t, b: (3e9, 4))
    assert "1024x1024 matmul" in microbench.measure_peaks(torch.device("cpu"), "fp16").reference


def test_precision_switches_tf32_and_restores():
    """fp32 on CUDA must not use TF32 (PyTorch's default for cuDNN convolutions); only the
    device type is looked at, so the CPU build can check the switches."""
    from cnncost.pytorch.measure import _tf32_switches, precision

    switches = _tf32_switches()
    before = [getattr(obj, attr) for obj, attr, _, _ in switches]
    with precision(torch.device("cuda"), "fp32"):
        assert [getattr(obj, attr) for obj, attr, _, _ in switches] == [f for *_, f in switches]
    with precision(torch.device("cuda"), "tf32"):
        assert [getattr(obj, attr) for obj, attr, _, _ in switches] == [a for *_, a, _ in switches]
    assert [getattr(obj, attr) for obj, attr, _, _ in switches] == before
    with precision(torch.device("cpu"), "fp32"):
        assert [getattr(obj, attr) for obj, attr, _, _ in switches] == before


# ----------------------------------------------------------------- the benchmark
def test_bench_end_to_end_numbers_follow_from_the_measurement(tiny):
    from cnncost.api import analyze

    result = quick(tiny, batches=(1, 3))
    jsonschema.validate(result.to_dict(), SCHEMA)
    assert [r.batch for r in result.results] == [1, 3]
    for r in result.results:
        analysis = analyze(tiny, batch=r.batch)
        lat = r.latency
        assert r.macs == analysis.totals.macs and r.flops == 2 * analysis.totals.macs
        assert lat.samples == 5 and lat.p10_ms <= lat.median_ms <= lat.p90_ms
        assert lat.images_per_s == pytest.approx(r.batch * 1000 / lat.median_ms)
        assert r.tflops == pytest.approx(r.flops / (lat.median_ms / 1000) / 1e12)
        assert r.peak_share == pytest.approx(r.tflops * 1e12 / ROOFS.flops_per_s)
        assert r.quality == lib.quality(lat)
        assert r.env["batch"] == r.batch and r.env["threads"] == 1
        assert r.cross_check is None and r.per_layer is None
    assert "batch" not in result.env and result.env["channels_last"] is False
    assert torch.get_num_threads() == THREADS_AT_START  # bench restored what it changed
    doc = result.to_dict()
    assert doc["spec"]["name"] == "tiny" and doc["spec"]["sha256"]
    assert doc["settings"]["dtype"] == "fp32" and doc["peaks"]["source"] == "measured"


def test_bench_warmup_and_runs_are_counted(tiny, monkeypatch):
    """Every forward pass is accounted for: first call, warm-up, timed runs, cross-check."""
    from cnncost.pytorch.builder import SpecModel

    calls = []
    original = SpecModel.forward
    monkeypatch.setattr(SpecModel, "forward", lambda self, x: calls.append(1) or original(self, x))
    quick(tiny, runs=6, warmup=4)
    assert len(calls) == 1 + 4 + 6


def test_per_layer_times_and_roofline(tiny):
    from cnncost.api import analyze, build_graph
    from cnncost.pytorch.roofline import classify, layer_bytes

    result = quick(tiny, batches=(2,), per_layer=True)
    pl = result.results[0].per_layer
    analysis = analyze(tiny, batch=2)
    assert [x.name for x in pl.layers] == [r.name for r in analysis.rows[1:]]
    assert pl.mode == "eager" and pl.runs == 5 and pl.overhead_ms > 0
    assert sum(x.share for x in pl.layers) == pytest.approx(1.0)
    assert pl.total_ms == pytest.approx(sum(x.time_ms for x in pl.layers))
    moved = layer_bytes(build_graph(tiny), analysis)[1:]
    for layer, row, nbytes in zip(pl.layers, analysis.rows[1:], moved, strict=True):
        assert (layer.macs, layer.flops, layer.other_ops, layer.bytes) == (
            row.macs, row.flops, row.other_ops, nbytes)
        roof = classify(row.flops + row.other_ops, nbytes, layer.time_ms / 1000, ROOFS,
                        pl.overhead_ms / 1000)
        assert layer.bound == roof.bound and layer.efficiency == pytest.approx(roof.efficiency)


def test_time_layers_removes_its_hooks(tiny):
    from cnncost.pytorch.builder import build

    model = build(tiny).eval()
    medians, end_to_end, overhead, runs = lib.time_layers(model, torch.randn(1, 3, 16, 16), 3, 1.0)
    assert set(medians) == set(model.layer_names) and runs == 3
    assert all(t >= 0 for t in medians.values()) and end_to_end > 0 and overhead > 0
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_cross_check_runs_an_independent_timer(tiny, monkeypatch):
    seen = {}

    def fake(model, example, min_run_time):
        seen["shape"] = tuple(example.shape)
        return 1e9  # wildly different: must be reported as disagreeing
    monkeypatch.setattr(lib, "independent_median_ms", fake)
    r = quick(tiny, batches=(2,), cross_check=True).results[0]
    assert seen["shape"] == (2, 3, 16, 16)
    assert r.cross_check.median_ms == 1e9 and r.cross_check.agrees is False
    real = lib.independent_median_ms(torch.nn.Identity(), torch.ones(1), 0.05)
    assert real > 0


def test_channels_last_and_other_dtypes(tiny):
    import hashlib
    from pathlib import Path

    r = quick(Path(tiny), channels_last=True, dtype="bf16", peaks="none")
    assert r.spec["sha256"] == hashlib.sha256(Path(tiny).read_bytes()).hexdigest()
    assert r.env["channels_last"] is True and r.settings.dtype == "bf16"
    assert r.peaks is None and r.results[0].peak_share is None
    jsonschema.validate(r.to_dict(), SCHEMA)


def test_compile(tiny):
    """One graph per batch size (dynamic=False): each batch's first call compiles."""
    r = quick(tiny, compile=True, per_layer=True, peaks="none", runs=3, batches=(1, 2))
    assert r.env["compile"] is True and r.results[0].latency.samples == 3
    assert any("eager" in note for note in r.notes)
    for result in r.results:
        assert result.latency.first_ms > 10 * result.latency.median_ms, result.batch


def test_notes_when_faster_than_the_peak(tiny):
    slow_roofs = ROOFS._replace(flops_per_s=1.0)  # 1 FLOP/s: everything beats it
    r = quick(tiny, per_layer=True, peaks=slow_roofs)
    assert r.results[0].peak_share > 1
    assert any("reached" in n and "cnncost peaks --measure" in n for n in r.notes)
    assert any("compute-bound layers ran above the peak FLOP/s" in n for n in r.notes)
    fast_roofs = ROOFS._replace(flops_per_s=1e18, bandwidth_bytes_per_s=1e18)
    assert not [n for n in quick(tiny, per_layer=True, peaks=fast_roofs).notes if "peak" in n]


def test_compile_failure_is_a_bench_error(tiny, monkeypatch):
    class Broken(torch.nn.Module):  # torch.compile fails at the first call, not before
        def forward(self, x):
            raise RuntimeError("no C++ compiler\nlong details")

    def broken(model, **options):
        return Broken()

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.raises(lib.BenchError, match="torch.compile failed: RuntimeError: no C\\+\\+ "
                                             "compiler$"):
        quick(tiny, compile=True, peaks="none")


def test_refusals(tiny):
    with pytest.raises(lib.BenchError, match="tf32 is a mode of NVIDIA"):
        quick(tiny, dtype="tf32")
    with pytest.raises(lib.BenchError, match="not enough memory.*bench wants 2 x that.*use a "
                                             "smaller --batch$"):
        quick(tiny, free_bytes=1)
    with pytest.raises(lib.BenchError, match="batch sizes"):
        quick(tiny, batches=(0,))
    with pytest.raises(lib.BenchError, match="--compile takes at most 8 batch sizes"):
        quick(tiny, compile=True, batches=tuple(range(1, 10)))
    if not torch.cuda.is_available():
        with pytest.raises(lib.BenchError, match="no CUDA device"):
            quick(tiny, device="cuda")


# ----------------------------------------------------------------- CLI
def test_committed_bench_schema_is_current():
    """Regenerate with: cnncost schema --bench -o docs/bench.schema.json"""
    from pathlib import Path

    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    committed = Path(__file__).resolve().parent.parent / "docs" / "bench.schema.json"
    assert committed.read_text() == cli("schema", "--bench").output


def test_cli_json_validates_and_is_complete(tiny, tmp_path):
    out = tmp_path / "b.json"
    done = cli("bench", tiny, "--device", "cpu", "--threads", "1", "--batch", "1,2", "--runs", "3",
               "--warmup", "0", "--warmup-s", "0", "--per-layer", "--cross-check", "--peaks",
               "none", "--format", "json", "-o", out)
    assert done.exit_code == 0, done.output
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, SCHEMA)
    assert [r["batch"] for r in doc["results"]] == [1, 2]
    assert all(r["cross_check"]["method"].startswith("torch.utils.benchmark") for r in doc["results"])
    assert all(len(r["per_layer"]["layers"]) == 13 for r in doc["results"])
    assert doc["settings"]["runs"] == 3 and doc["settings"]["threads"] == 1


def test_real_bench_output_feeds_compare_and_gate(tiny, tmp_path):
    """The JSON bench writes is what compare and gate read (--measurements), exactly."""
    out = tmp_path / "b.json"
    done = cli("bench", tiny, "--device", "cpu", "--threads", "1", "--batch", "1,4", "--runs", "3",
               "--peaks", "none", "--format", "json", "-o", out)
    assert done.exit_code == 0, done.output
    medians = {r["batch"]: r["latency"]["median_ms"] for r in json.loads(out.read_text())["results"]}
    compared = cli("compare", tiny, "--batch", "4", "--measurements", out, "--format", "json")
    assert compared.exit_code == 0, compared.output
    assert json.loads(compared.output)["rows"][0]["latency_ms"] == medians[4]
    budget = tmp_path / "budget.yaml"
    budget.write_text(f"version: 1\nmodels:\n  - name: t\n    spec: {tiny}\n    batch: 4\n"
                      "    budgets:\n      latency_ms: 1e9\n      throughput: '>= 1e-9'\n")
    gated = cli("gate", "--budget", budget, "--measurements", out, "--format", "json")
    assert gated.exit_code == 0, gated.output
    rows = {r["metric"]: r for r in json.loads(gated.output)["rows"]}
    assert rows["latency_ms"]["current"] == medians[4] and rows["latency_ms"]["status"] == "pass"
    assert rows["throughput"]["current"] == pytest.approx(4 * 1000 / medians[4])


def test_cli_table_top_and_formats(tiny):
    common = ["bench", tiny, "--device", "cpu", "--threads", "1", "--runs", "3", "--warmup", "0",
              "--per-layer"]
    table = cli(*common, "--top", "2")
    assert table.exit_code == 0, table.output
    assert "tiny | input 3x16x16 | fp32 | cpu (" in table.output
    assert "the 2 slowest of 13 layers" in table.output
    assert "roofline, batch 1:" in table.output and "peaks:" in table.output
    markdown = cli(*common, "--format", "markdown")
    assert "| batch | median ms |" in markdown.output and "| layer | op |" in markdown.output
    rows = cli(*common, "--format", "csv", "--top", "3").output.splitlines()
    assert rows[0].startswith("batch,batch_median_ms,name,op,shape") and len(rows) == 4
    plain = cli("bench", tiny, "--device", "cpu", "--runs", "3", "--warmup-s", "0", "--peaks",
                "none", "--format", "csv").output
    assert plain.splitlines()[0].startswith("batch,median_ms") and len(plain.splitlines()) == 2


def test_cli_plot(tiny, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "roof.png"
    done = cli("bench", tiny, "--device", "cpu", "--threads", "1", "--runs", "3", "--batch",
               "1,2", "--plot", png)  # --plot implies --per-layer
    assert done.exit_code == 0, done.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "per layer, batch 2" in done.output


def test_cli_top_implies_per_layer(tiny):
    done = cli("bench", tiny, "--device", "cpu", "--runs", "3", "--warmup-s", "0", "--top", "1",
               "--peaks", "none", "--format", "json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["results"][0]["per_layer"]["layers"]


def test_cli_bad_plot_path_is_refused_before_measuring(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(lib, "bench", lambda *a, **k: pytest.fail("measured anyway"))
    for target, message in ((tmp_path / "missing" / "r.png", "does not exist"),
                            (tmp_path / "r.txt", "expected a file name ending in .png"),
                            (tmp_path / "roofline", "expected a file name ending in .png")):
        done = cli("bench", tiny, "--device", "cpu", "--plot", target)
        assert done.exit_code == 2 and message in done.output, done.output


def test_cli_channels_last_needs_an_image_input(tmp_path):
    mlp = tmp_path / "mlp.yaml"
    mlp.write_text("name: mlp\ninput: [16]\nlayers:\n  - {op: linear, out: 4}\n")
    done = cli("bench", mlp, "--device", "cpu", "--channels-last")
    assert done.exit_code == 2 and "--channels-last needs a CxHxW input" in done.output


@pytest.mark.parametrize(("args", "message"), [
    (["--batch", "0"], "expected batch sizes like 1,8,32"),
    (["--batch", "1,x"], "expected batch sizes like 1,8,32"),
    (["--dtype", "int8"], "'int8' is not one of"),
    (["--dtype", "tf32", "--device", "cpu"], "tf32 is a mode of NVIDIA tensor cores"),
    (["--runs", "0"], "0 is not in the range"),
])
def test_cli_bad_options_exit_2(tiny, args, message):
    done = cli("bench", tiny, "--device", "cpu", *args)
    assert done.exit_code == 2 and message in done.output, done.output
    assert "Traceback" not in done.output


def test_cli_bad_spec_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ninput: [3, 8, 8]\nlayers:\n  - {op: cnov, out: 4}\n")
    done = cli("bench", bad, "--device", "cpu")
    assert done.exit_code == 2
    assert "bad.yaml:4" in done.output and "did you mean 'conv'" in done.output


def test_cli_cuda_without_gpu_exit_2(tiny):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    done = cli("bench", tiny, "--device", "cuda")
    assert done.exit_code == 2 and "no CUDA device is available" in done.output


def test_cli_without_torch_says_how_to_install():
    code = ("import sys; sys.modules['torch'] = None\n"
            "from cnncost.cli import main\n"
            "main(['bench', 'lenet5'])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2 and "cnncost bench needs PyTorch" in done.stderr
    assert "Traceback" not in done.stderr


def test_peaks_command(tmp_path):
    listed = cli("peaks", "--list")
    assert listed.exit_code == 0 and "NVIDIA H100 SXM" in listed.output and "989.4" in listed.output
    shown = cli("peaks", "--device", "cpu", "--threads", "1")
    assert shown.exit_code == 0 and "none cached" in shown.output
    measured = cli("peaks", "--device", "cpu", "--threads", "1", "--measure", "--format", "json")
    assert measured.exit_code == 0, measured.output
    doc = json.loads(measured.output)
    assert doc[0]["measured"]["source"] == "measured" and doc[0]["table"] is None
    again = cli("peaks", "--device", "cpu", "--threads", "1")
    assert "none cached" not in again.output and "cnncost microbenchmark" in again.output


def test_analytic_modules_never_import_torch():
    code = ("import sys\n"
            "import cnncost.pytorch.peaks, cnncost.pytorch.roofline, cnncost.pytorch.bench_schema\n"
            "from cnncost.cli import main\n"
            "try:\n    main(['peaks', '--list'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# ----------------------------------------------------------------- GPU
GPU_SPECS = ["resnet50", "mobilenet_v2", "vgg16"]


@pytest.mark.gpu
@pytest.mark.parametrize("name", GPU_SPECS)
@pytest.mark.parametrize("dtype", ["fp32", "tf32", "fp16", "bf16"])
def test_gpu_bench_agrees_with_an_independent_timer(name, dtype):
    """On a GPU the end-to-end median agrees with torch.utils.benchmark within 5%."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    result = lib.bench(name, device="cuda", dtype=dtype, batches=(1, 8), runs=100, warmup=20,
                       budget_s=5.0, cross_check=True)
    for r in result.results:
        assert r.cross_check.agrees, (r.batch, r.latency.median_ms, r.cross_check)
        assert r.env["device"] == "cuda" and r.env["tf32"] is (dtype == "tf32")
    jsonschema.validate(result.to_dict(), SCHEMA)


@pytest.mark.gpu
def test_gpu_per_layer_roofline():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    result = lib.bench("mobilenet_v2", device="cuda", dtype="fp16", batches=(32,), runs=30,
                       per_layer=True)
    pl = result.results[0].per_layer
    assert result.peaks is not None and result.peaks.device_name == result.env["device_name"]
    assert [x.name for x in pl.layers] == build_names("mobilenet_v2")
    assert sum(x.share for x in pl.layers) == pytest.approx(1.0)
    assert 0 < pl.overhead_ms < pl.end_to_end_ms and math.isfinite(pl.total_ms)
    # the sum of the layers is the hooked end-to-end time less what runs between hooks
    assert pl.total_ms <= pl.end_to_end_ms * 1.01


def build_names(spec):
    import cnncost

    return [r.name for r in cnncost.analyze(spec).rows[1:]]


def test_runs_cut_by_the_time_budget_are_said(tiny):
    """A bench that cannot fit --runs in --time-budget says how many ran (it used to stop
    silently)."""
    result = quick(tiny, runs=10**6, budget_s=0.05)
    (note,) = [n for n in result.notes if "runs asked for" in n]
    samples = result.results[0].latency.samples
    assert note == f"batch 1: {samples} of the 1000000 runs asked for fit in --time-budget 0.05 s"
    assert samples < 10**6
    assert not [n for n in quick(tiny, runs=3).notes if "runs asked for" in n]
