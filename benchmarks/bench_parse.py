"""How fast a large spec file is read: YAML parsing (pass 1) and the whole analysis.

Run from the repository root (cnncost installed; no torch needed):

    python benchmarks/bench_parse.py            # Markdown
    python benchmarks/bench_parse.py --json
    python benchmarks/bench_parse.py --full     # the full loader only (as before the
                                                # fast way existed), for comparison

For 1,000, 10,000 and 30,000 layers the script writes the two spec forms of
benchmarks/bench_scale.py with every layer written out ("flat", one flow mapping a layer)
and, for the 10,000-layer size, the same layers in block style ("block", a line a field),
and times, in one process pinned to one core, the best of 5 runs of:
- `cnncost.lang.yamlio.parse_yaml(text)`: parsing alone (the fast build from libyaml's
  events, or the full loader with `--full`);
- `cnncost.analyze(path)`: the whole library call from the file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_scale import flat_spec, run_times, written_out  # noqa: E402  (path set above)


def block_spec(layers: int) -> str:
    """flat_spec's layers, a field a line."""
    return written_out("scale_block", layers, "- op: conv\n  out: 16\n  kernel: 3\n  "
                       "padding: 1\n  bias: false\n  norm: batchnorm\n  act: relu\n")


def best(fn, runs: int = 5) -> float:
    return min(run_times(fn, runs))


def measure(form: str, text: str) -> dict:
    import cnncost
    from cnncost.errors import ErrorSink
    from cnncost.lang.yamlio import parse_yaml

    errors = ErrorSink()
    if parse_yaml(text, "bench.yaml", errors) is None or errors:
        raise SystemExit(f"{form}: the generated spec does not parse")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        handle.write(text)
        path = handle.name
    try:
        layers = cnncost.analyze(path).totals.layers
        parse = best(lambda: parse_yaml(text, "bench.yaml", ErrorSink()))
        whole = best(lambda: cnncost.analyze(path))
    finally:
        os.unlink(path)
    return {"form": form, "layers": layers, "bytes": len(text.encode()),
            "parse_ms": parse * 1e3, "analyze_path_ms": whole * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--full", action="store_true",
                        help="parse with the full loader only (the fast way turned off)")
    args = parser.parse_args()
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        pinning = "pinned to one core"
    except (AttributeError, OSError):
        pinning = "not pinned"
    import yaml

    import cnncost
    from cnncost.lang import yamlio

    if args.full:
        yamlio._fast_load = lambda text: yamlio._SLOW  # type: ignore[attr-defined]
    cases = [("flat", flat_spec(n)) for n in (1_000, 10_000, 30_000)]
    cases.insert(2, ("block", block_spec(10_000)))
    results = [measure(form, text) for form, text in cases]
    machine = (f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
               f"{platform.python_version()}, PyYAML {yaml.__version__} "
               f"({'with' if hasattr(yaml, 'CSafeLoader') else 'without'} libyaml), cnncost "
               f"{cnncost.__version__}, {pinning}; "
               f"{'full loader only' if args.full else 'as shipped'}")
    if args.json:
        print(json.dumps({"machine": machine, "results": results}, indent=2))
        return
    print(f"{machine}; best of 5 runs\n")
    print("| spec | layers | bytes | parse_yaml | analyze(path) |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['form']} | {r['layers']:,} | {r['bytes']:,} | {r['parse_ms']:,.1f} ms "
              f"| {r['analyze_path_ms']:,.1f} ms |")


if __name__ == "__main__":
    main()
