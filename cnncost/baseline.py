"""The baseline file: the metrics of every gated model at a known-good commit, as JSON.

``cnncost baseline save|update`` writes it; ``cnncost gate`` reads it and compares.
Writing is atomic (a temporary file in the same folder, then ``os.replace``), so a
crash or a full disk never leaves a half-written baseline. Reading validates the
whole document and fails closed: a missing, unparsable or malformed baseline is a
SpecError (exit 2), never an empty baseline. The format is documented in docs/ci.md.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

from .errors import Loc, Problem, SpecError
from .metrics import ANALYTIC, MEASURED, METRICS

SCHEMA = "cnncost.baseline"
SCHEMA_VERSION = 1
SETTINGS_KEYS = ("input", "batch", "dtype", "vars", "variant")


class Record(NamedTuple):
    """The stored state of one model."""

    spec: str  # as the budget file writes it
    spec_sha256: str | None  # None for a bundled spec name that no longer resolves
    settings: dict
    metrics: dict  # metric name -> number
    env: dict | None  # fingerprint of the measured metrics; None if none were measured


class Baseline(NamedTuple):
    """A loaded, validated baseline."""

    file: str
    tool_version: str
    git_commit: str | None
    models: dict  # model name -> Record


def spec_sha256(spec: str) -> str | None:
    """sha256 of the spec file's bytes (a bundled name is resolved to its file)."""
    from .api import resolve_path

    try:
        return hashlib.sha256(resolve_path(spec).read_bytes()).hexdigest()
    except (SpecError, OSError):
        return None


def git_commit(folder: str | os.PathLike) -> str | None:
    """`git rev-parse HEAD` in `folder`, or None outside a repository or without git."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder or ".", capture_output=True,
                             text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None


def json_safe(value: Any) -> Any:
    """A measurer's environment dict as plain JSON data (odd values become text)."""
    return json.loads(json.dumps(value, default=str, sort_keys=True))


def record(model: Any, metrics: dict, env: dict | None) -> Record:
    """The baseline record of a budget-file Model with its current metrics."""
    return Record(model.spec_ref, spec_sha256(model.spec), json_safe(model.settings),
                  dict(metrics), json_safe(env) if env is not None else None)


def to_json(models: dict, folder: str | os.PathLike) -> str:
    """The baseline document for `models` (name -> Record), as JSON text."""
    from . import __version__

    data = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "tool_version": __version__,
        "git_commit": git_commit(folder),
        "models": {name: {"spec": r.spec, "spec_sha256": r.spec_sha256, "settings": r.settings,
                          "metrics": r.metrics, "env": r.env}
                   for name, r in sorted(models.items())},
    }
    return json.dumps(data, indent=2) + "\n"


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` so that readers see the old file or the new one, never half."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_baseline(path: str | os.PathLike) -> Baseline:
    """Read and validate a baseline; SpecError with every problem if it is missing or bad."""
    filename = str(path)
    fix = "; recreate it with `cnncost baseline save --force`"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([Problem(Loc(filename), "", "baseline file not found; create it with "
                                 "`cnncost baseline save` and commit it")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([Problem(Loc(filename), "", f"cannot read the baseline: {exc}{fix}")]) \
            from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError([Problem(Loc(filename, exc.lineno), "", f"corrupt baseline: not valid "
                                 f"JSON ({exc.msg}){fix}")]) from None
    problems: list[str] = []
    models = _validate(data, problems)
    if problems:
        raise SpecError([Problem(Loc(filename), "", f"corrupt baseline: {p}{fix}")
                         for p in problems])
    return Baseline(filename, data["tool_version"], data["git_commit"], models)


def _validate(data: Any, problems: list) -> dict:
    if not isinstance(data, dict):
        problems.append(f"expected a JSON object, received {type(data).__name__}")
        return {}
    if data.get("schema") != SCHEMA:
        problems.append(f"schema: expected {SCHEMA!r}, received {data.get('schema')!r}")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION or isinstance(version, bool):
        newer = isinstance(version, int) and version > SCHEMA_VERSION
        problems.append(f"schema_version: expected {SCHEMA_VERSION}, received {version!r}"
                        + (" (written by a newer cnncost; upgrade)" if newer else ""))
    if not isinstance(data.get("tool_version"), str):
        problems.append("tool_version: expected text")
    if data.get("git_commit") is not None and not isinstance(data.get("git_commit"), str):
        problems.append("git_commit: expected text or null")
    models = data.get("models")
    if not isinstance(models, dict):
        problems.append("models: expected an object of model name -> record")
        return {}
    out = {}
    for name, raw in models.items():
        where = f"models.{name}"
        if not isinstance(raw, dict):
            problems.append(f"{where}: expected an object")
            continue
        extra = set(raw) - {"spec", "spec_sha256", "settings", "metrics", "env"}
        if extra:
            problems.append(f"{where}: unknown keys {sorted(extra)}")
        if not isinstance(raw.get("spec"), str):
            problems.append(f"{where}.spec: expected text")
        if raw.get("spec_sha256") is not None and not isinstance(raw.get("spec_sha256"), str):
            problems.append(f"{where}.spec_sha256: expected text or null")
        settings = raw.get("settings")
        if not isinstance(settings, dict) or set(settings) != set(SETTINGS_KEYS):
            problems.append(f"{where}.settings: expected an object with {', '.join(SETTINGS_KEYS)}")
        env = raw.get("env")
        if env is not None and not isinstance(env, dict):
            problems.append(f"{where}.env: expected an object or null")
        metrics = raw.get("metrics")
        if not isinstance(metrics, dict):
            problems.append(f"{where}.metrics: expected an object of metric -> number")
            continue
        missing = [m for m in ANALYTIC if m not in metrics]
        if missing:
            problems.append(f"{where}.metrics: missing {', '.join(missing)} (a baseline records "
                            "every analytic metric; rewrite it with `cnncost baseline save "
                            "--force`)")
        for metric, value in metrics.items():
            if metric not in METRICS:
                problems.append(f"{where}.metrics: unknown metric {metric!r}")
            elif metric in ANALYTIC and (isinstance(value, bool) or not isinstance(value, int)
                                         or value < 0):
                problems.append(f"{where}.metrics.{metric}: expected a non-negative integer, "
                                f"received {value!r}")
            elif metric in MEASURED and (isinstance(value, bool)
                                         or not isinstance(value, (int, float))
                                         or not math.isfinite(value) or value < 0):
                problems.append(f"{where}.metrics.{metric}: expected a non-negative number, "
                                f"received {value!r}")
            elif metric in MEASURED and env is None:
                problems.append(f"{where}.metrics.{metric}: a measured metric needs env (the "
                                "environment it was measured in)")
        out[name] = Record(raw.get("spec"), raw.get("spec_sha256"), settings, metrics, env)
    return out
