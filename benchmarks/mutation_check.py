"""Mutation check: plant small plausible bugs one at a time and see whether the tests notice.

Run from the repository root, with the test dependencies installed (`pip install -e
".[test]"`, torch for the verify and builder mutants):

    python benchmarks/mutation_check.py              # every mutant; Markdown table
    python benchmarks/mutation_check.py --check      # only check that every snippet is found
    python benchmarks/mutation_check.py --list       # list the mutants
    python benchmarks/mutation_check.py --only gate-relative-absolute,builder-ceil-maxpool
    python benchmarks/mutation_check.py --area builder --tests tests/   # whole suite

Each mutant names a file under the repository, an exact snippet of its source (which
must occur exactly once), the replacement, and the tests to run against it. The script
copies the working tree to a temporary folder, checks that the copy is the cnncost that
Python imports there (PYTHONPATH set to the copy, the copy as working directory; an
editable install of the checkout would otherwise win), runs each distinct test selection
once unmutated (a selection that already fails would "kill" every mutant), then for each
mutant writes the mutated file, runs `python -m pytest -x -q` on its tests and restores
the file. A mutant is killed when pytest fails (or times out), survived when it passes.

Exit status: 0 every mutant killed; 1 some survived; 2 the list is out of sync with the
code (a snippet not found, found twice, or a replacement that does not compile), or a
test selection fails without any mutant, or the copy is not what Python imports.

The mutants started from a mutation run on the whole suite that let 16 bugs through;
tests/test_pinned_behaviours.py pins those behaviours. Results: docs/benchmarks.md,
"Mutation check". This file is outside `testpaths`, so pytest never collects it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
PINNED = "tests/test_pinned_behaviours.py"

# Per area, the tests run against each of its mutants: the pinned behaviours first (so a
# killed mutant stops early under -x), then the area's own unit tests.
AREA_TESTS = {
    "verify": (PINNED, "tests/test_verify.py"),
    "gate": (PINNED, "tests/test_gate.py", "tests/test_budget.py"),
    "cost": (PINNED, "tests/test_ops.py", "tests/test_conventions.py", "tests/test_golden.py"),
    "language": (PINNED, "tests/test_language.py", "tests/test_expr.py", "tests/test_errors.py"),
    "builder": (PINNED, "tests/test_verify.py", "tests/test_export.py"),
}


class Mutant(NamedTuple):
    name: str
    area: str  # a key of AREA_TESTS
    file: str  # relative to the repository root
    edits: tuple  # ((exact original snippet, replacement), ...), applied in order
    what: str  # one line: the bug


def m(name: str, area: str, file: str, old: str, new: str, what: str,
      *more: tuple[str, str]) -> Mutant:
    return Mutant(name, area, file, ((old, new), *more), what)


MUTANTS = [
    # ------------------------------------------------------------------ verify
    m("verify-verdict-or", "verify", "cnncost/pytorch/verification.py",
      "return all(layer.ok for layer in self.layers) and all(",
      "return all(layer.ok for layer in self.layers) or all(",
      "overall verdict passes when a layer mismatches but the totals agree"),
    m("verify-no-buffers", "verify", "cnncost/pytorch/verification.py",
      'CHECKED = ("shape", "params", "buffers", "macs")',
      'CHECKED = ("shape", "params", "macs")',
      "buffers not compared"),
    m("verify-layer-flops", "verify", "cnncost/pytorch/verification.py",
      '"macs": counted // 2}))', '"macs": counted}))',
      "a layer's PyTorch FLOPs compared as MACs"),
    m("verify-total-shape-batch", "verify", "cnncost/pytorch/verification.py",
      "tuple(output.shape[1:])),", "tuple(output.shape)),",
      "the output shape compared with the batch dimension"),
    # ------------------------------------------------------------------ gate
    m("gate-relative-absolute", "gate", "cnncost/gate/check.py",
      "worse > tol.relative * base_abs", "worse > tol.relative",
      "relative tolerance compared with the absolute change"),
    m("gate-relative-inclusive", "gate", "cnncost/gate/check.py",
      "worse > tol.relative * base_abs", "worse >= tol.relative * base_abs",
      "a growth of exactly the relative tolerance refused"),
    m("gate-absolute-inclusive", "gate", "cnncost/gate/check.py",
      "worse > tol.absolute", "worse >= tol.absolute",
      "a growth of exactly the absolute tolerance refused"),
    m("gate-both-limits-and", "gate", "cnncost/gate/check.py",
      "worse > tol.relative * base_abs) or (", "worse > tol.relative * base_abs) and (",
      "relative and absolute limits: a growth must break both to fail"),
    m("gate-budget-inclusive", "gate", "cnncost/gate/check.py",
      "over = value > budget.limit if lower", "over = value >= budget.limit if lower",
      "a value exactly at its budget refused"),
    m("budget-default-batch", "gate", "cnncost/gate/budget.py",
      'if "batch" in found else defaults.get("batch", 1)),',
      'if "batch" in found else 1),',
      "the budget file's default batch ignored"),
    m("budget-default-dtype", "gate", "cnncost/gate/budget.py",
      'if "dtype" in found else defaults.get("dtype", "fp32")),',
      'if "dtype" in found else "fp32"),',
      "the budget file's default dtype ignored"),
    m("baseline-schema-version-bool", "gate", "cnncost/gate/baseline.py",
      "if type(version) is not int or version != SCHEMA_VERSION:",
      "if version != SCHEMA_VERSION:",
      "baseline schema_version: true accepted as 1"),
    # ------------------------------------------------------------------ cost rules
    m("dtype-bf16-4", "cost", "cnncost/cost/analysis.py",
      '"bf16": 2', '"bf16": 4', "bf16 weighs 4 bytes"),
    m("dtype-int8-2", "cost", "cnncost/cost/analysis.py",
      '"int8": 1', '"int8": 2', "int8 weighs 2 bytes"),
    m("peak-output-freed", "cost", "cnncost/cost/analysis.py",
      "last_use[storage[graph.output]] = count", "pass",
      "peak live memory frees the model output after its last reader"),
    m("fvcore-bn-plain", "cost", "cnncost/cost/conventions.py",
      '{"weighted": 2, "unweighted": 1}', '{"weighted": 2, "unweighted": 2}',
      "fvcore: batch norm without a gamma counted 2 per element"),
    m("fvcore-ln-plain", "cost", "cnncost/cost/conventions.py",
      '"layernorm": norm(5, 4),', '"layernorm": norm(5, 5),',
      "fvcore: layer norm without affine counted 5 per element"),
    m("ptflops-bn-plain", "cost", "cnncost/cost/conventions.py",
      '{"full": 2, "plain": 1, "partial": 0}', '{"full": 2, "plain": 2, "partial": 0}',
      "ptflops: batch norm without affine counted 2 per element"),
    m("thop-bn-plain", "cost", "cnncost/cost/conventions.py",
      '{"full": 4, "plain": 2,', '{"full": 4, "plain": 4,',
      "thop: batch norm without affine counted 4 per element"),
    m("thop-bn-affine", "cost", "cnncost/cost/conventions.py",
      '{"full": 4, "plain": 2,', '{"full": 2, "plain": 2,',
      "thop: batch norm counted 2 per element"),
    m("pool-padding-kernel", "cost", "cnncost/cost/ops/pool.py",
      "max(pads[0], pads[1]) > kernel[0] // 2 or max(pads[2], pads[3]) > kernel[1] // 2",
      "max(pads[0], pads[1]) > kernel[0] or max(pads[2], pads[3]) > kernel[1]",
      "pooling accepts padding up to the kernel"),
    m("pool-padding-width-axis", "cost", "cnncost/cost/ops/pool.py",
      "max(pads[2], pads[3]) > kernel[1] // 2", "max(pads[2], pads[3]) > kernel[0] // 2",
      "pooling checks the width padding against the kernel's height"),
    m("deconv-output-padding-eq-stride", "cost", "cnncost/cost/ops/conv.py",
      "if op >= max(s, d):", "if op > max(s, d):",
      "transposed conv accepts output_padding equal to the stride"),
    m("deconv-output-padding-no-dilation", "cost", "cnncost/cost/ops/conv.py",
      "if op >= max(s, d):", "if op >= s:",
      "transposed conv refuses output_padding below the dilation"),
    # ------------------------------------------------------------------ language
    m("reserved-layer-name", "language", "cnncost/lang/spec.py",
      "or name in RESERVED):", "or name in ()):",
      "a reserved layer name (input, in_channels, ...) accepted"),
    m("reserved-var-name", "language", "cnncost/lang/spec.py",
      "not IDENTIFIER.match(key) or key in RESERVED or key in FUNCTIONS:",
      "not IDENTIFIER.match(key) or key in FUNCTIONS:",
      "a variable named like a reserved name accepted"),
    m("reserved-param-name", "language", "cnncost/lang/spec.py",
      "or key in RESERVED or key in FUNCTIONS:\n                self.err(kline, path,",
      "or key in FUNCTIONS:\n                self.err(kline, path,",
      "a block parameter named like a reserved name accepted"),
    m("variant-null", "language", "cnncost/lang/spec.py",
      "if not isinstance(settings, dict):",
      "if settings is not None and not isinstance(settings, dict):",
      "a variant with no settings (YAML null) accepted",
      ("out[str(name)] = dict(settings)", "out[str(name)] = dict(settings or {})")),
    m("expr-bool-arithmetic", "language", "cnncost/lang/expr.py",
      "if not isinstance(x, (int, float)) or isinstance(x, bool):",
      "if not isinstance(x, (int, float)):",
      "a boolean accepted as a number in arithmetic"),
    m("auto-shortcut-channels", "language", "cnncost/lang/expand.py",
      'mode = "identity" if a == b else "projection"',
      'mode = "identity" if a[0] == b[0] else "projection"',
      "residual `auto` decides identity by channels only"),
    m("if-match-channels", "language", "cnncost/lang/expand.py",
      'mode = "identity" if a == b else "none"',
      'mode = "identity" if a[0] == b[0] else "none"',
      "residual `if_match` decides identity by channels only"),
    m("projection-no-bias", "language", "cnncost/lang/expand.py",
      'for key in ("norm", "bias"):', 'for key in ("norm",):',
      "projection shortcut loses the block's bias"),
    m("projection-act", "language", "cnncost/lang/expand.py",
      '{**fields, "act": "none"})', "fields)",
      "projection shortcut gets the default activation"),
    # ------------------------------------------------------------------ builder
    m("builder-conv-width-padding", "builder", "cnncost/pytorch/builder.py",
      'return Make(nn.Conv2d, {**common, "padding": (pads[0], pads[2])})',
      'return Make(nn.Conv2d, {**common, "padding": (pads[0], pads[0])})',
      "conv width padding taken from the height"),
    m("builder-uneven-width-pads", "builder", "cnncost/pytorch/builder.py",
      "return pads[0] == pads[1] and pads[2] == pads[3]", "return pads[0] == pads[1]",
      "uneven left/right padding built as symmetric"),
    m("builder-depthwise-multiplier", "builder", "cnncost/pytorch/builder.py",
      'return _conv(c, c * node.attrs["multiplier"], node.attrs, c)',
      "return _conv(c, c, node.attrs, c)",
      "depthwise multiplier dropped"),
    m("builder-bn-affine", "builder", "cnncost/pytorch/builder.py",
      'return Make(cls, {**common, "affine": a["affine"]})',
      'return Make(cls, {**common, "affine": True})',
      "batch norm `affine: false` ignored"),
    m("builder-ceil-maxpool", "builder", "cnncost/pytorch/builder.py",
      'dilation=_pair(a["dilation"]), ceil_mode=a["ceil_mode"])',
      'dilation=_pair(a["dilation"]))',
      "max pool `ceil_mode` not passed to PyTorch"),
    m("builder-ceil-avgpool", "builder", "cnncost/pytorch/builder.py",
      'ceil_mode=a["ceil_mode"], count_include_pad', "ceil_mode=False, count_include_pad",
      "average pool `ceil_mode` not passed to PyTorch"),
    m("builder-pool-width-padding", "builder", "cnncost/pytorch/builder.py",
      "return (pads[0], pads[2])", "return (pads[0], pads[0])",
      "native pooling width padding taken from the height"),
]


class Outcome(NamedTuple):
    mutant: Mutant
    status: str  # killed, survived, timeout
    by: str  # the first failing test (or the reason)
    seconds: float


def mutate(text: str, mutant: Mutant) -> str:
    """`text` with the mutant's edits; ValueError if a snippet is not found exactly once."""
    for old, new in mutant.edits:
        count = text.count(old)
        if count != 1:
            raise ValueError(f"{mutant.name}: {mutant.file}: snippet "
                             f"{'not found' if count == 0 else f'found {count} times'}: {old!r}")
        text = text.replace(old, new)
    return text


