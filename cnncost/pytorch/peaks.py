"""Peak FLOP/s and memory bandwidth of a device: the two roofs of a roofline.

No torch here. Two sources, best first:

- **measured**: a short microbenchmark (`cnncost.pytorch.microbench`: a large matmul for FLOP/s,
  a large copy for bandwidth) run by ``cnncost peaks --measure`` or by ``cnncost bench``
  when nothing better is known, cached in ``$CNNCOST_CACHE`` (default
  ``$XDG_CACHE_HOME/cnncost``, else ``~/.cache/cnncost``) as ``peaks.json``, keyed by
  device name, dtype, CPU threads and torch version, keeping the best measurement of
  each roof;
- **table**: :data:`KNOWN_DEVICES`, vendor datasheet figures for common GPUs (dense
  tensor-core peaks, no structured sparsity).

A datasheet peak is rarely reached (clocks under load, real kernels); a measured one is
what this machine delivers, so efficiencies against it are the more telling.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import NamedTuple

from ..safeio import write_output

TERA = 1e12
GIGA = 1e9


class Peaks(NamedTuple):
    """The roofs for one device and dtype."""

    device_name: str
    dtype: str  # fp32, tf32, bf16 or fp16
    flops_per_s: float
    bandwidth_bytes_per_s: float
    source: str  # "table" or "measured"
    reference: str  # the datasheet, or how it was measured

    @property
    def ridge(self) -> float:
        """Arithmetic intensity (FLOP per byte) where the two roofs meet."""
        return self.flops_per_s / self.bandwidth_bytes_per_s

    def to_dict(self) -> dict:
        return self._asdict()


class Device(NamedTuple):
    """A row of the datasheet table: dense peaks in TFLOP/s, bandwidth in GB/s."""

    name: str
    pattern: str  # regular expression over torch.cuda.get_device_name(), case-insensitive
    tflops: dict  # dtype -> dense peak TFLOP/s (fp32: CUDA cores; tf32/bf16/fp16: tensor cores)
    bandwidth_gb_s: float
    reference: str


# Dense peaks (datasheets print tensor-core figures "with sparsity", twice these).
# First match wins, so specific names come before general ones.
KNOWN_DEVICES: tuple[Device, ...] = (
    Device("NVIDIA H200 NVL", r"\bH200\b.*NVL",
           {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5}, 4800,
           "NVIDIA H200 Tensor Core GPU datasheet (NVL)"),
    Device("NVIDIA H200", r"\bH200\b",
           {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4}, 4800,
           "NVIDIA H200 Tensor Core GPU datasheet (SXM)"),
    Device("NVIDIA H100 PCIe", r"\bH100\b.*PCIe",
           {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0, "fp16": 756.0}, 2000,
           "NVIDIA H100 Tensor Core GPU datasheet (PCIe)"),
    Device("NVIDIA H100 NVL", r"\bH100\b.*NVL",
           {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5}, 3900,
           "NVIDIA H100 Tensor Core GPU datasheet (NVL)"),
    Device("NVIDIA H100 SXM", r"\bH100\b",
           {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4}, 3350,
           "NVIDIA H100 Tensor Core GPU datasheet (SXM)"),
    Device("NVIDIA A100 80GB PCIe", r"\bA100\b.*80GB.*PCIe|\bA100\b.*PCIe.*80GB",
           {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0}, 1935,
           "NVIDIA A100 Tensor Core GPU datasheet (80GB PCIe)"),
    Device("NVIDIA A100 80GB SXM", r"\bA100\b.*80GB",
           {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0}, 2039,
           "NVIDIA A100 Tensor Core GPU datasheet (80GB SXM)"),
    Device("NVIDIA A100 40GB", r"\bA100\b",
           {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0}, 1555,
           "NVIDIA A100 Tensor Core GPU datasheet (40GB)"),
    Device("NVIDIA L40S", r"\bL40S\b",
           {"fp32": 91.6, "tf32": 183.0, "bf16": 362.05, "fp16": 362.05}, 864,
           "NVIDIA L40S datasheet"),
    Device("NVIDIA L4", r"\bL4\b",
           {"fp32": 30.3, "tf32": 60.0, "bf16": 121.0, "fp16": 121.0}, 300,
           "NVIDIA L4 Tensor Core GPU datasheet"),
    Device("NVIDIA A10", r"\bA10\b",
           {"fp32": 31.2, "tf32": 62.5, "bf16": 125.0, "fp16": 125.0}, 600,
           "NVIDIA A10 Tensor Core GPU datasheet"),
    Device("NVIDIA V100 SXM2", r"\bV100\b.*SXM",
           {"fp32": 15.7, "fp16": 125.0}, 900,
           "NVIDIA V100 Tensor Core GPU datasheet (SXM2; no bf16 or tf32)"),
    Device("NVIDIA V100 PCIe", r"\bV100\b",
           {"fp32": 14.0, "fp16": 112.0}, 900,
           "NVIDIA V100 Tensor Core GPU datasheet (PCIe; no bf16 or tf32)"),
    Device("NVIDIA T4", r"\bT4\b",
           {"fp32": 8.1, "fp16": 65.0}, 320,
           "NVIDIA T4 Tensor Core GPU datasheet (no bf16 or tf32)"),
    Device("NVIDIA GeForce RTX 4090", r"RTX 4090",
           {"fp32": 82.6, "tf32": 82.6, "bf16": 165.2, "fp16": 165.2}, 1008,
           "NVIDIA Ada Lovelace GPU architecture whitepaper (fp32 accumulate)"),
    Device("NVIDIA GeForce RTX 3090", r"RTX 3090",
           {"fp32": 35.6, "tf32": 35.6, "bf16": 71.0, "fp16": 71.0}, 936,
           "NVIDIA Ampere GA102 GPU architecture whitepaper (fp32 accumulate)"),
)

PEAK_DTYPES = ("fp32", "tf32", "bf16", "fp16")


def lookup(device_name: str, dtype: str) -> Peaks | None:
    """The datasheet peaks of `device_name` for `dtype`, or None if the table lacks them."""
    for device in KNOWN_DEVICES:
        if re.search(device.pattern, device_name, re.IGNORECASE):
            tflops = device.tflops.get(dtype)
            if tflops is None:
                return None
            return Peaks(device_name, dtype, tflops * TERA, device.bandwidth_gb_s * GIGA,
                         "table", f"{device.reference}: {device.name}")
    return None


# ----------------------------------------------------------------- the cache
def cache_dir() -> Path:
    explicit = os.environ.get("CNNCOST_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cnncost"


def cache_file() -> Path:
    return cache_dir() / "peaks.json"


def cache_key(device_name: str, dtype: str, threads: int | None, torch_version: str) -> str:
    """Measured peaks depend on all of these (CPU threads only matter on a CPU)."""
    return f"{device_name} | {dtype} | threads={threads or '-'} | torch {torch_version}"


def _read_cache() -> dict:
    try:
        data = json.loads(cache_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # no cache, or a broken one: measure again
    return data if isinstance(data, dict) else {}


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) and value > 0


def cached(key: str) -> Peaks | None:
    """The measured peaks stored under `key`, or None (also for a malformed entry)."""
    entry = _read_cache().get(key)
    if not isinstance(entry, dict):
        return None
    try:
        peaks = Peaks(**entry)
    except TypeError:
        return None
    if _positive(peaks.flops_per_s) and _positive(peaks.bandwidth_bytes_per_s) \
            and all(isinstance(v, str) for v in (peaks.device_name, peaks.dtype, peaks.reference)):
        return peaks
    return None


def store(key: str, peaks: Peaks) -> Peaks:
    """Add `peaks` to the cache under `key` (atomic write) and return what is cached now.

    A peak is the most the device has been seen to do, so each roof keeps the best
    measurement so far: a run slowed by other work never lowers it. OSError if the
    cache cannot be written.
    """
    path = cache_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = _read_cache()
    old = cached(key)
    if old is not None:
        peaks = peaks._replace(
            flops_per_s=max(peaks.flops_per_s, old.flops_per_s),
            bandwidth_bytes_per_s=max(peaks.bandwidth_bytes_per_s, old.bandwidth_bytes_per_s),
            reference=peaks.reference if peaks.flops_per_s >= old.flops_per_s else old.reference)
    data[key] = peaks.to_dict()
    write_output(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return peaks
