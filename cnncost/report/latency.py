"""Measured time per layer for the report, from the JSON `cnncost bench SPEC --per-layer
--format json` writes: the result at the analysis' batch, its per-layer times by layer
name. Bounded read, strict JSON; a file that does not fit is exit 2 with what to run."""

from __future__ import annotations

from typing import Any

from ..errors import Loc, Problem, SpecError
from ..safeio import load_json

LIMIT = 64_000_000  # bytes: a bench file is far smaller


def _fail(path: str, message: str) -> SpecError:
    return SpecError([Problem(Loc(path), "", message)])


def layer_times(path: str, analysis: Any) -> dict[str, float]:
    """Layer name -> measured milliseconds, for `analysis` (its batch; its layers)."""
    data = load_json(path, what="bench file", limit=LIMIT)
    hint = f"run cnncost bench {analysis.name} --per-layer --format json -o {path}"
    if not isinstance(data, dict) or data.get("kind") != "cnncost.bench":
        raise _fail(path, f"not the JSON of cnncost bench; {hint}")
    results = [r for r in data.get("results") or [] if isinstance(r, dict)]
    batches = [r.get("batch") for r in results]
    chosen = next((r for r in results if r.get("batch") == analysis.batch), None)
    if chosen is None:
        raise _fail(path, f"no result at batch {analysis.batch} (batches there: "
                          f"{', '.join(map(str, batches)) or 'none'}); give --batch to match")
    per_layer = chosen.get("per_layer")
    if not isinstance(per_layer, dict) or not isinstance(per_layer.get("layers"), list):
        raise _fail(path, f"the result at batch {analysis.batch} has no per-layer times; {hint}")
    times = {str(layer.get("name")): float(layer.get("time_ms") or 0.0)
             for layer in per_layer["layers"] if isinstance(layer, dict)}
    ours = {row.name for row in analysis.rows}
    if not times or len(set(times) & ours) < len(times) / 2:
        raise _fail(path, f"its layers are not those of {analysis.name} (spec there: "
                          f"{(data.get('spec') or {}).get('name', '?')}); {hint}")
    return times
