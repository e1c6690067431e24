"""Compile a spec once, evaluate it many times: expansion plans.

Expanding a spec walks its layer lists, blocks, stages and names, and resolves every
field. Most of that work is the same for every setting of the variables: which layers
exist, what they are called, how they connect. A :class:`Plan` keeps it. It is recorded
while the spec is expanded once (:func:`compile_plan`; the expander tells its
:class:`Recorder` every step that depends on the variables or on shapes), and holds:

- the expanded nodes of that run, as a template for names, ops, inputs and locations;
- the steps that depend on the variables, in the order the expansion took them: the
  environments of blocks, stage copies and loops (their parameters evaluated again), the
  fields of each layer (compiled once: constants checked, expressions as closures), and
  the structural decisions (`when:`, `repeat:`, a loop's length, a residual's shortcut,
  a fused norm or activation) with the outcome the template saw.

:func:`evaluate` replays those steps for other variables (or another input size): it
computes every field, derived value and shape again, with the op registry's rules, and
returns the same :class:`~cnncost.lang.graph.Graph` the expansion would return. If a
decision comes out differently (another depth, a layer switched off, an identity
shortcut that needs a projection now), or any rule raises, it returns None and the caller
expands in full, which also reports every problem with its file:line as always. A plan
therefore never changes a result or a message, only how fast a valid one is reached.

:func:`expand_planned` is the entry point: it evaluates the spec's plans, expands
otherwise, and compiles a plan when a spec is expanded a second time (a sweep, a
comparison, repeated library calls), so one-off analyses pay nothing for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from math import prod
from typing import Any, NamedTuple

from ..cost.ops import OPS
from ..cost.ops.base import pos_int
from ..cost.ops.conv import ACT
from ..errors import ErrorSink
from .expand import (MAX_ELEMENTS, Expander, Resolver, compile_resolver, expand, resolve,
                     resolve_value)
from .expr import ExprError, compile_expr, names_in
from .graph import Graph, Node, Shape
from .spec import BlockDef, Spec

MAX_PLANS = 4  # plans kept per spec (one per structure its variables have reached)
MAX_SPECS = 16  # specs whose plans are kept
MAX_CALLS = 4096  # block calls kept per plan across evaluations (then forgotten, all at once)
MAX_CALL_NODES = 500_000  # and the layers they hold in all (a call holds its inner calls')
REPLAY_COST = 5  # a layer made by the expansion costs about this many replayed ones

_ABSENT = object()  # a name that is no variable (a block's parameter, or unknown)
_WHOLE = object()  # marks the key of a whole evaluation among the calls kept

# Step codes (the first item of each step tuple)
NODE, NODE_CONST, NODE_PROJECTION, FRAME_BLOCK, FRAME_WITH, GUARD, SHORTCUT = range(7)


class Calls(dict[Any, Any]):
    """A plan's block calls kept across evaluations; `nodes`: the layers they hold."""

    nodes = 0

    def forget(self) -> None:
        self.clear()
        self.nodes = 0


class Plan(NamedTuple):
    """A spec's expansion with the parts that depend on the variables kept as steps."""

    spec: Spec
    blocks: Mapping[str, BlockDef]  # the built-in blocks it was compiled with
    nodes: list[Node]  # the template: names, ops, inputs, locations, views, train_only
    output: int
    steps: list[tuple[Any, ...]]
    conv_plan: Any  # the conv field plan of the spec (for projection shortcuts)
    shared: dict[Any, Any]  # what analyses of its graphs share (Graph.shared)
    projections: dict[Any, Resolver]  # compiled projection shortcuts, by their fields
    calls: Calls  # block calls evaluated, by what they read (see _evaluate)
    columns: tuple[list[Any], ...]  # the template's columns (template_columns)
    names: tuple[str, ...] | None  # every name its steps read (None: not known)


