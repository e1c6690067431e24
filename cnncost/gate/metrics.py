"""The metrics a budget can gate, and the pass that computes them for one model.

:data:`METRICS` is the registry: name -> what it measures, its unit kind (for parsing
budgets and printing), whether lower or higher is better, whether it is measured (on
hardware, through ``cnncost.pytorch.measure``) or analytic (from ``cnncost.analyze``), and the
level its checks get when the budget file does not say. Analytic metrics never import
torch; measured ones import ``cnncost.pytorch.measure`` only when asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from ..errors import Loc, Problem, SpecError
from .keys import analysis_key


class Metric(NamedTuple):
    """One gateable number."""

    label: str  # what it is, for docs and help
    kind: str  # unit kind for cnncost.gate.quantity: count, bytes, ms, rate
    better: str  # "lower" or "higher"
    total: str | None  # the field of analysis Totals (analytic metrics); None if measured
    default_level: str  # level of a check that does not state one


METRICS: dict[str, Metric] = {
    "params": Metric("trainable parameters", "count", "lower", "params", "error"),
    "buffers": Metric("non-trainable buffers (batch-norm statistics)", "count", "lower",
                      "buffers", "error"),
    "macs": Metric("multiply-accumulates for the batch", "count", "lower", "macs", "error"),
    "flops": Metric("FLOPs (2 x MACs) for the batch", "count", "lower", "flops", "error"),
    "other_ops": Metric("elementwise ops for the batch", "count", "lower", "other_ops", "error"),
    "weights": Metric("weight memory in bytes (params x dtype bytes)", "bytes", "lower",
                      "weight_bytes", "error"),
    "activations": Metric("activation memory of one forward pass, in bytes", "bytes", "lower",
                          "activation_bytes", "error"),
    "peak_activation": Metric("peak live activation memory, in bytes", "bytes", "lower",
                              "peak_activation_bytes", "error"),
    "layers": Metric("primitive layers", "count", "lower", "layers", "error"),
    "latency_ms": Metric("measured median latency of one batch, ms", "ms", "lower", None, "warn"),
    "throughput": Metric("measured images per second", "rate", "higher", None, "warn"),
}
ANALYTIC = tuple(name for name, m in METRICS.items() if m.total is not None)
MEASURED = tuple(name for name, m in METRICS.items() if m.total is None)

# A measurer has the signature of cnncost.pytorch.measure.measure_latency. Tests set MEASURER to a
# fake; None means "import cnncost.pytorch.measure when needed".
Measurer = Callable[..., Any]
MEASURER: Measurer | None = None


def load_measurer() -> Measurer:
    """The latency measurer; SpecError (exit 2) if cnncost.pytorch.measure or torch is missing."""
    if MEASURER is not None:
        return MEASURER
    try:
        from ..pytorch.measure import measure_latency
    except ImportError as exc:
        raise SpecError([Problem(Loc(""), "", f"measured metrics ({', '.join(MEASURED)}) need "
                                 f"PyTorch, which cannot be imported here ({exc}): "
                                 "pip install 'cnncost[torch]' (or pip install torch), or run "
                                 "with --no-measure to skip them")]) from None
    return measure_latency


class Evaluation(NamedTuple):
    """The metrics of one model as built now."""

    values: dict  # metric name -> int (analytic) or float (measured)
    env: dict | None  # environment fingerprint of the measured values, None if not measured
    missing: str = ""  # why the measured values are absent when they were looked for
    notes: tuple = ()  # the analysis' caveats (opaque layers, ...)


def evaluate(spec: str, settings: dict, measure: dict | None = None,
             measurements: Any = None) -> Evaluation:
    """Analyze `spec` with `settings` (input, batch, dtype, vars, variant); if `measure` is
    given (runs, warmup, device), also measure latency and throughput; if `measurements`
    is given (a ``cnncost.gate.benchfile.Measurements``), take them from its matching bench
    result instead (``missing`` says why when none matches).

    Raises SpecError for a spec that does not analyze (or for two bench results that
    disagree about it).
    """
    from ..api import analyze

    analysis = analyze(spec, input=settings["input"], batch=settings["batch"],
                       dtype=settings["dtype"], set=settings["vars"] or None,
                       variant=settings["variant"])
    values: dict[str, Any] = {name: getattr(analysis.totals, total) for name in ANALYTIC
                              if (total := METRICS[name].total) is not None}
    if measurements is not None:
        key = analysis_key(spec, analysis)
        found = measurements.lookup(key)
        if found is None:
            return Evaluation(values, None, measurements.explain(key), analysis.notes)
        return Evaluation({**values, **measured_values(found)}, dict(found.env), "",
                          analysis.notes)
    env = None
    if measure is not None:
        try:
            latency = load_measurer()(spec, input=settings["input"], batch=settings["batch"],
                                      dtype=settings["dtype"], set=settings["vars"] or None,
                                      variant=settings["variant"], **measure)
        except ValueError as exc:  # the measurer's word for an unusable device or dtype
            raise SpecError([Problem(Loc(str(spec)), "", f"cannot measure latency: {exc}")]) \
                from None
        values.update(measured_values(latency))
        env = dict(latency.env)
    return Evaluation(values, env, "", analysis.notes)


# measured metric -> the field of a Latency (cnncost.pytorch.measure) or bench result it is
LATENCY_FIELDS = {"latency_ms": "median_ms", "throughput": "images_per_s"}


def measured_values(latency: Any) -> dict:
    """The measured metrics of a Latency (or a bench result shaped like one)."""
    return {metric: float(getattr(latency, field)) for metric, field in LATENCY_FIELDS.items()}
