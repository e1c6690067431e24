"""Pass 2: validate loaded YAML into frozen spec objects.

`parse_spec` turns the located dicts of :mod:`cnncost.lang.yamlio` into a
:class:`Spec`: top-level keys, variables, defaults, block definitions, variants
and the layer tree (:class:`Item`), checking every name that can be checked
without evaluating expressions (ops, fields, block references and cycles). Field
values stay raw (numbers or expression strings); :mod:`cnncost.lang.expand`
evaluates them. Every problem goes to the sink; nothing is printed.
"""

from __future__ import annotations

import re
from pathlib import Path
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from ..errors import Abort, ErrorSink, Loc, did_you_mean, one_of, show
from .expr import MAX_LIST, FUNCTIONS, ExprError, compile_expr
from ..cost.ops import OPS, Field, canonical
from .yamlio import LocDict, LocList, display_name, parse_yaml, read_yaml

REQUIRED = object()  # marks a block parameter without default

COMMON_FIELDS = ("op", "name", "when", "from", "train_only")
# Structural ops and the fields each accepts besides COMMON_FIELDS.
STRUCTURAL: dict[str, tuple[str, ...]] = {
    "sequential": ("layers",),
    "residual": ("layers", "shortcut", "post"),
    "branches": ("branches", "merge"),
    "stage": ("block", "repeat", "stride", "with"),
    "act": ("fn",),
    "for": ("each", "in", "layers"),
    "separable": ("out", "kernel", "stride", "padding", "dilation", "multiplier", "bias",
                  "norm", "act"),
}
STRUCTURAL_ALIASES = {"seq": "sequential", "block_repeat": "stage", "separable_conv": "separable",
                      "parallel": "branches"}
SHORTCUTS = ("identity", "projection", "auto", "if_match", "none")
MERGES = ("concat", "add")
RESERVED = ("input", "in_channels", "in_h", "in_w", "True", "False", "None", "training")
TOP_KEYS = ("name", "description", "source", "imports", "input", "vars", "defaults", "blocks",
            "layers", "variants")
LIBRARY_KEYS = ("description", "imports", "blocks")  # what an imported file may hold
MAX_IMPORTS = 64  # block library files one spec reads, nested imports included
BLOCK_KEYS = ("params", "layers", "shortcut", "post", "checks", "description")
MAX_DEPTH = 64  # nesting of layer lists
MAX_ITEMS = 200_000  # layer entries in one spec, YAML aliases counted at each use
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NO_LINES: Mapping[str, int] = MappingProxyType({})
ItemKind = Literal["primitive", "structural", "block", "broken"]


class Item(NamedTuple):
    """One entry of a layer list, with raw (unevaluated) field values."""

    op: str  # canonical op, structural op, or block name
    name: str | None
    fields: dict[str, Any]  # field -> raw value; nested layer lists are tuples of Item
    loc: Loc
    path: str  # spec path, e.g. "layers[3].layers[1]"
    kind: ItemKind  # "broken": reported while parsing, skipped by the expansion
    field_lines: Mapping[str, int] = _NO_LINES  # field -> line of its key

    def line_loc(self, key: str) -> Loc:
        line = self.field_lines.get(key)
        return Loc(self.loc.file, line) if line else self.loc


Items = tuple[Item, ...]  # a layer list


class BlockDef(NamedTuple):
    """A reusable, parameterized block: a residual or plain sequence of items."""

    name: str
    params: dict[str, Any]  # name -> raw default, or REQUIRED
    layers: Items
    shortcut: str | Items | None  # None (plain), a shortcut mode, or the shortcut's layers
    post: Items
    loc: Loc
    description: str = ""
    checks: tuple[tuple[str, str], ...] = ()  # (expression, message): must hold for the params


VAR_KEYS = ("default", "choices", "min", "max", "doc")


class VarDecl(NamedTuple):
    """A variable as declared: its default, what values it allows, what it means."""

    default: Any  # a value, or an expression of earlier variables (`derived`)
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    doc: str = ""
    derived: bool = False  # the default is an expression, evaluated after variants and --set

    def allowed(self) -> str:
        """What the variable allows, in words ('' when anything of its type goes)."""
        if self.choices is not None:
            return "one of " + ", ".join(show(c) for c in self.choices)
        if self.min is not None and self.max is not None:
            return f"from {self.min:g} to {self.max:g}"
        if self.min is not None:
            return f"at least {self.min:g}"
        if self.max is not None:
            return f"at most {self.max:g}"
        return ""

    def problem(self, value: Any) -> str | None:
        """Why `value` is outside what the declaration allows; None if it is inside."""
        if self.choices is not None and value not in self.choices:
            return f"allowed: {self.allowed()}"
        if self.min is None and self.max is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"expected a number {self.allowed()}"
        if (self.min is not None and value < self.min) or (
                self.max is not None and value > self.max):
            return f"allowed: {self.allowed()}"
        return None


