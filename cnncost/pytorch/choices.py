"""The words the PyTorch-side options accept, without importing torch, so that the CLI's
`--device`, `--dtype` and `--peaks` choices (and `--help`) come from here.

The modules that act on them check against the same tuples (measure.TORCH_DTYPES has a
key per DTYPES entry; tests/test_formats.py checks both).
"""

from __future__ import annotations

DEVICES = ("auto", "cpu", "cuda")  # auto: cuda when a GPU is present
VERIFY_DEVICES = (*DEVICES, "meta")  # meta: shapes and counts without allocating memory
DTYPES = ("fp32", "tf32", "bf16", "fp16")  # bench and measure; tf32: fp32 storage, TF32 math
VERIFY_DTYPES = ("fp32", "fp16", "bf16")
PEAK_CHOICES = ("auto", "table", "measure", "none")  # where bench takes its roofs from
