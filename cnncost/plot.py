"""Plots of a comparison (`cnncost compare --plot FILE.png`); matplotlib is optional.

Compared models: MACs against params, bubble area proportional to peak live activation
memory, each bubble labelled. A sweep: MACs against params as curves along the first
swept variable, one curve per setting of the other swept variables (or per spec).
matplotlib is imported here only; without it :func:`plot` raises :class:`PlotUnavailable`.
"""

from __future__ import annotations

from typing import Any


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise PlotUnavailable("--plot needs matplotlib, which is not installed: "
                              "pip install matplotlib (or pip install 'cnncost[plot]')") from None
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def plot(comparison: Any, path: str) -> None:
    """Draw `comparison` (cnncost.comparison.Comparison) into the image file `path`."""
    plt = _pyplot()
    rows = comparison.rows
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    if comparison.sweep and len(rows) > 1:
        first, others = comparison.sweep[0], comparison.sweep[1:]
        curves: dict[str, list[dict]] = {}
        for row in rows:
            key = " ".join([row["spec"], *(f"{n}={row[n]}" for n in others)])
            curves.setdefault(key, []).append(row)
        for index, (key, members) in enumerate(curves.items()):
            members = sorted(members, key=lambda r: r["macs"])
            ax.plot([r["macs"] / 1e6 for r in members], [r["params"] / 1e6 for r in members],
                    marker="o", label=key)
            if index != len(curves) - 1:  # label the points of one curve only: no overlap
                continue
            for r in members:
                ax.annotate(f"{first}={r[first]}", (r["macs"] / 1e6, r["params"] / 1e6),
                            fontsize=7, xytext=(3, 3), textcoords="offset points")
        if len(curves) <= 12:
            ax.legend(fontsize=7)
        ax.set_title(f"sweep of {first}" + (f" (curves: {', '.join(others)})" if others else ""))
    else:
        peak = max((r["peak_activation_bytes"] for r in rows), default=1) or 1
        for r in rows:
            size = 40 + 1500 * r["peak_activation_bytes"] / peak
            ax.scatter(r["macs"] / 1e6, r["params"] / 1e6, s=size, alpha=0.5)
            ax.annotate(r["model"], (r["macs"] / 1e6, r["params"] / 1e6), fontsize=8,
                        ha="center", va="center")
        ax.set_title("MACs vs params (bubble area: peak activation memory)")
    ax.set_xlabel("MACs (millions)")
    ax.set_ylabel("params (millions)")
    ax.grid(True, alpha=0.3)
    ax.margins(0.08)  # room for the labels of the outermost points
    fig.tight_layout()
    try:
        fig.savefig(path)
    finally:
        plt.close(fig)