class Spec(NamedTuple):
    """A validated architecture spec; field values still raw."""

    name: str
    description: str
    source: str
    file: str
    input: tuple[Any, ...] | None  # raw dims (ints or expression strings); None if invalid
    vars: dict[str, Any]  # name -> default value
    defaults: dict[str, Any]  # field -> value, and op -> {field -> value}
    blocks: dict[str, BlockDef]  # name -> BlockDef (the spec's own)
    layers: Items
    variants: dict[str, dict[str, Any]]  # name -> {var -> value}
    loc: Loc
    var_lines: Mapping[str, int] = _NO_LINES
    broken_blocks: frozenset[str] = frozenset()  # blocks already reported (cycles); skipped
    input_line: int = 0  # line of `input:` (0 if unknown)
    var_decls: Mapping[str, VarDecl] = MappingProxyType({})  # every variable, declared or not
    # block name (or "*" for every block with the parameter) -> {param: raw value}
    block_defaults: Mapping[str, Mapping[str, Any]] = MappingProxyType({})
    # settings applied before any variant: a zoo name's variant (`efficientnet_b3` is
    # efficientnet.yaml with its b3 variant); empty for a spec loaded by file or name
    preset: Mapping[str, Any] = MappingProxyType({})


def entries(raw: Mapping[Any, Any], line: int) -> list[tuple[Any, Any, int]]:
    """(key, value, line of the key) for a YAML mapping; `line` where lines are unknown."""
    lines = raw.line_of if isinstance(raw, LocDict) else (lambda key: line)
    return [(key, value, lines(key) or line) for key, value in raw.items()]


def _line(raw: Any, key: Any, line: int) -> int:
    return (raw.line_of(key) or line) if isinstance(raw, LocDict) else line


def _broken(name: str | None, loc: Loc, path: str) -> Item:
    return Item(op="broken", name=name, fields={}, loc=loc, path=path, kind="broken")


