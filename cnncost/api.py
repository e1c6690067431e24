"""The library API: load specs, resolve variables, run the passes, return plain data.

`analyze(spec)` is the one call most users need: it accepts a path, the name of
a bundled spec, a YAML mapping or a loaded :class:`~cnncost.lang.spec.Spec`, runs
load -> validate -> expand -> analyze, and returns an
:class:`~cnncost.cost.analysis.Analysis` or raises :class:`~cnncost.errors.SpecError`
with every problem found. Nothing here imports torch or pandas.
"""

from __future__ import annotations

import gc
import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple
from collections.abc import Mapping

from .cost.analysis import DTYPE_BYTES, Analysis, analyze_graph
from .errors import ErrorSink, Loc, Problem, SpecError, did_you_mean, one_of, show
from .lang.plan import expand_planned
from .lang.graph import Graph, Node
from .safeio import is_stdin
from .lang.spec import Spec, load_blocks, parse_spec
from .lang.yamlio import LocDict, LocList

PACKAGE_DIR = Path(__file__).resolve().parent
BUILTIN_BLOCKS_FILE = PACKAGE_DIR / "lang" / "blocks.yaml"


def specs_dir() -> Path:
    """Where bundled specs live: $CNNCOST_SPECS, the checkout's specs/, or the package's."""
    env = os.environ.get("CNNCOST_SPECS")
    if env:
        return Path(env)
    for candidate in (PACKAGE_DIR.parent / "specs", PACKAGE_DIR / "specs"):
        if candidate.is_dir():
            return candidate
    return PACKAGE_DIR.parent / "specs"


def bundled_specs() -> dict[str, Path]:
    """Bundled spec name -> path (files starting with `_`, such as the zoo's name table,
    are not specs)."""
    folder = specs_dir()
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.yaml")) if not p.name.startswith("_")}


ZOO_NAMES_FILE = "_names.yaml"


class ZooName(NamedTuple):
    """A published model name that is a bundled spec with one of its variants."""

    spec: str  # the bundled spec's name (its file's stem)
    variant: str


def zoo_names() -> dict[str, ZooName]:
    """Published model name -> (bundled spec, variant), from the bundled specs' folder's
    `_names.yaml` (`efficientnet_b3: {spec: efficientnet, variant: b3}`)."""
    path = specs_dir() / ZOO_NAMES_FILE
    if not path.is_file():
        return {}
    return _zoo_names(str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=4)
def _zoo_names(path: str, _mtime: int) -> dict[str, ZooName]:
    from .lang.yamlio import read_yaml

    errors = ErrorSink()
    raw = read_yaml(path, errors) or {}
    errors.raise_if_any()
    table = {}
    for name, entry in raw.items() if isinstance(raw, Mapping) else ():
        if not (isinstance(entry, Mapping) and set(entry) == {"spec", "variant"}):
            raise SpecError([_problem(path, f"{name}: an entry is {{spec: NAME, variant: "
                                            f"NAME}}; received {entry!r}")])
        table[str(name)] = ZooName(str(entry["spec"]), str(entry["variant"]))
    return table


def check_names_file(path: str | os.PathLike) -> int:
    """Validate a zoo name table (`_names.yaml`): every entry names a spec file beside it
    and one of that spec's variants. Returns the number of names; SpecError otherwise."""
    from .lang.yamlio import read_yaml

    errors = ErrorSink()
    raw = read_yaml(path, errors)
    errors.raise_if_any()
    if not isinstance(raw, Mapping):
        raise SpecError([_problem(str(path), "a name table is a mapping of published name -> "
                                             "{spec: NAME, variant: NAME}")])
    folder = Path(path).parent
    for name, entry in raw.items():
        loc = Loc(str(path), raw.line_of(name) if isinstance(raw, LocDict) else 0)
        if not (isinstance(entry, Mapping) and set(entry) == {"spec", "variant"}):
            errors.add(loc, str(name), f"an entry is {{spec: NAME, variant: NAME}}; received "
                                       f"{show(entry)}")
            continue
        target = folder / f"{entry['spec']}.yaml"
        if not target.is_file():
            errors.add(loc, str(name), f"no spec {entry['spec']!r} beside this file")
            continue
        spec = _load(target, errors)
        if spec is not None and str(entry["variant"]) not in spec.variants:
            errors.add(loc, str(name), f"spec {entry['spec']!r} has no variant "
                                       f"{str(entry['variant'])!r}{did_you_mean(str(entry['variant']), spec.variants)} "
                                       f"(variants: {one_of(spec.variants) or 'none defined'})")
    errors.raise_if_any()
    return len(raw)


