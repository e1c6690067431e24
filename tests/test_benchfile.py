"""Bench results as measurements: `cnncost.gate.benchfile` and `--measurements FILE` for `gate`,
`baseline save|update` and `compare`.

Bench files are written here by hand from `cnncost.pytorch.bench_schema` (and validated against
it with jsonschema, so these fixtures cannot drift from the schema), with the spec's
real sha256, name, input shape and resolved variables from `cnncost.analyze`. No test
here needs torch: the point of --measurements is a CI without it.
"""

from __future__ import annotations

import ast
import copy
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import cnncost
from cnncost.gate import benchfile, metrics
from cnncost.comparison import compare as comparison
from cnncost.gate.keys import spec_sha256
from cnncost.pytorch.bench_schema import SCHEMA
from cnncost.cli import main

ROOT = Path(__file__).resolve().parent.parent
SPEC = "mobilenet_v2"
ENV = {"device": "cuda", "device_name": "NVIDIA H100 80GB HBM3", "torch": "2.13.0+cu128",
       "python": "3.12.3", "platform": "Linux-6.8", "dtype": "fp32", "threads": 16,
       "cuda": "12.8", "cudnn": 91002, "cudnn_benchmark": True}


def result(analysis, batch: int, median: float, env: dict | None = None) -> dict:
    """One entry of `results`, with numbers chosen so that every field is exact."""
    flops = analysis.totals.flops * batch
    return {
        "batch": batch,
        "env": {**(env or ENV), "batch": batch},
        "macs": analysis.totals.macs * batch,
        "flops": flops,
        "latency": {"median_ms": median, "p10_ms": median - 0.125, "p90_ms": median + 0.25,
                    "iqr_ms": 0.0625, "samples": 47, "first_ms": 812.5, "spread": 0.0625 / median},
        "images_per_s": batch * 1000 / median,
        "tflops": flops / (median / 1000) / 1e12,
        "peak_share": None,
        "quality": "ok",
        "cross_check": None,
        "per_layer": None,
    }


def bench_doc(spec: str = SPEC, medians: dict | None = None, *, dtype: str = "fp32",
              set: dict | None = None, variant: str | None = None, input: str | None = None,
              sha256: str | None | bool = True, env: dict | None = None) -> dict:
    """A `cnncost bench --format json` document of `spec`: batch -> median ms in `medians`."""
    analysis = cnncost.analyze(spec, set=set, variant=variant, input=input)
    return {
        "kind": "cnncost.bench",
        "schema_version": 1,
        "tool_version": cnncost.__version__,
        "spec": {"name": analysis.name, "file": analysis.file,
                 "sha256": spec_sha256(spec) if sha256 is True else sha256,
                 "input_shape": list(analysis.input_shape),
                 "output_shape": list(analysis.output_shape),
                 "vars": analysis.vars, "variant": variant},
        "settings": {"device": "cuda", "dtype": dtype, "channels_last": False, "compile": False,
                     "threads": None, "runs": 50, "warmup": 10, "warmup_s": 0.2, "budget_s": 5.0,
                     "per_layer": False, "cross_check": False},
        "env": {**(env or ENV), "dtype": dtype},
        "peaks": None,
        "notes": [],
        "results": [result(analysis, batch, median, {**(env or ENV), "dtype": dtype})
                    for batch, median in (medians or {1: 2.5, 8: 9.75}).items()],
    }


def rich_doc() -> dict:
    """Every optional part filled in: peaks, a cross-check and per-layer times."""
    doc = bench_doc("resnet18", {4: 3.5})
    doc["settings"].update(per_layer=True, cross_check=True, compile=True, threads=8)
    doc["peaks"] = {"device_name": "NVIDIA H100 80GB HBM3", "dtype": "fp32",
                    "flops_per_s": 6.7e13, "bandwidth_bytes_per_s": 3.35e12, "source": "table",
                    "reference": "NVIDIA H100 datasheet"}
    res = doc["results"][0]
    res["peak_share"] = 0.031
    res["quality"] = "warn"
    res["cross_check"] = {"method": "torch.utils.benchmark", "median_ms": 3.4,
                          "difference": 0.029, "tolerance": 0.1, "agrees": True}
    res["per_layer"] = {"mode": "eager", "runs": 20, "total_ms": 3.1, "end_to_end_ms": 3.6,
                        "overhead_ms": 0.004, "layers": [
                            {"name": "conv1.conv", "op": "conv", "shape": [64, 112, 112],
                             "macs": 472_055_808, "flops": 944_111_616, "other_ops": 0,
                             "bytes": 16_056_320, "intensity": 58.8, "time_ms": 0.25,
                             "share": 0.08, "bound_ms": 0.014, "bound": "compute",
                             "efficiency": 0.056},
                            {"name": "fc", "op": "linear", "shape": [1000], "macs": 2_048_000,
                             "flops": 4_096_000, "other_ops": 0, "bytes": 0,
                             "intensity": None, "time_ms": 0.01, "share": 0.003,
                             "bound_ms": None, "bound": None, "efficiency": None}]}
    return doc


