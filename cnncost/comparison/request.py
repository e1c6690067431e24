"""One `cnncost compare` run as a library call: a :class:`CompareRequest` in, a
:class:`CompareRun` out.

The command parses its options into a CompareRequest (plain data) and calls
:func:`execute`, which plans the points, analyzes them, adds measured columns (from a
measurer such as :func:`cnncost.pytorch.measure.measure_latency`, or from bench files
read by :mod:`cnncost.gate.benchfile`) and builds the table. Nothing here prints or
imports torch: warnings come back as lines, failures as outcomes with problems.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any, NamedTuple

from ..errors import Loc, Problem, SpecError
from . import compare as lib
from .compare import Comparison, Outcome

# Given the number of points, a context whose value is called with the number of points
# just analyzed (a progress bar), or None.
Progress = Callable[[int], AbstractContextManager[Callable[[int], None] | None]]


class MeasureRequest(NamedTuple):
    """`--measure`: time every model here with PyTorch."""

    device: str = "auto"
    runs: int = 50
    warmup: int = 10


class CompareRequest(NamedTuple):
    """Everything a compare run needs, parsed and checked."""

    specs: tuple[str, ...]
    grid: list[tuple[str, list[Any]]]  # swept variables and their values, in order
    options: dict[str, Any]  # analysis options: input, batch, dtype, set, variant, convention
    baseline: str | None = None
    sort: str | None = None
    reverse: bool = False
    columns: list[str] | None = None  # wanted columns; None: the defaults
    jobs: int = 1
    measure: MeasureRequest | None = None
    executor: str = "local"  # a key of comparison.executors.EXECUTORS
    address: str | None = None  # the cluster's scheduler (--executor dask)
    connect_timeout: float | None = None  # seconds to reach it (None: the default)


class CompareRun(NamedTuple):
    """The result: the table, the columns to show, and warning lines for stderr."""

    comparison: Comparison
    columns: list[str]
    warnings: list[str]


def execute(request: CompareRequest, *, measurer: Callable[..., Any] | None = None,
            measurements: Any = None, progress: Progress | None = None) -> CompareRun:
    """Run `request`: analyze every point, then measure them with `measurer` (when
    request.measure is set) or look them up in `measurements` (bench files), and tabulate."""
    points, failures = lib.plan(request.specs, request.grid, request.options.get("input"))
    options = request.options
    context = progress(len(points)) if progress is not None else nullcontext(None)
    with context as advance:
        outcomes = lib.run(points, options, jobs=request.jobs, executor=request.executor,
                           address=request.address, connect_timeout=request.connect_timeout,
                           progress=advance)
    measured: dict[str, Any] | None = None
    env: dict[str, Any] | None = None
    notes: list[str] = []
    warnings: list[str] = []
    if measurer is not None and request.measure is not None:
        busy = busy_note(request.measure.device)  # before measuring: our runs are no load
        notes += [busy] if busy else []
        measured, env, measure_failures = measure_all(measurer, outcomes, options,
                                                      request.measure)
        failures += measure_failures
        failed = {o.point.label for o in measure_failures}
        outcomes = [o for o in outcomes if o.point.label not in failed]
    if measurements is not None:
        measured, env, lookup_failures = from_files(measurements, outcomes, options, warnings)
        failures += lookup_failures
        failed = {o.point.label for o in lookup_failures}
        outcomes = [o for o in outcomes if o.point.label not in failed]
    settings = {k: v for k, v in options.items() if v not in (None, {})}
    comparison = lib.table(outcomes, baseline=request.baseline, sort=request.sort,
                           reverse=request.reverse, sweep=[n for n, _ in request.grid],
                           settings=settings, measured=measured, env=env, failures=failures,
                           notes=notes)
    return CompareRun(comparison, lib.columns_for(comparison, request.columns), warnings)


def busy_note(device: str) -> str | None:
    """`cnncost bench`'s note for a CPU busy with other work (cnncost.quality.cpu_contention),
    when --measure runs on the CPU; None on a GPU or when torch is not loaded (a stand-in
    measurer). compare has no --threads, so the note does not suggest it."""
    from ..quality import cpu_contention

    threads = cpu_threads(device)
    return cpu_contention(threads, threads_option=None) if threads else None


def cpu_threads(device: str) -> int | None:
    """PyTorch's CPU thread count if `device` resolves to the CPU, else None."""
    torch = sys.modules.get("torch")  # the measurer imported it; never imported here
    if torch is None or not hasattr(torch, "get_num_threads"):
        return None
    on_cpu = (not torch.cuda.is_available()) if device == "auto" else device.startswith("cpu")
    return int(torch.get_num_threads()) if on_cpu else None


