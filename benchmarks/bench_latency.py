"""Cross-check `cnncost bench` against two independent timers, per spec, dtype and batch.

For each combination: `cnncost.pytorch.bench.bench(...)` (its median of per-call CUDA events or
perf_counter, after first call and warm-up), then in the same process
``torch.utils.benchmark.Timer.blocked_autorange`` (bench's own --cross-check) and a
plain loop of N calls between two CUDA events (or perf_counter on a CPU), N chosen to
fill about a second. Prints a Markdown table (or JSON) with the three medians and the
differences; docs/benchmarks.md records its output.

    python benchmarks/bench_latency.py --device cuda --specs resnet50,mobilenet_v2,vgg16 \\
        --dtypes fp32,tf32,bf16,fp16 --batches 1,8,32
    python benchmarks/bench_latency.py --device cpu --threads 1 --batches 1 --dtypes fp32
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from cnncost.pytorch.bench import bench
from cnncost.pytorch.builder import build
from cnncost.pytorch.measure import precision


def plain_loop_ms(model, example, seconds: float = 1.0) -> float:
    """Mean per-call time of back-to-back calls between two stamps (one sync at the end)."""
    device = example.device
    cuda = device.type == "cuda"
    with torch.inference_mode():
        start = time.perf_counter()
        calls = 0
        while time.perf_counter() - start < seconds / 4 or calls < 3:  # size the loop
            model(example)
            calls += 1
        if cuda:
            torch.cuda.synchronize(device)
        per = (time.perf_counter() - start) / calls
        n = max(3, int(seconds / per))
        if cuda:
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            for _ in range(n):
                model(example)
            end.record()
            end.synchronize()
            return begin.elapsed_time(end) / n
        t0 = time.perf_counter()
        for _ in range(n):
            model(example)
        return (time.perf_counter() - t0) * 1000 / n


def run(args: argparse.Namespace) -> list[dict]:
    if args.threads is not None:  # for the independent loop too (bench restores its own)
        torch.set_num_threads(args.threads)
    rows = []
    for spec in args.specs.split(","):
        for dtype in args.dtypes.split(","):
            result = bench(spec, device=args.device, dtype=dtype, threads=args.threads,
                           batches=tuple(int(b) for b in args.batches.split(",")),
                           runs=args.runs, budget_s=args.budget, cross_check=True,
                           channels_last=args.channels_last, peaks=args.peaks)
            where = torch.device(result.env["device"])
            model = build(spec, device=where,
                          dtype={"fp32": torch.float32, "tf32": torch.float32,
                                 "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]).eval()
            if args.channels_last:
                model = model.to(memory_format=torch.channels_last)
            for r in result.results:
                example = torch.randn(r.batch, *model.input_shape, device=where,
                                      dtype=next(model.parameters()).dtype)
                if args.channels_last:
                    example = example.contiguous(memory_format=torch.channels_last)
                with precision(where, dtype):
                    loop = plain_loop_ms(model, example)
                lat = r.latency
                rows.append({
                    "spec": spec, "dtype": dtype, "batch": r.batch,
                    "median_ms": lat.median_ms, "p10_ms": lat.p10_ms, "p90_ms": lat.p90_ms,
                    "samples": lat.samples, "quality": r.quality, "images_per_s": lat.images_per_s,
                    "tflops": r.tflops, "peak_share": r.peak_share,
                    "timer_ms": r.cross_check.median_ms, "timer_diff": r.cross_check.difference,
                    "loop_ms": loop, "loop_diff": (lat.median_ms - loop) / loop,
                    "device_name": result.env["device_name"], "torch": result.env["torch"],
                    "cuda": result.env.get("cuda"), "cudnn": result.env.get("cudnn"),
                    "threads": result.env["threads"],
                })
                print(f"{spec} {dtype} batch {r.batch}: {lat.median_ms:.3f} ms, timer "
                      f"{100 * r.cross_check.difference:+.1f}%, loop {100 * rows[-1]['loop_diff']:+.1f}%",
                      file=sys.stderr)
    return rows


def markdown(rows: list[dict]) -> str:
    first = rows[0]
    lines = [f"Device: {first['device_name']}; torch {first['torch']}"
             + (f", CUDA {first['cuda']}, cuDNN {first['cudnn']}" if first["cuda"] else
                f", {first['threads']} thread(s)"), "",
             "| spec | dtype | batch | bench median ms | p10 | p90 | runs | quality | images/s "
             "| TFLOP/s | of peak | Timer.blocked_autorange ms | diff | event loop ms | diff |",
             "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        share = "-" if r["peak_share"] is None else f"{100 * r['peak_share']:.1f}%"
        lines.append(
            f"| {r['spec']} | {r['dtype']} | {r['batch']} | {r['median_ms']:.3f} | {r['p10_ms']:.3f} "
            f"| {r['p90_ms']:.3f} | {r['samples']} | {r['quality']} | {r['images_per_s']:,.1f} "
            f"| {r['tflops']:.2f} | {share} | {r['timer_ms']:.3f} | {100 * r['timer_diff']:+.1f}% "
            f"| {r['loop_ms']:.3f} | {100 * r['loop_diff']:+.1f}% |")
    worst = max(max(abs(r["timer_diff"]), abs(r["loop_diff"])) for r in rows)
    lines += ["", f"Largest difference from either independent timer: {100 * worst:.1f}% "
              f"({sum(abs(r['timer_diff']) <= 0.05 and abs(r['loop_diff']) <= 0.05 for r in rows)}"
              f" of {len(rows)} rows within 5% of both)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--specs", default="resnet50,mobilenet_v2,vgg16")
    parser.add_argument("--dtypes", default="fp32")
    parser.add_argument("--batches", default="1")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--time-budget", dest="budget", type=float, default=5.0)
    parser.add_argument("--peaks", default="auto")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = run(args)
    print(json.dumps(rows, indent=2) if args.json else markdown(rows))


if __name__ == "__main__":
    main()
