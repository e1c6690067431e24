"""The baseline: the metrics of every gated model at a known-good state.

Two kinds. A **stored** baseline is a JSON file that ``cnncost baseline save|update``
writes and ``cnncost gate`` reads: writing is atomic (cnncost.safeio.write_output), so
a crash or a full disk never leaves half a baseline; reading is bounded and strict
(cnncost.safeio: a regular file of at most MAX_BYTES, no duplicate keys, no NaN, no
number too long to be a count) and validates the whole document, failing closed: a
missing, unparsable or malformed baseline, or a count that is not a plausible count
(negative, fractional, a boolean, 2**63 or more), is a SpecError (exit 2), never an
empty baseline. A baseline **at a git ref** (``gate --against REF``, cnncost/gate/against.py)
has no file: it is recomputed from the budget and specs in commit REF. The format of
the file is documented in docs/ci.md.
"""

from __future__ import annotations

import json
import math
import os
import posixpath
import re
import subprocess
from typing import Any, NamedTuple

from ..errors import Loc, Problem, SpecError, show
from .keys import spec_sha256
from .metrics import ANALYTIC, MEASURED, METRICS
from ..safeio import parse_json, read_text

SCHEMA = "cnncost.baseline"
SCHEMA_VERSION = 1
SETTINGS_KEYS = ("input", "batch", "dtype", "vars", "variant")
MAX_BYTES = 16 * 2**20  # a baseline of a few hundred models is well under 1 MB
MAX_COUNT = 2**63 - 1  # the largest count a baseline stores (int64, as JSON tools read it)
MISSING = "baseline file not found; create it with `cnncost baseline save` and commit it"
FIX = "; recreate it with `cnncost baseline save --force`"


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


def to_json(models: dict, folder: str | os.PathLike, file: str = "") -> str:
    """The baseline document for `models` (name -> Record), as JSON text.

    The document is validated as :func:`load_baseline` would validate it before it is
    returned, so cnncost never writes a baseline it would refuse to read (a count of
    2**63 or more, a measured value that is not finite): SpecError naming `file`.
    """
    from .. import __version__

    data = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "tool_version": __version__,
        "git_commit": git_commit(folder),
        "models": {name: {"spec": r.spec, "spec_sha256": r.spec_sha256, "settings": r.settings,
                          "metrics": r.metrics, "env": r.env}
                   for name, r in sorted(models.items())},
    }
    problems: list[str] = []
    _validate(data, problems)
    if problems:
        raise SpecError([Problem(Loc(file), "", f"cannot store this baseline: {p}") for p in
                         problems])
    return json.dumps(data, indent=2, allow_nan=False) + "\n"


def load_baseline(path: str | os.PathLike) -> Baseline:
    """Read and validate a baseline; SpecError with every problem if it is missing or bad.

    The file must be a regular file of at most MAX_BYTES (or `-`, standard input): a
    device, a FIFO or an oversized file is refused before anything is read.
    """
    filename = str(path)
    try:
        text = read_text(path, what="baselines", limit=MAX_BYTES, missing=MISSING)
    except SpecError as exc:
        raise SpecError([p if p.message == MISSING else
                         p._replace(message=f"cannot read the baseline: {p.message}")
                         for p in exc.problems]) from None
    try:
        data = parse_json(text, filename, what="cnncost baseline")
    except SpecError as exc:
        raise SpecError([p._replace(message=f"corrupt baseline: {p.message}{FIX}")
                         for p in exc.problems]) from None
    problems: list[str] = []
    models = _validate(data, problems)
    if problems:
        raise SpecError([Problem(Loc(filename), "", f"corrupt baseline: {p}{FIX}")
                         for p in problems])
    return Baseline(filename, data["tool_version"], data["git_commit"], models)


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _count_problem(value: Any) -> str | None:
    """Why `value` is not a plausible stored count (None if it is one)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return f"expected a non-negative integer, received {show(value)}"
    if value > MAX_COUNT:
        return f"{value:,} is beyond 2**63 - 1, not a plausible count"
    return None


def _measured_problem(value: Any) -> str | None:
    """Why `value` is not a plausible measured value (None if it is one)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or value < 0:
        return f"expected a non-negative number, received {show(value)}"
    if value > MAX_COUNT:
        return f"{value:g} is beyond 2**63 - 1, not a plausible measurement"
    return None


