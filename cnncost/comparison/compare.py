"""Compare architectures and sweep design spaces: the rows of `cnncost compare`.

Plain data between passes:

1. :func:`plan` turns specs and ``--sweep NAME=V1,V2`` settings into a list of
   :class:`Point` (one spec with one setting of its variables), the sweep grid expanded
   as a Cartesian product; unknown sweep variables are reported with a did-you-mean.
2. :func:`run` analyzes every point (in this process, across ``jobs`` processes, or
   on a dask cluster: :mod:`cnncost.comparison.executors`) and returns one
   :class:`Outcome` per point: the totals, or the problems that made it fail. A
   failing point never stops the others.
3. :func:`table` turns the outcomes into :class:`Comparison` rows (plain dicts with
   exact integers) with ratios against a baseline, sorted if asked.

:func:`compare` is the library entry point (``cnncost.compare``; this module is named
``comparison`` so that the package attribute stays the function) and returns a pandas
DataFrame (pandas is imported there only). Nothing here prints; rendering lives in
:mod:`cnncost.formats.comparison`.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from ..errors import Loc, Problem, SpecError, did_you_mean, one_of
from ..quality import quality, quality_text

# column -> (header, meaning). The order is the default order of the table.
COLUMNS: dict[str, tuple[str, str]] = {
    "model": ("model", "spec name, with the swept settings"),
    "params": ("params", "trainable parameters (under the chosen counting convention)"),
    "macs": ("MACs", "multiply-accumulates (under the chosen counting convention)"),
    "flops": ("FLOPs", "2 x MACs"),
    "weight_bytes": ("weights", "weight memory: params x bytes per element"),
    "peak_activation_bytes": ("peak act.", "peak live activation memory"),
    "depth": ("depth", "layers with weights (conv and linear)"),
    "params_ratio": ("params x", "params / baseline params"),
    "macs_ratio": ("MACs x", "MACs / baseline MACs"),
    "peak_ratio": ("peak x", "peak activations / baseline peak activations"),
    # measured (--measure only)
    "latency_ms": ("latency ms", "median latency of one batch, milliseconds (measured)"),
    "latency_p10_ms": ("p10 ms", "10th percentile latency (measured)"),
    "latency_p90_ms": ("p90 ms", "90th percentile latency (measured)"),
    "images_per_s": ("images/s", "throughput: batch / median latency (measured)"),
    "latency_ratio": ("latency x", "latency / baseline latency (measured)"),
    "quality": ("quality", "how far the median can be trusted, as cnncost bench flags it: ok, "
                           "warn (IQR above 10% of the median, or fewer than 5 runs), "
                           "unreliable (IQR above 25%)"),
}
ANALYTIC_DEFAULT = ("model", "params", "macs", "flops", "weight_bytes", "peak_activation_bytes",
                    "depth", "params_ratio", "macs_ratio", "peak_ratio")
MEASURED = ("latency_ms", "latency_p10_ms", "latency_p90_ms", "images_per_s", "latency_ratio",
            "quality")
RATIOS = {"params_ratio": "params", "macs_ratio": "macs", "peak_ratio": "peak_activation_bytes",
          "latency_ratio": "latency_ms"}
GC_EVERY = 1000  # points between collections of young objects in a sweep (analyze_points)
SORT_KEYS = ("model", "params", "macs", "flops", "weight_bytes", "peak_activation_bytes",
             "depth", "latency_ms", "images_per_s")


class Point(NamedTuple):
    """One thing to analyze: a spec with one setting of its variables."""

    spec: str  # path or bundled name, as given
    settings: tuple  # ((name, value), ...) from --sweep, in sweep order
    label: str  # unique row name: spec name plus swept settings


class Outcome(NamedTuple):
    """What analyzing one point gave: totals, or the problems that stopped it."""

    point: Point
    name: str  # the spec's own name ("" if it failed to load)
    totals: dict | None  # Totals._asdict(), None on failure
    problems: tuple  # Problem, ...; empty on success
    input_shape: tuple = ()  # per sample, as analyzed (for matching bench results)
    vars: dict | None = None  # the variables as resolved (for matching bench results)
    notes: tuple = ()  # the analysis' caveats (e.g. opaque layers), shown under the rows


class Comparison(NamedTuple):
    """The rows of a comparison and the points that failed."""

    rows: list  # dicts: column -> value (ints exact, ratios float)
    failures: list  # Outcome with problems
    baseline: str  # label of the reference row ("" if none)
    sweep: tuple  # names of swept variables (their columns follow "model")
    settings: dict  # input, batch, dtype, convention, set, variant (for headers)
    env: dict | None = None  # measurement environment (device, torch, dtype...), if measured
    notes: tuple = ()  # about the measurement as a whole, e.g. a busy CPU (bench's notes)

    def __repr__(self) -> str:
        """One line, for a REPL: the models and how many failed."""
        names = ", ".join(str(r["model"]) for r in self.rows[:4])
        more = f", ... ({len(self.rows)} rows)" if len(self.rows) > 4 else ""
        failed = f", {len(self.failures)} failed" if self.failures else ""
        return f"<Comparison {names}{more}{failed}>"

    def _repr_html_(self) -> str:
        """The rows as a table for Jupyter (the default columns), every text escaped."""
        import html

        cols = columns_for(self)
        head = "".join(f"<th>{html.escape(COLUMNS[c][0] if c in COLUMNS else c)}</th>"
                       for c in cols)

        def cell(value: Any) -> str:
            if isinstance(value, bool) or value is None:
                return html.escape(str(value if value is not None else "-"))
            if isinstance(value, int):
                return f"{value:,}"
            if isinstance(value, float):
                return f"{value:.3f}"
            return html.escape(str(value))

        body = "".join("<tr>" + "".join(f"<td>{cell(r.get(c))}</td>" for c in cols) + "</tr>"
                       for r in self.rows)
        return f"<div><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _usage(message: str) -> SpecError:
    return SpecError([Problem(Loc(""), "", message)])


def parse_sweep(items: Iterable[str]) -> list[tuple[str, list]]:
    """['width=0.25,0.5', ...] -> [('width', [0.25, 0.5]), ...]; SpecError naming the bad item."""
    from ..api import parse_value

    out: list[tuple[str, list]] = []
    problems = []
    for item in items:
        name, eq, values = item.partition("=")
        name = name.strip()
        parts = [v.strip() for v in values.split(",")]
        if not eq or not name:
            problems.append(f"--sweep {item!r}: expected NAME=V1,V2,... such as width=0.5,1.0")
        elif any(not p for p in parts):
            problems.append(f"--sweep {item!r}: empty value in the list (expected NAME=V1,V2,...)")
        elif name in (n for n, _ in out):
            problems.append(f"--sweep {item!r}: variable {name!r} is swept twice")
        else:
            try:
                out.append((name, [parse_value(p) for p in parts]))
            except ValueError as exc:
                problems.append(f"--sweep {name}: {exc}")
    if problems:
        raise SpecError([Problem(Loc(""), "", p) for p in problems])
    return out


def _source(spec: str) -> Any:
    """The spec's SpecSource (its text, read once), or None for a PyTorch model, which is
    loaded by reference (imported by each process that analyzes it). Cached per working
    directory, where a relative path names another file."""
    return _read_source(spec, os.getcwd())


@lru_cache(maxsize=64)
def _read_source(spec: str, cwd: str) -> Any:
    from ..api import is_model_ref, read_source

    return None if is_model_ref(spec) else read_source(spec)


@lru_cache(maxsize=64)
def _from_source(source: Any) -> Any:
    """One Spec per source and process, so that its compiled plan (lang/plan.py) is reused
    by every point of the sweep this process analyzes."""
    from ..api import load_source

    return load_source(source)


@lru_cache(maxsize=16)
def _load_model(spec: str, input: Any, cwd: str) -> Any:
    from ..api import load

    return load(spec, input)


def _load_cached(spec: str, input: Any = None) -> Any:
    """The Spec of a spec argument, read and parsed once per process."""
    source = _source(spec)
    return _from_source(source) if source is not None else \
        _load_model(spec, input, os.getcwd())


def clear_caches() -> None:
    """Forget the specs this process has read and loaded (a test that writes a spec file
    again under the same name)."""
    for cache in (_read_source, _from_source, _load_model):
        cache.cache_clear()


def _fmt(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def plan(specs: Sequence[str], sweep: Sequence[tuple[str, list]] = (),
         input: Any = None) -> tuple[list[Point], list[Outcome]]:
    """Points to analyze, and the specs that failed before any analysis.

    Each spec is crossed with the full sweep grid. A spec that does not load, or that
    lacks a swept variable, becomes a failure (with a did-you-mean over its variables).
    """
    points: list[Point] = []
    failures: list[Outcome] = []
    names = [n for n, _ in sweep]
    grid = list(itertools.product(*(values for _, values in sweep))) if sweep else [()]
    labels: dict[str, int] = {}
    for spec in specs:
        try:
            loaded = _load_cached(str(spec), input)
        except SpecError as exc:
            failures.append(Outcome(Point(str(spec), (), str(spec)), "", None, tuple(exc.problems)))
            continue
        missing = [n for n in names if n not in loaded.vars]
        if missing:
            problems = tuple(Problem(Loc(loaded.file), "--sweep", f"unknown variable {n!r}"
                                     f"{did_you_mean(n, loaded.vars)} (vars: "
                                     f"{one_of(loaded.vars) or 'none defined'})") for n in missing)
            failures.append(Outcome(Point(str(spec), (), loaded.name), loaded.name, None, problems))
            continue
        for combo in grid:
            settings = tuple(zip(names, combo, strict=True))
            label = " ".join([loaded.name, *(f"{n}={_fmt(v)}" for n, v in settings)])
            labels[label] = labels.get(label, 0) + 1
            if labels[label] > 1:  # the same spec given twice
                label = f"{label} #{labels[label]}"
            points.append(Point(str(spec), settings, label))
    return points, failures


def analyze_point(point: Point, options: Mapping[str, Any], source: Any = None) -> Outcome:
    """Analyze one point; problems are returned, not raised (pure data, picklable).

    `source`: the spec's SpecSource (its text, read by the process that planned the
    sweep), parsed here instead of reading `point.spec` again: a worker on another
    machine need not see the file. Without it, the spec is loaded by its name.
    """
    from ..api import analyze

    overrides = dict(options.get("set") or {})
    overrides.update(point.settings)
    try:
        spec = _from_source(source) if source is not None else \
            _load_cached(point.spec, options.get("input"))
        result = analyze(spec, input=options.get("input"), batch=options.get("batch", 1),
                         dtype=options.get("dtype", "fp32"), set=overrides or None,
                         variant=options.get("variant"),
                         convention=options.get("convention", "torchvision"), rows=False)
    except SpecError as exc:
        swept = {f"--set {name}": f"--sweep {name}" for name, _ in point.settings}
        return Outcome(point, "", None, tuple(p._replace(path=swept.get(p.path, p.path))
                                              for p in exc.problems))
    return Outcome(point, result.name, result.totals._asdict(), (), tuple(result.input_shape),
                   dict(result.vars), result.notes)


def analyze_points(points: Sequence[Point], options: Mapping[str, Any],
                   progress: Callable[[int], None] | None = None,
                   sources: Mapping[str, Any] | None = None) -> list[Outcome]:
    """Analyze `points` one after another (`sources`: spec -> SpecSource, see
    analyze_point), with the cyclic garbage collector paused (see
    cnncost.api.gc_paused) and run on the young objects only every GC_EVERY points: a
    sweep keeps its spec's plan and what it caches alive, which a collection after each
    point would walk again and again."""
    import gc

    from ..api import gc_paused

    out = []
    with gc_paused():
        for n, point in enumerate(points, 1):
            out.append(analyze_point(point, options,
                                     sources.get(point.spec) if sources else None))
            if progress:
                progress(1)
            if n % GC_EVERY == 0:
                gc.collect(0)
    return out


def _analyze_chunk(points: list[Point], options: dict, sources: dict) -> list[Outcome]:
    """A worker's task: consecutive points, with the text of the specs they name."""
    return analyze_points(points, options, sources=sources)


