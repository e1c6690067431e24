"""`cnncost bench`: measured latency per batch size, and per layer against the roofline.

Imports torch. One pass over plain data: build the model once, then for each batch size
time it end to end (:func:`cnncost.pytorch.measure.time_model`: eval mode, inference mode, cudnn
autotuning, first call apart, warm-up by runs and by time, CUDA events or
``perf_counter``), optionally cross-check that median with ``torch.utils.benchmark``
(an independent timer in the same run), and optionally time every layer (:func:`time_layers`:
CUDA events recorded in forward hooks, one synchronization at the end) and place it
on the roofline (:mod:`cnncost.pytorch.roofline`) against the device's peaks
(:mod:`cnncost.pytorch.peaks`). The result is a :class:`BenchResult` of named tuples;
rendering lives in :mod:`cnncost.formats.bench`.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from .torch_import import torch

from .. import __version__
from ..cost.analysis import Analysis, analyze_graph
from .measure import (Latency, Stopwatch, environment, precision, resolve_target, time_model,
                      timed_runs)
from .choices import PEAK_CHOICES
from .peaks import Peaks
from ..quality import (QUALITY_MIN_RUNS, QUALITY_UNRELIABLE, QUALITY_WARN,  # noqa: F401
                      quality, spread)  # torch-free, shared with compare; re-exported here
from .roofline import classify, layer_bytes

CROSS_CHECK_TOLERANCE = 0.05
COMPILE_MAX_BATCHES = 8  # torch._dynamo's default recompile limit

Progress = Callable[[str, int, int], None]  # (what, done, total)


class BenchError(ValueError):
    """The benchmark cannot run as asked (device, dtype, memory, compilation)."""


class Settings(NamedTuple):
    """How the measurement was asked for (JSON `settings`)."""

    device: str
    dtype: str
    channels_last: bool
    compile: bool
    threads: int | None
    runs: int
    warmup: int
    warmup_s: float
    budget_s: float
    per_layer: bool
    cross_check: bool


class CrossCheck(NamedTuple):
    """The same model timed by an independent method in the same run."""

    method: str
    median_ms: float
    difference: float  # (bench median - independent median) / independent median
    tolerance: float
    agrees: bool


class LayerTime(NamedTuple):
    """One layer: analytic work and traffic, measured time, roofline verdict."""

    name: str
    op: str
    shape: tuple
    macs: int
    flops: int
    other_ops: int
    bytes: int
    intensity: float | None
    time_ms: float
    share: float
    bound_ms: float | None
    bound: str | None
    efficiency: float | None


class PerLayer(NamedTuple):
    mode: str  # "eager": hooks cannot see inside a compiled model
    runs: int
    total_ms: float  # sum of the layers' median times
    end_to_end_ms: float  # median of the hooked forward passes
    overhead_ms: float  # a trivial layer, timed the same way
    layers: list  # of LayerTime


class BatchResult(NamedTuple):
    batch: int
    env: dict
    macs: int
    flops: int
    latency: Latency
    tflops: float
    peak_share: float | None
    quality: str
    cross_check: CrossCheck | None
    per_layer: PerLayer | None


class BenchResult(NamedTuple):
    spec: dict  # name, file, sha256, input_shape, output_shape, vars, variant
    settings: Settings
    env: dict  # environment without the batch
    peaks: Peaks | None
    notes: list
    results: list  # of BatchResult

    def to_dict(self) -> dict:
        """The JSON document (schema: cnncost.pytorch.bench_schema.SCHEMA)."""
        from .bench_schema import KIND, SCHEMA_VERSION

        return {
            "kind": KIND, "schema_version": SCHEMA_VERSION, "tool_version": __version__,
            "spec": self.spec, "settings": self.settings._asdict(), "env": self.env,
            "peaks": self.peaks.to_dict() if self.peaks else None, "notes": list(self.notes),
            "results": [_result_dict(r) for r in self.results],
        }


def _result_dict(r: BatchResult) -> dict:
    lat = r.latency
    return {
        "batch": r.batch, "env": r.env, "macs": r.macs, "flops": r.flops,
        "latency": {"median_ms": lat.median_ms, "p10_ms": lat.p10_ms, "p90_ms": lat.p90_ms,
                    "iqr_ms": lat.iqr_ms, "samples": lat.samples, "first_ms": lat.first_ms,
                    "spread": spread(lat)},
        "images_per_s": lat.images_per_s, "tflops": r.tflops, "peak_share": r.peak_share,
        "quality": r.quality,
        "cross_check": r.cross_check._asdict() if r.cross_check else None,
        "per_layer": None if r.per_layer is None else {
            **{k: v for k, v in r.per_layer._asdict().items() if k != "layers"},
            "layers": [{**layer._asdict(), "shape": list(layer.shape)}
                       for layer in r.per_layer.layers]},
    }


# ----------------------------------------------------------------- statistics
# spread() and quality() live in cnncost.quality (no torch), imported above.
def cross_check_result(median_ms: float, independent_ms: float, method: str,
                       tolerance: float = CROSS_CHECK_TOLERANCE) -> CrossCheck:
    difference = (median_ms - independent_ms) / independent_ms
    return CrossCheck(method, independent_ms, difference, tolerance, abs(difference) <= tolerance)


# ----------------------------------------------------------------- timing
def independent_median_ms(model: Any, example: torch.Tensor, min_run_time: float) -> float:
    """Median per-call time from ``torch.utils.benchmark.Timer.blocked_autorange``: a
    different timer (blocks of calls, the host clock around a synchronizing timer on
    accelerators) from bench's own per-call CUDA events or perf_counter."""
    from torch.utils.benchmark import Timer

    timer = Timer(stmt="model(x)", globals={"model": model, "x": example},
                  num_threads=torch.get_num_threads())
    with torch.inference_mode():
        measurement = timer.blocked_autorange(min_run_time=min_run_time)
    return measurement.median * 1000


