"""Measure a device's roofs: peak FLOP/s with a large matmul and a large convolution (the
better counts), bandwidth with a large copy.

Imports torch. What the roofline of `cnncost bench --per-layer` is drawn against when
the device is not in the datasheet table (every CPU), or when the user prefers what
the machine really delivers (`cnncost peaks --measure`). Each figure is the best of
several timed repetitions after a warm-up: a peak is what the device can reach, and a
slower repetition only says something else got in the way.
"""

from __future__ import annotations

from collections.abc import Callable

from .measure import TORCH_DTYPES, Stopwatch, device_name, precision
from .peaks import Peaks
from .torch_import import torch

# A matmul must run long enough to be timed well and to amortize launch cost, and a
# copy must be much larger than any cache, or the "bandwidth" is the cache's.
MATMUL_MIN_S = 0.02
MATMUL_MAX_N = {"cuda": 16384, "cpu": 4096}
COPY_BYTES = {"cuda": 1 << 30, "cpu": 256 << 20}


def _timer(device: torch.device) -> Callable[[Callable[[], object]], float]:
    """A function timing one call of `fn` in seconds."""
    watch = Stopwatch(device)

    def timed(fn: Callable[[], object]) -> float:
        begin = watch.stamp()
        fn()
        end = watch.stamp()
        watch.sync()
        return watch.elapsed_ms(begin, end) / 1000

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


def _grow(timed: Callable, make: Callable[[int], Callable[[], object]], flops: Callable[[int], int],
          first: int, limit: int, budget_s: float) -> tuple[float, int]:
    """(best FLOP/s, size) of the workload `make(size)`, size doubled from `first` until one
    call takes MATMUL_MIN_S (or `limit`); the best rate over every size tried counts."""
    size, best = first, (0.0, first)
    while True:
        fn = make(size)
        t = _best(timed, fn, 3, budget_s / 4)
        if t >= MATMUL_MIN_S or size >= limit:
            t = min(t, _best(timed, fn, 10, budget_s / 2))
        best = max(best, (flops(size) / t, size))
        if t >= MATMUL_MIN_S or size >= limit:
            return best
        size *= 2


def matmul_flops(device: torch.device, dtype: str, budget_s: float = 1.0) -> tuple[float, int]:
    """(best FLOP/s, n) of n x n by n x n matmuls."""
    torch_dtype = TORCH_DTYPES[dtype]

    def make(n: int) -> Callable[[], object]:
        a = torch.randn(n, n, device=device, dtype=torch_dtype)
        b = torch.randn(n, n, device=device, dtype=torch_dtype)
        return lambda: torch.mm(a, b)

    with torch.inference_mode(), precision(device, dtype):
        return _grow(_timer(device), make, lambda n: 2 * n ** 3, 512,
                     MATMUL_MAX_N.get(device.type, 4096), budget_s)


CONV_SHAPE = (256, 28, 28)  # channels, height, width of a 3x3, 256 -> 256 convolution


def conv_flops(device: torch.device, dtype: str, budget_s: float = 1.0) -> tuple[float, int]:
    """(best FLOP/s, batch) of a 3x3 convolution, 256 -> 256 channels on 28x28: the kind of
    kernel CNNs spend their time in (on some CPUs and dtypes faster than matmul)."""
    torch_dtype = TORCH_DTYPES[dtype]
    c, h, w = CONV_SHAPE
    conv = torch.nn.Conv2d(c, c, 3, padding=1, bias=False, device=device, dtype=torch_dtype)

    def make(batch: int) -> Callable[[], object]:
        x = torch.randn(batch, c, h, w, device=device, dtype=torch_dtype)
        return lambda: conv(x)

    with torch.inference_mode(), precision(device, dtype):
        return _grow(_timer(device), make, lambda b: 2 * b * c * h * w * c * 9, 1, 256,
                     budget_s)


def copy_bandwidth(device: torch.device, budget_s: float = 1.0) -> tuple[float, int]:
    """(best bytes/s, bytes copied) of a large tensor copy: it reads and writes each byte."""
    timed = _timer(device)
    size = COPY_BYTES.get(device.type, 256 << 20)
    with torch.inference_mode():
        src = torch.empty(size, dtype=torch.uint8, device=device).fill_(1)
        dst = torch.empty_like(src)
        t = _best(timed, lambda: dst.copy_(src), 10, budget_s)
    return 2 * size / t, size


def measure_peaks(device: torch.device, dtype: str, budget_s: float = 3.0) -> Peaks:
    """The measured roofs of `device` for `dtype` (about `budget_s` seconds in all): the
    better of a matmul and a convolution for FLOP/s, a copy for bandwidth."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    mm, n = matmul_flops(device, dtype, budget_s / 3)
    conv, batch = conv_flops(device, dtype, budget_s / 3)
    bandwidth, size = copy_bandwidth(device, budget_s / 3)
    count = torch.get_num_threads()
    threads = f", {count} thread{'s' if count != 1 else ''}" if device.type == "cpu" else ""
    how = (f"{n}x{n} matmul" if mm >= conv else
           f"3x3 conv 256->256 on 28x28, batch {batch}")
    return Peaks(device_name(device), dtype, max(mm, conv), bandwidth, "measured",
                 f"cnncost microbenchmark (torch {torch.__version__}{threads}): best {dtype} "
                 f"{how}; best copy of {size >> 20} MiB")
