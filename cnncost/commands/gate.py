"""`cnncost gate`: check every model of a budget file against its budgets and the baseline.

The baseline is a stored file (``cnncost baseline save``), or with ``--against REF`` the
budget file and specs as they are at git ref REF, analyzed again (analytic metrics; the
measured ones still come from a stored file). Exit 0 when no check at level error
fails, 1 when one does (warnings too with --strict), 2 on bad input: a budget file,
spec or baseline that cannot be read, a baseline saved from another spec than the
budget file's, or a REF that cannot be used. Under GitHub Actions it also prints
::error/::warning annotations at the budget file lines and appends the Markdown report
to the job summary.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ..gate.budget import DEFAULT_FILE, BudgetFile, load_budget
from ..cli import (check_measurements, emit, guarded, load_measurement_files,
                   measurements_option)
from ..errors import SpecError
from ..formats import formats, render_as
from ..gate.report import github_annotations, problem_annotations, render_markdown


def on_github() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def needs_baseline(budget: BudgetFile, metrics: tuple | None = None) -> bool:
    """Whether any active regression check (of one of `metrics`, if given) compares with
    the baseline."""
    return any(check.tolerance is not None and check.tolerance.level != "off"
               and (metrics is None or check.metric in metrics)
               for model in budget.models for check in model.checks.values())


def load_inputs(budget_file: str, baseline_file: str | None, measure: bool | None,
                measurement_files: tuple[str, ...] = (), against: str | None = None):
    """Budget, stored baseline (or None), current metrics (measured ones from the bench
    files `measurement_files` when given) and, with `against`, the baseline recomputed at
    that git ref (a RefBaseline, else None); one SpecError with every problem.

    The stored baseline is read when --baseline names it, when a regression check needs
    it (with --against: a check of a measured metric), or when it exists (without
    --against); a record of it saved from another spec than the budget file's for that
    model is an error.
    """
    from ..gate.against import baseline_at_ref, with_measured
    from ..gate.baseline import foreign_records, load_baseline
    from ..gate.check import evaluate_models
    from ..gate.metrics import MEASURED

    budget = load_budget(budget_file)
    path = baseline_file or budget.baseline
    problems = []
    baseline = at_ref = None
    if against is not None:
        try:
            at_ref = baseline_at_ref(budget, against)
        except SpecError as exc:
            problems.extend(exc.problems)
        wanted = bool(baseline_file) or (needs_baseline(budget, MEASURED)
                                         and Path(path).exists())
    else:
        wanted = bool(baseline_file) or needs_baseline(budget) or Path(path).exists()
    if wanted:
        try:
            baseline = load_baseline(path)
            problems.extend(foreign_records(budget, baseline))
        except SpecError as exc:
            problems.extend(exc.problems)
    try:
        measurements = load_measurement_files(measurement_files)
        current = evaluate_models(budget, measure, measurements=measurements)
    except SpecError as exc:
        problems.extend(exc.problems)
    if problems:
        raise SpecError(problems)
    if at_ref is not None:
        at_ref = with_measured(at_ref, baseline)
    return budget, baseline, current, at_ref


@click.command()
@click.option("--budget", "budget_file", default=DEFAULT_FILE, show_default=True, metavar="FILE",
              help="The budget file.")
@click.option("--against", "against", metavar="REF",
              help="Compare with the budget file and specs as they are at git commit, branch "
                   "or tag REF (e.g. origin/main), analyzed again: no stored numbers. Measured "
                   "metrics still come from the stored baseline.")
@click.option("--baseline", "baseline_file", metavar="FILE",
              help="Baseline JSON (default: the budget file's `baseline:`, else "
                   "cnncost.baseline.json next to it). With --against: only its measured "
                   "metrics are used.")
@click.option("--format", "fmt", type=click.Choice(formats("gate")), default="text",
              show_default=True, help="Report format.")
@click.option("--strict", is_flag=True, help="Treat warnings as failures.")
@click.option("--measure/--no-measure", default=None,
              help="Measure latency and throughput for every model / for none (default: where "
                   "the budget checks them).")
@measurements_option
@click.option("-o", "--output", metavar="FILE", help="Write the report to FILE.")
@guarded
def gate(against: str | None, budget_file: str, baseline_file: str | None, fmt: str,
         strict: bool, measure: bool | None, measurement_files: tuple[str, ...],
         output: str | None) -> None:
    """Fail when a model exceeds its budget or regresses against the baseline (a stored
    file, or with --against REF the specs as they are at git ref REF)."""
    from ..gate.check import compare

    check_measurements(measurement_files, measure, "--measure/--no-measure")
    try:
        budget, baseline, current, at_ref = load_inputs(budget_file, baseline_file, measure,
                                                        measurement_files, against)
    except SpecError as exc:
        if on_github():
            click.echo("\n".join(problem_annotations(exc.problems, against)))
        raise
    result = compare(budget, baseline, current, strict=strict, against=at_ref)
    emit(render_as("gate", fmt, result), output)
    if on_github():
        # workflow commands belong on stdout, unless stdout carries a JSON/Markdown report
        to_stderr = fmt != "text" and output in (None, "-")
        lines = github_annotations(result)
        if lines:
            click.echo("\n".join(lines), err=to_stderr)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            try:
                with open(summary, "a", encoding="utf-8") as handle:
                    handle.write(render_markdown(result) + "\n")
            except OSError as exc:
                click.echo(f"warning: cannot append to GITHUB_STEP_SUMMARY: {exc}", err=True)
    sys.exit(result.exit_code)
