"""`cnncost compare`: side-by-side totals of several specs, or of a sweep of one.

Thin: parses options, calls :mod:`cnncost.compare` (plan, run, table), optionally
:mod:`cnncost.pytorch.measure` (``--measure``, imported only then) or the bench results of
:mod:`cnncost.gate.benchfile` (``--measurements FILE``, no torch), and :mod:`cnncost.comparison.plot`
(``--plot``), and renders with :mod:`cnncost.formats.comparison`. A spec that fails is
reported on stderr with its name; the others are still shown; the exit code is then 2.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from ..cli import (DTYPES, EXIT_BAD_INPUT, FORMAT_NAMES, check_measurements, check_plot_file,
                   convention_option, emit, guarded, load_measurement_files, measurements_option,
                   is_terminal, parse_sets, spec_options, table_options)
from ..errors import SpecError


def get_measurer() -> Any:
    """cnncost.pytorch.measure.measure_latency, imported on demand; exit 2 if it is missing."""
    try:
        from ..pytorch.measure import measure_latency
    except ImportError as exc:
        click.echo(f"error: --measure needs PyTorch, which cannot be imported here ({exc}): "
                   "pip install 'cnncost[torch]' (or pip install torch); compare without "
                   "--measure for the analytic columns", err=True)
        sys.exit(EXIT_BAD_INPUT)
    return measure_latency


def _progress_bar(total: int, enabled: bool) -> Any:
    """A rich progress bar on stderr (a no-op context when disabled)."""
    import contextlib

    if not enabled:
        return contextlib.nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    progress = Progress("analyzing", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=Console(stderr=True), transient=True)
    return progress


@click.command()
@click.argument("specs", nargs=-1, required=True)
@click.option("--sweep", "sweeps", multiple=True, metavar="NAME=V1,V2,...",
              help="Sweep a spec variable over values (repeatable; the grid of all "
                   "combinations is analyzed), e.g. --sweep width=0.5,1.0.")
@spec_options
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True,
              help="Batch size (scales MACs, FLOPs and activation memory).")
@click.option("--dtype", type=click.Choice(DTYPES), default="fp32", show_default=True,
              help="Element type for memory figures (and for --measure).")
@convention_option
@click.option("--baseline", metavar="NAME",
              help="Row that ratios are relative to: a model label or spec name (default: "
                   "the first row).")
@click.option("--sort", metavar="COLUMN", help="Sort rows by a column, e.g. macs, params, "
                                                "peak_activation_bytes, a swept variable.")
@click.option("--reverse", is_flag=True, help="Sort in descending order.")
@click.option("--columns", metavar="A,B,...",
              help="Columns to show, comma-separated (default: all). Names: model, the swept "
                   "variables, params, macs, flops, weight_bytes, peak_activation_bytes, depth, "
                   "params_ratio, macs_ratio, peak_ratio; with --measure or --measurements also "
                   "latency_ms, "
                   "latency_p10_ms, latency_p90_ms, images_per_s, latency_ratio, quality.")
@click.option("--format", "fmt", type=click.Choice(FORMAT_NAMES), default="table",
              show_default=True)
@click.option("-o", "--output", metavar="FILE", help="Write to FILE instead of stdout.")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Analyze in N processes (for large sweeps).")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: for 50+ points when stderr is a terminal).")
@click.option("--measure", is_flag=True,
              help="Also measure latency and throughput with PyTorch (cnncost.pytorch.measure).")
@measurements_option
@click.option("--device", default="auto", show_default=True, help="Device for --measure.")
@click.option("--runs", type=click.IntRange(min=1), default=50, show_default=True,
              help="Timed runs per model for --measure.")
@click.option("--warmup", type=click.IntRange(min=0), default=10, show_default=True,
              help="Untimed warm-up runs per model for --measure.")
@click.option("--plot", "plot_file", metavar="FILE.png",
              help="Also draw MACs vs params (bubble: peak memory), or the sweep as curves "
                   "(needs matplotlib).")
@guarded
def compare(specs: tuple[str, ...], sweeps: tuple[str, ...], input_: str | None,
            sets: tuple[str, ...], variant: str | None, batch: int, dtype: str, convention: str,
            baseline: str | None, sort: str | None, reverse: bool, columns: str | None,
            fmt: str, output: str | None, jobs: int, progress: bool | None, measure: bool,
            measurement_files: tuple[str, ...], device: str, runs: int, warmup: int,
            plot_file: str | None) -> None:
    """Compare SPECS side by side (params, MACs, FLOPs, memory, depth, ratios).

    \b
    cnncost compare vgg16 resnet50 mobilenet_v2 --sort macs
    cnncost compare mobilenet_v1 --sweep width=0.25,0.5,0.75,1.0 --sweep resolution=128,160,192,224
    """
    from ..comparison import compare as lib
    grid = lib.parse_sweep(sweeps)
    overrides = parse_sets(sets)
    clash = sorted(set(overrides) & {n for n, _ in grid})
    if clash:
        raise click.BadParameter(f"{', '.join(clash)} is both set and swept", param_hint="--set")
    check_measurements(measurement_files, measure or None, "--measure")
    measurements = load_measurement_files(measurement_files)
    measurer = get_measurer() if measure else None
    if plot_file:
        check_plot_file(plot_file)
    points, failures = lib.plan(specs, grid)
    options = {"input": input_, "batch": batch, "dtype": dtype, "set": overrides,
               "variant": variant, "convention": convention}
    show_bar = progress if progress is not None else (len(points) >= 50 and is_terminal(sys.stderr))
    with _progress_bar(len(points), bool(show_bar)) as bar:
        task = bar.add_task("analyze", total=len(points)) if bar is not None else None
        outcomes = lib.run(points, options, jobs=jobs,
                           progress=(lambda n: bar.advance(task, n)) if bar is not None else None)
    measured, env, notes = None, None, []
    if measurer is not None:
        busy = busy_note(device)  # before measuring: our own runs must not count as load
        notes += [busy] if busy else []
        measured, env, measure_failures = _measure(measurer, outcomes, options, device, runs,
                                                   warmup)
        failures += measure_failures
        failed = {o.point.label for o in measure_failures}
        outcomes = [o for o in outcomes if o.point.label not in failed]
    if measurements is not None:
        measured, env, lookup_failures = _from_files(measurements, outcomes, options)
        failures += lookup_failures
        failed = {o.point.label for o in lookup_failures}
        outcomes = [o for o in outcomes if o.point.label not in failed]
    settings = {k: v for k, v in options.items() if v not in (None, {})}
    comparison = lib.table(outcomes, baseline=baseline, sort=sort, reverse=reverse,
                           sweep=[n for n, _ in grid], settings=settings, measured=measured,
                           env=env, failures=failures, notes=notes)
    wanted = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    shown = lib.columns_for(comparison, wanted)
    for failure in comparison.failures:
        report_failure(failure)
    if comparison.rows or fmt != "table":
        from ..formats.comparison import footer, render

        emit(render(fmt, comparison, shown, **table_options(fmt, output)), output)
        if fmt == "csv":  # no place for them in the CSV (JSON has "notes" and "quality")
            for line in footer(comparison):
                click.echo(line, err=True)
    if plot_file and comparison.rows:
        from ..comparison.plot import plot

        try:
            plot(comparison, plot_file)
        except (OSError, ValueError) as exc:
            click.echo(f"error: --plot {plot_file}: cannot write: {exc}", err=True)
            sys.exit(EXIT_BAD_INPUT)
    if comparison.failures:
        n = len(comparison.failures)
        total = n + len(comparison.rows)
        click.echo(f"{n} of {total} model{'s' if total != 1 else ''} failed", err=True)
        sys.exit(EXIT_BAD_INPUT)


def report_failure(failure: Any) -> None:
    """Each problem of a failed model on stderr, prefixed with the model's name."""
    label = failure.point.label
    for problem in failure.problems:
        text = str(problem)
        prefix = "" if problem.loc.file == label else f"{label}: "
        click.echo(f"error: {prefix}{text}", err=True)


