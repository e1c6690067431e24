"""Command-line interface: a thin layer that parses options and calls the library.

Exit codes are a contract: 0 success, 1 findings (reserved for verify/gate),
2 bad input or usage. Spec errors print one line each on stderr
(``file:line: layer.path: message``), never a traceback.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any
from collections.abc import Callable

import click

from . import __version__
from .cost.analysis import DTYPE_BYTES
from .cost.conventions import PROFILES
from .cost.ops import fmt_shape
from .errors import SpecError, count
from .formats import formats

EXIT_OK, EXIT_FINDINGS, EXIT_BAD_INPUT = 0, 1, 2
# Element types of memory figures: the analysis's table of bytes per element.
DTYPES = tuple(DTYPE_BYTES)


def report_errors(exc: SpecError) -> None:
    """Print every problem on its own line to stderr, then a count."""
    for problem in exc.problems:
        click.echo(f"error: {problem}", err=True)
    n = len(exc.problems)
    if n > 1:
        click.echo(f"{n} errors", err=True)


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn SpecError into exit 2 and unexpected crashes into a short message."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(*args, **kwargs)
            if sys.stdout is not None:
                sys.stdout.flush()  # a reader that left shows here, inside the handler
            return result
        except SpecError as exc:
            report_errors(exc)
            sys.exit(EXIT_BAD_INPUT)
        except (click.exceptions.Exit, click.ClickException, SystemExit, KeyboardInterrupt):
            raise
        except BrokenPipeError:  # e.g. `cnncost specs | head`: the reader left; not an error
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # so the flush at exit stays quiet
            sys.exit(EXIT_OK)
        except Exception as exc:  # noqa: BLE001 - last line of defence, see below
            if os.environ.get("CNNCOST_DEBUG"):
                raise
            click.echo(f"internal error: {type(exc).__name__}: {exc}\n"
                       "This is a bug in cnncost, not in your spec; please report it "
                       "(set CNNCOST_DEBUG=1 to see the traceback).", err=True)
            sys.exit(3)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def parse_sets(values: tuple[str, ...]) -> dict[str, Any]:
    from .api import parse_value

    out = {}
    for item in values:
        if "=" not in item:
            raise click.BadParameter(f"expected NAME=VALUE, received {item!r}", param_hint="--set")
        key, _, value = item.partition("=")
        try:
            out[key.strip()] = parse_value(value.strip())
        except ValueError as exc:
            raise click.BadParameter(f"{key.strip()}: {exc}", param_hint="--set") from None
    return out


def validate_first(spec: str, input_: str | None, sets: tuple[str, ...],
                   variant: str | None) -> dict[str, Any]:
    """Parse and validate SPEC before a command imports torch (seconds), so that a broken
    spec is reported in milliseconds; returns the parsed --set values."""
    from .api import build_graph

    overrides = parse_sets(sets)
    build_graph(spec, input=input_, set=overrides or None, variant=variant)
    return overrides


def table_options(fmt: str, output: str | None) -> dict:
    """Rendering options of a table: color and the terminal's width when it goes to one."""
    if fmt != "table":
        return {}
    to_tty = output is None and is_terminal(sys.stdout)
    return {"color": to_tty, "width": shutil.get_terminal_size((80, 24)).columns if to_tty else 0}


def is_terminal(stream: Any) -> bool:
    """`stream` (sys.stdout, sys.stderr) is a terminal; False when it is closed (`>&-`
    leaves it None) or cannot say."""
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


PLOT_FORMATS = (".png", ".svg", ".pdf", ".jpg", ".jpeg")


def check_plot_file(path: str) -> None:
    """Before any work: a --plot file that can be written, and matplotlib to draw it
    (click usage error, or exit 2 with install instructions)."""
    target = Path(path)
    if target.suffix.lower() not in PLOT_FORMATS:
        raise click.BadParameter(f"expected a file name ending in {', '.join(PLOT_FORMATS)}, "
                                 f"received {path!r}", param_hint="--plot")
    if not target.parent.is_dir():
        raise click.BadParameter(f"the folder {str(target.parent)!r} does not exist",
                                 param_hint="--plot")
    from .comparison.plot import PlotUnavailable, _pyplot

    try:
        _pyplot()
    except PlotUnavailable as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)