def write(path: Path, doc) -> str:
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc, indent=2))
    return str(path)


def key(spec: str = SPEC, batch: int = 1, dtype: str = "fp32", **options) -> benchfile.Key:
    analysis = cnncost.analyze(spec, batch=batch, dtype=dtype, **options)
    return benchfile.analysis_key(spec, analysis)


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


# ------------------------------------------------------------------ the fixtures and the schema
def test_fixtures_follow_the_schema():
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(SCHEMA)
    docs = [bench_doc(), bench_doc(sha256=None), bench_doc(dtype="tf32"), rich_doc(),
            bench_doc("mobilenet_v1", {1: 1.0}, set={"width": 0.5})]
    for doc in docs:
        errors = list(validator.iter_errors(doc))
        assert not errors, errors[0].message
        assert benchfile.validate(doc) == []


def schema_keywords(schema, found=None) -> set:
    found = set() if found is None else found
    if isinstance(schema, dict):
        for name, value in schema.items():
            found.add(name)
            if name == "properties":
                for sub in value.values():
                    schema_keywords(sub, found)
            elif name in ("items",):
                schema_keywords(value, found)
            elif name == "oneOf":
                for sub in value:
                    schema_keywords(sub, found)
    return found


def test_every_keyword_of_the_schema_is_checked():
    keywords = schema_keywords(SCHEMA)
    assert keywords <= set(benchfile.KEYWORDS), keywords - set(benchfile.KEYWORDS)
    annotations = {k for k, check in benchfile.KEYWORDS.items() if check is None}
    assert annotations == {"$schema", "title", "description"}
    with pytest.raises(ValueError, match="uses maxItems, which cnncost.gate.benchfile does not check"):
        benchfile.check([], {"type": "array", "maxItems": 3}, "", [])


def test_latency_has_the_fields_of_measure_latency():
    """Parsed from cnncost/pytorch/measure.py's source, so the check needs no torch."""
    tree = ast.parse((ROOT / "cnncost" / "pytorch" / "measure.py").read_text())
    latency = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Latency")
    fields = [n.target.id for n in latency.body if isinstance(n, ast.AnnAssign)]
    assert list(benchfile.BenchLatency._fields) == fields


def set_in(doc: dict, path: str, value) -> dict:
    """Copy of `doc` with the value at 'a.b[1].c' replaced (value DELETE removes it)."""
    doc = copy.deepcopy(doc)
    parts = path.replace("[", ".").replace("]", "").split(".")
    target = doc
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    last = int(parts[-1]) if parts[-1].isdigit() else parts[-1]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return doc