def busy_note(device: str) -> str | None:
    """`cnncost bench`'s note for a CPU busy with other work (cnncost.quality.cpu_contention),
    when --measure runs on the CPU; None on a GPU or when torch is not loaded (a stand-in
    measurer). compare has no --threads, so the note does not suggest it."""
    from ..quality import cpu_contention

    threads = _cpu_threads(device)
    return cpu_contention(threads, threads_option=None) if threads else None


def _cpu_threads(device: str) -> int | None:
    """PyTorch's CPU thread count if `device` resolves to the CPU, else None."""
    torch = sys.modules.get("torch")  # the measurer imported it; never imported here
    if torch is None or not hasattr(torch, "get_num_threads"):
        return None
    on_cpu = (not torch.cuda.is_available()) if device == "auto" else device.startswith("cpu")
    return torch.get_num_threads() if on_cpu else None


def _from_files(measurements: Any, outcomes: list, options: dict) -> tuple[dict, dict, list]:
    """--measurements: the bench result of every analyzed point that has one (label ->
    BenchLatency), the environment of the first, and the points whose results conflict.
    One warning line on stderr names the points without a result, one more says when the
    results come from different environments."""
    from ..gate.benchfile import key_for

    measured: dict[str, Any] = {}
    unmatched, failures = [], []
    for outcome in outcomes:
        if outcome.problems:
            continue
        key = key_for(outcome.point.spec, name=outcome.name, input_shape=outcome.input_shape,
                      vars=outcome.vars or {}, variant=options["variant"],
                      batch=options["batch"], dtype=options["dtype"])
        try:
            found = measurements.lookup(key)
        except SpecError as exc:
            failures.append(outcome._replace(problems=tuple(exc.problems)))
            continue
        if found is None:
            unmatched.append(outcome.point.label)
        else:
            measured[outcome.point.label] = found
    if unmatched:
        click.echo(f"warning: --measurements: no bench result matched {', '.join(unmatched)} "
                   f"(batch {options['batch']}, dtype {options['dtype']}; a result matches the "
                   "same spec file, input, vars, variant, batch and dtype): their measured "
                   "cells are empty", err=True)
    envs = [lat.env for lat in measured.values()]
    differ = sorted({k for env in envs for k in {*env, *envs[0]} if env.get(k) != envs[0].get(k)})
    if differ:
        click.echo(f"warning: --measurements: the results were measured in different "
                   f"environments ({', '.join(differ)} differ); the header shows the first's",
                   err=True)
    return measured, dict(envs[0]) if envs else {}, failures


def _measure(measurer: Any, outcomes: list, options: dict, device: str, runs: int,
             warmup: int) -> tuple[dict, dict | None, list]:
    """Latency of every analyzed point: label -> Latency, the env of the first, failures."""
    from ..comparison.compare import Outcome
    from ..errors import Loc, Problem

    measured: dict[str, Any] = {}
    env = None
    failures = []
    for outcome in outcomes:
        if outcome.problems:
            continue
        point = outcome.point
        overrides = {**options["set"], **dict(point.settings)}
        try:
            latency = measurer(point.spec, input=options["input"], batch=options["batch"],
                               dtype=options["dtype"], device=device, set=overrides or None,
                               variant=options["variant"], runs=runs, warmup=warmup)
        except SpecError as exc:
            failures.append(outcome._replace(problems=tuple(exc.problems)))
            continue
        except Exception as exc:  # noqa: BLE001 - a measurement failure names its model
            failures.append(Outcome(point, outcome.name, None, (
                Problem(Loc(""), "--measure", f"{type(exc).__name__}: {exc}"),)))
            continue
        measured[point.label] = latency
        if env is None:
            env = dict(latency.env)
    return measured, env or {}, failures
