"""Output formats for analyses: one module per format behind `render(analysis, depth)`.

The registry maps a format name to the module that renders it, so the CLI
imports rich only when a table is asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

FORMATS = {
    "table": "cnncost.formats.table",
    "json": "cnncost.formats.jsonfmt",
    "csv": "cnncost.formats.csvfmt",
    "markdown": "cnncost.formats.markdown",
}


def render(fmt: str, analysis: Any, depth: int = 0, **options: Any) -> str:
    """Render `analysis` in format `fmt` (a key of FORMATS) as text."""
    return importlib.import_module(FORMATS[fmt]).render(analysis, depth, **options)
