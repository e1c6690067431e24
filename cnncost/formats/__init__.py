"""Every output of cnncost, by kind and format: the one registry the CLI's `--format`
choices come from.

:data:`OUTPUTS` maps an output kind (what is rendered: an analysis, a comparison, a
diff, a bench or verify result, a gate result, the peaks) to its formats, and each
format to the function that renders it, named as ``module:function`` and imported only
when used (rich is imported only for a table). A renderer takes the object, the kind's
positional arguments and keyword options (``color``/``width`` for tables, whatever else
the kind needs) and returns text. To add a format, write the function and add one line
here; the command offers it and tests/test_formats.py renders it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

OUTPUTS: dict[str, dict[str, str]] = {
    "analysis": {  # cnncost analyze: render(analysis, depth, **options)
        "table": "cnncost.formats.table:render",
        "json": "cnncost.formats.jsonfmt:render",
        "csv": "cnncost.formats.csvfmt:render",
        "markdown": "cnncost.formats.markdown:render",
        "html": "cnncost.report.page:analysis_html",
    },
    "comparison": {  # cnncost compare: render(comparison, columns, **options)
        "table": "cnncost.formats.comparison:table",
        "json": "cnncost.formats.comparison:as_json",
        "csv": "cnncost.formats.comparison:as_csv",
        "markdown": "cnncost.formats.comparison:markdown",
        "html": "cnncost.report.tables:comparison_html",
    },
    "difference": {  # cnncost diff: render(diff, **options)
        "table": "cnncost.formats.difference:table",
        "json": "cnncost.formats.difference:as_json",
        "csv": "cnncost.formats.difference:as_csv",
        "markdown": "cnncost.formats.difference:markdown",
        "html": "cnncost.report.page:diff_html",
    },
    "bench": {  # cnncost bench: render(result, top=..., **options)
        "table": "cnncost.formats.bench:render_table",
        "json": "cnncost.formats.bench:render_json",
        "markdown": "cnncost.formats.bench:render_markdown",
        "csv": "cnncost.formats.bench:render_csv",
    },
    "verification": {  # cnncost verify: render(verification, only_mismatches=..., **options)
        "table": "cnncost.formats.verification:render_table",
        "json": "cnncost.formats.verification:render_json",
    },
    "gate": {  # cnncost gate: render(gate_result)
        "text": "cnncost.gate.report:render_text",
        "json": "cnncost.gate.report:render_json",
        "markdown": "cnncost.gate.report:render_markdown",
        "codequality": "cnncost.gate.report:render_codequality",
        "html": "cnncost.report.tables:gate_html",
    },
    "peaks": {  # cnncost peaks: render(PeaksReport)
        "table": "cnncost.formats.peaks:render_table",
        "json": "cnncost.formats.peaks:render_json",
    },
    "datasheet": {  # cnncost peaks --list: render(known_devices, dtypes)
        "table": "cnncost.formats.peaks:datasheet_table",
        "json": "cnncost.formats.peaks:datasheet_json",
    },
}


def formats(kind: str) -> tuple[str, ...]:
    """The format names of output `kind`, in the order `--help` lists them."""
    return tuple(OUTPUTS[kind])


def renderer(kind: str, fmt: str) -> Callable[..., str]:
    """The function rendering `kind` in `fmt` (imported now)."""
    module, _, function = OUTPUTS[kind][fmt].partition(":")
    fn: Callable[..., str] = getattr(importlib.import_module(module), function)
    return fn


def render_as(kind: str, fmt: str, obj: Any, *args: Any, **options: Any) -> str:
    """Render `obj`, an output of `kind`, in format `fmt`."""
    return renderer(kind, fmt)(obj, *args, **options)


def render(fmt: str, analysis: Any, depth: int = 0, **options: Any) -> str:
    """Render an analysis (``cnncost.analyze``'s result) in format `fmt`."""
    return render_as("analysis", fmt, analysis, depth, **options)


__all__ = ["OUTPUTS", "formats", "render", "render_as", "renderer"]
