"""Node positions for a view, from grandalf's layered (Sugiyama) layout: layers of the
graph in rows from top to bottom, edge crossings reduced. grandalf is pure Python (the
optional extra `cnncost[report]`); cnncost has no layout engine of its own."""

from __future__ import annotations

from typing import Any

from ..errors import Loc, Problem, SpecError

NODE_W, NODE_H = 170, 38  # the box of one node, in SVG units
INSTALL = ("cnncost report needs the graph layout library grandalf: pip install "
           "'cnncost[report]' (or pip install grandalf)")


def require_grandalf() -> Any:
    try:
        import grandalf.graphs
        import grandalf.layouts
    except ImportError:
        raise SpecError([Problem(Loc(""), "", INSTALL)]) from None
    return grandalf


class _Box:
    """What grandalf reads of a vertex: its width and height; it writes `xy`."""

    def __init__(self) -> None:
        self.w, self.h = NODE_W, NODE_H
        self.xy = (0.0, 0.0)


def layout(count: int, edges: list[tuple[int, int]]) -> list[tuple[float, float]]:
    """(x, y) of each node's centre, the graph's components side by side, every
    coordinate >= 0."""
    grandalf = require_grandalf()
    vertices = [grandalf.graphs.Vertex(i) for i in range(count)]
    for vertex in vertices:
        vertex.view = _Box()
    graph = grandalf.graphs.Graph(vertices, [grandalf.graphs.Edge(vertices[a], vertices[b])
                                             for a, b in edges])
    positions: list[tuple[float, float]] = [(0.0, 0.0)] * count
    offset = 0.0
    for component in graph.C:
        sugiyama = grandalf.layouts.SugiyamaLayout(component)
        sugiyama.xspace, sugiyama.yspace = 30, 36
        sugiyama.init_all()
        sugiyama.draw()
        xs = [v.view.xy[0] for v in component.sV]
        left = min(xs) - NODE_W / 2
        for v in component.sV:
            x, y = v.view.xy
            positions[v.data] = (x - left + offset, y)
        offset += max(xs) - min(xs) + NODE_W + 40
    top = min((y for _, y in positions), default=0.0) - NODE_H / 2
    return [(x, y - top) for x, y in positions]