def emit(text: str, output: str | None) -> None:
    """Write to -o FILE or stdout.

    A regular file is replaced atomically; /dev/null, /dev/stdout or a FIFO is written
    in place, never replaced (cnncost.safeio.write_output). Closed stdout is exit 2
    with one line, not a traceback.
    """
    if output is None or output == "-":
        if sys.stdout is None:
            click.echo("error: standard output is closed; write to a file with -o FILE",
                       err=True)
            sys.exit(EXIT_BAD_INPUT)
        click.echo(text, nl=False)
        return
    from .safeio import write_output

    try:
        write_output(output, text)
    except OSError as exc:
        click.echo(f"error: -o {output}: cannot write: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)


# Commands that live in their own modules, imported only when invoked (so that
# `cnncost analyze` never pays for what `verify` or `gate` import). One line each:
# command name -> "module:attribute".
LAZY_COMMANDS: dict[str, str] = {
    "verify": "cnncost.commands.verify:verify",
    "bench": "cnncost.commands.bench:bench",
    "peaks": "cnncost.commands.peaks:peaks",
    "export": "cnncost.commands.export:export",
    "gate": "cnncost.commands.gate:gate",
    "baseline": "cnncost.commands.baseline:baseline",
    "compare": "cnncost.commands.compare:compare",
    "diff": "cnncost.commands.diff:diff",
    "report": "cnncost.commands.report:report",
    "import": "cnncost.commands.import_model:import_model",
}


class LazyGroup(click.Group):
    """A click group whose commands from LAZY_COMMANDS are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = LAZY_COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        import importlib

        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cnncost")
def main() -> None:
    """cnncost: the cost of a CNN before you train it.

    Shapes, parameters, MACs/FLOPs and memory per layer, computed analytically
    from a YAML spec (see docs/spec.md). SPEC is a file path or the name of a
    bundled spec (`cnncost specs` lists them).
    """


def complete_spec(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Shell completion of a SPEC: bundled spec names, then YAML files and folders."""
    from click.shell_completion import CompletionItem

    from .api import spec_names

    try:
        names = [CompletionItem(n) for n in spec_names() if n.startswith(incomplete)]
    except Exception:  # noqa: BLE001 - completion must never print a traceback
        names = []
    return [*names, CompletionItem(incomplete, type="file")]


def complete_variant(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Shell completion of --variant: the variants of the SPEC already on the line."""
    from click.shell_completion import CompletionItem

    from .api import load

    # while an option waits for its value click leaves the positionals in ctx.args
    spec = (ctx.params.get("spec") or (ctx.params.get("specs") or [None])[0]
            or next((a for a in ctx.args if not a.startswith("-")), None))
    if not spec:
        return []
    try:
        variants = load(spec).variants
    except Exception:  # noqa: BLE001 - an invalid or missing spec completes nothing
        return []
    return [CompletionItem(v) for v in variants if v.startswith(incomplete)]


SPEC_OPTIONS = [
    click.option("--input", "input_", metavar="CxHxW", help="Override the input shape, e.g. 3x160x160."),
    click.option("--set", "sets", multiple=True, metavar="NAME=VALUE",
                 help="Set a spec variable (repeatable), e.g. --set width=0.5."),
    click.option("--variant", metavar="NAME", help="Use a named variant of the spec.",
                 shell_complete=complete_variant),
]


def spec_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(SPEC_OPTIONS):
        fn = option(fn)
    return fn


# Names of the counting profiles, from their registry.
CONVENTIONS = tuple(PROFILES)

convention_option = click.option(
    "--convention", type=click.Choice(CONVENTIONS), default="torchvision", show_default=True,
    help="Counting profile for MACs and params: torchvision (conv/linear MACs, no bias), "
         "fvcore, ptflops, thop or keras (params with BN moving statistics). See "
         "docs/conventions.md.")


measurements_option = click.option(
    "--measurements", "measurement_files", multiple=True, metavar="FILE",
    help="Take measured latency and throughput from the results of `cnncost bench --format "
         "json` in FILE instead of measuring here (repeatable; needs no torch). A result is "
         "used when it is of the same spec file, input, vars, variant, batch and dtype.")


def check_measurements(files: tuple[str, ...], measure: bool | None, option: str) -> None:
    """--measurements excludes measuring here: a usage error (exit 2) with `option` given."""
    if files and measure is not None:
        raise click.UsageError(f"--measurements and {option} exclude each other: with "
                               "--measurements the measured values come from the bench files")


def load_measurement_files(files: tuple[str, ...]) -> Any:
    """The bench results of --measurements FILE... (cnncost.gate.benchfile), or None without any."""
    if not files:
        return None
    from .gate.benchfile import load_measurements

    return load_measurements(files)


# --batch and --dtype of the commands that analyze one spec (analyze, report)
batch_option = click.option(
    "--batch", type=click.IntRange(min=1), default=1, show_default=True,
    help="Batch size (scales MACs, FLOPs and activation memory).")
dtype_option = click.option(
    "--dtype", type=click.Choice(DTYPES), default="fp32", show_default=True,
    help="Element type for memory figures.")


@main.command()
@click.argument("spec", shell_complete=complete_spec)
@spec_options
@batch_option
@dtype_option
@click.option("--depth", type=click.IntRange(min=0), default=0,
              help="Collapse layers to this many name levels (0: every layer).")
@click.option("--format", "fmt", type=click.Choice(formats("analysis")), default="table",
              show_default=True)
@click.option("-o", "--output", metavar="FILE", help="Write to FILE instead of stdout.")
@convention_option
@click.option("--geometry", is_flag=True,
              help="Add each layer's receptive field and effective stride to the table "
                   "(JSON and CSV always have them). See docs/geometry.md.")
@guarded
def analyze(spec: str, input_: str | None, sets: tuple[str, ...], variant: str | None,
            batch: int, dtype: str, depth: int, fmt: str, output: str | None,
            convention: str, geometry: bool) -> None:
    """Per-layer shapes, params, MACs, FLOPs and memory of SPEC, with totals."""
    from .api import analyze as run
    from .formats import render

    result = run(spec, input=input_, batch=batch, dtype=dtype, set=parse_sets(sets),
                 variant=variant, convention=convention,
                 geometry=geometry or fmt in ("json", "csv"))
    options = table_options(fmt, output)
    if fmt == "html":  # the report page draws the graph (grandalf: cnncost[report])
        from .api import build_graph
        from .report.layout import require_grandalf

        require_grandalf()
        options["graph"] = build_graph(spec, input=input_, set=parse_sets(sets) or None,
                                       variant=variant)
    emit(render(fmt, result, depth, **options), output)


@main.command()
@click.argument("specs", nargs=-1, required=True, shell_complete=complete_spec)
@spec_options
@guarded
def validate(specs: tuple[str, ...], input_: str | None, sets: tuple[str, ...],
             variant: str | None) -> None:
    """Check SPECS (parse, expand, infer every shape); exit 0 if all are valid, 2 if not."""
    from .api import build_graph

    from .api import ZOO_NAMES_FILE, check_names_file

    overrides = parse_sets(sets)
    failed = 0
    for spec in specs:
        if Path(spec).name == ZOO_NAMES_FILE and Path(spec).is_file():
            try:  # the zoo's name table: each name's spec and variant must exist
                click.echo(f"ok: {spec} ({count(check_names_file(spec), 'published name')})")
            except SpecError as exc:
                report_errors(exc)
                failed += 1
            continue
        try:
            graph = build_graph(spec, input=input_, set=overrides or None, variant=variant)
        except SpecError as exc:
            report_errors(exc)
            failed += 1
            continue
        click.echo(f"ok: {spec} ({count(len(graph.nodes) - 1, 'layer')}, output "
                   f"{fmt_shape(graph.nodes[graph.output].shape)})")
    if failed:
        click.echo(f"{failed} of {count(len(specs), 'spec')} invalid", err=True)
        sys.exit(EXIT_BAD_INPUT)


@main.command(name="specs")
@click.argument("name", required=False)
@click.option("--vars", "show_vars", is_flag=True,
              help="Also list each spec's variables: default, what is allowed, what it means.")
@guarded
def list_specs(name: str | None, show_vars: bool) -> None:
    """List the bundled specs by family, with each published model name (the zoo), its
    input, params and GMACs; with NAME (a bundled name or a file), that spec's variables
    and variants."""
    from .api import load, specs_dir
    from .catalogue import catalogue
    from .formats.common import si

    if name is not None:
        spec = load(name)
        click.echo(f"{spec.name}: {spec.description}" if spec.description else spec.name)
        click.echo("\n".join(variable_lines(spec)) or "no variables")
        return
    families = catalogue()
    if not families:
        click.echo(f"no bundled specs found in {specs_dir()} (set CNNCOST_SPECS to a folder of "
                   "specs)", err=True)
        return
    rows = [row for family in families for row in family.rows]
    width = max([len(f.name) for f in families] + [len(r.name) + 2 for r in rows])
    shape = max([len(r.input) for r in rows] + [5])
    click.echo(f"{'name':<{width}}  {'input':<{shape}}  {'params':>9}  {'GMACs':>8}  description")
    for family in families:
        if family.error:
            click.echo(f"{family.name:<{width}}  (invalid spec: run cnncost validate on it: "
                       f"{family.error})")
            continue
        for row in family.rows:
            label = row.name if row.variant is None else f"  {row.name}"
            text = row.description
            named = {r.variant for r in family.rows}
            others = [v for v in family.variants if v not in named]
            if row.variant is None and others:
                text += f" [variants: {', '.join(others)}]"
            click.echo(f"{label:<{width}}  {row.input:<{shape}}  {si(row.params):>9}  "
                       f"{row.macs / 1e9:>8.3f}  {text}")
        if show_vars:
            for line in variable_lines(load(family.path)):
                click.echo(f"{'':<{width}}  {line}")
    names = sum(1 for r in rows if r.variant is not None)
    click.echo(f"{len(families)} spec files, {names} published names that stand for a spec and "
               "variant; `cnncost specs NAME` shows a spec's variables")


def variable_lines(spec: Any) -> list[str]:
    """One line per variable (default, what is allowed, its doc), then the variants."""
    from .errors import show

    lines = []
    for key, decl in spec.var_decls.items():
        default = f"= {decl.default}" if decl.derived else f"= {show(decl.default)}"
        allowed = decl.allowed()
        parts = [f"  {key} {default}", f"({allowed})" if allowed else "", decl.doc]
        lines.append("  ".join(p for p in parts if p))
    if lines:
        lines.insert(0, "variables:")
    for variant, settings in spec.variants.items():
        lines.append(f"variant {variant}: " + ", ".join(f"{k}={show(v)}"
                                                       for k, v in settings.items()))
    return lines


@main.command()
@click.option("--bench", "bench_", is_flag=True,
              help="The schema of `cnncost bench --format json` output instead.")
@click.option("-o", "--output", metavar="FILE", help="Write to FILE instead of stdout.")
@guarded
def schema(bench_: bool, output: str | None) -> None:
    """Print the JSON Schema of the spec language (for editor completion)."""
    if bench_:
        import json

        from .pytorch.bench_schema import SCHEMA

        emit(json.dumps(SCHEMA, indent=2) + "\n", output)
        return
    from .lang.schema import render_schema

    emit(render_schema(), output)


if __name__ == "__main__":  # pragma: no cover
    main()
