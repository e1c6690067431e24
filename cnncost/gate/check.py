"""The gate: evaluate every model of a budget file and compare with budgets and baseline.

Passes, each handing plain data to the next: :func:`~cnncost.gate.budget.load_budget` ->
:func:`evaluate_models` (analyze each spec; measure latency only where asked, or take it
from bench results given with ``--measurements``) ->
:func:`compare` (one :class:`Row` per model x metric with a status) -> a renderer in
:mod:`cnncost.gate.report`. Nothing here prints.

Statuses, worst first: ``fail`` (a check at level error, or at warn under --strict,
is violated), ``warn``, ``skipped`` (not comparable: not measured, a different
environment, or every check off), ``new`` (not in the baseline), ``improved``
(better than the baseline), ``pass``; and ``removed`` for a model that is in the
baseline but no longer in the budget file.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, NamedTuple

from .against import RefBaseline
from .baseline import Baseline, json_safe, same_spec
from .keys import spec_sha256
from .budget import BudgetFile, Check, Model
from ..errors import Loc, Problem, SpecError
from .metrics import MEASURED, METRICS, Evaluation, evaluate
from .quantity import fmt_delta, fmt_percent, fmt_value

STATUSES = ("fail", "warn", "skipped", "new", "improved", "pass", "removed")


class Finding(NamedTuple):
    """A violated check: its level after --strict, a message, the budget file line."""

    level: str  # error or warn
    message: str
    line: int


class Row(NamedTuple):
    """One model x metric of the gate report."""

    model: str
    metric: str
    baseline: float | int | None
    current: float | int | None
    delta: float | int | None
    delta_pct: float | None  # delta / baseline (0.01 is 1%); None without a non-zero baseline
    budget: str  # the budget as written, e.g. "<= 5M"; "" if none
    tolerance: str  # the allowed regression, e.g. "+1%"; "" if none
    status: str
    findings: tuple  # of Finding
    note: str  # why skipped / new / removed
    line: int  # budget file line of the model's check (for annotations)


class GateResult(NamedTuple):
    """Everything the reports need."""

    budget_file: str
    baseline_file: str | None  # the stored baseline (with --against: of measured metrics)
    baseline_commit: str | None
    rows: list
    notes: list  # lines about the comparison itself (spec changed, settings changed, ...)
    strict: bool
    baseline_ref: str | None = None  # --against REF: the ref as given
    baseline_label: str | None = None  # --against REF: 'HEAD (1a2b3c4)'

    def counts(self) -> dict:
        return {status: sum(r.status == status for r in self.rows) for status in STATUSES}

    @property
    def exit_code(self) -> int:
        return 1 if any(r.status == "fail" for r in self.rows) else 0

    def __repr__(self) -> str:
        """One line, for a REPL: the verdict and the counts."""
        return f"<GateResult {self.budget_file}: {headline(self)}>"

    def _repr_html_(self) -> str:
        """The report's table for Jupyter, every text escaped."""
        import html

        head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells(r))
                       + "</tr>" for r in self.rows)
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        return (f"<div><p><b>cnncost gate {html.escape(headline(self))}</b> "
                f"({html.escape(self.budget_file)})</p><table><thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table>{f'<ul>{notes}</ul>' if notes else ''}</div>")


def needs_measuring(model: Model, measure: bool | None) -> bool:
    """--measure forces, --no-measure forbids, the default measures what the budget asks."""
    return model.measured if measure is None else measure


def evaluate_models(budget: BudgetFile, measure: bool | None = None,
                    only: tuple = (), measurements: Any = None) -> dict:
    """Model name -> Evaluation for every model (or those named in `only`).

    With `measurements` (a ``cnncost.gate.benchfile.Measurements``) every model's measured
    metrics come from its matching bench result, and nothing is measured here.
    All models are evaluated before any error is raised, so one SpecError lists every
    broken spec, each followed by the budget-file line of the model that uses it.
    """
    problems: list[Problem] = []
    out: dict[str, Evaluation] = {}
    for model in budget.models:
        if only and model.name not in only:
            continue
        options = budget.measure if measurements is None and needs_measuring(model, measure) \
            else None
        try:
            out[model.name] = evaluate(model.spec, model.settings, options, measurements)
        except SpecError as exc:
            problems.extend(exc.problems)
            problems.append(Problem(Loc(budget.file, model.line), f"model {model.name}",
                                    f"cannot be gated ({model.spec}): see the error above"))
    if problems:
        raise SpecError(problems)
    return out


