"""Budget files (``cnncost.budget.yaml``): load and validate into plain, typed data.

A budget file lists models (spec, input, batch, dtype, vars, variant) and, per model
and metric, an absolute **budget** (``macs: 600M``) and a **regression** tolerance
against the stored baseline (``macs: 1%``), each with a level (error, warn, off). The
format is documented in docs/ci.md. Like specs, the file is read with the line-aware
safe loader, and every problem is collected with its ``file:line`` before one
SpecError is raised. Nothing here analyzes a spec or prints.
"""

from __future__ import annotations

from collections.abc import Callable

import os
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

from ..cost.analysis import DTYPE_BYTES
from ..errors import ErrorSink, Loc, SpecError, did_you_mean, one_of, show
from .metrics import MEASURED, METRICS
from .quantity import parse_percent, parse_quantity
from ..lang.yamlio import LocDict, LocList, read_yaml

DEFAULT_FILE = "cnncost.budget.yaml"
DEFAULT_BASELINE = "cnncost.baseline.json"
LEVELS = ("error", "warn", "off")
DTYPES = tuple(d for d in DTYPE_BYTES if d != "fp64")
TOP_KEYS = ("version", "baseline", "defaults", "measure", "models")
DEFAULT_KEYS = ("batch", "dtype", "regression")
MODEL_KEYS = ("name", "spec", "model", "input", "batch", "dtype", "vars", "variant", "budgets",
              "regression")
MEASURE_KEYS = {"runs": 50, "warmup": 10, "device": "auto"}


class Budget(NamedTuple):
    """An absolute limit on one metric: at most `limit` (at least, for higher-is-better)."""

    limit: Fraction
    text: str  # as shown in reports, e.g. "<= 5M"
    level: str  # error, warn or off
    line: int


class Tolerance(NamedTuple):
    """How much one metric may worsen against the baseline; both limits apply if given."""

    relative: Fraction | None  # a fraction of the baseline value (0.01 for 1%)
    absolute: Fraction | None  # in the metric's unit
    text: str  # e.g. "+1%", "+1% and +64KiB"
    level: str
    line: int


class Check(NamedTuple):
    """What the budget file asks of one metric of one model."""

    metric: str
    budget: Budget | None
    tolerance: Tolerance | None


class Model(NamedTuple):
    """One gated model."""

    name: str
    spec: str  # what cnncost.analyze is given: a path (relative to the cwd if possible) or a bundled name
    spec_ref: str  # the spec as the budget file writes it (relative to the budget file)
    settings: dict  # input (str or None), batch, dtype, vars (dict), variant (str or None)
    checks: dict  # metric -> Check, in the order the budget file names them
    line: int

    @property
    def measured(self) -> bool:
        """Whether any active check of this model needs a measured metric."""
        return any(name in MEASURED and _active(check) for name, check in self.checks.items())


class BudgetFile(NamedTuple):
    """A validated budget file."""

    file: str
    baseline: str  # path of the baseline JSON (relative to the cwd if possible)
    measure: dict  # runs, warmup, device for measured metrics
    models: tuple  # of Model


def _active(check: Check) -> bool:
    return any(part is not None and part.level != "off" for part in (check.budget, check.tolerance))


def display_path(path: Path) -> str:
    """A path as printed: relative to the cwd when it is below it."""
    relative = os.path.relpath(path)
    return relative if not relative.startswith("..") else str(path)


def load_budget(path: str | os.PathLike) -> BudgetFile:
    """Read and validate a budget file; raise SpecError with every problem found.

    The file is bounded before it is read (yamlio.read_yaml, cnncost.safeio): a device,
    a FIFO or an oversized file is refused with one line, never read.
    """
    errors = ErrorSink()
    filename = str(path)
    raw = read_yaml(path, errors, what="budget files")
    errors.raise_if_any()
    result = _Parser(filename, errors).parse(raw)
    errors.raise_if_any()
    assert result is not None  # noqa: S101 - no errors implies a result
    return result