class _Parser:
    """Walks the located YAML of one file; knows the blocks visible to it."""

    def __init__(self, file: str, errors: ErrorSink, builtin_blocks: Mapping[str, BlockDef] | None):
        self.file = file
        self.errors = errors
        self.builtin = builtin_blocks or {}
        self.block_names: set[str] = set(self.builtin)
        self.blocks: dict[str, BlockDef] = {}  # this file's blocks, filled by parse_blocks
        self.bad_field = False  # set by field_value when a value cannot be used
        self.item_count = 0

    def err(self, line: int, path: str, message: str) -> None:
        self.errors.add(Loc(self.file, line), path, message)

    # ------------------------------------------------------------------ layers
    def items(self, raw: Any, path: str, line: int, depth: int = 0) -> Items:
        if isinstance(raw, dict) and not isinstance(raw, list):
            raw = LocList([raw])
            raw.line, raw.item_lines = line, [getattr(raw[0], "line", line)]
        if not isinstance(raw, list):
            self.err(line, path, f"expected a list of layers, received {show(raw)}")
            return ()
        if depth > MAX_DEPTH:
            self.err(line, path, f"layers are nested more than {MAX_DEPTH} levels deep")
            return ()
        return tuple(self.item(entry, f"{path}[{i}]",
                               raw.line_of(i) if isinstance(raw, LocList) else line, depth)
                     for i, entry in enumerate(raw))

    def item(self, raw: Any, path: str, line: int, depth: int) -> Item:
        """One layer entry; an entry with errors becomes a `broken` placeholder.

        A broken item keeps its place and name in the list, and expansion gives it
        an unknown output, so later layers are still checked without a cascade of
        errors that only repeat this one.
        """
        self.item_count += 1
        if self.item_count > MAX_ITEMS:
            self.err(line, path, f"the spec has more than {MAX_ITEMS:,} layer entries (YAML "
                     "aliases repeat their content at every use); refusing to go on")
            raise Abort()
        if isinstance(raw, str):  # shorthand: "- relu" or "- flatten"
            raw = LocDict(op=raw)
            raw.line, raw.key_lines = line, {"op": line}
        if not isinstance(raw, dict):
            self.err(line, path, f"expected a layer mapping such as {{op: conv, out: 64, "
                     f"kernel: 3}}, received {show(raw)}")
            return _broken(None, Loc(self.file, line), path)
        line = getattr(raw, "line", line) or line
        lines = dict(getattr(raw, "key_lines", {}))
        name = raw.get("name")
        if name is not None and (not isinstance(name, str) or not IDENTIFIER.match(name)
                                 or name in RESERVED):
            self.err(lines.get("name", line), path,
                     f"name must be an identifier (letters, digits, _; no dots) and not one of "
                     f"{', '.join(RESERVED[:4])}; received {show(name)}")
            name = None
        label = f"{path}({name})" if name else path
        loc = Loc(self.file, line)
        if "op" not in raw:
            self.err(line, label, "layer has no 'op' (e.g. op: conv)")
            return _broken(name, loc, label)
        op_raw = raw["op"]
        if not isinstance(op_raw, str):
            self.err(lines.get("op", line), label, f"op must be a name, received {show(op_raw)}")
            return _broken(name, loc, label)
        kind, op = self.resolve_op(op_raw)
        if kind is None:
            known = list(OPS) + list(STRUCTURAL) + sorted(self.block_names)
            self.err(lines.get("op", line), label,
                     f"unknown op {op_raw!r}{did_you_mean(op_raw, known + list(STRUCTURAL_ALIASES))}"
                     f" (ops: {one_of(OPS)}; structure: {one_of(STRUCTURAL)}"
                     + (f"; blocks: {one_of(self.block_names)}" if self.block_names else "")
                     + ")")
            return _broken(name, loc, label)
        allowed = self.allowed_fields(kind, op)
        fields: dict[str, Any] = {}
        broken = self.bad_field = False
        for key, value in raw.items():
            if key in ("op", "name"):
                continue
            if key not in allowed:
                self.err(lines.get(key, line), label,
                         f"unknown field {key!r} for op {op!r}{did_you_mean(key, allowed)} "
                         f"(allowed: {one_of(a for a in allowed if a != 'op')})")
                broken = True
                continue
            fields[key] = self.field_value(kind, op, key, value, label, lines.get(key, line), depth)
            broken = broken or self.bad_field
            self.bad_field = False
        return Item(op=op, name=name, fields=fields, loc=loc, path=label,
                    kind="broken" if broken else kind, field_lines=lines)

    def resolve_op(self, name: str) -> tuple[ItemKind | None, str]:
        if name in self.block_names:  # a spec's own block may shadow nothing but is checked
            return "block", name
        op = canonical(name)
        if op is not None:
            return "primitive", op
        op = STRUCTURAL_ALIASES.get(name, name)
        if op in STRUCTURAL:
            return "structural", op
        return None, name

    def allowed_fields(self, kind: str, op: str) -> tuple[str, ...]:
        if kind == "primitive":
            opdef = OPS[op]
            extra = ("inputs",) if opdef.merge else ("from",)
            return ("op", "name", "when", "train_only", *extra, *opdef.fields)
        if kind == "structural":
            return (*COMMON_FIELDS, *STRUCTURAL[op])
        params = self.block_params(op)
        return (*COMMON_FIELDS, *params)

    def block_params(self, name: str) -> dict[str, Any]:
        block = self.blocks.get(name) or self.builtin.get(name)
        return block.params if block else {}

    def field_value(self, kind: str, op: str, key: str, value: Any, label: str, line: int,
                    depth: int) -> Any:
        sub = f"{label}.{key}"
        if kind == "structural" and key in ("layers", "post"):
            return self.items(value, sub, line, depth + 1)
        if kind == "structural" and key == "shortcut":
            if isinstance(value, str) and value in SHORTCUTS:
                return value
            if isinstance(value, (list, dict)):
                return self.items(value, sub, line, depth + 1)
            self.err(line, label, f"shortcut must be one of {one_of(SHORTCUTS)} or a list of "
                     f"layers, received {show(value)}{did_you_mean(value, SHORTCUTS)}")
            return "none"
        if kind == "structural" and key == "branches":
            if not isinstance(value, dict) or not value:
                self.err(line, label, f"branches must be a mapping of branch name -> layers, "
                         f"received {show(value)}")
                return {}
            out = {}
            for bname, blayers, bline in entries(value, line):
                if not isinstance(bname, str) or not IDENTIFIER.match(bname):
                    self.err(bline, label, f"branch name must be an identifier, received "
                             f"{show(bname)}")
                    continue
                out[bname] = self.items(blayers, f"{sub}.{bname}", bline, depth + 1)
            return out
        if kind == "structural" and op == "for" and key == "each":
            if (not isinstance(value, str) or not IDENTIFIER.match(value) or value in RESERVED
                    or value in FUNCTIONS):
                self.err(line, label, f"each: the loop variable must be a name (an identifier, "
                         f"not {', '.join(RESERVED[:4])} or a function name), received "
                         f"{show(value)}")
                self.bad_field = True
            return value
        if kind == "structural" and key == "with":
            if not isinstance(value, dict):
                self.err(line, label, f"'with' must be a mapping of block parameters, received "
                         f"{show(value)}")
                return {}
            return dict(value)
        if key == "train_only":
            if not isinstance(value, bool):
                self.err(line, label, f"train_only: expected true or false, received "
                         f"{show(value)}")
                self.bad_field = True
                return False
            return value
        if key == "inputs":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                self.err(line, label, f"inputs must be a list of layer names, received "
                         f"{show(value)}")
                self.bad_field = True
                return []
            return list(value)
        if key == "from":
            if not isinstance(value, str) or not all(IDENTIFIER.match(p) for p in value.split(".")):
                self.err(line, label, f"'from' must be a layer name (dotted for nested layers: "
                         f"stage.block1), received {show(value)}")
                self.bad_field = True
                return None
            return value
        if kind == "structural" and op == "stage" and key == "block":
            if not isinstance(value, str) or value not in self.block_names:
                self.err(line, label, f"block: no block named {show(value)}"
                         f"{did_you_mean(value, self.block_names)} (blocks: "
                         f"{one_of(self.block_names)})")
                self.bad_field = True
            return value
        if not self.check_expressions(value, label, line, key):
            self.bad_field = True
        return value

    def check_expressions(self, value: Any, label: str, line: int, key: str = "") -> bool:
        """Parse expression strings now so syntax errors surface even if unused."""
        ok = True
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, str) and not IDENTIFIER.match(v):
                try:
                    compile_expr(v)
                except ExprError as exc:
                    self.err(line, label, f"{key}: {exc}" if key else str(exc))
                    ok = False
        return ok

    # ------------------------------------------------------------------ blocks
    def parse_blocks(self, raw: Any, line: int) -> dict[str, BlockDef]:
        self.blocks = {}
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.err(line, "blocks", f"expected a mapping of block name -> definition, received "
                     f"{show(raw)}")
            return {}
        for name in raw:
            if isinstance(name, str) and IDENTIFIER.match(name) and not (
                    canonical(name) or name in STRUCTURAL or name in STRUCTURAL_ALIASES):
                self.block_names.add(name)
        # params first so that calls between blocks can be checked
        param_sets = {}
        for name, body, bline in entries(raw, line):
            if not isinstance(name, str) or not IDENTIFIER.match(name):
                self.err(bline, "blocks", f"block name must be an identifier, received "
                         f"{show(name)}")
                continue
            if canonical(name) or name in STRUCTURAL or name in STRUCTURAL_ALIASES:
                self.err(bline, f"blocks.{name}", f"block name {name!r} is already an op")
                continue
            if not isinstance(body, dict):
                self.err(bline, f"blocks.{name}", f"expected a mapping with params and layers, "
                         f"received {show(body)}")
                continue
            param_sets[name] = self.parse_params(body.get("params"), f"blocks.{name}",
                                                 body.line_of("params")
                                                 if isinstance(body, LocDict) else bline)
            self.blocks[name] = BlockDef(name, param_sets[name], (), None, (), Loc(self.file, bline))
        for name, params in param_sets.items():
            body = raw[name]
            bline = getattr(body, "line", line)
            path = f"blocks.{name}"
            for key in body:
                if key not in BLOCK_KEYS:
                    self.err(body.line_of(key), path, f"unknown key {key!r} in a block "
                             f"definition{did_you_mean(key, BLOCK_KEYS)} (allowed: "
                             f"{one_of(BLOCK_KEYS)})")
            if "layers" not in body:
                self.err(bline, path, "block has no 'layers'")
            layers = self.items(body.get("layers", []), f"{path}.layers", body.line_of("layers"))
            shortcut = body.get("shortcut")
            if shortcut is not None:
                shortcut = self.field_value("structural", "residual", "shortcut", shortcut, path,
                                            body.line_of("shortcut"), 0)
            post = self.items(body.get("post", []), f"{path}.post", body.line_of("post"))
            desc = body.get("description", "")
            checks = self.parse_checks(body.get("checks"), path, body.line_of("checks"))
            self.blocks[name] = BlockDef(name, params, layers, shortcut, post,
                                         Loc(self.file, bline), desc if isinstance(desc, str) else "",
                                         checks)
        return self.blocks

    def parse_checks(self, raw: Any, path: str, line: int) -> tuple[tuple[str, str], ...]:
        """`checks: [{that: EXPR, message: TEXT}, ...]`: conditions on block parameters."""
        if raw is None:
            return ()
        if not isinstance(raw, list):
            self.err(line, path, f"checks must be a list of {{that: expression, message: text}}, "
                     f"received {show(raw)}")
            return ()
        out = []
        for i, check in enumerate(raw):
            cline = raw.line_of(i) if isinstance(raw, LocList) else line
            if not isinstance(check, dict) or set(check) != {"that", "message"} or not all(
                    isinstance(v, str) for v in check.values()):
                self.err(cline, f"{path}.checks[{i}]", "a check is {that: expression, message: "
                         f"text}}, received {show(check)}")
                continue
            if self.check_expressions(check["that"], f"{path}.checks[{i}]", cline, "that"):
                out.append((check["that"], check["message"]))
        return tuple(out)

    def parse_params(self, raw: Any, path: str, line: int) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.err(line, path, f"params must be a mapping of name -> default (null: required), "
                     f"received {show(raw)}")
            return {}
        params = {}
        for key, value, kline in entries(raw, line):
            if not isinstance(key, str) or not IDENTIFIER.match(key) or key in COMMON_FIELDS \
                    or key in RESERVED or key in FUNCTIONS:
                self.err(kline, path, f"parameter name {show(key)} is not allowed (identifier, "
                         f"not one of {', '.join(COMMON_FIELDS + RESERVED[:4])} or a function)")
                continue
            if isinstance(value, (dict, list)):
                self.err(kline, path, f"parameter {key!r} default must be a number, string or "
                         f"expression, received {show(value)}")
                continue
            params[key] = REQUIRED if value is None else value
        return params


