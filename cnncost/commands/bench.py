"""`cnncost bench`: measure SPEC's latency per batch size, and per layer on the roofline.

Exit 0 when the measurement ran, 2 on bad input: an invalid spec, a missing torch, a
device or dtype this machine cannot run, not enough memory, a failed torch.compile.
Progress goes to stderr (a rich bar on a terminal); the report to stdout or -o FILE.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import click

from ..cli import (complete_spec, EXIT_BAD_INPUT, check_plot_file, emit, guarded, is_terminal, spec_options,
                   table_options, validate_first)
from ..formats import formats, render_as
from ..pytorch.choices import DEVICES, DTYPES, PEAK_CHOICES
from .verify import import_torch_or_exit



def parse_batches(text: str) -> tuple[int, ...]:
    """'1,8,32' -> (1, 8, 32); click.BadParameter on anything else."""
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise click.BadParameter(f"expected batch sizes like 1,8,32 (whole numbers >= 1), "
                                     f"received {text!r}", param_hint="--batch")
        if int(part) not in out:
            out.append(int(part))
    return tuple(out)


REFRESH_S = 0.25  # redraw the progress bar at most this often


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Any]:
    """A callback (what, done, total) drawing one rich bar per phase on stderr, or None.

    The bar has no refresh thread (it would compete with the measured code for the
    interpreter); it is redrawn from the callback, which runs between timed calls, at
    most every REFRESH_S seconds.
    """
    if not enabled:
        yield None
        return
    import time

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True,
                  auto_refresh=False) as bar:
        tasks: dict[str, Any] = {}
        drawn = [0.0]

        def update(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total)
            bar.update(tasks[what], completed=done, total=max(total, done))
            now = time.perf_counter()
            if now - drawn[0] >= REFRESH_S or done >= total:
                bar.refresh()
                drawn[0] = now

        yield update


@click.command()
@click.argument("spec", shell_complete=complete_spec)
@spec_options
@click.option("--device", type=click.Choice(DEVICES), default="auto",
              show_default=True, help="Where to run: auto is cuda when a GPU is present.")
@click.option("--dtype", type=click.Choice(DTYPES), default="fp32", show_default=True,
              help="Precision; tf32 is fp32 storage with TF32 tensor-core math (CUDA only). "
                   "fp32 turns TF32 off, which PyTorch leaves on for cuDNN convolutions.")
@click.option("--batch", "batch_text", default="1", show_default=True, metavar="N[,N...]",
              help="Batch sizes, e.g. 1,8,32: one measurement each.")
@click.option("--channels-last", is_flag=True, help="Model and input in channels-last layout.")
@click.option("--compile", "compile_", is_flag=True,
              help="Run torch.compile(model) (its first call, timed apart, includes compiling).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads for PyTorch (default: PyTorch's choice). Recorded either way.")
@click.option("--per-layer", is_flag=True,
              help="Also time every layer (hooks) and place it on the roofline.")
@click.option("--cross-check", is_flag=True,
              help="Also time the model with torch.utils.benchmark (an independent timer) and "
                   "report whether the medians agree within 5%.")
@click.option("--runs", type=click.IntRange(min=1), default=50, show_default=True,
              help="Timed forward passes per batch size (fewer if --budget runs out).")
@click.option("--warmup", type=click.IntRange(min=0), default=10, show_default=True,
              help="Untimed warm-up passes (and at least --warmup-s seconds).")
@click.option("--warmup-s", type=click.FloatRange(min=0), default=0.5, show_default=True,
              help="Minimum warm-up time in seconds.")
@click.option("--time-budget", "budget_s", type=click.FloatRange(min=0, min_open=True),
              default=5.0, show_default=True,
              help="Seconds per batch size for the timed runs (and, separately, for warm-up, "
                   "per-layer runs and half of it for --cross-check), at most.")
@click.option("--peaks", type=click.Choice(PEAK_CHOICES), default="auto",
              show_default=True,
              help="The device's peak FLOP/s and bandwidth: auto uses a cached measurement, "
                   "else the datasheet table, else measures now (and caches); see cnncost peaks.")
@click.option("--top", type=click.IntRange(min=1), default=None,
              help="Show only the N slowest layers (implies --per-layer).")
@click.option("--plot", "plot_file", metavar="FILE.png",
              help="Draw the per-layer roofline to FILE.png (needs matplotlib; implies "
                   "--per-layer).")
@click.option("--progress/--no-progress", default=None,
              help="Show a progress bar on stderr (default: when stderr is a terminal).")
@click.option("--format", "fmt", type=click.Choice(formats("bench")),
              default="table", show_default=True)
@click.option("-o", "--output", metavar="FILE", help="Write to FILE instead of stdout.")
@guarded
def bench(spec: str, input_: str | None, sets: tuple[str, ...], variant: str | None, device: str,
          dtype: str, batch_text: str, channels_last: bool, compile_: bool, threads: int | None,
          per_layer: bool, cross_check: bool, runs: int, warmup: int, warmup_s: float,
          budget_s: float, peaks: str, top: int | None, plot_file: str | None,
          progress: bool | None, fmt: str, output: str | None) -> None:
    """Measure SPEC's latency per batch size; with --per-layer, each layer on the roofline.

    \b
    cnncost bench resnet50 --batch 1,8,32 --cross-check
    cnncost bench mobilenet_v2 --device cuda --dtype fp16 --per-layer --plot roofline.png
    """
    request = BenchRequest(
        spec=spec, fmt=fmt, top=top, output=output, plot_file=plot_file, progress=progress,
        options=dict(input=input_, variant=variant, batches=parse_batches(batch_text),
                     device=device, dtype=dtype, channels_last=channels_last,
                     compile=compile_, threads=threads,
                     per_layer=per_layer or bool(plot_file) or top is not None,
                     cross_check=cross_check, runs=runs, warmup=warmup, warmup_s=warmup_s,
                     budget_s=budget_s, peaks=peaks))
    if plot_file:
        check_plot_file(plot_file)
    request.options["set"] = validate_first(spec, input_, sets, variant)
    import_torch_or_exit("bench")
    execute(request)


class BenchRequest(NamedTuple):
    """A parsed `cnncost bench` command line: what to measure (the keyword arguments of
    cnncost.pytorch.bench.bench) and how to show it."""

    spec: str
    options: dict[str, Any]
    fmt: str = "table"
    top: int | None = None
    output: str | None = None
    plot_file: str | None = None
    progress: bool | None = None  # None: a bar when stderr is a terminal


def execute(request: BenchRequest) -> None:
    """Measure, render, and draw the roofline if asked; exit 2 on a BenchError."""
    from ..pytorch.bench import BenchError, bench as run

    show = request.progress if request.progress is not None else is_terminal(sys.stderr)
    try:
        with progress_bar(bool(show)) as update:
            result = run(request.spec, **request.options, progress=update)
    except BenchError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    fmt, output = request.fmt, request.output
    emit(render_as("bench", fmt, result, top=request.top, **table_options(fmt, output)), output)
    if request.plot_file:
        from ..comparison.plot import roofline

        try:
            roofline(result, request.plot_file)
        except (OSError, ValueError) as exc:
            click.echo(f"error: --plot {request.plot_file}: cannot write: {exc}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        click.echo(f"wrote {request.plot_file}", err=True)
