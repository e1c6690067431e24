"""The report page: one HTML file, no network at view time.

One SVG drawing per depth (stages, blocks, ..., every layer), shown one at a time; each
node is coloured by the chosen cost on a colour-blind-safe sequential scale (viridis,
log-scaled; grey for no cost), and its tooltip and the details panel give its row. The
totals and the per-stage table follow. The few lines of script only switch views and
colours and fill the details panel; every text from a spec is escaped.
"""

from __future__ import annotations

import html
import json
import math
from typing import Any

from ..formats.common import binary, fmt_shape, header_line, note_lines, si, total_lines
from .graphview import View, depths, graph_view
from .layout import NODE_H, NODE_W, layout

# the largest view drawn; deeper views of bigger models are left out with a note
MAX_NODES = 2500

# (key, label, Row attribute, formatter)
METRICS = (("macs", "MACs", "macs", lambda v: f"{v:,} ({si(v)})"),
           ("params", "params", "params", lambda v: f"{v:,} ({si(v)})"),
           ("activations", "activation memory", "act_bytes", binary))

# viridis at nine evenly spaced points (matplotlib's colormap data, rounded)
VIRIDIS = ("#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962",
           "#addc30", "#fde725")
NO_COST = "#e4e4e4"


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def shade(fraction: float) -> str:
    """The viridis colour at `fraction` in [0, 1], interpolated."""
    position = min(max(fraction, 0.0), 1.0) * (len(VIRIDIS) - 1)
    low = int(position)
    high = min(low + 1, len(VIRIDIS) - 1)
    t = position - low
    a, b = _rgb(VIRIDIS[low]), _rgb(VIRIDIS[high])
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(a, b, strict=True))


def ink(fill: str) -> str:
    """Black or white text, whichever reads better on `fill`."""
    r, g, b = _rgb(fill)
    return "#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#ffffff"


def colours(values: list[Any]) -> tuple[list[str], Any, Any]:
    """Fill per value on a log scale between the smallest and largest non-zero value."""
    positive = [v for v in values if v > 0]
    if not positive:
        return [NO_COST] * len(values), 0, 0
    low, high = min(positive), max(positive)
    span = math.log(high) - math.log(low)

    def fill(v: int) -> str:
        if v <= 0:
            return NO_COST
        return shade((math.log(v) - math.log(low)) / span if span else 1.0)

    return [fill(v) for v in values], low, high


