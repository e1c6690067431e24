"""Pass 4: per-layer costs, totals and peak live activation memory of a graph.

Pure Python over the expanded :class:`~cnncost.lang.expand.Graph`: each node's cost
comes from its op's registered cost rule (per sample), multiplied here by the
batch size; memory uses the bytes per element of the chosen dtype. The result
is an :class:`Analysis` of plain named tuples. Counting conventions are in
docs/conventions.md.

Limits (:func:`check_limits`): every activation tensor, batch included, has at most
``MAX_ELEMENTS`` (10^12) elements, and every count and byte figure, per layer and in
total, is at most 2^63 - 1, so JSON readers, baselines and spreadsheets that store
integers in 64 bits never overflow. An analysis beyond them raises SpecError naming
the layer (file:line) and, when the batch is the cause, the largest batch that fits.
"""

from __future__ import annotations

from functools import partial
from itertools import accumulate, repeat
from operator import attrgetter, itemgetter, mul, neg
from typing import Any, NamedTuple

from ..errors import Problem, SpecError, count
from ..lang.expand import MAX_ELEMENTS
from ..lang.graph import Graph
from .ops import OPS, fmt_shape
from .ops.base import Shape

DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1, "fp64": 8}
WEIGHTED = ("conv", "linear")  # op categories that count as "layers with weights"
MAX_COSTS = 20_000  # layer costs a plan keeps across analyses (then forgotten, all at once)
INT64_MAX = 2**63 - 1  # the most any count or byte figure of an analysis may reach


class Row(NamedTuple):
    """One layer (or, collapsed, one group of layers) of an analysis."""

    name: str
    op: str
    shape: Shape  # output shape per sample (without batch)
    params: int
    buffers: int
    macs: int
    flops: int
    other_ops: int
    act_bytes: int  # memory of the new tensor this layer allocates (0 for views)
    weight_bytes: int
    weights: int = 0  # conv/linear kernel elements (params without bias, norm, prelu)
    keras_nontrainable: int = 0
    layers: int = 1  # primitive layers in this row (more than 1 once collapsed)


class Totals(NamedTuple):
    """Whole-model numbers for one analysis (batch and dtype included)."""

    params: int  # trainable parameters (PyTorch)
    buffers: int  # non-trainable tensors PyTorch keeps (BN running stats + counters)
    keras_params: int  # Keras "Total params": trainable + BN moving mean/variance
    macs: int
    flops: int  # 2 x MACs
    other_ops: int
    weight_bytes: int  # params x dtype bytes
    activation_bytes: int  # every tensor of one forward pass, input included, views excluded
    peak_activation_bytes: int  # most bytes alive at once during one forward pass
    layers: int  # primitive layers (the input excluded)
    weighted_layers: int  # conv and linear layers


