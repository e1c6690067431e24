"""`cnncost verify`: build SPEC in PyTorch and check every analytic number against it.

Exit 0 when every layer and total agrees, 1 on any mismatch (the first divergent layer
is named with both values), 2 on bad input, a missing torch, or a model that does not
fit in the device's free memory.
"""

from __future__ import annotations

import sys

import click

from ..cli import (complete_spec, EXIT_BAD_INPUT, EXIT_FINDINGS, emit, guarded, spec_options, table_options,
                   validate_first)
from ..formats import formats, render_as
from ..pytorch.choices import VERIFY_DEVICES, VERIFY_DTYPES

INSTALL_TORCH = ("cnncost verify needs PyTorch, which is an optional extra: "
                 "pip install 'cnncost[torch]' (or pip install torch; for the CPU build: "
                 "pip install torch --index-url https://download.pytorch.org/whl/cpu)")


def import_torch_or_exit(command: str) -> None:
    """Exit 2 with install instructions when torch is missing."""
    try:
        from ..pytorch import torch_import  # noqa: F401
    except ImportError:
        click.echo(f"error: {INSTALL_TORCH.replace('cnncost verify', f'cnncost {command}')}",
                   err=True)
        sys.exit(EXIT_BAD_INPUT)


@click.command()
@click.argument("spec", shell_complete=complete_spec)
@spec_options
@click.option("--device", type=click.Choice(VERIFY_DEVICES), default="auto",
              show_default=True,
              help="Where to build and run the model; meta checks without allocating memory.")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--dtype", type=click.Choice(VERIFY_DTYPES), default="fp32",
              show_default=True)
@click.option("--runs", type=click.IntRange(min=0), default=20, show_default=True,
              help="Timed forward passes for the latency figure (0: skip timing).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads for PyTorch (default: PyTorch's choice).")
@click.option("--only-mismatches", is_flag=True, help="List only the layers that disagree.")
@click.option("--field-check/--no-field-check", default=True, show_default=True,
              help="Also measure the last feature map's receptive field by gradients (on the "
                   "CPU, float64) and compare it with the analytic one.")
@click.option("--format", "fmt", type=click.Choice(formats("verification")), default="table",
              show_default=True)
@click.option("-o", "--output", metavar="FILE", help="Write to FILE instead of stdout.")
@guarded
def verify(spec: str, input_: str | None, sets: tuple[str, ...], variant: str | None,
           device: str, batch: int, dtype: str, runs: int, threads: int | None,
           only_mismatches: bool, field_check: bool, fmt: str, output: str | None) -> None:
    """Cross-check SPEC against its PyTorch model: shapes, params, buffers, MACs, latency."""
    overrides = validate_first(spec, input_, sets, variant)
    import_torch_or_exit("verify")
    from ..pytorch.torch_import import set_threads
    from ..pytorch.verification import VerifyError, verify as run

    set_threads(threads)
    try:
        result = run(spec, input=input_, batch=batch, dtype=dtype, set=overrides,
                     variant=variant, device=device, latency_runs=runs,
                     field_check=field_check)
    except VerifyError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    emit(render_as("verification", fmt, result, only_mismatches=only_mismatches,
                   **table_options(fmt, output)), output)
    if not result.ok:
        sys.exit(EXIT_FINDINGS)
