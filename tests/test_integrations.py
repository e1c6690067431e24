"""Drop-in integrations: the pre-commit hooks run as pre-commit runs them, and the package
ships its type annotations (py.typed)."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cnncost.cli import main

ROOT = Path(__file__).resolve().parent.parent
HOOKS = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}


def run_hook(hook: dict, files: list[str]):
    """The hook's entry, with the staged file names appended unless pass_filenames is off
    (what pre-commit does for `language: python`, minus the environment it builds)."""
    argv = shlex.split(hook["entry"])
    assert argv[0] == "cnncost"
    args = argv[1:] + (files if hook.get("pass_filenames", True) else [])
    return CliRunner().invoke(main, args)


def test_the_manifest_is_complete():
    assert set(HOOKS) == {"cnncost-validate", "cnncost-gate"}
    for hook in HOOKS.values():
        assert {"id", "name", "entry", "language"} <= set(hook) and hook["language"] == "python"
    assert HOOKS["cnncost-gate"]["pass_filenames"] is False
    assert HOOKS["cnncost-validate"]["types"] == ["yaml"]


def test_validate_hook_passes_good_specs_and_fails_a_broken_one(tmp_path):
    good = [str(p) for p in sorted((ROOT / "specs").glob("*.yaml"))]
    assert run_hook(HOOKS["cnncost-validate"], good).exit_code == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [3, 32, 32]\nlayers:\n  - {op: convv, out: 8, kernel: 3}\n")
    result = run_hook(HOOKS["cnncost-validate"], [*good[:2], str(bad)])
    assert result.exit_code == 2 and f"{bad}:3:" in result.stderr
    assert "did you mean 'conv'" in result.stderr


def test_gate_hook_runs_on_the_budget_file(tmp_path, monkeypatch):
    from test_gate import sample_repo

    sample_repo(tmp_path, monkeypatch)
    assert CliRunner().invoke(main, ["baseline", "save"]).exit_code == 0
    assert run_hook(HOOKS["cnncost-gate"], ["ignored.yaml"]).exit_code == 0


def test_the_package_ships_py_typed():
    import cnncost

    assert (Path(cnncost.__file__).parent / "py.typed").is_file()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"py.typed"' in pyproject


@pytest.mark.skipif(shutil.which("pre-commit") is None, reason="pre-commit not installed")
def test_pre_commit_accepts_the_manifest():  # pragma: no cover - where pre-commit exists
    import subprocess

    done = subprocess.run(["pre-commit", "validate-manifest", ".pre-commit-hooks.yaml"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_an_analysis_prints_compactly_and_renders_as_html():
    import cnncost

    analysis = cnncost.analyze("resnet50")
    assert repr(analysis) == ("<Analysis resnet50: input 3x224x224, 25,557,032 params, "
                              "4,089,184,256 MACs, 174 layers, batch 1, fp32>")
    page = analysis._repr_html_()
    assert page.startswith("<div>") and "<td>25,557,032</td>" in page  # the params total
    assert "layer4.block3" in page and "<td>174</td>" in page
    hostile = cnncost.analyze({"name": "<script>x</script>", "input": [3, 8, 8],
                               "layers": ["relu"]})
    html_text = hostile._repr_html_()
    assert "<script>" not in html_text and "&lt;script&gt;" in html_text


def test_comparison_and_gate_results_print_compactly_and_render_as_html(tmp_path,
                                                                        monkeypatch):
    from cnncost.comparison.request import CompareRequest, execute
    from cnncost.gate.budget import load_budget
    from cnncost.gate.check import compare, evaluate_models

    comparison = execute(CompareRequest(specs=("resnet50", "mobilenet_v2"), grid=[],
                                        options={})).comparison
    assert repr(comparison) == "<Comparison resnet50, mobilenet_v2>"
    page = comparison._repr_html_()
    assert "<th>model</th>" in page and "<td>25,557,032</td>" in page
    assert "<td>mobilenet_v2</td>" in page

    monkeypatch.chdir(tmp_path)
    (tmp_path / "cnncost.budget.yaml").write_text(
        "models:\n  - spec: lenet5\n    name: \"<b>lenet</b>\"\n    budgets: {params: 1M}\n")
    budget = load_budget("cnncost.budget.yaml")
    result = compare(budget, None, evaluate_models(budget, measure=False))
    assert repr(result) == "<GateResult cnncost.budget.yaml: passed: 1 pass>"
    page = result._repr_html_()
    assert "passed: 1 pass" in page and "<td>61,706</td>" in page
    assert "<b>lenet</b>" not in page and "&lt;b&gt;lenet&lt;/b&gt;" in page


def complete(words: str, monkeypatch) -> list[str]:
    """What bash completion offers for the last word of `words` (click's protocol)."""
    parts = words.split(" ")
    monkeypatch.setenv("_CNNCOST_COMPLETE", "bash_complete")
    monkeypatch.setenv("COMP_WORDS", words)
    monkeypatch.setenv("COMP_CWORD", str(len(parts) - 1))
    result = CliRunner().invoke(main, [], prog_name="cnncost")
    return [line.split(",", 1)[1] for line in result.output.splitlines() if "," in line]


def test_shell_completion_offers_spec_names_and_their_variants(monkeypatch):
    assert {"resnet18", "resnet50"} <= set(complete("cnncost analyze resn", monkeypatch))
    assert "vgg16" in complete("cnncost compare resnet50 vgg1", monkeypatch)
    assert complete("cnncost analyze mobilenet_v2 --variant w0", monkeypatch) == [
        "w075", "w050", "w035"]
    assert complete("cnncost analyze nope.yaml --variant ", monkeypatch) == []


ACTION = yaml.safe_load((ROOT / "action.yml").read_text())


def action_step(step_id_or_name: str) -> dict:
    for step in ACTION["runs"]["steps"]:
        if step_id_or_name in (step.get("id"), step.get("name")):
            return step
    raise AssertionError(step_id_or_name)


def run_action_step(step: dict, inputs: dict, cwd: Path, env: dict):
    """Run a composite step's bash as GitHub does: `${{ inputs.x }}` filled in the step's
    env, GITHUB_OUTPUT and the like set by the caller."""
    import os
    import re
    import subprocess

    values = {k: str(v.get("default", "")) for k, v in ACTION["inputs"].items()} | inputs
    step_env = {k: re.sub(r"\$\{\{\s*inputs\.(\w+)\s*\}\}", lambda m: values[m.group(1)], v)
                for k, v in (step.get("env") or {}).items()}
    return subprocess.run(["bash", "-e", "-c", step["run"]], cwd=cwd, capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, **env, **step_env})