def _sources(points: Sequence[Point]) -> dict[str, Any]:
    """spec -> SpecSource for the specs of `points` that read (None: load by name, so that
    a spec that cannot be read fails in its points with the problem as usual)."""
    out: dict[str, Any] = {}
    for spec in dict.fromkeys(p.spec for p in points):
        try:
            out[spec] = _source(spec)
        except SpecError:
            out[spec] = None
    return out


def run(points: Sequence[Point], options: Mapping[str, Any] | None = None, *, jobs: int = 1,
        executor: str = "local", address: str | None = None,
        connect_timeout: float | None = None,
        progress: Callable[[int], None] | None = None) -> list[Outcome]:
    """Analyze every point, in order (the order does not depend on how they are run).

    `executor` (a key of :data:`cnncost.comparison.executors.EXECUTORS`): ``local`` runs
    in this process, or with `jobs` > 1 spreads chunks of points over that many
    processes; ``dask`` hands the chunks to the dask.distributed scheduler at `address`
    (or to a local cluster of `jobs` processes). Each chunk carries the text of its
    specs, so workers need cnncost but not the spec files. Raises SpecError when the
    executor is not installed or cannot be reached (within `connect_timeout` seconds).
    `progress(n)` is called after each n points finish (for a progress bar).
    """
    from . import executors

    options = dict(options or {})
    executors.check(executor, jobs, address)
    order = evaluation_order(points, lambda spec: _shaping_names(spec, options))
    done = _run([points[i] for i in order], options, jobs, executor, address,
                connect_timeout, progress)
    out: list[Any] = [None] * len(points)
    for i, outcome in zip(order, done, strict=True):
        out[i] = outcome
    return out


