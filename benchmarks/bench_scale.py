"""How the analytic path scales with the number of layers: time and memory, 10 to 100,000.

Run from the repository root (cnncost installed; no torch needed):

    python benchmarks/bench_scale.py            # Markdown
    python benchmarks/bench_scale.py --json

For each size N the script writes a spec of a stem and N/3 blocks of conv + batch norm +
ReLU (N layers in all, give or take the stem and head) in two forms:
- **stage**: stages of 10 blocks repeated N/30 times (a few lines of YAML, the expansion
  does the work), and
- **flat**: every layer written out (the YAML parser does the work; sizes up to the
  2,000,000-byte limit of a spec file),
and measures, in one process pinned to one core:
- `cnncost.analyze(path)`: the whole library call from the file (parse, expansion, costing);
- `cnncost.analyze(spec)` on the loaded spec: the first call (full expansion), the second
  (expands again and compiles the spec's plan), and later calls (the plan evaluated, with
  what it keeps from earlier evaluations: cnncost.lang.plan);
- the peak of Python memory allocated during one analysis from the file (tracemalloc), per
  layer.
Times are the median of a few runs, each call timed on its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZES = (10, 100, 1_000, 10_000, 100_000)
FLAT_LIMIT = 30_000  # layers a flat spec can hold under the 2,000,000-byte limit


def stage_spec(layers: int) -> str:
    units = max(1, (layers - 4) // 3)
    inner = 10 if units >= 10 else units  # stages repeat at most 10,000 times: nest them
    return f"""name: scale_stage
input: [3, 32, 32]
blocks:
  unit:
    params: {{out: 16}}
    layers:
    - {{op: conv, out: out, kernel: 3, padding: 1, bias: false, norm: batchnorm, act: relu}}
  group:
    layers:
    - {{op: stage, block: unit, repeat: {inner}}}
layers:
- {{op: conv, out: 16, kernel: 3, padding: 1}}
- {{op: stage, block: group, repeat: {units // inner}}}
- {{op: global_avgpool, keepdims: false}}
- {{op: linear, out: 10}}
"""


def written_out(name: str, layers: int, block: str) -> str:
    """A spec of about `layers` layers with every conv+BN+ReLU block written out as
    `block` (its YAML text), between a stem conv and a pooled classifier."""
    blocks = max(1, (layers - 4) // 3)
    return (f"name: {name}\ninput: [3, 32, 32]\nlayers:\n"
            "- {op: conv, out: 16, kernel: 3, padding: 1}\n" + block * blocks
            + "- {op: global_avgpool, keepdims: false}\n- {op: linear, out: 10}\n")


def flat_spec(layers: int) -> str:
    return written_out("scale_flat", layers, "- {op: conv, out: 16, kernel: 3, padding: 1, "
                       "bias: false, norm: batchnorm, act: relu}\n")


def run_times(fn, runs: int) -> list[float]:
    """Seconds of each of `runs` calls of `fn`."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def median_time(fn, runs: int) -> float:
    return statistics.median(run_times(fn, runs))


def measure(text: str, runs: int) -> dict[str, float | int]:
    import cnncost
    from cnncost.api import load

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        handle.write(text)
        path = handle.name
    try:
        layers = cnncost.analyze(path).totals.layers
        from_file = median_time(lambda: cnncost.analyze(path), runs)
        tracemalloc.start()
        cnncost.analyze(path)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        firsts = []
        for _ in range(runs):
            spec = load(path)  # a new Spec: no plan yet
            start = time.perf_counter()
            cnncost.analyze(spec)
            firsts.append(time.perf_counter() - start)
        from cnncost.lang.plan import _ENTRIES

        spec = load(path)
        cnncost.analyze(spec)
        expansions = 1
        while True:  # the second expansion compiles the plan, or a later one (plan.py)
            start = time.perf_counter()
            cnncost.analyze(spec)
            compiling = time.perf_counter() - start
            expansions += 1
            if _ENTRIES[id(spec)].plans or expansions > 50:
                break
        from cnncost.lang.plan import forget

        def new_setting() -> object:  # what the plan keeps from earlier evaluations dropped
            forget(spec)
            return cnncost.analyze(spec)

        planned = median_time(new_setting, max(3, runs))
        again = median_time(lambda: cnncost.analyze(spec), max(3, runs))
    finally:
        os.unlink(path)
    return {"layers": layers, "bytes": len(text), "from_file_ms": from_file * 1e3,
            "first_ms": statistics.median(firsts) * 1e3, "compile_ms": compiling * 1e3,
            "compiled_at": expansions,
            "planned_ms": planned * 1e3,
            "us_per_layer_planned": planned * 1e6 / layers, "again_ms": again * 1e3,
            "peak_bytes_per_layer": peak / layers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        pinning = "pinned to one core"
    except (AttributeError, OSError):
        pinning = "not pinned"
    import cnncost

    results = []
    for form, make in (("stage", stage_spec), ("flat", flat_spec)):
        for size in SIZES:
            if form == "flat" and size > FLAT_LIMIT:
                continue
            runs = args.runs if size <= 10_000 else max(1, args.runs // 2)
            results.append({"form": form, **measure(make(size), runs)})
    machine = (f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
               f"{platform.python_version()}, cnncost {cnncost.__version__}, {pinning}")
    if args.json:
        print(json.dumps({"machine": machine, "results": results}, indent=2))
        return
    print(f"{machine}; median of {args.runs} runs\n")
    print("| spec | layers | YAML bytes | analyze(path) | first analyze(spec) | the call "
          "that compiles the plan (which) | planned analyze(spec), a new setting | per layer, planned "
          "| the same call again | peak memory per layer |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['form']} | {r['layers']:,} | {r['bytes']:,} | {r['from_file_ms']:,.1f} ms "
              f"| {r['first_ms']:,.1f} ms | {r['compile_ms']:,.1f} ms ({r['compiled_at']}) | "
              f"{r['planned_ms']:,.1f} ms | "
              f"{r['us_per_layer_planned']:.2f} µs | {r['again_ms']:,.2f} ms | "
              f"{r['peak_bytes_per_layer']:,.0f} B |")


if __name__ == "__main__":
    main()