class _Clock(Stopwatch):
    """Start and end stamps of every layer, one dict per forward pass."""

    def __init__(self, device: torch.device) -> None:
        super().__init__(device)
        self.runs: list[dict] = []

    def new_run(self) -> None:
        self.runs.append({})

    def hooks(self, name: str) -> tuple:
        def before(module: Any, inputs: Any) -> None:
            self.runs[-1][name] = [self.stamp(), None]

        def after(module: Any, inputs: Any, output: Any) -> None:
            self.runs[-1][name][1] = self.stamp()

        return before, after


class _Trivial(torch.nn.Module):
    """The cheapest layer there is: one elementwise op on one element."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1


def time_layers(model: Any, example: torch.Tensor, runs: int, budget_s: float,
                tick: Progress | None = None) -> tuple[dict, float, float, int]:
    """Per-layer median times of `model` (a SpecModel, eager), the median hooked forward
    pass, the time of a trivial layer timed the same way (ms), and the runs done.

    Every layer gets a pre- and a post-forward hook that stamp the time (CUDA events on
    a GPU); the passes themselves are run and timed by :func:`cnncost.pytorch.measure.timed_runs`
    (the same loop, budget and synchronization as the end-to-end runs), after one hooked
    warm-up pass. The trivial layer is timed afterwards on its own
    (:func:`trivial_layer_ms`).
    """
    device = example.device
    clock = _Clock(device)
    handles = [model.register_forward_pre_hook(lambda module, inputs: clock.new_run())]
    for name, module in model.layers():
        before, after = clock.hooks(name)
        handles.append(module.register_forward_pre_hook(before))
        handles.append(module.register_forward_hook(after))
    renamed = None if tick is None else (lambda what, done, total: tick("per-layer", done, total))
    try:
        with torch.inference_mode():
            model(example)  # warm-up with the hooks in place
            clock.runs.clear()
            totals = timed_runs(model, example, runs, budget_s, renamed)
    finally:
        for handle in handles:
            handle.remove()
    per_layer: dict[str, list[float]] = {}
    for run in clock.runs:
        for name, (begin, end) in run.items():
            per_layer.setdefault(name, []).append(clock.elapsed_ms(begin, end))
    medians = {name: statistics.median(times) for name, times in per_layer.items()}
    return (medians, statistics.median(totals), trivial_layer_ms(device, example.dtype),
            len(totals))


def trivial_layer_ms(device: torch.device, dtype: torch.dtype, runs: int = 50) -> float:
    """Median time of the cheapest layer (one elementwise op on one element), timed with the
    same hooks as the model's layers, on an idle device: the fixed cost of any layer."""
    clock = _Clock(device)
    trivial = _Trivial()
    before, after = clock.hooks("trivial")
    trivial.register_forward_pre_hook(before)
    trivial.register_forward_hook(after)
    tiny = torch.zeros(1, device=device, dtype=dtype)
    with torch.inference_mode():
        clock.sync()  # an idle queue: no backlog hides the launch cost
        for _ in range(runs + 1):
            clock.new_run()
            trivial(tiny)
        clock.sync()
    times = [clock.elapsed_ms(*run["trivial"]) for run in clock.runs[1:]]
    return statistics.median(times)