def _validate(data: Any, problems: list) -> dict:
    """The records of a baseline document; every problem appended to `problems` as
    'JSON.path: message'."""
    if not isinstance(data, dict):
        problems.append(f"expected a JSON object, received {type(data).__name__}")
        return {}
    if data.get("schema") != SCHEMA:
        problems.append(f"schema: expected {SCHEMA!r}, received {data.get('schema')!r}")
    version = data.get("schema_version")
    if type(version) is not int or version != SCHEMA_VERSION:  # not true, not 1.0
        newer = isinstance(version, int) and not isinstance(version, bool) and \
            version > SCHEMA_VERSION
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
        if not isinstance(raw.get("spec"), str) or not raw.get("spec"):
            problems.append(f"{where}.spec: expected text")
        sha = raw.get("spec_sha256")
        if sha is not None and not (isinstance(sha, str) and _SHA256.fullmatch(sha)):
            problems.append(f"{where}.spec_sha256: expected 64 hexadecimal digits or null, "
                            f"received {show(sha)}")
        settings = raw.get("settings")
        if not isinstance(settings, dict) or set(settings) != set(SETTINGS_KEYS):
            problems.append(f"{where}.settings: expected an object with {', '.join(SETTINGS_KEYS)}")
        else:
            _validate_settings(settings, f"{where}.settings", problems)
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
                continue
            bad = _count_problem(value) if metric in ANALYTIC else _measured_problem(value)
            if bad:
                problems.append(f"{where}.metrics.{metric}: {bad}")
            elif metric in MEASURED and env is None:
                problems.append(f"{where}.metrics.{metric}: a measured metric needs env (the "
                                "environment it was measured in)")
        spec = raw.get("spec")
        if isinstance(spec, str) and isinstance(settings, dict) and isinstance(metrics, dict):
            out[name] = Record(spec, sha, settings, metrics, env)  # else: a problem, raised
    return out


def _validate_settings(settings: dict, where: str, problems: list) -> None:
    for key, ok, expected in (
            ("input", lambda v: v is None or isinstance(v, str), "text such as 3x224x224 or null"),
            ("batch", lambda v: not isinstance(v, bool) and isinstance(v, int)
             and 1 <= v <= MAX_COUNT, "a positive integer"),
            ("dtype", lambda v: isinstance(v, str), "text such as fp32"),
            ("vars", lambda v: isinstance(v, dict), "an object of variable -> value"),
            ("variant", lambda v: v is None or isinstance(v, str), "text or null")):
        if not ok(settings[key]):
            problems.append(f"{where}.{key}: expected {expected}, received {show(settings[key])}")


# ------------------------------------------------------- the baseline and the budget
def _spec_key(spec: str) -> str:
    """A budget file's spec as written, normalised for comparison ('./a/../b.yaml' is
    'b.yaml'; a bundled name with or without .yaml is the same spec)."""
    text = posixpath.normpath(spec.strip().replace(os.sep, "/"))
    return text.removesuffix(".yaml") if "/" not in text else text


def same_spec(a: str, b: str) -> bool:
    """Whether two spec references of a budget file name the same spec."""
    return _spec_key(a) == _spec_key(b)


def foreign_records(budget: Any, baseline: Baseline) -> list[Problem]:
    """Baseline records saved from another spec than the one the budget file now gates
    under the same model name: comparing with them would compare two different models
    (a regression could pass against the bigger one), so each is an error (exit 2)."""
    out = []
    for model in budget.models:
        record = baseline.models.get(model.name)
        if record is None or same_spec(record.spec, model.spec_ref):
            continue
        out.append(Problem(Loc(baseline.file), f"models.{model.name}.spec",
                           f"the baseline of {model.name} was saved from spec {record.spec}, but "
                           f"{budget.file}:{model.line} gates {model.name} with spec "
                           f"{model.spec_ref}; its numbers are another model's, so they are not "
                           "compared. If the change is intended, record the new spec with "
                           f"`cnncost baseline update --model {model.name}`, or gate with "
                           "--against REF"))
    return out