def spec_names() -> list[str]:
    """Every name a spec argument accepts besides a file: bundled specs and zoo names."""
    return sorted(set(bundled_specs()) | set(zoo_names()))


@lru_cache(maxsize=1)
def builtin_blocks() -> dict:
    """The built-in blocks (basic, bottleneck, inverted_residual, se, ...), parsed once."""
    errors = ErrorSink()
    blocks = load_blocks(BUILTIN_BLOCKS_FILE, errors)
    errors.raise_if_any()  # a broken built-in file is a bug, not user input
    return blocks


def resolve_path(spec: str | os.PathLike) -> Path:
    """A spec argument -> file path: an existing file, `-` (standard input), or a bundled
    spec's name."""
    if is_stdin(spec):
        return Path(str(spec))
    path = Path(spec)
    if path.is_file() or (path.exists() and not path.is_dir()):
        return path  # a device or FIFO is refused, unread, by cnncost.safeio
    name = str(spec)
    if path.is_dir():
        raise SpecError([_problem(name, "is a directory; give a spec file (e.g. "
                                        f"{os.path.join(name, 'model.yaml')}) or a bundled name")])
    bundled = bundled_specs()
    key = name[:-5] if name.endswith(".yaml") else name
    plain = os.sep not in name and "/" not in name
    zoo = zoo_names() if plain and key not in bundled else {}
    if key in zoo:
        key = zoo[key].spec
    if key in bundled and plain:
        found = bundled[key]
        relative = os.path.relpath(found)
        return Path(relative) if not relative.startswith("..") else found
    known = spec_names()
    close = did_you_mean(Path(key).name, known)
    hint = f" ({close.lstrip('; ')})" if close else ""
    raise SpecError([_problem(name, f"no such spec file or bundled spec{hint}; `cnncost specs` "
                                    f"lists the {len(known)} bundled names" if known else
                                    "no such spec file or bundled spec; no bundled specs found")])


def _problem(file: str, message: str) -> Problem:
    return Problem(Loc(file), "", message)


def _locate(obj: Any) -> Any:
    """Plain dicts/lists (from Python) -> LocDict/LocList without line numbers."""
    if isinstance(obj, Mapping) and not isinstance(obj, LocDict):
        mapping = LocDict((k, _locate(v)) for k, v in obj.items())
        mapping.line, mapping.key_lines = 0, {}
        return mapping
    if isinstance(obj, (list, tuple)) and not isinstance(obj, LocList):
        items = LocList(_locate(v) for v in obj)
        items.line, items.item_lines = 0, []
        return items
    return obj


# FILE.py:CALLABLE or package.module:CALLABLE: a PyTorch model, imported on the fly
MODEL_REF = re.compile(r"^(?:[\w./\\-]+\.py|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):[A-Za-z_]\w*$")


def is_model_ref(spec: Any) -> bool:
    """A spec argument that names a PyTorch model (and is not a file)."""
    return isinstance(spec, str) and bool(MODEL_REF.match(spec)) and not Path(spec).exists()


def model_spec(ref: str, input_shape: tuple[int, ...]) -> Spec:
    """The spec of the PyTorch model `ref` for one input of `input_shape`, as `cnncost
    import` writes it (checked against torch's counts), cached while its source file is
    unchanged. Imports torch."""
    file = ref.rpartition(":")[0]
    stamp = None
    if file.endswith(".py"):
        info = Path(file).stat() if Path(file).is_file() else None
        stamp = (info.st_mtime_ns, info.st_size) if info is not None else None
    return _model_spec(ref, input_shape, stamp)