def layer_table(analysis: Analysis, graph: Any, medians: dict, peaks: Peaks | None,
                overhead_ms: float) -> list[LayerTime]:
    """Every layer's analytic numbers, measured time and roofline verdict."""
    moved = layer_bytes(graph, analysis)
    total = sum(medians.values()) or 1.0
    out = []
    for row, nbytes in zip(analysis.rows[1:], moved[1:], strict=True):
        t = medians[row.name]
        roof = classify(row.flops + row.other_ops, nbytes, t / 1000, peaks, overhead_ms / 1000)
        out.append(LayerTime(
            row.name, row.op, tuple(row.shape), row.macs, row.flops, row.other_ops, nbytes,
            roof.intensity, t, t / total, None if roof.bound_s is None else roof.bound_s * 1000,
            roof.bound, roof.efficiency))
    return out


# ----------------------------------------------------------------- peaks
def peaks_key(device: torch.device, dtype: str) -> tuple[str, str]:
    """(device name, cache key) of measured peaks: CPU peaks depend on the thread count."""
    from .measure import device_name
    from .peaks import cache_key

    name = device_name(device)
    threads = torch.get_num_threads() if device.type == "cpu" else None
    return name, cache_key(name, dtype, threads, torch.__version__)


def resolve_peaks(choice: str | Peaks | None, device: torch.device, dtype: str,
                  tick: Progress | None = None) -> Peaks | None:
    """The roofs for `choice`: auto (the measured cache, else the datasheet table, else
    measure now and cache), table, measure (now, and cache), none; or given Peaks."""
    from . import peaks as lib

    if choice is None or isinstance(choice, Peaks):
        return choice
    if choice not in PEAK_CHOICES:
        raise BenchError(f"--peaks {choice!r}: expected one of {', '.join(PEAK_CHOICES)}")
    if choice == "none":
        return None
    name, key = peaks_key(device, dtype)
    if choice == "table":
        return lib.lookup(name, dtype)
    if choice == "auto":
        found = lib.cached(key) or lib.lookup(name, dtype)
        if found is not None:
            return found
    if tick is not None:
        tick("peaks (matmul, copy)", 0, 1)
    peaks, _ = measure_and_cache(device, dtype)  # a read-only home: they still serve this run
    if tick is not None:
        tick("peaks (matmul, copy)", 1, 1)
    return peaks


def measure_and_cache(device: torch.device, dtype: str) -> tuple[Peaks, OSError | None]:
    """Measure the roofs now and add them to the cache: (the cached peaks, each roof's
    best so far; or the measured ones and the OSError when the cache cannot be written)."""
    from . import peaks as lib
    from .microbench import measure_peaks

    peaks = measure_peaks(device, dtype)
    try:
        return lib.store(peaks_key(device, dtype)[1], peaks), None
    except OSError as exc:
        return peaks, exc


