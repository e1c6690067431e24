"""The receptive field measured on the built model: the gradient check behind `verify`.

With positive weights, positive inputs and running statistics that keep activations
positive, every input pixel inside an output's receptive field gets a non-zero
gradient from that output and no pixel outside does. So: build the model in float64 on
the CPU, make max pooling average pooling of the same geometry (a max passes gradient to
one tap only), backpropagate from the last feature map (channels weighted unequally) at its
centre and at its first position, and take the extent of the non-zero input gradient.
It must equal the analytic field of that position (cnncost.cost.receptive.position_field:
the closed forms per op, with borders and padding taken exactly), and at the centre of
a map whose field fits in the input, the per-layer receptive field `analyze` reports.
"""

from __future__ import annotations

from typing import Any

from .torch_import import torch
from torch import nn

from ..cost.receptive import Axis, geometry, position_field
from ..lang.graph import Graph
from .builder import build_model
from .torch_modules import GlobalPool, PaddedAvgPool2d, PaddedMaxPool2d

Extent = tuple[int, int, int, int]  # first row, last row, first column, last column


def _averaging(module: nn.Module) -> nn.Module | None:
    """The average-pooling twin of a max pooling module (same windows), None for others;
    a dilated max pool has no twin (its windows have holes) and stops the check."""
    if isinstance(module, PaddedMaxPool2d):
        if module.dilation not in (1, (1, 1)):
            raise ValueError("dilated max pooling")
        return PaddedAvgPool2d(kernel_size=module.kernel_size, stride=module.stride,
                               ceil_mode=module.ceil_mode, pads=module.pads)
    if isinstance(module, nn.MaxPool2d):
        if module.dilation not in (1, (1, 1)):
            raise ValueError("dilated max pooling")
        return nn.AvgPool2d(module.kernel_size, module.stride, module.padding,
                            ceil_mode=module.ceil_mode)
    if isinstance(module, nn.AdaptiveMaxPool2d):
        return nn.AdaptiveAvgPool2d(module.output_size)
    if isinstance(module, GlobalPool) and module.mode == "max":
        return GlobalPool("avg", module.keepdims)
    return None


def _positive(model: nn.Module) -> None:
    """Positive weights that keep activations small: kernels sum to about 1 per output,
    scales below 1, tiny biases, so no ReLU6 or hard activation saturates (a saturated
    unit passes no gradient) however deep the model."""
    generator = torch.Generator().manual_seed(0)

    def rand(tensor: Any) -> Any:
        return torch.rand(tensor.shape, generator=generator, dtype=tensor.dtype) + 0.5

    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.dtype.is_floating_point:
                continue
            if name.endswith(("running_mean", "mean")):
                tensor.zero_()
            elif name.endswith(("running_var", "variance")):
                tensor.copy_(rand(tensor))
            elif tensor.dim() >= 2 and tensor[0].numel() > 1:
                tensor.copy_(rand(tensor) / tensor[0].numel())
            elif name.endswith("bias"):
                tensor.copy_(rand(tensor) * 1e-3)
            else:
                tensor.copy_(rand(tensor) * 0.5)


def _clipped(a: Axis, position: int, size: int) -> tuple[int, int]:
    lo = a.start + position * a.stride
    hi = a.end + position * a.stride
    return max(0, int(lo)), min(size - 1, int(hi))


def field_check(graph: Graph) -> tuple[tuple[Extent, ...], tuple[Extent, ...], str] | None:
    """(analytic extents, measured extents, the layer checked) at the centre and the first
    position of the last feature map; None when there is nothing to check (no feature map,
    a fractional stride, a dilated max pool)."""
    fields = geometry(graph)
    nodes = graph.nodes
    targets = [n for n, g in zip(nodes, fields, strict=True) if g is not None and not g.whole
               and n.shape is not None and len(n.shape) == 3 and n.index > 0]
    if not targets:
        return None
    target = targets[-1]
    for node in nodes[1:target.index + 1]:
        shape = nodes[node.inputs[0]].shape if node.inputs else None
        negative = ((node.op == "rescaling" and (node.attrs["scale"] < 0
                                                 or node.attrs["offset"] < 0))
                    or (node.op == "pad" and node.attrs["value"] < 0))
        if negative or node.op == "layernorm" or (node.op == "softmax" and shape is not None
                                                  and shape[0] == 1):
            # negative values (layer norm subtracts the mean; a negative offset or fill),
            # which a following ReLU stops, or a constant function (layer norm over one
            # or two channels, softmax over one): the gradient would understate the
            # field, so it is not checked.
            return None
    geo = fields[target.index]
    assert geo is not None  # noqa: S101 - chosen among the nodes that have one
    model = build_model(graph, device=torch.device("cpu"), dtype=torch.float64).eval()
    model.run_train_only = True
    try:
        for step, (index, module, inputs, done, train_only) in enumerate(model._plan):
            twin = _averaging(module)
            if twin is not None:
                model._plan[step] = (index, twin.to(torch.float64), inputs, done, train_only)
    except ValueError:
        return None
    _positive(model)
    seen: dict[str, Any] = {}
    module = dict(model.layers())[target.name]
    handle = module.register_forward_hook(lambda m, i, o: seen.__setitem__("y", o))
    _, height, width = graph.input_shape
    # two copies of one positive input: copy k is read back from position k
    x = ((torch.rand(1, *graph.input_shape, dtype=torch.float64,
                     generator=torch.Generator().manual_seed(1)) + 0.5) * 1e-2).repeat(
        2, 1, 1, 1).requires_grad_(True)
    try:
        model(x)
    finally:
        handle.remove()
    y = seen["y"]
    oh, ow = y.shape[-2:]
    positions = ((oh // 2, ow // 2), (0, 0))
    # channels weighted unequally: a plain sum of a softmax over channels is constant
    weights = torch.rand(y.shape[1], dtype=torch.float64,
                         generator=torch.Generator().manual_seed(2)) + 0.5
    sum((y[k, :, ph, pw] * weights).sum() for k, (ph, pw) in enumerate(positions)).backward()
    assert x.grad is not None  # noqa: S101 - x requires grad
    if not x.grad.any():  # the map does not depend on the input (a layer norm over one
        return None  # channel is constant): nothing to measure
    analytic, measured = [], []
    for k, (ph, pw) in enumerate(positions):
        live = x.grad[k].abs().sum(0) != 0
        rows = live.any(1).nonzero().flatten().tolist()
        cols = live.any(0).nonzero().flatten().tolist()
        measured.append((rows[0], rows[-1], cols[0], cols[-1]) if rows else (-1, -1, -1, -1))
        rows_a, cols_a = position_field(graph, target.index, (ph, pw))
        empty = rows_a[0] > rows_a[1] or cols_a[0] > cols_a[1]  # it reads padding only
        analytic.append((-1, -1, -1, -1) if empty else (*rows_a, *cols_a))
    return tuple(analytic), tuple(measured), target.name


__all__ = ["field_check"]