@lru_cache(maxsize=16)
def _model_spec(ref: str, input_shape: tuple[int, ...], _stamp: Any) -> Spec:
    try:
        from .pytorch.importer import check, load_model, to_spec
    except ImportError as exc:
        raise SpecError([_problem(ref, f"a PyTorch model needs PyTorch, which cannot be "
                                       f"imported here ({exc}): pip install 'cnncost[torch]' "
                                       "(or pip install torch)")]) from None

    model = load_model(ref)
    spec = to_spec(model, input_shape, ref.rpartition(":")[2])
    check(spec, model, input_shape)
    errors = ErrorSink()
    parsed = parse_spec(_locate(spec), ref, errors, builtin_blocks())
    errors.raise_if_any()
    assert parsed is not None  # noqa: S101
    return parsed


def _load(spec: Any, errors: ErrorSink, input: Any = None) -> Spec | None:
    if isinstance(spec, Spec):
        return spec
    if is_model_ref(spec):
        if input is None:
            raise SpecError([_problem(spec, "a PyTorch model is imported for one input shape: "
                                            "give --input CxHxW (input= in the library)")])
        shape = parse_input(input) if isinstance(input, str) else check_input(input)
        return model_spec(spec, tuple(shape))
    if isinstance(spec, Mapping):
        return parse_spec(_locate(spec), "<dict>", errors, builtin_blocks())
    if not isinstance(spec, (str, os.PathLike)):
        raise SpecError([_problem("", f"a spec is a path, a bundled spec's name, a mapping or "
                                      f"a loaded Spec; received {type(spec).__name__}")])
    source = read_source(spec, errors)
    return None if source is None else _from_source(source, errors)


class SpecSource(NamedTuple):
    """A spec file (or bundled name, or standard input) read once: all a process needs to
    load it again without the file system, so that a worker, here or on another machine,
    parses the text it is sent. Hashable, picklable, plain data."""

    file: str  # the file as messages name it (the user's path, `<stdin>`)
    text: str  # its text, bounded as every spec is read (yamlio.MAX_BYTES)
    zoo: str = ""  # a zoo name (`efficientnet_b3`) that selects a variant of the file, or ""


def read_source(spec: str | os.PathLike, errors: ErrorSink | None = None) -> SpecSource | None:
    """Read a spec argument (a path, `-`, a bundled or zoo name) once, for :func:`load`.

    An unknown name raises SpecError; an unreadable file is reported in `errors` (None is
    returned), or raised as SpecError when `errors` is not given.
    """
    from .lang.yamlio import display_name, read_yaml_text

    sink = errors if errors is not None else ErrorSink()
    path = resolve_path(spec)
    text = read_yaml_text(path, sink)
    if errors is None:
        sink.raise_if_any()
    if text is None:
        return None
    name = str(spec)
    zoo = name if not Path(name).exists() and name in zoo_names() else ""
    return SpecSource(display_name(path), text, zoo)


def load_source(source: SpecSource) -> Spec:
    """The Spec of a spec read by :func:`read_source` (here or in another process); the
    same Spec, and the same problems naming the same file, as :func:`load` of the path."""
    errors = ErrorSink()
    result = _from_source(source, errors)
    errors.raise_if_any()
    assert result is not None  # no errors implies a spec  # noqa: S101
    return result


def _from_source(source: SpecSource, errors: ErrorSink) -> Spec | None:
    from .lang.spec import spec_from_text

    loaded = spec_from_text(source.text, source.file, errors, builtin_blocks())
    if loaded is not None and source.zoo:
        entry = zoo_names()[source.zoo]
        if entry.variant not in loaded.variants:
            raise SpecError([_problem(str(specs_dir() / ZOO_NAMES_FILE), f"{source.zoo}: spec "
                                      f"{entry.spec!r} has no variant {entry.variant!r}")])
        preset = MappingProxyType(dict(loaded.variants[entry.variant]))
        return loaded._replace(name=source.zoo, preset=preset)
    return loaded