def compare(budget: BudgetFile, baseline: Baseline | None, current: dict,
            strict: bool = False, against: RefBaseline | None = None) -> GateResult:
    """One Row per model x checked metric, plus a `removed` row per model that left.

    With `against` (``gate --against REF``) the baseline is the one recomputed at REF
    (`baseline` is ignored): its notes lead, models it has no baseline for are `new`
    with its reason, and without a stored baseline of measured metrics their regression
    checks are skipped with a note.
    """
    rows: list[Row] = []
    notes: list[str] = list(against.notes) if against else []
    if against is not None:
        baseline = against.baseline
    since = f"since {against.ref}" if against else "since the baseline"
    for model in budget.models:
        record = baseline.models.get(model.name) if baseline else None
        evaluation = current[model.name]
        if record is not None:
            notes.extend(_changes(model, record, since))
        notes.extend(f"{model.name}: {note}" for note in getattr(evaluation, "notes", ()))
        if not model.checks:
            notes.append(f"{model.name}: nothing is checked (give it budgets: or regression:)")
        elif against is not None and against.budget_found and model.name in against.new:
            notes.append(f"{model.name}: new, no baseline at {against.ref} "
                         f"({against.new[model.name][0]}): its regression checks are skipped, "
                         "its budgets still apply")
        for check in model.checks.values():
            rows.append(_row(model, check, evaluation, record, baseline is not None, strict,
                             against))
    if baseline is not None:
        from .. import __version__

        names = {m.name for m in budget.models}
        gone = (f"in the budget file at {against.ref}, no longer in it" if against else
                "in the baseline, no longer in the budget file")
        for name in baseline.models:
            if name not in names:
                rows.append(Row(name, "-", None, None, None, None, "", "", "removed", (), gone, 0))

        if baseline.tool_version != __version__:
            notes.append(f"the baseline was written by cnncost {baseline.tool_version}, this is "
                         f"{__version__}; counting rules may differ")
    return GateResult(budget.file, (baseline.file or None) if baseline else None,
                      baseline.git_commit if baseline else None, rows, notes, strict,
                      against.ref if against else None, against.label if against else None)


def _changes(model: Model, record: Any, since: str) -> list[str]:
    out = []
    if not same_spec(record.spec, model.spec_ref):  # only --against compares these
        out.append(f"{model.name}: spec is {model.spec_ref}, was {record.spec} "
                   f"{since.replace('since', 'at', 1)}")
    elif record.spec_sha256 is not None and spec_sha256(model.spec) != record.spec_sha256:
        out.append(f"{model.name}: spec {model.spec} changed {since}")
    changed = [f"{key} {record.settings.get(key)!r} -> {value!r}"
               for key, value in json_safe(model.settings).items()
               if record.settings.get(key) != value]
    if changed:
        out.append(f"{model.name}: settings changed {since}: {', '.join(changed)}")
    return out


