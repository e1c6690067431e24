"""`cnncost gate` and `cnncost baseline` end to end, on temporary repositories.

Each test builds a small repository (specs copied from specs/, the quick-start budget
file of docs/ci.md), saves a baseline, changes something and gates. Expected numbers
come from `cnncost.analyze` on the changed spec, never from constants.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import cnncost
from cnncost.gate import metrics
from cnncost.cli import main

ROOT = Path(__file__).resolve().parent.parent
CI_DOC = (ROOT / "docs" / "ci.md").read_text()
SPEC = "seed_mnist_cnn.yaml"


def doc_block(lang: str, starts: str) -> str:
    for block in re.findall(rf"```{lang}\n(.*?)```", CI_DOC, re.S):
        if block.startswith(starts):
            return block
    raise AssertionError(f"docs/ci.md has no {lang} block starting with {starts!r}")


QUICKSTART = doc_block("yaml", "# cnncost.budget.yaml")


def sample_repo(tmp_path, monkeypatch):
    """A repository layout: specs/, the docs' quick-start budget, no git (GIT_DIR points
    nowhere so the baseline's commit is null and outputs are deterministic); the working
    folder. Other test modules set up the same repository with it."""
    (tmp_path / "specs").mkdir()
    shutil.copy(ROOT / "specs" / SPEC, tmp_path / "specs" / SPEC)
    (tmp_path / "cnncost.budget.yaml").write_text(QUICKSTART)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "no-git"))
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return tmp_path


@pytest.fixture
def repo(tmp_path, monkeypatch):
    return sample_repo(tmp_path, monkeypatch)


@pytest.fixture
def git_repo(repo, monkeypatch):
    """`repo` as a git repository with everything committed; git configured by the
    environment only."""
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    monkeypatch.delenv("GIT_DIR")
    for key, value in {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                       "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
                       "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}.items():
        monkeypatch.setenv(key, value)
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "Gate model costs"]):
        subprocess.run(["git", *args], check=True, capture_output=True, timeout=60)
    return repo


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def save(*args: str):
    result = run("baseline", "save", *args)
    assert result.exit_code == 0, result.output
    return result


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def line_of(path: Path, fragment: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if fragment in line:
            return number
    raise AssertionError(fragment)


def statuses(result) -> dict:
    data = json.loads(result.output)
    return {(r["model"], r["metric"]): r["status"] for r in data["rows"]}


def test_unchanged_specs_pass_and_baseline_records_everything(repo):
    out = save()
    assert "wrote cnncost.baseline.json: 1 model (seed_mnist_cnn)" in out.output
    data = json.loads((repo / "cnncost.baseline.json").read_text())
    assert data["schema"] == "cnncost.baseline" and data["schema_version"] == 1
    assert data["tool_version"] == cnncost.__version__ and data["git_commit"] is None
    record = data["models"]["seed_mnist_cnn"]
    spec_bytes = (repo / "specs" / SPEC).read_bytes()
    assert record["spec_sha256"] == hashlib.sha256(spec_bytes).hexdigest()
    totals = cnncost.analyze(repo / "specs" / SPEC).totals
    assert record["metrics"]["macs"] == totals.macs
    assert record["metrics"]["peak_activation"] == totals.peak_activation_bytes
    assert record["metrics"]["weights"] == totals.weight_bytes
    assert set(record["metrics"]) == set(metrics.ANALYTIC) and record["env"] is None
    result = run("gate")
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("gate passed: 3 pass")
    assert set(statuses(run("gate", "--format", "json")).values()) == {"pass"}


def test_baseline_records_git_commit(repo, monkeypatch):
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    monkeypatch.delenv("GIT_DIR")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q"], check=True)
    subprocess.run(["git", "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    save()
    assert json.loads((repo / "cnncost.baseline.json").read_text())["git_commit"] == head
    assert f"at {head[:12]}" in run("gate").output


def test_widening_a_layer_fails_naming_metric_numbers_and_budget_line(repo):
    save()
    spec = repo / "specs" / SPEC
    edit(spec, "name: conv2, out: 64", "name: conv2, out: 72")
    wide = cnncost.analyze(spec).totals
    budget = repo / "cnncost.budget.yaml"
    result = run("gate")
    assert result.exit_code == 1, result.output
    out = result.output
    assert (f"error: cnncost.budget.yaml:{line_of(budget, 'macs: 12M')}: seed_mnist_cnn: macs "
            f"is {wide.macs:,}, over the budget <= 12M") in out
    assert (f"error: cnncost.budget.yaml:{line_of(budget, 'params: 1.2M')}: seed_mnist_cnn: "
            f"params is {wide.params:,}, over the budget <= 1.2M") in out
    assert f"cnncost.budget.yaml:{line_of(budget, 'macs: 1%')}: seed_mnist_cnn: macs grew " \
           f"from 11,992,448 to {wide.macs:,}" in out
    assert "note: seed_mnist_cnn: spec specs/seed_mnist_cnn.yaml changed since the baseline" in out
    assert out.rstrip().endswith("gate failed: 2 fail, 1 pass")


def test_quickstart_output_in_docs_is_real(git_repo):
    """The quick start: commit, gate --against HEAD (exit 0), widen conv2 (exit 1, the
    documented output; only the commit id differs)."""
    assert "cnncost gate --against HEAD  # exit 0" in doc_block("bash", "git add cnncost")
    assert run("gate", "--against", "HEAD").exit_code == 0
    edit(git_repo / "specs" / SPEC, "name: conv2, out: 64", "name: conv2, out: 72")
    result = run("gate", "--against", "HEAD")
    assert result.exit_code == 1
    documented = re.search(r"```\n\$ cnncost gate --against HEAD\n(.*?)```", CI_DOC, re.S)
    assert documented, "docs/ci.md shows a failing `cnncost gate --against HEAD` run"
    commit = re.compile(r"baseline git HEAD \([0-9a-f]{7}\)")
    assert commit.search(documented.group(1)) and commit.search(result.output)
    assert commit.sub("COMMIT", result.output.rstrip()) == \
        commit.sub("COMMIT", documented.group(1).rstrip())


def test_against_messages_in_docs_are_real(git_repo):
    """The messages quoted in the --against table of docs/ci.md (run in /tmp/qs)."""
    table = CI_DOC[CI_DOC.index("| case | what the gate does |"):]
    quoted = [q.replace("/tmp/qs", str(git_repo)) for q in
              re.findall(r"`(error: [^`]*)`", table[:table.index("\n\n")])]
    assert len(quoted) == 4
    assert run("gate", "--against", "origin/main").output.strip() == quoted[0]
    assert run("gate", "--against", "-main").output.startswith(quoted[1].removesuffix("..."))
    spec = git_repo / "specs" / SPEC
    edit(spec, "name: conv2, out: 64, kernel: 3", "name: conv2, out: 64, kernal: 3")
    subprocess.run(["git", "commit", "-qam", "broken"], check=True)
    subprocess.run(["git", "checkout", "-q", "HEAD~1", "--", "specs"], check=True)
    result = run("gate", "--against", "HEAD")
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert lines[0].startswith(quoted[2].removesuffix("..."))
    assert lines[1] == quoted[3]


def test_stored_baseline_commands_in_docs_run(repo):
    block = doc_block("bash", "cnncost baseline save")
    commands = [shlex.split(line, comments=True)[1:] for line in block.splitlines()]
    assert [c[:2] for c in commands] == [["baseline", "save"], ["gate"]]
    for args in commands:
        assert run(*args).exit_code == 0
    edit(repo / "specs" / SPEC, "name: conv2, out: 64", "name: conv2, out: 72")
    assert run(*commands[-1]).exit_code == 1


def test_shrinking_reports_improved(repo):
    save()
    edit(repo / "specs" / SPEC, "name: conv2, out: 64", "name: conv2, out: 48")
    small = cnncost.analyze(repo / "specs" / SPEC).totals
    result = run("gate", "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    rows = {r["metric"]: r for r in data["rows"]}
    assert rows["macs"]["status"] == "improved" and rows["params"]["status"] == "improved"
    assert rows["macs"]["current"] == small.macs
    assert rows["macs"]["delta"] == small.macs - 11_992_448 < 0
    assert "cnncost baseline update" in run("gate").output


@pytest.mark.parametrize(("damage", "fragment"), [
    (lambda text: text[: len(text) // 2], "corrupt baseline: not valid JSON"),
    (lambda text: text.replace('"schema_version": 1', '"schema_version": 7'),
     "written by a newer cnncost"),
    (lambda text: text.replace('"macs": 11992448', '"macs": -1'),
     "models.seed_mnist_cnn.metrics.macs: expected a non-negative integer, received -1"),
    (lambda text: text.replace('"macs": 11992448', '"maks": 11992448'),
     "unknown metric 'maks'"),
    (lambda text: text.replace('"macs": 11992448,', ''),
     "models.seed_mnist_cnn.metrics: missing macs"),
    (lambda text: "[]", "expected a JSON object"),
    (lambda text: "", "not valid JSON"),
])
def test_corrupt_baseline_fails_with_exit_2(repo, damage, fragment):
    save()
    path = repo / "cnncost.baseline.json"
    path.write_text(damage(path.read_text()))
    result = run("gate")
    assert result.exit_code == 2
    assert fragment in result.output and "cnncost.baseline.json" in result.output
    assert "Traceback" not in result.output


PARAMS = '"params": 1199882'
PATH_OF_PARAMS = "models.seed_mnist_cnn.metrics.params"


@pytest.mark.parametrize(("damage", "fragment"), [
    # JSON readers keep the last of two keys: the gate would read 99999999999
    (lambda t: t.replace(PARAMS, '"params": 0, "params": 99999999999'),
     f"{PATH_OF_PARAMS}: duplicate key"),
    (lambda t: t.replace(PARAMS, '"params": 1' + "0" * 400),
     f"{PATH_OF_PARAMS}: 100000000000... (401 digits) is a number too large to be a count"),
    (lambda t: t.replace(PARAMS, '"params": 1e400'),
     f"{PATH_OF_PARAMS}: 1e400 is a number too large to be finite"),
    (lambda t: t.replace(PARAMS, '"params": ' + "7" * 5000),
     f"{PATH_OF_PARAMS}: 777777777777... (5,000 digits) is a number too large to be a count"),
    (lambda t: t.replace(PARAMS, '"params": NaN'),
     f"{PATH_OF_PARAMS}: NaN is not a number (JSON has no NaN or Infinity)"),
    (lambda t: t.replace(PARAMS, '"params": -Infinity'),
     f"{PATH_OF_PARAMS}: -Infinity is not a number"),
    (lambda t: t.replace(PARAMS, '"params": -1'),
     f"{PATH_OF_PARAMS}: expected a non-negative integer, received -1"),
    (lambda t: t.replace(PARAMS, f'"params": {2**63}'),
     f"{PATH_OF_PARAMS}: 9,223,372,036,854,775,808 is beyond 2**63 - 1, not a plausible count"),
    (lambda t: t.replace(PARAMS, '"params": true'),
     f"{PATH_OF_PARAMS}: expected a non-negative integer, received true (a boolean)"),
    (lambda t: t.replace(PARAMS, '"params": 1199882.0'),
     f"{PATH_OF_PARAMS}: expected a non-negative integer, received 1199882.0"),
    (lambda t: t.replace(PARAMS, '"params": "1199882"'),
     f"{PATH_OF_PARAMS}: expected a non-negative integer, received '1199882'"),
    (lambda t: t.replace('"env": null', '"env": ' + "[" * 100_000 + "]" * 100_000),
     "not a valid cnncost baseline: nested more than 64 levels deep"),
    (lambda t: t.replace('"batch": 1', '"batch": 0'),
     "models.seed_mnist_cnn.settings.batch: expected a positive integer, received 0"),
    (lambda t: t.replace('"spec_sha256": "', '"spec_sha256": "x'),
     "models.seed_mnist_cnn.spec_sha256: expected 64 hexadecimal digits or null"),
])
def test_tampered_baseline_fails_closed_with_exit_2(repo, damage, fragment):
    """Hand-edited or tampered baselines that made a real regression pass (or crashed the
    reader): each is exit 2 with one line naming the file and the JSON path."""
    save()
    path = repo / "cnncost.baseline.json"
    path.write_text(damage(path.read_text()))
    edit(repo / "specs" / SPEC, "name: conv2, out: 64", "name: conv2, out: 72")  # a regression
    result = run("gate")
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: cnncost.baseline.json")
    assert fragment in errors[0] and "cnncost baseline save --force" in errors[0]
    assert len(result.output) < 2000 and "Traceback" not in result.output


def test_baseline_saved_from_another_spec_fails_closed(repo):
    """Under the same model name, a baseline of another (bigger) spec would let a
    regression pass: the gate refuses to compare (exit 2) and says how to fix it."""
    shutil.copy(ROOT / "specs" / "vgg16.yaml", repo / "specs" / "vgg16.yaml")
    budget = repo / "cnncost.budget.yaml"
    original = budget.read_text()
    edit(budget, "  - spec: specs/seed_mnist_cnn.yaml",
         "  - name: seed_mnist_cnn\n    spec: specs/vgg16.yaml")
    edit(budget, "params: 1.2M", "params: 200M")
    edit(budget, "macs: 12M", "macs: 20G")
    save()
    budget.write_text(original)
    edit(repo / "specs" / SPEC, "name: conv2, out: 64", "name: conv2, out: 72")
    result = run("gate")
    assert result.exit_code == 2, result.output
    line = line_of(budget, "- spec:")
    assert ("error: cnncost.baseline.json: models.seed_mnist_cnn.spec: the baseline of "
            "seed_mnist_cnn was saved from spec specs/vgg16.yaml, but "
            f"cnncost.budget.yaml:{line} gates seed_mnist_cnn with spec "
            "specs/seed_mnist_cnn.yaml; its numbers are another model's") in result.output
    assert "`cnncost baseline update --model seed_mnist_cnn`" in result.output
    # the same spec written another way is the same spec
    assert run("baseline", "update", "--model", "seed_mnist_cnn").exit_code == 0
    edit(budget, "spec: specs/seed_mnist_cnn.yaml", "spec: ./specs/../specs/seed_mnist_cnn.yaml")
    assert run("gate").exit_code == 1  # over its budgets, compared with its own baseline


@pytest.mark.parametrize("kind", ["/dev/zero", "fifo", "sparse", "directory"])
def test_baseline_that_is_not_a_small_regular_file_is_refused(repo, kind):
    """Checked before reading: /dev/zero, a FIFO (would block forever) and a 2 GB sparse
    file are refused at once with one line."""
    if kind == "/dev/zero" and not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    path = {"/dev/zero": "/dev/zero", "fifo": "baseline.fifo", "sparse": "big.json",
            "directory": "folder"}[kind]
    expected = {"/dev/zero": "not a regular file (a character device)",
                "fifo": "not a regular file (a FIFO)",
                "sparse": "file is 2,147,483,648 bytes; baselines are limited to 16,777,216 bytes",
                "directory": "is a directory, not a file"}[kind]
    if kind == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs here")
        os.mkfifo(repo / path)
    elif kind == "sparse":
        with open(repo / path, "wb") as handle:
            handle.truncate(2 * 2**30)
    elif kind == "directory":
        (repo / path).mkdir()
    # a subprocess with a timeout, so that a regression (a blocking read) fails the test
    # instead of hanging the suite; the assertions are on the exit code and the message
    out = subprocess.run([sys.executable, "-m", "cnncost", "gate", "--baseline", path],
                         capture_output=True, text=True, timeout=120, cwd=repo, check=False)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr == f"error: {path}: cannot read the baseline: {expected}" + (
        "; give a file, or - for standard input\n" if "regular" in expected else "\n")


def test_save_refuses_a_count_it_could_not_read_back(repo, monkeypatch):
    from cnncost.gate import check as gate_module

    real = gate_module.evaluate

    def huge(spec, settings, *args, **kwargs):
        found = real(spec, settings, *args, **kwargs)
        return found._replace(values={**found.values, "macs": 2**63})

    monkeypatch.setattr(gate_module, "evaluate", huge)
    result = run("baseline", "save")
    assert result.exit_code == 2
    assert ("error: cnncost.baseline.json: cannot store this baseline: "
            "models.seed_mnist_cnn.metrics.macs: 9,223,372,036,854,775,808 is beyond 2**63 - 1"
            ) in result.output
    assert not (repo / "cnncost.baseline.json").exists()


def test_missing_baseline_fails_closed(repo):
    result = run("gate")
    assert result.exit_code == 2
    assert "cnncost.baseline.json: baseline file not found; create it with `cnncost baseline " \
           "save`" in result.output
    # without regression checks no baseline is needed; with --baseline it always is
    (repo / "b.yaml").write_text("models: [{spec: specs/seed_mnist_cnn.yaml, "
                                 "budgets: {params: 2M}}]\n")
    assert run("gate", "--budget", "b.yaml").exit_code == 0
    assert run("gate", "--budget", "b.yaml", "--baseline", "none.json").exit_code == 2


def test_spec_error_fails_with_exit_2_and_spec_line(repo):
    save()
    spec = repo / "specs" / SPEC
    edit(spec, "name: conv2, out: 64, kernel: 3", "name: conv2, out: 64, kernal: 3")
    result = run("gate")
    assert result.exit_code == 2
    line = line_of(spec, "kernal")
    assert f"error: specs/seed_mnist_cnn.yaml:{line}: " in result.output
    assert "did you mean 'kernel'?" in result.output
    assert (f"cnncost.budget.yaml:{line_of(repo / 'cnncost.budget.yaml', '- spec:')}: model "
            "seed_mnist_cnn: cannot be gated (specs/seed_mnist_cnn.yaml)") in result.output


def test_all_problems_collected_spec_and_baseline(repo):
    save()
    (repo / "cnncost.baseline.json").write_text("{")
    edit(repo / "specs" / SPEC, "kernel: 3", "kernal: 3")
    result = run("gate")
    assert result.exit_code == 2
    assert "corrupt baseline" in result.output and "kernal" in result.output


def test_bad_budget_file_exit_2(repo):
    edit(repo / "cnncost.budget.yaml", "macs: 12M", "maks: 12M")
    result = run("gate")
    assert result.exit_code == 2
    line = line_of(repo / "cnncost.budget.yaml", "maks")
    assert (f"error: cnncost.budget.yaml:{line}: models[0] (seed_mnist_cnn).budgets: unknown "
            "metric 'maks'; did you mean 'macs'?") in result.output
    assert run("gate", "--budget", "nope.yaml").exit_code == 2


def test_strict_turns_warnings_into_failures(repo):
    save()
    # the quick start's peak_activation budget is 512KiB at level warn: tighten it below
    # the model's peak so that it warns
    peak = cnncost.analyze(repo / "specs" / SPEC).totals.peak_activation_bytes
    edit(repo / "cnncost.budget.yaml", "max: 512KiB", f"max: {peak - 1}")
    result = run("gate", "--format", "json")
    assert result.exit_code == 0
    assert statuses(result)[("seed_mnist_cnn", "peak_activation")] == "warn"
    strict = run("gate", "--format", "json", "--strict")
    assert strict.exit_code == 1
    assert statuses(strict)[("seed_mnist_cnn", "peak_activation")] == "fail"
    assert json.loads(strict.output)["strict"] is True


def test_reports_parse_and_match_the_table(repo):
    save()
    edit(repo / "specs" / SPEC, "name: conv2, out: 64", "name: conv2, out: 72")
    text = run("gate").output.splitlines()
    header = next(i for i, line in enumerate(text) if line.startswith("model "))
    table = []
    for line in text[header + 2:]:
        if not line.strip():
            break
        table.append(re.split(r"\s{2,}", line.strip()))
    markdown = run("gate", "--format", "markdown").output
    assert markdown.startswith("### :x: cnncost gate failed: 2 fail")
    md_rows = [[c.strip().strip("*") for c in line.strip("|").split(" | ")]
               for line in markdown.splitlines()
               if line.startswith("| ") and not line.startswith("| model ")]
    assert "<details><summary>1 passing</summary>" in markdown
    data = json.loads(run("gate", "--format", "json").output)
    assert sorted(md_rows) == sorted(table)
    assert len(data["rows"]) == len(table)
    by_key = {(r[0], r[1]): r for r in table}
    wide = cnncost.analyze(repo / "specs" / SPEC).totals
    for row in data["rows"]:
        cells = by_key[(row["model"], row["metric"])]
        assert cells[-1] == row["status"]
        assert cells[3].split(" ")[0] == f"{row['current']:,}"
        assert row["delta"] == row["current"] - row["baseline"]
    currents = {r["metric"]: r["current"] for r in data["rows"]}
    assert currents["macs"] == wide.macs and currents["params"] == wide.params
    assert data["counts"]["fail"] == 2 and data["exit_code"] == 1 and data["passed"] is False


def test_new_and_removed_models(repo):
    save()
    budget = repo / "cnncost.budget.yaml"
    budget.write_text(budget.read_text() + "  - spec: lenet5\n    budgets: {params: 100k}\n")
    data = statuses(run("gate", "--format", "json"))
    assert data[("lenet5", "params")] == "new" and data[("lenet5", "macs")] == "new"
    assert run("gate").exit_code == 0
    (repo / "b.yaml").write_text("defaults: {regression: {macs: 1%}}\n"
                                 "models: [{spec: lenet5}]\n")
    result = run("gate", "--budget", "b.yaml", "--format", "json")
    assert statuses(result)[("seed_mnist_cnn", "-")] == "removed"
    assert result.exit_code == 0
    (repo / "c.yaml").write_text("models: [{spec: lenet5}]\n")
    assert "note: lenet5: nothing is checked" in run("gate", "--budget", "c.yaml").output


def test_model_missing_from_the_baseline_warns_and_strict_fails(repo):
    """A renamed model must not pass its regression checks silently (fail closed)."""
    save()
    budget = repo / "cnncost.budget.yaml"
    edit(budget, "  - spec: specs/seed_mnist_cnn.yaml", "  - name: mnist-renamed\n"
                                                         "    spec: specs/seed_mnist_cnn.yaml")
    result = run("gate")
    assert result.exit_code == 0
    assert ("mnist-renamed: macs: not in the baseline, so its regression tolerance +1% was "
            "not checked") in result.output
    assert statuses(run("gate", "--format", "json"))[("mnist-renamed", "macs")] == "new"
    strict = run("gate", "--strict", "--format", "json")
    assert strict.exit_code == 1
    assert statuses(strict)[("mnist-renamed", "macs")] == "fail"


def test_unknown_vars_and_variant_reported_at_budget_lines(repo):
    (repo / "b.yaml").write_text("models:\n  - spec: specs/seed_mnist_cnn.yaml\n"
                                 "    vars: {clases: 3}\n    variant: big\n"
                                 "    budgets: {params: 5e6}\n")
    result = run("gate", "--budget", "b.yaml")
    assert result.exit_code == 2
    assert ("error: b.yaml:3: models[0] (seed_mnist_cnn).vars: unknown variable 'clases' of "
            "specs/seed_mnist_cnn.yaml; did you mean 'classes'? (vars: classes)") in result.output
    assert ("error: b.yaml:4: models[0] (seed_mnist_cnn).variant: unknown variant 'big' of "
            "specs/seed_mnist_cnn.yaml (variants: none defined)") in result.output
    assert "--set" not in result.output


def test_level_off_is_skipped(repo):
    save()
    edit(repo / "cnncost.budget.yaml", "macs: 12M", "macs: {max: 1, level: off}")
    edit(repo / "cnncost.budget.yaml", "macs: 1%", "macs: {relative: 1%, level: off}")
    data = statuses(run("gate", "--format", "json"))
    assert data[("seed_mnist_cnn", "macs")] == "skipped"


def test_settings_change_is_gated_and_noted(repo):
    save()
    edit(repo / "cnncost.budget.yaml", "  - spec: specs/seed_mnist_cnn.yaml",
         "  - spec: specs/seed_mnist_cnn.yaml\n    batch: 2")
    result = run("gate")
    assert result.exit_code == 1
    assert "settings changed since the baseline: batch 1 -> 2" in result.output


def test_github_annotations_and_job_summary(repo, monkeypatch):
    save()
    edit(repo / "specs" / SPEC, "name: conv2, out: 64", "name: conv2, out: 72")
    summary = repo / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = run("gate", "--format", "markdown", "-o", "report.md")
    assert result.exit_code == 1
    line = line_of(repo / "cnncost.budget.yaml", "macs: 12M")
    assert (f"::error file=cnncost.budget.yaml,line={line},title=cnncost gate::seed_mnist_cnn: "
            "macs is ") in result.output
    assert "more than the allowed +1%25" in result.output  # % escaped for workflow commands
    assert summary.read_text().startswith("### :x: cnncost gate failed")
    monkeypatch.delenv("GITHUB_ACTIONS")
    assert (repo / "report.md").read_text() == run("gate", "--format", "markdown").output
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    # bad input: annotations at the spec's own line
    edit(repo / "specs" / SPEC, "kernel: 3", "kernal: 3")
    bad = run("gate")
    assert bad.exit_code == 2
    assert f"::error file=specs/seed_mnist_cnn.yaml,line={line_of(repo / 'specs' / SPEC, 'kernal')}" \
           in bad.output


def test_gitlab_code_quality_report(repo):
    """--format codequality: GitLab's Code Quality JSON, one issue per violated check at
    its budget file line, with a stable fingerprint; an empty list when the gate passes."""
    save()
    assert json.loads(run("gate", "--format", "codequality").output) == []
    edit(repo / "specs" / SPEC, "name: conv2, out: 64", "name: conv2, out: 72")
    result = run("gate", "--format", "codequality")
    assert result.exit_code == 1
    issues = json.loads(result.output)
    line = line_of(repo / "cnncost.budget.yaml", "macs: 12M")
    macs = [i for i in issues if i["check_name"] == "cnncost-gate-macs"]
    assert macs and macs[0]["severity"] == "major"
    assert macs[0]["location"] == {"path": "cnncost.budget.yaml", "lines": {"begin": line}}
    assert macs[0]["description"].startswith("seed_mnist_cnn: macs is ")
    assert len({i["fingerprint"] for i in issues}) == len(issues)
    assert json.loads(run("gate", "--format", "codequality").output) == issues  # stable


def test_docs_workflow_gate_step_runs_on_a_sample_repository(git_repo, monkeypatch):
    """Run the documented workflow's gate step with bash, as GitHub would, on a git
    repository with an origin/main (`cnncost` is this interpreter's module)."""
    workflow = yaml.safe_load(doc_block("yaml", "name: cnncost gate"))
    steps = workflow["jobs"]["gate"]["steps"]
    assert steps[0]["uses"].startswith("actions/checkout@")
    assert steps[0]["with"]["fetch-depth"] == 0  # --against needs the base branch's history
    [gate_step] = [s for s in steps if "cnncost gate" in s.get("run", "")]
    script = gate_step["run"]
    assert "--against" in script and "--format markdown" in script
    subprocess.run(["git", "update-ref", "refs/remotes/origin/main", "HEAD"], check=True)
    summary = git_repo / "summary.md"
    env = {**os.environ, "GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary),
           "GITHUB_BASE_REF": "main", "GITHUB_EVENT_NAME": "pull_request"}
    shim = f'cnncost() {{ {shlex.quote(sys.executable)} -m cnncost "$@"; }}\n'

    def step():
        return subprocess.run(["bash", "-e", "-c", shim + script], capture_output=True,
                              text=True, env=env, timeout=300, check=False)

    out = step()
    assert out.returncode == 0, out.stdout + out.stderr
    report = (git_repo / "cnncost-gate.md").read_text()
    assert report.startswith("### :white_check_mark: cnncost gate passed")
    base = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert f"baseline git {base[:12]}_" in report
    # the pull request: a commit on a branch, main unchanged
    subprocess.run(["git", "checkout", "-qb", "wider"], check=True)
    edit(git_repo / "specs" / SPEC, "name: conv2, out: 64", "name: conv2, out: 72")
    subprocess.run(["git", "commit", "-qam", "wider conv2"], check=True)
    out = step()
    assert out.returncode == 1 and "::error file=cnncost.budget.yaml" in out.stdout + out.stderr
    assert (git_repo / "cnncost-gate.md").read_text().startswith("### :x: cnncost gate failed")
    assert summary.read_text().count("cnncost gate") == 2
    comment = [s for s in steps if "gh pr comment" in s.get("run", "")]
    assert comment and "cnncost-gate.md" in comment[0]["run"] and "always()" in comment[0]["if"]


def test_docs_precommit_hook_runs(git_repo):
    config = yaml.safe_load(doc_block("yaml", "repos:"))
    hook = config["repos"][0]["hooks"][0]
    assert hook["language"] == "system" and hook["pass_filenames"] is False
    assert re.search(hook["files"], "specs/seed_mnist_cnn.yaml")
    assert re.search(hook["files"], "cnncost.baseline.json")
    args = shlex.split(hook["entry"])[1:]
    assert "--against" in args
    assert run(*args).exit_code == 0
    edit(git_repo / "specs" / SPEC, "name: conv2, out: 64", "name: conv2, out: 72")
    assert run(*args).exit_code == 1


def test_docs_metric_table_matches_registry():
    rows = re.findall(r"^\| `(\w+)` \| (.*?) \| (\S+) \| (lower|higher) \|$", CI_DOC, re.M)
    assert [r[0] for r in rows] == list(metrics.METRICS)
    for name, label, _unit, better in rows:
        assert metrics.METRICS[name].label == label and metrics.METRICS[name].better == better


def test_example_budget_in_docs_gates_the_bundled_specs(monkeypatch):
    """docs/examples gates three bundled specs against its committed baseline."""
    monkeypatch.chdir(ROOT)
    result = run("gate", "--budget", "docs/examples/cnncost.budget.yaml", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["counts"]["pass"] == len(data["rows"]) >= 10


# ---------------------------------------------------------------- baseline command
def test_save_refuses_to_overwrite_and_update_refreshes(repo):
    save()
    result = run("baseline", "save")
    assert result.exit_code == 2 and "baseline exists; use `cnncost baseline update`" in result.output
    edit(repo / "specs" / SPEC, "name: conv2, out: 64", "name: conv2, out: 72")
    assert run("gate").exit_code == 1
    assert run("baseline", "update").exit_code == 0
    assert run("gate").exit_code == 1  # still over the absolute budgets
    data = statuses(run("gate", "--format", "json"))
    assert data[("seed_mnist_cnn", "peak_activation")] in ("pass", "warn")
    stored = json.loads((repo / "cnncost.baseline.json").read_text())
    assert stored["models"]["seed_mnist_cnn"]["metrics"]["macs"] == \
        cnncost.analyze(repo / "specs" / SPEC).totals.macs
    assert run("baseline", "save", "--force").exit_code == 0


def test_update_one_model_keeps_the_others(repo):
    budget = repo / "cnncost.budget.yaml"
    budget.write_text(budget.read_text() + "  - spec: lenet5\n")
    save()
    before = json.loads((repo / "cnncost.baseline.json").read_text())["models"]
    edit(repo / "specs" / SPEC, "name: conv2, out: 64", "name: conv2, out: 72")
    shutil.copy(ROOT / "specs" / "lenet5.yaml", repo / "specs" / "lenet5.yaml")
    edit(budget, "spec: lenet5", "spec: specs/lenet5.yaml")
    assert run("baseline", "update", "--model", "lenet5").exit_code == 0
    after = json.loads((repo / "cnncost.baseline.json").read_text())["models"]
    assert after["seed_mnist_cnn"] == before["seed_mnist_cnn"]
    assert after["lenet5"]["spec"] == "specs/lenet5.yaml"
    bad = run("baseline", "update", "--model", "lenet")
    assert bad.exit_code == 2 and "did you mean 'lenet5'?" in bad.output
    missing = run("baseline", "update", "--baseline", "other.json")
    assert missing.exit_code == 2 and "cnncost baseline save" in missing.output


def test_baseline_write_is_atomic(repo, monkeypatch):
    save()
    path = repo / "cnncost.baseline.json"
    before = path.read_text()
    edit(repo / "specs" / SPEC, "name: conv2, out: 64", "name: conv2, out: 72")

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    result = run("baseline", "update")
    assert result.exit_code == 2 and "No space left on device" in result.output
    assert path.read_text() == before
    assert sorted(p.name for p in repo.iterdir() if p.name.startswith(".")) == []


# ---------------------------------------------------------------- measured metrics
Latency = namedtuple("Latency", "median_ms p10_ms p90_ms iqr_ms samples images_per_s env")
ENV = {"device": "Fake GPU", "torch": "2.13.0", "dtype": "fp32", "batch": 1, "threads": 4}


class FakeMeasurer:
    def __init__(self, median_ms: float, env: dict = ENV):
        self.median_ms, self.env, self.calls = median_ms, env, []

    def __call__(self, spec, **kwargs):
        self.calls.append((spec, kwargs))
        return Latency(self.median_ms, self.median_ms * 0.9, self.median_ms * 1.1, 0.1, 50,
                       1000 / self.median_ms, dict(self.env))


MEASURED_BUDGET = """\
models:
  - spec: specs/seed_mnist_cnn.yaml
    budgets: {params: 1.2M, latency_ms: 8}
    regression:
      latency_ms: 10%
      throughput: 10%
"""


def test_measured_metrics_compare_when_fingerprint_matches(repo, monkeypatch):
    (repo / "cnncost.budget.yaml").write_text(MEASURED_BUDGET)
    fake = FakeMeasurer(2.0)
    monkeypatch.setattr(metrics, "MEASURER", fake)
    save()
    stored = json.loads((repo / "cnncost.baseline.json").read_text())["models"]["seed_mnist_cnn"]
    assert stored["env"] == ENV and stored["metrics"]["latency_ms"] == 2.0
    assert stored["metrics"]["throughput"] == 500.0
    spec, options = fake.calls[0]
    assert spec == "specs/seed_mnist_cnn.yaml"
    assert options == {"input": None, "batch": 1, "dtype": "fp32", "set": None, "variant": None,
                       "runs": 50, "warmup": 10, "device": "auto"}
    monkeypatch.setattr(metrics, "MEASURER", FakeMeasurer(2.5))  # 25% slower: warn by default
    result = run("gate", "--format", "json")
    assert result.exit_code == 0
    rows = statuses(result)
    assert rows[("seed_mnist_cnn", "latency_ms")] == "warn"
    assert rows[("seed_mnist_cnn", "throughput")] == "warn"  # 400/s is 20% below 500/s
    assert rows[("seed_mnist_cnn", "params")] == "pass"
    assert run("gate", "--strict").exit_code == 1
    monkeypatch.setattr(metrics, "MEASURER", FakeMeasurer(9.0))  # over the 8 ms budget too
    text = run("gate").output
    assert "latency_ms is 9.00, over the budget <= 8" in text
    monkeypatch.setattr(metrics, "MEASURER", FakeMeasurer(1.5))
    assert statuses(run("gate", "--format", "json"))[("seed_mnist_cnn", "latency_ms")] == \
        "improved"


def test_measured_metrics_skipped_on_other_environment(repo, monkeypatch):
    (repo / "cnncost.budget.yaml").write_text(MEASURED_BUDGET)
    monkeypatch.setattr(metrics, "MEASURER", FakeMeasurer(2.0))
    save()
    other = FakeMeasurer(5.0, {**ENV, "device": "Other GPU"})
    monkeypatch.setattr(metrics, "MEASURER", other)
    result = run("gate", "--format", "json")
    data = json.loads(result.output)
    row = next(r for r in data["rows"] if r["metric"] == "throughput")
    assert row["status"] == "skipped"
    assert "device 'Fake GPU' -> 'Other GPU'" in row["note"]
    assert result.exit_code == 0


def test_no_measure_skips_without_calling_the_measurer(repo, monkeypatch):
    (repo / "cnncost.budget.yaml").write_text(MEASURED_BUDGET)
    monkeypatch.setattr(metrics, "MEASURER", FakeMeasurer(2.0))
    save()
    fake = FakeMeasurer(2.0)
    monkeypatch.setattr(metrics, "MEASURER", fake)
    result = run("gate", "--no-measure", "--format", "json")
    assert result.exit_code == 0 and fake.calls == []
    assert statuses(result)[("seed_mnist_cnn", "latency_ms")] == "skipped"
    # update without measuring keeps the stored measurements and their environment
    assert run("baseline", "update", "--no-measure").exit_code == 0
    stored = json.loads((repo / "cnncost.baseline.json").read_text())["models"]["seed_mnist_cnn"]
    assert stored["metrics"]["latency_ms"] == 2.0 and stored["env"] == ENV


def test_missing_measure_module_is_exit_2(repo, monkeypatch):
    (repo / "cnncost.budget.yaml").write_text(MEASURED_BUDGET)
    monkeypatch.setattr(metrics, "MEASURER", None)
    monkeypatch.setitem(sys.modules, "cnncost.pytorch.measure", None)  # import fails as if missing
    result = run("gate")
    assert result.exit_code == 2
    assert "measured metrics (latency_ms, throughput) need PyTorch" in result.output
    assert "pip install 'cnncost[torch]'" in result.output and "--no-measure" in result.output


def test_gate_without_measured_metrics_does_not_import_torch(repo):
    code = ("import sys\nfrom cnncost.cli import main\n"
            "for args in (['baseline', 'save'], ['gate', '--format', 'json']):\n"
            "    try:\n        main(args)\n    except SystemExit as exc:\n"
            "        code = exc.code\n"
            "print('EXIT', code, sorted(m for m in ('torch', 'pandas') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=repo)
    assert out.stdout.strip().endswith("EXIT 0 []"), out.stdout + out.stderr


@pytest.mark.parametrize("args", [["gate"], ["baseline"], ["baseline", "save"],
                                  ["baseline", "update"]])
def test_commands_have_help(args):
    result = run(*args, "--help")
    assert result.exit_code == 0 and "Usage:" in result.output
    assert "gate" in run("--help").output and "baseline" in run("--help").output


def test_unusable_measuring_device_is_exit_2(repo, monkeypatch):
    (repo / "cnncost.budget.yaml").write_text(MEASURED_BUDGET)

    def no_gpu(spec, **kwargs):
        raise ValueError("no CUDA device is available (use --device cpu)")

    monkeypatch.setattr(metrics, "MEASURER", no_gpu)
    result = run("baseline", "save")
    assert result.exit_code == 2
    assert "cannot measure latency: no CUDA device is available" in result.output
    assert "cnncost.budget.yaml:2: model seed_mnist_cnn: cannot be gated " \
           "(specs/seed_mnist_cnn.yaml): see the error above" in result.output
