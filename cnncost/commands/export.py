"""`cnncost export`: write SPEC's PyTorch model as a standalone Python file."""

from __future__ import annotations

import click

from ..cli import complete_spec, emit, guarded, spec_options, validate_first
from .verify import import_torch_or_exit


@click.command()
@click.argument("spec", shell_complete=complete_spec)
@spec_options
@click.option("--class-name", metavar="NAME",
              help="Name of the model class (default: from the spec's name, e.g. Resnet50).")
@click.option("-o", "--output", metavar="FILE", help="Write to FILE (e.g. model.py) instead of "
              "stdout.")
@guarded
def export(spec: str, input_: str | None, sets: tuple[str, ...], variant: str | None,
           class_name: str | None, output: str | None) -> None:
    """Write SPEC's PyTorch model as one standalone Python file (needs only torch to run)."""
    overrides = validate_first(spec, input_, sets, variant)
    import_torch_or_exit("export")
    from ..pytorch.builder import BuildError
    from ..errors import Loc, Problem, SpecError
    from ..pytorch.export import ClassNameError
    from ..pytorch.export import export as run

    try:
        source = run(spec, input=input_, set=overrides, variant=variant, name=class_name)
    except ClassNameError as exc:
        raise click.BadParameter(str(exc), param_hint="--class-name") from None
    except BuildError as exc:  # not writable as source; the message is one line
        raise SpecError([Problem(Loc(""), "", f"export: {exc}")]) from None
    emit(source, output)
