"""Budget files and quantities: exact parsing, every problem reported with file:line."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from cnncost import SpecError
from cnncost.gate.budget import load_budget
from cnncost.gate.metrics import MEASURED, METRICS
from cnncost.gate.quantity import parse_percent, parse_quantity


@pytest.mark.parametrize(("text", "kind", "expected"), [
    ("5M", "count", 5_000_000),
    ("600k", "count", 600_000),
    ("1.5G", "count", 1_500_000_000),
    ("4Mi", "count", 4 * 2**20),
    (3504872, "count", 3_504_872),
    ("3_504_872", "count", 3_504_872),
    ("20MB", "bytes", 20_000_000),
    ("20 KB", "bytes", 20_000),
    ("20kB", "bytes", 20_000),
    ("8MiB", "bytes", 8 * 2**20),
    ("1.5MiB", "bytes", 1_572_864),
    ("2GiB", "bytes", 2 * 2**30),
    ("1024", "bytes", 1024),
    ("512B", "bytes", 512),
    ("12.5", "ms", Fraction(25, 2)),
    ("12.5ms", "ms", Fraction(25, 2)),
    ("0.02s", "ms", 20),
    ("1.2k", "rate", 1200),
    (0, "count", 0),
    ("5e6", "count", 5_000_000),  # YAML 1.1 leaves 5e6 as text; read as a number here
    ("1.2e9", "count", 1_200_000_000),
    (1.0e7, "count", 10_000_000),
])
def test_quantities_parse_exactly(text, kind, expected):
    assert parse_quantity(text, kind) == expected


@pytest.mark.parametrize(("text", "kind", "message"), [
    ("5M", "bytes", "MB (SI) or MiB (binary)"),
    ("4Mi", "bytes", "MiB"),
    ("1.2MB", "count", "a count, not bytes"),
    ("1.5", "count", "not a whole number"),
    ("0.5B", "bytes", "not a whole number"),
    ("e6", "count", "such as 5M"),
    ("lots", "count", "such as 5M"),
    (True, "count", "such as 5M"),
    (-3, "count", "non-negative"),
    ("5Q", "count", "unknown unit 'Q'"),
])
def test_bad_quantities_say_what_is_allowed(text, kind, message):
    with pytest.raises(ValueError) as info:
        parse_quantity(text, kind)
    assert message in str(info.value)


def test_percentages():
    assert parse_percent("1%") == Fraction(1, 100)
    assert parse_percent(" 0.5 %") == Fraction(1, 200)
    assert parse_percent("+2%") == Fraction(2, 100)
    for bad in ("1", 1, "x%", "-1%"):
        with pytest.raises(ValueError):
            parse_percent(bad)


def test_registry_has_the_issue_metrics():
    assert {"params", "macs", "flops", "weights", "activations", "peak_activation", "buffers",
            "layers", "latency_ms", "throughput"} <= set(METRICS)
    for name in MEASURED:
        assert METRICS[name].default_level == "warn" and METRICS[name].total is None
    for name, metric in METRICS.items():
        if name not in MEASURED:
            assert metric.default_level == "error"


def write(tmp_path, text):
    (tmp_path / "specs").mkdir(exist_ok=True)
    (tmp_path / "specs" / "m.yaml").write_text(
        "name: m\ninput: [3, 8, 8]\nvars: {width: 1.0}\n"
        "layers:\n  - {op: conv, out: 4, kernel: 3}\n")
    path = tmp_path / "cnncost.budget.yaml"
    path.write_text(text)
    return path


def test_valid_budget_file(tmp_path):
    path = write(tmp_path, """\
version: 1
defaults:
  dtype: fp16
  regression: {macs: 1%, params: 0}
models:
  - spec: specs/m.yaml
    input: [3, 16, 16]
    vars: {width: 0.5}
    budgets:
      params: "<= 5k"
      weights: 1KiB
      throughput: {min: 1.2k}
      macs: {max: 1M, level: warn}
    regression:
      params: {relative: 2%, absolute: 10, level: off}
  - name: other
    spec: resnet18
""")
    budget = load_budget(path)
    first, second = budget.models
    assert first.name == "m" and first.spec_ref == "specs/m.yaml"
    assert first.settings == {"input": "3x16x16", "batch": 1, "dtype": "fp16",
                              "vars": {"width": 0.5}, "variant": None}
    checks = first.checks
    assert list(checks) == ["params", "weights", "throughput", "macs"]
    assert checks["params"].budget.limit == 5000 and checks["params"].budget.line == 10
    assert checks["weights"].budget.limit == 1024
    assert checks["throughput"].budget.limit == 1200 and checks["throughput"].budget.level == "warn"
    assert checks["macs"].budget.level == "warn"
    assert checks["macs"].tolerance.relative == Fraction(1, 100)  # from defaults
    tol = checks["params"].tolerance  # the model's own replaces the default
    assert (tol.relative, tol.absolute, tol.level, tol.line) == (Fraction(2, 100), 10, "off", 15)
    assert first.measured  # the throughput budget needs a measurement
    assert second.spec == "resnet18" and second.settings["dtype"] == "fp16"
    assert not second.measured
    assert Path(budget.baseline).resolve() == (tmp_path / "cnncost.baseline.json").resolve()


def test_measured_property(tmp_path):
    path = write(tmp_path, "models:\n  - spec: specs/m.yaml\n    budgets: {latency_ms: 5}\n"
                           "  - spec: specs/m.yaml\n    name: b\n"
                           "    regression: {latency_ms: {relative: 5%, level: off}}\n")
    first, second = load_budget(path).models
    assert first.measured and not second.measured


def test_every_problem_reported_with_line(tmp_path):
    path = write(tmp_path, """\
