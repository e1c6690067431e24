"""Bench results as measurements: `cnncost bench --format json` files read back for
`gate`, `baseline save|update` and `compare` (``--measurements FILE``), without torch.

Passes, each handing plain data to the next:

1. :func:`load_measurements` reads every file and validates it fail-closed against
   :data:`cnncost.pytorch.bench_schema.SCHEMA` (kind and schema version first, then the whole
   document), collecting every problem with its file and JSON path
   (``results[1].latency.median_ms: expected a number, received 'fast'``) into one
   SpecError. The checks are driven by the schema itself through :data:`KEYWORDS`, one
   function per JSON Schema keyword the schema uses, so they cannot drift from it.
2. Each result becomes an :class:`Entry` (one batch size of one document).
3. :meth:`Measurements.lookup` finds the entry measured of the model a :class:`Key`
   describes: same spec (sha256 of the spec file when both sides know it, else the spec's
   name), input shape, resolved variables, variant, batch and dtype, all exact (a tf32
   result never stands for an fp32 model). It returns a :class:`BenchLatency` (the fields
   of ``cnncost.pytorch.measure.Latency``, so the measured paths take it unchanged) or None; two
   different results for one key are an error naming both. :meth:`Measurements.explain`
   says why nothing matched.

No torch, no pandas: this is the analytic path.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from ..pytorch.bench_schema import KIND, SCHEMA, SCHEMA_VERSION
from ..errors import Loc, Problem, SpecError
from ..safeio import load_json
from .keys import Key, analysis_key, key_for  # noqa: F401  (Key used below; the others re-exported)


class BenchLatency(NamedTuple):
    """One bench result, shaped like ``cnncost.pytorch.measure.Latency`` (same fields, same order)."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    iqr_ms: float
    samples: int
    images_per_s: float
    env: dict  # the result's environment fingerprint, batch included
    first_ms: float = 0.0


class Entry(NamedTuple):
    """One result of one bench file, with the document parts it is matched on."""

    file: str
    index: int  # type: ignore[assignment]  # position in the results (shadows tuple.index)
    spec: dict  # the document's spec: name, file, sha256, input_shape, vars, variant, ...
    settings: dict  # the document's settings: device, dtype, compile, ...
    result: dict  # the result itself: batch, env, latency, images_per_s, ...

    @property
    def where(self) -> str:
        return f"{self.file} results[{self.index}]"