def _row(model: Model, check: Check, evaluation: Evaluation, record: Any, have_baseline: bool,
         strict: bool, against: RefBaseline | None = None) -> Row:
    metric = check.metric
    info = METRICS[metric]
    lower = info.better == "lower"
    value = evaluation.values.get(metric)
    base = record.metrics.get(metric) if record is not None else None
    line = (check.budget or check.tolerance).line  # type: ignore[union-attr]
    note = ""
    comparable = base
    if metric in MEASURED and base is not None and value is not None and \
            record.env != json_safe(evaluation.env):
        comparable = None
        note = "measured in a different environment than the baseline: " + \
               _env_diff(record.env or {}, json_safe(evaluation.env) or {})
    delta = value - base if value is not None and base is not None else None
    delta_pct = float(Fraction(delta) / Fraction(base)) if delta is not None and base else None
    findings: list[Finding] = []
    where = f"{model.name}: {metric}"

    def found(level: str, message: str, at: int) -> None:
        findings.append(Finding("error" if level == "error" or strict else "warn", message, at))

    if value is None:
        note = evaluation.missing or "not measured (--no-measure, or measuring is off for this run)"
    elif against is not None and metric in MEASURED and base is None and record is not None \
            and not against.baseline.file:
        note = (f"--against {against.ref} recomputes analytic metrics only; measured ones come "
                "from a stored baseline (--baseline FILE), and none was given")
    else:
        shown = fmt_value(value, info.kind)
        budget = check.budget
        if budget is not None and budget.level != "off":
            over = value > budget.limit if lower else value < budget.limit
            if over:
                found(budget.level, f"{where} is {shown}, over the budget {budget.text}"
                      if lower else f"{where} is {shown}, under the budget {budget.text}",
                      budget.line)
        tol = check.tolerance
        if tol is not None and tol.level != "off" and comparable is not None:
            worse = Fraction(value - comparable) if lower else Fraction(comparable - value)
            base_abs = Fraction(comparable)
            if (tol.relative is not None and worse > tol.relative * base_abs) or (
                    tol.absolute is not None and worse > tol.absolute):
                found(tol.level, f"{where} {'grew' if lower else 'fell'} from "
                      f"{fmt_value(comparable, info.kind)} to {shown} "
                      f"({fmt_delta(delta, info.kind)}, {fmt_percent(delta_pct)}), more than the "
                      f"allowed {tol.text}", tol.line)
    status = _status(findings, value, base, comparable, lower, note, check,
                     record is None and have_baseline)
    tol = check.tolerance
    reason, warn = ("", True)  # why a model has no baseline at REF; whether that warns
    if against is not None and record is None:
        reason, warn = against.new.get(model.name, (reason, warn))
    if status == "new" and have_baseline and tol is not None and tol.level != "off" and warn:
        # Fail closed: a model renamed in the budget file, or a baseline that lost it,
        # must not pass its regression checks silently. A warning; --strict fails it.
        if reason and against is not None:
            found("warn", f"{where}: no baseline at {against.ref} ({reason}), so its "
                  f"regression tolerance {tol.text} was not checked", tol.line)
        else:
            found("warn", f"{where}: not in the baseline, so its regression tolerance "
                  f"{tol.text} was not checked (after review, record it with `cnncost baseline "
                  "update`)", tol.line)
        if strict:
            status = "fail"
    if status == "new" and not note:
        if reason and against is not None:
            note = f"no baseline at {against.ref}: {reason}"
        else:
            note = "not in the baseline" if record is None else "metric not in the baseline"
    elif status == "skipped" and not note:
        note = "every check of this metric is off"
    return Row(model.name, metric, base, value, delta, delta_pct,
               check.budget.text if check.budget else "",
               check.tolerance.text if check.tolerance else "", status, tuple(findings), note, line)


def _status(findings: list, value: Any, base: Any, comparable: Any, lower: bool, note: str,
            check: Check, new_model: bool) -> str:
    levels = {f.level for f in findings}
    if "error" in levels:
        return "fail"
    if "warn" in levels:
        return "warn"
    if value is None or note:
        return "skipped"
    parts = [p for p in (check.budget, check.tolerance) if p is not None]
    if all(p.level == "off" for p in parts):
        return "skipped"
    if new_model or (base is None and check.tolerance is not None):
        return "new"
    if comparable is not None and (value < comparable if lower else value > comparable):
        return "improved"
    return "pass"


def _env_diff(old: dict, new: dict) -> str:
    keys = sorted(k for k in {*old, *new} if old.get(k) != new.get(k))
    return ", ".join(f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in keys[:4]) + (
        f" (and {len(keys) - 4} more)" if len(keys) > 4 else "")


# The table every report format prints (cnncost.gate.report), and the verdict line.
COLUMNS = ("model", "metric", "baseline", "current", "delta", "delta %", "budget", "tolerance",
           "status")


def cells(row: Row) -> list[str]:
    """The table cells of one row, as every text format prints them."""
    kind = METRICS[row.metric].kind if row.metric in METRICS else "count"
    return [row.model, row.metric, fmt_value(row.baseline, kind), fmt_value(row.current, kind),
            fmt_delta(row.delta, kind), fmt_percent(row.delta_pct), row.budget or "-",
            row.tolerance or "-", row.status]


def headline(result: GateResult) -> str:
    """'failed: 1 fail, 3 pass' — the verdict and the non-zero counts."""
    counts = result.counts()
    verdict = "failed" if result.exit_code else "passed"
    parts = [f"{n} {status}" for status, n in counts.items() if n]
    return f"{verdict}: {', '.join(parts) or 'nothing to check'}"
