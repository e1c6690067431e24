"""Per-layer difference between two analyses (`cnncost diff A B`).

Layers are matched by their hierarchical names (stable across width, resolution and
depth changes of one spec, and across related specs). Each layer only in B is
*added*, only in A *removed*, in both with a different op, shape, params, buffers,
MACs or activation memory *changed*; the change records B minus A of params, MACs and
activation memory, so that the changes of a diff sum to the difference of the totals
(the peak is not additive and is compared as a total only). Pure data; nothing prints.
"""

from __future__ import annotations

import difflib
from typing import Any, NamedTuple

from ..cost.analysis import Analysis, Row

DELTAS = ("params", "macs", "act_bytes")
COMPARED = ("op", "shape", "params", "buffers", "macs", "act_bytes")


class Change(NamedTuple):
    """One layer that differs between A and B."""

    kind: str  # "added", "removed" or "changed"
    name: str
    a: Row | None  # the layer in A (None if added)
    b: Row | None  # the layer in B (None if removed)
    params: int  # B - A
    macs: int  # B - A
    act_bytes: int  # B - A


class Diff(NamedTuple):
    """Changes between two analyses, in B's layer order (removed layers where they were)."""

    a: Analysis
    b: Analysis
    changes: list  # Change, ...
    unchanged: int  # layers present in both and equal

    def count(self, kind: str) -> int:
        return sum(1 for c in self.changes if c.kind == kind)

    def totals(self) -> dict[str, tuple[int, int, int]]:
        """total -> (A, B, B - A) for params, MACs, activation, weight and peak memory."""
        out = {}
        for key in ("params", "macs", "flops", "weight_bytes", "activation_bytes",
                    "peak_activation_bytes"):
            va, vb = getattr(self.a.totals, key), getattr(self.b.totals, key)
            out[key] = (va, vb, vb - va)
        return out

    def to_dict(self) -> dict[str, Any]:
        def row(r: Row | None) -> dict | None:
            return None if r is None else {**r._asdict(), "shape": list(r.shape)}

        return {
            "a": {"name": self.a.name, "file": self.a.file, "vars": self.a.vars},
            "b": {"name": self.b.name, "file": self.b.file, "vars": self.b.vars},
            "summary": {k: self.count(k) for k in ("added", "removed", "changed")}
            | {"unchanged": self.unchanged},
            "totals": {k: {"a": a, "b": b, "delta": d} for k, (a, b, d) in self.totals().items()},
            "changes": [{"kind": c.kind, "name": c.name, "a": row(c.a), "b": row(c.b),
                         "params": c.params, "macs": c.macs, "act_bytes": c.act_bytes}
                        for c in self.changes],
        } | ({"notes": self.notes()} if self.notes() else {})

    def notes(self) -> list[str]:
        """Each side's caveats (opaque layers, ...), labelled A or B."""
        return [f"{side}: {note}" for side, analysis in (("A", self.a), ("B", self.b))
                for note in analysis.notes]


def _change(kind: str, name: str, a: Row | None, b: Row | None) -> Change:
    deltas = [(getattr(b, f) if b else 0) - (getattr(a, f) if a else 0) for f in DELTAS]
    return Change(kind, name, a, b, *deltas)


def diff(a: Analysis, b: Analysis, depth: int = 0) -> Diff:
    """Layers added, removed and changed from `a` to `b` (rows collapsed to `depth` if > 0)."""
    rows_a, rows_b = a.collapse(depth), b.collapse(depth)
    by_a = {r.name: r for r in rows_a}
    by_b = {r.name: r for r in rows_b}
    names_a, names_b = [r.name for r in rows_a], [r.name for r in rows_b]
    changes: list[Change] = []
    unchanged = 0
    matcher = difflib.SequenceMatcher(None, names_a, names_b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            changes += [_change("removed", n, by_a[n], None) for n in names_a[i1:i2]
                        if n not in by_b]
        for name in names_b[j1:j2]:
            if name not in by_a:
                changes.append(_change("added", name, None, by_b[name]))
                continue
            ra, rb = by_a[name], by_b[name]
            if any(getattr(ra, f) != getattr(rb, f) for f in COMPARED):
                changes.append(_change("changed", name, ra, rb))
            else:
                unchanged += 1
    return Diff(a, b, changes, unchanged)