def evaluation_order(points: Sequence[Point],
                     shaping: Callable[[str], frozenset[str]]) -> list[int]:
    """The order to analyze `points` in (indices); the outcomes go back in their order.

    The points' own order, except that in each run of points of one spec the swept
    variables that set its input shape (`shaping(spec)`: resolution, say) vary fastest.
    Neighbouring resolutions give the deeper stages the same feature maps, so the spec's
    plan takes their block calls from the point before instead of evaluating them
    (cnncost.lang.plan); with a width varying fastest, no call is alike the last one.
    """
    order: list[int] = []
    start = 0
    while start < len(points):
        stop = start
        while stop < len(points) and points[stop].spec == points[start].spec:
            stop += 1
        group = range(start, stop)
        swept = bool(points[start].settings)  # else nothing to order: the spec is not read
        order += _shaping_last(points, group, shaping(points[start].spec) if swept
                               else frozenset())
        start = stop
    return order


def _shaping_last(points: Sequence[Point], group: range, shaping: frozenset[str]) -> list[int]:
    """The points of `group` sorted with the `shaping` settings varying fastest: by the rank
    of each setting's value (its first appearance), those that do not set the input
    shape first. As they come when no setting or every setting sets it."""
    names = [name for name, _ in points[group.start].settings]
    if not any(n in shaping for n in names) or all(n in shaping for n in names):
        return list(group)
    ranks: dict[str, dict[Any, int]] = {}
    keys = {}
    try:
        for k in group:
            other: list[int] = []
            shape: list[int] = []
            for name, value in points[k].settings:
                seen = ranks.setdefault(name, {})
                (shape if name in shaping else other).append(
                    seen.setdefault((type(value), value), len(seen)))
            keys[k] = (other, shape)
    except TypeError:  # a value that is no key: as they come
        return list(group)
    return sorted(group, key=keys.__getitem__)


