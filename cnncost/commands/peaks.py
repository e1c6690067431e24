"""`cnncost peaks`: the roofs `cnncost bench` measures against, shown, measured and cached.

`--list` prints the datasheet table (no torch needed). Otherwise, for this machine's
device: its datasheet entry if there is one, and the measured peaks in the cache;
`--measure` runs the microbenchmark (a large matmul, a large copy) and caches it.
"""

from __future__ import annotations

import json

import click

from ..cli import EXIT_BAD_INPUT, emit, guarded
from .bench import DTYPES
from .verify import import_torch_or_exit


def _line(p: object) -> str:
    from ..formats.common import si

    return (f"{p.dtype:<5} {si(p.flops_per_s, 'FLOP/s'):>14}  "  # type: ignore[attr-defined]
            f"{si(p.bandwidth_bytes_per_s, 'B/s'):>11}  "  # type: ignore[attr-defined]
            f"ridge {p.ridge:6.1f} FLOP/B  {p.source}: {p.reference}")  # type: ignore[attr-defined]


def _known_table(fmt: str) -> str:
    from ..pytorch.peaks import KNOWN_DEVICES, PEAK_DTYPES

    if fmt == "json":
        return json.dumps([d._asdict() for d in KNOWN_DEVICES], indent=2) + "\n"
    lines = ["dense peaks in TFLOP/s (no structured sparsity), bandwidth in GB/s; matched "
             "against the CUDA device name", "",
             f"{'device':<24}" + "".join(f"{d:>8}" for d in PEAK_DTYPES) + f"{'GB/s':>8}  source"]
    for d in KNOWN_DEVICES:
        cells = "".join(f"{d.tflops[t]:>8g}" if t in d.tflops else f"{'-':>8}" for t in PEAK_DTYPES)
        lines.append(f"{d.name:<24}{cells}{d.bandwidth_gb_s:>8g}  {d.reference}")
    return "\n".join(lines) + "\n"


@click.command()
@click.option("--device", type=click.Choice(("auto", "cpu", "cuda")), default="auto",
              show_default=True)
@click.option("--dtype", "dtypes", type=click.Choice(DTYPES), multiple=True,
              help="Precision(s) to show or measure (repeatable; default fp32).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads (CPU peaks depend on them).")
@click.option("--measure", is_flag=True, help="Run the microbenchmark now and cache the result.")
@click.option("--list", "list_", is_flag=True, help="Print the datasheet table and exit.")
@click.option("--format", "fmt", type=click.Choice(("table", "json")), default="table",
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
        emit(_known_table(fmt), output)
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
    if fmt == "json":
        emit(json.dumps([{**f, "table": f["table"] and f["table"].to_dict(),
                          "measured": f["measured"] and f["measured"].to_dict()} for f in found],
                        indent=2) + "\n", output)
        return
    lines = [f"device: {found[0]['device_name']}", f"cache: {lib.cache_file()}"]
    for f in found:
        lines.append(_line(f["table"]) if f["table"] else
                     f"{f['dtype']:<5} table: not listed (cnncost peaks --list)")
        lines.append(_line(f["measured"]) if f["measured"] else
                     f"{f['dtype']:<5} measured: none cached (run cnncost peaks --measure)")
    emit("\n".join(lines) + "\n", output)