# ----------------------------------------------------------------- the benchmark
def bench(spec: Any, *, input: tuple | str | None = None, set: Mapping | None = None,
          variant: str | None = None, batches: tuple = (1,), device: str = "auto",
          dtype: str = "fp32", channels_last: bool = False, compile: bool = False,
          threads: int | None = None, per_layer: bool = False, cross_check: bool = False,
          runs: int = 50, warmup: int = 10, warmup_s: float = 0.5, budget_s: float = 5.0,
          peaks: str | Peaks | None = "auto", progress: Progress | None = None,
          free_bytes: int | None = None) -> BenchResult:
    """Measure `spec` for each batch size in `batches` (see the module docstring).

    Raises SpecError for an invalid spec and BenchError when it cannot run as asked.
    """
    from ..api import build_graph
    from .verification import VerifyError, check_memory

    if not batches or any(int(b) < 1 for b in batches):
        raise BenchError("batch sizes must be whole numbers >= 1")
    if compile and len(batches) > COMPILE_MAX_BATCHES:
        raise BenchError(f"--compile takes at most {COMPILE_MAX_BATCHES} batch sizes (torch "
                         "compiles a graph for each and runs the eager model after "
                         f"{COMPILE_MAX_BATCHES}); received {len(batches)}: run bench again "
                         "for the others")
    try:
        where, torch_dtype = resolve_target(device, dtype)
    except ValueError as exc:
        raise BenchError(str(exc)) from None
    graph = build_graph(spec, input=input, set=set, variant=variant)
    if channels_last and len(graph.input_shape) != 3:
        raise BenchError(f"--channels-last needs a CxHxW input; {graph.name} takes "
                         f"{'x'.join(map(str, graph.input_shape))}")
    storage = "fp32" if dtype == "tf32" else dtype
    analyses = {b: analyze_graph(graph, b, storage) for b in batches}
    for analysis in analyses.values():
        try:
            check_memory(analysis, where, free_bytes, command="bench",
                         advice="use a smaller --batch")
        except VerifyError as exc:
            raise BenchError(str(exc)) from None
    threads_before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _bench(spec, graph, analyses, where, torch_dtype, variant, batches, Settings(
            str(device), dtype, channels_last, compile, threads, runs, warmup, warmup_s,
            budget_s, per_layer, cross_check), peaks, progress)
    finally:
        torch.set_num_threads(threads_before)


def _bench(spec: Any, graph: Any, analyses: dict, where: torch.device, torch_dtype: Any,
           variant: str | None, batches: tuple, settings: Settings, peaks: Any,
           progress: Progress | None) -> BenchResult:
    from ..gate.keys import spec_sha256
    from .builder import build_model
    from .verification import cpu_contention

    dtype, channels_last, compile = settings.dtype, settings.channels_last, settings.compile
    model = build_model(graph, device=where, dtype=torch_dtype).eval()
    memory_format = torch.channels_last if channels_last else torch.preserve_format
    if channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # stubs lack it
    runner = _compiled(model) if compile else model
    notes = []
    if where.type == "cpu":
        busy = cpu_contention(torch.get_num_threads())
        if busy:
            notes.append(busy)
    with precision(where, dtype):
        roofs = resolve_peaks(peaks, where, dtype, progress)
        results = []
        for batch in batches:
            example = torch.randn(batch, *graph.input_shape, device=where, dtype=torch_dtype)
            if len(graph.input_shape) == 3:
                example = example.contiguous(memory_format=memory_format)
            results.append(_one_batch(
                runner, model, example, analyses[batch], graph, settings, roofs, progress,
                environment(where, dtype, batch, channels_last=channels_last, compile=compile)))
    env = {k: v for k, v in results[0].env.items() if k != "batch"}
    spec_info = {
        "name": graph.name, "file": graph.file,
        "sha256": spec_sha256(str(spec)) if isinstance(spec, (str, os.PathLike)) else None,
        "input_shape": list(graph.input_shape),
        "output_shape": list(graph.nodes[graph.output].shape),
        "vars": graph.vars, "variant": variant,
    }
    if compile and settings.per_layer:
        notes.append("per-layer times are from the eager model: hooks cannot see inside the "
                     "compiled one, whose end-to-end times are above")
    notes += peak_notes(results, roofs)
    notes += [f"batch {r.batch}: {r.latency.samples} of the {settings.runs} runs asked for "
              f"fit in --time-budget {settings.budget_s:g} s" for r in results
              if r.latency.samples < settings.runs]
    return BenchResult(spec_info, settings, env, roofs, notes, results)