def check_cycles(blocks: Mapping[str, BlockDef], errors: ErrorSink) -> set[str]:
    """Report blocks that use themselves, directly or through others; return their names."""

    def calls(items: Items) -> set[tuple[str, Loc]]:
        found: set[tuple[str, Loc]] = set()
        for item in items:
            if item.kind == "block":
                found.add((item.op, item.loc))
            if item.kind == "structural" and item.op == "stage":
                target = item.fields.get("block")
                if isinstance(target, str) and target in blocks:
                    found.add((target, item.loc))
            for value in item.fields.values():
                if isinstance(value, tuple):
                    found |= calls(value)
                elif isinstance(value, dict):
                    for v in value.values():
                        if isinstance(v, tuple):
                            found |= calls(v)
        return found

    graph = {}
    for name, block in blocks.items():
        body = block.layers + block.post + (block.shortcut if isinstance(block.shortcut, tuple)
                                            else ())
        graph[name] = calls(body)
    reported: set[frozenset[str]] = set()

    def visit(name: str, trail: list[str]) -> None:
        for callee, loc in graph.get(name, ()):
            if callee in trail:
                cycle = trail[trail.index(callee):] + [callee]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    what = ("uses itself" if len(cycle) == 2
                            else "is part of a cycle: " + " -> ".join(cycle))
                    errors.add(loc, f"blocks.{name}", f"block {callee!r} {what}; blocks cannot "
                               "be recursive")
            elif callee in graph and len(trail) < 100:
                visit(callee, trail + [callee])

    for name in graph:
        visit(name, [name])
    return {name for cycle in reported for name in cycle}


