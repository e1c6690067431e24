"""The bundled specs and the zoo's published names as one catalogue, grouped by family.

A family is one bundled spec file; its rows are the spec itself (its default variables)
and every published name (`specs/_names.yaml`) that is this spec with one of its variants.
`cnncost specs` prints it and docs/zoo.md is generated from it. Counting runs the analytic
path only (no torch).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .api import analyze, bundled_specs, load, zoo_names
from .errors import SpecError


@dataclass(frozen=True)
class Row:
    """One name a user can type: a bundled spec, or a published name (then `variant` is
    the family spec's variant it stands for)."""

    name: str
    family: str
    variant: str | None
    input: str  # "3x224x224"
    params: int
    macs: int
    description: str


@dataclass(frozen=True)
class Family:
    name: str
    path: Path
    description: str
    variants: tuple[str, ...]
    rows: tuple[Row, ...]
    error: str = ""  # the spec does not load: run cnncost validate on it


def _row(name: str, family: str, variant: str | None, description: str) -> Row:
    result = analyze(name)
    shape = "x".join(str(d) for d in result.input_shape)
    return Row(name, family, variant, shape, result.totals.params, result.totals.macs,
               description)


def catalogue() -> list[Family]:
    """Every bundled spec file as a family, with its published names, in name order."""
    by_family: dict[str, list[tuple[str, str]]] = {}
    for name, entry in zoo_names().items():
        by_family.setdefault(entry.spec, []).append((name, entry.variant))
    families = []
    for stem, path in bundled_specs().items():
        try:
            spec = load(path)
            rows = [_row(stem, stem, None, spec.description)]
            variants = list(spec.variants)
            named = sorted(by_family.get(stem, []),
                           key=lambda item: (variants.index(item[1])
                                             if item[1] in variants else len(variants), item[0]))
            rows += [_row(name, stem, variant, f"{stem} --variant {variant}")
                     for name, variant in named]
        except SpecError as exc:
            families.append(Family(stem, path, "", (), (), str(exc).splitlines()[0]))
            continue
        families.append(Family(stem, path, spec.description, tuple(spec.variants), tuple(rows)))
    return families
