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
build is an error, never a silent substitute. A factory returns a :class:`Make`, the
module's class and keyword arguments: the builder instantiates it, `cnncost export`
writes it out as source. Where PyTorch has no module for a spec feature, one from
`cnncost.pytorch.torch_modules` supplies it exactly (uneven padding, channel layer norm, gates).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from .torch_import import torch
from torch import nn

from ..lang.graph import Graph, Node
from .torch_modules import (Add, CenterCrop, ChannelLayerNorm, ChannelShuffle, ChannelSlice,
                            Concat, GlobalPool, Mul, Normalization, Pad, PaddedAvgPool2d,
                            PaddedConv2d, PaddedMaxPool2d, PartialBatchNorm, Rescaling, Scale,
                            attach)


class Make(NamedTuple):
    """How to create one layer's module: its class and keyword arguments."""

    cls: type
    kwargs: dict

    def create(self) -> nn.Module:
        return self.cls(**self.kwargs)


Factory = Callable[[Node, list], Make]
BUILDERS: dict[str, Factory] = {}


class BuildError(ValueError):
    """The graph cannot be built as a PyTorch model (a bug or an unsupported op)."""


def builds(*ops: str) -> Callable[[Factory], Factory]:
    """Register a factory ``(node, input shapes) -> Make`` for `ops`."""

    def wrap(factory: Factory) -> Factory:
        for op in ops:
            if op in BUILDERS:
                raise RuntimeError(f"builder for {op!r} registered twice")
            BUILDERS[op] = factory
        return factory

    return wrap


# ----------------------------------------------------------------- factories
def _pair(value: Any) -> tuple:
    return tuple(value)


def _symmetric(pads: tuple) -> bool:
    return pads[0] == pads[1] and pads[2] == pads[3]


def _conv(c_in: int, c_out: int, a: Mapping, groups: int) -> Make:
    pads = tuple(a["pads"])
    common = dict(in_channels=c_in, out_channels=c_out, kernel_size=_pair(a["kernel"]),
                  stride=_pair(a["stride"]), dilation=_pair(a["dilation"]), groups=groups,
                  bias=a["bias"])
    if _symmetric(pads):
        return Make(nn.Conv2d, {**common, "padding": (pads[0], pads[2])})
    return Make(PaddedConv2d, {**common, "pads": pads})


@builds("conv", "pointwise")
def _build_conv(node: Node, ins: list) -> Make:
    return _conv(ins[0][0], node.attrs["out"], node.attrs, node.attrs["groups"])


@builds("depthwise")
def _build_depthwise(node: Node, ins: list) -> Make:
    c = ins[0][0]
    return _conv(c, c * node.attrs["multiplier"], node.attrs, c)


@builds("conv_transpose")
def _build_conv_transpose(node: Node, ins: list) -> Make:
    a = node.attrs
    return Make(nn.ConvTranspose2d, dict(
        in_channels=ins[0][0], out_channels=a["out"], kernel_size=_pair(a["kernel"]),
        stride=_pair(a["stride"]), padding=_pair(a["padding"]),
        output_padding=_pair(a["output_padding"]), groups=a["groups"], bias=a["bias"],
        dilation=_pair(a["dilation"])))


@builds("linear")
def _build_linear(node: Node, ins: list) -> Make:
    return Make(nn.Linear, dict(in_features=ins[0][0], out_features=node.attrs["out"],
                                bias=node.attrs["bias"]))


def _native_pool_padding(a: Mapping) -> tuple | None:
    """(pad_h, pad_w) if PyTorch's own pooling padding reproduces `pads`, else None."""
    pads, (kh, kw) = a["pads"], a["kernel"]
    if _symmetric(pads) and pads[0] <= kh // 2 and pads[2] <= kw // 2:
        return (pads[0], pads[2])
    return None


@builds("maxpool")
def _build_maxpool(node: Node, ins: list) -> Make:
    a = node.attrs
    common = dict(kernel_size=_pair(a["kernel"]), stride=_pair(a["stride"]),
                  dilation=_pair(a["dilation"]), ceil_mode=a["ceil_mode"])
    native = _native_pool_padding(a)
    if native is not None:
        return Make(nn.MaxPool2d, {**common, "padding": native})
    return Make(PaddedMaxPool2d, {**common, "pads": tuple(a["pads"])})