class Analysis(NamedTuple):
    """The result of `cnncost.analyze`: rows per layer and totals, plain data."""

    name: str  # the spec's name
    file: str  # the spec file
    input_shape: Shape  # per sample, e.g. (3, 224, 224)
    output_shape: Shape
    batch: int
    dtype: str
    vars: dict[str, Any]  # the variables as resolved (defaults, variant, --set)
    rows: list[Row]  # one Row per primitive layer, the input first
    totals: Totals
    description: str = ""  # the spec's one-line description (its figures are for defaults)
    variant: str | None = None  # the variant analyzed, if any
    custom: bool = False  # a variant, --set or --input changed the spec's defaults
    convention: str = "torchvision"  # the counting profile (cnncost.cost.conventions) applied
    # per row (input first), the receptive field (cnncost.cost.receptive), when asked for
    geometry: tuple[Any, ...] = ()
    # trainable params by PyTorch's count, when the convention splits params into trainable
    # and non-trainable (Keras' "Total params" includes the batch-norm statistics); else None
    trainable: int | None = None
    # the "activations" of a convention that counts them (pycls' acts); else None
    acts: int | None = None
    notes: tuple[str, ...] = ()  # caveats about the figures (printed under the totals)

    def collapse(self, depth: int) -> list[Row]:
        """Rows grouped to the first `depth` components of their names, costs summed."""
        if depth <= 0:
            return list(self.rows)
        groups: dict[str, list[Row]] = {}
        for row in self.rows:
            key = ".".join(row.name.split(".")[:depth])
            groups.setdefault(key, []).append(row)
        out = []
        for key, rows in groups.items():
            if len(rows) == 1 and rows[0].name == key:
                out.append(rows[0])
                continue
            ops = {r.op for r in rows}
            out.append(Row(
                name=key, op=rows[0].op if len(ops) == 1 else "group",
                shape=rows[-1].shape, layers=sum(r.layers for r in rows),
                **{f: sum(getattr(r, f) for r in rows)
                   for f in ("params", "buffers", "macs", "flops", "other_ops", "act_bytes",
                             "weight_bytes", "weights", "keras_nontrainable")}))
        return out

    def geometry_of(self, depth: int = 0) -> dict[str, Any]:
        """Row name (collapsed to `depth`) -> the Geometry of its last layer (its output)."""
        out: dict[str, Any] = {}
        for row, geo in zip(self.rows, self.geometry, strict=False):
            key = ".".join(row.name.split(".")[:depth]) if depth > 0 else row.name
            out[key] = geo
        return out

    def field_totals(self) -> dict[str, Any]:
        """The last feature map's field and stride, and whether it sees the whole input."""
        from .receptive import covers

        spatial = [(r, g) for r, g in zip(self.rows, self.geometry, strict=False)
                   if g is not None and len(r.shape) == 3 and not g.whole]
        if not spatial:
            return {}
        row, geo = spatial[-1]
        fields: dict[str, Any] = geo.to_dict()
        return {"layer": row.name, **{k: v for k, v in fields.items() if k != "note"},
                "covers_input": covers(geo, self.input_shape)}

    def to_dict(self, depth: int = 0) -> dict[str, Any]:
        """JSON-ready dict: spec info, totals and rows (collapsed to `depth` if > 0).

        A non-default counting convention adds a "convention" key after "dtype"; an
        analysis with geometry adds each layer's receptive field and a "receptive_field"
        entry (the last feature map's) after "totals".
        """
        out: dict[str, Any] = {
            "name": self.name,
            "file": self.file,
            "description": self.description,
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "batch": self.batch,
            "dtype": self.dtype,
            "vars": self.vars,
            "variant": self.variant,
            "totals": self.totals._asdict(),
            "layers": [{**r._asdict(), "shape": list(r.shape)} for r in self.collapse(depth)],
        }
        if self.geometry:
            geo = self.geometry_of(depth)
            for layer in out["layers"]:
                g = geo.get(layer["name"])
                layer.update(g.to_dict() if g is not None else dict.fromkeys(
                    ("receptive_field", "effective_stride", "field_start", "whole_input",
                     "note")))
            layers = out.pop("layers")
            out["receptive_field"] = self.field_totals()
            out["layers"] = layers
        if self.convention != "torchvision":
            out = {**{k: v for k, v in out.items() if k not in ("vars", "variant", "totals",
                                                                 "layers")},
                   "convention": self.convention,
                   **{k: out[k] for k in ("vars", "variant", "totals", "layers")}}
            if self.acts is not None:
                out["totals"] = {**out["totals"], "acts": self.acts}
            if self.trainable is not None:  # as the tool labels them
                out["totals"] = {**out["totals"], "trainable": self.trainable,
                                 "non_trainable": self.totals.params - self.trainable}
        if self.notes:
            out["notes"] = list(self.notes)
        return out

    def __repr__(self) -> str:
        """One line, for a REPL: the model and its headline numbers."""
        t = self.totals
        return (f"<Analysis {self.name}: input {'x'.join(map(str, self.input_shape))}, "
                f"{t.params:,} params, {t.macs:,} MACs, {count(t.layers, 'layer')}, batch "
                f"{self.batch}, {self.dtype}>")

    def _repr_html_(self) -> str:
        """A table for Jupyter: the layers (collapsed to two name levels past 60 rows) and
        the totals; every text escaped."""
        import html

        depth = 2 if len(self.rows) > 60 else 0
        head = "".join(f"<th>{h}</th>" for h in ("layer", "op", "output", "params", "MACs",
                                                   "activation bytes"))
        body = "".join(
            f"<tr><td style='text-align:left'>{html.escape(r.name)}</td>"
            f"<td style='text-align:left'>{html.escape(r.op)}</td>"
            f"<td>{'x'.join(map(str, r.shape))}</td><td>{r.params:,}</td>"
            f"<td>{r.macs:,}</td><td>{r.act_bytes:,}</td></tr>" for r in self.collapse(depth))
        t = self.totals
        totals = "".join(f"<tr><th style='text-align:left'>{k}</th><td>{v:,}</td></tr>"
                         for k, v in (("params", t.params), ("buffers", t.buffers),
                                      ("MACs", t.macs), ("FLOPs", t.flops),
                                      ("weight bytes", t.weight_bytes),
                                      ("peak activation bytes", t.peak_activation_bytes),
                                      ("layers", t.layers)))
        title = html.escape(f"{self.name} | input {'x'.join(map(str, self.input_shape))} | "
                            f"batch {self.batch} | {self.dtype}")
        return (f"<div><p><b>{title}</b></p><table><thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table><table>{totals}</table></div>")

    def to_dataframe(self, depth: int = 0) -> Any:
        """Rows as a pandas DataFrame (pandas is imported only here)."""
        pd = require_pandas()

        rows = [{**r._asdict(), "shape": "x".join(map(str, r.shape))} for r in self.collapse(depth)]
        return pd.DataFrame(rows)


