"""Output of `cnncost peaks`: this device's roofs, and with --list the datasheet table.

Registered in cnncost.formats as two kinds with the same formats: ``peaks`` renders a
:class:`PeaksReport` (the datasheet entry and the cached measurement per dtype),
``datasheet`` the known devices (cnncost.pytorch.peaks.KNOWN_DEVICES). Nothing here
imports torch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple

from .common import si


class PeaksReport(NamedTuple):
    """One device's roofs: per dtype, the datasheet entry and the measured peaks, or None."""

    cache_file: str
    found: list[dict[str, Any]]  # device_name, dtype, table, measured, cache_key


def _line(p: Any) -> str:
    return (f"{p.dtype:<5} {si(p.flops_per_s, 'FLOP/s'):>14}  "
            f"{si(p.bandwidth_bytes_per_s, 'B/s'):>11}  "
            f"ridge {p.ridge:6.1f} FLOP/B  {p.source}: {p.reference}")


def render_table(report: PeaksReport, **_: Any) -> str:
    found = report.found
    lines = [f"device: {found[0]['device_name']}", f"cache: {report.cache_file}"]
    for f in found:
        lines.append(_line(f["table"]) if f["table"] else
                     f"{f['dtype']:<5} table: not listed (cnncost peaks --list)")
        lines.append(_line(f["measured"]) if f["measured"] else
                     f"{f['dtype']:<5} measured: none cached (run cnncost peaks --measure)")
    return "\n".join(lines) + "\n"


def render_json(report: PeaksReport, **_: Any) -> str:
    return json.dumps([{**f, "table": f["table"] and f["table"].to_dict(),
                        "measured": f["measured"] and f["measured"].to_dict()}
                       for f in report.found], indent=2) + "\n"


def datasheet_table(devices: Sequence[Any], dtypes: Sequence[str], **_: Any) -> str:
    lines = ["dense peaks in TFLOP/s (no structured sparsity), bandwidth in GB/s; matched "
             "against the CUDA device name", "",
             f"{'device':<24}" + "".join(f"{d:>8}" for d in dtypes) + f"{'GB/s':>8}  source"]
    for d in devices:
        cells = "".join(f"{d.tflops[t]:>8g}" if t in d.tflops else f"{'-':>8}" for t in dtypes)
        lines.append(f"{d.name:<24}{cells}{d.bandwidth_gb_s:>8g}  {d.reference}")
    return "\n".join(lines) + "\n"


def datasheet_json(devices: Sequence[Any], dtypes: Sequence[str], **_: Any) -> str:
    return json.dumps([d._asdict() for d in devices], indent=2) + "\n"