class Recorder:
    """Receives the expander's steps while a plan is compiled (Expander.rec)."""

    def __init__(self) -> None:
        self.frame_ids: dict[int, int] = {}  # id(env dict) -> frame number
        self.alive: list[dict[str, Any]] = []  # the env dicts, so that their ids stay theirs
        self.steps: list[tuple[Any, ...]] = []
        self.guards = 0
        self.pending: tuple[Any, ...] | None = None  # how the next node's fields resolve
        self.fused_pending: tuple[str, str] | None = None
        self.project: tuple[int, int] | None = None
        self.failed = ""  # why no plan can be made of this expansion
        self.nodes: list[Node] = []  # the expander's nodes (set by compile_plan)
        self.calls: list[list[Any]] = []  # block calls being expanded, innermost last
        self.constant: dict[Any, Resolver] = {}  # constant field sets, shared
        self.resolvers: dict[tuple[str, int], tuple[Any, Resolver]] = {}  # by raw fields

    def frame_of(self, env: dict[str, Any]) -> int:
        found = self.frame_ids.get(id(env))
        if found is None:
            self.failed = "an environment the recorder did not see created"
            return -1
        return found

    def frame(self, env: dict[str, Any], how: tuple[Any, ...]) -> None:
        """A new environment: the top level's, a stage copy's or loop pass's, a block's."""
        kind = how[0]
        if kind == "with":
            _, parent, key, source = how
            self.steps.append((FRAME_WITH, self.frame_of(parent), key, source))
        elif kind == "block":
            _, caller, src, block, given, preset = how
            shape = self.nodes[src].shape
            try:  # calls alike expand alike (the expander's BlockMemo): their class
                cls: Any = (id(block), tuple((p, env[p]) for p in block.params), shape)
                hash(cls)
            except TypeError:  # a list-valued parameter
                cls = None
            given_names = {p for p, _ in given}
            # each parameter: given (evaluated where the block is called) or its default
            # (the spec's `defaults:` first), evaluated in the block's own environment
            raws = [dict(given)[p] if p in given_names else preset.get(p, default)
                    for p, default in block.params.items()]
            order = tuple((p, p in given_names, getter(raw))
                          for p, raw in zip(block.params, raws, strict=True))
            checks = tuple(getter_expr(source) for source, _ in block.checks)
            # [class, steps after this one in the call, frames it opens, first node, nodes,
            #  the names the call reads: its parameters' and checks' here, all at its end]
            info = [cls, len(self.steps) + 1, len(self.alive), len(self.nodes), 0,
                    _union([names_in(raw) for raw in raws] +
                           [names_in(source) for source, _ in block.checks])]
            self.calls.append(info)
            self.steps.append((FRAME_BLOCK, self.frame_of(caller), src, block, order, checks,
                               info))
        self.frame_ids[id(env)] = len(self.alive)
        self.alive.append(env)

    def block_end(self) -> None:
        """The block call opened last is expanded: its steps, frames and nodes are known."""
        if not self.calls:
            self.failed = "a block call ended that the recorder did not see begin"
            return
        info = self.calls.pop()
        info[5] = _union([info[5], *map(_step_names, self.steps[info[1]:])])
        if info[5] is not None:
            info[5] = tuple(sorted(info[5]))
        info[1] = len(self.steps) - info[1]
        info[2] = len(self.alive) - info[2]
        info[4] = len(self.nodes) - info[3]

    def guard(self, env: dict[str, Any], kind: str, raw: Any, outcome: Any) -> int:
        """A decision the structure rests on; returns its number (a loop reads its list)."""
        number = self.guards
        self.guards += 1
        self.steps.append((GUARD, kind, self.frame_of(env), raw, outcome, number))
        return number

    def shortcut(self, src: int | None, body: int | None, declared: Any, mode: str) -> None:
        self.steps.append((SHORTCUT, src, body, declared, mode))

    def projecting(self, src: int, body: int | None) -> None:
        self.project = (src, body if body is not None else -1)

    def fields(self, env: dict[str, Any], op: str, fields: Mapping[str, Any],
               plan: Any) -> None:
        if self.project is not None:
            self.pending = ("projection", op, self.frame_of(env), *self.project)
            self.project = None
            return
        known = self.resolvers.get((op, id(fields)))
        if known is not None and known[0] is fields:  # the same raw fields: compiled
            self.pending = ("fields", op, self.frame_of(env), known[1])
            return
        resolver = compile_resolver(plan, fields)
        if resolver is None:
            self.failed = f"fields of a {op} layer that do not compile"
        elif not resolver.dynamic:  # constant fields: one dict for all layers alike, so
            try:  # that the analysis costs them once per input shape
                key = (op, tuple(resolver.template.items()))
                resolver = self.constant.setdefault(key, resolver)
            except TypeError:  # an unhashable value (a list)
                pass
        if resolver is not None:  # held with its fields, so that their id stays theirs
            self.resolvers[(op, id(fields))] = (fields, resolver)
        self.pending = ("fields", op, self.frame_of(env), resolver)

    def fused(self, norm: str, act: str) -> None:
        self.fused_pending = (norm, act)

    def node(self, node: Node, given: dict[str, Any]) -> None:
        pending, self.pending = self.pending, None
        fused, self.fused_pending = self.fused_pending, None
        if pending is None:
            self.steps.append((NODE_CONST, node, OPS[node.op], given))
            return
        if pending[1] != node.op:
            self.failed = f"a {node.op} node made from the fields of a {pending[1]}"
            return
        if pending[0] == "projection":
            _, _, frame, src, body = pending
            self.steps.append((NODE_PROJECTION, node, OPS[node.op], frame, src, body, fused))
        else:
            _, _, frame, resolver = pending
            opdef = OPS[node.op]
            self.steps.append((NODE, node, opdef, frame, resolver, fused, node.inputs,
                               opdef.derive, opdef.shape,
                               resolver is None or bool(resolver.dynamic)
                               or fused is not None))