def require_pandas() -> Any:
    """pandas, or an ImportError that says how to install it (it is an optional extra)."""
    try:
        import pandas
    except ImportError:
        raise ImportError("this needs pandas, an optional extra of cnncost: pip install pandas "
                          "(or pip install 'cnncost[pandas]')") from None
    return pandas


class Structure(NamedTuple):
    """What the analysis needs of a graph's structure alone (kept in Graph.shared for the
    graphs of one plan): per layer (the input excluded) its name, op, the node its key
    shape comes from, its inputs and cost rule, and which layers read several inputs, are
    views or train only."""

    names: list[str]
    ops: list[str]
    firsts: list[int]  # the input node of each layer (its first; the input's for none)
    multi: list[tuple[int, tuple[int, ...]]]  # (layer position, its inputs) of the others
    train_only: list[int]  # positions of layers that run in training only
    views: list[int]  # positions of views (no tensor of their own)
    rules: list[tuple[tuple[int, ...], Any, int]]  # inputs, cost rule, weighted (0/1)


def structure(graph: Graph) -> Structure:
    """The graph's Structure, computed once per structure for the graphs of a plan."""
    shared = graph.shared
    found = shared.get("structure") if shared is not None else None
    if found is not None:
        return found  # type: ignore[no-any-return]
    layers = graph.nodes[1:]
    found = Structure(
        [n.name for n in layers], [n.op for n in layers],
        [n.inputs[0] if n.inputs else 0 for n in layers],
        [(j, n.inputs) for j, n in enumerate(layers) if len(n.inputs) != 1],
        [j for j, n in enumerate(layers) if n.train_only],
        [j for j, n in enumerate(layers) if n.view],
        [(n.inputs, OPS[n.op].cost, int(OPS[n.op].category in WEIGHTED)) for n in layers])
    if shared is not None:
        shared["structure"] = found
    return found


def peak_live_bytes(graph: Graph, per_element: int, training: bool = False) -> int:
    """Peak of live activation bytes over the forward pass in node order.

    A tensor is alive from the node that creates it until the last node that reads
    it (the model output until the end). Views (flatten, identity, dropout) share
    their input's storage and extend its life instead of allocating. Outside
    `training`, train_only layers do not run: they neither allocate nor read.
    """
    columns, cache = graph.columns, graph.shared
    if columns is not None and cache is not None:  # the same evaluation again: its peak
        last = cache.get(("peak", training))
        if last is not None and last[0] is columns[2]:
            return last[1] * per_element  # type: ignore[no-any-return]
    sizes = list(columns[2]) if columns is not None else list(map(_size, graph.nodes))
    if not training:
        for j in structure(graph).train_only:
            sizes[j + 1] = 0
    events, pick = _events(graph, training)
    # an event: +size of a tensor made (index i), -size of one freed (index count + i)
    signed = [*sizes, *map(neg, sizes)]
    deltas = pick(signed) if pick is not None else [signed[e] for e in events]
    peak = max(0, max(accumulate(deltas), default=0))
    if columns is not None and cache is not None:
        cache[("peak", training)] = (columns[2], peak)
    return peak * per_element


