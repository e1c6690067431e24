"""Measured forward latency of a built model, and the environment it was measured in.

Imports torch (never imported by the analytic path). The protocol: the model in
eval mode under ``torch.inference_mode()``; cudnn autotuning on for fixed shapes; the
first call timed on its own (it pays for allocation and autotuning); warm-up by
iterations and by time; then timed runs, each bracketed by CUDA events on a GPU (one
synchronization after all runs, never a host clock around asynchronous work) or by
``time.perf_counter`` on the CPU. The number of timed runs is capped by a time budget so
a large model on a small CPU still finishes. `cnncost bench` builds on this.
"""

from __future__ import annotations

import contextlib
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

from .torch_import import torch

TORCH_DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16,
                "bf16": torch.bfloat16}


class Latency(NamedTuple):
    """Forward latency of one batch: robust statistics over the timed runs."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    iqr_ms: float  # interquartile range
    samples: int  # timed runs
    images_per_s: float  # batch / median
    env: dict  # where it was measured: the environment fingerprint
    first_ms: float = 0.0  # the first call, timed on its own (allocation, autotuning)


def resolve_device(device: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; anything else as torch names it."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_target(device: str, dtype: str, allow_meta: bool = False) -> tuple:
    """(torch.device, torch.dtype) to build a model on; ValueError if PyTorch cannot do it here."""
    if dtype not in TORCH_DTYPES:
        raise ValueError(f"dtype {dtype!r} has no PyTorch model here (allowed: "
                         f"{', '.join(TORCH_DTYPES)}; int8 needs a quantized model)")
    try:
        where = resolve_device(device)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {device!r}: {exc}") from None
    if where.type == "meta" and not allow_meta:
        raise ValueError("latency cannot be measured on the meta device")
    if where.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("no CUDA device is available here (use --device cpu"
                         + (" or meta)" if allow_meta else ")"))
    if dtype == "tf32" and where.type != "cuda":
        raise ValueError(f"tf32 is a mode of NVIDIA tensor cores; on {where.type} use fp32")
    return where, TORCH_DTYPES[dtype]


# (module, attribute) pairs that decide whether fp32 math may use TF32 tensor cores:
# PyTorch's fp32_precision settings where they exist (mixing them with the legacy
# allow_tf32 flags raises), else the legacy flags.
def _tf32_switches() -> list[tuple[Any, str, Any, Any]]:
    """(object, attribute, value allowing TF32, value forbidding it)."""
    matmul, conv = torch.backends.cuda.matmul, getattr(torch.backends.cudnn, "conv", None)
    if hasattr(matmul, "fp32_precision") and conv is not None \
            and hasattr(conv, "fp32_precision"):
        return [(matmul, "fp32_precision", "tf32", "ieee"),
                (conv, "fp32_precision", "tf32", "ieee")]
    return [(matmul, "allow_tf32", True, False), (torch.backends.cudnn, "allow_tf32", True, False)]


@contextlib.contextmanager
def precision(device: torch.device, dtype: str) -> Iterator[None]:
    """On CUDA, allow TF32 tensor-core math exactly when `dtype` is tf32 (PyTorch lets
    cuDNN convolutions use TF32 by default, which would make "fp32" timings TF32 ones);
    the previous settings are restored afterwards."""
    if device.type != "cuda":
        yield
        return
    switches = _tf32_switches()
    before = [getattr(obj, attr) for obj, attr, _, _ in switches]
    for obj, attr, allow, forbid in switches:
        setattr(obj, attr, allow if dtype == "tf32" else forbid)
    try:
        yield
    finally:
        for (obj, attr, _, _), value in zip(switches, before, strict=True):
            setattr(obj, attr, value)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as info:
                for line in info:
                    if line.startswith("model name"):
                        return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return platform.processor() or platform.machine()
    return device.type


def environment(device: torch.device, dtype: str, batch: int, *, channels_last: bool = False,
                compile: bool = False) -> dict:
    """The fingerprint stored with every measurement: what makes times comparable."""
    env = {
        "device": device.type,
        "device_name": device_name(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "dtype": dtype,
        "batch": batch,
        "threads": torch.get_num_threads(),
        "channels_last": channels_last,
        "compile": compile,
    }
    if device.type == "cuda":
        env["cuda"] = torch.version.cuda
        env["cudnn"] = torch.backends.cudnn.version()
        env["cudnn_benchmark"] = True
        env["tf32"] = dtype == "tf32"
    return env


def summarize(times_ms: list[float], batch: int, env: dict, first_ms: float = 0.0) -> Latency:
    """Median, p10, p90 and IQR of `times_ms` (at least one sample)."""
    if not times_ms:
        raise ValueError("no timed runs")
    data = sorted(times_ms)
    if len(data) == 1:
        p10 = p90 = q1 = q3 = data[0]
    else:
        deciles = statistics.quantiles(data, n=10, method="inclusive")
        quartiles = statistics.quantiles(data, n=4, method="inclusive")
        p10, p90, q1, q3 = deciles[0], deciles[8], quartiles[0], quartiles[2]
    median = statistics.median(data)
    # interpolating between tied samples can land one unit in the last place beyond them:
    # keep every quantile between its neighbours and inside the samples' range
    low, high = data[0], data[-1]
    p10, q1 = max(low, min(p10, median)), max(low, min(q1, median))
    p90, q3 = min(high, max(p90, median)), min(high, max(q3, median))
    return Latency(median_ms=median, p10_ms=p10, p90_ms=p90, iqr_ms=q3 - q1, samples=len(data),
                   images_per_s=batch * 1000.0 / median if median > 0 else float("inf"),
                   env=env, first_ms=first_ms)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Stopwatch:
    """Time stamps on a device: CUDA events on a GPU (they time the GPU's work, and are
    read only after a synchronization), ``time.perf_counter()`` on a CPU (where the work
    is done when the call returns). Every timer of cnncost stamps through this."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == "cuda"

    def stamp(self) -> Any:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record(torch.cuda.current_stream(self.device))  # this GPU's, not cuda:0's
            return event
        return time.perf_counter()

    def sync(self) -> None:
        _sync(self.device)

    def elapsed_ms(self, begin: Any, end: Any) -> float:
        """Milliseconds between two stamps (on a GPU, after `sync`)."""
        if self.cuda:
            return begin.elapsed_time(end)
        return (end - begin) * 1000