def compile_plan(spec: Spec, blocks: Mapping[str, BlockDef], variables: Mapping[str, Any],
                 input_shape: Shape | None = None) -> Plan | None:
    """Expand `spec` once, recording a plan; None if this expansion cannot be planned
    (it has problems, or takes a step the recorder does not know)."""
    errors = ErrorSink()
    expander = Expander(spec, blocks, variables, errors, input_shape)
    recorder = Recorder()
    recorder.nodes = expander.nodes
    expander.rec = recorder
    graph = expander.run()
    if graph is None or errors or recorder.failed or recorder.calls:
        return None
    conv_plan = expander.op_plan("conv") if "conv" in OPS else None
    return Plan(spec, blocks, graph.nodes, graph.output, recorder.steps, conv_plan, {}, {},
                Calls(), template_columns(graph.nodes), _sorted(_union(
                    [_step_names(step) for step in recorder.steps])))


def _union(sets: list[Any]) -> frozenset[str] | None:
    """The union of name sets; None (unknown) if one is."""
    found: set[str] = set()
    for names in sets:
        if names is None:
            return None
        found.update(names)
    return frozenset(found)


def _typed(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """Values as a key that tells 1, 1.0 and True apart (they compare equal, but a field
    check or a `when:` does not take them alike)."""
    return values, tuple(map(type, values))


def _frozen(value: Any) -> Any:
    """A value as a key, lists as tuples of their items (typed, as by _typed)."""
    if isinstance(value, (list, tuple)):
        return type(value), tuple(map(_frozen, value))
    return type(value), value


def _sorted(names: frozenset[str] | None) -> tuple[str, ...] | None:
    return None if names is None else tuple(sorted(names))


def _step_names(step: tuple[Any, ...]) -> Any:
    """The names of variables (or parameters) a step reads from its environment; None
    when they are not known. A projection shortcut's fields come from shapes and its
    block's parameters; one that reads a name marks its evaluation (see _evaluate)."""
    code = step[0]
    if code == NODE:
        return step[4].names
    if code == FRAME_BLOCK:
        return step[6][5]  # a nested call, ended: all it reads
    if code == GUARD:
        return names_in(step[3])
    return frozenset()  # constant fields, projections, loop items, shortcuts


Getter = Callable[[Mapping[str, Any]], Any]


def getter(raw: Any) -> Getter:
    """`resolve_value(raw, env)` as a function of `env`, with the expression compiled once."""
    if isinstance(raw, list):
        return lambda env: resolve_value(raw, env)
    if not isinstance(raw, str):
        return lambda env: raw
    if raw.isidentifier():
        return lambda env: env.get(raw, raw)
    return getter_expr(raw)


def getter_expr(source: str) -> Getter:
    """An expression compiled once; one that does not compile fails when evaluated (as
    the expansion would, with the message)."""
    try:
        return compile_expr(source)
    except ExprError:
        def invalid(env: Mapping[str, Any]) -> Any:
            return compile_expr(source)(env)

        return invalid


def evaluate(plan: Plan, variables: Mapping[str, Any],
             input_shape: Shape | None = None) -> Graph | None:
    """The graph `plan`'s spec expands to with `variables`, or None when the structure
    differs from the plan's or a step fails (then expand in full)."""
    try:
        return _evaluate(plan, variables, input_shape)
    except Exception:  # noqa: BLE001  any failure means "expand in full", which reports it
        return None


def _evaluate(plan: Plan, variables: Mapping[str, Any],
              input_shape: Shape | None) -> Graph | None:
    spec, template = plan.spec, plan.nodes
    base: dict[str, Any] = {"training": False, **variables}
    if input_shape is None:
        if spec.input is None:
            return None
        input_shape = tuple(pos_int(resolve_value(raw, base)) for raw in spec.input)
    size = 1
    for d in input_shape:
        size *= d
    if size > MAX_ELEMENTS:
        return None
    calls = plan.calls  # calls of earlier evaluations, by what they read (below)
    # The whole evaluation is a call too: one with the same input and the same values of
    # every name the plan reads has the same layers. Take them.
    whole: Any = None
    if plan.names is not None:
        read = tuple([base.get(n, _ABSENT) for n in plan.names])
        whole = (_WHOLE, input_shape, _typed(read))
        try:
            stored = calls.get(whole)
        except TypeError:  # a list-valued variable: its items, then
            whole = (_WHOLE, input_shape, _frozen(read))
            try:
                stored = calls.get(whole)
            except TypeError:  # a value that is no key
                whole = stored = None
        if stored is not None:
            return _graph(plan, variables, *stored)
    # the evaluation's layers as columns (the input first): the fields, shapes and sizes;
    # the rest of each node comes from the template
    fields: list[dict[str, Any]] = [template[0].attrs]
    shapes: list[Shape] = [input_shape]
    sizes = [size]
    envs: list[dict[str, Any]] = [dict(base)]
    params: list[Mapping[str, Any]] = [{}]
    lists: dict[int, list[Any]] = {}
    # a block call's key -> (its first node, its environment and parameters)
    done: dict[Any, tuple[int, dict[str, Any], dict[str, Any]]] = {}
    stores: list[tuple[Any, int, int, dict[str, Any], dict[str, Any]]] = []
    keep = True  # false once a projection's fields read a name: then store no call
    steps = plan.steps
    position, end = 0, len(steps)
    while position < end:
        step = steps[position]
        position += 1
        code = step[0]
        if code <= NODE_PROJECTION:
            if code == NODE:
                _, t, _, frame, resolver, fused, inputs, derive, shape_of, resolving = step
                # constant fields are never written to: shared by every evaluation
                attrs = resolve(resolver, envs[frame]) if resolving else resolver.template
            else:
                t, opdef = step[1], step[2]
                inputs, derive, shape_of = t.inputs, opdef.derive, opdef.shape
                if code == NODE_CONST:
                    attrs, fused = step[3], None
                else:
                    projected = _projection(plan, step, shapes, envs, params)
                    if projected is None:
                        return None
                    attrs, dynamic = projected
                    keep = keep and not dynamic
                    fused = step[6]
            if fused is not None and (attrs.pop("norm", "none"),
                                      attrs.pop("act", "none")) != fused:
                return None
            ins = [shapes[i] for i in inputs]
            if derive is not None:
                attrs = {**attrs, **derive(ins, attrs)}
            shape = tuple(shape_of(ins, attrs))
            size = prod(shape)
            if size > MAX_ELEMENTS or size == 0 or t.index != len(shapes):
                return None
            fields.append(attrs)
            shapes.append(shape)
            sizes.append(size)
        elif code == FRAME_BLOCK:
            _, caller, src, block, order, checks, (cls, inside, frames, first, count,
                                                   names) = step
            outer = envs[caller]
            values = {p: get(outer) for p, given, get in order if given}
            shape = shapes[src]
            # A block's defaults and checks depend on the given values, its input shape and
            # the variables only: a call alike an earlier one (and alike in the template,
            # so with the same steps) has the same layers, shapes and fields. Take them.
            key = wide = None
            if cls is not None and first == len(shapes):
                try:
                    key = (cls, id(block), _typed(tuple(values.items())), shape)
                    earlier = done.get(key)
                except TypeError:  # a list-valued parameter
                    key = earlier = None
                if earlier is not None:
                    first_done, env_done, ps_done = earlier
                    fields += fields[first_done:first_done + count]
                    shapes += shapes[first_done:first_done + count]
                    sizes += sizes[first_done:first_done + count]
                    envs += [env_done] * frames  # the call's frames, never read after it
                    params += [ps_done] * frames
                    position += inside
                    continue
                # A call also alike one of an earlier evaluation, where the variables it
                # reads (by name) had the same values, has its layers too: take them.
                if key is not None and names is not None:
                    try:
                        wide = (key, _typed(tuple([base.get(n, _ABSENT) for n in names])))
                        stored = calls.get(wide)
                    except TypeError:  # a list-valued variable
                        wide = stored = None
                    if stored is not None:
                        env_done, ps_done, made_fields, made_shapes, made_sizes = stored
                        fields += made_fields
                        shapes += made_shapes
                        sizes += made_sizes
                        envs += [env_done] * frames
                        params += [ps_done] * frames
                        done[key] = (first, env_done, ps_done)
                        position += inside
                        continue
            env = dict(base)
            env["in_channels"] = shape[0]
            env["in_h"] = shape[1] if len(shape) == 3 else 1
            env["in_w"] = shape[2] if len(shape) == 3 else 1
            ps: dict[str, Any] = {}
            for pname, given, get in order:
                ps[pname] = env[pname] = values[pname] if given else get(env)
            for check in checks:
                if check(env) is not True:
                    return None
            envs.append(env)
            params.append(ps)
            if key is not None:
                done[key] = (first, env, ps)
                if wide is not None:
                    stores.append((wide, first, count, env, ps))
        elif code == FRAME_WITH:
            _, parent, key, (how, a, *b) = step
            value = a if how == "const" else lists[a][b[0]]
            envs.append({**envs[parent], key: value})
            params.append(params[parent])
        elif code == GUARD:
            _, kind, frame, raw, outcome, number = step
            env = envs[frame]
            if kind == "when":
                value = compile_expr(raw)(env) if isinstance(raw, str) else raw
                if value is not outcome:
                    return None
            elif kind == "repeat":
                value = resolve_value(raw, env)
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                if isinstance(value, bool) or value != outcome:
                    return None
            elif kind == "for":
                value = (compile_expr(raw)(env) if isinstance(raw, str)
                         else resolve_value(raw, env))
                if not isinstance(value, list) or len(value) != len(outcome):
                    return None
                lists[number] = value
            elif kind == "fn":
                if ACT.check(resolve_value(raw, env, ACT.choices)) != outcome:
                    return None
            else:
                return None
        elif code == SHORTCUT:
            _, src, body, declared, mode = step
            a, b = shapes[src], shapes[body]
            if declared == "auto":
                now = "identity" if a == b else "projection"
            elif declared == "if_match":
                now = "identity" if a == b else "none"
            else:
                now = declared
            if now != mode or (now == "identity" and a != b):
                return None
        else:
            return None
    if len(shapes) != len(template):
        return None
    adding = sum(store[2] for store in stores)
    if whole is not None and adding + len(shapes) > MAX_CALL_NODES:
        whole = None  # the block calls alone, then
    adding += len(shapes) if whole is not None else 0
    storing = len(stores) + (whole is not None)
    if keep and storing and adding <= MAX_CALL_NODES:
        if len(calls) + storing > MAX_CALLS or calls.nodes + adding > MAX_CALL_NODES:
            calls.forget()
        for wide, start, made_count, env, ps in stores:
            stop = start + made_count
            calls[wide] = (env, ps, fields[start:stop], shapes[start:stop], sizes[start:stop])
        if whole is not None:
            calls[whole] = (fields, shapes, sizes)
        calls.nodes += adding
    return _graph(plan, variables, fields, shapes, sizes)


def _graph(plan: Plan, variables: Mapping[str, Any], fields: list[dict[str, Any]],
           shapes: list[Shape], sizes: list[int]) -> Graph:
    """The graph of an evaluation: its columns with the template's."""
    index, name, op, inputs, loc, view, train_only = plan.columns
    nodes = list(map(_make_node, zip(index, name, op, fields, inputs, shapes, loc, view, sizes,
                                     train_only, strict=True)))
    return Graph(plan.spec.name, plan.spec.file, nodes, plan.output, dict(variables),
                 plan.spec.description, plan.shared, (fields, shapes, sizes))


_make_node = partial(tuple.__new__, Node)  # a Node from a tuple, without keyword handling


def template_columns(nodes: list[Node]) -> tuple[list[Any], ...]:
    """The parts of a plan's nodes that every evaluation shares, as columns: index, name,
    op, inputs, loc, view, train_only."""
    return tuple(list(column) for column in zip(*[
        (n.index, n.name, n.op, n.inputs, n.loc, n.view, n.train_only) for n in nodes],
        strict=True))


def _projection(plan: Plan, step: tuple[Any, ...], shapes: list[Shape],
                envs: list[dict[str, Any]], params: list[Mapping[str, Any]]
                ) -> tuple[dict[str, Any], bool] | None:
    """The fields of a projection shortcut (Expander.projection) for these shapes, and
    whether they read a name from the environment (a parameter that is not a choice)."""
    _, _, _, frame, src, body, _ = step
    a, b = shapes[src], shapes[body]
    if len(a) != 3 or len(b) != 3:
        return None
    stride = (-(-a[1] // b[1]), -(-a[2] // b[2]))
    if (-(-a[1] // stride[0]), -(-a[2] // stride[1])) != b[1:]:
        return None
    fields: dict[str, Any] = {"out": b[0], "kernel": 1, "stride": list(stride), "padding": 0}
    for key in ("norm", "bias"):
        if key in params[frame]:
            fields[key] = params[frame][key]
    fields["act"] = "none"
    resolver: Resolver | None = None
    cached: Any = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in fields.items())
    try:  # the projections of one shape: compiled once per plan
        resolver = plan.projections.get(cached)
    except TypeError:  # an unhashable parameter value
        cached = None
    if resolver is None:
        resolver = compile_resolver(plan.conv_plan, fields)
        if resolver is None:
            return None
        if cached is not None and len(plan.projections) < 256:
            plan.projections[cached] = resolver
    return resolve(resolver, envs[frame]), bool(resolver.dynamic)


class _Entry:
    __slots__ = ("spec", "plans", "seen")

    def __init__(self, spec: Spec) -> None:
        self.spec = spec  # held, so that its id stays its own
        self.plans: list[Plan] = []
        self.seen = 0  # full expansions of this spec


_ENTRIES: dict[int, _Entry] = {}


def expand_planned(spec: Spec, blocks: Mapping[str, BlockDef], variables: Mapping[str, Any],
                   errors: ErrorSink, input_shape: Shape | None = None) -> Graph | None:
    """`expand`, through the spec's plans when one fits; the same graph and problems."""
    if errors:  # earlier problems: the full expansion reports what follows from them
        return expand(spec, blocks, variables, errors, input_shape)
    entry = _ENTRIES.get(id(spec))
    if entry is None or entry.spec is not spec:
        if len(_ENTRIES) >= MAX_SPECS:
            _ENTRIES.pop(next(iter(_ENTRIES)))
        entry = _ENTRIES[id(spec)] = _Entry(spec)
    for plan in entry.plans:
        if plan.blocks is blocks:
            graph = evaluate(plan, variables, input_shape)
            if graph is not None:
                return graph
    expander = Expander(spec, blocks, variables, errors, input_shape)
    graph = expander.run()
    entry.seen += 1
    if graph is None or errors or len(entry.plans) >= MAX_PLANS:
        return graph
    # Compiling expands every block call (none replayed from the memo) while recording,
    # so it costs about as much as the expansions it saves when most layers are replays.
    # Compile once the expansions of this spec have cost about that much (a replayed layer
    # counted as a fifth of a made one): the second for most specs, later for specs that
    # are nearly all repeats, where an expansion is cheap and a plan gains little.
    made = len(graph.nodes) - expander.replayed
    if entry.seen * (made + expander.replayed / REPLAY_COST) >= len(graph.nodes) and \
            entry.seen >= 2:
        compiled = compile_plan(spec, blocks, variables, input_shape)
        if compiled is not None:
            entry.plans.append(compiled)
    return graph


def forget(spec: Spec) -> None:
    """Drop what `spec`'s plans keep across evaluations (block calls, layer costs); the
    plans stay. The next analysis is then that of a setting never seen before."""
    entry = _ENTRIES.get(id(spec))
    if entry is None or entry.spec is not spec:
        return
    for plan in entry.plans:
        plan.calls.forget()
        for key in [k for k in plan.shared if isinstance(k, tuple)]:
            del plan.shared[key]


__all__ = ["Plan", "Recorder", "compile_plan", "evaluate", "expand_planned", "forget"]