def _events(graph: Graph, training: bool) -> tuple[list[int], Any]:
    """The allocations and frees of a forward pass in order (see peak_live_bytes), and an
    itemgetter that picks them (None for fewer than two); once per structure for the
    graphs of a plan."""
    cache = graph.shared
    found = cache.get(training) if cache is not None else None
    if found is None:
        count = len(graph.nodes)
        order, frees = live_schedule(graph, training)
        events: list[int] = []
        for entry in order:
            if entry >= 0:
                events.append(entry)
            else:
                entry = ~entry
            events.extend(count + s for s in frees.get(entry, ()))
        found = events, itemgetter(*events) if len(events) > 1 else None
        if cache is not None:
            cache[training] = found
    return found


def live_schedule(graph: Graph, training: bool = False) -> tuple[list[int], dict[int, list[int]]]:
    """When tensors are made and freed, from the graph's structure alone: in node order,
    each node that makes a tensor (its index) or frees one without making one (a view:
    ~index), and per node the tensors whose last reader it is."""
    nodes = graph.nodes
    count = len(nodes)
    storage = list(range(count))  # node -> node whose tensor it uses
    last_use = list(range(count))
    for node in nodes:
        if node.train_only and not training:
            continue  # does not run: reads nothing
        index = node.index
        if node.view and node.inputs:
            storage[index] = storage[node.inputs[0]]
        for i in node.inputs:
            s = storage[i]
            if last_use[s] < index:
                last_use[s] = index
    last_use[storage[graph.output]] = count
    frees: dict[int, list[int]] = {}
    for s in range(count):
        if storage[s] == s:
            frees.setdefault(last_use[s], []).append(s)
    order = [i if storage[i] == i else ~i for i in range(count)
             if storage[i] == i or i in frees]
    return order, frees


def known_shapes(graph: Graph) -> list[Shape]:
    """Every node's output shape; the analysis runs only on graphs that expanded cleanly."""
    shapes = list(map(_shape, graph.nodes))
    if None in shapes:
        raise ValueError(f"graph {graph.name!r} has layers of unknown shape; expand it "
                         "without errors first")
    return shapes


# A layer's costs per sample, as the analysis keeps them (one tuple per layer, so that
# the columns come out of zip(*...) at C speed): params, buffers, MACs, other ops,
# kernel weights, Keras non-trainable, weighted (0/1), params as PyTorch counts them
# (before a convention restates them), acts (a convention's; else 0), and the layer's
# attrs (held, so that no other dict takes its id while the cost is kept under it).
LayerCost = tuple[int, int, int, int, int, int, int, int, int, Any]


def layer_costs(graph: Graph, shapes: list[Shape], convention: str = "torchvision",
                profile: Any = None) -> list[LayerCost]:
    """The LayerCost of every layer of `graph` (the input excluded), in order.

    Replayed copies of a block share their nodes' attrs dicts; the same attrs on the same
    input shapes cost the same, so identical layers are costed once. Graphs of one plan
    share attrs dicts across evaluations too (cnncost.lang.plan): their costs are kept
    with the plan (Graph.shared), each holding its attrs, so that an id in the memo is
    always that of the dict it was costed for. The costs of a plan's last evaluation are
    kept whole: the same evaluation again (Graph.columns, the same lists: a kept one, at
    another batch or dtype say) takes them as they are.
    """
    shared = graph.shared
    memo: dict[tuple[int, Any], LayerCost]
    if shared is None:
        memo = {}
    else:
        memo = shared.setdefault(("costs", convention), {})
        if len(memo) > MAX_COSTS:
            memo.clear()
    columns = graph.columns
    if shared is not None and columns is not None:  # the same evaluation again: its costs
        last = shared.get(("column", convention))
        if last is not None and last[0] is columns[0] and last[1] is columns[1]:
            return last[2]  # type: ignore[no-any-return]
    st = structure(graph)
    attrs = columns[0][1:] if columns is not None else list(map(_attrs, graph.nodes[1:]))
    ins: list[Any] = list(map(shapes.__getitem__, st.firsts))
    for j, inputs in st.multi:
        ins[j] = tuple([shapes[i] for i in inputs])
    keys = list(zip(map(id, attrs), ins, strict=True))
    found: list[Any] = list(map(memo.get, keys))
    if None in found:
        _cost_missing(graph, shapes, attrs, keys, found, memo, profile)
    if shared is not None and columns is not None:
        shared[("column", convention)] = (columns[0], columns[1], found)
    return found