Tick = Callable[[str, int, int], None]  # (phase, done, total) progress callback


def time_model(model: torch.nn.Module, example: torch.Tensor, *, runs: int = 50,
               warmup: int = 10, warmup_s: float = 0.2, budget_s: float = 5.0,
               env: dict | None = None, tick: Tick | None = None) -> Latency:
    """Time `model(example)`: first call, warm-up, then up to `runs` timed calls.

    Warm-up lasts `warmup` calls and at least `warmup_s` seconds (at most `budget_s`);
    timed runs stop early once `budget_s` seconds have been spent on them (at least 3
    runs are kept when `runs` >= 3). `tick("warmup"|"timed", done, total)` is called as
    the runs go (for a progress bar).
    """
    device = example.device
    batch = example.shape[0]
    if env is None:
        env = environment(device, str(example.dtype).replace("torch.", ""), batch)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model.eval()
    with torch.inference_mode():
        _sync(device)
        start = time.perf_counter()
        model(example)
        _sync(device)
        first_ms = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        done = 0
        while done < warmup or time.perf_counter() - start < warmup_s:
            model(example)
            done += 1
            if tick is not None:
                tick("warmup", min(done, warmup), warmup)
            if time.perf_counter() - start > budget_s:  # a slow model: enough warm-up
                break
        _sync(device)
        times = timed_runs(model, example, runs, budget_s, tick)
    return summarize(times, batch, env, first_ms)


def timed_runs(model: torch.nn.Module, example: torch.Tensor, runs: int,
                budget_s: float, tick: Tick | None = None) -> list[float]:
    """Per-call times (ms) of up to `runs` calls, stopping once `budget_s` seconds have passed
    (at least 3 calls). On a GPU the calls are queued back to back: the only
    synchronization before the end is one every 8 calls, to look at the clock."""
    watch = Stopwatch(example.device)
    floor = min(3, runs)
    every = 8 if watch.cuda else 1
    stamps = []
    spent_from = time.perf_counter()
    for i in range(runs):
        begin = watch.stamp()
        model(example)
        stamps.append((begin, watch.stamp()))
        if tick is not None:
            tick("timed", i + 1, runs)
        if i + 1 >= floor and (i + 1) % every == 0:
            watch.sync()
            if time.perf_counter() - spent_from > budget_s:
                break
    watch.sync()
    return [watch.elapsed_ms(b, e) for b, e in stamps]


def measure_latency(spec: Any, *, input: tuple | str | None = None, batch: int = 1,
                    dtype: str = "fp32", device: str = "auto", set: Mapping | None = None,
                    variant: str | None = None, runs: int = 50, warmup: int = 10,
                    budget_s: float = 5.0, threads: int | None = None) -> Latency:
    """Build `spec` in PyTorch and time its forward pass on `device` (see time_model).

    Raises SpecError for an invalid spec and ValueError for an unusable device or dtype.
    """
    from .builder import build

    where, torch_dtype = resolve_target(device, dtype)
    if threads is not None:
        torch.set_num_threads(threads)
    model = build(spec, input=input, set=set, variant=variant, device=where, dtype=torch_dtype)
    example = torch.randn(batch, *model.input_shape, device=where, dtype=torch_dtype)
    env = environment(where, dtype, batch)
    with precision(where, dtype):
        return time_model(model, example, runs=runs, warmup=warmup, budget_s=budget_s, env=env)

