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


def colours(values: list[int]) -> tuple[list[str], int, int]:
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


def _tooltip(node: Any) -> str:
    row = node.row
    lines = [node.key, f"{row.op}" + (f" ({node.layers} layers)" if node.layers > 1 else ""),
             f"output {fmt_shape(row.shape)}", f"params {row.params:,}", f"MACs {row.macs:,}",
             f"FLOPs {row.flops:,}", f"activations {binary(row.act_bytes)}"]
    return "\n".join(lines)


def svg(view: View, fills: dict[str, list[str]], metric: str) -> tuple[str, int, int]:
    """The view as an SVG drawing; (markup, width, height)."""
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
        name = _short(node.key)
        kind = row.op if node.layers == 1 else f"{node.layers} layers"
        data = " ".join(f'data-fill-{m}="{fills[m][i]}" data-ink-{m}="{ink(fills[m][i])}"'
                        for m, _, _, _ in METRICS)
        details = html.escape(json.dumps({
            "name": node.key, "op": row.op, "layers": node.layers,
            "output": fmt_shape(row.shape), "params": f"{row.params:,}",
            "MACs": f"{row.macs:,}", "FLOPs": f"{row.flops:,}",
            "activations": binary(row.act_bytes)}), quote=True)
        fill = fills[metric][i]
        out.append(
            f'<g class="node" data-details="{details}" {data} tabindex="0">'
            f'<title>{html.escape(_tooltip(node))}</title>'
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


def render(graph: Any, analysis: Any, *, metric: str = "macs", depth: int = 1) -> str:
    """The whole page for `analysis` of `graph`, showing the view at `depth` first and
    colouring by `metric` (macs, params or activations)."""
    views: list[View] = []
    for d in depths(graph):  # a deeper view that merges nothing more is left out
        view = graph_view(graph, analysis, d)
        if views and len(view.nodes) == len(views[-1].nodes):
            if d == 0:
                views[-1] = view
            continue
        views.append(view)
    notes = list(note_lines(analysis))
    drawn = []
    for view in views:
        if len(view.nodes) > MAX_NODES:
            notes.append(f"note: the view with {len(view.nodes):,} nodes (depth "
                         f"{view.depth or 'all'}) is not drawn (limit {MAX_NODES:,}); the "
                         "coarser views are")
            continue
        drawn.append(view)
    if not any(v.depth == depth for v in drawn):
        depth = drawn[0].depth
    buttons, sections, legends = [], [], []
    for view in drawn:
        fills = {}
        for key, title, attr, fmt in METRICS:
            fills[key], low, high = colours([getattr(n.row, attr) for n in view.nodes])
            ends = (f"<span>{html.escape(fmt(low))}</span><span>{html.escape(fmt(high))}"
                    "</span>" if high else "<span>no node has any</span>")
            legends.append(f'<div class="legend" data-metric="{key}" data-depth="{view.depth}">'
                           f'<b>colour: {title} per node</b> (log scale; grey: none)'
                           f'<div class="bar"></div><div class="ends">{ends}</div></div>')
        markup, _, _ = svg(view, fills, metric)
        label = "every layer" if view.depth == 0 else f"depth {view.depth}"
        buttons.append(f'<button data-depth="{view.depth}">{label} '
                       f'({len(view.nodes):,} nodes)</button>')
        sections.append(f'<div class="view" data-depth="{view.depth}" '
                        f'data-nodes="{len(view.nodes)}">{markup}</div>')
    metric_buttons = "".join(f'<button data-metric="{k}">{html.escape(t)}</button>'
                             for k, t, _, _ in METRICS)
    totals = "".join(f"<tr><td>{html.escape(a)}</td><td>{html.escape(b)}</td></tr>"
                     for a, b in total_lines(analysis))
    stage_rows = "".join(
        f"<tr><td>{html.escape(r.name)}</td><td>{html.escape(r.op)}</td>"
        f"<td>{html.escape(fmt_shape(r.shape))}</td><td>{r.params:,}</td><td>{r.macs:,}</td>"
        f"<td>{html.escape(binary(r.act_bytes))}</td></tr>" for r in analysis.collapse(1))
    note_html = "".join(f"<p>{html.escape(n)}</p>" for n in notes)
    style = STYLE.replace("VIRIDIS", ",".join(VIRIDIS))
    description = f'<p class="sub">{html.escape(analysis.description)}</p>' \
        if analysis.description else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(analysis.name)} — cnncost report</title>"
        f"<style>{style}</style></head>"
        f'<body data-metric="{metric}" data-depth="{depth}">'
        f"<h1>{html.escape(analysis.name)}</h1>"
        f'<p class="sub">{html.escape(header_line(analysis))}</p>{description}'
        f'<div class="controls"><span>view:</span>{"".join(buttons)}'
        f"<span>colour by:</span>{metric_buttons}</div>"
        f'<div class="main"><div class="graph">{"".join(sections)}</div>'
        f'<div class="side">{"".join(legends)}<h3>selected node</h3>'
        '<table><tbody id="details"><tr><td>click a node</td><td></td></tr></tbody></table>'
        f"<h3>totals</h3><table>{totals}</table></div></div>"
        "<h3>per stage</h3><table class=\"stages\"><thead><tr><th>stage</th><th>op</th><th>output</th>"
        f"<th>params</th><th>MACs</th><th>activations</th></tr></thead><tbody>{stage_rows}"
        f"</tbody></table>{note_html}"
        "<p class=\"sub\">made by cnncost; layout by grandalf (Sugiyama); colours: viridis "
        "(colour-blind safe)</p>"
        f"<script>{SCRIPT}</script></body></html>\n")
