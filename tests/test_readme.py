"""README promises: the two set-up commands, .ci/run calling the test command verbatim,
and the bundled-spec table agreeing with the engine."""

from __future__ import annotations

import re
from pathlib import Path

import cnncost
from cnncost.formats.common import binary

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def setup_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", README, re.S)
    assert block, "README must start with a bash block of set-up commands"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_starts_with_two_setup_commands():
    first_block = README.index("```bash")
    assert first_block < README.index("\n## ")  # before any section
    install, test = setup_commands()
    assert "pip install" in install and "cnncost analyze specs/" in install
    assert "pip install" in test and "pytest" in test


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert setup_commands()[1] in ci


def test_bundled_spec_table_matches_engine():
    rows = re.findall(r"^\| `(\w+)` \| (\S+) \| ([\d,]+) \| ([\d,]+) \| ([\d.]+ \w+) \| (.*) \|$",
                      README, re.M)
    assert {r[0] for r in rows} == set(cnncost.bundled_specs())
    for name, shape, params, macs, peak, description in rows:
        result = cnncost.analyze(name)
        assert shape == "x".join(map(str, result.input_shape)), name
        assert int(params.replace(",", "")) == result.totals.params, name
        assert int(macs.replace(",", "")) == result.totals.macs, name
        assert binary(result.totals.peak_activation_bytes) == peak, name
        assert description == result.description, name


def test_readme_example_output_is_real():
    from click.testing import CliRunner

    from cnncost.cli import main

    block = re.search(r"```\n\$ cnncost analyze resnet50 --depth 1\n(.*?)```", README, re.S)
    assert block, "README shows `cnncost analyze resnet50 --depth 1` and its output"
    result = CliRunner().invoke(main, ["analyze", "resnet50", "--depth", "1"])
    assert result.output.rstrip() == block.group(1).rstrip()


def test_readme_verify_output_is_real():
    import pytest

    pytest.importorskip("torch")
    from click.testing import CliRunner

    from cnncost.cli import main

    command = "cnncost verify resnet50 --device meta --only-mismatches"
    block = re.search(rf"```\n\$ {command}\n(.*?)```", README, re.S)
    assert block, f"README shows `{command}` and its output"
    result = CliRunner().invoke(main, command.split()[1:])
    assert result.exit_code == 0

    def same_torch(text: str) -> str:  # the header names the installed torch version
        return re.sub(r"torch \S+ on", "torch VERSION on", text).rstrip()

    assert same_torch(result.output) == same_torch(block.group(1))
