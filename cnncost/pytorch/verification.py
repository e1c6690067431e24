"""Cross-check the analytic engine against the real PyTorch model of the same spec.

`verify(spec)` expands the spec once, analyzes it, builds the model from the same graph
(`cnncost.pytorch.builder`), runs one forward pass under ``torch.utils.flop_counter`` with a
forward hook on every layer, and compares per layer and in total: output shape (hooks),
parameters and buffers (``numel`` of the layer's own tensors) and MACs (the flop
counter's per-module count // 2). On a real device it then times the forward pass
(`cnncost.pytorch.measure`). Before allocating anything on a real device it compares the
analytic memory estimate with the memory free there and refuses if it does not fit.
The result is a plain :class:`Verification`; the CLI renders it.
"""

from __future__ import annotations

import math
import os  # noqa: F401 - tests patch cnncost.pytorch.verification.os (cpu_contention moved to quality)
from collections.abc import Mapping
from typing import Any, NamedTuple

from .torch_import import torch
from torch.utils.flop_counter import FlopCounterMode

from ..cost.analysis import DTYPE_BYTES, Analysis, analyze_graph
from ..api import build_graph, opaque_note
from .builder import build_model
from .measure import Latency, environment, precision, resolve_target, time_model
from ..quality import cpu_contention  # torch-free, shared with bench and compare

CHECKED = ("shape", "params", "buffers", "macs")  # what is compared, per layer and in total
# Allocate only when MEMORY_FACTOR x the analytic estimate + MEMORY_HEADROOM is free: convolution
# workspaces, padding copies and allocator slack come on top of weights and live
# activations (measured on CPU: 1.4 to 1.9 x the estimate, docs/verify.md).
MEMORY_FACTOR = 2
MEMORY_HEADROOM = 256 * 2**20


class VerifyError(ValueError):
    """verify cannot run as asked (no such device, dtype, not enough memory)."""


class LayerCheck(NamedTuple):
    """One layer: the analytic value and PyTorch's for each checked quantity."""

    name: str
    op: str
    analytic: dict  # shape, params, buffers, macs
    measured: dict  # the same keys, from PyTorch (shape None if the layer never ran)

    def mismatches(self) -> list[str]:
        return [k for k in CHECKED if self.analytic[k] != self.measured[k]]

    @property
    def ok(self) -> bool:
        return not self.mismatches()


class Verification(NamedTuple):
    """The outcome of one cross-check."""

    analysis: Analysis
    layers: list  # LayerCheck per layer, in execution order
    totals: dict  # quantity -> (analytic, measured) for the whole model
    env: dict  # device, torch version, dtype, batch, threads, ...
    latency: Latency | None  # None on the meta device or when not asked for
    memory_estimate: int  # bytes the analytic engine expects the forward pass to need
    notes: tuple = ()  # caveats about the measurement (e.g. a busy CPU)

    @property
    def ok(self) -> bool:
        return all(layer.ok for layer in self.layers) and all(a == m for a, m in
                                                            self.totals.values())

    def mismatched_layers(self) -> list[LayerCheck]:
        return [layer for layer in self.layers if not layer.ok]

    def first_mismatch(self) -> tuple[str, str, Any, Any] | None:
        """(layer or 'total', quantity, analytic, PyTorch) of the first disagreement."""
        for layer in self.layers:
            for key in layer.mismatches():
                return layer.name, key, layer.analytic[key], layer.measured[key]
        for key, (a, m) in self.totals.items():
            if a != m:
                return "total", key, a, m
        return None

    def to_dict(self) -> dict:
        def plain(value: Any) -> Any:  # shapes as JSON lists
            return list(value) if isinstance(value, tuple) else value

        first = self.first_mismatch()
        return {
            "name": self.analysis.name,
            "file": self.analysis.file,
            "ok": self.ok,
            "env": self.env,
            "input_shape": list(self.analysis.input_shape),
            "batch": self.analysis.batch,
            "dtype": self.analysis.dtype,
            "vars": self.analysis.vars,
            "memory_estimate_bytes": self.memory_estimate,
            "totals": {k: {"analytic": plain(a), "pytorch": plain(m), "ok": a == m}
                       for k, (a, m) in self.totals.items()},
            "first_mismatch": (dict(zip(("layer", "quantity", "analytic", "pytorch"),
                                        map(plain, first), strict=True)) if first else None),
            "layers": [{"name": c.name, "op": c.op, "ok": c.ok, "mismatches": c.mismatches(),
                        "analytic": {k: plain(v) for k, v in c.analytic.items()},
                        "pytorch": {k: plain(v) for k, v in c.measured.items()}}
                       for c in self.layers],
            "notes": list(self.notes),
            "latency": None if self.latency is None else
            {k: v for k, v in self.latency._asdict().items() if k != "env"},
        }


def memory_estimate(analysis: Analysis) -> int:
    """Bytes a forward pass needs: weights and buffers, plus the peak of live activations."""
    per = DTYPE_BYTES[analysis.dtype]
    t = analysis.totals
    return (t.params + t.buffers) * per + t.peak_activation_bytes