def parse_spec(raw: Any, file: str, errors: ErrorSink, builtin_blocks: Mapping[str, BlockDef] | None = None) -> Spec | None:
    """Validate one loaded YAML document into a :class:`Spec` (None if unusable)."""
    if raw is None:
        if not errors:
            errors.add(Loc(file, 1), "", "spec is empty; it needs at least 'input' and 'layers'")
        return None
    if not isinstance(raw, dict):
        errors.add(Loc(file, getattr(raw, "line", 1)), "",
                   f"a spec must be a mapping with 'input' and 'layers', received {show(raw)}")
        return None
    if not isinstance(raw, LocDict):  # a plain mapping: no lines known
        raw = LocDict(raw)
    try:
        return _parse_spec(raw, file, errors, builtin_blocks)
    except Abort:
        return None


def _parse_spec(raw: LocDict, file: str, errors: ErrorSink, builtin_blocks: Mapping[str, BlockDef] | None) -> Spec:
    p = _Parser(file, errors, builtin_blocks)
    line = raw.line_of

    for key in raw:
        if key not in TOP_KEYS:
            p.err(line(key), "", f"unknown top-level key {show(key)}{did_you_mean(key, TOP_KEYS)} "
                  f"(allowed: {one_of(TOP_KEYS)})")
    for key in ("input", "layers"):
        if key not in raw:
            p.err(raw.line, "", f"spec has no '{key}'")

    variables, var_lines, decls = parse_vars(raw.get("vars"), p, line("vars"))
    imported = import_blocks(raw.get("imports"), file, line("imports"), errors,
                             dict(builtin_blocks or {}), [])
    p.builtin = {**p.builtin, **imported}  # callable from the spec's layers and blocks
    p.block_names |= set(imported)
    blocks = p.parse_blocks(raw.get("blocks"), line("blocks"))
    for name, block in blocks.items():
        if name in imported:
            p.err(block.loc.line, f"blocks.{name}", f"block {name!r} is also imported from "
                  f"{imported[name].loc}; rename one of them")
    blocks = {**imported, **blocks}
    cyclic = check_cycles(blocks, errors)
    defaults, block_defaults = parse_defaults(raw.get("defaults"), p, line("defaults"),
                                              variables, {**p.builtin, **blocks})
    layers = p.items(raw.get("layers", []), "layers", line("layers"))
    if "layers" in raw and not layers and not errors:
        p.err(line("layers"), "layers", "spec has no layers")
    raw_vars = raw.get("vars")
    reported = {k for k in raw_vars if k not in decls} if isinstance(raw_vars, dict) else set()
    variants = parse_variants(raw.get("variants"), decls, p, line("variants"), reported)
    dims = parse_input(raw["input"], p, line("input")) if "input" in raw else None
    text = {}
    for key in ("name", "description", "source"):
        value = raw.get(key, "")
        if not isinstance(value, str):
            p.err(line(key), "", f"'{key}' must be text, received {show(value)}")
            value = ""
        text[key] = value
    return Spec(name=text["name"] or Path(file).stem, description=text["description"],
                source=text["source"], file=file, input=dims, vars=variables, defaults=defaults,
                blocks=blocks, layers=layers, variants=variants, loc=Loc(file, raw.line),
                var_lines=var_lines, broken_blocks=frozenset(cyclic),
                input_line=line("input") if "input" in raw else 0,
                var_decls=MappingProxyType(decls), block_defaults=block_defaults)


