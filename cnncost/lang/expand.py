"""Pass 3: expand a spec into a flat graph of primitive ops with hierarchical names.

Expansion evaluates expressions, applies defaults, instantiates blocks and
stages, wires residuals, branches and named references, and infers every
output shape with the op registry's shape rules. The result is a
:class:`~cnncost.lang.graph.Graph`: primitive nodes in topological order, the first
being the model input. Name scopes and the memo that replays repeated blocks live
in :mod:`cnncost.lang.replay`. Errors are collected in the sink; a layer that fails gets an
unknown shape and the layers that depend on it skip their shape checks, so one
run reports every independent problem.

Naming: a layer's name is its `name:` or, if unnamed, its op plus a counter
within its list (``conv1``, ``conv2``, ``relu1``). A layer with `norm:`/`act:`
becomes a group ``<name>.<op>``, ``<name>.norm``, ``<name>.act``. Stage blocks are
``<stage>.block1..N``; residuals add ``shortcut`` and ``add``; branches add
``<branch>`` groups and ``merge``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

from ..errors import Abort, ErrorSink, Loc, did_you_mean, one_of, show
from .expr import ExprError, compile_expr, names_in
from ..cost.ops import OPS, OpError, fmt_shape, numel
from ..cost.ops.base import Field, Shape, pos_int, registered
from ..cost.ops.conv import ACT
from .graph import Graph, Node
from .replay import BlockMemo, Scope, replay
from .spec import MERGES, REQUIRED, BlockDef, Item, Items, Spec, IDENTIFIER

_UNSET = object()
_NO_FIELDS: Mapping[str, Any] = MappingProxyType({})  # a norm or act layer's own fields
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
MAX_NODES = 200_000  # primitive layers in one expanded model
MAX_ELEMENTS = 10**12  # elements in one activation tensor (per sample here; the analysis
#                        checks the batched tensor against the same bound)
MAX_REPEAT = 10_000
MAX_BLOCK_DEPTH = 64
MAX_WORK = 1_000_000  # layers + block calls + names replayed: bounds time and memory

# Per field of an op: (name, Field, raw default from the spec or _UNSET, checked value or _UNSET)
PlanEntry = tuple[str, Field, Any, Any]


class Resolver(NamedTuple):
    """The field resolution of one layer (an op and its raw fields), compiled once: every
    field whose value cannot change is checked here; the others are evaluated per call."""

    fields: Mapping[str, Any]  # the raw fields compiled (held, so their id stays theirs)
    template: dict[str, Any]  # every field in the op's order; dynamic ones hold a placeholder
    dynamic: tuple[tuple[str, Field, Callable[[Mapping[str, Any]], Any]], ...]
    names: frozenset[str] | None = frozenset()  # what the dynamic fields read (None: unknown)


def resolve_value(raw: Any, env: Mapping[str, Any], choices: tuple[str, ...] = ()) -> Any:
    """A raw spec value in `env`: a choice word, a variable, an expression or a literal."""
    if isinstance(raw, list):
        return [resolve_value(v, env) for v in raw]
    if not isinstance(raw, str):
        return raw
    if raw in choices:
        return raw
    if raw.isidentifier():
        return env.get(raw, raw)  # an unknown bare word stays a literal string
    return compile_expr(raw)(env)


def compile_resolver(plan: list[PlanEntry], fields: Mapping[str, Any]) -> Resolver | None:
    """The resolution of a layer's raw `fields` by an op's field plan (Expander.op_plan),
    compiled: constants checked now, the rest kept as functions of the environment. None
    when a required field is missing or a constant or expression is invalid (the full
    resolution reports it)."""
    template: dict[str, Any] = {}
    dynamic = []
    names: set[str] | None = set()
    for fname, fdef, default, ready in plan:
        raw = fields.get(fname, _UNSET)
        if raw is _UNSET:
            if ready is not _UNSET:
                template[fname] = ready
                continue
            if default is _UNSET:
                return None
            raw = default
        if _is_const(raw, fdef.choices):
            try:
                template[fname] = fdef.check(raw)
            except OpError:
                return None
            continue
        template[fname] = None  # a placeholder, keeping the op's order of fields
        read = names_in(raw)
        names = None if read is None or names is None else names | read
        if isinstance(raw, str) and raw.isidentifier():
            dynamic.append((fname, fdef, _lookup(raw)))
        elif isinstance(raw, str):
            try:
                dynamic.append((fname, fdef, compile_expr(raw)))
            except ExprError:
                return None
        else:
            dynamic.append((fname, fdef, _listed(raw)))
    return Resolver(fields, template, tuple(dynamic),
                    None if names is None else frozenset(names))


def resolve(resolver: Resolver, env: Mapping[str, Any]) -> dict[str, Any]:
    """A compiled resolution's field values in `env` (a new dict; OpError, ExprError)."""
    attrs = dict(resolver.template)
    for fname, fdef, get in resolver.dynamic:
        attrs[fname] = fdef.check(get(env))
    return attrs