defaults:
  regression:
    mac: 1%
    params: {relative: 2, level: fatal}
models:
  - spec: specs/m.yml
    budgets:
      params: 1.2MB
      weights: 5M
      throughput: "<= 10"
    batch: 0
    dtype: fp33
    extra: 1
  - spec: specs/m.yaml
    input: 3x224
    regression:
      macs: lots
      flops: {level: warn}
  - spec: specs/m.yaml
""")
    with pytest.raises(SpecError) as info:
        load_budget(path)
    text = [str(p) for p in info.value.problems]
    name = str(path)
    expected = [
        (3, "defaults.regression: unknown metric 'mac'; did you mean 'macs'?"),
        (4, "defaults.regression.params.level: expected one of error, warn, off, received 'fatal'"),
        (4, "defaults.regression.params.relative: expected a percentage"),
        (13, "models[0]: unknown key 'extra'"),
        (6, "models[0].spec: no such spec file"),
        (6, "did you mean 'specs/m.yaml'?"),
        (11, "models[0].batch: expected a positive integer, received 0"),
        (12, "models[0].dtype: expected one of fp32, fp16, bf16, int8, received 'fp33'; did you "
             "mean 'fp32'?"),
        (8, "models[0].budgets.params: unknown unit 'MB' for a count"),
        (9, "models[0].budgets.weights: unknown unit 'M' for a byte size; memory needs a byte "
            "unit: MB (SI) or MiB (binary)"),
        (10, "throughput is better higher: its budget is a minimum, written '>= 10'"),
        (15, "models[1] (m).input: expected CxHxW"),
        (17, "models[1] (m).regression.macs: expected a count such as 5M"),
        (18, "models[1] (m).regression.flops: give relative (e.g. 1%), absolute (e.g. 10k) or "
             "both"),
        (19, "models[2]: duplicate model name 'm' (first on line 14)"),
    ]
    for line, fragment in expected:
        assert any(t.startswith(f"{name}:{line}: ") and fragment in t for t in text), \
            (line, fragment, text)


@pytest.mark.parametrize(("text", "fragment"), [
    ("", "the budget file is empty"),
    ("models: []\n", "expected a non-empty list of models"),
    ("version: 2\nmodels: [{spec: specs/m.yaml}]\n", "version: expected 1, received 2"),
    ("modles: []\n", "did you mean 'models'?"),
    ("models:\n  - spec: specs/m.yaml\n    budgets: {macs: 1M, macs: 2M}\n", "duplicate key"),
    ("models:\n  - spec: specs/m.yaml\n    budgets: {macs: {max: 1M, level: on}}\n",
     "YAML reads unquoted on/yes as true"),
    ("models: [{spec: specs/m.yaml, budgets: {macs: {level: warn}}}]\n", "missing max"),
    ("measure: {runs: 0}\nmodels: [{spec: specs/m.yaml}]\n", "measure.runs: expected an integer"),
    ("- a\n", "expected a mapping"),
])
def test_malformed_budget_files(tmp_path, text, fragment):
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_budget(path)
    assert any(fragment in str(p) for p in info.value.problems), info.value.problems
    assert all(str(p).startswith(str(path)) for p in info.value.problems)


def test_unquoted_off_is_level_off(tmp_path):
    path = write(tmp_path, "models:\n  - spec: specs/m.yaml\n"
                           "    budgets: {macs: {max: 1, level: off}}\n")
    assert load_budget(path).models[0].checks["macs"].budget.level == "off"


@pytest.mark.parametrize("kind", ["/dev/zero", "fifo", "sparse"])
def test_budget_that_is_not_a_small_regular_file_is_refused(tmp_path, kind):
    """`gate --budget /dev/zero` read until MemoryError and a FIFO blocked forever: the
    path is checked (regular file, size) before a byte is read; exit 2, one line."""
    import os
    import subprocess
    import sys

    if kind == "/dev/zero" and not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    if kind == "fifo" and not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    path = {"/dev/zero": "/dev/zero", "fifo": "budget.fifo", "sparse": "big.yaml"}[kind]
    expected = {"/dev/zero": "not a regular file (a character device)",
                "fifo": "not a regular file (a FIFO)",
                "sparse": "file is 2,147,483,648 bytes; "}
    if kind == "fifo":
        os.mkfifo(tmp_path / path)
    elif kind == "sparse":
        with open(tmp_path / path, "wb") as handle:
            handle.truncate(2 * 2**30)
    with pytest.raises(SpecError) as info:
        load_budget(tmp_path / path if kind != "/dev/zero" else path)
    [problem] = info.value.problems
    assert expected[kind] in problem.message
    # end to end; the timeout only keeps a regression (a blocking read) from hanging the run
    out = subprocess.run([sys.executable, "-m", "cnncost", "gate", "--budget", path],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False)
    assert out.returncode == 2, out.stdout + out.stderr
    [line] = out.stderr.splitlines()
    assert line.startswith(f"error: {path}: {expected[kind]}")