def parse_budget_at(raw: Any, filename: str, resolve_spec: Callable[[str], str]) -> BudgetFile:
    """Validate the located YAML of a budget file read from elsewhere than the working
    tree (a git commit: ``gate --against``). `filename` names it in messages (``REF:path``);
    spec paths are not looked up on disk but handed, as written, to `resolve_spec`, whose
    result becomes each Model's ``spec``; variables and variants are checked later, when
    the spec is analyzed. SpecError with every problem found.
    """
    errors = ErrorSink()
    result = _Parser(filename, errors, resolve_spec).parse(raw)
    errors.raise_if_any()
    assert result is not None  # noqa: S101 - no errors implies a result
    return result


class _Parser:
    """Walks the located YAML of one budget file, reporting into an ErrorSink."""

    def __init__(self, file: str, errors: ErrorSink,
                 resolve_spec: Callable[[str], str] | None = None) -> None:
        self.file = file
        self.folder = Path(file).parent
        self.errors = errors
        self.resolve_spec = resolve_spec

    def err(self, line: int, path: str, message: str) -> None:
        self.errors.add(Loc(self.file, line), path, message)

    def mapping(self, raw: Any, path: str, line: int, keys: tuple) -> LocDict | None:
        """`raw` if it is a mapping (unknown keys reported), else None after an error."""
        if not isinstance(raw, LocDict):  # what read_yaml gives for every mapping
            self.err(line, path, f"expected a mapping, received {show(raw)}")
            return None
        for key in raw:
            if key not in keys:
                self.err(raw.line_of(key), path, f"unknown key {key!r}{did_you_mean(key, keys)} "
                         f"(allowed: {', '.join(keys)})")
        return raw

    # ------------------------------------------------------------------ top level
    def parse(self, raw: Any) -> BudgetFile | None:
        if raw is None:
            self.err(0, "", "the budget file is empty; it needs a models: list (see docs/ci.md)")
            return None
        top = self.mapping(raw, "", getattr(raw, "line", 0), TOP_KEYS)
        if top is None:
            return None
        if "version" in top and (top["version"] != 1 or isinstance(top["version"], bool)):
            self.err(top.line_of("version"), "version", f"expected 1, received "
                     f"{show(top['version'])}")
        baseline = self.folder / DEFAULT_BASELINE
        if "baseline" in top:
            if isinstance(top["baseline"], str) and top["baseline"].strip():
                baseline = self.folder / top["baseline"]
            else:
                self.err(top.line_of("baseline"), "baseline", f"expected a file path, received "
                         f"{show(top['baseline'])}")
        defaults = self.parse_defaults(top.get("defaults"), top.line_of("defaults"))
        measure = self.parse_measure(top.get("measure"), top.line_of("measure"))
        models = self.parse_models(top.get("models"), top.line_of("models"), defaults)
        return BudgetFile(self.file, display_path(baseline), measure, models)

    def parse_defaults(self, raw: Any, line: int) -> dict:
        if raw is None:
            return {}
        found = self.mapping(raw, "defaults", line, DEFAULT_KEYS)
        if found is None:
            return {}
        out: dict[str, Any] = {}
        if "batch" in found:
            out["batch"] = self.batch(found["batch"], "defaults.batch", found.line_of("batch"))
        if "dtype" in found:
            out["dtype"] = self.dtype(found["dtype"], "defaults.dtype", found.line_of("dtype"))
        if "regression" in found:
            out["regression"] = self.parse_regression(found["regression"], "defaults.regression",
                                                      found.line_of("regression"))
        return out

    def parse_measure(self, raw: Any, line: int) -> dict:
        out = dict(MEASURE_KEYS)
        if raw is None:
            return out
        found = self.mapping(raw, "measure", line, tuple(MEASURE_KEYS))
        for key in ("runs", "warmup"):
            if found is not None and key in found:
                value = found[key]
                least = 1 if key == "runs" else 0
                if isinstance(value, bool) or not isinstance(value, int) or value < least:
                    self.err(found.line_of(key), f"measure.{key}", f"expected an integer >= "
                             f"{least}, received {show(value)}")
                else:
                    out[key] = value
        if found is not None and "device" in found:
            if isinstance(found["device"], str) and found["device"]:
                out["device"] = found["device"]
            else:
                self.err(found.line_of("device"), "measure.device", f"expected a device name "
                         f"such as auto, cpu or cuda, received {show(found['device'])}")
        return out

    # ------------------------------------------------------------------ models
    def parse_models(self, raw: Any, line: int, defaults: dict) -> tuple:
        if raw is None:
            self.err(line, "models", "missing: list the models to gate (see docs/ci.md)")
            return ()
        if not isinstance(raw, LocList) or not raw:
            got = "an empty list" if raw == [] else show(raw)
            self.err(line, "models", f"expected a non-empty list of models, received {got}")
            return ()
        models: list[Model] = []
        seen: dict[str, int] = {}
        for i, item in enumerate(raw):
            model = self.parse_model(item, f"models[{i}]", raw.line_of(i), defaults)
            if model is None:
                continue
            if model.name in seen:
                self.err(model.line, f"models[{i}]", f"duplicate model name {model.name!r} (first "
                         f"on line {seen[model.name]}); give each entry a distinct name: key")
                continue
            seen[model.name] = model.line
            models.append(model)
        return tuple(models)

    def parse_model(self, raw: Any, path: str, line: int, defaults: dict) -> Model | None:
        found = self.mapping(raw, path, line, MODEL_KEYS)
        if found is None:
            return None
        line = found.line
        if "model" in found:  # a PyTorch model, imported for `input`
            spec = self.model(found, path)
        else:
            spec = self.spec(found.get("spec"), f"{path}.spec", found.line_of("spec"))
        name = found.get("name")
        if name is None and spec is not None and "model" in found:
            name = spec.rpartition(":")[2]
        elif name is None and spec is not None:
            name = Path(spec).stem if spec.endswith(".yaml") else spec
        elif name is not None and not (isinstance(name, str) and name.strip()):
            self.err(found.line_of("name"), f"{path}.name", f"expected text, received {show(name)}")
            name = None
        label = f"{path} ({name})" if name else path
        settings = {
            "input": self.input(found.get("input"), f"{label}.input", found.line_of("input")),
            "batch": (self.batch(found["batch"], f"{label}.batch", found.line_of("batch"))
                      if "batch" in found else defaults.get("batch", 1)),
            "dtype": (self.dtype(found["dtype"], f"{label}.dtype", found.line_of("dtype"))
                      if "dtype" in found else defaults.get("dtype", "fp32")),
            "vars": self.vars(found.get("vars"), f"{label}.vars", found.line_of("vars")),
            "variant": self.variant(found.get("variant"), f"{label}.variant",
                                    found.line_of("variant")),
        }
        budgets = self.parse_budgets(found.get("budgets"), f"{label}.budgets",
                                     found.line_of("budgets"))
        regression = dict(defaults.get("regression", {}))
        regression.update(self.parse_regression(found.get("regression"), f"{label}.regression",
                                                found.line_of("regression")))
        checks = {metric: Check(metric, budgets.get(metric), regression.get(metric))
                  for metric in dict.fromkeys([*budgets, *regression])}
        if spec is None or name is None:
            return None
        if self.resolve_spec is None and "model" not in found:
            self.check_spec_settings(spec, settings, found, label)
        return Model(name, spec, found.get("spec") or found["model"], settings, checks, line)

    def model(self, found: LocDict, path: str) -> str | None:
        """`model: FILE.py:CALLABLE` or `package.module:CALLABLE` (a .py path relative to
        the budget file), with the `input` it is imported for; never with `spec`."""
        from ..api import MODEL_REF

        raw, line = found["model"], found.line_of("model")
        if "spec" in found:
            self.err(line, f"{path}.model", "give spec: or model:, not both")
            return None
        if not isinstance(raw, str) or not MODEL_REF.match(raw):
            self.err(line, f"{path}.model", f"expected FILE.py:CALLABLE or "
                     f"package.module:CALLABLE, received {show(raw)}")
            return None
        if "input" not in found:
            self.err(line, f"{path}.model", "a model is imported for one input shape: give "
                     "input: (e.g. 3x224x224)")
            return None
        if self.resolve_spec is not None:  # at a git ref: gate/against.py imports it there
            return raw
        file, _, callable_name = raw.rpartition(":")
        if file.endswith(".py"):
            candidate = self.folder / file
            if not candidate.is_file():
                self.err(line, f"{path}.model", f"no such file: {display_path(candidate)} "
                         "(paths are relative to the budget file)")
                return None
            return f"{display_path(candidate)}:{callable_name}"
        return raw

    def check_spec_settings(self, spec: str, settings: dict, found: LocDict, label: str) -> None:
        """Variables and variant named in the budget file must exist in the spec: reported
        here, at the budget file's lines (a spec that does not load is reported later, when
        the gate evaluates it)."""
        if not settings["vars"] and settings["variant"] is None:
            return
        from ..api import load

        try:
            loaded = load(spec)
        except SpecError:
            return
        raw_vars = found.get("vars")
        for key in settings["vars"]:
            if key not in loaded.vars:
                self.err(raw_vars.line_of(key) if isinstance(raw_vars, LocDict) else found.line, f"{label}.vars",
                         f"unknown variable {key!r} of {spec}{did_you_mean(key, loaded.vars)} "
                         f"(vars: {one_of(loaded.vars) or 'none defined'})")
        variant = settings["variant"]
        if variant is not None and variant not in loaded.variants:
            self.err(found.line_of("variant"), f"{label}.variant",
                     f"unknown variant {variant!r} of {spec}"
                     f"{did_you_mean(variant, loaded.variants)} (variants: "
                     f"{one_of(loaded.variants) or 'none defined'})")

    def spec(self, raw: Any, path: str, line: int) -> str | None:
        from ..api import bundled_specs

        if raw is None:
            self.err(line, path, "missing: the spec file of this model (a path relative to the "
                     "budget file, or a bundled spec name)")
            return None
        if not isinstance(raw, str) or not raw.strip():
            self.err(line, path, f"expected a spec path, received {show(raw)}")
            return None
        if self.resolve_spec is not None:
            return self.resolve_spec(raw)
        candidate = self.folder / raw
        if candidate.is_file():
            return display_path(candidate)
        bundled = bundled_specs()
        if "/" not in raw and os.sep not in raw and raw.removesuffix(".yaml") in bundled:
            return raw.removesuffix(".yaml")
        near = candidate.parent
        siblings = ([str(Path(raw).parent / p.name) for p in near.glob("*.yaml")]
                    if near.is_dir() else [])
        self.err(line, path, f"no such spec file: {display_path(candidate)} (paths are relative "
                 f"to the budget file){did_you_mean(raw, [*siblings, *bundled])}")
        return None

    def input(self, raw: Any, path: str, line: int) -> str | None:
        from ..api import check_input, parse_input

        if raw is None:
            return None
        try:
            dims = parse_input(raw) if isinstance(raw, str) else check_input(raw)
        except ValueError as exc:
            self.err(line, path, str(exc))
            return None
        return "x".join(map(str, dims))

    def batch(self, raw: Any, path: str, line: int) -> int:
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
            self.err(line, path, f"expected a positive integer, received {show(raw)}")
            return 1
        return raw

    def dtype(self, raw: Any, path: str, line: int) -> str:
        if raw not in DTYPES:
            self.err(line, path, f"expected one of {', '.join(DTYPES)}, received {show(raw)}"
                     f"{did_you_mean(raw, DTYPES)}")
            return "fp32"
        return raw

    def vars(self, raw: Any, path: str, line: int) -> dict:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.err(line, path, f"expected a mapping of spec variable -> value, received "
                     f"{show(raw)}")
            return {}
        return dict(raw)

    def variant(self, raw: Any, path: str, line: int) -> str | None:
        if raw is not None and not isinstance(raw, str):
            self.err(line, path, f"expected a variant name, received {show(raw)}")
            return None
        return raw

    # ------------------------------------------------------------------ checks
    def metric(self, name: Any, path: str, line: int) -> str | None:
        if name in METRICS:
            return name
        self.err(line, path, f"unknown metric {name!r}{did_you_mean(name, METRICS)} (metrics: "
                 f"{one_of(METRICS)})")
        return None

    def level(self, raw: Any, default: str, path: str, line: int) -> str:
        if raw is None:
            return default
        if raw is False:  # YAML 1.1 reads an unquoted `off` as false
            return "off"
        if raw not in LEVELS:
            hint = " (YAML reads unquoted on/yes as true; write error or warn)" if raw is True else ""
            self.err(line, path, f"expected one of {', '.join(LEVELS)}, received {show(raw)}"
                     f"{did_you_mean(raw, LEVELS)}{hint}")
            return "error"
        return raw

    def parse_budgets(self, raw: Any, path: str, line: int) -> dict:
        return self.per_metric(raw, path, line, "budget", self.budget)

    def per_metric(self, raw: Any, path: str, line: int, what: str,
                   parse_one: Callable[[str, Any, str, int], Any]) -> dict:
        """A mapping of metric -> `what`, each value parsed by `parse_one`."""
        if raw is None:
            return {}
        if not isinstance(raw, LocDict):
            self.err(line, path, f"expected a mapping of metric -> {what}, received {show(raw)}")
            return {}
        out = {}
        for key, value in raw.items():
            kline = raw.line_of(key)
            metric = self.metric(key, path, kline)
            if metric is None:
                continue
            parsed = parse_one(metric, value, f"{path}.{metric}", kline)
            if parsed is not None:
                out[metric] = parsed
        return out

    def budget(self, metric: str, raw: Any, path: str, line: int) -> Budget | None:
        info = METRICS[metric]
        op, key = ("<=", "max") if info.better == "lower" else (">=", "min")
        level = info.default_level
        if isinstance(raw, dict):
            found = self.mapping(raw, path, line, (key, "level"))
            if found is None or key not in found:
                self.err(line, path, f"missing {key}: the budget of {metric}")
                return None
            level = self.level(found.get("level"), level, f"{path}.level", found.line_of("level"))
            raw, line = found[key], found.line_of(key)
        text = raw.strip() if isinstance(raw, str) else raw
        if isinstance(text, str) and text[:2] in ("<=", ">="):
            if text[:2] != op:
                self.err(line, path, f"{metric} is better {info.better}: its budget is a "
                         f"{key}imum, written '{op} {text[2:].strip()}'")
                return None
            text = text[2:].strip()
        try:
            limit = parse_quantity(text, info.kind)
        except ValueError as exc:
            self.err(line, path, f"{exc}, received {show(raw)}")
            return None
        if isinstance(text, float) and text.is_integer():
            text = int(text)  # 1.0e+7 is shown as 10000000
        return Budget(limit, f"{op} {text}", level, line)

    def parse_regression(self, raw: Any, path: str, line: int) -> dict:
        return self.per_metric(raw, path, line, "tolerance", self.tolerance)

    def tolerance(self, metric: str, raw: Any, path: str, line: int) -> Tolerance | None:
        info = METRICS[metric]
        level = info.default_level
        relative = absolute = None
        if isinstance(raw, dict):
            found = self.mapping(raw, path, line, ("relative", "absolute", "level"))
            if found is None:
                return None
            level = self.level(found.get("level"), level, f"{path}.level", found.line_of("level"))
            if "relative" in found:
                relative = self.percent(found["relative"], f"{path}.relative",
                                        found.line_of("relative"))
            if "absolute" in found:
                absolute = self.amount(info.kind, found["absolute"], f"{path}.absolute",
                                       found.line_of("absolute"))
            if "relative" not in found and "absolute" not in found:
                self.err(line, path, "give relative (e.g. 1%), absolute (e.g. 10k) or both")
                return None
            if (found.get("relative") is not None and relative is None) or (
                    found.get("absolute") is not None and absolute is None):
                return None
        elif isinstance(raw, str) and raw.strip().endswith("%"):
            relative = self.percent(raw, path, line)
            if relative is None:
                return None
        else:
            absolute = self.amount(info.kind, raw, path, line)
            if absolute is None:
                return None
        sign = "+" if info.better == "lower" else "-"
        parts = [f"{sign}{float(relative * 100):g}%" if relative is not None else "",
                 f"{sign}{_plain(raw if not isinstance(raw, dict) else raw.get('absolute'))}"
                 if absolute is not None else ""]
        return Tolerance(relative, absolute, " and ".join(p for p in parts if p), level, line)

    def percent(self, raw: Any, path: str, line: int) -> Fraction | None:
        try:
            return parse_percent(raw)
        except ValueError as exc:
            self.err(line, path, f"{exc}, received {show(raw)}")
            return None

    def amount(self, kind: str, raw: Any, path: str, line: int) -> Fraction | None:
        text = raw.strip().lstrip("+") if isinstance(raw, str) else raw
        try:
            return parse_quantity(text, kind)
        except ValueError as exc:
            self.err(line, path, f"{exc}, or a percentage such as 1%; received {show(raw)}")
            return None


def _plain(value: Any) -> str:
    return value.strip().lstrip("+") if isinstance(value, str) else f"{value}"
