"""mypy holds: default checks on the whole package, --strict's flags on lang/ and cost/.

The settings live in pyproject.toml ([tool.mypy]); this runs them. Skipped where mypy
is not installed (it is in the `test` extra) or torch is not (CI installs both).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_is_clean():
    pytest.importorskip("mypy")
    # cnncost/pytorch/ is checked against torch's own annotations; without torch (the
    # README's test command on a machine without it) mypy would only see missing imports
    pytest.importorskip("torch")
    result = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


def test_lang_and_cost_are_strict():
    """The strict flags stay on for the language and the engine (a pyproject edit that drops
    them would otherwise pass unnoticed)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    strict = [o for o in config["overrides"] if "cnncost.lang.*" in o["module"]]
    assert strict and "cnncost.cost.*" in strict[0]["module"]
    for flag in ("disallow_untyped_defs", "disallow_any_generics", "warn_return_any",
                 "disallow_untyped_calls", "check_untyped_defs"):
        assert strict[0].get(flag) is True, flag
