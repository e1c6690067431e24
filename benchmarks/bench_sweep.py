"""Scaling of a large sweep: `cnncost compare --sweep` on 1..N processes and on dask.

Run from the repository root (cnncost installed; `distributed` for the dask rows):

    python benchmarks/bench_sweep.py                 # Markdown report
    python benchmarks/bench_sweep.py --json          # the same numbers as JSON
    python benchmarks/bench_sweep.py --jobs 1,2,4,8 --repeat 5

The sweep: ResNet-50 over 100 stem widths x 100 resolutions (10,000 points),

    cnncost compare resnet50 --sweep width=16,17,...,115 \\
        --sweep resolution=128,130,...,326 --format csv -o OUT

run as a separate process (interpreter start, planning, analysis, rendering and writing
all included) with `--jobs J` for each J asked, then with `--executor dask --address A`
against a dask LocalCluster of `--dask-workers` single-thread worker processes started
here beforehand (its start-up is not timed), then with `--executor dask --jobs W` (a
local cluster started by the command, start-up included). The configurations alternate
within each repetition, so a burst of other work on a shared machine spreads over all.

Per configuration: wall seconds (best and median), CPU seconds (user + system of the
command and every process it waited for; for dask with an address, plus the workers'
and the scheduler's CPU time), and the speed-up against `--jobs 1` (median over median;
per job: speed-up / J). Every output file must equal `--jobs 1`'s byte for byte, or the
benchmark stops. Results are recorded in docs/benchmarks.md with the machine they ran on.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WIDTHS = ",".join(str(w) for w in range(16, 116))  # 100 stem widths
RESOLUTIONS = ",".join(str(r) for r in range(128, 328, 2))  # 100 resolutions
SWEEP = ["resnet50", "--sweep", f"width={WIDTHS}", "--sweep", f"resolution={RESOLUTIONS}",
         "--format", "csv"]
# as bench_analytic.py: processes run with Python's bytecode cache, as a user's would
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(args: list[str], out: Path, client: Any = None) -> tuple[float, float]:
    """(wall s, CPU s) of one `cnncost compare` process writing to `out`. With a dask
    `client`, the CPU time of its workers and of this process (the scheduler's loop) is
    added to the command's own."""
    cmd = [sys.executable, "-m", "cnncost", "compare", *SWEEP, "-o", str(out), *args]
    workers0 = client.run(time.process_time) if client is not None else {}
    cpu0, self0 = children_cpu(), own_cpu()
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=ROOT, env=ENV)
    wall = time.perf_counter() - start
    cpu = children_cpu() - cpu0
    if client is not None:
        cpu += own_cpu() - self0
        workers1 = client.run(time.process_time)
        cpu += sum(workers1[w] - workers0.get(w, 0.0) for w in workers1)
    return wall, cpu


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("cnncost", "distributed"):
        try:
            out[name] = __import__(name).__version__
        except ImportError:
            out[name] = "not installed"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=ROOT, check=False).stdout.strip()
    out["commit"] = commit or "unknown"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", default=f"1,{os.cpu_count() or 1}",
                        help="comma-separated --jobs values (default: 1 and the CPU count)")
    parser.add_argument("--dask-workers", type=int, default=os.cpu_count() or 1,
                        help="worker processes of the dask cluster (0: no dask rows)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of every row")
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    args = parser.parse_args()
    jobs = sorted({int(j) for j in args.jobs.split(",")} | {1})

    configs: dict[str, list[str]] = {f"--jobs {j}": ["--jobs", str(j)] for j in jobs}
    parallel: dict[str, int] = {f"--jobs {j}": j for j in jobs}
    cluster = client = None
    if args.dask_workers:
        try:
            import distributed
        except ImportError:
            print("distributed is not installed: no dask rows", file=sys.stderr)
        else:
            cluster = distributed.LocalCluster(n_workers=args.dask_workers,
                                               threads_per_worker=1, processes=True,
                                               dashboard_address=":0")
            client = distributed.Client(cluster)
            n = args.dask_workers
            configs[f"dask, {n} workers (--address)"] = [
                "--executor", "dask", "--address", cluster.scheduler_address]
            configs[f"dask, --jobs {n} (cluster started by the command)"] = [
                "--executor", "dask", "--jobs", str(n)]
            parallel[f"dask, {n} workers (--address)"] = n
            parallel[f"dask, --jobs {n} (cluster started by the command)"] = n

    load_before = os.getloadavg()
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in configs}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            reference = Path(tmp) / "jobs1.csv"
            subprocess.run([sys.executable, "-m", "cnncost", "compare", *SWEEP, "-o",
                            str(reference)], check=True, cwd=ROOT, env=ENV)  # warm-up
            for _ in range(args.repeat):
                for name, extra in configs.items():
                    out = Path(tmp) / "out.csv"
                    uses_client = client if "--address" in name else None
                    runs[name].append(timed(extra, out, uses_client))
                    if not filecmp.cmp(out, reference, shallow=False):
                        sys.exit(f"bench_sweep: {name} wrote other bytes than --jobs 1")
                    out.unlink()
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    load_after = os.getloadavg()

    base = statistics.median(w for w, _ in runs["--jobs 1"])
    rows = []
    for name, samples in runs.items():
        walls = [w for w, _ in samples]
        cpus = [c for _, c in samples]
        speedup = base / statistics.median(walls)
        rows.append({"config": name, "parallel": parallel[name], "wall_best": min(walls),
                     "wall_median": statistics.median(walls), "cpu_median": statistics.median(cpus),
                     "speedup": speedup, "per_job": speedup / parallel[name],
                     "walls": walls, "cpus": cpus})
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} "
                         f"{platform.release()}",
              "versions": versions(), "points": 10_000, "repeat": args.repeat,
              "load_before": [round(x, 2) for x in load_before],
              "load_after": [round(x, 2) for x in load_after], "rows": rows}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"machine: {report['machine']}; {', '.join(f'{k} {v}' for k, v in report['versions'].items())}")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}; "
          f"{args.repeat} runs per row, 10,000 points, outputs identical to --jobs 1\n")
    print("| command | wall best | wall median | CPU s (median) | speed-up | per job |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| `{r['config']}` | {r['wall_best']:.2f} s | {r['wall_median']:.2f} s | "
              f"{r['cpu_median']:.2f} | {r['speedup']:.2f}x | {r['per_job']:.2f} |")


if __name__ == "__main__":
    main()