def _label(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _short(key: str, limit: int = 24) -> str:
    """A node's name for its box: its last name levels that fit ('stage2.block1')."""
    parts = key.split(".")
    while len(parts) > 1 and len(".".join(parts)) > limit:
        parts.pop(0)
    return ".".join(parts)


def _tooltip(node: Any, extra: dict | None = None) -> str:
    row = node.row
    lines = [node.key, f"{row.op}" + (f" ({node.layers} layers)" if node.layers > 1 else ""),
             f"output {fmt_shape(row.shape)}", f"params {row.params:,}", f"MACs {row.macs:,}",
             f"FLOPs {row.flops:,}", f"activations {binary(row.act_bytes)}",
             *(f"{k} {v}" for k, v in (extra or {}).items())]
    return "\n".join(lines)


def svg(view: View, fills: dict[str, list[str]], metric: str,
        marks: list[str] | None = None, extra: list[dict] | None = None) -> tuple[str, int, int]:
    """The view as an SVG drawing; (markup, width, height). `fills`: colour scheme ->
    fill per node (the page's script switches schemes); `marks`: a prefix per node's
    label (the diff's +, -, ~, so that a change reads without colour); `extra`: more
    details per node."""
    positions = layout(len(view.nodes), view.edges)
    width = int(max((x for x, _ in positions), default=0) + NODE_W / 2 + 20)
    height = int(max((y for _, y in positions), default=0) + NODE_H / 2 + 20)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="-10 -10 {width} {height}" role="img">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" '
           'markerHeight="6" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
           'fill="#777"/></marker></defs>']
    for a, b in view.edges:
        (x1, y1), (x2, y2) = positions[a], positions[b]
        out.append(f'<line class="edge" x1="{x1:.0f}" y1="{y1 + NODE_H / 2:.0f}" '
                   f'x2="{x2:.0f}" y2="{y2 - NODE_H / 2 - 1:.0f}" stroke="#999" '
                   'stroke-width="1.2" marker-end="url(#arrow)"/>')
    for i, node in enumerate(view.nodes):
        x, y = positions[i]
        row = node.row
        name = (marks[i] if marks else "") + _short(node.key)
        kind = row.op if node.layers == 1 else f"{node.layers} layers"
        data = " ".join(f'data-fill-{m}="{fills[m][i]}" data-ink-{m}="{ink(fills[m][i])}"'
                        for m in fills)
        details = html.escape(json.dumps({
            "name": node.key, "op": row.op, "layers": node.layers,
            "output": fmt_shape(row.shape), "params": f"{row.params:,}",
            "MACs": f"{row.macs:,}", "FLOPs": f"{row.flops:,}",
            "activations": binary(row.act_bytes), **(extra[i] if extra else {})}), quote=True)
        fill = fills[metric][i]
        out.append(
            f'<g class="node" data-details="{details}" {data} tabindex="0">'
            f'<title>{html.escape(_tooltip(node, extra[i] if extra else None))}</title>'
            f'<rect x="{x - NODE_W / 2:.0f}" y="{y - NODE_H / 2:.0f}" width="{NODE_W}" '
            f'height="{NODE_H}" rx="5" fill="{fill}" stroke="#555" stroke-width="0.8"/>'
            f'<text x="{x:.0f}" y="{y - 3:.0f}" text-anchor="middle" font-size="12" '
            f'fill="{ink(fill)}">{html.escape(_label(name))}</text>'
            f'<text x="{x:.0f}" y="{y + 12:.0f}" text-anchor="middle" font-size="10" '
            f'fill="{ink(fill)}">{html.escape(_label(kind + " · " + fmt_shape(row.shape), 30))}'
            '</text></g>')
    out.append("</svg>")
    return "".join(out), width, height


STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.2em;color:#222}
h1{font-size:1.3em;margin:0 0 .2em} .sub{color:#555;margin:0 0 .8em}
.controls{display:flex;flex-wrap:wrap;gap:.6em;align-items:center;margin:.4em 0}
.controls button{padding:.25em .7em;border:1px solid #888;background:#f6f6f6;border-radius:4px;cursor:pointer}
.controls button.on{background:#333;color:#fff}
.main{display:flex;gap:1em;align-items:flex-start}
.graph{border:1px solid #ccc;overflow:auto;max-height:80vh;flex:1 1 auto;background:#fff}
.view{display:none}.view.on{display:block}
.side{flex:0 0 21em;font-size:.9em}
.node{cursor:pointer}.node:focus rect,.node.sel rect{stroke:#d62728;stroke-width:3}
.legend .bar{height:12px;border:1px solid #888;background:linear-gradient(to right,VIRIDIS)}
.legend .ends{display:flex;justify-content:space-between;font-size:.85em}
table{border-collapse:collapse;font-size:.88em;margin:.6em 0}
td,th{border:1px solid #ddd;padding:.2em .5em;text-align:right}
td:first-child,th:first-child,.stages td:nth-child(2){text-align:left}
#details td:first-child{font-weight:600}
"""

SCRIPT = r"""
(function(){
  var metric = document.body.getAttribute('data-metric');
  function paint(){
    document.querySelectorAll('.node').forEach(function(g){
      var f = g.getAttribute('data-fill-' + metric), k = g.getAttribute('data-ink-' + metric);
      g.querySelector('rect').setAttribute('fill', f);
      g.querySelectorAll('text').forEach(function(t){ t.setAttribute('fill', k); });
    });
    var depth = document.body.getAttribute('data-depth');
    document.querySelectorAll('.legend').forEach(function(l){
      l.style.display = (l.getAttribute('data-metric') === metric &&
                         l.getAttribute('data-depth') === depth) ? 'block' : 'none'; });
    document.querySelectorAll('button[data-metric]').forEach(function(b){
      b.classList.toggle('on', b.getAttribute('data-metric') === metric); });
  }
  function show(depth){
    document.body.setAttribute('data-depth', depth);
    paint();
    document.querySelectorAll('.view').forEach(function(v){
      v.classList.toggle('on', v.getAttribute('data-depth') === depth); });
    document.querySelectorAll('button[data-depth]').forEach(function(b){
      b.classList.toggle('on', b.getAttribute('data-depth') === depth); });
  }
  function detail(g){
    document.querySelectorAll('.node.sel').forEach(function(n){ n.classList.remove('sel'); });
    g.classList.add('sel');
    var d = JSON.parse(g.getAttribute('data-details')), body = document.getElementById('details');
    body.textContent = '';
    Object.keys(d).forEach(function(k){
      var tr = document.createElement('tr'), a = document.createElement('td'),
          b = document.createElement('td');
      a.textContent = k; b.textContent = d[k]; tr.appendChild(a); tr.appendChild(b);
      body.appendChild(tr);
    });
  }
  document.querySelectorAll('button[data-metric]').forEach(function(b){
    b.addEventListener('click', function(){ metric = b.getAttribute('data-metric'); paint(); });
  });
  document.querySelectorAll('button[data-depth]').forEach(function(b){
    b.addEventListener('click', function(){ show(b.getAttribute('data-depth')); });
  });
  document.querySelectorAll('.node').forEach(function(g){
    g.addEventListener('click', function(){ detail(g); });
    g.addEventListener('keydown', function(e){ if (e.key === 'Enter') detail(g); });
  });
  var asked = /depth=(\d+)/.exec(window.location.hash);  // a link may name the view
  var first = document.body.getAttribute('data-depth');
  if (asked && document.querySelector('.view[data-depth="' + asked[1] + '"]')) first = asked[1];
  show(first);
  document.body.setAttribute('data-ready', 'yes');
})();
"""


def drawn_views(graph: Any, analysis: Any, notes: list[str]) -> list[View]:
    """The views worth drawing, coarse to fine: a deeper view that merges nothing more
    is left out, and one above MAX_NODES nodes too (with a note)."""
    views: list[View] = []
    for d in depths(graph):
        view = graph_view(graph, analysis, d)
        if views and len(view.nodes) == len(views[-1].nodes):
            if d == 0:
                views[-1] = view
            continue
        views.append(view)
    drawn = []
    for view in views:
        if len(view.nodes) > MAX_NODES:
            notes.append(f"note: the view with {len(view.nodes):,} nodes (depth "
                         f"{view.depth or 'all'}) is not drawn (limit {MAX_NODES:,}); the "
                         "coarser views are")
            continue
        drawn.append(view)
    return drawn


def page(title: str, sub: str, controls: str, main: str, after: str, *, metric: str,
         depth: int) -> str:
    """The HTML document around the parts."""
    style = STYLE.replace("VIRIDIS", ",".join(VIRIDIS))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)} — cnncost report</title>"
        f"<style>{style}</style></head>"
        f'<body data-metric="{metric}" data-depth="{depth}">'
        f"<h1>{html.escape(title)}</h1>{sub}"
        f'<div class="controls">{controls}</div><div class="main">{main}</div>{after}'
        "<p class=\"sub\">made by cnncost; layout by grandalf (Sugiyama); colours: viridis "
        "and Okabe-Ito (colour-blind safe)</p>"
        f"<script>{SCRIPT}</script></body></html>\n")


def render(graph: Any, analysis: Any, *, metric: str = "macs", depth: int = 1,
           times: dict[str, float] | None = None, times_source: str = "") -> str:
    """The whole page for `analysis` of `graph`, showing the view at `depth` first and
    colouring by `metric` (macs, params, activations, or latency when `times` gives the
    measured milliseconds per layer name, from `times_source`)."""
    metrics: list[tuple[str, str, Any, Any]] = [
        (key, title, (lambda n, attr=attr: getattr(n.row, attr)), fmt)
        for key, title, attr, fmt in METRICS]
    if times is not None:
        metrics.append(("latency", "measured time",
                        lambda n: sum(times.get(name, 0.0) for name in n.names),
                        lambda v: f"{v:.4f} ms"))
    notes = list(note_lines(analysis))
    drawn = drawn_views(graph, analysis, notes)
    if not any(v.depth == depth for v in drawn):
        depth = drawn[0].depth
    buttons, sections, legends = [], [], []
    for view in drawn:
        fills = {}
        for key, title, value, fmt in metrics:
            fills[key], low, high = colours([value(n) for n in view.nodes])
            ends = (f"<span>{html.escape(fmt(low))}</span><span>{html.escape(fmt(high))}"
                    "</span>" if high else "<span>no node has any</span>")
            legends.append(f'<div class="legend" data-metric="{key}" data-depth="{view.depth}">'
                           f'<b>colour: {title} per node</b> (log scale; grey: none)'
                           f'<div class="bar"></div><div class="ends">{ends}</div></div>')
        extra = ([{"measured time": f"{sum(times.get(x, 0.0) for x in n.names):.4f} ms"}
                  for n in view.nodes] if times is not None else None)
        markup, _, _ = svg(view, fills, metric, extra=extra)
        label = "every layer" if view.depth == 0 else f"depth {view.depth}"
        buttons.append(f'<button data-depth="{view.depth}">{label} '
                       f'({len(view.nodes):,} nodes)</button>')
        sections.append(f'<div class="view" data-depth="{view.depth}" '
                        f'data-nodes="{len(view.nodes)}">{markup}</div>')
    metric_buttons = "".join(f'<button data-metric="{k}">{html.escape(t)}</button>'
                             for k, t, _, _ in metrics)
    if times is not None:
        notes.append(f"note: measured times per layer from {times_source}")
    totals = "".join(f"<tr><td>{html.escape(a)}</td><td>{html.escape(b)}</td></tr>"
                     for a, b in total_lines(analysis))
    stage_rows = "".join(
        f"<tr><td>{html.escape(r.name)}</td><td>{html.escape(r.op)}</td>"
        f"<td>{html.escape(fmt_shape(r.shape))}</td><td>{r.params:,}</td><td>{r.macs:,}</td>"
        f"<td>{html.escape(binary(r.act_bytes))}</td></tr>" for r in analysis.collapse(1))
    note_html = "".join(f"<p>{html.escape(n)}</p>" for n in notes)
    description = f'<p class="sub">{html.escape(analysis.description)}</p>' \
        if analysis.description else ""
    return page(
        analysis.name, f'<p class="sub">{html.escape(header_line(analysis))}</p>{description}',
        f'<span>view:</span>{"".join(buttons)}<span>colour by:</span>{metric_buttons}',
        f'<div class="graph">{"".join(sections)}</div>'
        f'<div class="side">{"".join(legends)}<h3>selected node</h3>'
        '<table><tbody id="details"><tr><td>click a node</td><td></td></tr></tbody></table>'
        f"<h3>totals</h3><table>{totals}</table></div>",
        '<h3>per stage</h3><table class="stages"><thead><tr><th>stage</th><th>op</th>'
        "<th>output</th><th>params</th><th>MACs</th><th>activations</th></tr></thead>"
        f"<tbody>{stage_rows}</tbody></table>{note_html}", metric=metric, depth=depth)


# Okabe-Ito colours for the kinds of change (colour-blind safe), and a mark per kind so
# that a change also reads without colour
CHANGE_FILL = {"added": "#56B4E9", "removed": "#D55E00", "changed": "#E69F00",
               "unchanged": NO_COST}
CHANGE_MARK = {"added": "+ ", "removed": "− ", "changed": "~ ", "unchanged": ""}


def render_diff(graph_a: Any, a: Any, graph_b: Any, b: Any, *, depth: int = 1) -> str:
    """Both graphs side by side at each depth, every added, removed or changed node
    marked and coloured, its deltas in its tooltip and details; the totals' deltas."""
    from ..comparison.diff import diff
    from ..formats.difference import signed, signed_bytes

    notes: list[str] = []
    views_b = drawn_views(graph_b, b, notes)
    depths_a = {v.depth: v for v in drawn_views(graph_a, a, notes)}
    if not any(v.depth == depth for v in views_b):
        depth = views_b[0].depth
    buttons: list[str] = []
    legends: list[str] = []
    columns: dict[str, list[str]] = {"a": [], "b": []}
    for view_b in views_b:
        d = view_b.depth
        view_a = depths_a.get(d) or graph_view(graph_a, a, d)
        changes = {c.name: c for c in diff(a, b, d).changes}
        for side, view, gone in (("a", view_a, "added"), ("b", view_b, "removed")):
            kinds = [changes[n.key].kind if n.key in changes and changes[n.key].kind != gone
                     else "unchanged" for n in view.nodes]
            extra = [{"change": k, "Δ params": signed(changes[n.key].params),
                      "Δ MACs": signed(changes[n.key].macs),
                      "Δ activations": signed_bytes(changes[n.key].act_bytes)}
                     if k != "unchanged" else {"change": "none"}
                     for n, k in zip(view.nodes, kinds, strict=True)]
            markup, _, _ = svg(view, {"change": [CHANGE_FILL[k] for k in kinds]}, "change",
                               marks=[CHANGE_MARK[k] for k in kinds], extra=extra)
            columns[side].append(f'<div class="view" data-depth="{d}" '
                                 f'data-nodes="{len(view.nodes)}">{markup}</div>')
        label = "every layer" if d == 0 else f"depth {d}"
        buttons.append(f'<button data-depth="{d}">{label}</button>')
        counts = {k: sum(1 for c in changes.values() if c.kind == k)
                  for k in ("added", "removed", "changed")}
        items = "".join(f'<div><span style="display:inline-block;width:1em;height:1em;'
                        f'background:{CHANGE_FILL[k]};border:1px solid #555"></span> '
                        f'{CHANGE_MARK[k] or "  "}{k}'
                        f'{f" ({counts[k]})" if k in counts else ""}</div>'
                        for k in CHANGE_FILL)
        legends.append(f'<div class="legend" data-metric="change" data-depth="{d}">'
                       f"<b>change from A to B</b>{items}</div>")
    totals = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{va:,}</td><td>{vb:,}</td><td>{signed(dv)}</td></tr>"
        for k, (va, vb, dv) in diff(a, b, 0).totals().items())
    sub = (f'<p class="sub">A: {html.escape(header_line(a))}</p>'
           f'<p class="sub">B: {html.escape(header_line(b))}</p>')
    main = (f'<div class="graph"><h3>A: {html.escape(a.name)}</h3>{"".join(columns["a"])}</div>'
            f'<div class="graph"><h3>B: {html.escape(b.name)}</h3>{"".join(columns["b"])}</div>'
            f'<div class="side">{"".join(legends)}<h3>selected node</h3>'
            '<table><tbody id="details"><tr><td>click a node</td><td></td></tr></tbody></table>'
            "<h3>totals</h3><table><tr><th></th><th>A</th><th>B</th><th>B - A</th></tr>"
            f"{totals}</table></div>")
    after = "".join(f"<p>{html.escape(n)}</p>" for n in notes)
    return page(f"{a.name} → {b.name}", sub, f'<span>view:</span>{"".join(buttons)}', main,
                after, metric="change", depth=depth)


def graphs_of(*analyses: Any) -> list[Any]:
    """The graphs of analyses made from spec files (their file, variables and input)."""
    from ..api import build_graph

    return [build_graph(x.file, input=tuple(x.input_shape), set=dict(x.vars)) for x in analyses]


def analysis_html(analysis: Any, depth: int = 0, graph: Any = None, **_: Any) -> str:
    """`cnncost analyze --format html`: the report page (the view at --depth first, or
    the stages), its graph rebuilt from the analysis' file and variables when not given."""
    graph = graph if graph is not None else graphs_of(analysis)[0]
    return render(graph, analysis, depth=depth or 1)


def diff_html(result: Any, graphs: tuple[Any, Any] | None = None, **_: Any) -> str:
    """`cnncost diff --format html`: render_diff of the two specs (graphs rebuilt from the
    analyses' files and variables when not given)."""
    graph_a, graph_b = graphs if graphs is not None else graphs_of(result.a, result.b)
    return render_diff(graph_a, result.a, graph_b, result.b)

