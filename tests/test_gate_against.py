"""`cnncost gate --against REF`: the baseline recomputed from the budget file and the specs
as they are at a git ref, on scratch git repositories.

Each test commits a small repository (a spec whose last layer widened by one output adds
exactly 513 parameters, and a budget file), changes the working tree and gates against
HEAD. Expected numbers come from `cnncost.analyze`, never from constants.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import cnncost
from cnncost.gate import metrics
from cnncost.cli import main

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

SPEC = """\
name: net
input: [1, 28, 28]
layers:
  - {op: flatten, name: flatten}
  - {op: linear, name: fc1, out: 512}
  - {op: linear, name: fc2, out: 10}
"""
WIDE = SPEC.replace("name: fc2, out: 10", "name: fc2, out: 11")  # +513 parameters
BUDGET = """\
defaults:
  regression: {params: 0%, macs: 0%}
models:
  - name: net
    spec: specs/net.yaml
    budgets: {params: 1M}
"""


def git(*args: str, cwd: Path | None = None) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True,
                         timeout=60)
    return out.stdout.strip()


def commit(message: str = "change", cwd: Path | None = None) -> str:
    git("add", "-A", cwd=cwd)
    git("commit", "-q", "--allow-empty", "-m", message, cwd=cwd)
    return git("rev-parse", "HEAD", cwd=cwd)


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """An initialised, empty git repository as the current folder; git configured by the
    environment only (no user or system configuration)."""
    root = tmp_path / "repo"
    (root / "specs").mkdir(parents=True)
    monkeypatch.chdir(root)
    for key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GITHUB_ACTIONS",
                "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(key, raising=False)
    for key, value in {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                       "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
                       "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}.items():
        monkeypatch.setenv(key, value)
    git("init", "-q")
    return root


@pytest.fixture
def committed(repo):
    """The repository with the spec and the budget file committed."""
    (repo / "specs" / "net.yaml").write_text(SPEC)
    (repo / "cnncost.budget.yaml").write_text(BUDGET)
    commit("gate net")
    return repo


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def rows(result) -> dict:
    return {(r["model"], r["metric"]): r for r in json.loads(result.output)["rows"]}


def params(text: str) -> int:
    return cnncost.analyze(yaml_mapping(text)).totals.params


def yaml_mapping(text: str) -> dict:
    import yaml

    return yaml.safe_load(text)


def one_line_errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error: ")]


# ------------------------------------------------------------------ the regression
def test_against_head_passes_unchanged_and_catches_513_parameters(committed):
    head = git("rev-parse", "HEAD")
    result = run("gate", "--against", "HEAD")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"cnncost gate | budget cnncost.budget.yaml, baseline git "
                                    f"HEAD ({head[:7]})\n")
    assert result.output.rstrip().endswith("gate passed: 2 pass")
    (committed / "specs" / "net.yaml").write_text(WIDE)
    before, after = params(SPEC), params(WIDE)
    assert after - before == 513
    result = run("gate", "--against", "HEAD")
    assert result.exit_code == 1, result.output
    assert (f"error: cnncost.budget.yaml:2: net: params grew from {before:,} to {after:,} "
            "(+513, ") in result.output
    assert "note: net: spec specs/net.yaml changed since HEAD" in result.output
    data = json.loads(run("gate", "--against", "HEAD", "--format", "json").output)
    assert data["baseline_ref"] == "HEAD" and data["baseline_commit"] == head
    assert data["baseline_file"] is None and data["exit_code"] == 1
    net = {r["metric"]: r for r in data["rows"]}
    assert net["params"]["baseline"] == before and net["params"]["current"] == after
    assert net["params"]["status"] == "fail"
    markdown = run("gate", "--against", "HEAD", "--format", "markdown").output
    assert f"_budget cnncost.budget.yaml, baseline git HEAD ({head[:7]})_" in markdown


def test_against_a_commit_id_and_a_branch(committed):
    head = commit("second")  # nothing changed
    (committed / "specs" / "net.yaml").write_text(WIDE)
    commit("wider")
    git("branch", "base", head)
    for ref in (head, head[:10], "base", "HEAD~1", "HEAD^"):
        result = run("gate", "--against", ref)
        assert result.exit_code == 1, (ref, result.output)
    assert f"baseline git {head[:12]}\n" in run("gate", "--against", head).output
    assert "baseline git base (" in run("gate", "--against", "base").output
    assert run("gate", "--against", "HEAD").exit_code == 0


def test_a_tampered_stored_baseline_does_not_matter(committed):
    """What a stored baseline cannot prevent: numbers inflated x1000 make the regression
    pass against the file; --against has no stored number to inflate."""
    assert run("baseline", "save").exit_code == 0
    path = committed / "cnncost.baseline.json"
    data = json.loads(path.read_text())
    stored = data["models"]["net"]["metrics"]
    for metric in ("params", "macs"):
        stored[metric] *= 1000
    path.write_text(json.dumps(data))
    (committed / "specs" / "net.yaml").write_text(WIDE)
    assert run("gate").exit_code == 0  # the stored file is believed
    result = run("gate", "--against", "HEAD")
    assert result.exit_code == 1 and "(+513, " in result.output


def test_settings_and_spec_changes_are_compared_with_ref(committed):
    budget = committed / "cnncost.budget.yaml"
    budget.write_text(BUDGET.replace("    budgets:", "    batch: 2\n    budgets:"))
    result = run("gate", "--against", "HEAD")
    assert result.exit_code == 1  # twice the MACs at batch 2
    assert "note: net: settings changed since HEAD: batch 1 -> 2" in result.output
    # the model now gated with another spec: compared with the spec it had at HEAD
    (committed / "specs" / "big.yaml").write_text(WIDE)
    budget.write_text(BUDGET.replace("specs/net.yaml", "specs/big.yaml"))
    result = run("gate", "--against", "HEAD")
    assert result.exit_code == 1 and "(+513, " in result.output
    assert "note: net: spec is specs/big.yaml, was specs/net.yaml at HEAD" in result.output


# ------------------------------------------------------------------ what REF lacks
def test_model_added_after_ref_is_new(committed):
    budget = committed / "cnncost.budget.yaml"
    (committed / "specs" / "other.yaml").write_text(WIDE.replace("name: net", "name: other"))
    budget.write_text(BUDGET + "  - spec: specs/other.yaml\n    budgets: {params: 500k}\n")
    result = run("gate", "--against", "HEAD", "--format", "json")
    assert result.exit_code == 0, result.output
    got = rows(result)
    assert got[("other", "params")]["status"] == "new"
    assert got[("other", "params")]["note"] == "no baseline at HEAD: not in the budget file at HEAD"
    assert got[("other", "params")]["findings"] == []
    assert got[("net", "params")]["status"] == "pass"
    text = run("gate", "--against", "HEAD").output
    assert ("note: other: new, no baseline at HEAD (not in the budget file at HEAD): its "
            "regression checks are skipped, its budgets still apply") in text
    assert run("gate", "--against", "HEAD", "--strict").exit_code == 0  # nothing to warn
    # its absolute budget still applies
    budget.write_text(BUDGET + "  - spec: specs/other.yaml\n    budgets: {params: 100k}\n")
    result = run("gate", "--against", "HEAD")
    assert result.exit_code == 1 and "other: params is" in result.output


def test_renamed_model_warns_and_strict_fails(committed):
    budget = committed / "cnncost.budget.yaml"
    budget.write_text(BUDGET.replace("name: net", "name: net2"))
    (committed / "specs" / "net.yaml").write_text(WIDE)
    result = run("gate", "--against", "HEAD", "--format", "json")
    assert result.exit_code == 0
    got = rows(result)
    assert got[("net2", "params")]["status"] == "new"
    assert got[("net", "-")]["status"] == "removed"
    assert "while net left it: renamed?" in got[("net2", "params")]["findings"][0]["message"]
    assert run("gate", "--against", "HEAD", "--strict").exit_code == 1


def test_budget_file_not_at_ref_makes_every_model_new(repo):
    (repo / "specs" / "net.yaml").write_text(SPEC)
    commit("spec only")
    (repo / "cnncost.budget.yaml").write_text(BUDGET)
    result = run("gate", "--against", "HEAD")
    assert result.exit_code == 0, result.output
    assert ("note: the budget file cnncost.budget.yaml is not in HEAD (" in result.output
            and "every model is new" in result.output)
    assert result.output.rstrip().endswith("gate passed: 2 new")
    assert run("gate", "--against", "HEAD", "--strict").exit_code == 0
    (repo / "cnncost.budget.yaml").write_text(BUDGET.replace("params: 1M", "params: 100k"))
    assert run("gate", "--against", "HEAD").exit_code == 1  # budgets still apply


def test_spec_not_at_ref_is_new_and_warns(repo):
    (repo / "cnncost.budget.yaml").write_text(BUDGET)
    commit("budget without its spec")
    (repo / "specs" / "net.yaml").write_text(SPEC)
    result = run("gate", "--against", "HEAD", "--format", "json")
    assert result.exit_code == 0
    got = rows(result)[("net", "params")]
    assert got["status"] == "new"
    assert got["note"] == "no baseline at HEAD: its spec specs/net.yaml is not in HEAD"
    assert run("gate", "--against", "HEAD", "--strict").exit_code == 1


# ------------------------------------------------------------------ exit 2
@pytest.mark.parametrize(("ref", "message"), [
    ("nope", "error: --against nope: no such commit in the git repository"),
    ("HEAD~5", "error: --against HEAD~5: no such commit"),
    ("-x", "error: --against: '-x' is not a git ref (it starts with '-', like an option)"),
    ("--output=/tmp/x", "is not a git ref (it starts with '-'"),
    ("", "error: --against: expected a git commit, branch or tag"),
    ("HEAD\nHEAD", "holds a control character"),
])
def test_bad_ref_is_exit_2(committed, ref, message):
    result = run("gate", "--against", ref)
    assert result.exit_code == 2
    assert message in result.output
    assert len(one_line_errors(result.output)) == 1 and "Traceback" not in result.output


def test_spec_broken_at_ref_is_exit_2_located_at_ref(committed):
    (committed / "specs" / "net.yaml").write_text(SPEC.replace("out: 512", "out: 512, kernal: 3"))
    commit("broken")
    (committed / "specs" / "net.yaml").write_text(SPEC)  # fixed in the working tree
    result = run("gate", "--against", "HEAD")
    assert result.exit_code == 2
    assert "error: HEAD:specs/net.yaml:5: " in result.output and "kernal" in result.output
    assert ("error: cnncost.budget.yaml:4: model net: cannot compute its baseline at HEAD "
            "(HEAD:specs/net.yaml): see the error above") in result.output
    assert run("gate", "--against", "HEAD~1").exit_code == 0


def test_budget_broken_at_ref_is_exit_2_located_at_ref(committed):
    (committed / "cnncost.budget.yaml").write_text(BUDGET.replace("params: 1M", "parms: 1M"))
    commit("broken budget")
    (committed / "cnncost.budget.yaml").write_text(BUDGET)
    result = run("gate", "--against", "HEAD")
    assert result.exit_code == 2
    assert "error: HEAD:cnncost.budget.yaml:6: models[0] (net).budgets: unknown metric 'parms'" \
        in result.output


def test_oversized_spec_at_ref_is_refused_before_reading(committed):
    huge = SPEC + "# " + "x" * 2_000_000 + "\n"
    (committed / "specs" / "net.yaml").write_text(huge)
    commit("huge")
    (committed / "specs" / "net.yaml").write_text(SPEC)
    result = run("gate", "--against", "HEAD")
    assert result.exit_code == 2
    assert (f"error: HEAD:specs/net.yaml: is {len(huge.encode()):,} bytes in HEAD; specs are "
            "limited to 2,000,000 bytes") in result.output


def test_not_a_git_repository_is_exit_2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    monkeypatch.delenv("GIT_DIR", raising=False)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "net.yaml").write_text(SPEC)
    (tmp_path / "cnncost.budget.yaml").write_text(BUDGET)
    result = run("gate", "--against", "HEAD")
    assert result.exit_code == 2
    [line] = one_line_errors(result.output)
    assert line.startswith(f"error: --against HEAD: {tmp_path} is not in a git repository")
    assert "gate against a stored baseline" in line


def test_git_not_installed_is_exit_2(committed, monkeypatch):
    monkeypatch.setenv("PATH", str(committed / "no-bin"))
    result = run("gate", "--against", "HEAD")
    assert result.exit_code == 2
    assert "error: --against HEAD: needs git, which is not installed" in result.output


# ------------------------------------------------------------------ where specs are
def test_budget_in_a_subfolder_gated_from_elsewhere(repo, monkeypatch):
    (repo / "ml").mkdir()
    (repo / "specs" / "net.yaml").write_text(SPEC)
    (repo / "ml" / "cnncost.budget.yaml").write_text(BUDGET.replace("specs/", "../specs/"))
    commit()
    (repo / "specs" / "net.yaml").write_text(WIDE)
    monkeypatch.chdir(repo.parent)
    result = run("gate", "--budget", "repo/ml/cnncost.budget.yaml", "--against", "HEAD")
    assert result.exit_code == 1 and "(+513, " in result.output
    monkeypatch.chdir(repo / "ml")
    assert run("gate", "--against", "HEAD").exit_code == 1


def test_symbolic_link_to_a_spec_is_followed_at_ref(repo):
    (repo / "specs" / "net.yaml").write_text(SPEC)
    (repo / "specs" / "current.yaml").symlink_to("net.yaml")
    (repo / "cnncost.budget.yaml").write_text(BUDGET.replace("specs/net.yaml",
                                                             "specs/current.yaml"))
    commit()
    (repo / "specs" / "net.yaml").write_text(WIDE)
    result = run("gate", "--against", "HEAD")
    assert result.exit_code == 1 and "(+513, " in result.output


def test_bundled_and_outside_specs(repo, tmp_path):
    outside = tmp_path / "outside.yaml"
    outside.write_text(SPEC)
    (repo / "cnncost.budget.yaml").write_text(
        "defaults: {regression: {params: 0%}}\nmodels:\n  - spec: lenet5\n"
        f"  - name: far\n    spec: {outside}\n")
    commit()
    result = run("gate", "--against", "HEAD")
    assert result.exit_code == 0, result.output
    assert "lenet5" in result.output
    assert (f"note: far: spec {outside} is outside the git repository; its current file stands "
            "for HEAD") in result.output


# ------------------------------------------------------------------ measured metrics
class FakeMeasurer:
    ENV = {"device": "Fake GPU", "torch": "2.13.0", "dtype": "fp32", "batch": 1, "threads": 4}

    def __init__(self, median_ms: float):
        self.median_ms = median_ms

    def __call__(self, spec, **kwargs):
        from types import SimpleNamespace

        return SimpleNamespace(median_ms=self.median_ms, images_per_s=1000 / self.median_ms,
                               env=dict(self.ENV))


def test_measured_metrics_come_from_the_stored_baseline(committed, monkeypatch):
    budget = committed / "cnncost.budget.yaml"
    budget.write_text(BUDGET.replace("macs: 0%}", "macs: 0%, latency_ms: 10%}"))
    commit("latency")
    monkeypatch.setattr(metrics, "MEASURER", FakeMeasurer(2.0))
    # no stored baseline: the measured regression is skipped, with a note
    result = run("gate", "--against", "HEAD", "--format", "json")
    assert result.exit_code == 0
    latency = rows(result)[("net", "latency_ms")]
    assert latency["status"] == "skipped" and latency["current"] == 2.0
    assert "measured ones come from a stored baseline (--baseline FILE)" in latency["note"]
    # a stored baseline supplies them (and only them)
    assert run("baseline", "save").exit_code == 0
    monkeypatch.setattr(metrics, "MEASURER", FakeMeasurer(3.0))  # 50% slower: warn
    (committed / "specs" / "net.yaml").write_text(WIDE)
    result = run("gate", "--against", "HEAD", "--format", "json")
    data = json.loads(result.output)
    assert data["baseline_file"] == "cnncost.baseline.json" and data["baseline_ref"] == "HEAD"
    got = rows(result)
    assert got[("net", "latency_ms")]["status"] == "warn"
    assert got[("net", "latency_ms")]["baseline"] == 2.0
    assert got[("net", "params")]["status"] == "fail" and result.exit_code == 1
    text = run("gate", "--against", "HEAD").output
    assert ", measured metrics from cnncost.baseline.json" in text.splitlines()[0]


# ------------------------------------------------------------------ GitHub Actions
def test_github_annotations_of_a_spec_broken_at_ref_have_no_file(committed, monkeypatch):
    (committed / "specs" / "net.yaml").write_text(SPEC.replace("out: 512", "out: 512, kernal: 3"))
    commit("broken")
    (committed / "specs" / "net.yaml").write_text(SPEC)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    result = run("gate", "--against", "HEAD")
    assert result.exit_code == 2
    assert "::error title=cnncost::HEAD:specs/net.yaml:5: " in result.output
    assert "::error file=cnncost.budget.yaml,line=4,title=cnncost::model net" in result.output


def test_gate_against_does_not_import_torch(committed):
    code = ("import sys\nfrom cnncost.cli import main\n"
            "try:\n    main(['gate', '--against', 'HEAD', '--format', 'json'])\n"
            "except SystemExit as exc:\n    code = exc.code\n"
            "print('EXIT', code, sorted(m for m in ('torch', 'pandas') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=committed, timeout=120)
    assert out.stdout.strip().endswith("EXIT 0 []"), out.stdout + out.stderr


# `model:` entries (PyTorch code): imported at REF by another process, from REF's files.
NET = """\
from torch import nn

