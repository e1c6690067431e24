"""Pass 4b: build the PyTorch model of an expanded graph (imports torch; the analytic path never
imports this module).

`build(spec)` returns a :class:`SpecModel`, an ordinary ``torch.nn.Module`` whose
module names are the analytic layer names: ``model.get_submodule("layer1.block1.conv1.conv")``
is the Conv2d that `cnncost analyze` lists as ``layer1.block1.conv1.conv``, so
``state_dict`` keys read ``layer1.block1.conv1.conv.weight``. Name prefixes become plain
container modules; the forward pass runs the graph's nodes in order and frees each
activation after its last use. The model trains like any other (default PyTorch
initialization).

One factory per primitive op, registered in BUILDERS under the op registry's names;
a test checks that both registries cover the same ops, so an op the builder cannot
build is an error, never a silent substitute. Where PyTorch has no native form of a
spec feature, a small module supplies it exactly: uneven padding (Keras ``same`` with
an odd total) pads explicitly before the conv or pool (-inf for max pooling; for average
pooling that excludes padding, sums divided by the count of real inputs), layer norm
over the channels of a feature map, a per-channel gate for ``mul``, channel shuffle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .expand import Graph, Node

Factory = Callable[[Node, list], nn.Module]
BUILDERS: dict[str, Factory] = {}


class BuildError(ValueError):
    """The graph cannot be built as a PyTorch model (a bug or an unsupported op)."""


def builds(*ops: str) -> Callable[[Factory], Factory]:
    """Register a factory ``(node, input shapes) -> nn.Module`` for `ops`."""

    def wrap(factory: Factory) -> Factory:
        for op in ops:
            if op in BUILDERS:
                raise RuntimeError(f"builder for {op!r} registered twice")
            BUILDERS[op] = factory
        return factory

    return wrap


# ----------------------------------------------------------------- helper modules
def _torch_pad(pads: tuple) -> tuple:
    """(top, bottom, left, right) -> F.pad order (left, right, top, bottom)."""
    top, bottom, left, right = pads
    return (left, right, top, bottom)


class PaddedConv2d(nn.Conv2d):
    """Conv2d with explicit, possibly uneven padding (Keras ``same``) applied first."""

    def __init__(self, *args: Any, pads: tuple, **kwargs: Any) -> None:
        super().__init__(*args, padding=0, **kwargs)
        self.pads = tuple(pads)  # (top, bottom, left, right)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(F.pad(x, _torch_pad(self.pads)), self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, pads={self.pads}"


class PaddedMaxPool2d(nn.MaxPool2d):
    """MaxPool2d after explicit -inf padding (uneven, or more than PyTorch allows)."""

    def __init__(self, *args: Any, pads: tuple, **kwargs: Any) -> None:
        super().__init__(*args, padding=0, **kwargs)
        self.pads = tuple(pads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, _torch_pad(self.pads), value=float("-inf")))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, pads={self.pads}"


class PaddedAvgPool2d(nn.AvgPool2d):
    """AvgPool2d after explicit zero padding (uneven, or more than PyTorch allows).

    With ``count_include_pad`` the padding counts in every window's divisor, as in
    PyTorch; without it (Keras ``same``), each window's sum is divided by the number of
    real inputs it covers.
    """

    def __init__(self, *args: Any, pads: tuple, count_include_pad: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(*args, padding=0, count_include_pad=True, **kwargs)
        self.pads = tuple(pads)
        self.include_pad = count_include_pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = _torch_pad(self.pads)
        if self.include_pad:
            return super().forward(F.pad(x, pad))
        window = dict(kernel_size=self.kernel_size, stride=self.stride, ceil_mode=self.ceil_mode,
                      divisor_override=1)
        sums = F.avg_pool2d(F.pad(x, pad), **window)
        ones = torch.ones_like(x[:1, :1])
        counts = F.avg_pool2d(F.pad(ones, pad), **window)
        return sums / counts

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, pads={self.pads}, count_include_pad={self.include_pad}"


class GlobalPool(nn.Module):
    """Mean or max over all positions of each channel; C x 1 x 1, or C with keepdims off."""

    def __init__(self, mode: str, keepdims: bool) -> None:
        super().__init__()
        self.mode, self.keepdims = mode, keepdims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.adaptive_avg_pool2d(x, 1) if self.mode == "avg" else F.adaptive_max_pool2d(x, 1)
        return y if self.keepdims else y.flatten(1)

    def extra_repr(self) -> str:
        return f"mode={self.mode}, keepdims={self.keepdims}"


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels at each position of an N x C x H x W map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ChannelShuffle(nn.Module):
    """Interleave channels across `groups` (ShuffleNet), as a view/transpose/reshape."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class Add(nn.Module):
    """Elementwise sum of equal-shaped inputs."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


def _broadcastable(x: torch.Tensor, rank: int) -> torch.Tensor:
    """A per-channel gate (N x C) as N x C x 1 x 1 against maps of `rank` dims."""
    return x.reshape(*x.shape, *([1] * (rank - x.dim())))


class Mul(nn.Module):
    """Elementwise product; a C x 1 x 1 (or C) gate scales each channel of a map."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        rank = max(x.dim() for x in xs)
        out = _broadcastable(xs[0], rank)
        for x in xs[1:]:
            out = out * _broadcastable(x, rank)
        return out


