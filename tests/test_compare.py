"""`cnncost compare` and `cnncost.compare`: rows, ratios, sorting, sweeps, formats, failures,
parallel runs, measured columns (with an injected measurer) and plots."""

from __future__ import annotations

import csv
import functools
import io
import json
import subprocess
import sys
import types

import pytest
from click.testing import CliRunner

import cnncost
from cnncost.cli import main

MOBILENET_GRID = ["compare", "mobilenet_v1", "--sweep", "width=0.25,0.5,0.75,1.0",
                  "--sweep", "resolution=128,160,192,224"]


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def json_rows(*args: str) -> list[dict]:
    result = invoke(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["rows"]


@functools.lru_cache(maxsize=1)
def grid_rows() -> tuple:
    """The 16-point MobileNetV1 grid through the CLI, computed once for the paper tests."""
    return tuple(json_rows(*MOBILENET_GRID))


def printed(macs: int) -> set[int]:
    """Millions as a paper prints them: rounded, or truncated (Table 7 prints 290.68 as 290)."""
    return {round(macs / 1e6), macs // 10**6}


# ------------------------------------------------------------------ MobileNetV1 (paper)
@pytest.mark.parametrize("width,millions", [(1.0, 569), (0.75, 325), (0.5, 149), (0.25, 41)])
def test_sweep_reproduces_paper_table6_width(width, millions):
    rows = grid_rows()
    assert len(rows) == 16
    (row,) = [r for r in rows if r["width"] == width and r["resolution"] == 224]
    assert millions in printed(row["macs"])


@pytest.mark.parametrize("resolution,millions", [(224, 569), (192, 418), (160, 290), (128, 186)])
def test_sweep_reproduces_paper_table7_resolution(resolution, millions):
    rows = grid_rows()
    (row,) = [r for r in rows if r["width"] == 1.0 and r["resolution"] == resolution]
    assert millions in printed(row["macs"])
    assert row["macs"] == cnncost.analyze("mobilenet_v1", set={"resolution": resolution}).totals.macs


def test_sweep_grid_order_and_labels():
    rows = grid_rows()
    assert [(r["width"], r["resolution"]) for r in rows[:5]] == [
        (0.25, 128), (0.25, 160), (0.25, 192), (0.25, 224), (0.5, 128)]
    assert rows[0]["model"] == "mobilenet_v1 width=0.25 resolution=128"


def test_sweep_points_are_analyzed_with_the_input_shape_varying_fastest():
    """The points of a spec are analyzed with the settings that set its input shape varying
    fastest (its plan then reuses block calls from the point before); the outcomes come
    back in the requested order, each the one its own point gives."""
    from cnncost.comparison import compare as lib

    points = [lib.Point("resnet50", (("resolution", r), ("width", w), ("classes", c)),
                        f"r={r} w={w} c={c}")
              for r in (64, 66, 68) for w in (16, 24) for c in (10, 10.0)]
    points += [lib.Point("specs/vgg11.yaml", (("classes", c),), f"vgg c={c}") for c in (5, 6)]
    order = lib.evaluation_order(points, lambda spec: lib._shaping_names(spec, {}))
    assert sorted(order) == list(range(len(points)))
    assert [points[i].label for i in order[:4]] == [
        "r=64 w=16 c=10", "r=66 w=16 c=10", "r=68 w=16 c=10", "r=64 w=16 c=10.0"]
    assert order[-2:] == [12, 13]  # vgg11: no swept setting sets its input: as given
    assert lib.evaluation_order(points, lambda spec: lib._shaping_names(
        spec, {"input": "3x64x64"})) == list(range(len(points)))
    outcomes = lib.run(points, {})
    assert [o.point for o in outcomes] == points
    assert outcomes == [lib.analyze_point(p, {}) for p in points]


# ------------------------------------------------------------------ formats parse back
THREE = ["compare", "specs/vgg16.yaml", "specs/resnet50.yaml", "specs/mobilenet_v2.yaml"]


def library_totals(name: str):
    return cnncost.analyze(name).totals


def test_json_csv_markdown_parse_back_to_the_same_numbers():
    data = json.loads(invoke(*THREE, "--format", "json").output)
    csv_rows = list(csv.DictReader(io.StringIO(invoke(*THREE, "--format", "csv").output)))
    md = invoke(*THREE, "--format", "markdown").output
    md_rows = [line.strip("|").split("|") for line in md.splitlines()
               if line.startswith("| ") and "model" not in line]
    assert [r["model"] for r in data["rows"]] == ["vgg16", "resnet50", "mobilenet_v2"]
    for i, name in enumerate(["vgg16", "resnet50", "mobilenet_v2"]):
        t = library_totals(name)
        expected = {"params": t.params, "macs": t.macs, "flops": t.flops,
                    "weight_bytes": t.weight_bytes,
                    "peak_activation_bytes": t.peak_activation_bytes,
                    "depth": t.weighted_layers}
        assert {k: data["rows"][i][k] for k in expected} == expected
        assert {k: int(csv_rows[i][k]) for k in expected} == expected
        cells = [c.strip() for c in md_rows[i]]
        assert cells[0] == name
        assert [int(c.replace(",", "")) for c in cells[1:4]] == [t.params, t.macs, t.flops]
        assert int(cells[6]) == t.weighted_layers


def test_table_shows_exact_numbers_and_header():
    result = invoke(*THREE)
    assert result.exit_code == 0
    assert "138,357,544" in result.output and "4,089,184,256" in result.output
    assert result.output.startswith("compare | 3 models | batch 1 | fp32 | convention "
                                    "torchvision | ratios vs vgg16")


# ------------------------------------------------------------------ ratios, sort, columns
def test_ratios_against_first_and_named_baseline():
    rows = json_rows(*THREE)
    vgg, r50, mv2 = (library_totals(n) for n in ("vgg16", "resnet50", "mobilenet_v2"))
    assert rows[0]["macs_ratio"] == 1.0
    assert rows[1]["macs_ratio"] == r50.macs / vgg.macs
    assert rows[2]["params_ratio"] == mv2.params / vgg.params
    assert rows[2]["peak_ratio"] == mv2.peak_activation_bytes / vgg.peak_activation_bytes
    rows = json_rows(*THREE, "--baseline", "resnet50")
    assert [r["macs_ratio"] for r in rows] == [vgg.macs / r50.macs, 1.0, mv2.macs / r50.macs]


def test_sort_ascending_and_reverse():
    rows = json_rows(*THREE, "--sort", "macs")
    assert [r["model"] for r in rows] == ["mobilenet_v2", "resnet50", "vgg16"]
    assert rows[2]["macs_ratio"] == 1.0  # ratios stay against the baseline, not the sort order
    rows = json_rows(*THREE, "--sort", "depth", "--reverse")
    assert [r["depth"] for r in rows] == sorted((r["depth"] for r in rows), reverse=True)
    rows = json_rows(*MOBILENET_GRID, "--sort", "resolution")
    assert [r["resolution"] for r in rows] == sorted(r["resolution"] for r in rows)


def test_columns_selection():
    result = invoke(*THREE, "--columns", "model,macs", "--format", "csv")
    assert result.output.splitlines()[0] == "model,macs"
    assert len(result.output.splitlines()) == 4


@pytest.mark.parametrize("args,message", [
    (["--sort", "mac"], "--sort: unknown column 'mac'; did you mean 'macs'?"),
    (["--baseline", "resnet5"], "--baseline: no compared model is called 'resnet5'; did you mean"),
    (["--columns", "model,parms"], "--columns: unknown column 'parms'; did you mean 'params'?"),
    (["--columns", "latency_ms"], "measured columns need --measure"),
])
def test_bad_sort_baseline_columns(args, message):
    result = CliRunner().invoke(main, [*THREE, *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


# ------------------------------------------------------------------ failures and bad input
def test_failing_spec_is_named_others_still_shown(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: broken\ninput: [3, 32, 32]\nlayers:\n  - {op: convv, out: 8, kernel: 3}\n")
    result = CliRunner().invoke(main, ["compare", "resnet18", str(bad), "mobilenet_v2",
                                       "--format", "csv"])
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["resnet18", "mobilenet_v2"]
    assert f"error: {bad}:4: layers[0]: unknown op 'convv'" in result.stderr
    assert "1 of 3 models failed" in result.stderr


def test_missing_spec_file_is_named():
    result = CliRunner().invoke(main, ["compare", "resnet18", "nosuch.yaml"])
    assert result.exit_code == 2
    assert "error: nosuch.yaml: no such spec file" in result.stderr
    assert "resnet18" in result.stdout


@pytest.mark.parametrize("item,message", [
    ("width", "--sweep 'width': expected NAME=V1,V2,..."),
    ("width=0.5,,1.0", "--sweep 'width=0.5,,1.0': empty value"),
    ("=1,2", "--sweep '=1,2': expected NAME=V1,V2,..."),
])
def test_sweep_parse_errors_name_the_item(item, message):
    result = CliRunner().invoke(main, ["compare", "mobilenet_v1", "--sweep", item])
    assert result.exit_code == 2
    assert message in result.stderr


def test_sweep_unknown_variable_did_you_mean():
    result = CliRunner().invoke(main, ["compare", "mobilenet_v1", "--sweep", "widht=0.5,1.0"])
    assert result.exit_code == 2
    assert ("--sweep: unknown variable 'widht'; did you mean 'width'? (vars: act, bn_eps, "
            "bn_momentum, classes, classifier_act, dropout, min_depth, resolution, width)") \
        in result.stderr


def test_sweep_value_of_wrong_type_fails_that_point_only():
    result = CliRunner().invoke(main, ["compare", "mobilenet_v1", "--sweep", "width=0.5,wide",
                                       "--format", "csv"])
    assert result.exit_code == 2
    assert ("error: mobilenet_v1 width=wide: specs/mobilenet_v1.yaml: --sweep width: variable "
            "'width' is a number (default 1.0); received 'wide'") in result.stderr
    assert "mobilenet_v1 width=0.5," in result.stdout


def test_set_and_sweep_same_variable_is_a_usage_error():
    result = CliRunner().invoke(main, ["compare", "mobilenet_v1", "--sweep", "width=0.5,1.0",
                                       "--set", "width=0.5"])
    assert result.exit_code == 2 and "both set and swept" in result.output


# ------------------------------------------------------------------ parallel, options
def test_jobs_give_the_same_rows():
    args = ["compare", "resnet50", "--sweep", "width=32,48,64", "--sweep", "resolution=160,224"]
    assert json_rows(*args, "--jobs", "2") == json_rows(*args)


def test_jobs_with_a_failing_point_and_a_progress_bar():
    result = CliRunner().invoke(main, ["compare", "mobilenet_v1", "--sweep", "width=0.5,x,1.0",
                                       "--jobs", "2", "--progress", "--format", "csv",
                                       "--columns", "model,macs"])
    assert result.exit_code == 2
    assert result.stdout.splitlines() == ["model,macs", "mobilenet_v1 width=0.5,149497088",
                                          "mobilenet_v1 width=1.0,568740352"]
    assert "mobilenet_v1 width=x" in result.stderr and "1 of 3 models failed" in result.stderr


def test_convention_batch_dtype_reach_every_row():
    rows = json_rows("compare", "resnet18", "mobilenet_v2", "--convention", "fvcore",
                     "--batch", "2", "--dtype", "fp16")
    t = cnncost.analyze("mobilenet_v2", convention="fvcore", batch=2, dtype="fp16").totals
    assert (rows[1]["macs"], rows[1]["weight_bytes"]) == (t.macs, t.weight_bytes)


# ------------------------------------------------------------------ measured columns
class FakeLatency(types.SimpleNamespace):
    pass


def fake_module(calls: list, spreads: dict | None = None) -> types.ModuleType:
    """A stand-in cnncost.pytorch.measure: latency from the MACs; `spreads` maps a spec to
    (p10, median, p90, IQR) in ms and a number of runs, to give it a chosen spread."""
    module = types.ModuleType("cnncost.pytorch.measure")

    def measure_latency(spec, *, input=None, batch=1, dtype="fp32", device="auto", set=None,
                        variant=None, runs=50, warmup=10):
        calls.append({"spec": spec, "set": set, "batch": batch, "dtype": dtype, "runs": runs,
                      "device": device})
        ms = cnncost.analyze(spec, set=set).totals.macs / 1e8  # deterministic stand-in
        p10, ms, p90, iqr = ms * 0.9, ms, ms * 1.1, ms * 0.1
        if spreads and spec in spreads:
            (p10, ms, p90, iqr), runs = spreads[spec]
        return FakeLatency(median_ms=ms, p10_ms=p10, p90_ms=p90, iqr_ms=iqr,
                           samples=runs, images_per_s=batch * 1000 / ms,
                           env={"device": "FakeDevice 9000", "torch": "0.0", "dtype": dtype,
                                "batch": batch, "threads": 2})

    module.measure_latency = measure_latency
    return module


def test_measure_adds_latency_columns_and_header(monkeypatch):
    calls: list = []
    monkeypatch.setitem(sys.modules, "cnncost.pytorch.measure", fake_module(calls))
    result = invoke("compare", "resnet18", "mobilenet_v2", "--measure", "--runs", "5",
                    "--batch", "2", "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["measured"]["device"] == "FakeDevice 9000"
    r18, mv2 = data["rows"]
    assert r18["latency_ms"] == 1_814_073_344 / 1e8
    assert mv2["latency_ratio"] == mv2["latency_ms"] / r18["latency_ms"]
    assert mv2["images_per_s"] == 2 * 1000 / mv2["latency_ms"]
    assert [c["runs"] for c in calls] == [5, 5] and calls[0]["batch"] == 2
    table = invoke("compare", "resnet18", "mobilenet_v2", "--measure")
    assert "measured: device FakeDevice 9000, torch 0.0" in table.output
    assert "latency ms" in table.output


def test_measure_passes_sweep_settings(monkeypatch):
    calls: list = []
    monkeypatch.setitem(sys.modules, "cnncost.pytorch.measure", fake_module(calls))
    result = invoke("compare", "mobilenet_v1", "--sweep", "width=0.5,1.0", "--measure",
                    "--sort", "latency_ms", "--format", "csv", "--columns", "model,latency_ms")
    assert result.exit_code == 0
    assert [c["set"] for c in calls] == [{"width": 0.5}, {"width": 1.0}]
    assert result.output.splitlines()[1].startswith("mobilenet_v1 width=0.5,")


def test_measure_without_module_exits_2(monkeypatch):
    monkeypatch.setitem(sys.modules, "cnncost.pytorch.measure", None)  # import fails
    result = CliRunner().invoke(main, ["compare", "resnet18", "--measure"])
    assert result.exit_code == 2
    assert "--measure needs PyTorch" in result.stderr
    assert "pip install 'cnncost[torch]'" in result.stderr


def test_measure_failure_is_named(monkeypatch):
    module = types.ModuleType("cnncost.pytorch.measure")

    def broken(spec, **_):
        raise RuntimeError("no torch here")

    module.measure_latency = broken
    monkeypatch.setitem(sys.modules, "cnncost.pytorch.measure", module)
    result = CliRunner().invoke(main, ["compare", "resnet18", "--measure"])
    assert result.exit_code == 2
    assert "error: resnet18: --measure: RuntimeError: no torch here" in result.stderr


# The spread of the issue: median 15.5 ms between p10 0.41 ms and p90 96 ms.
SPREADS = {"resnet18": ((9.5, 10.0, 10.5, 0.5), 50),      # 5% IQR: ok
           "mobilenet_v2": ((0.41, 15.5, 96.0, 40.0), 50),  # 258% IQR: unreliable
           "vgg11": ((19.0, 20.0, 24.0, 3.0), 50),          # 15% IQR: warn
           "lenet5": ((0.99, 1.0, 1.01, 0.01), 3)}          # 1% IQR but 3 runs: warn
QUALITY_MODELS = ("resnet18", "mobilenet_v2", "vgg11", "lenet5")


@pytest.fixture
def busy_cpu(monkeypatch):
    """A 2-CPU machine with a load average of 1.8, PyTorch on the CPU with 2 threads."""
    import os

    import cnncost.comparison.request as command

    monkeypatch.setattr(command, "cpu_threads", lambda device: 2)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(os, "getloadavg", lambda: (1.8, 1.0, 1.0))


def test_measure_flags_quality_and_a_busy_cpu_as_bench_does(monkeypatch, busy_cpu):
    """compare --measure gives each row bench's quality flag (cnncost.quality.quality) and
    bench's busy-machine note, in every format; unreliable rows get bench's warning."""
    from cnncost.quality import quality

    monkeypatch.setitem(sys.modules, "cnncost.pytorch.measure", fake_module([], SPREADS))
    args = ("compare", *QUALITY_MODELS, "--measure")
    data = json.loads(invoke(*args, "--format", "json").output)
    flags = [row["quality"] for row in data["rows"]]
    assert flags == ["ok", "unreliable", "warn", "warn"]
    assert flags == [quality(FakeLatency(median_ms=m, iqr_ms=iqr, samples=runs))
                     for (_, m, _, iqr), runs in SPREADS.values()]
    (note,) = data["notes"]
    assert note.startswith("the CPU is busy (load average 1.8 on 2 CPUs) and PyTorch runs 2 "
                           "threads") and "--threads" not in note  # compare has no --threads
    warning = ("warning: mobilenet_v2: the runs spread widely (IQR above 25% of the median): "
               "do not trust this median")
    for fmt in ("table", "markdown"):
        out = invoke(*args, "--format", fmt).output
        assert "unreliable (258.1% IQR)" in out and "warn (15.0% IQR)" in out
        assert "warn (1.0% IQR, 3 runs)" in out
        assert " ok " in [line for line in out.splitlines() if "resnet18" in line][-1]
        assert warning in out and f"note: {note}" in out
        assert "warning: vgg11" not in out  # warn is shown in its cell, not warned about
    result = invoke(*args, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["quality"] for r in rows] == flags
    assert warning in result.stderr and f"note: {note}" in result.stderr


def test_measure_on_a_quiet_cpu_has_no_note(monkeypatch):
    import os

    import cnncost.comparison.request as command

    monkeypatch.setitem(sys.modules, "cnncost.pytorch.measure", fake_module([], SPREADS))
    monkeypatch.setattr(command, "cpu_threads", lambda device: 1)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.2, 0.2))
    data = json.loads(invoke("compare", "resnet18", "--measure", "--format", "json").output)
    assert data["notes"] == [] and data["rows"][0]["quality"] == "ok"
    monkeypatch.setattr(command, "cpu_threads", lambda device: None)  # on a GPU: no check
    monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    data = json.loads(invoke("compare", "resnet18", "--measure", "--format", "json").output)
    assert data["notes"] == []


def test_measurements_from_bench_files_get_the_same_quality(tmp_path):
    """--measurements (no torch) flags each row from the file's own spread and runs."""
    from test_benchfile import bench_doc

    doc = bench_doc("resnet18", {1: 2.0})
    latency = doc["results"][0]["latency"]
    latency.update(iqr_ms=1.0, spread=0.5)
    doc["results"][0]["quality"] = "unreliable"
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    result = invoke("compare", "resnet18", "--measurements", str(path), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["rows"][0]["quality"] == "unreliable" and data["notes"] == []
    table = invoke("compare", "resnet18", "--measurements", str(path)).output
    assert "unreliable (50.0% IQR)" in table and "warning: resnet18: the runs spread" in table


def test_analytic_compare_has_no_quality_column():
    data = json.loads(invoke("compare", "resnet18", "--format", "json").output)
    assert "quality" not in data["columns"] and data["notes"] == []
    result = CliRunner().invoke(main, ["compare", "resnet18", "--columns", "quality"])
    assert result.exit_code == 2 and "measured columns need --measure" in result.output


def test_bench_verify_and_compare_share_one_quality_rule():
    pytest.importorskip("torch")
    import cnncost.pytorch.bench
    import cnncost.quality
    import cnncost.pytorch.verification

    assert cnncost.pytorch.bench.quality is cnncost.quality.quality
    assert cnncost.pytorch.bench.spread is cnncost.quality.spread
    assert cnncost.pytorch.verification.cpu_contention is cnncost.quality.cpu_contention


# ------------------------------------------------------------------ plot
def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "models.png"
    result = invoke(*THREE, "--plot", str(out), "--format", "csv")
    assert result.exit_code == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    sweep = tmp_path / "sweep.png"
    assert invoke(*MOBILENET_GRID, "--plot", str(sweep), "--format", "csv").exit_code == 0
    assert sweep.stat().st_size > 1000


def test_plot_says_what_its_axes_and_bubbles_mean(monkeypatch, tmp_path):
    """Axes in the unit the data needs (G MACs for ResNet-50, M params), no offset or
    scientific notation, and a key that gives the bubble sizes in bytes."""
    pytest.importorskip("matplotlib")
    from cnncost.comparison import plot as plotting

    assert plotting.scale([4.09e9, 0.3e9]) == (1e9, "G")
    assert plotting.scale([25.5e6]) == (1e6, "M")
    assert plotting.scale([61_706]) == (1e3, "k")
    assert plotting.scale([12]) == (1.0, "")
    seen = {}
    plt = plotting._pyplot()
    real = plt.Figure.savefig

    def keep(fig, path, *args, **kwargs):
        ax = fig.axes[0]
        seen["x"], seen["y"] = ax.get_xlabel(), ax.get_ylabel()
        seen["key"] = [t.get_text() for t in ax.get_legend().get_texts()]
        seen["title"] = ax.get_legend().get_title().get_text()
        return real(fig, path, *args, **kwargs)

    monkeypatch.setattr(plt.Figure, "savefig", keep)
    assert invoke("compare", "resnet50", "mobilenet_v2", "--plot", str(tmp_path / "p.png"),
                  "--format", "csv").exit_code == 0
    assert seen["x"] == "MACs per forward pass (G MACs)"
    assert seen["y"] == "parameters (M params)"
    assert seen["title"] == "peak activation memory"
    assert seen["key"][0] == "9.19 MiB"  # ResNet-50's peak, the larger of the two


def test_plot_without_matplotlib_exits_2(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = CliRunner().invoke(main, [*THREE, "--plot", str(tmp_path / "x.png")])
    assert result.exit_code == 2
    assert "pip install matplotlib" in result.stderr
    assert not (tmp_path / "x.png").exists()


# ------------------------------------------------------------------ library
def test_library_returns_a_dataframe():
    df = cnncost.compare(["resnet50", "resnet18"], sort="params")
    assert list(df["model"]) == ["resnet18", "resnet50"]
    assert int(df.loc[df["model"] == "resnet50", "macs"].iloc[0]) == 4_089_184_256
    sweep = cnncost.compare("mobilenet_v1", sweep={"width": [0.25, 1.0]})
    assert list(sweep["width"]) == [0.25, 1.0]
    assert 41 in printed(int(sweep["macs"].iloc[0]))


def test_library_errors_raise_or_skip(tmp_path):
    with pytest.raises(cnncost.SpecError, match="nosuch.yaml"):
        cnncost.compare(["resnet18", "nosuch.yaml"])
    df = cnncost.compare(["resnet18", "nosuch.yaml"], errors="skip")
    assert list(df["model"]) == ["resnet18"]


def test_import_and_analytic_compare_need_neither_torch_nor_pandas():
    code = ("import sys, cnncost; assert 'pandas' not in sys.modules; "
            "from cnncost.cli import main; "
            "sys.argv = ['cnncost', 'compare', 'resnet18', 'vgg11', '--format', 'csv']; "
            "\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules and 'pandas' not in sys.modules, 'heavy import'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "resnet18," in result.stdout


def test_readme_and_docs_compare_outputs_are_real():
    """The compare/diff outputs shown in README.md and docs/compare.md are what the CLI prints."""
    import re
    import shlex
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    checked = 0
    for path in (root / "README.md", root / "docs" / "compare.md"):
        text = path.read_text()
        for command, shown in re.findall(r"^\$ (cnncost (?:compare|diff) [^\n]*)\n(.*?)(?=^\$ |^```)",
                                         text, re.M | re.S):
            if "nosuch" in command:
                continue
            result = CliRunner().invoke(main, shlex.split(command)[1:])
            assert result.output.rstrip() == shown.rstrip(), command
            checked += 1
    assert checked >= 5


def test_missing_pandas_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"pip install pandas \(or pip install 'cnncost\[pandas\]'\)"):
        cnncost.compare(["lenet5"])
    with pytest.raises(ImportError, match="pip install pandas"):
        cnncost.analyze("lenet5").to_dataframe()


def test_plot_path_is_checked_before_any_work(tmp_path):
    for target, message in ((tmp_path / "missing" / "p.png", "does not exist"),
                            (tmp_path / "p.txt", "expected a file name ending in .png")):
        done = CliRunner().invoke(main, ["compare", "lenet5", "--plot", str(target)])
        assert done.exit_code == 2 and message in done.output, done.output
