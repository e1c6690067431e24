"""How far a latency measurement can be trusted: one set of rules for every command that
measures (`bench`, `verify`, `compare --measure` and `compare --measurements`).

No torch: a bench result read back from JSON (:class:`cnncost.gate.benchfile.BenchLatency`)
gets the same flag as the live measurement (:class:`cnncost.pytorch.measure.Latency`); both have
``median_ms``, ``iqr_ms`` and ``samples``.

- :func:`spread`: IQR / median, the relative spread of the timed runs.
- :func:`quality`: ``ok`` up to 10%, ``warn`` above 10% or with fewer than 5 timed runs
  (the spread itself is then barely known), ``unreliable`` above 25%.
- :func:`quality_text`: the flag as the tables show it, ``warn (12.3% IQR, 3 runs)``.
- :func:`cpu_contention`: the note for a CPU busy with other work, checked before
  measuring on the CPU.
"""

from __future__ import annotations

import os
from typing import Any

QUALITY_WARN = 0.10  # IQR / median above this: the spread deserves a look
QUALITY_UNRELIABLE = 0.25  # above this: do not trust the median
QUALITY_MIN_RUNS = 5  # fewer timed runs: the spread itself is not known well ("warn")
UNRELIABLE_WARNING = ("the runs spread widely (IQR above 25% of the median): do not trust "
                      "this median")


def spread(latency: Any) -> float:
    """IQR / median: the relative spread of the timed runs."""
    return latency.iqr_ms / latency.median_ms if latency.median_ms > 0 else 0.0


def quality(latency: Any) -> str:
    """ok, warn (spread above 10%, or fewer than 5 runs) or unreliable (above 25%)."""
    s = spread(latency)
    if s > QUALITY_UNRELIABLE:
        return "unreliable"
    if s > QUALITY_WARN or latency.samples < QUALITY_MIN_RUNS:
        return "warn"
    return "ok"


def quality_text(latency: Any, flag: str | None = None) -> str:
    """'ok', or the flag with its reason: 'warn (12.3% IQR, 3 runs)'."""
    flag = flag or quality(latency)
    if flag == "ok":
        return "ok"
    why = f"{100 * spread(latency):.1f}% IQR"
    if latency.samples < QUALITY_MIN_RUNS:
        why += f", {latency.samples} run{'s' if latency.samples != 1 else ''}"
    return f"{flag} ({why})"


def cpu_contention(threads: int, threads_option: str | None = "--threads") -> str | None:
    """A warning when other work competes for the CPUs PyTorch's threads will use.

    PyTorch's threads wait for each other; with a core taken by another process one
    thread stalls them all (on a busy 2-core machine we saw a 150-fold slowdown). The
    advice names `threads_option` (None: the command has no such option).
    """
    try:
        load = os.getloadavg()[0]
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None
    if load + threads <= cpus + 0.5:
        return None
    plural = "s" if threads != 1 else ""
    return (f"the CPU is busy (load average {load:.1f} on {cpus} CPUs) and PyTorch runs "
            f"{threads} thread{plural}: the latency may be inflated by contention; measure on a "
            "quiet machine" + (f" or with {threads_option} 1" if threads > 1 and threads_option
                               else ""))


__all__ = ["QUALITY_MIN_RUNS", "QUALITY_UNRELIABLE", "QUALITY_WARN", "UNRELIABLE_WARNING",
           "cpu_contention", "quality", "quality_text", "spread"]
