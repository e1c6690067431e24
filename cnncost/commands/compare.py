"""`cnncost compare`: side-by-side totals of several specs, or of a sweep of one.

Thin: parses the options into a :class:`cnncost.comparison.request.CompareRequest`
and calls :func:`cnncost.comparison.request.execute` (with
:mod:`cnncost.pytorch.measure` for ``--measure``, imported only then, or the bench
results of :mod:`cnncost.gate.benchfile` for ``--measurements FILE``, no torch), then
renders with :mod:`cnncost.formats.comparison` and draws with
:mod:`cnncost.comparison.plot` (``--plot``). A spec that fails is
reported on stderr with its name; the others are still shown; the exit code is then 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from ..cli import (complete_spec, DTYPES, EXIT_BAD_INPUT, check_measurements, check_plot_file,
                   convention_option, emit, guarded, load_measurement_files, measurements_option,
                   is_terminal, parse_sets, spec_options, table_options)
from ..comparison.executors import CONNECT_TIMEOUT, EXECUTORS
from ..formats import formats, render_as


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


@contextmanager
def progress_bar(total: int, enabled: bool) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar on stderr advanced by the callback it yields (None when disabled)."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress("analyzing", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("analyze", total=total)
        yield lambda n: bar.advance(task, n)


@click.command()
@click.argument("specs", nargs=-1, required=True, shell_complete=complete_spec)
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
@click.option("--format", "fmt", type=click.Choice(formats("comparison")), default="table",
              show_default=True)
@click.option("-o", "--output", metavar="FILE", help="Write to FILE instead of stdout.")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Analyze in N processes (for large sweeps).")
@click.option("--executor", type=click.Choice(list(EXECUTORS)), default="local",
              show_default=True,
              help="Where the points are analyzed: " + "; ".join(
                  f"{name}: {engine.summary}" + (f" (pip install 'cnncost[{engine.extra}]')"
                                                  if engine.extra else "")
                  for name, engine in EXECUTORS.items()) + ".")
@click.option("--address", metavar="URL",
              help="The cluster's scheduler for --executor dask, e.g. tcp://host:8786.")
@click.option("--connect-timeout", type=click.FloatRange(min=0, min_open=True),
              default=CONNECT_TIMEOUT, show_default=True, metavar="SECONDS",
              help="How long to try to reach the cluster (--executor dask).")
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
            fmt: str, output: str | None, jobs: int, executor: str, address: str | None,
            connect_timeout: float, progress: bool | None, measure: bool,
            measurement_files: tuple[str, ...], device: str, runs: int, warmup: int,
            plot_file: str | None) -> None:
    """Compare SPECS side by side (params, MACs, FLOPs, memory, depth, ratios).

    \b
    cnncost compare vgg16 resnet50 mobilenet_v2 --sort macs
    cnncost compare mobilenet_v1 --sweep width=0.25,0.5,0.75,1.0 --sweep resolution=128,160,192,224
    """
    from ..comparison.compare import parse_sweep
    from ..comparison.executors import check
    from ..comparison.request import CompareRequest, MeasureRequest, execute

    # Parse and check every option before any work.
    grid = parse_sweep(sweeps)
    check(executor, jobs, address)  # installed, and the options fit it
    overrides = parse_sets(sets)
    clash = sorted(set(overrides) & {n for n, _ in grid})
    if clash:
        raise click.BadParameter(f"{', '.join(clash)} is both set and swept", param_hint="--set")
    check_measurements(measurement_files, measure or None, "--measure")
    measurements = load_measurement_files(measurement_files)
    measurer = get_measurer() if measure else None
    if plot_file:
        check_plot_file(plot_file)
    request = CompareRequest(
        specs=specs, grid=grid, baseline=baseline, sort=sort, reverse=reverse, jobs=jobs,
        executor=executor, address=address, connect_timeout=connect_timeout,
        options={"input": input_, "batch": batch, "dtype": dtype, "set": overrides,
                 "variant": variant, "convention": convention},
        columns=[c.strip() for c in columns.split(",") if c.strip()] if columns else None,
        measure=MeasureRequest(device, runs, warmup) if measure else None)

    def bar(total: int) -> Any:
        shown = progress if progress is not None else total >= 50 and is_terminal(sys.stderr)
        return progress_bar(total, bool(shown))

    done = execute(request, measurer=measurer, measurements=measurements, progress=bar)
    comparison = done.comparison
    for line in done.warnings:
        click.echo(f"warning: {line}", err=True)
    for failure in comparison.failures:
        report_failure(failure)
    if comparison.rows or fmt != "table":
        from ..formats.comparison import footer

        emit(render_as("comparison", fmt, comparison, done.columns,
                       **table_options(fmt, output)), output)
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
