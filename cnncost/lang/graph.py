"""The expanded graph: what the expansion hands to the analysis, the builder and the exporters.

Plain data only: :class:`Node` is one primitive layer, :class:`Graph` the nodes in
topological order (the first is the model input) with the resolved variables.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..errors import Loc

Shape = tuple[int, ...]  # per sample: (C, H, W) for feature maps, (F,) for vectors


class Node(NamedTuple):
    """One primitive layer of the expanded graph."""

    index: int  # type: ignore[assignment]  # shadows tuple.index(), never called on a Node
    name: str  # hierarchical, e.g. "layer1.block1.conv1.conv"
    op: str  # registered op name ("input" for the model input)
    attrs: dict[str, Any]  # resolved field values (plus derived ones such as `pads`)
    inputs: tuple[int, ...]  # indices of input nodes
    shape: Shape | None  # output shape per sample; None when it could not be inferred
    loc: Loc  # in the user's spec file: the layer's line, or the call of the built-in block
    view: bool = False  # output shares its input's memory
    size: int = 0  # elements of the output per sample (0 when the shape is unknown)
    train_only: bool = False  # runs in training only (auxiliary heads): params, no eval work


class Graph(NamedTuple):
    """An expanded spec: nodes in topological order and the resolved variables."""

    name: str
    file: str
    nodes: list[Node]
    output: int
    vars: dict[str, Any]
    description: str = ""
    # what analyses of graphs of one structure share (the graphs a plan evaluates; None
    # otherwise): when tensors are made and freed, by training flag
    # (cnncost.cost.analysis.live_schedule), and the costs of layers by their fields
    shared: dict[Any, Any] | None = None
    # the nodes' attrs, shapes and sizes as lists, when the graph was made from them (a
    # plan's evaluation): the analysis reads them instead of the nodes. Never written to;
    # the same lists again mean the same evaluation again (a kept one).
    columns: tuple[list[dict[str, Any]], list[Shape], list[int]] | None = None

    @property
    def input_shape(self) -> Shape:
        shape = self.nodes[0].shape
        assert shape is not None  # noqa: S101  the input's shape is known or there is no graph
        return shape


__all__ = ["Graph", "Node", "Shape"]