def _is_const(raw: Any, choices: tuple[str, ...]) -> bool:
    """A raw value that resolves to itself in every environment (no variable, no
    expression): a number, a bool, a choice word, or a list of constants."""
    if isinstance(raw, list):
        return all(_is_const(v, ()) for v in raw)
    return not isinstance(raw, str) or raw in choices


# Compiled resolvers outlive one expansion: per spec (held, so its id stays its own), the
# resolver of each (op, raw fields). A spec's resolvers depend only on the spec (its
# `defaults:`) and the op registry; the values of dynamic fields are evaluated per call.
_RESOLVERS: dict[int, tuple[Spec, dict[tuple[str, int], Resolver | None]]] = {}
_RESOLVER_SPECS = 8  # specs whose resolvers are kept


class Ctx(NamedTuple):
    """Where we are: environment for expressions, name prefix, user-file call site."""

    env: dict[str, Any]
    prefix: str
    site: Loc  # the innermost location in the user's spec file
    block: str = ""  # built-in block being instantiated, for messages
    depth: int = 0  # blocks instantiated around this point
    params: Mapping[str, Any] = MappingProxyType({})  # parameters of the enclosing block
    train_only: bool = False  # inside a `train_only: true` layer or group

    def at(self, prefix: str) -> Ctx:
        """The same context under another name prefix."""
        return self._replace(prefix=prefix)