def check(mutants: list, root: Path) -> list[str]:
    """Problems that put the list out of sync with the code (empty: all good)."""
    out = []
    names = [mu.name for mu in mutants]
    out += [f"duplicate mutant name {n!r}" for n in sorted({n for n in names
                                                            if names.count(n) > 1})]
    for mu in mutants:
        path = root / mu.file
        if mu.area not in AREA_TESTS:
            out.append(f"{mu.name}: unknown area {mu.area!r}")
        if not path.is_file():
            out.append(f"{mu.name}: no such file {mu.file}")
            continue
        try:
            source = mutate(path.read_text(encoding="utf-8"), mu)
            compile(source, str(path), "exec")
        except ValueError as exc:
            out.append(str(exc))
        except SyntaxError as exc:
            out.append(f"{mu.name}: the mutated {mu.file} does not compile: {exc}")
    return out


def copy_tree(root: Path, dest: Path) -> None:
    shutil.copytree(root, dest, ignore=shutil.ignore_patterns(
        ".git", "__pycache__", ".pytest_cache", ".hypothesis", "*.egg-info", "build", "dist",
        ".ruff_cache", ".venv", "venv"))


def child_env(copy: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(copy) + (os.pathsep + env["PYTHONPATH"]
                                     if env.get("PYTHONPATH") else "")
    # no bytecode cache: a restored file of the same size written in the same second as its
    # mutant could otherwise be served from the mutant's stale .pyc
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("CNNCOST_SPECS", None)
    return env


def pytest_run(copy: Path, tests: tuple, timeout: float) -> tuple[int | None, str, float]:
    """(exit code or None on timeout, output, seconds) of pytest -x -q on `tests`."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
           "-W", "ignore::pytest.PytestUnknownMarkWarning", *tests]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=copy, env=child_env(copy), capture_output=True,
                              text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return None, out, time.perf_counter() - start
    return proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - start


def first_failure(output: str) -> str:
    found = re.search(r"^(?:FAILED|ERROR) (.+?)(?: - .*)?$", output, re.M)
    return found.group(1) if found else "(see pytest output)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--check", action="store_true",
                        help="only check that every snippet is found once and compiles")
    parser.add_argument("--only", default="", help="comma-separated mutant names")
    parser.add_argument("--area", default="", help="comma-separated areas: "
                        + ", ".join(AREA_TESTS))
    parser.add_argument("--tests", nargs="+", default=None, metavar="ARG",
                        help="pytest arguments to run for every mutant instead of its area's "
                             "(e.g. tests/ for the whole suite)")
    parser.add_argument("--timeout", type=float, default=600,
                        help="seconds per pytest run; a mutant that runs longer counts as "
                             "killed (timeout)")
    parser.add_argument("--skip-pinned", action="store_true",
                        help=f"leave {PINNED} out of the areas' tests (how strong the rest of "
                             "the suite is)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy")
    args = parser.parse_args(argv)

    mutants = MUTANTS
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in {mu.name for mu in MUTANTS}]
        if unknown:
            parser.error(f"unknown mutant(s): {', '.join(unknown)}")
        mutants = [mu for mu in mutants if mu.name in wanted]
    if args.area:
        areas = {a.strip() for a in args.area.split(",")}
        if areas - set(AREA_TESTS):
            parser.error(f"unknown area(s): {', '.join(sorted(areas - set(AREA_TESTS)))}")
        mutants = [mu for mu in mutants if mu.area in areas]
    if args.list:
        for mu in mutants:
            print(f"{mu.name:36} {mu.area:9} {mu.file:28} {mu.what}")
        return 0

    problems = check(MUTANTS, ROOT)
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        print(f"the mutant list is out of sync with the code ({len(problems)} problem"
              f"{'s' if len(problems) != 1 else ''}); update {Path(__file__).name}",
              file=sys.stderr)
        return 2
    if args.check:
        print(f"{len(MUTANTS)} mutants: every snippet found once; every mutant compiles")
        return 0

    def selection(mu: Mutant) -> tuple:
        if args.tests:
            return tuple(args.tests)
        return tuple(t for t in AREA_TESTS[mu.area] if not (args.skip_pinned and t == PINNED))

    tmp = Path(tempfile.mkdtemp(prefix="cnncost-mutants-"))
    copy = tmp / "repo"
    try:
        copy_tree(ROOT, copy)
        probe = subprocess.run([sys.executable, "-c", "import cnncost; print(cnncost.__file__)"],
                               cwd=copy, env=child_env(copy), capture_output=True, text=True,
                               check=False)
        imported = Path(probe.stdout.strip() or "?").resolve()
        if copy.resolve() not in imported.parents:
            print(f"error: the copy is not what Python imports (cnncost from {imported}); "
                  f"{probe.stderr.strip()}", file=sys.stderr)
            return 2
        print(f"# copy: {copy} (cnncost imported from {imported})", file=sys.stderr)

        for tests in dict.fromkeys(selection(mu) for mu in mutants):
            code, output, seconds = pytest_run(copy, tests, args.timeout)
            print(f"# unmutated: {' '.join(tests)}: exit {code} in {seconds:.1f} s",
                  file=sys.stderr)
            if code != 0:
                print(f"error: the tests fail without any mutant ({' '.join(tests)}): "
                      f"{first_failure(output)}\n{output[-3000:]}", file=sys.stderr)
                return 2

        outcomes = []
        for mu in mutants:
            target = copy / mu.file
            original = target.read_text(encoding="utf-8")
            target.write_text(mutate(original, mu), encoding="utf-8")
            try:
                code, output, seconds = pytest_run(copy, selection(mu), args.timeout)
            finally:
                target.write_text(original, encoding="utf-8")
            if code is None:
                outcome = Outcome(mu, "timeout", f"over {args.timeout:g} s", seconds)
            elif code == 0:
                outcome = Outcome(mu, "survived", "", seconds)
            else:
                outcome = Outcome(mu, "killed", first_failure(output), seconds)
            outcomes.append(outcome)
            print(f"# {mu.name}: {outcome.status} ({seconds:.1f} s) {outcome.by}",
                  file=sys.stderr)
    finally:
        if args.keep:
            print(f"# kept {copy}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    survived = [o for o in outcomes if o.status == "survived"]
    killed = len(outcomes) - len(survived)
    summary = (f"{len(outcomes)} mutants: {killed} killed, {len(survived)} survived"
               + (f" ({', '.join(o.mutant.name for o in survived)})" if survived else ""))
    if args.json:
        print(json.dumps({"mutants": [{"name": o.mutant.name, "area": o.mutant.area,
                                       "file": o.mutant.file, "what": o.mutant.what,
                                       "status": o.status, "killed_by": o.by,
                                       "seconds": round(o.seconds, 1)} for o in outcomes],
                          "killed": killed, "survived": len(survived)}, indent=2))
    else:
        print("| mutant | area | file | bug | result | first failing test | s |")
        print("|---|---|---|---|---|---|---:|")
        for o in outcomes:
            by = o.by.replace("tests/test_pinned_behaviours.py::", "pinned::")
            print(f"| {o.mutant.name} | {o.mutant.area} | {o.mutant.file} | {o.mutant.what} | "
                  f"**{o.status}** | {by} | {o.seconds:.1f} |")
        print()
        print(summary)
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