def load(spec: Any, input: Any = None) -> Spec:
    """Load and validate a spec from a path, bundled name, mapping or Spec, or a PyTorch
    model (`FILE.py:CALLABLE`, `package.module:CALLABLE`) imported for `input`."""
    errors = ErrorSink()
    result = _load(spec, errors, input)
    errors.raise_if_any()
    assert result is not None  # no errors implies a spec  # noqa: S101
    return result


def parse_value(text: str) -> Any:
    """A --set value as YAML would read a scalar: int, float, bool or text; or a flat
    list of those in brackets (`[8, 16, 32]`, at most MAX_LIST items).

    ValueError for a number no spec can use: NaN, an infinity, or beyond +-2**63
    (`1e400`, a 5,000-digit integer), so that the option is blamed, not a spec line.
    """
    stripped = text.strip()
    if stripped.startswith("[") and stripped.endswith("]"):
        from .lang.expr import MAX_LIST

        inner = stripped[1:-1].strip()
        parts = inner.split(",") if inner else []
        if len(parts) > MAX_LIST:
            raise ValueError(f"a list of {len(parts):,} items (limit {MAX_LIST:,})")
        if any(p.strip().startswith("[") or p.strip().endswith("]") for p in parts):
            raise ValueError("lists hold numbers, text or booleans, not lists")
        return [parse_value(p) for p in parts]
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            value = cast(text)
        except ValueError:
            continue
        shown = text.strip() if len(text.strip()) <= 24 else f"{text.strip()[:20]}... " \
            f"({len(text.strip()):,} characters)"
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{shown} is not a finite number")
        if abs(value) >= 2**63:
            raise ValueError(f"{shown} is too large (the limit is +-2**63)")
        return value
    return text


def resolve_vars(spec: Spec, variant: str | None = None,
                 overrides: Mapping[str, Any] | None = None,
                 errors: ErrorSink | None = None) -> dict:
    """Spec defaults, then the variant's settings, then explicit overrides.

    Problems go to `errors` if given, else raise SpecError.
    """
    sink = errors if errors is not None else ErrorSink()
    values = {**spec.vars, **spec.preset}
    if overrides is not None and not isinstance(overrides, Mapping):
        sink.add(Loc(spec.file), "set", f"variables to set must be a mapping of name -> value, "
                 f"received {type(overrides).__name__}")
        overrides = None
    if variant is not None:
        if variant not in spec.variants:
            sink.add(Loc(spec.file), "--variant", f"unknown variant {variant!r}"
                     f"{did_you_mean(variant, spec.variants)} (variants: "
                     f"{one_of(spec.variants) or 'none defined'})")
        else:
            values.update(spec.variants[variant])
    given = set(spec.preset)
    given |= set(spec.variants.get(variant or "", {})) if variant in spec.variants else set()
    for key, value in (overrides or {}).items():
        if key == "training":  # built in: training-only layers count their work when true
            if not isinstance(value, bool):
                sink.add(Loc(spec.file), "--set training", f"variable 'training' is true or "
                         f"false (default false); received {show(value)}")
                continue
            values[key] = value
            given.add(key)
            continue
        if key not in spec.vars:
            sink.add(Loc(spec.file), "--set", f"unknown variable {key!r}{did_you_mean(key, spec.vars)} "
                     f"(vars: {one_of(spec.vars) or 'none defined'})")
            continue
        default = spec.vars[key]
        decl = spec.var_decls.get(key)
        problem = decl.problem(value) if decl is not None else None
        if problem:
            sink.add(Loc(spec.file), f"--set {key}", f"variable {key!r}: {show(value)} is "
                     f"outside what it allows ({problem})")
            continue
        if decl is not None and decl.derived:
            pass  # an expression's result has no declared type: any value replaces it
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                sink.add(Loc(spec.file), f"--set {key}", f"variable {key!r} is true or false (default "
                         f"{str(default).lower()}); received {show(value)}")
                continue
        elif isinstance(default, (int, float)) and (isinstance(value, bool)
                                                    or not isinstance(value, (int, float))):
            sink.add(Loc(spec.file), f"--set {key}", f"variable {key!r} is a number (default "
                     f"{default!r}); received {show(value)}")
            continue
        values[key] = value
        given.add(key)
    _derive(spec, values, given, sink)
    if errors is None:
        sink.raise_if_any()
    return values