# ------------------------------------------------------------------ matching
def same(a: Any, b: Any) -> bool:
    """JSON equality with numbers by value (1 == 1.0) but booleans apart from numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _shape(shape: Iterable) -> str:
    return "x".join(str(d) for d in shape)


def _vars(values: Mapping) -> str:
    return "{" + ", ".join(f"{k}={_scalar(v)}" for k, v in sorted(values.items())) + "}"


def _scalar(value: Any) -> str:
    if value is None:
        return "none"
    return str(value).lower() if isinstance(value, bool) else str(value)


class Field(NamedTuple):
    """One part of the key: its value in an entry and in a key, and how it is shown."""

    of_entry: Callable[[Entry], Any]
    of_key: Callable[[Key], Any]
    show: Callable[[Any], str]


# key part -> how to read and show it; the spec itself is matched by _same_spec
FIELDS: dict[str, Field] = {
    "input": Field(lambda e: e.spec["input_shape"], lambda k: k.input_shape, _shape),
    "vars": Field(lambda e: e.spec["vars"], lambda k: k.vars, _vars),
    "variant": Field(lambda e: e.spec["variant"], lambda k: k.variant, _scalar),
    "batch": Field(lambda e: e.result["batch"], lambda k: k.batch, _scalar),
    "dtype": Field(lambda e: e.settings["dtype"], lambda k: k.dtype, _scalar),
}


def _same_spec(entry: Entry, key: Key) -> bool:
    sha = entry.spec["sha256"]
    if sha is not None and key.sha256 is not None:
        return sha == key.sha256
    return entry.spec["name"] == key.name


def _differences(entry: Entry, key: Key) -> list[str]:
    out = []
    for name, field in FIELDS.items():
        have, want = field.of_entry(entry), field.of_key(key)
        if same(have, want):
            continue
        if name == "vars":
            names = sorted(k for k in {*have, *want} if not same(have.get(k), want.get(k)))
            have = {k: have.get(k) for k in names if k in have}
            want = {k: want.get(k) for k in names if k in want}
        text = f"{name} {field.show(have)} (wanted {field.show(want)})"
        if name == "dtype" and (have, want) == ("tf32", "fp32"):
            text += "; a tf32 result never stands for an fp32 model"
        out.append(text)
    return out


def describe(key: Key) -> str:
    """The key in words, for notes: 'spec resnet18 (sha256 1a2b3c4d5e6f), input 3x224x224, ...'."""
    spec = f"spec {key.name}" + (f" (sha256 {key.sha256[:12]})" if key.sha256 else "")
    return ", ".join([spec, *(f"{name} {field.show(field.of_key(key))}"
                              for name, field in FIELDS.items())])


def _content(entry: Entry) -> str:
    return json.dumps({"settings": entry.settings, "result": entry.result}, sort_keys=True,
                      default=repr)


def _changed(a: Entry, b: Entry) -> list[str]:
    """Top-level paths where two entries differ: settings.compile, latency.median_ms, ..."""
    out = []
    for part in ("settings", "result"):
        x, y = getattr(a, part), getattr(b, part)
        for k in sorted({*x, *y}):
            if not same(x.get(k), y.get(k)):
                if isinstance(x.get(k), dict) and isinstance(y.get(k), dict):
                    out += [f"{k}.{j}" for j in sorted({*x[k], *y[k]})
                            if not same(x[k].get(j), y[k].get(j))]
                else:
                    out.append(f"{part}.{k}" if part == "settings" else k)
    return out


class Measurements(NamedTuple):
    """Every result of the bench files given, ready to look up."""

    files: tuple  # the files, as given
    entries: tuple  # of Entry, in file order then result order

    def lookup(self, key: Key) -> BenchLatency | None:
        """The result measured of `key`'s model, or None; SpecError if two different match."""
        found: dict[str, Entry] = {}
        for entry in self.entries:
            if _same_spec(entry, key) and not _differences(entry, key):
                found.setdefault(_content(entry), entry)
        if len(found) > 1:
            first, second = list(found.values())[:2]
            changed = _changed(first, second)
            raise SpecError([Problem(Loc(first.file), f"results[{first.index}]", (
                f"{second.where} is another result for the same model ({describe(key)}), "
                f"which differs in {', '.join(changed[:4])}"
                f"{f' (and {len(changed) - 4} more)' if len(changed) > 4 else ''}; "
                "pass only one of them to --measurements"))])
        if not found:
            return None
        return latency_of(next(iter(found.values())))

    def explain(self, key: Key) -> str:
        """Why no result matched `key`: what was looked for and the closest result."""
        files = ", ".join(dict.fromkeys(self.files))
        wanted = f"no bench result in {files} matched {describe(key)}"
        same_spec = [e for e in self.entries if _same_spec(e, key)]
        if same_spec:
            closest = min(same_spec, key=lambda e: len(_differences(e, key)))
            return f"{wanted}; closest: {closest.where}, {', '.join(_differences(closest, key))}"
        by_name = [e for e in self.entries if e.spec["name"] == key.name]
        if by_name:
            return (f"{wanted}; {by_name[0].where} is of spec {key.name} with sha256 "
                    f"{by_name[0].spec['sha256'][:12]}: the spec file changed since it was "
                    "benchmarked (run cnncost bench again)")
        names = sorted({e.spec["name"] for e in self.entries})
        return f"{wanted}; the files hold results for {', '.join(names)} only"


def latency_of(entry: Entry) -> BenchLatency:
    """The Latency-like view of one result."""
    result, latency = entry.result, entry.result["latency"]
    return BenchLatency(median_ms=float(latency["median_ms"]), p10_ms=float(latency["p10_ms"]),
                        p90_ms=float(latency["p90_ms"]), iqr_ms=float(latency["iqr_ms"]),
                        samples=int(latency["samples"]),
                        images_per_s=float(result["images_per_s"]), env=dict(result["env"]),
                        first_ms=float(latency["first_ms"]))