class Concat(nn.Module):
    """Concatenation along channels."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=1)


class Group(nn.Module):
    """A name prefix shared by several layers (a block, stage or fused conv group).

    It only holds submodules; the model's forward pass calls the layers directly.
    """

    def forward(self, *_: Any) -> None:
        raise RuntimeError("a cnncost Group only holds layers; call the SpecModel instead")


# ----------------------------------------------------------------- factories
def _symmetric(pads: tuple) -> bool:
    return pads[0] == pads[1] and pads[2] == pads[3]


def _conv(c_in: int, c_out: int, a: Mapping, groups: int) -> nn.Module:
    pads = a["pads"]
    common = dict(kernel_size=a["kernel"], stride=a["stride"], dilation=a["dilation"],
                  groups=groups, bias=a["bias"])
    if _symmetric(pads):
        return nn.Conv2d(c_in, c_out, padding=(pads[0], pads[2]), **common)
    return PaddedConv2d(c_in, c_out, pads=pads, **common)


@builds("conv", "pointwise")
def _build_conv(node: Node, ins: list) -> nn.Module:
    return _conv(ins[0][0], node.attrs["out"], node.attrs, node.attrs["groups"])


@builds("depthwise")
def _build_depthwise(node: Node, ins: list) -> nn.Module:
    c = ins[0][0]
    return _conv(c, c * node.attrs["multiplier"], node.attrs, c)


@builds("conv_transpose")
def _build_conv_transpose(node: Node, ins: list) -> nn.Module:
    a = node.attrs
    return nn.ConvTranspose2d(ins[0][0], a["out"], a["kernel"], a["stride"], a["padding"],
                              a["output_padding"], a["groups"], a["bias"], a["dilation"])


@builds("linear")
def _build_linear(node: Node, ins: list) -> nn.Module:
    return nn.Linear(ins[0][0], node.attrs["out"], bias=node.attrs["bias"])


def _native_pool_padding(a: Mapping) -> tuple | None:
    """(pad_h, pad_w) if PyTorch's own pooling padding reproduces `pads`, else None."""
    pads, (kh, kw) = a["pads"], a["kernel"]
    if _symmetric(pads) and pads[0] <= kh // 2 and pads[2] <= kw // 2:
        return (pads[0], pads[2])
    return None


@builds("maxpool")
def _build_maxpool(node: Node, ins: list) -> nn.Module:
    a = node.attrs
    common = dict(kernel_size=a["kernel"], stride=a["stride"], dilation=a["dilation"],
                  ceil_mode=a["ceil_mode"])
    native = _native_pool_padding(a)
    if native is not None:
        return nn.MaxPool2d(padding=native, **common)
    return PaddedMaxPool2d(pads=a["pads"], **common)


@builds("avgpool")
def _build_avgpool(node: Node, ins: list) -> nn.Module:
    a = node.attrs
    common = dict(kernel_size=a["kernel"], stride=a["stride"], ceil_mode=a["ceil_mode"],
                  count_include_pad=a["count_include_pad"])
    native = _native_pool_padding(a)
    if native is not None:
        return nn.AvgPool2d(padding=native, **common)
    return PaddedAvgPool2d(pads=a["pads"], **common)


@builds("global_avgpool", "global_maxpool")
def _build_global(node: Node, ins: list) -> nn.Module:
    return GlobalPool("avg" if node.op == "global_avgpool" else "max", node.attrs["keepdims"])


@builds("adaptive_avgpool")
def _build_adaptive_avg(node: Node, ins: list) -> nn.Module:
    return nn.AdaptiveAvgPool2d(node.attrs["output"])


@builds("adaptive_maxpool")
def _build_adaptive_max(node: Node, ins: list) -> nn.Module:
    return nn.AdaptiveMaxPool2d(node.attrs["output"])


@builds("batchnorm")
def _build_batchnorm(node: Node, ins: list) -> nn.Module:
    kind = nn.BatchNorm2d if len(ins[0]) == 3 else nn.BatchNorm1d
    return kind(ins[0][0], affine=node.attrs["affine"])


@builds("layernorm")
def _build_layernorm(node: Node, ins: list) -> nn.Module:
    kind = ChannelLayerNorm if len(ins[0]) == 3 else nn.LayerNorm
    return kind(ins[0][0], elementwise_affine=node.attrs["affine"])


