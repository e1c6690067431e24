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
    from test_gate import QUICKSTART, SPEC

    (tmp_path / "specs").mkdir()
    shutil.copy(ROOT / "specs" / SPEC, tmp_path / "specs" / SPEC)
    (tmp_path / "cnncost.budget.yaml").write_text(QUICKSTART)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "no-git"))
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
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