DELETE = object()
BROKEN = [
    ("kind", "cnncost.baseline", "kind: expected 'cnncost.bench' (a `cnncost bench --format "
                                 "json` result), received 'cnncost.baseline'"),
    ("kind", DELETE, "kind: expected 'cnncost.bench' (a `cnncost bench --format json` result), "
                     "received nothing"),
    ("schema_version", 2, "schema_version: this cnncost reads bench results of schema version 1, "
                          "received 2; written by a newer cnncost: upgrade"),
    ("schema_version", "1", "schema_version: this cnncost reads bench results of schema version "
                            "1, received '1'"),
    ("results[1].latency.median_ms", DELETE, "results[1].latency.median_ms: missing (required)"),
    ("results[1].latency.median_ms", "fast",
     "results[1].latency.median_ms: expected a number, received 'fast'"),
    ("results[0].latency.samples", 0, "results[0].latency.samples: expected at least 1, "
                                      "received 0"),
    ("results[0].batch", True, "results[0].batch: expected an integer, received true"),
    ("results[0].batch", 1.5, "results[0].batch: expected an integer, received 1.5"),
    ("results[0].quality", "great",
     "results[0].quality: expected one of 'ok', 'warn', 'unreliable', received 'great'"),
    ("results[0].cross_check", {"method": "events"},
     "results[0].cross_check.agrees: missing (required)"),
    ("results[0].env", None, "results[0].env: expected an object, received null"),
    ("settings.dtype", "int8",
     "settings.dtype: expected one of 'fp32', 'tf32', 'bf16', 'fp16', received 'int8'"),
    ("spec.sha256", 12, "spec.sha256: expected text or null, received 12"),
    ("spec.vars", [], "spec.vars: expected an object, received a list"),
    ("spec.input_shape[1]", "224", "spec.input_shape[1]: expected an integer, received '224'"),
    ("results", [], "results: expected at least 1 item, received 0"),
    ("peaks", {"device_name": "x"}, "peaks.dtype: missing (required)"),
    ("results[0].latency.fastest_ms", 1.0, "results[0].latency.fastest_ms: unknown field "
                                           "(known: median_ms, p10_ms, p90_ms, iqr_ms, samples, "
                                           "first_ms, spread)"),
]


@pytest.mark.parametrize(("path", "value", "message"), BROKEN,
                         ids=[f"{p}={v!r}"[:40] for p, v, _ in BROKEN])
def test_broken_documents_are_rejected_like_the_schema_does(tmp_path, path, value, message):
    jsonschema = pytest.importorskip("jsonschema")
    doc = set_in(bench_doc(), path, value)
    assert not jsonschema.Draft202012Validator(SCHEMA).is_valid(doc)  # truly broken
    file = write(tmp_path / "bench.json", doc)
    with pytest.raises(cnncost.SpecError) as info:
        benchfile.load_measurements([file])
    assert f"{file}: {message}" in [str(p) for p in info.value.problems]


@pytest.mark.parametrize(("text", "message"), [
    ("", "bench.json:1: not valid JSON (Expecting value, column 1)"),
    ('{"kind": "cnncost.bench",', "bench.json:1: not valid JSON (Expecting property name"),
    ("[1, 2]", "bench.json: expected a JSON object (a `cnncost bench --format json` result), "
               "received a list"),
])
def test_unreadable_documents(tmp_path, text, message):
    write(tmp_path / "bench.json", text)
    with pytest.raises(cnncost.SpecError) as info:
        benchfile.load_measurements([tmp_path / "bench.json"])
    assert message in str(info.value)


def test_nan_is_no_number(tmp_path):
    text = json.dumps(bench_doc()).replace('"median_ms": 2.5', '"median_ms": NaN')
    with pytest.raises(cnncost.SpecError, match=r"results\[0\]\.latency\.median_ms: NaN is not a "
                                                r"number"):
        benchfile.load_measurements([write(tmp_path / "bench.json", text)])


def test_every_problem_of_every_file_at_once(tmp_path):
    bad = set_in(set_in(bench_doc(), "results[0].latency.p10_ms", DELETE),
                 "results[1].images_per_s", -1)
    files = [write(tmp_path / "a.json", bad), str(tmp_path / "missing.json"),
             write(tmp_path / "ok.json", bench_doc())]
    with pytest.raises(cnncost.SpecError) as info:
        benchfile.load_measurements(files)
    assert [str(p) for p in info.value.problems] == [
        f"{files[0]}: results[0].latency.p10_ms: missing (required)",
        f"{files[0]}: results[1].images_per_s: expected more than 0, received -1",
        f"{files[1]}: no such bench file (write one with `cnncost bench SPEC --format json -o "
        "FILE`)"]


# ------------------------------------------------------------------ lookup
def test_lookup_returns_the_matching_result_exactly(tmp_path):
    found = benchfile.load_measurements([write(tmp_path / "b.json", bench_doc())])
    assert len(found.entries) == 2
    one = found.lookup(key(batch=1))
    assert one == benchfile.BenchLatency(2.5, 2.375, 2.75, 0.0625, 47, 400.0,
                                         {**ENV, "batch": 1}, 812.5)
    eight = found.lookup(key(batch=8))
    assert (eight.median_ms, eight.images_per_s, eight.env["batch"]) == (9.75, 8000 / 9.75, 8)


