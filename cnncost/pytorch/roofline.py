"""The roofline model of each layer: bytes moved, arithmetic intensity, the time the roofs
allow, and what bounds the layer. No torch here.

- **work** of a layer = FLOPs (2 x MACs) + other ops (docs/conventions.md), so that
  batch norms, activations, pooling and adds, which have no MACs, still sit on the
  roofline at their (low) intensity.
- **bytes** = compulsory traffic: every input read once, the output written once,
  every parameter and float buffer (batch-norm running statistics) read once, at the
  dtype's size. Views (flatten, identity, dropout at inference) move nothing.
- **bound time** = max(work / peak FLOP/s, bytes / bandwidth): no implementation can
  be faster (short of caches holding the data, which shows as efficiency above 1).
- **classification**: *overhead-bound* when the bound time is below the measured cost
  of running a trivial layer and the layer takes at most OVERHEAD_FACTOR times that
  cost (the fixed cost of an op, launch and dispatch, is at least half its time: neither
  fewer FLOPs nor fewer bytes would help); otherwise *compute-bound* when the intensity
  reaches the ridge point (peak FLOP/s / bandwidth), else *memory-bound*. A layer that
  neither computes nor moves anything (a view) gets no verdict.
- **efficiency** = bound time / measured time.
"""

from __future__ import annotations

from typing import NamedTuple

from ..cost.analysis import DTYPE_BYTES, Analysis
from ..lang.graph import Graph
from .peaks import Peaks

BOUNDS = ("compute", "memory", "overhead")
OVERHEAD_FACTOR = 2.0


class Roof(NamedTuple):
    """One layer against the roofs."""

    work: int  # FLOPs + other ops, for the batch
    bytes: int
    intensity: float | None  # work / bytes; None when nothing is moved
    bound_s: float | None  # None without peaks
    bound: str | None  # compute, memory or overhead; None without peaks or time
    efficiency: float | None  # bound_s / measured time


def layer_bytes(graph: Graph, analysis: Analysis) -> list[int]:
    """Compulsory bytes per row of `analysis` (its rows are `graph`'s nodes, in order)."""
    per = DTYPE_BYTES[analysis.dtype]
    batch = analysis.batch
    nodes = graph.nodes
    out = [0]  # the input row moves nothing itself
    for node, row in zip(nodes[1:], analysis.rows[1:], strict=True):
        if node.view:
            out.append(0)
            continue
        elements = batch * (sum(nodes[i].size for i in node.inputs) + node.size)
        out.append((elements + row.params + row.keras_nontrainable) * per)
    return out


def bound_time(work: int, nbytes: int, peaks: Peaks) -> float:
    return max(work / peaks.flops_per_s, nbytes / peaks.bandwidth_bytes_per_s)


def classify(work: int, nbytes: int, time_s: float | None, peaks: Peaks | None,
             overhead_s: float | None) -> Roof:
    """Where one layer sits: see the module docstring for every rule."""
    intensity = work / nbytes if nbytes else None
    if peaks is None or (work == 0 and nbytes == 0):
        return Roof(work, nbytes, intensity, None, None, None)
    bound_s = bound_time(work, nbytes, peaks)
    if time_s is None:
        return Roof(work, nbytes, intensity, bound_s, None, None)
    if overhead_s is not None and bound_s < overhead_s \
            and time_s <= OVERHEAD_FACTOR * overhead_s:
        bound = "overhead"
    elif intensity is not None and intensity >= peaks.ridge:
        bound = "compute"
    else:
        bound = "memory"
    efficiency = bound_s / time_s if time_s > 0 else None
    return Roof(work, nbytes, intensity, bound_s, bound, efficiency)