def _cost_missing(graph: Graph, shapes: list[Shape], attrs: list[dict[str, Any]],
                  keys: list[tuple[int, Any]], found: list[Any],
                  memo: dict[tuple[int, Any], LayerCost], profile: Any) -> None:
    """Fill in the costs `found` lacks (None) by the ops' cost rules, keeping them."""
    st = structure(graph)
    acts_rules = profile.acts if profile is not None else None
    get = memo.get
    for j in [j for j, cost in enumerate(found) if cost is None]:
        key = keys[j]
        cost = get(key)  # a layer alike one costed above
        if cost is not None:
            found[j] = cost
            continue
        op, (inputs, rule, weighted) = st.ops[j], st.rules[j]
        shapes_in = [shapes[i] for i in inputs]
        c = rule(shapes_in, shapes[j + 1], attrs[j])
        own = c.params
        acts = 0
        if profile is not None:
            c = profile.apply(op, shapes_in, shapes[j + 1], attrs[j], c)
            if acts_rules is not None and op in acts_rules:
                acts = acts_rules[op](shapes_in, shapes[j + 1], attrs[j], c)
        found[j] = memo[key] = (c.params, c.buffers, c.macs, c.other_ops, c.weights,
                                c.keras_nontrainable, weighted, own, acts, attrs[j])


def analyze_graph(graph: Graph, batch: int = 1, dtype: str = "fp32", description: str = "",
                  convention: str = "torchvision", *, rows: bool = True) -> Analysis:
    """Costs of every node of `graph` for `batch` samples stored as `dtype`.

    `convention` names a counting profile (:mod:`cnncost.cost.conventions`) that restates
    MACs and params as another tool counts them; the default changes nothing. `rows`
    false: the totals only (`Analysis.rows` is empty), as a sweep needs them.

    The layers are costed (memoised, :func:`layer_costs`) and then handled as columns:
    totals, rows and the peak come from sums, zips and maps over them, not from a loop
    per layer.
    """
    keep_rows = rows
    profile = None
    if convention != "torchvision":
        from .conventions import get

        profile = get(convention)
        if profile.identity:
            profile = None
    bytes_per = DTYPE_BYTES[dtype]
    act_per = batch * bytes_per
    nodes = graph.nodes
    made_of = graph.columns
    shapes = made_of[1] if made_of is not None else known_shapes(graph)
    st = structure(graph)
    training = graph.vars.get("training") is True  # else train_only layers do no work
    costs = layer_costs(graph, shapes, convention, profile)
    columns: list[Any] = list(zip(*costs, strict=True)) if costs else [()] * 10
    p, b, m, o, w, k, weighted, own, acts, _ = columns
    sizes = made_of[2] if made_of is not None else list(map(_size, nodes))
    made = sizes[1:]  # elements of the tensor each layer makes (none for a view)
    for j in st.views:
        made[j] = 0
    if st.train_only and not training:  # their modules exist; eval skips them
        m, o, acts = list(m), list(o), list(acts)
        for j in st.train_only:
            m[j] = o[j] = acts[j] = made[j] = 0
    macs = sum(m) * batch
    params = sum(p)
    table: list[Row] = []
    if keep_rows:
        first = nodes[0]
        table.append(Row(first.name, "input", shapes[0], 0, 0, 0, 0, 0, sizes[0] * act_per,
                         0, layers=0))
        mb = m if batch == 1 else list(map(mul, m, repeat(batch)))
        table += map(_make_row, zip(
            st.names, st.ops, shapes[1:], p, b, mb, map(mul, mb, repeat(2)),
            o if batch == 1 else map(mul, o, repeat(batch)), map(mul, made, repeat(act_per)),
            map(mul, p, repeat(bytes_per)), w, k, repeat(1)))
    totals = Totals(
        params=params, buffers=sum(b), keras_params=params + sum(k), macs=macs,
        flops=2 * macs, other_ops=sum(o) * batch, weight_bytes=params * bytes_per,
        activation_bytes=(sizes[0] + sum(made)) * act_per,
        peak_activation_bytes=peak_live_bytes(graph, act_per, training),
        layers=len(nodes) - 1, weighted_layers=sum(weighted))
    try:
        check_limits(graph, table, totals, batch, max(sizes))
    except SpecError:
        if not keep_rows:  # the rows say at which layer a limit is crossed
            analyze_graph(graph, batch, dtype, description, convention)
        raise
    return Analysis(name=graph.name, file=graph.file, input_shape=shapes[0],
                    output_shape=shapes[graph.output], batch=batch, dtype=dtype,
                    vars=graph.vars, rows=table, totals=totals, description=description,
                    convention=convention,
                    trainable=sum(own) if profile is not None and profile.splits_trainable
                    else None,
                    acts=sum(acts) * batch if profile is not None and profile.acts is not None
                    else None)