@pytest.mark.parametrize(("options", "why"), [
    ({"batch": 4}, "batch 1 (wanted 4)"),
    ({"dtype": "fp16"}, "dtype fp32 (wanted fp16)"),
    ({"set": {"width": 0.5}}, "vars {width=1.0} (wanted {width=0.5})"),
    ({"variant": "w050"}, "vars {width=1.0} (wanted {width=0.5}), variant none (wanted w050)"),
    ({"input": "3x160x160"}, "input 3x224x224 (wanted 3x160x160)"),
])
def test_any_other_setting_does_not_match_and_the_note_says_which(tmp_path, options, why):
    found = benchfile.load_measurements([write(tmp_path / "b.json", bench_doc())])
    wanted = key(**options)
    assert found.lookup(wanted) is None
    note = found.explain(wanted)
    assert note.startswith(f"no bench result in {tmp_path / 'b.json'} matched spec {SPEC} "
                           f"(sha256 {spec_sha256(SPEC)[:12]}), input ")
    assert note.endswith(f"; closest: {tmp_path / 'b.json'} results[0], {why}")


def test_tf32_never_stands_for_fp32(tmp_path):
    found = benchfile.load_measurements([write(tmp_path / "b.json", bench_doc(dtype="tf32"))])
    assert found.lookup(key()) is None
    assert "dtype tf32 (wanted fp32); a tf32 result never stands for an fp32 model" in \
        found.explain(key())


def test_a_changed_spec_file_does_not_match(tmp_path):
    doc = bench_doc(sha256="0" * 64)
    found = benchfile.load_measurements([write(tmp_path / "b.json", doc)])
    assert found.lookup(key()) is None
    assert "is of spec mobilenet_v2 with sha256 000000000000: the spec file changed since it " \
           "was benchmarked" in found.explain(key())
    other = benchfile.load_measurements([write(tmp_path / "r.json", bench_doc("resnet18"))])
    assert other.explain(key()).endswith("; the files hold results for resnet18 only")


def test_without_a_sha256_on_either_side_the_name_decides(tmp_path):
    no_sha = benchfile.load_measurements([write(tmp_path / "b.json", bench_doc(sha256=None))])
    assert no_sha.lookup(key()).median_ms == 2.5
    spec = cnncost.load(SPEC)  # a loaded spec has no file to hash: matched by name
    from_dict = benchfile.key_for(spec, name="mobilenet_v2", input_shape=(3, 224, 224),
                                  vars=cnncost.analyze(SPEC).vars, variant=None, batch=1,
                                  dtype="fp32")
    assert from_dict.sha256 is None
    found = benchfile.load_measurements([write(tmp_path / "c.json", bench_doc())])
    assert found.lookup(from_dict).median_ms == 2.5
    assert found.lookup(from_dict._replace(name="mobilenet_v3")) is None


def test_two_different_results_for_one_model_name_both_files(tmp_path):
    a = write(tmp_path / "a.json", bench_doc())
    b = write(tmp_path / "b.json", bench_doc(medians={1: 2.75}))
    found = benchfile.load_measurements([a, b])
    with pytest.raises(cnncost.SpecError) as info:
        found.lookup(key())
    message = str(info.value)
    assert message.startswith(f"{a}: results[0]: {b} results[0] is another result for the same "
                              "model (spec mobilenet_v2")
    assert message.endswith("which differs in images_per_s, latency.median_ms, latency.p10_ms, "
                            "latency.p90_ms (and 2 more); pass only one of them to "
                            "--measurements")
    assert found.lookup(key(batch=8)).median_ms == 9.75  # only one result for batch 8
    same = benchfile.load_measurements([a, a])  # one result given twice is one result
    assert same.lookup(key()).median_ms == 2.5


def test_numbers_match_by_value_booleans_apart():
    assert benchfile.same({"w": 1, "s": [3, 224]}, {"w": 1.0, "s": (3, 224)})
    assert not benchfile.same({"w": True}, {"w": 1})
    assert not benchfile.same({"w": 1}, {"w": 1, "x": 2})
    assert not benchfile.same("1", 1)


