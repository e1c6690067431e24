"""Plots (`--plot FILE.png`); matplotlib is optional and imported here only.

- :func:`plot`, for `cnncost compare`: compared models as MACs against params, bubble
  area proportional to peak live activation memory, each bubble labelled; a sweep as
  curves along the first swept variable, one curve per setting of the others.
- :func:`roofline`, for `cnncost bench --per-layer`: each layer at its arithmetic
  intensity and achieved FLOP/s, under the device's two roofs, one panel per batch size.

Without matplotlib both raise :class:`PlotUnavailable`.
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


def scale(values: list[float]) -> tuple[float, str]:
    """(divisor, prefix) that shows `values` as plain numbers a reader expects: k, M or G."""
    top = max((abs(v) for v in values), default=0)
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if top >= factor:
            return factor, prefix
    return 1.0, ""


def plot(comparison: Any, path: Any, format: str | None = None) -> None:
    """Draw `comparison` (cnncost.comparison.compare.Comparison) into the image file `path`:
    MACs against params in units chosen for the data (k, M, G), each model a bubble whose
    area is its peak activation memory (a key shows what the sizes mean), or one curve per
    swept setting."""
    from ..formats.common import binary

    plt = _pyplot()
    rows = comparison.rows
    xdiv, xunit = scale([r["macs"] for r in rows])
    ydiv, yunit = scale([r["params"] for r in rows])
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    if comparison.sweep and len(rows) > 1:
        first, others = comparison.sweep[0], comparison.sweep[1:]
        curves: dict[str, list[dict]] = {}
        for row in rows:
            key = " ".join([row["spec"], *(f"{n}={row[n]}" for n in others)])
            curves.setdefault(key, []).append(row)
        for index, (key, members) in enumerate(curves.items()):
            members = sorted(members, key=lambda r: r["macs"])
            ax.plot([r["macs"] / xdiv for r in members], [r["params"] / ydiv for r in members],
                    marker="o", label=key)
            if index != len(curves) - 1:  # label the points of one curve only: no overlap
                continue
            for r in members:
                ax.annotate(f"{first}={r[first]}", (r["macs"] / xdiv, r["params"] / ydiv),
                            fontsize=7, xytext=(3, 3), textcoords="offset points")
        if len(curves) <= 12:
            ax.legend(fontsize=7, title="curve (settings held)", title_fontsize=7)
        ax.set_title(f"sweep of {first}: each point one value, labelled"
                     + (f" (curves: {', '.join(others)})" if others else ""))
    else:
        peak = max((r["peak_activation_bytes"] for r in rows), default=1) or 1

        def area(nbytes: float) -> float:
            return 40 + 1500 * nbytes / peak

        for r in rows:
            ax.scatter(r["macs"] / xdiv, r["params"] / ydiv, s=area(r["peak_activation_bytes"]),
                       alpha=0.5)
            ax.annotate(r["model"], (r["macs"] / xdiv, r["params"] / ydiv), fontsize=8,
                        ha="center", va="center")
        # the key: reference bubbles at the largest peak, half and a tenth of it
        for fraction in (1.0, 0.5, 0.1):
            ax.scatter([], [], s=area(peak * fraction), color="gray", alpha=0.4,
                       label=binary(peak * fraction))
        ax.legend(title="peak activation memory", fontsize=7, title_fontsize=7,
                  labelspacing=2.2, borderpad=1.2, loc="best", frameon=True)
        settings = getattr(comparison, "settings", None) or {}
        where = ", ".join(f"{k} {settings[k]}" for k in ("batch", "dtype") if k in settings)
        ax.set_title("MACs vs params; bubble area: peak activation memory"
                     + (f" ({where})" if where else ""))
    ax.set_xlabel(f"MACs per forward pass ({xunit or 'count'}{' MACs' if xunit else ''})")
    ax.set_ylabel(f"parameters ({yunit or 'count'}{' params' if yunit else ''})")
    ax.ticklabel_format(style="plain", useOffset=False)
    ax.grid(True, alpha=0.3)
    ax.margins(0.08)  # room for the labels of the outermost points
    fig.tight_layout()
    try:
        fig.savefig(path, format=format)
    finally:
        plt.close(fig)


BOUND_COLORS = {"compute": "tab:blue", "memory": "tab:orange", "overhead": "tab:red",
                None: "tab:gray"}
LABELLED = 5  # the slowest layers of each panel get their names written


def roofline(result: Any, path: str) -> None:
    """Draw the per-layer roofline of `result` (cnncost.pytorch.bench.BenchResult) into `path`."""
    plt = _pyplot()
    panels = [r for r in result.results if r.per_layer is not None]
    if not panels:
        raise ValueError("no per-layer timings to plot (run bench with --per-layer)")
    fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 5.5), dpi=120,
                             squeeze=False)
    peaks = result.peaks
    for ax, r in zip(axes[0], panels, strict=True):
        layers = [x for x in r.per_layer.layers
                  if x.intensity and x.time_ms > 0 and (x.flops + x.other_ops) > 0]
        hidden = [x for x in r.per_layer.layers if x not in layers]
        xs = [x.intensity for x in layers]
        ys = [(x.flops + x.other_ops) / (x.time_ms / 1000) for x in layers]
        for bound in BOUND_COLORS:
            chosen = [i for i, x in enumerate(layers) if x.bound == bound]
            if chosen:
                ax.scatter([xs[i] for i in chosen], [ys[i] for i in chosen],
                           s=[20 + 600 * layers[i].share for i in chosen], alpha=0.6,
                           color=BOUND_COLORS[bound],
                           label=f"{bound}-bound" if bound else "no verdict")
        for i in sorted(range(len(layers)), key=lambda i: -layers[i].time_ms)[:LABELLED]:
            ax.annotate(layers[i].name, (xs[i], ys[i]), fontsize=7, xytext=(4, 4),
                        textcoords="offset points")
        if peaks is not None and xs:
            low = min(min(xs), peaks.ridge) / 4
            high = max(max(xs), peaks.ridge) * 4
            grid = [low * (high / low) ** (k / 200) for k in range(201)]
            ax.plot(grid, [min(peaks.flops_per_s, peaks.bandwidth_bytes_per_s * a) for a in grid],
                    color="black", linewidth=1.2,
                    label=f"roof ({peaks.source}): {peaks.flops_per_s / 1e12:.3g} TFLOP/s, "
                          f"{peaks.bandwidth_bytes_per_s / 1e9:.3g} GB/s")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("arithmetic intensity (FLOP per byte moved)")
        ax.set_ylabel("achieved FLOP/s (FLOPs + other ops / measured time)")
        title = f"{result.spec['name']}, batch {r.batch}, {result.settings.dtype}"
        if hidden:
            share = sum(x.share for x in hidden)
            title += (f"\n{len(hidden)} layer{'s' if len(hidden) != 1 else ''} without work or "
                      f"traffic not shown ({100 * share:.1f}% of time)")
        ax.set_title(title, fontsize=9)
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{result.env['device_name']} ({result.env['device']}), torch "
                 f"{result.env['torch']}", fontsize=10)
    fig.tight_layout()
    try:
        fig.savefig(path)
    finally:
        plt.close(fig)