def parse_vars(raw: Any, p: _Parser,
               line: int) -> tuple[dict[str, Any], dict[str, int], dict[str, VarDecl]]:
    """`vars:`: name -> default, name -> line, name -> declaration. A variable is a value
    (`width: 1.0`), an expression of earlier variables (`stem: "make_divisible(32 * width,
    8)"`: text that is not a plain word and reads as an expression), or a declaration
    (`width: {default: 1.0, min: 0.25, max: 2.0, doc: ...}`)."""
    if raw is None:
        return {}, {}, {}
    if not isinstance(raw, dict):
        p.err(line, "vars", f"expected a mapping of name -> default value, received {show(raw)}")
        return {}, {}, {}
    out: dict[str, Any] = {}
    lines: dict[str, int] = {}
    decls: dict[str, VarDecl] = {}
    for key, value, kline in entries(raw, line):
        if not isinstance(key, str) or not IDENTIFIER.match(key) or key in RESERVED or key in FUNCTIONS:
            p.err(kline, "vars", f"variable name {show(key)} is not allowed (identifier, not "
                  f"{', '.join(RESERVED[:4])} or a function name)")
            continue
        decl = (_declaration(value, p, f"vars.{key}", kline) if isinstance(value, dict)
                else _plain_var(value, p, f"vars.{key}", kline))
        if decl is None:
            continue
        out[key], lines[key], decls[key] = decl.default, kline, decl
    return out, lines, decls


def _plain_var(value: Any, p: _Parser, path: str, line: int) -> VarDecl | None:
    problem = _var_value_problem(value)
    if problem:
        p.err(line, path, problem)
        return None
    derived = isinstance(value, str) and not IDENTIFIER.match(value) and _parses(value)
    if derived:
        try:
            compile_expr(value)
        except ExprError as exc:
            p.err(line, path, f"a default written as an expression is an expression of "
                  f"earlier variables: {exc}")
            return None
    return VarDecl(value, derived=derived)


def _parses(text: str) -> bool:
    """`text` reads as a Python expression (whitelisted or not) other than a lone string
    literal; other text stays text."""
    import ast

    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return not (isinstance(tree.body, ast.Constant) and isinstance(tree.body.value, str))


def _declaration(raw: Mapping[Any, Any], p: _Parser, path: str, line: int) -> VarDecl | None:
    """`{default: ..., choices: [...], min: ..., max: ..., doc: ...}`."""
    ok = True
    for key in raw:
        if key not in VAR_KEYS:
            p.err(_line(raw, key, line), path, f"unknown key {show(key)} of a variable"
                  f"{did_you_mean(str(key), VAR_KEYS)} (allowed: {one_of(VAR_KEYS)})")
            ok = False
    if "default" not in raw:
        p.err(line, path, "a declared variable needs a default")
        return None
    plain = _plain_var(raw["default"], p, path, _line(raw, "default", line))
    if plain is None or not ok:
        return None
    choices = raw.get("choices")
    if choices is not None and (not isinstance(choices, list) or not choices or any(
            isinstance(c, (dict, list)) or c is None for c in choices)):
        p.err(_line(raw, "choices", line), path, f"choices: expected a non-empty list of "
              f"numbers, words or booleans, received {show(choices)}")
        return None
    bounds: dict[str, float | None] = {}
    for key in ("min", "max"):
        value = raw.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            p.err(_line(raw, key, line), path, f"{key}: expected a number, received "
                  f"{show(value)}")
            return None
        bounds[key] = value
    doc = raw.get("doc", "")
    if not isinstance(doc, str):
        p.err(_line(raw, "doc", line), path, f"doc: expected text, received {show(doc)}")
        return None
    decl = VarDecl(plain.default, tuple(choices) if choices is not None else None,
                   bounds["min"], bounds["max"], doc, plain.derived)
    problem = None if decl.derived else decl.problem(decl.default)
    if problem:
        p.err(_line(raw, "default", line), path, f"default {show(decl.default)} is outside "
              f"what the variable allows ({problem})")
        return None
    return decl


def _var_value_problem(value: Any) -> str | None:
    """Why `value` cannot be a variable's default: a number, text, a boolean, or a flat
    list of those (at most MAX_LIST items). None when it can."""
    if isinstance(value, list):
        if len(value) > MAX_LIST:
            return f"a list variable has at most {MAX_LIST:,} items, received {len(value):,}"
        for i, item in enumerate(value):
            if isinstance(item, (dict, list)) or item is None:
                return (f"a list variable holds numbers, text or booleans, received "
                        f"{show(item)} at index {i}")
        return None
    if isinstance(value, dict) or value is None:
        return (f"a variable's default must be a number, text, a boolean or a list of "
                f"those, received {show(value)}")
    return None


def _default_problem(fields: list[Field], value: Any, variables: Mapping[str, Any]) -> str | None:
    """Why a literal default fits none of the ops' fields of that name (None if it fits).

    Expressions and variable names are checked where they are used."""
    if isinstance(value, str) and (value in variables or not IDENTIFIER.match(value)):
        return None
    problems = []
    for field in fields:
        try:
            field.check(value)
            return None
        except ValueError as exc:
            problems.append(str(exc))
    return problems[0] if problems else None


