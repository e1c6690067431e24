"""A baseline at a git ref (``cnncost gate --against REF``): nothing stored to tamper with.

The budget file and the specs it names are read as they are in commit REF (``git
ls-tree`` / ``git cat-file``, argv lists with a timeout: nothing is checked out, no
filter or hook runs), bounded like any spec, and analyzed again; the result is a
:class:`RefBaseline` the gate compares against. Measured metrics still come from a
stored baseline (:func:`with_measured`).

A `model:` entry (PyTorch code) is the one thing run from the repository, as the gate
runs it in the working tree: the commit's files are written to a temporary folder
(``git archive``, bounded, extracted with tarfile's data filter) and the model is
imported there by a separate Python process (`cnncost analyze MODEL --input ...
--format json`), so that its module and the modules it imports are those of REF, not
the working tree's already imported here.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import subprocess
from pathlib import Path
from typing import Any, NamedTuple

from .baseline import Baseline, Record, json_safe
from .keys import spec_sha256
from ..errors import Loc, Problem, SpecError
from ..lang.yamlio import MAX_BYTES
from .metrics import MEASURED
from ..safeio import is_stdin

GIT_TIMEOUT = 60  # seconds for one git command; each reads a few objects
TREE_LIMIT = 256 * 2**20  # bytes of a commit written out to import a model: above, refused
IMPORT_TIMEOUT = 600  # seconds for the process that imports and analyzes a model at REF
SYMLINK_HOPS = 8  # links followed inside the commit's tree before giving up
SPEC_LIMIT = MAX_BYTES  # specs and budget files at REF are bounded like those on disk


class RefBaseline(NamedTuple):
    """A baseline recomputed from the budget file and the specs at a git ref."""

    baseline: Baseline  # file: the stored baseline its measured metrics came from, or ""
    ref: str  # as the user gave it (HEAD, origin/main, a commit)
    commit: str  # the full commit id it resolved to
    notes: list  # lines about the comparison (budget not at REF, spec outside the repo, ...)
    new: dict  # model name -> (why it has no baseline at REF, whether its unchecked
    #            regression tolerances warn): its rows are `new`
    budget_found: bool = True  # whether the budget file is in REF

    @property
    def label(self) -> str:
        """'HEAD (1a2b3c4)', or the short commit alone when REF is (part of) it."""
        if re.fullmatch(r"[0-9a-f]{4,64}", self.ref) and self.commit.startswith(self.ref):
            return self.commit[:12]
        return f"{self.ref} ({self.commit[:7]})"


def _against(message: str, file: str = "", ref: str = "") -> SpecError:
    """A problem of --against REF: at `file` (REF:path) when it concerns one, else at the
    option itself ('--against REF: message')."""
    return SpecError([Problem(Loc(file), "" if file else f"--against {ref}".rstrip(), message)])


def check_ref(ref: str) -> str:
    """REF as given, or SpecError: empty, an option (``-x``: never handed to git) or odd."""
    if not ref or not ref.strip():
        raise _against("expected a git commit, branch or tag, e.g. --against origin/main")
    if ref.startswith("-"):
        raise _against(f"{ref!r} is not a git ref (it starts with '-', like an option); give a "
                       "commit, branch or tag, e.g. --against origin/main")
    if any(ord(c) < 32 or c == "\x7f" for c in ref):
        raise _against(f"{ref!r} is not a git ref (it holds a control character)")
    return ref


class _GitTree:
    """Read-only access to the files of one commit: `git ls-tree` and `git cat-file`, argv
    lists (no shell), a timeout each, output bounded; nothing is checked out, no filter,
    hook or textconv runs."""

    def __init__(self, folder: str, ref: str) -> None:
        self.ref = ref
        out = self._run(["rev-parse", "--show-toplevel", "--show-prefix"], folder)
        if out.returncode != 0:
            raise _against(f"{os.path.abspath(folder)} is not in a git repository git can "
                           f"use (git: {_git_message(out)}); without git, gate against a stored "
                           "baseline: `cnncost baseline save`, commit the file, and run "
                           "`cnncost gate` without --against", ref=ref)
        lines = out.stdout.decode("utf-8", "surrogateescape").split("\n")
        self.root, self.prefix = lines[0], lines[1] if len(lines) > 1 else ""
        out = self._run(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], self.root)
        commit = out.stdout.decode("ascii", "replace").strip()
        if out.returncode != 0 or not re.fullmatch(r"[0-9a-f]{40,64}", commit):
            raise _against(f"no such commit in the git repository {self.root}"
                           f"{' (' + _git_message(out) + ')' if out.stderr.strip() else ''}; "
                           "in CI, fetch it first (a shallow clone has no history: "
                           "actions/checkout needs fetch-depth: 0)", ref=ref)
        self.commit = commit

    def _run(self, args: list, cwd: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
        try:
            return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False,
                                  timeout=GIT_TIMEOUT, env=env, stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise _against("needs git, which is not installed (or not on PATH); gate against "
                           "a stored baseline instead: `cnncost baseline save`, commit the "
                           "file, and run `cnncost gate` without --against", ref=self.ref) \
                from None
        except subprocess.TimeoutExpired:
            raise _against(f"`git {' '.join(args[:2])}` did not finish within {GIT_TIMEOUT} s",
                           ref=self.ref) from None
        except OSError as exc:
            raise _against(f"cannot run git: {exc.strerror or exc}", ref=self.ref) from None

    def _entry(self, path: str) -> tuple | None:
        """(mode, type, object, size) of `path` in the commit, or None if it is not there."""
        out = self._run(["--literal-pathspecs", "ls-tree", "-l", "-z", "--full-tree",
                         self.commit, "--", path], self.root)
        if out.returncode != 0:
            raise _against(f"git ls-tree failed: {_git_message(out)}", ref=self.ref)
        for item in out.stdout.split(b"\0"):
            meta, _, name = item.partition(b"\t")
            fields = meta.decode("ascii", "replace").split()
            if len(fields) == 4 and name.decode("utf-8", "surrogateescape") == path:
                return tuple(fields)
        return None

    def exists(self, path: str) -> bool:
        return bool(path) and self._entry(path) is not None

    def write_tree(self, folder: str) -> None:
        """Every file of the commit under `folder` (bounded by TREE_LIMIT; tarfile's data
        filter refuses links out of it and odd members)."""
        import io
        import tarfile

        out = self._run(["ls-tree", "-r", "-l", "-z", "--full-tree", self.commit], self.root)
        if out.returncode != 0:
            raise _against(f"git ls-tree failed: {_git_message(out)}", ref=self.ref)
        total = sum(int(f[3]) for item in out.stdout.split(b"\0")
                    if len(f := item.partition(b"\t")[0].split()) == 4 and f[3].isdigit())
        if total > TREE_LIMIT:
            raise _against(f"importing a model at {self.ref} writes its commit out, and it "
                           f"holds {total:,} bytes (limit {TREE_LIMIT:,})", ref=self.ref)
        if not hasattr(tarfile, "data_filter"):  # Python 3.10.12+, 3.11.4+
            raise _against("importing a model at a git ref needs a Python whose tarfile has "
                           "the data filter (3.10.12 or later, 3.11.4 or later)", ref=self.ref)
        out = self._run(["archive", "--format=tar", self.commit], self.root)
        if out.returncode != 0:
            raise _against(f"git archive failed: {_git_message(out)}", ref=self.ref)
        with tarfile.open(fileobj=io.BytesIO(out.stdout)) as tar:
            tar.extractall(folder, filter="data")

    def read(self, path: str, limit: int, what: str) -> tuple | None:
        """(path, bytes) of a file of the commit, following links inside the tree; None if
        it is not there; SpecError located at REF:path if it is not a readable file."""
        for _ in range(SYMLINK_HOPS + 1):
            where = f"{self.ref}:{path}"
            found = self._entry(path) if path else None
            if found is None:
                return None
            mode, kind, obj, size = found
            if kind == "tree":
                raise _against(f"is a directory in {self.ref}, not a file", where)
            if kind != "blob":
                raise _against(f"is a {kind} (a submodule?) in {self.ref}, not a file", where)
            if mode == "120000":  # a symbolic link: its blob is the target
                target = self._blob(obj, 4096, where).decode("utf-8", "surrogateescape")
                path = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
                if target.startswith("/") or path == ".." or path.startswith("../"):
                    raise _against(f"is a symbolic link out of the repository in {self.ref} "
                                   f"({target}); not followed", where)
                continue
            if not size.isdigit() or int(size) > limit:
                shown = f"{int(size):,}" if size.isdigit() else size
                raise _against(f"is {shown} bytes in {self.ref}; {what} are limited to "
                               f"{limit:,} bytes", where)
            return path, self._blob(obj, limit, where)
        raise _against(f"symbolic links nest more than {SYMLINK_HOPS} deep in {self.ref}",
                       f"{self.ref}:{path}")

    def _blob(self, obj: str, limit: int, where: str) -> bytes:
        out = self._run(["cat-file", "blob", obj], self.root)
        if out.returncode != 0:
            raise _against(f"cannot read it from git: {_git_message(out)}", where)
        if len(out.stdout) > limit:
            raise _against(f"is more than {limit:,} bytes in {self.ref}", where)
        return out.stdout


def _git_message(out: subprocess.CompletedProcess) -> str:
    lines = [line.strip() for line in out.stderr.decode("utf-8", "replace").splitlines()
             if line.strip()]
    return lines[-1].removeprefix("fatal: ") if lines else f"git exited with {out.returncode}"


def _spec_at(data: bytes, filename: str) -> Any:
    """A Spec from the bytes of a spec file read at REF; SpecError located at `filename`."""
    from ..api import builtin_blocks
    from ..errors import ErrorSink
    from ..lang.spec import spec_from_text
    from ..safeio import decode_utf8

    errors = ErrorSink()
    spec = spec_from_text(decode_utf8(data, filename), filename, errors, builtin_blocks())
    errors.raise_if_any()
    return spec


def baseline_at_ref(budget: Any, ref: str) -> RefBaseline:
    """The baseline of `budget`'s models as they were at git ref `ref` (gate --against).

    The budget file at REF (same path, in the repository that holds the budget file)
    gives each model's spec and settings at REF; every spec is read at REF, bounded, and
    analyzed with this cnncost, exactly as `baseline save` would have at REF. A spec named
    by a bundled name is read at REF when it lies inside the repository (else the
    installed file is used); a path outside the repository is read as it is now (noted).
    A model not in the budget file at REF, or whose spec is not in REF, goes to `new`; a
    budget file not in REF makes every model new. SpecError (exit 2): no git, not a
    repository, no such commit, a budget file or spec that is invalid at REF (located as
    REF:path:line).
    """
    from .. import __version__
    from ..api import bundled_specs, is_model_ref, resolve_path
    from .budget import display_path, parse_budget_at
    from ..errors import ErrorSink
    from .metrics import evaluate
    from ..safeio import decode_utf8
    from ..lang.yamlio import parse_yaml

    check_ref(ref)
    if is_stdin(budget.file):
        raise _against("needs the budget file's path (to read it at REF), not standard input",
                       ref=ref)
    folder = os.path.dirname(budget.file) or "."
    git = _GitTree(folder, ref)
    budget_path = git.prefix + os.path.basename(budget.file)
    empty = Baseline("", __version__, git.commit, {})
    result = RefBaseline(empty, ref, git.commit, [], {})
    found = git.read(budget_path, SPEC_LIMIT, "budget files")
    if found is None:
        result.notes.append(f"the budget file {budget_path} is not in {result.label}: every model "
                            "is new (their regression checks are skipped; budgets still apply)")
        result.new.update({m.name: (f"the budget file is not in {ref}", False)
                           for m in budget.models})
        return result._replace(budget_found=False)
    name = f"{ref}:{found[0]}"
    errors = ErrorSink()
    raw = parse_yaml(decode_utf8(found[1], name), name, errors)
    errors.raise_if_any()
    at_ref = parse_budget_at(raw, name, lambda spec: spec)
    budget_dir = posixpath.dirname(budget_path)
    root = os.path.realpath(git.root)
    bundled = bundled_specs()

    def locate(spec: str) -> tuple[str, str]:
        """('git', path in the repository) | ('file', path on disk) | ('missing', path)."""
        if os.path.isabs(spec):
            inside = os.path.relpath(os.path.realpath(spec), root)
            if inside == ".." or inside.startswith(".." + os.sep):
                return "file", spec
            return "git", inside.replace(os.sep, "/")
        path = posixpath.normpath(posixpath.join(budget_dir, spec.replace(os.sep, "/")))
        if path == ".." or path.startswith("../"):
            return "file", display_path(Path(folder) / spec)
        if git.exists(path):
            return "git", path
        if "/" not in spec and os.sep not in spec and spec.removesuffix(".yaml") in bundled:
            installed = resolve_path(spec.removesuffix(".yaml"))
            inside = os.path.relpath(os.path.realpath(installed), root)
            if inside == ".." or inside.startswith(".." + os.sep):
                return "file", str(installed)  # part of the installed cnncost, like its blocks
            return "git", inside.replace(os.sep, "/")
        return "missing", path

    problems: list[Problem] = []
    records: dict[str, Record] = {}
    old_models = {m.name: m for m in at_ref.models}
    added = [m.name for m in budget.models if m.name not in old_models]
    gone = [m.name for m in at_ref.models if m.name not in {n.name for n in budget.models}]
    for name in added:  # a model added while another left may be a rename: warn then
        result.new[name] = (f"not in the budget file at {ref}" + (
            f", while {', '.join(gone)} left it: renamed?" if gone else ""), bool(gone))
    tree: list[str] = []  # the folder the commit is written to, once a model needs it

    def failed(exc: SpecError, model: Any, shown: str) -> None:
        """Its problems, then where the budget file names the model."""
        problems.extend(exc.problems)
        problems.append(Problem(Loc(budget.file, model.line), f"model {model.name}",
                                f"cannot compute its baseline at {ref}{shown}: see the "
                                "error above"))

    for model in budget.models:
        old = old_models.get(model.name)
        if old is None:
            continue
        if is_model_ref(old.spec):
            try:
                record = _model_at(old, git, budget_dir, tree, result)
            except SpecError as exc:
                failed(exc, model, "")
                continue
            if record is not None:
                records[model.name] = record
            continue
        kind, where = locate(old.spec)
        shown = f"{ref}:{where}" if kind != "file" else where
        try:
            read = git.read(where, SPEC_LIMIT, "specs") if kind == "git" else None
            if kind == "missing" or (kind == "git" and read is None):
                result.new[model.name] = (f"its spec {old.spec_ref} is not in {ref}", True)
                continue
            sha: str | None
            if read is not None:
                shown = f"{ref}:{read[0]}"
                spec, sha = _spec_at(read[1], shown), hashlib.sha256(read[1]).hexdigest()
            else:
                spec, sha = where, spec_sha256(where)
                if old.spec.removesuffix(".yaml") not in bundled or "/" in old.spec:
                    result.notes.append(f"{model.name}: spec {old.spec_ref} is outside the git "
                                        f"repository; its current file stands for {ref}")
            evaluation = evaluate(spec, old.settings)
        except SpecError as exc:
            failed(exc, model, f" ({shown})")
            continue
        records[model.name] = Record(old.spec_ref, sha, json_safe(old.settings),
                                     dict(evaluation.values), None)
    if tree:
        import shutil

        shutil.rmtree(tree[0], ignore_errors=True)
    if problems:
        raise SpecError(problems)
    for name in gone:  # in the budget file at REF, gone now: `removed` rows
        old = old_models[name]
        records[name] = Record(old.spec_ref, None, json_safe(old.settings), {}, None)
    return result._replace(baseline=empty._replace(models=records))


def _model_at(old: Any, git: _GitTree, budget_dir: str, tree: list[str],
              result: RefBaseline) -> Record | None:
    """The baseline Record of a `model:` entry of the budget file at REF: its source read
    at REF (its sha256 keys the record, as in the working tree), the commit written out
    once (into `tree`), and the model imported and analyzed there by another process.
    None (and the model in `result.new`) when its source is not in REF."""
    import json
    import sys
    import tempfile

    from .metrics import ANALYTIC, METRICS

    ref, settings = git.ref, old.settings
    module, _, _ = old.spec.rpartition(":")
    if module.endswith(".py"):
        candidates = [posixpath.normpath(posixpath.join(budget_dir, module))]
    else:  # package.module: a file of the repository, at its root or beside the budget
        dotted = module.replace(".", "/")
        candidates = [posixpath.normpath(posixpath.join(base, dotted + end))
                      for base in dict.fromkeys([budget_dir, ""])
                      for end in (".py", "/__init__.py")]
    found = next((c for c in candidates if not c.startswith("../") and git.exists(c)), None)
    if found is None:
        if module.endswith(".py"):
            result.new[old.name] = (f"its source {module} is not in {ref}", True)
            return None
        result.notes.append(f"{old.name}: module {module} is not a file of the repository; "
                            f"the installed one stands for {ref}")
        sha = None
    else:
        read = git.read(found, TREE_LIMIT, "model sources")
        sha = hashlib.sha256(read[1]).hexdigest() if read is not None else None
    if not tree:
        tree.append(tempfile.mkdtemp(prefix="cnncost-against-"))
        git.write_tree(tree[0])
    root = tree[0]
    cwd = os.path.join(root, budget_dir) if budget_dir else root
    shape = settings["input"]
    command = [sys.executable, "-m", "cnncost", "analyze", old.spec, "--input",
               shape if isinstance(shape, str) else "x".join(map(str, shape)),
               "--batch", str(settings["batch"]),
               "--dtype", settings["dtype"], "--format", "json"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [cwd, root, *filter(None, [os.environ.get("PYTHONPATH")])])}
    try:
        out = subprocess.run(command, cwd=cwd, env=env, capture_output=True, check=False,
                             timeout=IMPORT_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise _against(f"importing {old.spec} at {ref} did not finish within "
                       f"{IMPORT_TIMEOUT} s", f"{ref}:{found or module}") from None
    if out.returncode != 0:
        lines = out.stderr.decode("utf-8", "replace").strip().splitlines()
        raise _against(f"importing {old.spec} at {ref} failed: "
                       f"{lines[-1] if lines else f'exit {out.returncode}'}",
                       f"{ref}:{found or module}")
    totals = json.loads(out.stdout)["totals"]
    values = {name: totals[METRICS[name].total] for name in ANALYTIC
              if METRICS[name].total in totals}
    return Record(old.spec_ref, sha, json_safe(settings), values, None)


def with_measured(at_ref: RefBaseline, stored: Baseline | None) -> RefBaseline:
    """`at_ref` with the measured metrics (latency, throughput) and their environment taken
    from the stored baseline `stored`, model by model (analytic ones stay recomputed)."""
    if stored is None:
        return at_ref
    models = {}
    for name, record in at_ref.baseline.models.items():
        kept = stored.models.get(name)
        measured = {m: v for m, v in kept.metrics.items() if m in MEASURED} if kept else {}
        if measured and kept is not None:
            record = record._replace(metrics={**record.metrics, **measured}, env=kept.env)
        models[name] = record
    return at_ref._replace(baseline=at_ref.baseline._replace(file=stored.file, models=models))
