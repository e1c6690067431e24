"""Every `--format` choice of every command comes from the one registry
(cnncost.formats.OUTPUTS) and renders: each registered renderer resolves, and each
command run with each of its choices exits 0 with output.

A format added to OUTPUTS is offered by its command and exercised here without a new
test; a format offered by a command but missing from the registry fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from cnncost.cli import main
from cnncost.formats import OUTPUTS, formats, renderer

ROOT = Path(__file__).resolve().parent.parent

# command path -> the output kind its --format renders
COMMANDS = {
    ("analyze",): "analysis",
    ("compare",): "comparison",
    ("diff",): "difference",
    ("bench",): "bench",
    ("verify",): "verification",
    ("gate",): "gate",
    ("peaks",): "peaks",
}


def command(path: tuple[str, ...]) -> click.Command:
    ctx = click.Context(main)
    found: click.Command = main
    for name in path:
        assert isinstance(found, click.Group)
        cmd = found.get_command(ctx, name)
        assert cmd is not None, name
        found = cmd
    return found


def format_choices(cmd: click.Command) -> tuple[str, ...]:
    (option,) = [p for p in cmd.params if "--format" in getattr(p, "opts", ())]
    assert isinstance(option.type, click.Choice)
    return tuple(option.type.choices)


@pytest.mark.parametrize("kind,fmt", [(k, f) for k, fs in OUTPUTS.items() for f in fs])
def test_every_registered_renderer_resolves(kind, fmt):
    assert callable(renderer(kind, fmt))


def test_every_command_with_a_format_is_covered():
    """Each command with a --format option renders a registered kind, and each kind is
    some command's."""
    def walk(group: click.Group, prefix: tuple[str, ...]):
        ctx = click.Context(group)
        for name in group.list_commands(ctx):
            cmd = group.get_command(ctx, name)
            if isinstance(cmd, click.Group):
                yield from walk(cmd, prefix + (name,))
            elif any("--format" in getattr(p, "opts", ()) for p in cmd.params):
                yield prefix + (name,)

    assert set(walk(main, ())) == set(COMMANDS)
    assert set(COMMANDS.values()) | {"datasheet"} == set(OUTPUTS)
    assert formats("datasheet") == formats("peaks")  # peaks --list shares --format


@pytest.mark.parametrize("path", list(COMMANDS), ids=" ".join)
def test_command_choices_are_the_registry(path):
    assert format_choices(command(path)) == formats(COMMANDS[path])


def invoke(*args: str):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip()
    return result


@pytest.mark.parametrize("fmt", formats("analysis"))
def test_analyze_renders(fmt):
    invoke("analyze", "lenet5", "--format", fmt)


@pytest.mark.parametrize("fmt", formats("comparison"))
def test_compare_renders(fmt):
    invoke("compare", "lenet5", "alexnet", "--format", fmt)


@pytest.mark.parametrize("fmt", formats("difference"))
def test_diff_renders(fmt):
    invoke("diff", "resnet18", "resnet34", "--depth", "1", "--format", fmt)


@pytest.mark.parametrize("fmt", formats("gate"))
def test_gate_renders(fmt, tmp_path, monkeypatch):
    from test_gate import sample_repo

    sample_repo(tmp_path, monkeypatch)
    invoke("baseline", "save")
    out = invoke("gate", "--format", fmt).stdout
    if fmt == "json":
        json.loads(out)


@pytest.mark.parametrize("fmt", formats("peaks"))
def test_peaks_list_renders(fmt):
    out = invoke("peaks", "--list", "--format", fmt).stdout
    if fmt == "json":
        json.loads(out)


@pytest.mark.torch
@pytest.mark.parametrize("fmt", formats("verification"))
def test_verify_renders(fmt):
    pytest.importorskip("torch")
    out = invoke("verify", "lenet5", "--device", "cpu", "--format", fmt).stdout
    if fmt == "json":
        json.loads(out)


@pytest.mark.torch
@pytest.mark.parametrize("fmt", formats("bench"))
def test_bench_renders(fmt, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setenv("CNNCOST_CACHE", str(tmp_path / "cache"))
    out = invoke("bench", "lenet5", "--device", "cpu", "--threads", "1", "--runs", "2",
                 "--warmup", "0", "--warmup-s", "0", "--time-budget", "0.5", "--peaks", "table",
                 "--per-layer", "--no-progress", "--format", fmt).stdout
    if fmt == "json":
        json.loads(out)


def test_torch_side_choices_match_what_the_torch_code_accepts():
    torch = pytest.importorskip("torch")
    from cnncost.pytorch import choices
    from cnncost.pytorch.measure import TORCH_DTYPES

    assert set(TORCH_DTYPES) == set(choices.DTYPES)
    assert set(choices.VERIFY_DTYPES) <= set(choices.DTYPES)
    assert torch.device("meta").type in choices.VERIFY_DEVICES


def test_analysis_choices_come_from_their_registries():
    from cnncost.cli import CONVENTIONS, DTYPES
    from cnncost.cost.analysis import DTYPE_BYTES
    from cnncost.cost.conventions import PROFILES

    assert tuple(PROFILES) == CONVENTIONS and tuple(DTYPE_BYTES) == DTYPES
