"""What identifies an analyzed model across gate files: the spec file's sha256 and the
:class:`Key` a bench result must match.

The bottom of the gate package: baseline, benchfile and metrics import from here and it
imports none of them, so they form no circle.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from ..errors import SpecError


def spec_sha256(spec: str) -> str | None:
    """sha256 of the spec file's bytes (a bundled name is resolved to its file; a PyTorch
    model reference to the source file of its module)."""
    from ..api import is_model_ref, resolve_path

    if is_model_ref(spec):
        return _model_source_sha256(spec)
    try:
        return hashlib.sha256(resolve_path(spec).read_bytes()).hexdigest()
    except (SpecError, OSError):
        return None


def _model_source_sha256(ref: str) -> str | None:
    import importlib.util
    from pathlib import Path

    module = ref.rpartition(":")[0]
    try:
        origin = module if module.endswith(".py") else \
            getattr(importlib.util.find_spec(module), "origin", None)
        return hashlib.sha256(Path(str(origin)).read_bytes()).hexdigest() if origin else None
    except (ImportError, ValueError, OSError):
        return None


class Key(NamedTuple):
    """What a bench result must have been measured of to stand for one analyzed model."""

    name: str  # the spec's name (used when either side has no sha256)
    sha256: str | None  # of the spec file's bytes; None for a spec that is not a file
    input_shape: tuple[int, ...]  # per sample, resolved
    vars: dict[str, Any]  # the resolved variables
    variant: str | None
    batch: int
    dtype: str


def key_for(spec: Any, *, name: str, input_shape: Iterable[int], vars: Mapping[str, Any],
            variant: str | None, batch: int, dtype: str) -> Key:
    """The Key of a model of `spec` (a path or bundled name, whose file's sha256 it takes)
    analyzed at `input_shape` with the resolved `vars`, `variant`, `batch` and `dtype`."""
    sha = spec_sha256(str(spec)) if isinstance(spec, (str, os.PathLike)) else None
    return Key(name, sha, tuple(input_shape), dict(vars), variant, batch, dtype)


def analysis_key(spec: Any, analysis: Any) -> Key:
    """The Key of `analysis`, a ``cnncost.analyze`` result of `spec`."""
    return key_for(spec, name=analysis.name, input_shape=analysis.input_shape,
                   vars=analysis.vars, variant=analysis.variant, batch=analysis.batch,
                   dtype=analysis.dtype)


__all__ = ["Key", "analysis_key", "key_for", "spec_sha256"]