def _derive(spec: Spec, values: dict[str, Any], given: set[str], sink: ErrorSink) -> None:
    """Evaluate the variables whose default is an expression, in declaration order, each
    over the variables before it as resolved (so --set and variants flow through); one set
    by a variant or --set keeps that value."""
    from .lang.expr import ExprError, compile_expr

    env: dict[str, Any] = {}
    for key, decl in spec.var_decls.items():
        if decl.derived and key not in given:
            where = Loc(spec.file, spec.var_lines.get(key, 0))
            try:
                value = compile_expr(decl.default)(env)
            except ExprError as exc:
                sink.add(where, f"vars.{key}", f"{decl.default!r}: {exc} (a variable's "
                         "expression sees the variables declared before it)")
                values.pop(key, None)
                continue
            problem = decl.problem(value)
            if problem:
                sink.add(where, f"vars.{key}", f"{decl.default!r} gives {show(value)}, "
                         f"outside what the variable allows ({problem})")
            values[key] = value
        if key in values:
            env[key] = values[key]


def parse_input(text: str) -> tuple:
    """'3x224x224' or '224' (for a vector) -> a shape tuple; ValueError if malformed."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"expected CxHxW such as 3x224x224, received {text!r}") from None
    if len(dims) not in (1, 3) or any(d <= 0 for d in dims):
        raise ValueError(f"expected CxHxW (or F for a vector) of positive integers, received "
                         f"{text!r}")
    return dims


def check_input(dims: Any) -> tuple:
    """An input shape given as a tuple: 1 or 3 positive ints; ValueError if not."""
    if (not isinstance(dims, (tuple, list)) or len(dims) not in (1, 3)
            or any(isinstance(d, bool) or not isinstance(d, int) or d <= 0 for d in dims)):
        raise ValueError(f"expected (C, H, W) or (F,) of positive integers, received {dims!r}")
    return tuple(dims)


def build_graph(spec: Any, *, input: tuple | str | None = None, set: Mapping | None = None,
                variant: str | None = None) -> Graph:
    """Validate and expand a spec into its graph of primitive ops.

    Every problem found by any pass (parse, variables, expansion) is collected
    and raised together as one SpecError.
    """
    errors = ErrorSink()
    try:
        loaded = _load(spec, errors, input)
    except ValueError as exc:  # a model's --input that does not parse
        raise SpecError([_problem(str(spec), f"--input: {exc}")]) from None
    if loaded is None:
        errors.raise_if_any()
    assert loaded is not None  # noqa: S101
    if input is not None:
        try:
            input = parse_input(input) if isinstance(input, str) else check_input(input)
        except ValueError as exc:
            errors.add(Loc(loaded.file), "input", str(exc))
            input = None
    variables = resolve_vars(loaded, variant, set, errors)
    graph = expand_planned(loaded, builtin_blocks(), variables, errors, input)
    errors.raise_if_any()
    assert graph is not None  # noqa: S101
    return graph


def opaque_nodes(graph: Graph) -> list[Node]:
    """The graph's `opaque` layers (modules imported without a spec equivalent)."""
    return [node for node in graph.nodes if node.op == "opaque"]


def opaque_note(graph: Graph) -> tuple[str, ...]:
    """The note every output carries for a graph with opaque layers; none otherwise."""
    found = opaque_nodes(graph)
    if not found:
        return ()
    names = ", ".join(node.name for node in found[:5]) + (", ..." if len(found) > 5 else "")
    return (f"opaque layers: {len(found)} ({names}), imported without a spec equivalent: "
            "params, buffers and output shapes counted; MACs, FLOPs and other ops not "
            "counted",)


