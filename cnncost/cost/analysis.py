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

from typing import Any, NamedTuple

from ..errors import Problem, SpecError, count
from ..lang.expand import MAX_ELEMENTS
from ..lang.graph import Graph, Node
from .ops import OPS, Cost, fmt_shape
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


def peak_live_bytes(graph: Graph, per_element: int, training: bool = False) -> int:
    """Peak of live activation bytes over the forward pass in node order.

    A tensor is alive from the node that creates it until the last node that reads
    it (the model output until the end). Views (flatten, identity, dropout) share
    their input's storage and extend its life instead of allocating. Outside
    `training`, train_only layers do not run: they neither allocate nor read.
    """
    cache = graph.shared  # shared by graphs of one structure (cnncost.lang.plan)
    schedule = cache.get(training) if cache is not None else None
    if schedule is None:
        schedule = live_schedule(graph, training)
        if cache is not None:
            cache[training] = schedule
    order, frees = schedule
    sizes = [0 if node.train_only and not training else node.size for node in graph.nodes]
    live = peak = 0
    for entry in order:
        if entry >= 0:  # makes its own tensor
            live += sizes[entry]
            if live > peak:
                peak = live
        else:
            entry = ~entry
        for s in frees.get(entry, ()):
            live -= sizes[s]
    return peak * per_element


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
    shapes = [node.shape for node in graph.nodes]
    if None in shapes:
        raise ValueError(f"graph {graph.name!r} has layers of unknown shape; expand it "
                         "without errors first")
    return [s for s in shapes if s is not None]


def analyze_graph(graph: Graph, batch: int = 1, dtype: str = "fp32", description: str = "",
                  convention: str = "torchvision", *, rows: bool = True) -> Analysis:
    """Costs of every node of `graph` for `batch` samples stored as `dtype`.

    `convention` names a counting profile (:mod:`cnncost.cost.conventions`) that restates
    MACs and params as another tool counts them; the default changes nothing. `rows`
    false: the totals only (`Analysis.rows` is empty), as a sweep needs them.
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
    shapes = known_shapes(graph)
    first = nodes[0]
    head = Row(first.name, "input", shapes[0], 0, 0, 0, 0, 0, first.size * act_per, 0,
               layers=0)
    table = [head]
    params = buffers = keras = macs = other = weighted = own_params = acts = 0
    acts_rules = profile.acts if profile is not None else None
    act_total = head.act_bytes
    training = graph.vars.get("training") is True  # else train_only layers do no work
    # Replayed copies of a block share their nodes' attrs dicts; the same attrs on the
    # same input shapes cost the same, so identical layers are costed once. Graphs of one
    # plan share attrs dicts across evaluations too (cnncost.lang.plan): their costs are
    # kept with the plan, each with its attrs (so that no other dict takes its id).
    memo: dict[tuple[int, Any], tuple[Cost, int, Any]]
    shared = graph.shared
    if shared is None:
        memo = {}
    else:
        memo = shared.setdefault(("costs", convention), {})
        if len(memo) > MAX_COSTS:
            memo.clear()
    make_row = tuple.__new__  # Row(...) without the keyword handling: one per layer
    append = table.append
    for node in nodes[1:]:
        inputs, shape, attrs = node.inputs, shapes[node.index], node.attrs
        key = (id(attrs), shapes[inputs[0]] if len(inputs) == 1
               else tuple(shapes[i] for i in inputs))
        found = memo.get(key)
        if found is None or found[2] is not attrs:
            opdef = OPS[node.op]
            ins = [shapes[i] for i in inputs]
            cost = opdef.cost(ins, shape, attrs)
            own = cost.params
            if profile is not None:
                cost = profile.apply(node.op, ins, shape, attrs, cost)
            memo[key] = cost, own, attrs
            cost.weighted = opdef.category in WEIGHTED
        else:
            cost, own, _ = found
        p = cost.params
        if node.train_only and not training:  # its module exists; eval skips it
            act = m = o = 0
        else:
            act = 0 if node.view else node.size * act_per
            m = cost.macs * batch
            o = cost.other_ops * batch
            if acts_rules is not None and node.op in acts_rules:
                acts += batch * acts_rules[node.op]([shapes[i] for i in inputs], shape,
                                                    attrs, cost)
        if keep_rows:
            append(make_row(Row, (node.name, node.op, shape, p, cost.buffers, m, 2 * m, o,
                                  act, p * bytes_per, cost.weights, cost.keras_nontrainable,
                                  1)))
        params += p
        own_params += own
        buffers += cost.buffers
        keras += cost.keras_nontrainable
        macs += m
        other += o
        act_total += act
        weighted += cost.weighted
    totals = Totals(
        params=params, buffers=buffers, keras_params=params + keras, macs=macs, flops=2 * macs,
        other_ops=other, weight_bytes=params * bytes_per, activation_bytes=act_total,
        peak_activation_bytes=peak_live_bytes(graph, batch * bytes_per, training),
        layers=len(nodes) - 1, weighted_layers=weighted)
    try:
        check_limits(graph, table, totals, batch)
    except SpecError:
        if not keep_rows:  # the rows say at which layer a limit is crossed
            analyze_graph(graph, batch, dtype, description, convention)
        raise
    return Analysis(name=graph.name, file=graph.file, input_shape=graph.input_shape,
                    output_shape=shapes[graph.output], batch=batch, dtype=dtype,
                    vars=graph.vars, rows=table if keep_rows else [], totals=totals,
                    description=description,
                    convention=convention, trainable=own_params if profile is not None and profile.splits_trainable
                    else None, acts=acts if acts_rules is not None else None)


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


def _size(node: Node) -> int:
    return node.size


def max_batch(graph: Graph, totals: Totals, batch: int) -> int:
    """The largest batch for which every activation tensor of `graph` has at most
    MAX_ELEMENTS elements and every count stays at most INT64_MAX (0: not even one
    sample); `totals` are those of an analysis at `batch`."""
    most = MAX_ELEMENTS // max(1, max(map(_size, graph.nodes)))
    for field, _, scales, _ in _LIMITED:
        per_sample = getattr(totals, field) // batch if scales else 0
        if per_sample:
            most = min(most, INT64_MAX // per_sample)
    if any(getattr(totals, f) > INT64_MAX for f, _, scales, _ in _LIMITED if not scales):
        return 0
    return most


def check_limits(graph: Graph, rows: list[Row], totals: Totals, batch: int) -> None:
    """SpecError if a batched activation tensor has more than MAX_ELEMENTS elements or a
    total (hence any layer's figure) passes INT64_MAX. Each problem is located at the layer
    where the limit is crossed; when the batch is the cause it names --batch and the
    largest batch that fits."""
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
