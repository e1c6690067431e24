"""`cnncost report SPEC -o FILE.html`: one self-contained HTML page with the architecture
drawn as a graph, each node coloured by a cost, and the totals and per-stage table.

Thin: builds the graph and its analysis (cnncost.api), renders with
:mod:`cnncost.report.page` (which lays the graph out with grandalf, the optional extra
`cnncost[report]`) and writes the page. Exit 2 on bad input or without grandalf.
"""

from __future__ import annotations

import click

from ..cli import (batch_option, complete_spec, convention_option, dtype_option, emit, guarded,
                   parse_sets, spec_options)


@click.command()
@click.argument("spec", shell_complete=complete_spec)
@spec_options
@batch_option
@dtype_option
@convention_option
@click.option("--color", "metric",
              type=click.Choice(["macs", "params", "activations", "latency"]),
              default="macs", show_default=True,
              help="The cost the nodes are coloured by first (the page switches).")
@click.option("--depth", type=click.IntRange(min=0), default=1, show_default=True,
              help="The view shown first: name levels grouped (1: stages; 0: every layer).")
@click.option("--bench", "bench_file", metavar="FILE",
              help="Also colour by measured time per layer, from `cnncost bench SPEC "
                   "--per-layer --format json -o FILE` (the result at --batch).")
@click.option("-o", "--output", metavar="FILE", help="Write the page to FILE instead of stdout.")
@guarded
def report(spec: str, input_: str | None, sets: tuple[str, ...], variant: str | None,
           batch: int, dtype: str, convention: str, metric: str, depth: int,
           bench_file: str | None, output: str | None) -> None:
    """Write a self-contained HTML page: SPEC's architecture as a graph coloured by cost
    (stages collapsed, expandable to every layer), with its totals and per-stage table.
    Needs grandalf: pip install 'cnncost[report]'."""
    from ..api import analyze, build_graph
    from ..report.layout import require_grandalf
    from ..report.page import render

    require_grandalf()
    overrides = parse_sets(sets) or None
    graph = build_graph(spec, input=input_, set=overrides, variant=variant)
    analysis = analyze(spec, input=input_, batch=batch, dtype=dtype, set=overrides,
                       variant=variant, convention=convention)
    times = None
    if bench_file is not None:
        from ..report.latency import layer_times

        times = layer_times(bench_file, analysis)
    elif metric == "latency":
        raise click.UsageError("--color latency needs --bench FILE (cnncost bench SPEC "
                               "--per-layer --format json -o FILE)")
    emit(render(graph, analysis, metric=metric, depth=depth, times=times,
                times_source=bench_file or ""), output)