def from_files(measurements: Any, outcomes: list[Outcome], options: Mapping[str, Any],
               warnings: list[str]) -> tuple[dict[str, Any], dict[str, Any], list[Outcome]]:
    """--measurements: the bench result of every analyzed point that has one (label ->
    BenchLatency), the environment of the first, and the points whose results conflict.
    One warning line names the points without a result, one more says when the results
    come from different environments."""
    from ..gate.keys import key_for

    measured: dict[str, Any] = {}
    unmatched: list[str] = []
    failures: list[Outcome] = []
    for outcome in outcomes:
        if outcome.problems:
            continue
        key = key_for(outcome.point.spec, name=outcome.name, input_shape=outcome.input_shape,
                      vars=outcome.vars or {}, variant=options["variant"],
                      batch=options["batch"], dtype=options["dtype"])
        try:
            found = measurements.lookup(key)
        except SpecError as exc:
            failures.append(outcome._replace(problems=tuple(exc.problems)))
            continue
        if found is None:
            unmatched.append(outcome.point.label)
        else:
            measured[outcome.point.label] = found
    if unmatched:
        warnings.append(f"--measurements: no bench result matched {', '.join(unmatched)} "
                        f"(batch {options['batch']}, dtype {options['dtype']}; a result "
                        "matches the same spec file, input, vars, variant, batch and dtype): "
                        "their measured cells are empty")
    envs = [lat.env for lat in measured.values()]
    differ = sorted({k for env in envs for k in {*env, *envs[0]} if env.get(k) != envs[0].get(k)})
    if differ:
        warnings.append(f"--measurements: the results were measured in different "
                        f"environments ({', '.join(differ)} differ); the header shows the "
                        "first's")
    return measured, dict(envs[0]) if envs else {}, failures


def measure_all(measurer: Callable[..., Any], outcomes: list[Outcome],
                options: Mapping[str, Any],
                how: MeasureRequest) -> tuple[dict[str, Any], dict[str, Any], list[Outcome]]:
    """Latency of every analyzed point: label -> Latency, the env of the first, failures."""
    measured: dict[str, Any] = {}
    env: dict[str, Any] | None = None
    failures: list[Outcome] = []
    for outcome in outcomes:
        if outcome.problems:
            continue
        point = outcome.point
        overrides = {**options["set"], **dict(point.settings)}
        try:
            latency = measurer(point.spec, input=options["input"], batch=options["batch"],
                               dtype=options["dtype"], device=how.device, set=overrides or None,
                               variant=options["variant"], runs=how.runs, warmup=how.warmup)
        except SpecError as exc:
            failures.append(outcome._replace(problems=tuple(exc.problems)))
            continue
        except Exception as exc:  # noqa: BLE001 - a measurement failure names its model
            failures.append(Outcome(point, outcome.name, None, (
                Problem(Loc(""), "--measure", f"{type(exc).__name__}: {exc}"),)))
            continue
        measured[point.label] = latency
        if env is None:
            env = dict(latency.env)
    return measured, env or {}, failures


__all__ = ["CompareRequest", "CompareRun", "MeasureRequest", "execute"]