def test_the_action_declares_its_inputs_and_outputs():
    assert ACTION["runs"]["using"] == "composite"
    assert set(ACTION["inputs"]) == {"budget", "against", "strict", "report", "install"}
    assert set(ACTION["outputs"]) == {"report", "status"}
    assert all(step["shell"] == "bash" for step in ACTION["runs"]["steps"])


def test_the_actions_gate_step_runs_as_github_runs_it(tmp_path):
    """On a sample repository (specs, budget, baseline): the step passes, writes the
    report, the annotations and job summary, and its outputs; a widened layer fails it."""
    import subprocess

    from test_gate import QUICKSTART, SPEC

    repo = tmp_path / "repo"
    (repo / "specs").mkdir(parents=True)
    shutil.copy(ROOT / "specs" / SPEC, repo / "specs" / SPEC)
    (repo / "cnncost.budget.yaml").write_text(QUICKSTART)
    git = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
           "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}
    import os

    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "specs"]):
        subprocess.run(["git", *args], cwd=repo, check=True, env={**os.environ, **git},
                       capture_output=True, timeout=60)
    outputs, summary = tmp_path / "out.txt", tmp_path / "summary.md"
    env = {**git, "GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(outputs),
           "GITHUB_STEP_SUMMARY": str(summary)}
    gate = action_step("gate")
    done = run_action_step(gate, {"against": "HEAD"}, repo, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "report=cnncost-gate.md" in outputs.read_text() and "status=0" in outputs.read_text()
    assert (repo / "cnncost.gate.md").exists() is False and (repo / "cnncost-gate.md").exists()
    spec = repo / "specs" / SPEC
    spec.write_text(spec.read_text().replace("out: 128", "out: 256", 1))
    failed = run_action_step(gate, {"against": "HEAD", "strict": "true"}, repo, env)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "status=1" in outputs.read_text().splitlines()[-1]
    assert "::error" in failed.stdout