from blocks import stem  # a sibling module: must come from REF too


def build():
    return nn.Sequential(stem(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 16 * 16, 10))
"""
BLOCKS = """\
from torch import nn


def stem(width):
    return nn.Conv2d(3, width, 3, padding=1)
"""
MODEL_BUDGET = """\
defaults:
  regression: {params: 0%}
models:
  - name: net
    model: models/net.py:build
    input: 3x16x16
    budgets: {params: 1M}
"""


def model_params(width: int) -> int:
    return 3 * width * 9 + width + width * 16 * 16 * 10 + 10


@pytest.fixture
def model_repo(repo):
    pytest.importorskip("torch")
    (repo / "models").mkdir()
    (repo / "models" / "net.py").write_text(NET)
    (repo / "models" / "blocks.py").write_text(BLOCKS)
    (repo / "cnncost.budget.yaml").write_text(MODEL_BUDGET)
    commit("a model")
    return repo


def gate_process(*args: str) -> subprocess.CompletedProcess:
    """The gate in a process of its own, as CI runs it: modules imported by one run (the
    model's, its siblings') are not cached for the next."""
    return subprocess.run([sys.executable, "-m", "cnncost", "gate", *args], capture_output=True,
                          text=True, timeout=600, check=False)


def test_a_model_entry_is_imported_at_ref_with_its_sibling_modules(model_repo):
    unchanged = gate_process("--against", "HEAD", "--format", "json")
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr
    (row,) = json.loads(unchanged.stdout)["rows"]
    assert (row["baseline"], row["current"]) == (model_params(8), model_params(8))
    # a 1x1 conv added in the sibling module only: REF's blocks.py gives the baseline
    (model_repo / "models" / "blocks.py").write_text(
        "from torch import nn\n\n\ndef stem(width):\n    return nn.Sequential(nn.Conv2d(3, "
        "width, 3, padding=1), nn.Conv2d(width, width, 1))\n")
    grown = gate_process("--against", "HEAD", "--format", "json")
    assert grown.returncode == 1, grown.stdout + grown.stderr  # params grew past 0%
    (row,) = json.loads(grown.stdout)["rows"]
    assert (row["baseline"], row["current"]) == (model_params(8), model_params(8) + 8 * 8 + 8)


def test_a_model_whose_source_is_not_at_ref_is_new(model_repo):
    (model_repo / "models" / "other.py").write_text(NET)
    (model_repo / "cnncost.budget.yaml").write_text(
        MODEL_BUDGET + "  - name: other\n    model: models/other.py:build\n"
                       "    input: 3x16x16\n")
    commit("budget names other.py, which is not committed")
    (model_repo / "models" / "other.py").unlink()
    git("rm", "-q", "--cached", "models/other.py")
    commit("drop it from the index")
    (model_repo / "models" / "other.py").write_text(NET)
    result = run("gate", "--against", "HEAD")
    assert result.exit_code == 0, result.output
    assert "new" in result.output


def test_a_model_broken_at_ref_is_exit_2(model_repo):
    (model_repo / "models" / "net.py").write_text(NET.replace("def build", "raise ValueError"
                                                              "('broken')\n\n\ndef build"))
    commit("break it")
    (model_repo / "models" / "net.py").write_text(NET)
    result = run("gate", "--against", "HEAD")
    assert result.exit_code == 2
    assert "importing models/net.py:build at HEAD failed" in result.output