# ------------------------------------------------------------------ loading
def load_measurements(paths: Iterable[str | os.PathLike]) -> Measurements:
    """Read and validate bench JSON files; one SpecError with every problem of every file."""
    files: list[str] = []
    entries: list[Entry] = []
    problems: list[Problem] = []
    for path in paths:
        filename = str(path)
        files.append(filename)
        document = _read(filename, problems)
        if document is None:
            continue
        found = validate(document)
        problems += [Problem(Loc(filename), where, message) for where, message in found]
        if not found:
            entries += [Entry(filename, i, document["spec"], document["settings"], result)
                        for i, result in enumerate(document["results"])]
    if problems:
        raise SpecError(problems)
    return Measurements(tuple(files), tuple(entries))


MAX_BYTES = 32_000_000  # a bench file larger than this is refused unread


def _read(filename: str, problems: list) -> Any:
    """The parsed file, or None with its problems (bounded read and strict JSON: duplicate
    keys, NaN, huge numbers and deep nesting refused with their JSON path)."""
    try:
        return load_json(filename, what="bench result", limit=MAX_BYTES,
                         missing="no such bench file (write one with `cnncost bench SPEC "
                                 "--format json -o FILE`)")
    except SpecError as exc:
        problems += exc.problems
        return None


def validate(document: Any) -> list[tuple[str, str]]:
    """(JSON path, message) for every way `document` is not a bench result of this version."""
    if not isinstance(document, dict):
        return [("", f"expected a JSON object (a `cnncost bench --format json` result), "
                     f"received {received(document)}")]
    kind = document.get("kind")
    if kind != KIND:
        return [("kind", f"expected {KIND!r} (a `cnncost bench --format json` result), "
                         f"received {received(kind) if 'kind' in document else 'nothing'}")]
    version = document.get("schema_version")
    if isinstance(version, bool) or version != SCHEMA_VERSION:
        newer = isinstance(version, int) and not isinstance(version, bool) and \
            version > SCHEMA_VERSION
        return [("schema_version", f"this cnncost reads bench results of schema version "
                                   f"{SCHEMA_VERSION}, received {received(version)}"
                                   + ("; written by a newer cnncost: upgrade" if newer else ""))]
    problems: list[tuple[str, str]] = []
    check(document, SCHEMA, "", problems)
    if not problems:
        problems += consistency(document)
    return problems


def consistency(document: dict) -> list[tuple[str, str]]:
    """What the schema cannot say: p10 <= median <= p90 and images/s = batch / median
    (a hand-edited or corrupted result fails closed instead of passing a gate)."""
    out = []
    for i, result in enumerate(document["results"]):
        lat = result["latency"]
        slack = 1e-9 * lat["median_ms"]  # float rounding of the quantiles, never a real gap
        if not lat["p10_ms"] - slack <= lat["median_ms"] <= lat["p90_ms"] + slack:
            out.append((f"results[{i}].latency", f"expected p10_ms <= median_ms <= p90_ms, "
                        f"received {lat['p10_ms']}, {lat['median_ms']}, {lat['p90_ms']}"))
        rate = result["batch"] * 1000 / lat["median_ms"]
        if not math.isclose(result["images_per_s"], rate, rel_tol=1e-6):
            out.append((f"results[{i}].images_per_s", f"expected batch x 1000 / median_ms = "
                        f"{rate:g}, received {result['images_per_s']:g}"))
    return out


# ------------------------------------------------------------------ the schema's keywords
TYPES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "object": ("an object", lambda v: isinstance(v, dict)),
    "array": ("a list", lambda v: isinstance(v, list)),
    "string": ("text", lambda v: isinstance(v, str)),
    "number": ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
               and math.isfinite(v)),
    "integer": ("an integer", lambda v: (isinstance(v, int) and not isinstance(v, bool))
                or (isinstance(v, float) and v.is_integer())),
    "boolean": ("true or false", lambda v: isinstance(v, bool)),
    "null": ("null", lambda v: v is None),
}