def _opaque_note_of(graph: Graph) -> tuple[str, ...]:
    """opaque_note, once per structure for the graphs of a plan (Graph.shared)."""
    shared = graph.shared
    if shared is None:
        return opaque_note(graph)
    note = shared.get("opaque_note")
    if note is None:
        note = shared["opaque_note"] = opaque_note(graph)
    return note


def refuse_opaque(graph: Graph, what: str) -> None:
    """SpecError at each opaque layer: a spec holding one cannot be `what` as the network
    it stands for (what the module computes is not in the spec)."""
    found = opaque_nodes(graph)
    if found:
        raise SpecError([Problem(node.loc, node.name, f"an opaque layer cannot be {what}: "
                                 "what the imported module computes is not in the spec "
                                 "(only its counts are); replace it with layers that "
                                 "compute it") for node in found])


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused for one analysis. An analysis allocates an
    object or a few per layer and frees them all together; with the collector on, its
    full collections walk every live object again and again, and a 100,000-layer analysis
    takes five times as long (benchmarks/bench_scale.py). What is freed meanwhile is freed
    by reference counting as usual; cycles wait for the next collection."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def analyze(spec: Any, *, input: tuple | str | None = None, batch: int = 1, dtype: str = "fp32",
            set: Mapping | None = None, variant: str | None = None,
            convention: str = "torchvision", geometry: bool = False,
            rows: bool = True) -> Analysis:
    """Analyze an architecture: shapes, params, MACs, FLOPs and memory per layer.

    `spec`: a path, a bundled spec name ("resnet50"), a mapping or a Spec.
    `input`: override the input shape, e.g. "3x160x160". `set`: spec variables.
    `convention`: counting profile for MACs and params (docs/conventions.md,
    "Counting profiles"): torchvision (default), fvcore, ptflops or keras.
    `geometry`: also each layer's receptive field, effective stride and field start
    (cnncost.cost.receptive; `Analysis.geometry`, in `to_dict`).
    `rows`: false for the totals alone (`Analysis.rows` left empty), as a sweep needs.
    Raises SpecError (with every problem found) on invalid input.
    """
    if convention != "torchvision":
        from .cost.conventions import get

        try:
            get(convention)
        except ValueError as exc:
            raise SpecError([_problem("", str(exc))]) from None
    if dtype not in DTYPE_BYTES:
        raise SpecError([_problem("", f"unknown dtype {dtype!r}{did_you_mean(dtype, DTYPE_BYTES)} "
                                      f"(allowed: {one_of(DTYPE_BYTES)})")])
    if isinstance(batch, bool) or not isinstance(batch, int) or batch <= 0:
        raise SpecError([_problem("", f"batch must be a positive integer, received {batch!r}")])
    with gc_paused():
        graph = build_graph(spec, input=input, set=set, variant=variant)
        result = analyze_graph(graph, batch, dtype, graph.description, convention, rows=rows)
    if geometry:
        from .cost.receptive import geometry as fields

        result = result._replace(geometry=tuple(fields(graph)))
    if convention == "keras":
        result = result._replace(notes=_keras_layout_notes(spec, graph.vars))
    note = _opaque_note_of(graph)
    if note:
        result = result._replace(notes=result.notes + note)
    return result._replace(variant=variant, custom=bool(variant or set or input))


def _keras_layout_notes(spec: Any, values: Mapping[str, Any]) -> tuple[str, ...]:
    """Under the keras convention, a note when the spec has a `keras` variant (Keras' own
    layout of the network) and the variables analyzed are not its settings."""
    keras = load(spec).variants.get("keras")
    if not keras:
        return ()
    def word(value: Any) -> str:
        return str(value).lower() if isinstance(value, bool) else str(value)

    differ = [f"{k}={word(values.get(k))} (Keras: {word(v)})" for k, v in keras.items()
              if values.get(k) != v]
    if not differ:
        return ()
    return (f"this is not Keras' own layout of the network: {', '.join(differ)}; "
            "--variant keras is keras.applications' model",)