def parse_defaults(raw: Any, p: _Parser, line: int, variables: Mapping[str, Any],
                   blocks: Mapping[str, BlockDef]) -> tuple[dict[str, Any],
                                                            dict[str, dict[str, Any]]]:
    """`defaults:`: (op field defaults, block parameter defaults). Op defaults are
    `field: value` for every op with that field and `op: {field: value}`; block
    defaults are `block: {param: value}` and `param: value` for a parameter that is no
    op field (`k5: 3`), applied to every block that has it (block defaults key "*")."""
    if raw is None:
        return {}, {}
    if not isinstance(raw, dict):
        p.err(line, "defaults", f"expected a mapping (e.g. {{bias: false, norm: batchnorm, "
              f"act: relu}}), received {show(raw)}")
        return {}, {}
    all_fields = sorted({f for op in OPS.values() for f in op.fields})
    block_params = sorted({name for b in blocks.values() for name in b.params})
    out: dict[str, Any] = {}
    for_blocks: dict[str, dict[str, Any]] = {}
    for key, value, kline in entries(raw, line):
        op = canonical(key) if isinstance(key, str) else None
        if isinstance(key, str) and key in blocks and op is None:
            if not isinstance(value, dict):
                p.err(kline, f"defaults.{key}", f"defaults for block {key!r} must be a mapping "
                      f"of parameter -> value, received {show(value)}")
                continue
            params = blocks[key].params
            sub = {}
            for pkey, pval in value.items():
                if pkey not in params:
                    p.err(_line(value, pkey, kline), f"defaults.{key}", f"block {key!r} has no "
                          f"parameter {pkey!r}{did_you_mean(pkey, params)} (params: "
                          f"{one_of(params)})")
                    continue
                sub[pkey] = pval
            for_blocks[key] = sub
            continue
        if isinstance(key, str) and key not in all_fields and key in block_params:
            for_blocks.setdefault("*", {})[key] = value
            continue
        if op is not None and isinstance(value, dict):
            sub = {}
            for fkey, fval in value.items():
                if fkey not in OPS[op].fields:
                    p.err(_line(value, fkey, kline),
                          f"defaults.{key}", f"op {op!r} has no field {fkey!r}"
                          f"{did_you_mean(fkey, OPS[op].fields)} (fields: {one_of(OPS[op].fields)})")
                    continue
                problem = _default_problem([OPS[op].fields[fkey]], fval, variables)
                if problem:
                    p.err(_line(value, fkey, kline), f"defaults.{key}.{fkey}", problem)
                    continue
                sub[fkey] = fval
            out[op] = sub
        elif isinstance(key, str) and key in all_fields:
            problem = _default_problem([o.fields[key] for o in OPS.values() if key in o.fields],
                                       value, variables)
            if problem:
                p.err(kline, f"defaults.{key}", problem)
                continue
            out[key] = value
        elif op is not None:
            p.err(kline, f"defaults.{key}", f"defaults for op {op!r} must be a mapping of field "
                  f"-> value (e.g. {key}: {{bias: true}}), received {show(value)}")
        else:
            p.err(kline, "defaults", f"unknown default {key!r}: expected a field name, an op "
                  f"or block name with a mapping, or a block parameter"
                  f"{did_you_mean(key, all_fields + list(OPS) + list(blocks) + block_params)}")
    return out, for_blocks


def parse_variants(raw: Any, variables: Mapping[str, VarDecl], p: _Parser, line: int,
                   reported: set[Any] | frozenset[Any] = frozenset()) -> dict[str, dict[str, Any]]:
    """`variants:`; `reported`: variables whose own declaration failed (not unknown)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        p.err(line, "variants", f"expected a mapping of variant name -> {{variable: value}}, "
              f"received {show(raw)}")
        return {}
    out = {}
    for name, settings, vline in entries(raw, line):
        if not isinstance(settings, dict):
            p.err(vline, f"variants.{name}", f"expected a mapping of variable -> value, received "
                  f"{show(settings)}")
            continue
        if not settings:
            p.err(vline, f"variants.{name}", "a variant sets at least one variable (an empty "
                  "one would be the defaults under another name)")
            continue
        for var, value in settings.items():
            if var in reported:
                continue
            if var not in variables:
                p.err(_line(settings, var, vline),
                      f"variants.{name}", f"unknown variable {var!r}"
                      f"{did_you_mean(var, variables)} (vars: {one_of(variables) or 'none'})")
                continue
            problem = variables[var].problem(value)
            if problem:
                p.err(_line(settings, var, vline), f"variants.{name}",
                      f"{var}: {show(value)} is outside what the variable allows ({problem})")
        out[str(name)] = dict(settings)
    return out


def parse_input(raw: Any, p: _Parser, line: int) -> tuple[Any, ...] | None:
    """The input's dims, raw (ints or expressions); None if unusable (already reported)."""
    original = raw
    if isinstance(raw, str) and re.fullmatch(r"\s*\d+(\s*x\s*\d+)*\s*", raw):
        raw = [int(x) for x in raw.split("x")]
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = [raw]
    if not isinstance(raw, list) or len(raw) not in (1, 3):
        count = f" ({len(raw)} sizes)" if isinstance(raw, list) else ""
        p.err(line, "input", f"input must be [channels, height, width] (or [features]) or "
              f"'CxHxW', received {show(original)}{count}")
        return None
    for v in raw:
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            p.err(line, "input", f"input sizes must be integers or expressions, received "
                  f"{show(v)}")
            return None
    if not p.check_expressions(list(raw), "input", line):
        return None
    return tuple(raw)