def free_memory(device: torch.device) -> int | None:
    """Bytes free on `device` now, or None when it cannot be told."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "cpu":
        try:
            with open("/proc/meminfo", encoding="utf-8") as info:
                for line in info:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            return None
    return None


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB" if n < 2**30 else f"{n / 2**30:,.2f} GiB"


VERIFY_ADVICE = ("use --device meta (checks shapes, params and MACs without allocating memory) "
                 "or a smaller --batch")


def check_memory(analysis: Analysis, device: torch.device, free: int | None = None,
                 command: str = "verify", advice: str = VERIFY_ADVICE) -> int:
    """The estimate in bytes; VerifyError if it does not fit in `device`'s free memory."""
    need = memory_estimate(analysis)
    if device.type == "meta":
        return need
    free = free_memory(device) if free is None else free
    wanted = need * MEMORY_FACTOR + MEMORY_HEADROOM
    if free is not None and wanted > free:
        per = DTYPE_BYTES[analysis.dtype]
        t = analysis.totals
        raise VerifyError(
            f"not enough memory on {device.type}: the forward pass needs about {_mib(need)} "
            f"(weights and buffers {_mib((t.params + t.buffers) * per)}, peak activations "
            f"{_mib(t.peak_activation_bytes)} at batch {analysis.batch}, {analysis.dtype}); "
            f"{command} wants {MEMORY_FACTOR} x that + {_mib(MEMORY_HEADROOM)} free for "
            f"workspaces and has {_mib(free)}; {advice}")
    return need


def verify(spec: Any, *, input: tuple | str | None = None, batch: int = 1, dtype: str = "fp32",
           set: Mapping | None = None, variant: str | None = None, device: str = "auto",
           latency_runs: int = 20, latency_budget_s: float = 3.0,
           free_bytes: int | None = None, field_check: bool = True) -> Verification:
    """Build `spec` in PyTorch and compare it with the analytic numbers, layer by layer.

    `device`: auto (cuda if available, else cpu), cpu, cuda or meta (no memory, no
    arithmetic, no latency). `latency_runs`: timed forward passes after the check (0:
    none). `free_bytes` overrides the free memory detected (for tests). `field_check`: also
    measure the receptive field of the last feature map by gradients on the CPU
    (cnncost.pytorch.fieldcheck) and compare it with the analytic one. Raises SpecError
    for an invalid spec and VerifyError when it cannot run as asked.
    """
    try:
        where, torch_dtype = resolve_target(device, dtype, allow_meta=True)
    except ValueError as exc:
        raise VerifyError(str(exc)) from None
    graph = build_graph(spec, input=input, set=set, variant=variant)
    analysis = analyze_graph(graph, batch, dtype, graph.description)
    analysis = analysis._replace(variant=variant, custom=bool(variant or set or input))
    estimate = check_memory(analysis, where, free_bytes)

    opaque = opaque_note(graph)  # placeholders: counts checked, function not reproduced
    model = build_model(graph, device=where, dtype=torch_dtype, allow_opaque=True).eval()
    layers = model.layers()
    shapes: dict[str, tuple] = {}
    handles = [module.register_forward_hook(_shape_hook(shapes, name)) for name, module in layers]
    example = (torch.zeros if where.type == "meta" else torch.randn)(
        batch, *graph.input_shape, device=where, dtype=torch_dtype)
    training = graph.vars.get("training") is True
    model.run_train_only = training  # auxiliary heads do work only with --set training=true
    try:
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            output = model(example)
        if not training and any(n.train_only for n in graph.nodes):
            model.run_train_only = True  # once more, for the shapes of the heads that idled
            with torch.inference_mode():
                model(example)
            model.run_train_only = False
    finally:
        for handle in handles:
            handle.remove()
    flops = counter.get_flop_counts()
    root = type(model).__name__

    checks = []
    for row, (name, module) in zip(analysis.rows[1:], layers, strict=True):
        counted = sum(flops.get(f"{root}.{name}", {}).values())
        checks.append(LayerCheck(name, row.op, {
            "shape": tuple(row.shape), "params": row.params, "buffers": row.buffers,
            "macs": row.macs}, {
            "shape": shapes.get(name), "params": _numel(module.parameters(recurse=False)),
            "buffers": _numel(module.buffers(recurse=False)), "macs": counted // 2}))
    t = analysis.totals
    totals = {
        "shape": (tuple(analysis.output_shape), tuple(output.shape[1:])),
        "params": (t.params, _numel(model.parameters())),
        "buffers": (t.buffers, _numel(model.buffers())),
        "macs": (t.macs, counter.get_total_flops() // 2),
    }
    if field_check and not opaque:  # a placeholder has no receptive field
        from .fieldcheck import field_check as measure_field

        checked = measure_field(graph)
        if checked is not None:
            totals["receptive_field"] = (checked[0], checked[1])
    env = environment(where, dtype, batch)
    latency = None
    notes: tuple = ()
    if where.type != "meta" and latency_runs > 0 and not opaque:  # placeholders: not timed
        busy = cpu_contention(env["threads"]) if where.type == "cpu" else None
        with precision(where, dtype):
            latency = time_model(model, example, runs=latency_runs, warmup=3, warmup_s=0.1,
                                 budget_s=latency_budget_s, env=env)
        notes = (busy,) if busy else ()
    if opaque:
        notes += (f"{opaque[0]}. Verified with placeholders for them (their parameters, "
                  "buffers and output shapes, zeros out): what those modules compute is not "
                  "reproduced, and nothing was timed",)
    return Verification(analysis, checks, totals, env, latency, estimate, notes)


def _shape_hook(shapes: dict, name: str) -> Any:
    def hook(module: torch.nn.Module, inputs: Any, output: torch.Tensor) -> None:
        shapes[name] = tuple(output.shape[1:])

    return hook


def _numel(tensors: Any) -> int:
    return sum(math.prod(t.shape) for t in tensors)
