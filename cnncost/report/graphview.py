"""Collapsed views of an expanded graph: layers grouped by the first `depth` components of
their names, with the edges between groups, and each group's costs (the rows of
`Analysis.collapse(depth)`, so the figures are the table's)."""

from __future__ import annotations

from typing import Any, NamedTuple


class ViewNode(NamedTuple):
    key: str  # the group's name ("layer2.block1"; "input" for the model input)
    row: Any  # the collapsed Row: op ("group" for several ops), shape, params, macs, ...
    layers: int  # primitive layers in the group
    names: tuple[str, ...] = ()  # the primitive layers' names


class View(NamedTuple):
    depth: int  # 0: every layer
    nodes: list[ViewNode]
    edges: list[tuple[int, int]]  # (from node, to node) positions in `nodes`


def group_key(name: str, depth: int) -> str:
    return ".".join(name.split(".")[:depth]) if depth > 0 else name


def graph_view(graph: Any, analysis: Any, depth: int) -> View:
    """The view at `depth` (0: no grouping). Groups keep the order of their first layer;
    an edge joins two groups when a layer of one reads a layer of the other."""
    rows = {row.name: row for row in analysis.collapse(depth)}
    order: dict[str, int] = {}
    group_of: list[int] = []
    members: dict[str, list[str]] = {}
    for node in graph.nodes:
        key = group_key(node.name, depth) if node.index else node.name
        if key not in order:
            order[key] = len(order)
        members.setdefault(key, []).append(node.name)
        group_of.append(order[key])
    nodes = [ViewNode(key, rows[key], len(members[key]), tuple(members[key])) for key in order]
    edges: set[tuple[int, int]] = set()
    for node in graph.nodes:
        for source in node.inputs:
            a, b = group_of[source], group_of[node.index]
            if a != b:
                edges.add((a, b))
    return View(depth, nodes, sorted(edges))


def depths(graph: Any) -> list[int]:
    """The depths worth drawing: 1, 2, ... while grouping still merges layers, then 0."""
    deepest = max(len(n.name.split(".")) for n in graph.nodes)
    return [*range(1, deepest), 0]
