"""Measure a device's roofs: peak FLOP/s with a large matmul, bandwidth with a large copy.

Imports torch. What the roofline of `cnncost bench --per-layer` is drawn against when
the device is not in the datasheet table (every CPU), or when the user prefers what
the machine really delivers (`cnncost peaks --measure`). Each figure is the best of
several timed repetitions after a warm-up: a peak is what the device can reach, and a
slower repetition only says something else got in the way.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .measure import TORCH_DTYPES, device_name, precision
from .peaks import Peaks
from .torch_import import torch

# A matmul must run long enough to be timed well and to amortize launch cost, and a
# copy must be much larger than any cache, or the "bandwidth" is the cache's.
MATMUL_MIN_S = 0.02
MATMUL_MAX_N = {"cuda": 16384, "cpu": 4096}
COPY_BYTES = {"cuda": 1 << 30, "cpu": 256 << 20}


def _timer(device: torch.device) -> Callable[[Callable[[], object]], float]:
    """A function timing one call of `fn` in seconds (CUDA events on a GPU)."""
    if device.type == "cuda":
        def timed(fn: Callable[[], object]) -> float:
            begin, end = (torch.cuda.Event(enable_timing=True),
                          torch.cuda.Event(enable_timing=True))
            begin.record()
            fn()
            end.record()
            end.synchronize()
            return begin.elapsed_time(end) / 1000
    else:
        def timed(fn: Callable[[], object]) -> float:
            start = time.perf_counter()
            fn()
            return time.perf_counter() - start
    return timed


def _best(timed: Callable, fn: Callable[[], object], reps: int, budget_s: float) -> float:
    """The shortest of up to `reps` timed calls (at least 2), after one untimed call."""
    fn()
    best = float("inf")
    spent = 0.0
    for i in range(reps):
        t = timed(fn)
        best = min(best, t)
        spent += t
        if i >= 1 and spent > budget_s:
            break
    return best


def matmul_flops(device: torch.device, dtype: str, budget_s: float = 1.0) -> tuple[float, int]:
    """(best FLOP/s, n) of an n x n by n x n matmul, n doubled until one takes MATMUL_MIN_S."""
    timed = _timer(device)
    torch_dtype = TORCH_DTYPES[dtype]
    n = 512
    with torch.inference_mode(), precision(device, dtype):
        while True:
            a = torch.randn(n, n, device=device, dtype=torch_dtype)
            b = torch.randn(n, n, device=device, dtype=torch_dtype)
            t = _best(timed, lambda a=a, b=b: torch.mm(a, b), 3, budget_s / 4)
            if t >= MATMUL_MIN_S or n >= MATMUL_MAX_N.get(device.type, 4096):
                break
            n *= 2
        t = _best(timed, lambda: torch.mm(a, b), 10, budget_s)
    return 2 * n ** 3 / t, n


def copy_bandwidth(device: torch.device, budget_s: float = 1.0) -> tuple[float, int]:
    """(best bytes/s, bytes copied) of a large tensor copy: it reads and writes each byte."""
    timed = _timer(device)
    size = COPY_BYTES.get(device.type, 256 << 20)
    with torch.inference_mode():
        src = torch.empty(size, dtype=torch.uint8, device=device).fill_(1)
        dst = torch.empty_like(src)
        t = _best(timed, lambda: dst.copy_(src), 10, budget_s)
    return 2 * size / t, size


def measure_peaks(device: torch.device, dtype: str, budget_s: float = 2.0) -> Peaks:
    """The measured roofs of `device` for `dtype` (about `budget_s` seconds in all)."""
    flops, n = matmul_flops(device, dtype, budget_s / 2)
    bandwidth, size = copy_bandwidth(device, budget_s / 2)
    count = torch.get_num_threads()
    threads = f", {count} thread{'s' if count != 1 else ''}" if device.type == "cpu" else ""
    return Peaks(device_name(device), dtype, flops, bandwidth, "measured",
                 f"cnncost microbenchmark (torch {torch.__version__}{threads}): best "
                 f"{n}x{n} {dtype} matmul, best copy of {size >> 20} MiB")