# ------------------------------------------------------------------ gate and baseline
BUDGET = """\
models:
  - spec: mobilenet_v2
    budgets: {params: 5M, latency_ms: 3}
    regression: {latency_ms: 10%, throughput: 10%}
  - spec: mobilenet_v2
    name: mv2-batch4
    batch: 4
    budgets: {latency_ms: 20}
"""


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A budget file of two bundled-spec models; measuring with torch fails the test."""
    (tmp_path / "cnncost.budget.yaml").write_text(BUDGET)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "no-git"))
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)

    def never(spec, **kwargs):
        raise AssertionError("--measurements must not measure")

    monkeypatch.setattr(metrics, "MEASURER", never)
    write(tmp_path / "bench.json", bench_doc())
    comparison.clear_caches()
    yield tmp_path
    # compare caches loaded specs, whose file names are relative to the cwd of this test
    comparison.clear_caches()


def rows(result) -> dict:
    return {(r["model"], r["metric"]): r for r in json.loads(result.stdout)["rows"]}


def test_gate_takes_measured_metrics_from_the_bench_file(repo):
    assert run("baseline", "save", "--measurements", "bench.json").exit_code == 0
    result = run("gate", "--measurements", "bench.json", "--format", "json")
    assert result.exit_code == 0, result.output
    got = rows(result)
    assert got[("mobilenet_v2", "latency_ms")]["current"] == 2.5
    assert got[("mobilenet_v2", "throughput")]["current"] == 400.0
    assert got[("mobilenet_v2", "latency_ms")]["status"] == "pass"
    assert got[("mobilenet_v2", "params")]["current"] == 3_504_872


def test_unmatched_model_is_skipped_with_the_key_looked_for(repo):
    assert run("baseline", "save", "--measurements", "bench.json").exit_code == 0
    for strict in ([], ["--strict"]):  # as an unmeasured metric: skipped, even with --strict
        result = run("gate", "--measurements", "bench.json", "--format", "json", *strict)
        assert result.exit_code == 0
        row = rows(result)[("mv2-batch4", "latency_ms")]
        assert row["status"] == "skipped" and row["current"] is None
        assert row["note"].startswith("no bench result in bench.json matched spec mobilenet_v2 "
                                      f"(sha256 {spec_sha256(SPEC)[:12]}), input 3x224x224, "
                                      "vars {bn_eps=1e-05, bn_momentum=0.1, classes=1000, "
                                      "classifier_act=none, dropout=0.2, keras_pad=false, "
                                      "resolution=224, width=1.0}, variant none, batch 4, "
                                      "dtype fp32")
        assert row["note"].endswith("closest: bench.json results[0], batch 1 (wanted 4)")
    text = run("gate", "--measurements", "bench.json").output
    assert "skipped: mv2-batch4 latency_ms: no bench result in bench.json matched" in text
    assert text.rstrip().endswith("gate passed: 1 skipped, 3 pass")


def test_measured_budget_and_regression_from_the_files(repo):
    assert run("baseline", "save", "--measurements", "bench.json").exit_code == 0
    write(repo / "slow.json", bench_doc(medians={1: 3.25, 4: 21.0}))
    result = run("gate", "--measurements", "slow.json", "--format", "json")
    assert result.exit_code == 0  # measured checks default to warn
    got = rows(result)
    assert got[("mobilenet_v2", "latency_ms")]["status"] == "warn"
    assert got[("mobilenet_v2", "latency_ms")]["delta"] == 0.75
    assert got[("mobilenet_v2", "throughput")]["current"] == 1000 / 3.25
    assert got[("mv2-batch4", "latency_ms")]["status"] == "warn"  # 21 ms over its 20 ms budget
    assert got[("mv2-batch4", "latency_ms")]["current"] == 21.0
    text = run("gate", "--measurements", "slow.json").output
    assert "mobilenet_v2: latency_ms is 3.25, over the budget <= 3" in text
    assert "mobilenet_v2: latency_ms grew from 2.50 to 3.25" in text
    assert run("gate", "--measurements", "slow.json", "--strict").exit_code == 1


def test_other_environment_is_not_compared_with_the_baseline(repo):
    assert run("baseline", "save", "--measurements", "bench.json").exit_code == 0
    write(repo / "a100.json", bench_doc(medians={1: 9.0}, env={**ENV, "device_name": "A100"}))
    got = rows(run("gate", "--measurements", "a100.json", "--format", "json"))
    row = got[("mobilenet_v2", "throughput")]
    assert row["status"] == "skipped" and row["current"] == 1000 / 9.0
    assert "device_name 'NVIDIA H100 80GB HBM3' -> 'A100'" in row["note"]


def test_baseline_records_the_results_and_their_env(repo):
    result = run("baseline", "save", "--measurements", "bench.json")
    assert result.exit_code == 0
    assert ("warning: mv2-batch4: no bench result in bench.json matched spec mobilenet_v2" in
            result.stderr and "; no measured metrics recorded" in result.stderr)
    stored = json.loads((repo / "cnncost.baseline.json").read_text())["models"]
    assert stored["mobilenet_v2"]["metrics"]["latency_ms"] == 2.5
    assert stored["mobilenet_v2"]["metrics"]["throughput"] == 400.0
    assert stored["mobilenet_v2"]["env"] == {**ENV, "batch": 1}
    assert "latency_ms" not in stored["mv2-batch4"]["metrics"] and \
        stored["mv2-batch4"]["env"] is None
    # update: new results replace the stored ones; a model without a result keeps its own
    write(repo / "b4.json", bench_doc(medians={4: 12.5}))
    assert run("baseline", "update", "--measurements", "b4.json").exit_code == 0
    stored = json.loads((repo / "cnncost.baseline.json").read_text())["models"]
    assert stored["mv2-batch4"]["metrics"]["latency_ms"] == 12.5
    assert stored["mv2-batch4"]["env"]["batch"] == 4
    assert stored["mobilenet_v2"]["metrics"]["latency_ms"] == 2.5


@pytest.mark.parametrize("args", [
    ["gate", "--measurements", "bench.json", "--measure"],
    ["gate", "--measurements", "bench.json", "--no-measure"],
    ["baseline", "save", "--measurements", "bench.json", "--measure"],
    ["baseline", "update", "--measurements", "bench.json", "--no-measure"],
    ["compare", SPEC, "--measurements", "bench.json", "--measure"],
])
def test_measurements_and_measure_exclude_each_other(repo, args):
    result = run(*args)
    assert result.exit_code == 2
    assert "--measurements and --measure" in result.output


def test_bad_bench_file_is_exit_2_with_the_other_problems(repo):
    write(repo / "bad.json", set_in(bench_doc(), "results[0].latency.median_ms", "fast"))
    (repo / "cnncost.baseline.json").write_text("{")
    result = run("gate", "--measurements", "bad.json")
    assert result.exit_code == 2
    assert "error: bad.json: results[0].latency.median_ms: expected a number, received 'fast'" \
        in result.output
    assert "corrupt baseline" in result.output
    saved = run("baseline", "save", "--force", "--measurements", "nothing.json")
    assert saved.exit_code == 2 and "error: nothing.json: no such bench file" in saved.output


def test_conflicting_results_are_exit_2_naming_both_files(repo):
    write(repo / "again.json", bench_doc(medians={1: 2.625}))
    result = run("baseline", "save", "--measurements", "bench.json", "--measurements",
                 "again.json")
    assert result.exit_code == 2
    assert "error: bench.json: results[0]: again.json results[0] is another result for the " \
           "same model" in result.output
    assert "model mobilenet_v2: cannot be gated" in result.output


# ------------------------------------------------------------------ compare
def test_compare_fills_measured_columns_of_matching_rows(repo):
    result = run("compare", SPEC, "resnet18", "--measurements", "bench.json", "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    mv2, r18 = data["rows"]
    assert (mv2["latency_ms"], mv2["latency_p10_ms"], mv2["latency_p90_ms"],
            mv2["images_per_s"], mv2["latency_ratio"]) == (2.5, 2.375, 2.75, 400.0, 1.0)
    assert r18["latency_ms"] is None and r18["latency_ratio"] is None
    assert data["measured"] == {**ENV, "batch": 1}
    assert result.stderr == ("warning: --measurements: no bench result matched resnet18 (batch 1, "
                             "dtype fp32; a result matches the same spec file, input, vars, "
                             "variant, batch and dtype): their measured cells are empty\n")
    table = run("compare", SPEC, "--measurements", "bench.json", "--batch", "8")
    assert "measured: device cuda, device_name NVIDIA H100 80GB HBM3" in table.output
    assert "9.750" in table.output and table.stderr == ""


def test_compare_sweep_matches_each_point_by_its_vars(repo):
    write(repo / "half.json", bench_doc("mobilenet_v1", {1: 1.5}, set={"width": 0.5}))
    write(repo / "full.json", bench_doc("mobilenet_v1", {1: 4.0}))
    result = run("compare", "mobilenet_v1", "--sweep", "width=0.25,0.5,1.0", "--measurements",
                 "half.json", "--measurements", "full.json", "--format", "csv", "--columns",
                 "model,latency_ms,latency_ratio", "--baseline", "mobilenet_v1 width=1.0")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["model,latency_ms,latency_ratio",
                                          "mobilenet_v1 width=0.25,,",
                                          "mobilenet_v1 width=0.5,1.5,0.375",
                                          "mobilenet_v1 width=1.0,4.0,1.0"]
    assert "no bench result matched mobilenet_v1 width=0.25 (" in result.stderr


def test_compare_warns_when_results_come_from_different_environments(repo):
    write(repo / "r18.json", bench_doc("resnet18", {1: 1.25}, env={**ENV, "torch": "2.12.0"}))
    result = run("compare", SPEC, "resnet18", "--measurements", "bench.json", "--measurements",
                 "r18.json", "--format", "json")
    assert result.exit_code == 0
    assert [r["latency_ms"] for r in json.loads(result.stdout)["rows"]] == [2.5, 1.25]
    assert "measured in different environments (torch differ)" in result.stderr


def test_compare_bad_or_conflicting_files_are_exit_2(repo):
    write(repo / "bad.json", {"kind": "cnncost.bench", "schema_version": 9})
    bad = run("compare", SPEC, "--measurements", "bad.json")
    assert bad.exit_code == 2
    assert "bad.json: schema_version: this cnncost reads bench results of schema version 1, " \
           "received 9; written by a newer cnncost: upgrade" in bad.stderr
    write(repo / "again.json", bench_doc(medians={1: 2.625}))
    both = run("compare", SPEC, "resnet18", "--measurements", "bench.json", "--measurements",
               "again.json", "--format", "csv", "--columns", "model,macs")
    assert both.exit_code == 2
    assert "error: mobilenet_v2: bench.json: results[0]: again.json results[0] is another " \
           "result" in both.stderr
    assert both.stdout.splitlines() == ["model,macs", "resnet18,1814073344"]


# ------------------------------------------------------------------ no torch
def test_measurements_never_import_torch(repo):
    """gate, baseline and compare with --measurements work where torch cannot be imported."""
    code = ("import sys\nsys.modules['torch'] = None  # any import of torch fails\n"
            "from cnncost.cli import main\ncodes = []\n"
            "for args in (['baseline', 'save', '--measurements', 'bench.json'],\n"
            "             ['gate', '--measurements', 'bench.json', '--format', 'json'],\n"
            "             ['compare', 'mobilenet_v2', '--measurements', 'bench.json',\n"
            "              '--format', 'csv']):\n"
            "    try:\n        main(args)\n    except SystemExit as exc:\n"
            "        codes.append(exc.code)\n"
            "print('EXIT', codes, sorted(m for m in ('cnncost.pytorch.measure', 'pandas') "
            "if sys.modules.get(m)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=repo, check=False)
    assert out.stdout.strip().endswith("EXIT [0, 0, 0] []"), out.stdout + out.stderr
    assert '"current": 2.5' in out.stdout and "mobilenet_v2,3504872," in out.stdout


# ------------------------------------------------------------------ the docs are real
def doc_section(doc: str, heading: str) -> str:
    text = (ROOT / "docs" / doc).read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def doc_commands(section: str) -> list[list[str]]:
    """The `cnncost` command lines of a section's bash block, without `cnncost bench` (GPU)."""
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    lines = [shlex.split(line, comments=True) for line in block.splitlines()]
    return [args[1:] for args in lines if args and args[0] == "cnncost" and args[1] != "bench"]


