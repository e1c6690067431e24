"""`cnncost gate`: check every model of a budget file against its budgets and the baseline.

Exit 0 when no check at level error fails, 1 when one does (warnings too with
--strict), 2 on bad input: a budget file, spec or baseline that cannot be read. Under
GitHub Actions it also prints ::error/::warning annotations at the budget file lines
and appends the Markdown report to the job summary.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ..budget import DEFAULT_FILE, BudgetFile, load_budget
from ..cli import (check_measurements, emit, guarded, load_measurement_files,
                   measurements_option)
from ..errors import SpecError
from ..gate_report import REPORTS, annotations, problem_annotations, render_markdown


def on_github() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def needs_baseline(budget: BudgetFile) -> bool:
    """Whether any active regression check compares with the baseline."""
    return any(check.tolerance is not None and check.tolerance.level != "off"
               for model in budget.models for check in model.checks.values())


def load_inputs(budget_file: str, baseline_file: str | None, measure: bool | None,
                measurement_files: tuple[str, ...] = ()):
    """Budget, baseline (or None) and current metrics (measured ones from the bench files
    `measurement_files` when given); one SpecError with every problem."""
    from ..baseline import load_baseline
    from ..gate import evaluate_models

    budget = load_budget(budget_file)
    path = baseline_file or budget.baseline
    problems = []
    baseline = None
    if baseline_file or needs_baseline(budget) or Path(path).exists():
        try:
            baseline = load_baseline(path)
        except SpecError as exc:
            problems.extend(exc.problems)
    try:
        measurements = load_measurement_files(measurement_files)
        current = evaluate_models(budget, measure, measurements=measurements)
    except SpecError as exc:
        problems.extend(exc.problems)
    if problems:
        raise SpecError(problems)
    return budget, baseline, current


@click.command()
@click.option("--budget", "budget_file", default=DEFAULT_FILE, show_default=True, metavar="FILE",
              help="The budget file.")
@click.option("--baseline", "baseline_file", metavar="FILE",
              help="Baseline JSON (default: the budget file's `baseline:`, else "
                   "cnncost.baseline.json next to it).")
@click.option("--format", "fmt", type=click.Choice(tuple(REPORTS)), default="text",
              show_default=True, help="Report format.")
@click.option("--strict", is_flag=True, help="Treat warnings as failures.")
@click.option("--measure/--no-measure", default=None,
              help="Measure latency and throughput for every model / for none (default: where "
                   "the budget checks them).")
@measurements_option
@click.option("-o", "--output", metavar="FILE", help="Write the report to FILE.")
@guarded
def gate(budget_file: str, baseline_file: str | None, fmt: str, strict: bool,
         measure: bool | None, measurement_files: tuple[str, ...], output: str | None) -> None:
    """Fail when a model exceeds its budget or regresses against the baseline."""
    from ..gate import compare

    check_measurements(measurement_files, measure, "--measure/--no-measure")
    try:
        budget, baseline, current = load_inputs(budget_file, baseline_file, measure,
                                                measurement_files)
    except SpecError as exc:
        if on_github():
            click.echo("\n".join(problem_annotations(exc.problems)))
        raise
    result = compare(budget, baseline, current, strict=strict)
    emit(REPORTS[fmt](result), output)
    if on_github():
        # workflow commands belong on stdout, unless stdout carries a JSON/Markdown report
        to_stderr = fmt != "text" and output in (None, "-")
        lines = annotations(result)
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
