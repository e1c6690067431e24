"""Speed of the analytic path: CLI wall time versus `import torch`, and analyses per second.

Run from the repository root (with cnncost installed, torch optional):

    python benchmarks/bench_analytic.py            # prints a Markdown report
    python benchmarks/bench_analytic.py --json     # the same numbers as JSON

Measures, pinned to one CPU core where the OS allows it:
1. wall time of the process `cnncost analyze specs/resnet50.yaml --format json`
   (median of N runs), next to the wall time of `python -c "import torch"`;
2. in-process analyses per second of resnet50 through the library API, both from
   a loaded spec (`cnncost.analyze(spec)`) and from the file path (YAML parse
   included);
3. per bundled spec, milliseconds per in-process analysis: the same call again, and a
   setting never analyzed before (`cnncost.lang.plan.forget` first).
Results are recorded in docs/benchmarks.md with the machine they ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pin_one_core() -> str:
    try:
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to core {core}"
    except (AttributeError, OSError):
        return "not pinned (no sched_setaffinity)"


# Processes run as a user's would: with Python's bytecode cache (an environment that sets
# PYTHONDONTWRITEBYTECODE would make every run recompile cnncost's sources, while torch's
# installed files were compiled at install time), after one untimed warm-up run.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def wall(cmd: list[str], runs: int) -> float:
    """Median wall time of running `cmd` to completion, in seconds (after a warm-up run)."""
    times = []
    for i in range(runs + 1):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       cwd=ROOT, env=ENV)
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def rate(fn, min_time: float = 1.0) -> float:
    """Calls per second of `fn`: best of 5 rounds of at least `min_time` / 5 seconds each."""
    fn()  # warm caches (compiled expressions, built-in blocks)
    best = 0.0
    for _ in range(5):
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < min_time / 5:
            fn()
            count += 1
        best = max(best, count / elapsed)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="process runs per command")
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    args = parser.parse_args()

    pinning = pin_one_core()
    import cnncost
    from cnncost.api import load

    cli = shutil.which("cnncost") or ""
    cli_cmd = [cli] if cli else [sys.executable, "-m", "cnncost"]
    results: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "python": platform.python_version(),
        "cnncost": cnncost.__version__,
        "pinning": pinning,
        "runs": args.runs,
    }
    results["cli_resnet50_json_s"] = wall(
        [*cli_cmd, "analyze", "specs/resnet50.yaml", "--format", "json"], args.runs)
    results["python_startup_s"] = wall([sys.executable, "-c", "pass"], args.runs)
    try:
        import importlib.util

        has_torch = importlib.util.find_spec("torch") is not None
    except ValueError:
        has_torch = False
    if has_torch:
        results["import_torch_s"] = wall([sys.executable, "-c", "import torch"], args.runs)
        results["ratio_cli_to_import_torch"] = (results["cli_resnet50_json_s"]
                                                / results["import_torch_s"])
    spec = load("resnet50")
    results["resnet50_per_s_loaded_spec"] = rate(lambda: cnncost.analyze(spec))
    results["resnet50_per_s_from_file"] = rate(lambda: cnncost.analyze("specs/resnet50.yaml"))
    # where one analysis spends its time: expansion (pass 3) and costing (pass 4)
    from cnncost.cost.analysis import analyze_graph
    from cnncost.api import builtin_blocks, resolve_vars
    from cnncost.errors import ErrorSink
    from cnncost.lang.expand import expand

    blocks, variables = builtin_blocks(), resolve_vars(spec)
    graph = expand(spec, blocks, variables, ErrorSink())
    results["resnet50_expand_ms"] = 1000 / rate(lambda: expand(spec, blocks, variables,
                                                              ErrorSink()))
    results["resnet50_costing_ms"] = 1000 / rate(lambda: analyze_graph(graph))
    # the same two passes through the spec's compiled plan, for a setting never analyzed
    # before (what the plan keeps from earlier evaluations dropped before each call)
    from cnncost.lang.plan import compile_plan, evaluate, forget

    plan = compile_plan(spec, blocks, variables)
    assert plan is not None  # noqa: S101  every bundled spec has a plan (tests/test_plan.py)
    planned = evaluate(plan, variables)

    def evaluate_new() -> object:
        plan.calls.forget()
        return evaluate(plan, variables)

    def cost_new() -> object:  # the layer costs, and the last evaluation's costs and peak
        for key in [k for k in plan.shared if isinstance(k, tuple)]:
            del plan.shared[key]
        return analyze_graph(planned)

    results["resnet50_plan_compile_ms"] = 1000 / rate(lambda: compile_plan(spec, blocks,
                                                                          variables))
    results["resnet50_plan_evaluate_ms"] = 1000 / rate(evaluate_new)
    results["resnet50_planned_costing_ms"] = 1000 / rate(cost_new)

    def new_setting() -> object:
        forget(spec)
        return cnncost.analyze(spec)

    results["resnet50_per_s_new_setting"] = rate(new_setting)
    per_spec = {}
    for name in cnncost.bundled_specs():
        loaded = load(name)

        def fresh(s: object = loaded) -> object:
            forget(s)
            return cnncost.analyze(s)

        per_spec[name] = {"layers": cnncost.analyze(loaded).totals.layers,
                          "ms": 1000 / rate(lambda s=loaded: cnncost.analyze(s), 0.25),
                          "new_setting_ms": 1000 / rate(fresh, 0.25)}
    results["per_spec"] = per_spec

    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"Machine: {results['machine']}; Python {results['python']}; cnncost "
          f"{results['cnncost']}; {pinning}; {args.runs} process runs per command (median).\n")
    print("| measurement | result |\n|---|---:|")
    print(f"| `cnncost analyze specs/resnet50.yaml --format json` (process) | "
          f"{results['cli_resnet50_json_s'] * 1000:.0f} ms |")
    print(f"| `python -c pass` (interpreter start-up alone) | "
          f"{results['python_startup_s'] * 1000:.0f} ms |")
    if has_torch:
        print(f"| `python -c \"import torch\"` | {results['import_torch_s'] * 1000:.0f} ms |")
        print(f"| ratio cnncost / import torch | {results['ratio_cli_to_import_torch']:.3f} |")
    print(f"| resnet50 analyses per second, loaded spec (`cnncost.analyze(spec)`) | "
          f"{results['resnet50_per_s_loaded_spec']:.0f} /s |")
    print(f"| resnet50 analyses per second, loaded spec, a new setting each time | "
          f"{results['resnet50_per_s_new_setting']:.0f} /s |")
    print(f"| resnet50 analyses per second, from the file (YAML parse included) | "
          f"{results['resnet50_per_s_from_file']:.0f} /s |")
    print(f"| resnet50: full expansion (shapes, blocks, fields) | "
          f"{results['resnet50_expand_ms']:.2f} ms |")
    print(f"| resnet50: costing of the expanded graph (rows, totals, peak memory) | "
          f"{results['resnet50_costing_ms']:.2f} ms |")
    print(f"| resnet50: compiling its plan (once per spec and structure) | "
          f"{results['resnet50_plan_compile_ms']:.2f} ms |")
    print(f"| resnet50: the compiled plan evaluated, a new setting | "
          f"{results['resnet50_plan_evaluate_ms']:.2f} ms |")
    print(f"| resnet50: costing of the planned graph, a new setting | "
          f"{results['resnet50_planned_costing_ms']:.2f} ms |")
    print("\n| spec | layers | ms per analysis, the same call again | a new setting |"
          "\n|---|---:|---:|---:|")
    for name, row in per_spec.items():
        print(f"| {name} | {row['layers']} | {row['ms']:.2f} | {row['new_setting_ms']:.2f} |")


if __name__ == "__main__":
    main()