def load_spec(path: str | Path, errors: ErrorSink, builtin_blocks: Mapping[str, BlockDef] | None = None) -> Spec | None:
    """Read, parse and validate a spec file (`-`: standard input); problems go to `errors`."""
    return _spec_of(read_yaml(path, errors), display_name(path), errors, builtin_blocks)


def spec_from_text(text: str, file: str, errors: ErrorSink,
                   builtin_blocks: Mapping[str, BlockDef] | None = None) -> Spec | None:
    """Parse and validate a spec's text read elsewhere (a git commit), located at `file`."""
    return _spec_of(parse_yaml(text, file, errors), file, errors, builtin_blocks)


def _spec_of(raw: Any, file: str, errors: ErrorSink, builtin_blocks: Mapping[str, BlockDef] | None) -> Spec | None:
    if raw is None:
        if not errors:
            errors.add(Loc(file, 1), "", "spec is empty; it needs at least 'input' and "
                       "'layers'")
        return None
    return parse_spec(raw, file, errors, builtin_blocks)


def import_blocks(raw: Any, file: str, line: int, errors: ErrorSink,
                  builtin: dict[str, BlockDef], stack: list[str]) -> dict[str, BlockDef]:
    """`imports: [path, ...]`: the blocks of other YAML files, which hold only `blocks:`
    (and their own `imports:`). Paths are relative to the importing file; URLs are
    refused; a file imported again through itself, or a block name defined twice, is an
    error naming both places."""
    if raw is None:
        return {}
    here = Loc(file, line)
    if not isinstance(raw, list) or not all(isinstance(r, str) for r in raw):
        errors.add(here, "imports", f"expected a list of file paths, received {show(raw)}")
        return {}
    base = Path(file).parent if file not in ("<dict>", "<stdin>") else Path(".")
    out: dict[str, BlockDef] = {}
    for i, entry in enumerate(raw):
        where = Loc(file, raw.line_of(i) if isinstance(raw, LocList) else line)
        if "://" in entry or entry.startswith(("http:", "https:", "ftp:")):
            errors.add(where, f"imports[{i}]", f"imports are local files, received the URL "
                       f"{entry!r}")
            continue
        path = (base / entry).resolve()
        importer = str(Path(file).resolve())
        if str(path) in stack or str(path) == importer:
            chain = " -> ".join([*stack, importer, str(path)])
            errors.add(where, f"imports[{i}]", f"{entry!r} closes an import cycle: {chain}")
            continue
        if len(stack) + len(out) >= MAX_IMPORTS:
            errors.add(where, f"imports[{i}]", f"more than {MAX_IMPORTS} block files imported")
            break
        if not path.is_file():
            errors.add(where, f"imports[{i}]", f"no such block file {entry!r} (looked for "
                       f"{path})")
            continue
        lib = read_yaml(path, errors, what="block files")
        if lib is None:
            continue
        if not isinstance(lib, dict):
            errors.add(Loc(str(path), 1), "", f"a block file is a mapping with 'blocks' "
                       f"(imported at {where}), received {show(lib)}")
            continue
        for key in lib:
            if key not in LIBRARY_KEYS:
                errors.add(Loc(str(path), lib.line_of(key) if isinstance(lib, LocDict) else 1),
                           str(key), f"a block file holds only {one_of(LIBRARY_KEYS)} "
                           f"(imported at {where}), received {show(key)}")
        nested = import_blocks(lib.get("imports"), str(path),
                               lib.line_of("imports") if isinstance(lib, LocDict) else 1,
                               errors, builtin, [*stack, str(Path(file).resolve())])
        parser = _Parser(str(path), errors, {**builtin, **nested})
        found = parser.parse_blocks(lib.get("blocks"),
                                    lib.line_of("blocks") if isinstance(lib, LocDict) else 1)
        check_cycles({**nested, **found}, errors)
        for name, block in {**nested, **found}.items():
            if name in out and out[name].loc != block.loc:
                errors.add(block.loc, f"blocks.{name}", f"block {name!r} is defined twice: "
                           f"here and at {out[name].loc}")
                continue
            out[name] = block
    return out


def load_blocks(path: str | Path, errors: ErrorSink) -> dict[str, BlockDef]:
    """Read a file holding only `blocks:` (the built-in blocks) into BlockDefs."""
    raw = read_yaml(path, errors)
    if raw is not None and not isinstance(raw, dict):
        errors.add(Loc(str(path)), "", "a blocks file is a mapping with 'blocks'")
        return {}
    blocks = _Parser(str(path), errors, None).parse_blocks(raw.get("blocks") if raw else None, 1)
    check_cycles(blocks, errors)
    return blocks