_ACTIVATIONS: dict[str, Callable[[Node, list], nn.Module]] = {
    "relu": lambda n, i: nn.ReLU(),
    "relu6": lambda n, i: nn.ReLU6(),
    "leaky_relu": lambda n, i: nn.LeakyReLU(n.attrs["slope"]),
    "prelu": lambda n, i: nn.PReLU(i[0][0] if n.attrs["per_channel"] else 1),
    "elu": lambda n, i: nn.ELU(n.attrs["alpha"]),
    "gelu": lambda n, i: nn.GELU(),
    "silu": lambda n, i: nn.SiLU(),
    "sigmoid": lambda n, i: nn.Sigmoid(),
    "hardsigmoid": lambda n, i: nn.Hardsigmoid(),
    "hardswish": lambda n, i: nn.Hardswish(),
    "tanh": lambda n, i: nn.Tanh(),
    "softmax": lambda n, i: nn.Softmax(dim=1),
}
for _name, _factory in _ACTIVATIONS.items():
    builds(_name)(_factory)

_SIMPLE: dict[str, Callable[[Node, list], nn.Module]] = {
    "identity": lambda n, i: nn.Identity(),
    "dropout": lambda n, i: nn.Dropout(n.attrs["p"]),
    "flatten": lambda n, i: nn.Flatten(),
    "channel_shuffle": lambda n, i: ChannelShuffle(n.attrs["groups"]),
    "add": lambda n, i: Add(),
    "mul": lambda n, i: Mul(),
    "concat": lambda n, i: Concat(),
}
for _name, _factory in _SIMPLE.items():
    builds(_name)(_factory)


# ----------------------------------------------------------------- the model
class SpecModel(nn.Module):
    """The PyTorch model of a cnncost spec; module names are the analytic layer names.

    `layer_names` lists the layers in execution order (the graph's nodes, input
    excluded); `input_shape` is the per-sample input shape the spec was expanded for.
    """

    def __init__(self, graph: Graph) -> None:
        super().__init__()
        self.spec_name = graph.name
        self.input_shape = tuple(graph.input_shape)
        nodes = graph.nodes
        last_use = list(range(len(nodes)))
        for node in nodes:
            for i in node.inputs:
                last_use[i] = max(last_use[i], node.index)
        last_use[graph.output] = len(nodes)
        # plan: (node index, module, input indices, indices whose last use this is)
        self._plan: list[tuple[int, nn.Module, tuple, tuple]] = []
        seen: set[str] = set()
        for node in nodes[1:]:
            if node.name in seen:
                raise BuildError(f"two layers are named {node.name!r}")
            seen.add(node.name)
            factory = BUILDERS.get(node.op)
            if factory is None:
                raise BuildError(f"{node.name}: the PyTorch builder has no op {node.op!r}")
            module = factory(node, [nodes[i].shape for i in node.inputs])
            self._attach(node.name, module)
            done = tuple(i for i in dict.fromkeys(node.inputs) if last_use[i] == node.index)
            self._plan.append((node.index, module, node.inputs, done))
        self._output = graph.output
        self.layer_names = [node.name for node in nodes[1:]]

    def _attach(self, name: str, module: nn.Module) -> None:
        """Place `module` at dotted `name`, creating Group containers for the prefixes.

        Names go into ``_modules`` directly: a layer may be called ``add`` or ``train``,
        which ``add_module`` would refuse as clashing with an nn.Module attribute.
        """
        parent: nn.Module = self
        *prefixes, leaf = name.split(".")
        for part in prefixes:
            child = parent._modules.get(part)
            if child is None:
                child = Group()
                parent._modules[part] = child
            parent = child
        if leaf in parent._modules:
            # A group of this name already exists (layers named "a.b" before "a"): the
            # layer takes its place and keeps its children.
            module._modules.update(parent._modules[leaf]._modules)
        parent._modules[leaf] = module

    def layers(self) -> list[tuple[str, nn.Module]]:
        """(name, module) of every layer in execution order."""
        return [(name, step[1]) for name, step in zip(self.layer_names, self._plan, strict=True)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values: list[Any] = [None] * (len(self._plan) + 1)
        values[0] = x
        for index, module, inputs, done in self._plan:
            values[index] = module(*[values[i] for i in inputs])
            for i in done:
                values[i] = None
        return values[self._output]


def build_model(graph: Graph, *, device: Any = None, dtype: Any = None) -> SpecModel:
    """The SpecModel of an expanded graph, created directly on `device` (e.g. "meta")."""
    if device is not None:
        with torch.device(device):
            model = SpecModel(graph)
    else:
        model = SpecModel(graph)
    if dtype is not None:
        model = model.to(dtype=dtype)
    return model


def build(spec: Any, *, input: tuple | str | None = None, set: Mapping | None = None,
          variant: str | None = None, device: Any = None, dtype: Any = None) -> SpecModel:
    """Build the PyTorch model of a spec (path, bundled name, mapping or Spec).

    The model's module names are the layer names of `cnncost.analyze` on the same
    arguments. Raises SpecError on an invalid spec.
    """
    from .api import build_graph

    graph = build_graph(spec, input=input, set=set, variant=variant)
    return build_model(graph, device=device, dtype=dtype)