class Expander:
    def __init__(self, spec: Spec, builtin_blocks: Mapping[str, BlockDef],
                 variables: Mapping[str, Any], errors: ErrorSink,
                 input_shape: Shape | None = None) -> None:
        self.spec = spec
        self.blocks = {**builtin_blocks, **spec.blocks}
        self.builtin_names = {n for n in builtin_blocks if n not in spec.blocks}
        self.vars = variables
        # what every expression sees: the built-in `training` (false unless --set), the vars
        self.base_env: dict[str, Any] = {"training": False, **variables}
        self.errors = errors
        self.nodes: list[Node] = []
        self.input_override = input_shape
        self._plans: dict[str, list[PlanEntry]] = {}
        self._resolvers = _resolvers_of(spec)
        self._memo = BlockMemo()
        self.replayed = 0  # layers taken from the memo (see cnncost.lang.plan: when to plan)
        self._work = 0  # see spend()
        self._failed_checks: set[str] = set()
        # a cnncost.lang.plan.Recorder while a plan is compiled: told each step that
        # depends on the variables; block calls are then expanded, never replayed
        self.rec: Any = None

    # ------------------------------------------------------------------ helpers
    def err(self, item_loc: Loc, ctx: Ctx, path: str, message: str) -> None:
        loc = item_loc if item_loc.file == self.spec.file else ctx.site
        if ctx.block and item_loc.file != self.spec.file:
            kind = "built-in block" if ctx.block in self.builtin_names else "imported block"
            message += f" (in {kind} '{ctx.block}', {item_loc})"
        self.errors.add(loc, path, message)

    @staticmethod
    def value(raw: Any, env: Mapping[str, Any], choices: tuple[str, ...] = ()) -> Any:
        """Resolve a raw field value: literal choice, variable, expression or literal."""
        return resolve_value(raw, env, choices)

    def typed(self, fdef: Field, raw: Any, env: Mapping[str, Any]) -> Any:
        value = self.value(raw, env, fdef.choices)
        try:
            return fdef.check(value)
        except OpError as exc:
            msg = str(exc)
            if isinstance(raw, str) and raw not in fdef.choices and (
                    raw in env or not raw.isidentifier()):
                msg += f" (the value of {raw!r})" if raw in env else f" (from {raw!r})"
            if isinstance(value, str) and IDENTIFIER.match(value) and value not in fdef.choices:
                known = [k for k in env if not k.startswith("_")]
                close = did_you_mean(value, known)
                if close:
                    msg += f" ({value!r} is not a variable{close})"
            raise OpError(msg) from None

    def add_node(self, name: str, op: str, attrs: dict[str, Any],
                 inputs: Sequence[int | None], loc: Loc, ctx: Ctx) -> int | None:
        if len(self.nodes) >= MAX_NODES:
            self.errors.add(ctx.site, name, f"the model expands to more than {MAX_NODES:,} "
                            "layers; refusing to go on")
            raise Abort()
        self.spend(1, ctx.site, name)
        opdef = OPS[op]
        nodes = self.nodes
        given = attrs  # as resolved, before the derived fields
        refs = tuple(i for i in inputs if i is not None)
        if len(refs) != len(inputs):  # an input failed earlier and was reported there
            return None
        if not ctx.train_only and any(nodes[i].train_only for i in refs):
            aux = next(nodes[i].name for i in refs if nodes[i].train_only)
            self.err(loc, ctx, name, f"reads {aux!r}, a train_only layer, which does not run "
                     "in evaluation; only train_only layers may read it")
            return None
        known = [s for i in refs if (s := nodes[i].shape) is not None]
        shape: Shape | None = None
        size = 0
        if len(known) == len(refs):
            try:
                if opdef.derive is not None:  # a new dict: `attrs` may be shared
                    attrs = {**attrs, **opdef.derive(known, attrs)}
                shape = tuple(opdef.shape(known, attrs))
                size = numel(shape)
                if size > MAX_ELEMENTS:
                    raise OpError(f"output {fmt_shape(shape)} has more than {MAX_ELEMENTS:.0e} "
                                  "elements")
                if size == 0:
                    raise OpError(f"output shape {fmt_shape(shape)} is empty")
            except OpError as exc:
                ins = ", ".join(fmt_shape(s) for s in known)
                self.err(loc, ctx, name, f"{op}: {exc} [input {ins}]")
                shape, size = None, 0
        site = loc if loc.file == self.spec.file else ctx.site  # located in the user's file
        node = Node(len(nodes), name, op, attrs, refs, shape, site, opdef.view, size,
                    ctx.train_only)
        self.nodes.append(node)
        if self.rec is not None:
            self.rec.node(node, given)
        return node.index

    def spend(self, units: int, site: Loc, path: str) -> None:
        """Count expansion work: layers, block calls and replayed names. Blocks that add no
        layers, or huge name tables replayed, escape MAX_NODES; this bounds them too."""
        self._work += units
        if self._work > MAX_WORK:
            self.errors.add(site, path, f"the spec takes more than {MAX_WORK:,} expansion steps "
                            "(layers, block calls and names); refusing to go on")
            raise Abort()

    def shape_of(self, ref: int | None) -> Shape | None:
        return None if ref is None else self.nodes[ref].shape

    # ------------------------------------------------------------------ entry
    def run(self) -> Graph | None:
        spec = self.spec
        ctx = Ctx(env=dict(self.base_env), prefix="", site=spec.loc)
        if self.rec is not None:
            self.rec.frame(ctx.env, ("base",))
        shape = self.input_override
        if shape is None:
            if spec.input is None:  # reported while parsing
                return None
            dims: list[int] = []
            for raw in spec.input:
                try:
                    dims.append(pos_int(self.value(raw, ctx.env)))
                except (ExprError, OpError) as exc:
                    where = Loc(spec.file, spec.input_line) if spec.input_line else spec.loc
                    self.errors.add(where, "input", f"input sizes: {exc}")
                    return None
            shape = tuple(dims)
        if numel(shape) > MAX_ELEMENTS:
            self.errors.add(spec.loc, "input", f"input {fmt_shape(shape)} is absurdly large")
            return None
        self.nodes.append(Node(0, "input", "input", {}, (), shape, spec.loc, False, numel(shape)))
        # no in_channels/in_h/in_w at the top level: they are the input of a block
        try:
            out = self.seq(spec.layers, 0, Scope(0), ctx)
        except Abort:
            return None
        if out is not None and self.nodes[out].train_only:
            self.errors.add(spec.loc, self.nodes[out].name, "the model's output is a "
                            "train_only layer; end the layers with the evaluation path")
            return None
        return Graph(spec.name, spec.file, self.nodes, out if out is not None else 0,
                     dict(self.vars), spec.description)

    def set_in(self, env: dict[str, Any], ref: int | None) -> None:
        shape = self.shape_of(ref) or ()
        env["in_channels"] = shape[0] if shape else 0
        env["in_h"] = shape[1] if len(shape) == 3 else 1
        env["in_w"] = shape[2] if len(shape) == 3 else 1

    # ------------------------------------------------------------------ lists
    def seq(self, items: Items, src: int | None, scope: Scope, ctx: Ctx) -> int | None:
        """Expand a layer list; each layer takes the previous output unless `from:`."""
        taken = {i.name for i in items if i.name}
        counters: dict[str, int] = {}
        cur = src
        for item in items:
            site = item.loc if item.loc.file == self.spec.file else ctx.site
            if "when" in item.fields and item.kind != "broken":  # broken: reported in parsing
                label = ctx.prefix + item.name if item.name else item.path
                try:  # always an expression: a bare word must be a variable
                    raw = item.fields["when"]
                    keep = compile_expr(raw)(ctx.env) if isinstance(raw, str) else raw
                    if not isinstance(keep, bool):
                        raise ExprError(f"expected true or false, received {show(keep)}")
                    if self.rec is not None:
                        self.rec.guard(ctx.env, "when", raw, keep)
                except ExprError as exc:
                    self.err(item.line_loc("when"), ctx, label, f"when: {exc}")
                    cur = None  # unknown whether the layer exists: later shapes are unknown
                    if item.name:
                        scope.names[item.name] = None
                    continue
                if not keep:
                    continue
            name = item.name
            if name is None and item.kind == "broken":  # reported while parsing; no name to show
                cur = None
                continue
            if name is None:
                base = item.op
                n = counters.get(base, 0) + 1
                while f"{base}{n}" in taken:
                    n += 1
                counters[base] = n
                name = f"{base}{n}"
                taken.add(name)
            elif name in scope.names:
                self.err(item.loc, ctx, ctx.prefix + name,
                         f"duplicate layer name {name!r} in the same list")
            inp = cur
            if "from" in item.fields and item.fields["from"] is not None:
                found, inp = scope.lookup(item.fields["from"])
                if not found:
                    self.err(item.line_loc("from"), ctx, ctx.prefix + name,
                             f"from: no layer named {item.fields['from']!r} before this one"
                             f"{did_you_mean(item.fields['from'], scope.visible())} "
                             f"(visible: {one_of(scope.visible())})")
            sub = ctx._replace(prefix=ctx.prefix + name, site=site,
                               train_only=ctx.train_only or item.fields.get("train_only") is True)
            out = self.layer(item, inp, scope, sub)
            scope.names[name] = out
            cur = out
        return cur

    def layer(self, item: Item, src: int | None, scope: Scope, ctx: Ctx) -> int | None:
        if item.kind == "broken" or item.op in self.spec.broken_blocks:
            return None  # already reported while parsing
        if item.kind == "primitive":
            return self.primitive(item, src, scope, ctx)
        if item.kind == "block":
            return self.call_block(self.blocks[item.op], item, src, scope, ctx)
        structural: Callable[[Item, int | None, Scope, Ctx], int | None] = getattr(
            self, f"s_{item.op}")
        return structural(item, src, scope, ctx)

    # ------------------------------------------------------------------ primitives
    def op_plan(self, op: str) -> list[PlanEntry]:
        """Per field of `op`: (name, Field, raw default from the spec or None, ready value).

        Built once per op and expander: literal defaults are checked here, so the
        common case of a layer that leaves a field unset costs a dict lookup.
        """
        plan = self._plans.get(op)
        if plan is None:
            defaults = {k: v for k, v in self.spec.defaults.items() if not isinstance(v, dict)}
            defaults.update(self.spec.defaults.get(op, {}))
            plan = []
            for fname, fdef in OPS[op].fields.items():
                raw = defaults.get(fname, _UNSET)
                ready = _UNSET
                if raw is _UNSET and not fdef.required:
                    ready = fdef.default if fdef.default is None else fdef.check(fdef.default)
                plan.append((fname, fdef, raw, ready))
            self._plans[op] = plan
        return plan

    def resolver(self, op: str, item_fields: Mapping[str, Any]) -> Resolver | None:
        """The compiled resolution of `item_fields` for `op`, kept for the spec."""
        key = (op, id(item_fields))
        if key in self._resolvers:
            found = self._resolvers[key]
            if found is None or found.fields is item_fields:
                return found
        found = compile_resolver(self.op_plan(op), item_fields)
        self._resolvers[key] = found
        return found

    def resolve_fields(self, op: str, item_fields: Mapping[str, Any], item: Item,
                       ctx: Ctx) -> dict[str, Any] | None:
        """The checked value of every field of `op`: the layer's own, the spec's defaults,
        the op's defaults. Problems are reported and give None."""
        # compiled once for a layer's own fields (others are made per call: not kept)
        if self.rec is not None:
            self.rec.fields(ctx.env, op, item_fields, self.op_plan(op))
        compiled = (self.resolver(op, item_fields)
                    if item_fields is item.fields or item_fields is _NO_FIELDS else None)
        if compiled is not None:
            try:
                return resolve(compiled, ctx.env)
            except (OpError, ExprError):
                pass  # resolved again below, which says where and why
        return self.resolve_fields_slowly(op, item_fields, item, ctx)

    def resolve_fields_slowly(self, op: str, item_fields: Mapping[str, Any], item: Item,
                              ctx: Ctx) -> dict[str, Any] | None:
        attrs: dict[str, Any] = {}
        ok = True
        for fname, fdef, default, ready in self.op_plan(op):
            raw = item_fields.get(fname, _UNSET)
            if raw is _UNSET:
                if ready is not _UNSET:
                    attrs[fname] = ready
                    continue
                if default is _UNSET:  # required and not given
                    opdef = OPS[op]
                    self.err(item.loc, ctx, ctx.prefix,
                             f"{op} needs field {fname!r} ({fdef.doc}); required: "
                             f"{one_of(f for f, d in opdef.fields.items() if d.required)}")
                    ok = False
                    continue
                raw = default
            try:
                if isinstance(raw, int) and not isinstance(raw, bool):
                    attrs[fname] = fdef.check(raw)
                else:
                    attrs[fname] = self.typed(fdef, raw, ctx.env)
            except (OpError, ExprError) as exc:
                loc = item.line_loc(fname) if fname in item_fields else item.loc
                self.err(loc, ctx, ctx.prefix, f"{fname}: {exc}")
                ok = False
        return attrs if ok else None

    def primitive(self, item: Item, src: int | None, scope: Scope, ctx: Ctx,
                  op: str | None = None, fields: Mapping[str, Any] | None = None) -> int | None:
        op = op or item.op
        opdef = OPS[op]
        fields = item.fields if fields is None else fields
        inputs: list[int | None]
        if opdef.merge:
            inputs = []
            names = fields.get("inputs")
            if not names:
                self.err(item.loc, ctx, ctx.prefix, f"{op} needs 'inputs: [a, b, ...]' naming "
                         f"the layers to merge (visible: {one_of(scope.visible())})")
                return None
            for ref_name in names:
                found, ref = scope.lookup(ref_name)
                if not found:
                    self.err(item.line_loc("inputs"), ctx, ctx.prefix,
                             f"inputs: no layer named {ref_name!r} before this one"
                             f"{did_you_mean(ref_name, scope.visible())} "
                             f"(visible: {one_of(scope.visible())})")
                    return None
                inputs.append(ref)
        else:
            inputs = [src]
        if any(i is None for i in inputs):
            self.resolve_fields(op, fields, item, ctx)  # still report field errors
            return None
        attrs = self.resolve_fields(op, fields, item, ctx)
        if attrs is None:
            return None
        norm = attrs.pop("norm", "none") if opdef.fused else "none"
        act = attrs.pop("act", "none") if opdef.fused else "none"
        if self.rec is not None and opdef.fused:
            self.rec.fused(norm, act)
        if norm == "none" and act == "none":
            return self.add_node(ctx.prefix, op, attrs, tuple(inputs), item.loc, ctx)
        ref = self.add_node(f"{ctx.prefix}.{op}", op, attrs, tuple(inputs), item.loc, ctx)
        return self.norm_act(ref, norm, act, item, ctx)

    def norm_act(self, ref: int | None, norm: str, act: str, item: Item,
                 ctx: Ctx) -> int | None:
        """The `norm:` and `act:` layers of a fused layer, each with the fields a standalone
        layer of that op would get from the spec's defaults."""
        if norm != "none":
            op = registered(norm)
            attrs = self.resolve_fields(op, _NO_FIELDS, item, ctx)
            if attrs is None:
                return None
            ref = self.add_node(f"{ctx.prefix}.norm", op, attrs, (ref,), item.loc, ctx)
        if act != "none":
            ref = self.add_act(f"{ctx.prefix}.act", act, ref, item, ctx)
        return ref

    def add_act(self, name: str, act: str, src: int | None, item: Item,
                ctx: Ctx) -> int | None:
        """An activation layer by name or alias, with the spec's defaults for its fields."""
        op = registered(act)
        attrs = self.resolve_fields(op, _NO_FIELDS, item, ctx)
        if attrs is None:
            return None
        return self.add_node(name, op, attrs, (src,), item.loc, ctx)

    # ------------------------------------------------------------------ structure
    def child(self, ctx: Ctx, name: str = "") -> Ctx:
        prefix = f"{ctx.prefix}.{name}." if name else f"{ctx.prefix}."
        return ctx.at(prefix)

    def s_sequential(self, item: Item, src: int | None, scope: Scope, ctx: Ctx) -> int | None:
        inner = Scope(src, scope)
        out = self.seq(item.fields.get("layers", ()), src, inner, self.child(ctx))
        scope.children[ctx.prefix.rsplit(".", 1)[-1]] = inner
        return out

    def s_residual(self, item: Item, src: int | None, scope: Scope, ctx: Ctx) -> int | None:
        inner = Scope(src, scope)
        scope.children[ctx.prefix.rsplit(".", 1)[-1]] = inner
        return self.residual(item.fields.get("layers", ()), item.fields.get("shortcut", "auto"),
                             item.fields.get("post", ()), src, inner, self.child(ctx), item.loc)

    def residual(self, layers: Items, shortcut: Any, post: Items, src: int | None, inner: Scope,
                 ctx: Ctx, loc: Loc) -> int | None:
        body = self.seq(layers, src, inner, ctx)
        path = ctx.prefix.rstrip(".")
        if isinstance(shortcut, tuple):
            sc_scope = Scope(src, inner)
            sc = self.seq(shortcut, src, sc_scope, ctx.at(ctx.prefix + "shortcut."))
            inner.children["shortcut"] = sc_scope
            inner.names["shortcut"] = sc
        else:
            a, b = self.shape_of(src), self.shape_of(body)
            if src is None or a is None or b is None:
                return None
            mode = shortcut
            if mode == "auto":
                mode = "identity" if a == b else "projection"
            elif mode == "if_match":
                mode = "identity" if a == b else "none"
            if self.rec is not None:
                self.rec.shortcut(src, body, shortcut, mode)
            if mode == "none":
                sc = None
            elif mode == "identity":
                if a != b:
                    self.err(loc, ctx, path, f"residual add of mismatched shapes: the input is "
                             f"{fmt_shape(a)} but the body gives {fmt_shape(b)} (use shortcut: "
                             f"projection or auto to add a 1x1 conv)")
                    return None
                sc = src
            else:
                if self.rec is not None:
                    self.rec.projecting(src, body)
                sc = self.projection(src, a, b, ctx, loc)
                if sc is None:
                    return None
            if sc is None:
                return self.seq(post, body, inner, ctx) if post else body
        out = self.add_node(ctx.prefix + "add", "add", {}, (body, sc), loc, ctx)
        inner.names["add"] = out
        return self.seq(post, out, inner, ctx) if post else out

    def projection(self, src: int, a: Shape, b: Shape, ctx: Ctx, loc: Loc) -> int | None:
        """1x1 conv (+ norm per defaults) mapping the block input to the body's shape."""
        path = ctx.prefix + "shortcut"
        if len(a) != 3 or len(b) != 3:
            self.err(loc, ctx, path, f"cannot project {fmt_shape(a)} to {fmt_shape(b)} "
                     "(projection shortcuts need feature maps)")
            return None
        stride = (-(-a[1] // b[1]), -(-a[2] // b[2]))
        if (-(-a[1] // stride[0]), -(-a[2] // stride[1])) != b[1:]:
            self.err(loc, ctx, path, f"no 1x1 strided projection maps {fmt_shape(a)} to "
                     f"{fmt_shape(b)}; give an explicit shortcut list")
            return None
        fields = {"out": b[0], "kernel": 1, "stride": list(stride), "padding": 0}
        for key in ("norm", "bias"):  # a block's own norm/bias parameters win over defaults
            if key in ctx.params:
                fields[key] = ctx.params[key]
        item = Item(op="conv", name="shortcut", fields=fields, loc=loc, path=path,
                    kind="primitive")
        # bias and norm follow the spec's conv defaults; a projection never has an activation
        sub = ctx.at(path)
        return self.primitive(item, src, Scope(src), sub, "conv", {**fields, "act": "none"})

    def s_branches(self, item: Item, src: int | None, scope: Scope, ctx: Ctx) -> int | None:
        inner = Scope(src, scope)
        scope.children[ctx.prefix.rsplit(".", 1)[-1]] = inner
        outs = []
        for bname, blayers in item.fields.get("branches", {}).items():
            b_scope = Scope(src, inner)
            out = self.seq(blayers, src, b_scope, self.child(ctx, bname))
            inner.names[bname] = out
            inner.children[bname] = b_scope
            outs.append(out)
        merge = item.fields.get("merge", "concat")
        if merge not in MERGES:
            self.err(item.line_loc("merge"), ctx, ctx.prefix,
                     f"merge must be one of {one_of(MERGES)}, received {show(merge)}"
                     f"{did_you_mean(merge, MERGES)}")
            return None
        if any(o is None for o in outs):
            return None
        if len(outs) == 1:
            return outs[0]
        out = self.add_node(f"{ctx.prefix}.merge", merge, {}, tuple(outs), item.loc, ctx)
        inner.names["merge"] = out
        return out

    def s_act(self, item: Item, src: int | None, scope: Scope, ctx: Ctx) -> int | None:
        """An activation chosen by a field (`fn: relu6`), for templates."""
        try:
            fn = self.typed(ACT, item.fields.get("fn", "none"), ctx.env)
        except (OpError, ExprError) as exc:
            self.err(item.line_loc("fn"), ctx, ctx.prefix, f"fn: {exc}")
            return None
        if self.rec is not None:
            self.rec.guard(ctx.env, "fn", item.fields.get("fn", "none"), fn)
        if fn == "none" or src is None:
            return src if fn == "none" else None
        return self.add_act(ctx.prefix, fn, src, item, ctx)

    def s_separable(self, item: Item, src: int | None, scope: Scope, ctx: Ctx) -> int | None:
        """Depthwise (no bias) then pointwise (bias, norm, act as given), as Keras does."""
        f = item.fields
        dw: dict[str, Any] = {k: f[k] for k in ("kernel", "stride", "padding", "dilation",
                                                "multiplier") if k in f}
        dw.update(bias=False, norm="none", act="none")
        pw: dict[str, Any] = {k: f[k] for k in ("out", "bias", "norm", "act") if k in f}
        a = self.primitive(item, src, scope, ctx.at(ctx.prefix + ".depthwise"), "depthwise", dw)
        return self.primitive(item, a, scope, ctx.at(ctx.prefix + ".pointwise"), "pointwise", pw)

    def s_for(self, item: Item, src: int | None, scope: Scope, ctx: Ctx) -> int | None:
        """`{op: for, each: i, in: "range(n)", layers: [...]}`: the layers once per value,
        chained, with the loop variable in scope; copies named iter1..N."""
        f = item.fields
        var = f.get("each")
        if not isinstance(var, str):
            self.err(item.loc, ctx, ctx.prefix, "for needs 'each: NAME', the loop variable")
            return None
        if "in" not in f:
            self.err(item.loc, ctx, ctx.prefix, "for needs 'in:', a list or an expression "
                     "giving one (e.g. \"range(depth)\", \"widths\", [1, 2, 3])")
            return None
        try:
            raw = f["in"]  # always an expression: a bare word must be a variable
            values = compile_expr(raw)(ctx.env) if isinstance(raw, str) else self.value(
                raw, ctx.env)
            if not isinstance(values, list):
                raise ExprError(f"expected a list to loop over, received {show(values)}")
            if len(values) > MAX_REPEAT:
                raise ExprError(f"{len(values):,} values is more than the limit of "
                                f"{MAX_REPEAT:,}")
        except ExprError as exc:
            self.err(item.line_loc("in"), ctx, ctx.prefix, f"in: {exc}")
            return None
        listed = self.rec.guard(ctx.env, "for", raw, values) if self.rec is not None else 0
        inner = Scope(src, scope)
        scope.children[ctx.prefix.rsplit(".", 1)[-1]] = inner
        cur = src
        for k, value in enumerate(values):
            name = f"iter{k + 1}"
            sub = ctx._replace(env={**ctx.env, var: value}, prefix=f"{ctx.prefix}.{name}.")
            if self.rec is not None:
                self.rec.frame(sub.env, ("with", ctx.env, var, ("item", listed, k)))
            copy = Scope(cur, inner)
            cur = self.seq(f.get("layers", ()), cur, copy, sub)
            inner.children[name] = copy
            inner.names[name] = cur
        return cur

    def s_stage(self, item: Item, src: int | None, scope: Scope, ctx: Ctx) -> int | None:
        f = item.fields
        block_name = f.get("block")
        if not isinstance(block_name, str) or block_name not in self.blocks:
            self.err(item.line_loc("block") if "block" in f else item.loc, ctx, ctx.prefix,
                     f"stage needs 'block:' naming a block, received {show(block_name)}"
                     f"{did_you_mean(block_name, self.blocks)} (blocks: {one_of(self.blocks)})")
            return None
        if block_name in self.spec.broken_blocks:
            return None
        block = self.blocks[block_name]
        try:
            repeat = self.value(f.get("repeat", 1), ctx.env)
            if isinstance(repeat, float) and repeat.is_integer():
                repeat = int(repeat)
            if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 0:
                raise ExprError(f"expected a non-negative integer, received {show(repeat)}")
            if repeat > MAX_REPEAT:
                raise ExprError(f"{repeat:,} is more than the limit of {MAX_REPEAT:,}")
        except ExprError as exc:
            self.err(item.line_loc("repeat"), ctx, ctx.prefix, f"repeat: {exc}")
            return None
        if self.rec is not None:
            self.rec.guard(ctx.env, "repeat", f.get("repeat", 1), repeat)
        args = dict(f.get("with", {}))
        for key in args:
            if key not in block.params:
                self.err(item.line_loc("with"), ctx, ctx.prefix,
                         f"block {block_name!r} has no parameter {key!r}"
                         f"{did_you_mean(key, block.params)} (params: {one_of(block.params)})")
                return None
        if "stride" in f and "stride" not in block.params:
            self.err(item.line_loc("stride"), ctx, ctx.prefix,
                     f"block {block_name!r} has no 'stride' parameter for the stage to set")
            return None
        inner = Scope(src, scope)
        scope.children[ctx.prefix.rsplit(".", 1)[-1]] = inner
        cur = src
        for i in range(repeat):
            call = dict(args)
            if "stride" in f:
                call["stride"] = f["stride"] if i == 0 else 1
            fake = Item(op=block_name, name=f"block{i + 1}", fields=call, loc=item.loc,
                        path=item.path, kind="block", field_lines=item.field_lines)
            # each copy's `with:` values see its 0-based position as `index`
            sub = ctx._replace(env={**ctx.env, "index": i}, prefix=f"{ctx.prefix}.block{i + 1}")
            if self.rec is not None:
                self.rec.frame(sub.env, ("with", ctx.env, "index", ("const", i)))
            cur = self.call_block(block, fake, cur, inner, sub)
            inner.names[f"block{i + 1}"] = cur
        return cur

    # ------------------------------------------------------------------ blocks
    def call_block(self, block: BlockDef, item: Item, src: int | None, scope: Scope,
                   ctx: Ctx) -> int | None:
        if ctx.depth >= MAX_BLOCK_DEPTH:
            self.err(item.loc, ctx, ctx.prefix, f"blocks nested more than {MAX_BLOCK_DEPTH} deep")
            return None
        self.spend(1, ctx.site, ctx.prefix)
        given: dict[str, Any] = {}
        ok = True
        for pname in block.params:
            if pname in item.fields:
                try:
                    given[pname] = self.value(item.fields[pname], ctx.env)
                except ExprError as exc:
                    self.err(item.line_loc(pname), ctx, ctx.prefix, f"{pname}: {exc}")
                    ok = False
        local = ctx.prefix.rsplit(".", 1)[-1]
        # Defaults depend only on the given parameters, the variables and the input
        # shape, so the memo is consulted before they are evaluated.
        key = (BlockMemo.key(block, given, self.shape_of(src), f"{ctx.block}|{ctx.train_only}")
               if ok and self.rec is None else None)
        # Where this call's layers are reported: the call's line in the user's file.
        recording = self._memo.get(key) if key is not None else None
        site = item.loc if item.loc.file == self.spec.file else ctx.site
        if recording is not None and src is not None:
            self.spend(len(recording.nodes) + 1, site, ctx.prefix)
            if len(self.nodes) + len(recording.nodes) > MAX_NODES:
                self.errors.add(site, ctx.prefix, f"the model expands to more than "
                                f"{MAX_NODES:,} layers; refusing to go on")
                raise Abort()
            self.replayed += len(recording.nodes)
            replayed, scope.children[local] = replay(recording, self.nodes, src, ctx.prefix,
                                                     site)
            return replayed
        preset = {**self.spec.block_defaults.get("*", {}),
                  **self.spec.block_defaults.get(block.name, {})}  # the spec's `defaults:`
        missing = [p for p, d in block.params.items()
                   if d is REQUIRED and p not in item.fields and p not in preset]
        if missing:
            self.err(item.loc, ctx, ctx.prefix,
                     f"block {block.name!r} needs parameter{'s' * (len(missing) > 1)} "
                     f"{', '.join(map(repr, missing))} (required: "
                     f"{one_of(p for p, d in block.params.items() if d is REQUIRED)})")
            return None
        if not ok:
            return None
        if self.shape_of(src) is None:  # its input failed (reported there): its defaults and
            return None  # checks would see in_channels = 0 and report false problems
        env = dict(self.base_env)
        self.set_in(env, src)
        params: dict[str, Any] = {}
        for pname, default in block.params.items():
            if pname in given:
                params[pname] = env[pname] = given[pname]
            else:  # defaults see the variables, in_*, and the parameters before them
                where = block.loc
                if pname in preset:
                    default, where = preset[pname], self.spec.loc
                try:
                    params[pname] = env[pname] = self.value(default, env)
                except ExprError as exc:
                    self.err(where, ctx, ctx.prefix, f"{pname}: {exc}")
                    ok = False
        if ok and self.rec is not None:
            self.rec.frame(env, ("block", ctx.env, src, block, tuple(
                (p, item.fields[p]) for p in block.params if p in item.fields), preset))
        if ok:
            ok = self.run_checks(block, env, item, ctx)
        if not ok:
            return None
        builtin = block.loc.file != self.spec.file
        sub = Ctx(env, ctx.prefix + ".", site, block.name if builtin else ctx.block, ctx.depth + 1,
                  params, ctx.train_only)
        inner = Scope(src, None)
        scope.children[local] = inner
        start, problems = len(self.nodes), self.errors.count()
        if block.shortcut is None:
            out = self.seq(block.layers, src, inner, sub)
            out = self.seq(block.post, out, inner, sub) if block.post else out
        else:
            out = self.residual(block.layers, block.shortcut, block.post, src, inner, sub,
                                item.loc)
        if key is not None and src is not None and out is not None and (
                self.errors.count() == problems):
            self._memo.record(key, self.nodes, start, src, out, inner, ctx.prefix, site)
        if self.rec is not None:
            self.rec.block_end()
        return out

    def run_checks(self, block: BlockDef, env: Mapping[str, Any], item: Item, ctx: Ctx) -> bool:
        """A block's `checks:` on its parameters; each false one is an error at the call."""
        ok = True
        for source, message in block.checks:
            try:
                passed = compile_expr(source)(env)
            except ExprError as exc:
                passed, message = False, f"check {source!r} failed: {exc}"
            if passed is not True:
                text = _PLACEHOLDER.sub(lambda m: show(env.get(m.group(1), m.group(0))), message)
                text = f"block {block.name!r}: {text}"
                if text not in self._failed_checks:  # once, not at every call of the block
                    self._failed_checks.add(text)
                    self.err(item.loc, ctx, ctx.prefix, text)
                ok = False
        return ok

def _lookup(word: str) -> Callable[[Mapping[str, Any]], Any]:
    """A bare word's value: the variable or parameter of that name, else the word itself."""
    return lambda env: env.get(word, word)


def _listed(raw: list[Any]) -> Callable[[Mapping[str, Any]], Any]:
    """A list whose items may be variables or expressions, resolved item by item."""
    return lambda env: resolve_value(raw, env)


def _resolvers_of(spec: Spec) -> dict[tuple[str, int], Resolver | None]:
    """The compiled resolvers kept for `spec` (a new table for a spec not seen lately)."""
    held = _RESOLVERS.get(id(spec))
    if held is not None and held[0] is spec:
        return held[1]
    if len(_RESOLVERS) >= _RESOLVER_SPECS:
        _RESOLVERS.pop(next(iter(_RESOLVERS)))
    table: dict[tuple[str, int], Resolver | None] = {}
    _RESOLVERS[id(spec)] = (spec, table)
    return table


def expand(spec: Spec, builtin_blocks: Mapping[str, BlockDef], variables: Mapping[str, Any],
           errors: ErrorSink, input_shape: Shape | None = None) -> Graph | None:
    """Expand `spec` with resolved `variables`; None if it could not be expanded at all."""
    return Expander(spec, builtin_blocks, variables, errors, input_shape).run()


__all__ = ["Graph", "Node", "expand"]