def _shaping_names(spec: str, options: Mapping[str, Any]) -> frozenset[str]:
    """The variables a spec's input shape is written with (none when --input sets it, for
    a PyTorch model, which is not imported for this, or when the spec does not load: its
    points then fail as usual)."""
    from ..lang.expr import names_in

    if options.get("input"):
        return frozenset()
    try:
        source = _source(spec)
        if source is None:
            return frozenset()
        loaded = _from_source(source)
    except Exception:  # noqa: BLE001  only an evaluation order: any failure means none
        return frozenset()
    raw = getattr(loaded, "input", None)
    if not isinstance(raw, (list, tuple)):
        return frozenset()
    found: set[str] = set()
    for item in raw:
        names = names_in(item)
        if names is None:
            return frozenset()
        found |= names
    return frozenset(found)


def _run(points: Sequence[Point], options: dict[str, Any], jobs: int, executor: str,
         address: str | None, connect_timeout: float | None,
         progress: Callable[[int], None] | None) -> list[Outcome]:
    """run() on points in the order given."""
    from . import executors

    if executor == "local" and (jobs <= 1 or len(points) < 2):
        return analyze_points(points, options, progress)
    from concurrent.futures import as_completed

    timeout = executors.CONNECT_TIMEOUT if connect_timeout is None else connect_timeout
    sources = _sources(points)
    with executors.open_pool(executor, jobs, address, timeout) as pool:
        # small enough to spread evenly (4 chunks a worker), big enough that a task's
        # overhead (pickling, a round trip to the scheduler) is small against its points
        size = max(1, min(pool.chunk, len(points) // (pool.workers * 4)))
        chunks = [list(points[i:i + size]) for i in range(0, len(points), size)]
        results: list[list[Outcome]] = [[] for _ in chunks]
        futures = {pool.executor.submit(_analyze_chunk, chunk, options,
                                        {p.spec: sources[p.spec] for p in chunk}): i
                   for i, chunk in enumerate(chunks)}
        for future in as_completed(futures):
            index = futures[future]
            results[index] = future.result()
            if progress:
                progress(len(results[index]))
    return [o for chunk in results for o in chunk]


def _ratio(value: Any, base: Any) -> float | None:
    if value is None or base in (None, 0):
        return None
    return value / base


def table(outcomes: Sequence[Outcome], *, baseline: str | None = None, sort: str | None = None,
          reverse: bool = False, sweep: Sequence[str] = (), settings: Mapping | None = None,
          measured: Mapping[str, Any] | None = None, env: dict | None = None,
          failures: Sequence[Outcome] = (), notes: Sequence[str] = ()) -> Comparison:
    """Comparison rows from outcomes: totals, ratios to `baseline` (default: the first row).

    `measured` maps a row label to a Latency-like object (median_ms, p10_ms, p90_ms,
    iqr_ms, samples, images_per_s); each measured row gets bench's quality flag
    (:func:`cnncost.quality.quality`), and a hidden "quality_text" with its reason.
    Raises SpecError if `baseline` or `sort` names nothing known.
    """

    rows = []
    failed = list(failures)
    caveats: dict[str, list[str]] = {}  # a note -> the models it is about
    for outcome in outcomes:
        if outcome.problems:
            failed.append(outcome)
            continue
        for note in outcome.notes:
            caveats.setdefault(note, []).append(outcome.point.label)
        t = outcome.totals or {}
        row: dict[str, Any] = {"model": outcome.point.label, "spec": outcome.name}
        row.update({name: value for name, value in outcome.point.settings})
        row.update(params=t["params"], macs=t["macs"], flops=t["flops"],
                   weight_bytes=t["weight_bytes"], peak_activation_bytes=t["peak_activation_bytes"],
                   depth=t["weighted_layers"])
        lat = (measured or {}).get(outcome.point.label)
        if measured is not None:
            row.update(latency_ms=lat.median_ms if lat else None,
                       latency_p10_ms=lat.p10_ms if lat else None,
                       latency_p90_ms=lat.p90_ms if lat else None,
                       images_per_s=lat.images_per_s if lat else None,
                       quality=quality(lat) if lat else None,
                       quality_text=quality_text(lat) if lat else None)
        rows.append(row)
    base_label = ""
    if rows:
        base = rows[0]
        if baseline is not None:
            matches = [r for r in rows if r["model"] == baseline] or \
                      [r for r in rows if r["spec"] == baseline]
            if not matches:
                labels = [r["model"] for r in rows]
                raise _usage(f"--baseline: no compared model is called {baseline!r}"
                             f"{did_you_mean(baseline, labels)} (models: {one_of(labels)})")
            base = matches[0]
        base_label = base["model"]
        for row in rows:
            for column, source in RATIOS.items():
                if source in base:
                    row[column] = _ratio(row.get(source), base.get(source))
    if sort is not None:
        keys = [k for k in SORT_KEYS if not rows or k in rows[0]] + list(sweep)
        if sort not in keys:
            raise _usage(f"--sort: unknown column {sort!r}{did_you_mean(sort, keys)} "
                         f"(columns: {one_of(keys)})")
        present = [r for r in rows if r.get(sort) is not None]
        absent = [r for r in rows if r.get(sort) is None]
        rows = sorted(present, key=lambda r: _sort_key(r[sort]), reverse=reverse) + absent
    about = [f"{labels[0]}: {note}" if len(labels) == 1 else
             f"{len(labels)} rows ({labels[0]}, ...): {note}" for note, labels in caveats.items()]
    return Comparison(rows=rows, failures=failed, baseline=base_label, sweep=tuple(sweep),
                      settings=dict(settings or {}), env=env, notes=(*about, *notes))


def _sort_key(value: Any) -> tuple:
    return (0, value, "") if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else (1, 0, str(value))


def columns_for(comparison: Comparison, wanted: Sequence[str] | None = None) -> list[str]:
    """The columns to show: `wanted` (validated), else the defaults plus sweep and measured."""
    measured = comparison.env is not None
    available = ["model", *comparison.sweep, *[c for c in ANALYTIC_DEFAULT if c != "model"]]
    if measured:
        available += list(MEASURED)
    if not wanted:
        return available
    out = []
    for name in wanted:
        if name not in available:
            hint = "" if name not in MEASURED else \
                " (measured columns need --measure or --measurements)"
            raise _usage(f"--columns: unknown column {name!r}{did_you_mean(name, available)}"
                         f"{hint} (columns: {one_of(available)})")
        out.append(name)
    return out


def compare(specs: str | Sequence[str], *, sweep: Mapping[str, Sequence] | None = None,
            baseline: str | None = None, sort: str | None = None, reverse: bool = False,
            input: str | tuple | None = None, batch: int = 1, dtype: str = "fp32",
            set: Mapping | None = None, variant: str | None = None,
            convention: str = "torchvision", jobs: int = 1, executor: str = "local",
            address: str | None = None, errors: str = "raise") -> Any:
    """Compare specs (and sweeps of their variables) as a pandas DataFrame, one row per point.

    `sweep`: variable -> values, expanded as a grid, e.g. ``{"width": [0.5, 1.0]}``.
    Columns: model, the swept variables, params, macs, flops, weight_bytes,
    peak_activation_bytes, depth and the ratios to `baseline` (default: the first row).
    `errors="raise"` raises SpecError listing every failing point; `"skip"` leaves
    them out. `jobs`, `executor`, `address`: where the points are analyzed, as for
    :func:`run` (``executor="dask", address="tcp://host:8786"``: a dask cluster). pandas
    is imported here only.
    """
    from ..cost.analysis import require_pandas

    pd = require_pandas()

    if errors not in ("raise", "skip"):
        raise ValueError(f"errors must be 'raise' or 'skip', received {errors!r}")
    spec_list = [specs] if isinstance(specs, str) else list(specs)
    grid = [(k, list(v)) for k, v in (sweep or {}).items()]
    points, failures = plan(spec_list, grid, input)
    options = {"input": input, "batch": batch, "dtype": dtype, "set": dict(set or {}),
               "variant": variant, "convention": convention}
    outcomes = run(points, options, jobs=jobs, executor=executor, address=address)
    result = table(outcomes, baseline=baseline, sort=sort, reverse=reverse,
                   sweep=[k for k, _ in grid], failures=failures)
    if result.failures and errors == "raise":
        raise SpecError(p._replace(path=f"{o.point.label}: {p.path}" if p.path else o.point.label)
                        for o in result.failures for p in o.problems)
    cols = ["model", "spec", *[k for k, _ in grid],
            *[c for c in ANALYTIC_DEFAULT if c != "model"]]
    return pd.DataFrame(result.rows, columns=cols)
