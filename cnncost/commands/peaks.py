"""`cnncost peaks`: the roofs `cnncost bench` measures against, shown, measured and cached.

`--list` prints the datasheet table (no torch needed). Otherwise, for this machine's
device: its datasheet entry if there is one, and the measured peaks in the cache;
`--measure` runs the microbenchmark (a large matmul, a large copy) and caches it.
"""

from __future__ import annotations

import click

from ..cli import EXIT_BAD_INPUT, emit, guarded
from ..formats import formats, render_as
from ..formats.peaks import PeaksReport
from ..pytorch.choices import DEVICES, DTYPES
from .verify import import_torch_or_exit


@click.command()
@click.option("--device", type=click.Choice(DEVICES), default="auto",
              show_default=True)
@click.option("--dtype", "dtypes", type=click.Choice(DTYPES), multiple=True,
              help="Precision(s) to show or measure (repeatable; default fp32).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads (CPU peaks depend on them).")
@click.option("--measure", is_flag=True, help="Run the microbenchmark now and cache the result.")
@click.option("--list", "list_", is_flag=True, help="Print the datasheet table and exit.")
@click.option("--format", "fmt", type=click.Choice(formats("peaks")), default="table",
              show_default=True)
@click.option("-o", "--output", metavar="FILE", help="Write to FILE instead of stdout.")
@guarded
def peaks(device: str, dtypes: tuple[str, ...], threads: int | None, measure: bool, list_: bool,
          fmt: str, output: str | None) -> None:
    """Peak FLOP/s and memory bandwidth of this machine's device (the roofline's roofs).

    \b
    cnncost peaks --list
    cnncost peaks --device cuda --dtype fp16 --dtype fp32 --measure
    """
    if list_:
        from ..pytorch.peaks import KNOWN_DEVICES, PEAK_DTYPES

        emit(render_as("datasheet", fmt, KNOWN_DEVICES, PEAK_DTYPES), output)
        return
    import_torch_or_exit("peaks")
    import sys

    from ..pytorch import peaks as lib
    from ..pytorch.bench import measure_and_cache, peaks_key
    from ..pytorch.measure import resolve_target
    from ..pytorch.torch_import import set_threads

    set_threads(threads)
    found = []
    for dtype in dtypes or ("fp32",):
        try:
            where, _ = resolve_target(device, dtype)
        except ValueError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        name, key = peaks_key(where, dtype)
        measured = lib.cached(key)
        if measure:
            measured, failed = measure_and_cache(where, dtype)
            if failed is not None:
                click.echo(f"warning: not cached ({lib.cache_file()}: "
                           f"{failed.strerror or failed}); bench will measure again", err=True)
        found.append({"device_name": name, "dtype": dtype, "table": lib.lookup(name, dtype),
                      "measured": measured, "cache_key": key})
    emit(render_as("peaks", fmt, PeaksReport(str(lib.cache_file()), found)), output)