_make_row = partial(tuple.__new__, Row)  # Row(...) from a tuple, without keyword handling
_attrs = attrgetter("attrs")
_shape = attrgetter("shape")


# (Totals field, what to call it, scales with the batch, Row field summed to it)
_LIMITED = (
    ("macs", "MACs", True, "macs"),
    ("flops", "FLOPs (2 x MACs)", True, "flops"),
    ("other_ops", "other ops", True, "other_ops"),
    ("activation_bytes", "activation bytes", True, "act_bytes"),
    ("params", "params", False, "params"),
    ("keras_params", "params, Keras total", False, None),
    ("weight_bytes", "weight bytes", False, "weight_bytes"),
    ("buffers", "buffers", False, "buffers"),
)
# Over the limit whenever the one it names is: reported once, as that one.
_IMPLIED = {"flops": "macs", "keras_params": "params", "weight_bytes": "params"}
INT64_TEXT = (f"2^63 - 1 = {INT64_MAX:,}, the most a signed 64-bit integer holds (JSON "
              "readers, spreadsheets and baselines store counts as int64)")


_size = attrgetter("size")


def max_batch(graph: Graph, totals: Totals, batch: int) -> int:
    """The largest batch for which every activation tensor of `graph` has at most
    MAX_ELEMENTS elements and every count stays at most INT64_MAX (0: not even one
    sample); `totals` are those of an analysis at `batch`."""
    most: int = MAX_ELEMENTS // max(1, max(map(_size, graph.nodes)))
    for field, _, scales, _ in _LIMITED:
        per_sample = getattr(totals, field) // batch if scales else 0
        if per_sample:
            most = min(most, INT64_MAX // per_sample)
    if any(getattr(totals, f) > INT64_MAX for f, _, scales, _ in _LIMITED if not scales):
        return 0
    return most


def check_limits(graph: Graph, rows: list[Row], totals: Totals, batch: int,
                 biggest: int | None = None) -> None:
    """SpecError if a batched activation tensor has more than MAX_ELEMENTS elements or a
    total (hence any layer's figure) passes INT64_MAX. Each problem is located at the layer
    where the limit is crossed; when the batch is the cause it names --batch and the
    largest batch that fits. `biggest`: the largest node size, when the caller has it."""
    if biggest is None:
        biggest = max(map(_size, graph.nodes))
    over = [f for f, *_ in _LIMITED if getattr(totals, f) > INT64_MAX]
    if not over and biggest * batch <= MAX_ELEMENTS:
        return
    fits = max_batch(graph, totals, batch)
    nodes = graph.nodes
    problems = []
    if biggest * batch > MAX_ELEMENTS:
        node = next(n for n in nodes if n.size == biggest)
        problems.append(Problem(node.loc, node.name, (
            f"at batch {batch:,} (--batch) the output {batch}x{fmt_shape(node.shape)} has "
            f"{biggest * batch:,} elements, more than the limit of 10^12 elements in one "
            "activation tensor"
            + (f"; the largest batch this model allows is {fits:,}" if fits else ""))))
    for field, label, scales, row_field in _LIMITED:
        if field not in over or _IMPLIED.get(field) in over:
            continue
        running, at = 0, len(rows) - 1
        for i, row in enumerate(rows):
            running += (row.params + row.keras_nontrainable if row_field is None
                        else getattr(row, row_field))
            if running > INT64_MAX:
                at = i
                break
        if scales and getattr(totals, field) // batch <= INT64_MAX:  # the batch is the cause
            when = f"at batch {batch:,} (--batch) "
            why = f"; the largest batch this model allows is {fits:,}" if fits else ""
        else:
            when = ""
            why = "; a field of this layer or of the layers before it is implausibly large"
        problems.append(Problem(nodes[at].loc, nodes[at].name, (
            f"{when}the model's {label} reach {running:,} at this layer, more than "
            f"{INT64_TEXT}{why}")))
    raise SpecError(problems)