def peak_notes(results: list, roofs: Peaks | None) -> list[str]:
    """Warnings when something measured ran faster than the peak allows: then the peak is
    under-measured (or the datasheet wrong), and shares and verdicts against it are off."""
    if roofs is None:
        return []
    notes = []
    fix = ("the peak used is too low; measure it again with cnncost peaks --measure (each "
           "roof keeps its best measurement)")
    for r in results:
        if r.peak_share is not None and r.peak_share > 1:
            notes.append(f"batch {r.batch} reached {100 * r.peak_share:.0f}% of the peak FLOP/s: "
                         + fix)
        fast = [x.name for x in (r.per_layer.layers if r.per_layer else ())
                if x.bound == "compute" and x.efficiency is not None and x.efficiency > 1]
        if fast:
            notes.append(f"batch {r.batch}: {len(fast)} compute-bound layer"
                         f"{'s' if len(fast) != 1 else ''} ran above the peak FLOP/s "
                         f"({', '.join(fast[:3])}{', ...' if len(fast) > 3 else ''}): " + fix)
    return notes


def _compiled(model: Any) -> Any:
    try:
        return torch.compile(model, dynamic=False)  # one graph per batch size, compiled anew
    except Exception as exc:  # noqa: BLE001 - torch.compile raises many kinds
        raise BenchError(f"torch.compile failed: {type(exc).__name__}: {exc}") from None


def _ticker(progress: Progress | None, batch: int) -> Progress | None:
    if progress is None:
        return None
    return lambda what, done, total: progress(f"batch {batch}: {what}", done, total)


def _one_batch(runner: Any, model: Any, example: torch.Tensor, analysis: Analysis, graph: Any,
               settings: Settings, roofs: Peaks | None, progress: Progress | None,
               env: dict) -> BatchResult:
    batch = example.shape[0]
    tick = _ticker(progress, batch)
    try:
        latency = time_model(runner, example, runs=settings.runs, warmup=settings.warmup,
                             warmup_s=settings.warmup_s, budget_s=settings.budget_s, env=env,
                             tick=tick)
    except torch.cuda.OutOfMemoryError:
        raise BenchError(f"out of memory at batch {batch}: use a smaller --batch") from None
    except Exception as exc:  # noqa: BLE001 - a compiled model fails at its first call
        if not settings.compile:
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise BenchError(f"torch.compile failed: {type(exc).__name__}: {first}") from None
    flops = analysis.totals.flops
    achieved = flops / (latency.median_ms / 1000) if latency.median_ms > 0 else 0.0
    check = None
    if settings.cross_check:
        if tick is not None:
            tick("cross-check", 0, 1)
        independent = independent_median_ms(
            runner, example, min(max(settings.budget_s / 2, 0.2), 5.0))
        check = cross_check_result(latency.median_ms, independent,
                                   "torch.utils.benchmark.Timer.blocked_autorange")
        if tick is not None:
            tick("cross-check", 1, 1)
    layers = None
    if settings.per_layer:
        medians, end_to_end, overhead, done = time_layers(
            model, example, settings.runs, settings.budget_s, tick)
        layers = PerLayer("eager", done, sum(medians.values()), end_to_end, overhead,
                          layer_table(analysis, graph, medians, roofs, overhead))
    return BatchResult(batch, env, analysis.totals.macs, flops, latency, achieved / 1e12,
                       achieved / roofs.flops_per_s if roofs else None, quality(latency),
                       check, layers)


__all__ = ["BenchError", "BenchResult", "bench", "quality", "spread"]