CI_SECTION = "Measured metrics from `cnncost bench`"
MNIST_BUDGET = """\
models:
  - spec: specs/seed_mnist_cnn.yaml
    budgets: {latency_ms: 5}
    regression: {latency_ms: 10%}
  - name: mnist-batch8
    spec: specs/seed_mnist_cnn.yaml
    batch: 8
    budgets: {throughput: ">= 1k"}
"""


def test_ci_doc_commands_run_without_torch_on_a_sample_repository(repo):
    (repo / "specs").mkdir()
    shutil.copy(ROOT / "specs" / "seed_mnist_cnn.yaml", repo / "specs")
    (repo / "cnncost.budget.yaml").write_text(MNIST_BUDGET)
    write(repo / "bench.json", bench_doc("specs/seed_mnist_cnn.yaml", {1: 0.5, 8: 1.25}))
    commands = doc_commands(doc_section("ci.md", CI_SECTION))
    assert [c[:2] for c in commands] == [["baseline", "update"], ["gate", "--measurements"]]
    assert run("baseline", "save", "--no-measure").exit_code == 0  # committed earlier
    for args in commands:
        result = run(*args)
        assert result.exit_code == 0, result.output
    stored = json.loads((repo / "cnncost.baseline.json").read_text())["models"]
    assert stored["mnist-batch8"]["metrics"]["throughput"] == 8000 / 1.25
    got = rows(run(*commands[-1], "--format", "json"))
    assert got[("seed_mnist_cnn", "latency_ms")]["current"] == 0.5
    assert got[("mnist-batch8", "throughput")]["current"] == 6400.0
    assert {r["status"] for r in got.values()} == {"pass"}