@builds("avgpool")
def _build_avgpool(node: Node, ins: list) -> Make:
    a = node.attrs
    common = dict(kernel_size=_pair(a["kernel"]), stride=_pair(a["stride"]),
                  ceil_mode=a["ceil_mode"], count_include_pad=a["count_include_pad"])
    native = _native_pool_padding(a)
    if native is not None:
        return Make(nn.AvgPool2d, {**common, "padding": native})
    return Make(PaddedAvgPool2d, {**common, "pads": tuple(a["pads"])})


@builds("global_avgpool", "global_maxpool")
def _build_global(node: Node, ins: list) -> Make:
    return Make(GlobalPool, dict(mode="avg" if node.op == "global_avgpool" else "max",
                                 keepdims=node.attrs["keepdims"]))


@builds("adaptive_avgpool", "adaptive_maxpool")
def _build_adaptive(node: Node, ins: list) -> Make:
    cls = nn.AdaptiveAvgPool2d if node.op == "adaptive_avgpool" else nn.AdaptiveMaxPool2d
    return Make(cls, dict(output_size=_pair(node.attrs["output"])))


@builds("batchnorm")
def _build_batchnorm(node: Node, ins: list) -> Make:
    a = node.attrs
    common = dict(num_features=ins[0][0], eps=a["eps"], momentum=a["momentum"])
    if a["affine"] and not (a["center"] and a["scale"]):  # Keras: gamma or beta alone
        return Make(PartialBatchNorm, {**common, "center": a["center"], "scale": a["scale"]})
    cls = nn.BatchNorm2d if len(ins[0]) == 3 else nn.BatchNorm1d
    return Make(cls, {**common, "affine": a["affine"]})


@builds("layernorm")
def _build_layernorm(node: Node, ins: list) -> Make:
    cls = ChannelLayerNorm if len(ins[0]) == 3 else nn.LayerNorm
    return Make(cls, dict(normalized_shape=ins[0][0], eps=node.attrs["eps"],
                          elementwise_affine=node.attrs["affine"]))


@builds("slice")
def _build_slice(node: Node, ins: list) -> Make:
    return Make(ChannelSlice, dict(start=node.attrs["start"], stop=node.attrs["stop"]))


@builds("pad")
def _build_pad(node: Node, ins: list) -> Make:
    a = node.attrs
    return Make(Pad, dict(pads=tuple(a["padding"]), channels=tuple(a["channels"]),
                          mode=a["mode"], value=a["value"]))


@builds("crop")
def _build_crop(node: Node, ins: list) -> Make:
    return Make(CenterCrop, dict(size=_pair(node.attrs["size"])))


@builds("upsample")
def _build_upsample(node: Node, ins: list) -> Make:
    a = node.attrs
    kwargs: dict[str, Any] = {"mode": a["mode"]}
    if a["size"] is not None:
        kwargs["size"] = _pair(a["size"])
    else:  # integer factors: the output is exactly H * s, as the analysis says
        kwargs["scale_factor"] = tuple(float(f) for f in a["scale"])
    if a["mode"] == "bilinear":
        kwargs["align_corners"] = a["align_corners"]
    return Make(nn.Upsample, kwargs)


@builds("scale")
def _build_scale(node: Node, ins: list) -> Make:
    return Make(Scale, dict(channels=ins[0][0], init=node.attrs["init"], rank=len(ins[0])))


@builds("rescaling")
def _build_rescaling(node: Node, ins: list) -> Make:
    return Make(Rescaling, dict(scale=node.attrs["scale"], offset=node.attrs["offset"]))


@builds("normalization")
def _build_normalization(node: Node, ins: list) -> Make:
    return Make(Normalization, dict(channels=ins[0][0], rank=len(ins[0])))


# op -> (class, {constructor argument: attribute of the node, or a function of node
# and input shapes})
_SIMPLE: dict[str, tuple[type, dict[str, Callable[[Node, list], Any]]]] = {
    "relu": (nn.ReLU, {}),
    "relu6": (nn.ReLU6, {}),
    "leaky_relu": (nn.LeakyReLU, {"negative_slope": lambda n, i: n.attrs["slope"]}),
    "prelu": (nn.PReLU, {"num_parameters": lambda n, i: i[0][0] if n.attrs["per_channel"]
                         else 1}),
    "elu": (nn.ELU, {"alpha": lambda n, i: n.attrs["alpha"]}),
    "gelu": (nn.GELU, {}),
    "silu": (nn.SiLU, {}),
    "sigmoid": (nn.Sigmoid, {}),
    "hardsigmoid": (nn.Hardsigmoid, {}),
    "hardswish": (nn.Hardswish, {}),
    "tanh": (nn.Tanh, {}),
    "softmax": (nn.Softmax, {"dim": lambda n, i: 1}),
    "identity": (nn.Identity, {}),
    "dropout": (nn.Dropout, {"p": lambda n, i: n.attrs["p"]}),
    "flatten": (nn.Flatten, {}),
    "channel_shuffle": (ChannelShuffle, {"groups": lambda n, i: n.attrs["groups"]}),
    "add": (Add, {}),
    "mul": (Mul, {}),
    "concat": (Concat, {}),
}


