"""The plain-Python floor of one analysis, and how close `cnncost.analyze` comes to it.

The floor is the least work an analysis can do in Python: a walk over a model's layers,
already laid out as plain tuples, doing the integer arithmetic of the figures the
analysis reports (output shape, params, buffers, MACs, activation bytes, and their
totals). It has no spec, no variables, no field checks, no names and no rows: what is
left of an analysis when everything but the arithmetic is taken away. Issue 16 asks for
one analysis of a loaded spec within 2.5x of it.

Run from the repository root (cnncost installed; no torch needed):

    python benchmarks/floor.py                  # Markdown: resnet50, mobilenet_v2, densenet121
    python benchmarks/floor.py --json
    python benchmarks/floor.py --specs resnet18 vgg16 --rounds 9

Both are timed interleaved in one process (floor, analysis, floor, ...; each round at
least 0.1 s), and the median of the rounds is reported, so a busy machine slows both
alike. The analysis is timed twice: the same call again (what the spec's plan keeps from
earlier evaluations serves it: the whole evaluation's fields, shapes and sizes, kept by
the values it read, and the last evaluation's layer costs and peak), and as for a setting
never analyzed before (`cnncost.lang.plan.forget` before each call: only the compiled
plan is kept, so every field, shape and cost is computed again). The floor's layers are taken from cnncost's own expansion (outside the timing)
and its totals are checked against the analysis before anything is timed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# One layer: (op, input indices, its fields as a mapping), as a spec states a layer
Layer = tuple[str, tuple[int, ...], dict]

FLOOR_OPS = ("conv", "depthwise", "maxpool", "avgpool", "linear", "batchnorm",
             "global_avgpool", "flatten", "add", "concat", "dropout", "relu", "relu6")


def layers_of(spec: str) -> tuple[tuple[int, ...], list[Layer]]:
    """The model input's shape and its layers as plain data (from cnncost's expansion:
    fields resolved, padding as explicit pads)."""
    from cnncost.api import build_graph

    graph = build_graph(spec)
    out: list[Layer] = []
    for node in graph.nodes[1:]:
        if node.op not in FLOOR_OPS:
            raise SystemExit(f"{spec}: the floor has no arithmetic for op {node.op!r}")
        out.append((node.op, node.inputs, dict(node.attrs)))
    return graph.input_shape, out


def floor(input_shape: tuple[int, ...], layers: list[Layer]) -> tuple:
    """Shapes, params, buffers, MACs and activation bytes of every layer; the totals."""
    shapes = [input_shape]
    c, h, w = input_shape
    act = c * h * w * 4
    params = buffers = macs = 0
    for op, inputs, a in layers:
        shape = shapes[inputs[0]]
        if op == "conv" or op == "depthwise":
            c, h, w = shape
            kh, kw = a["kernel"]
            sh, sw = a["stride"]
            dh, dw = a["dilation"]
            pt, pb, pl, pr = a["pads"]
            if op == "depthwise":
                groups, out = c, c * a["multiplier"]
            else:
                groups, out = a["groups"], a["out"]
            oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
            ow = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
            weights = out * (c // groups) * kh * kw
            params += weights + (out if a["bias"] else 0)
            macs += weights * oh * ow
            shape = (out, oh, ow)
        elif op == "batchnorm":
            params += 2 * shape[0]
            buffers += 2 * shape[0] + 1
        elif op == "maxpool" or op == "avgpool":
            c, h, w = shape
            kh, kw = a["kernel"]
            sh, sw = a["stride"]
            pt, pb, pl, pr = a["pads"]
            shape = (c, (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1)
        elif op == "linear":
            out = a["out"]
            params += shape[0] * out + (out if a["bias"] else 0)
            macs += shape[0] * out
            shape = (out,)
        elif op == "global_avgpool":
            shape = (shape[0],)
        elif op == "flatten":
            shape = (shape[0] * shape[1] * shape[2],) if len(shape) == 3 else shape
        elif op == "concat":
            shape = (sum(shapes[i][0] for i in inputs), *shape[1:])
        shapes.append(shape)
        if op == "dropout" or op == "flatten":  # views: no new tensor
            continue
        size = 1
        for d in shape:
            size *= d
        act += size * 4
    return shapes[-1], params, buffers, macs, act


def interleaved(fns: dict[str, Callable[[], object]], rounds: int,
                min_time: float = 0.1) -> dict[str, float]:
    """Median seconds per call of each function, rounds alternating between them."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            count, start = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - start) < min_time:
                fn()
                count += 1
            times[name].append(elapsed / count)
    return {name: statistics.median(t) for name, t in times.items()}


def measure(spec: str, rounds: int) -> dict[str, float | int]:
    import cnncost
    from cnncost.api import load

    loaded = load(spec)
    shape, layers = layers_of(spec)
    result = cnncost.analyze(loaded)
    t = result.totals
    want = (result.output_shape, t.params, t.buffers, t.macs, t.activation_bytes)
    got = floor(shape, layers)
    if got != want:
        raise SystemExit(f"{spec}: the floor computes {got}, the analysis {want}")
    from cnncost.lang.plan import forget

    def fresh() -> object:
        forget(loaded)  # as for a setting never analyzed: only the plan is kept
        return cnncost.analyze(loaded)

    times = interleaved({"floor": lambda: floor(shape, layers),
                         "analyze": lambda: cnncost.analyze(loaded), "fresh": fresh}, rounds)
    return {"layers": len(layers), "floor_ms": times["floor"] * 1e3,
            "analyze_ms": times["analyze"] * 1e3, "ratio": times["analyze"] / times["floor"],
            "fresh_ms": times["fresh"] * 1e3, "fresh_ratio": times["fresh"] / times["floor"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", nargs="+", default=["resnet50", "mobilenet_v2",
                                                       "densenet121"])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    try:
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        pinning = f"pinned to core {core}"
    except (AttributeError, OSError):
        pinning = "not pinned"
    import cnncost

    results = {spec: measure(spec, args.rounds) for spec in args.specs}
    machine = (f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
               f"{platform.python_version()}, cnncost {cnncost.__version__}, {pinning}")
    if args.json:
        print(json.dumps({"machine": machine, "rounds": args.rounds, "specs": results},
                         indent=2))
        return
    print(f"{machine}; median of {args.rounds} interleaved rounds\n")
    print("| spec | layers | floor | `cnncost.analyze(spec)` again | ratio | a new setting "
          "| ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for spec, r in results.items():
        print(f"| {spec} | {r['layers']} | {r['floor_ms']:.3f} ms | {r['analyze_ms']:.3f} ms "
              f"| {r['ratio']:.1f}x | {r['fresh_ms']:.3f} ms | {r['fresh_ratio']:.1f}x |")


if __name__ == "__main__":
    main()
