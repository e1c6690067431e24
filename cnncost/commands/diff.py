"""`cnncost diff A B`: the layers added, removed or changed from spec A to spec B.

Thin: analyzes both specs (the same --input/--batch/--dtype/--convention; --set and
--variant for both, or --set-a/--set-b and --variant-a/--variant-b for one side, so
that one spec can be diffed against itself at another width), calls
:func:`cnncost.comparison.diff.diff` and renders with :mod:`cnncost.formats.difference`. Exit 0
whether or not the specs differ; 2 if either spec is invalid (every problem of both is
reported).
"""

from __future__ import annotations

import sys

import click

from ..cli import (complete_spec, DTYPES, EXIT_BAD_INPUT, convention_option, emit, guarded,
                   parse_sets, report_errors, spec_options, table_options)
from ..errors import SpecError
from ..formats import formats, render_as


@click.command()
@click.argument("spec_a", shell_complete=complete_spec)
@click.argument("spec_b", shell_complete=complete_spec)
@spec_options
@click.option("--set-a", "sets_a", multiple=True, metavar="NAME=VALUE",
              help="Set a variable of A only (repeatable).")
@click.option("--set-b", "sets_b", multiple=True, metavar="NAME=VALUE",
              help="Set a variable of B only (repeatable).")
@click.option("--variant-a", metavar="NAME", help="Variant of A only.")
@click.option("--variant-b", metavar="NAME", help="Variant of B only.")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--dtype", type=click.Choice(DTYPES), default="fp32", show_default=True)
@convention_option
@click.option("--depth", type=click.IntRange(min=0), default=0,
              help="Compare layers collapsed to this many name levels (0: every layer).")
@click.option("--format", "fmt", type=click.Choice(formats("difference")), default="table",
              show_default=True)
@click.option("-o", "--output", metavar="FILE", help="Write to FILE instead of stdout.")
@guarded
def diff(spec_a: str, spec_b: str, input_: str | None, sets: tuple[str, ...],
         variant: str | None, sets_a: tuple[str, ...], sets_b: tuple[str, ...],
         variant_a: str | None, variant_b: str | None, batch: int, dtype: str,
         convention: str, depth: int, fmt: str, output: str | None) -> None:
    """Layers added, removed or changed from SPEC_A to SPEC_B, with their cost deltas.

    \b
    cnncost diff resnet18 resnet34 --depth 2
    cnncost diff mobilenet_v1 mobilenet_v1 --set-b width=0.5
    """
    from ..api import analyze
    from ..comparison.diff import diff as run

    common = parse_sets(sets)
    results = []
    failed = False
    for spec, own_sets, own_variant in ((spec_a, sets_a, variant_a), (spec_b, sets_b, variant_b)):
        try:
            results.append(analyze(spec, input=input_, batch=batch, dtype=dtype,
                                   set={**common, **parse_sets(own_sets)} or None,
                                   variant=own_variant or variant, convention=convention))
        except SpecError as exc:
            report_errors(exc)
            failed = True
    if failed:
        sys.exit(EXIT_BAD_INPUT)
    options = table_options(fmt, output)
    if fmt == "html":  # the page draws both graphs (grandalf: cnncost[report])
        from ..api import build_graph
        from ..report.layout import require_grandalf

        require_grandalf()
        options["graphs"] = tuple(
            build_graph(spec, input=input_, set={**common, **parse_sets(own)} or None,
                        variant=own_variant or variant)
            for spec, own, own_variant in ((spec_a, sets_a, variant_a),
                                           (spec_b, sets_b, variant_b)))
    emit(render_as("difference", fmt, run(results[0], results[1], depth), **options), output)