def test_ci_doc_note_of_an_unmatched_model_is_real(repo):
    (repo / "specs").mkdir()
    shutil.copy(ROOT / "specs" / "seed_mnist_cnn.yaml", repo / "specs")
    (repo / "cnncost.budget.yaml").write_text(MNIST_BUDGET)
    write(repo / "bench.json", bench_doc("specs/seed_mnist_cnn.yaml", {1: 0.5}))
    assert run("baseline", "save", "--no-measure").exit_code == 0
    documented = re.search(r"e\.g\.\n?`(no bench result in .*?)`", doc_section("ci.md", CI_SECTION),
                           re.S).group(1)
    note = rows(run("gate", "--measurements", "bench.json", "--format", "json"))[
        ("mnist-batch8", "throughput")]["note"]
    assert note == " ".join(documented.split())


def test_compare_doc_commands_and_warning_are_real(repo):
    section = doc_section("compare.md", "Measured columns from bench results (`--measurements FILE`)")
    write(repo / "r18.json", bench_doc("resnet18", {1: 1.5, 8: 6.0}))
    write(repo / "mv2.json", bench_doc(SPEC, {1: 2.5, 8: 9.75}))
    [command] = doc_commands(section)
    result = run(*command, "--format", "json")
    assert result.exit_code == 0 and result.stderr == ""
    assert [r["latency_ms"] for r in json.loads(result.stdout)["rows"]] == [6.0, 9.75]
    warning = re.search(r"```\n(warning: .*?)\n```", section, re.S).group(1)
    unmatched = run("compare", "resnet18", "--measurements", "mv2.json", "--format", "csv")
    assert unmatched.exit_code == 0 and unmatched.stderr == warning + "\n"


def test_inconsistent_latency_fails_closed(tmp_path):
    """A hand-edited result the schema allows but arithmetic does not: refused (exit 2)."""
    doc = bench_doc()
    doc["results"][0]["latency"]["p10_ms"] = doc["results"][0]["latency"]["median_ms"] + 1
    doc["results"][1]["images_per_s"] *= 2
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(cnncost.SpecError) as info:
        benchfile.load_measurements([path])
    messages = [str(p) for p in info.value.problems]
    assert any("results[0].latency: expected p10_ms <= median_ms <= p90_ms" in m for m in messages)
    assert any("results[1].images_per_s: expected batch x 1000 / median_ms" in m
               for m in messages)


def test_rounding_of_quantiles_is_not_an_inconsistency(tmp_path):
    """Files written before quantiles were clamped may hold p10 one ulp above the median."""
    import math

    doc = bench_doc()
    lat = doc["results"][0]["latency"]
    lat["p10_ms"] = math.nextafter(lat["median_ms"], math.inf)
    lat["p90_ms"] = max(lat["p90_ms"], lat["p10_ms"])
    path = tmp_path / "ulp.json"
    path.write_text(json.dumps(doc))
    assert benchfile.load_measurements([path]).files == (str(path),)