def received(value: Any) -> str:
    """A JSON value as quoted in messages."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    return repr(value)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


Report = Callable[[str, str], None]


def _type(value: Any, types: Any, schema: dict, path: str, report: Report) -> None:
    names = [types] if isinstance(types, str) else list(types)
    if not any(TYPES[t][1](value) for t in names):
        report(path, f"expected {' or '.join(TYPES[t][0] for t in names)}, "
                     f"received {received(value)}")


def _const(value: Any, expected: Any, schema: dict, path: str, report: Report) -> None:
    if not same(value, expected):
        report(path, f"expected {expected!r}, received {received(value)}")


def _enum(value: Any, allowed: list, schema: dict, path: str, report: Report) -> None:
    if not any(same(value, a) for a in allowed):
        report(path, f"expected one of {', '.join(received(a) for a in allowed)}, "
                     f"received {received(value)}")


def _required(value: Any, keys: list, schema: dict, path: str, report: Report) -> None:
    for key in keys:
        if isinstance(value, dict) and key not in value:
            report(_join(path, key), "missing (required)")


def _additional(value: Any, allowed: bool, schema: dict, path: str, report: Report) -> None:
    if allowed is False and isinstance(value, dict):
        known = schema.get("properties", {})
        for key in value:
            if key not in known:
                report(_join(path, key), f"unknown field (known: {', '.join(known)})")


def _properties(value: Any, properties: dict, schema: dict, path: str, report: Report) -> None:
    if isinstance(value, dict):
        for key, sub in properties.items():
            if key in value:
                _check(value[key], sub, _join(path, key), report)


def _items(value: Any, sub: dict, schema: dict, path: str, report: Report) -> None:
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check(item, sub, _join(path, i), report)


def _minimum(value: Any, limit: float, schema: dict, path: str, report: Report) -> None:
    if _is_number(value) and value < limit:
        report(path, f"expected at least {limit}, received {received(value)}")


def _exclusive_minimum(value: Any, limit: float, schema: dict, path: str,
                       report: Report) -> None:
    if _is_number(value) and value <= limit:
        report(path, f"expected more than {limit}, received {received(value)}")


def _min_items(value: Any, n: int, schema: dict, path: str, report: Report) -> None:
    if isinstance(value, list) and len(value) < n:
        report(path, f"expected at least {n} item{'s' * (n != 1)}, received {len(value)}")


def _one_of(value: Any, options: list, schema: dict, path: str, report: Report) -> None:
    found = []
    for option in options:
        problems: list[tuple[str, str]] = []
        check(value, option, path, problems)
        found.append(problems)
    passing = sum(not p for p in found)
    if passing == 1:
        return
    if passing > 1:
        report(path, "matches more than one of the allowed forms")
        return
    # report the form the value was meant to have: the one whose type it has
    for option, problems in zip(options, found, strict=True):
        types = option.get("type")
        names = [types] if isinstance(types, str) else list(types or [])
        if any(TYPES[t][1](value) for t in names):
            for where, message in problems:
                report(where, message)
            return
    allowed = [TYPES[t][0] for o in options
               for t in ([o["type"]] if isinstance(o.get("type"), str) else o.get("type", []))]
    report(path, f"expected {' or '.join(allowed)}, received {received(value)}")


def _is_number(value: Any) -> bool:
    return TYPES["number"][1](value)


Keyword = Callable[[Any, Any, dict, str, Report], None]

# JSON Schema keyword -> its check; None: deliberately not checked (annotations). A keyword
# of bench_schema.SCHEMA missing here is a bug, reported by check() and by a test.
KEYWORDS: dict[str, Keyword | None] = {
    "type": _type,
    "const": _const,
    "enum": _enum,
    "required": _required,
    "additionalProperties": _additional,
    "properties": _properties,
    "items": _items,
    "minimum": _minimum,
    "exclusiveMinimum": _exclusive_minimum,
    "minItems": _min_items,
    "oneOf": _one_of,
    "$schema": None,
    "title": None,
    "description": None,
}


def check(value: Any, schema: dict, path: str, problems: list) -> None:
    """Append (path, message) for every way `value` breaks `schema` (the keywords above)."""
    _check(value, schema, path, lambda where, message: problems.append((where, message)))


def _check(value: Any, schema: dict, path: str, report: Report) -> None:
    unknown = [k for k in schema if k not in KEYWORDS]
    if unknown:
        raise ValueError(f"bench_schema uses {', '.join(unknown)}, which cnncost.gate.benchfile does "
                         "not check; add it to KEYWORDS")
    if "type" in schema:
        wrong: list[tuple[str, str]] = []
        _type(value, schema["type"], schema, path, lambda w, m: wrong.append((w, m)))
        if wrong:  # the other keywords would only repeat it
            for where, message in wrong:
                report(where, message)
            return
    for keyword, argument in schema.items():
        handler = KEYWORDS[keyword]
        if handler is not None and keyword != "type":
            handler(value, argument, schema, path, report)