def _simple(cls: type, args: dict) -> Factory:
    def factory(node: Node, ins: list) -> Make:
        return Make(cls, {key: get(node, ins) for key, get in args.items()})

    return factory


for _op, (_cls, _args) in _SIMPLE.items():
    builds(_op)(_simple(_cls, _args))


class OpaquePlaceholder(nn.Module):
    """Stands in for an `opaque` layer (a module imported without a spec equivalent) so
    that `cnncost verify` can check everything else: it holds as many parameters and
    buffers as the original and returns zeros of its output shape. It does NOT compute
    what the original computes, so a model holding one is built only when asked
    (`allow_opaque`), never exported and never timed."""

    def __init__(self, shape: tuple, params: int, buffers: int) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.weight = nn.Parameter(torch.zeros(params)) if params else None
        self.register_buffer("state", torch.zeros(buffers) if buffers else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros((x.shape[0], *self.shape))


@builds("opaque")
def _build_opaque(node: Node, ins: list) -> Make:
    a = node.attrs
    return Make(OpaquePlaceholder, dict(shape=tuple(a["shape"]), params=a["params"],
                                        buffers=a["buffers"]))


# ----------------------------------------------------------------- the model
def make_for(node: Node, nodes: list) -> Make:
    """How to create `node`'s module; BuildError if no factory is registered for its op."""
    factory = BUILDERS.get(node.op)
    if factory is None:
        raise BuildError(f"{node.name}: the PyTorch builder has no op {node.op!r}")
    return factory(node, [nodes[i].shape for i in node.inputs])


def last_uses(graph: Graph) -> list[int]:
    """Node index -> the index of the last node that reads its output: its own index when
    none does, past the last node for the model output (alive to the end)."""
    nodes = graph.nodes
    last_use = list(range(len(nodes)))
    for node in nodes:
        for i in node.inputs:
            last_use[i] = max(last_use[i], node.index)
    last_use[graph.output] = len(nodes)
    return last_use


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
        last_use = last_uses(graph)
        # plan: (node index, module, input indices, indices whose last use this is,
        # runs in training only)
        self._plan: list[tuple[int, nn.Module, tuple, tuple, bool]] = []
        seen: set[str] = set()
        for node in nodes[1:]:
            if node.name in seen:
                raise BuildError(f"two layers are named {node.name!r}")
            seen.add(node.name)
            module = make_for(node, nodes).create()
            attach(self, node.name, module)
            done = tuple(i for i in dict.fromkeys(node.inputs) if last_use[i] == node.index)
            if last_use[node.index] == node.index:  # never read: drop it at once
                done += (node.index,)
            self._plan.append((node.index, module, node.inputs, done, node.train_only))
        self._output = graph.output
        self.layer_names = [node.name for node in nodes[1:]]
        # train_only layers (auxiliary heads) run in training; True runs them in eval too
        self.run_train_only = False

    def layers(self) -> list[tuple[str, nn.Module]]:
        """(name, module) of every layer in execution order."""
        return [(name, step[1]) for name, step in zip(self.layer_names, self._plan, strict=True)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values: list[Any] = [None] * (len(self._plan) + 1)
        values[0] = x
        for index, module, inputs, done, train_only in self._plan:
            if not train_only or self.training or self.run_train_only:  # aux heads: training
                values[index] = module(*[values[i] for i in inputs])
            for i in done:
                values[i] = None
        return values[self._output]


def build_model(graph: Graph, *, device: Any = None, dtype: Any = None,
                allow_opaque: bool = False) -> SpecModel:
    """The SpecModel of an expanded graph, created directly on `device` (e.g. "meta").

    A graph with `opaque` layers cannot be built as the network it stands for: SpecError
    at those layers, unless `allow_opaque` (then each is an OpaquePlaceholder)."""
    if not allow_opaque:
        from ..api import refuse_opaque

        refuse_opaque(graph, "built in PyTorch")
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
    from ..api import build_graph

    graph = build_graph(spec, input=input, set=set, variant=variant)
    return build_model(graph, device=device, dtype=dtype)
