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
