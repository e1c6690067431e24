"""Documentation that is executable: every complete spec in docs/*.md and README.md
analyzes, the committed JSON Schema is the generated one and accepts every bundled
spec, and every CLI command has help."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import cnncost
from cnncost.cli import main
from cnncost.lang.schema import json_schema, render_schema

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def yaml_blocks():
    for path in DOCS:
        for i, block in enumerate(re.findall(r"```yaml\n(.*?)```", path.read_text(), re.S)):
            if re.search(r"^input:", block, re.M) and re.search(r"^layers:", block, re.M):
                yield pytest.param(block, id=f"{path.name}-{i}")


@pytest.mark.parametrize("text", list(yaml_blocks()))
def test_doc_examples_analyze(text, tmp_path):
    path = tmp_path / "example.yaml"
    path.write_text(text)
    result = cnncost.analyze(path)
    assert result.totals.layers > 0


def test_spec_doc_has_examples():
    assert len(list(yaml_blocks())) >= 6


def test_committed_schema_is_current():
    """Regenerate with: cnncost schema -o docs/cnncost.schema.json"""
    assert (ROOT / "docs" / "cnncost.schema.json").read_text() == render_schema()


def test_schema_accepts_bundled_specs_and_rejects_typos():
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json_schema())
    jsonschema.Draft202012Validator.check_schema(json_schema())
    for path in cnncost.bundled_specs().values():
        errors = list(validator.iter_errors(yaml.safe_load(path.read_text())))
        assert not errors, (path.name, errors[0].message)
    bad = {"input": [3, 8, 8], "layers": [{"op": "conv", "kernal": 3, "out": 4}]}
    assert not validator.is_valid(bad)
    assert not validator.is_valid({"input": [3, 8, 8], "layerz": []})


def test_every_command_has_help():
    import click

    runner = CliRunner()
    ctx = click.Context(main)
    names = main.list_commands(ctx)
    assert "verify" in names  # commands in their own modules are listed too
    for name in names:
        command = main.get_command(ctx, name)
        assert command is not None and command.help, name
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0, name
        assert "Usage:" in result.output


def test_schema_json_parses():
    assert json.loads(render_schema())["title"] == "cnncost architecture spec"


@pytest.mark.parametrize("text", list(yaml_blocks()))
def test_doc_examples_follow_the_schema(text):
    """Every construct the docs show (loops, lists, declared variables, the new ops,
    train_only, imports...) is accepted by the editor schema, so it never flags valid
    specs."""
    jsonschema = pytest.importorskip("jsonschema")
    errors = list(jsonschema.Draft202012Validator(json_schema()).iter_errors(
        yaml.safe_load(text)))
    assert not errors, errors[0].message


MISTAKES = {
    "misspelt op": {"input": [3, 8, 8], "layers": [{"op": "convv", "out": 8, "kernel": 3}]},
    "misspelt op (shorthand)": {"input": [3, 8, 8], "layers": ["relu", "rleu"]},
    "misspelt op, nested": {"input": [3, 8, 8], "layers": [
        {"op": "residual", "layers": [{"op": "cnov", "out": 3, "kernel": 3}]}]},
    "act: no (a YAML boolean)": {"input": [3, 8, 8], "layers": [
        {"op": "conv", "out": 8, "kernel": 3, "act": False}]},
    "unknown field": {"input": [3, 8, 8], "layers": [{"op": "conv", "out": 8, "kernal": 3}]},
    # not here: `act: rleu` or `out: wdith`, which may name a variable or be an expression
    # (only `cnncost validate` knows the variables; docs/spec.md says so)
    "unknown top-level key": {"input": [3, 8, 8], "layers": ["relu"], "layer": []},
    "a declared variable without a default": {"input": [3, 8, 8], "layers": ["relu"],
                                              "vars": {"w": {"min": 1}}},
    "a merge without inputs list": {"input": [3, 8, 8], "layers": [
        {"op": "add", "inputs": "a"}]},
}


@pytest.mark.parametrize("spec", MISTAKES.values(), ids=list(MISTAKES))
def test_schema_rejects_typical_mistakes(spec):
    jsonschema = pytest.importorskip("jsonschema")
    assert not jsonschema.Draft202012Validator(json_schema()).is_valid(spec)


def test_schema_still_accepts_a_specs_own_blocks():
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json_schema())
    assert validator.is_valid({"input": [3, 8, 8], "blocks": {"mine": {"layers": ["relu"]}},
                               "layers": [{"op": "mine"}, {"op": "basic", "out": 3}]})
    assert validator.is_valid({"input": [3, 8, 8], "imports": ["lib.yaml"],
                               "layers": [{"op": "from_the_library"}]})
