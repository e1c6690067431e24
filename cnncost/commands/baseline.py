"""`cnncost baseline save|update`: store the metrics that `cnncost gate` compares against.

The baseline is JSON (format in docs/ci.md) written atomically: schema version, tool
version, git commit, and per model the spec's sha256, the settings and every
analytic metric (plus latency and throughput with their environment when measured here,
or when taken from `cnncost bench` results with --measurements). A baseline that
`cnncost gate` would refuse to read (a count of 2**63 or more) is not written (exit 2).
There is no --against here: `cnncost gate --against REF` needs no stored numbers.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..gate.budget import DEFAULT_FILE, load_budget
from ..cli import check_measurements, guarded, load_measurement_files, measurements_option
from ..errors import Loc, Problem, SpecError, did_you_mean, one_of

BUDGET_OPTION = click.option("--budget", "budget_file", default=DEFAULT_FILE, show_default=True,
                             metavar="FILE", help="The budget file listing the models.")
BASELINE_OPTION = click.option("--baseline", "baseline_file", metavar="FILE",
                               help="Baseline JSON to write (default: the budget file's "
                                    "`baseline:`, else cnncost.baseline.json next to it).")
MEASURE_OPTION = click.option("--measure/--no-measure", default=None,
                              help="Measure latency and throughput for every model / for none "
                                   "(default: where the budget checks them).")


@click.group()
def baseline() -> None:
    """Save or update the baseline that `cnncost gate` compares against."""


def _records(budget, measure, only=(), measurement_files=(), kept: str = "") -> dict:
    """The records of the budget's models (or of `only`); with --measurements, a warning on
    stderr for each model that no bench result matched (`kept`: what happens to it then)."""
    from ..gate.baseline import record
    from ..gate.check import evaluate_models

    measurements = load_measurement_files(measurement_files)
    current = evaluate_models(budget, measure, only, measurements)
    models = {m.name: m for m in budget.models}
    for name, ev in current.items():
        if ev.missing:
            click.echo(f"warning: {name}: {ev.missing}; no measured metrics recorded{kept}",
                       err=True)
    return {name: record(models[name], ev.values, ev.env)
            for name, ev in current.items()}


def _write(path: str, records: dict) -> None:
    from ..gate.baseline import to_json
    from ..safeio import write_output

    text = to_json(records, Path(path).parent, path)  # SpecError: a value it could not read back
    try:
        write_output(path, text)
    except OSError as exc:
        raise SpecError([Problem(Loc(path), "", f"cannot write the baseline: "
                                 f"{exc.strerror or exc}")]) from None
    click.echo(f"wrote {path}: {len(records)} model{'s' * (len(records) != 1)} "
               f"({', '.join(sorted(records))})")


@baseline.command()
@BUDGET_OPTION
@BASELINE_OPTION
@MEASURE_OPTION
@measurements_option
@click.option("--force", is_flag=True, help="Overwrite an existing baseline.")
@guarded
def save(budget_file: str, baseline_file: str | None, measure: bool | None,
         measurement_files: tuple[str, ...], force: bool) -> None:
    """Write a new baseline with the current metrics of every model in the budget file."""
    check_measurements(measurement_files, measure, "--measure/--no-measure")
    budget = load_budget(budget_file)
    path = baseline_file or budget.baseline
    if Path(path).exists() and not force:
        raise SpecError([Problem(Loc(path), "", "baseline exists; use `cnncost baseline update` "
                                 "to refresh it, or --force to overwrite it")])
    _write(path, _records(budget, measure, measurement_files=measurement_files))


@baseline.command()
@BUDGET_OPTION
@BASELINE_OPTION
@MEASURE_OPTION
@measurements_option
@click.option("--model", "only", multiple=True, metavar="NAME",
              help="Update only this model (repeatable); the others keep their stored values.")
@guarded
def update(budget_file: str, baseline_file: str | None, measure: bool | None,
           measurement_files: tuple[str, ...], only: tuple[str, ...]) -> None:
    """Refresh an existing baseline: every model of the budget file (models no longer in it
    are dropped), or only the --model ones. Measured values that are not measured again
    are kept."""
    from ..gate.baseline import load_baseline

    check_measurements(measurement_files, measure, "--measure/--no-measure")
    budget = load_budget(budget_file)
    path = baseline_file or budget.baseline
    if not Path(path).exists():
        raise SpecError([Problem(Loc(path), "", "no baseline to update; create it with "
                                 "`cnncost baseline save`")])
    old = load_baseline(path)
    names = [m.name for m in budget.models]
    unknown = [Problem(Loc(budget.file), "--model", f"unknown model {name!r}"
                       f"{did_you_mean(name, names)} (models: {one_of(names)})")
               for name in only if name not in names]
    if unknown:
        raise SpecError(unknown)
    fresh = _records(budget, measure, only, measurement_files,
                     " (any stored ones are kept)")
    records = {name: r for name, r in old.models.items() if only and name in names}
    for name, new in fresh.items():
        previous = old.models.get(name)
        if new.env is None and previous is not None and previous.env is not None:
            kept = {k: v for k, v in previous.metrics.items() if k not in new.metrics}
            new = new._replace(metrics={**new.metrics, **kept}, env=previous.env)
        records[name] = new
    _write(path, records)
