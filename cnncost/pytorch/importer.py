"""`cnncost import`: a PyTorch model as a cnncost spec.

The model is traced symbolically with torch.fx, its tensor shapes propagated with one
example input, and every node mapped to a spec layer by a registry of rules (module
classes, functions and methods). A conv followed by its only user, a batch norm (and an
activation), becomes one layer with `norm:` and `act:`. Layer names follow the module
paths (`layer1.0.conv1` -> `layer1_0_conv1`); a layer that does not read the previous one
names its input with `from:`; merges name theirs with `inputs:`. Nothing is dropped
silently: a node without a rule stops the import with every such node listed. The spec
is then analyzed and compared with what torch counts (params, buffers, MACs by
FlopCounterMode, output shape); a difference is an error, never a written file.
"""

from __future__ import annotations

import importlib
import importlib.util
import operator
import sys
from pathlib import Path
from typing import Any, NamedTuple
from collections.abc import Callable, Sequence

from ..errors import Loc, Problem, SpecError
from ..importing import (batchnorm_defaults, identifier, shared_batchnorm, unique,
                         unsupported_list)
from .importblocks import blockify, merge_alike
from .torch_import import torch

nn = torch.nn
F = torch.nn.functional


def _fail(message: str, source: str = "") -> SpecError:
    return SpecError([Problem(Loc(source), "", message)])


# ----------------------------------------------------------------------- loading
def load_model(source: str) -> Any:
    """`FILE.py:CALLABLE` or `package.module:CALLABLE` -> an nn.Module in eval mode (the
    callable returns a module, or is a module class taking no arguments). This runs the
    user's own model code, which is what they asked for."""
    path, sep, name = source.rpartition(":")
    if not sep or not path or not name:
        raise _fail(f"give the model as FILE.py:CALLABLE or package.module:CALLABLE, "
                    f"received {source!r}")
    try:
        if path.endswith(".py"):
            file = Path(path)
            if not file.is_file():
                raise _fail(f"{path}: no such file")
            spec = importlib.util.spec_from_file_location(f"_cnncost_import_{file.stem}", file)
            assert spec is not None and spec.loader is not None  # noqa: S101
            module = importlib.util.module_from_spec(spec)
            sys.path.insert(0, str(file.resolve().parent))
            try:
                spec.loader.exec_module(module)
            finally:
                sys.path.pop(0)
        else:
            module = importlib.import_module(path)
    except SpecError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's code failed to import
        raise _fail(f"{path}: importing it failed: {type(exc).__name__}: {exc}") from None
    target = getattr(module, name, None)
    if target is None:
        raise _fail(f"{path} has no {name!r}")
    try:
        model = target() if callable(target) else target
    except Exception as exc:  # noqa: BLE001
        raise _fail(f"{source}: calling it failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(model, nn.Module):
        raise _fail(f"{source} gave a {type(model).__name__}, not a torch.nn.Module")
    return model.eval()


# ----------------------------------------------------------------------- mapping
class Layer(NamedTuple):
    """One spec layer being built: its fields and the fx nodes it stands for."""

    name: str
    fields: dict
    inputs: list  # fx nodes whose layers it reads
    scope: tuple = ()  # the module paths it runs in, outermost first


def _pair(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return list(value) if value[0] != value[1] else value[0]
    return value


def _conv(module: Any) -> dict:
    if module.padding_mode != "zeros" or isinstance(module.padding, str):
        padding = module.padding if module.padding in ("same", "valid") else None
        if padding is None:
            raise ValueError(f"padding_mode {module.padding_mode!r}")
    else:
        padding = _pair(module.padding)
    fields = {"op": "conv", "out": module.out_channels, "kernel": _pair(module.kernel_size)}
    for key, value, default in (("stride", _pair(module.stride), 1), ("padding", padding, 0),
                                ("dilation", _pair(module.dilation), 1),
                                ("groups", module.groups, 1)):
        if value != default:
            fields[key] = value
    fields["bias"] = module.bias is not None
    return fields


def _batchnorm(module: Any) -> dict:
    if not module.track_running_stats:
        raise ValueError("batch norm without running statistics")
    return {"op": "batchnorm", "eps": module.eps, "momentum": module.momentum,
            "affine": module.affine}


def _pool(kind: str) -> Callable[[Any], dict]:
    def rule(module: Any) -> dict:
        fields = {"op": kind, "kernel": _pair(module.kernel_size)}
        stride = _pair(module.stride) if module.stride is not None else fields["kernel"]
        if stride != fields["kernel"]:
            fields["stride"] = stride
        if _pair(module.padding) != 0:
            fields["padding"] = _pair(module.padding)
        if module.ceil_mode:
            fields["ceil_mode"] = True
        if kind == "avgpool" and not module.count_include_pad:
            fields["count_include_pad"] = False
        if kind == "maxpool" and _pair(module.dilation) != 1:
            fields["dilation"] = _pair(module.dilation)
        return fields
    return rule


def _adaptive(kind: str) -> Callable[[Any], dict]:
    def rule(module: Any) -> dict:
        size = module.output_size
        if size in (1, (1, 1), [1, 1]):
            return {"op": f"global_{kind}", "keepdims": True}
        return {"op": f"adaptive_{kind}", "output": _pair(size)}
    return rule


def _act(op: str, **fields: Callable[[Any], Any]) -> Callable[[Any], dict]:
    def rule(module: Any) -> dict:
        return {"op": op, **{k: get(module) for k, get in fields.items()}}
    return rule


MODULES: dict[type, Callable[[Any], dict]] = {
    nn.Conv2d: _conv,
    nn.BatchNorm2d: _batchnorm,
    nn.BatchNorm1d: _batchnorm,
    nn.Linear: lambda m: {"op": "linear", "out": m.out_features, "bias": m.bias is not None},
    nn.MaxPool2d: _pool("maxpool"),
    nn.AvgPool2d: _pool("avgpool"),
    nn.AdaptiveAvgPool2d: _adaptive("avgpool"),
    nn.AdaptiveMaxPool2d: _adaptive("maxpool"),
    nn.ReLU: _act("relu"),
    nn.ReLU6: _act("relu6"),
    nn.SiLU: _act("silu"),
    nn.GELU: _act("gelu"),
    nn.Sigmoid: _act("sigmoid"),
    nn.Hardsigmoid: _act("hardsigmoid"),
    nn.Hardswish: _act("hardswish"),
    nn.Tanh: _act("tanh"),
    nn.ELU: _act("elu", alpha=lambda m: m.alpha),
    nn.LeakyReLU: _act("leaky_relu", slope=lambda m: m.negative_slope),
    nn.Softmax: _act("softmax"),
    nn.Dropout: lambda m: {"op": "dropout", "p": m.p},
    nn.Flatten: lambda m: {"op": "flatten"},
    nn.Identity: lambda m: {"op": "identity"},
}

def _cnncost_modules() -> dict[type, Callable[[Any], dict]]:
    """cnncost's own modules (what cnncost.build makes), read back as the layers they are:
    kept as leaves of the trace, so that a built spec imports to the same spec."""
    from . import torch_modules as tm

    def padded_conv(m: Any) -> dict:
        return {**_conv(m), "padding": list(m.pads)}

    def padded_pool(kind: str) -> Callable[[Any], dict]:
        def rule(m: Any) -> dict:
            fields = {**_pool(kind)(m), "padding": list(m.pads)}
            if kind == "avgpool":
                fields.pop("count_include_pad", None)
                if not m.include_pad:
                    fields["count_include_pad"] = False
            return fields
        return rule

    def partial_bn(m: Any) -> dict:
        return {"op": "batchnorm", "eps": m.eps, "momentum": m.momentum,
                "center": m.bias is not None, "scale": m.weight is not None}

    return {
        tm.PaddedConv2d: padded_conv,
        tm.PaddedMaxPool2d: padded_pool("maxpool"),
        tm.PaddedAvgPool2d: padded_pool("avgpool"),
        tm.GlobalPool: lambda m: {"op": f"global_{m.mode}pool", "keepdims": m.keepdims},
        tm.ChannelLayerNorm: lambda m: {"op": "layernorm", "eps": m.eps,
                                        "affine": m.elementwise_affine},
        tm.ChannelShuffle: lambda m: {"op": "channel_shuffle", "groups": m.groups},
        tm.Add: lambda m: {"op": "add"},
        tm.Mul: lambda m: {"op": "mul"},
        tm.Concat: lambda m: {"op": "concat"},
        tm.ChannelSlice: lambda m: {"op": "slice", "start": m.start, "stop": m.stop},
        tm.Pad: lambda m: {"op": "pad", "padding": list(m.pads), "channels": list(m.channels),
                           "mode": m.mode, "value": m.value},
        tm.CenterCrop: lambda m: {"op": "crop", "size": list(m.size)},
        tm.Scale: lambda m: {"op": "scale"},
        tm.Rescaling: lambda m: {"op": "rescaling", "scale": m.scale, "offset": m.offset},
        tm.Normalization: lambda m: {"op": "normalization"},
        tm.PartialBatchNorm: partial_bn,
    }


def _upsample(m: Any) -> dict:
    fields: dict[str, Any] = {"op": "upsample", "mode": m.mode}
    if m.size is not None:
        fields["size"] = _pair(m.size)
    else:
        scale = _pair(m.scale_factor)
        fields["scale"] = [int(v) for v in scale] if isinstance(scale, list) else int(scale)
    if m.align_corners:
        fields["align_corners"] = True
    return fields


def _same_if_it_is(fields: dict, module: Any, source: Any) -> dict:
    """Explicit pads that are exactly Keras' 'same' for this input read back as `same`
    (the spec language checks written pads against the kernel; 'same' is what was meant)."""
    from ..cost.ops.geometry import same_pads

    meta = source.meta.get("tensor_meta")
    if meta is None or len(meta.shape) != 4:
        return fields
    h, w = meta.shape[2], meta.shape[3]

    def pair(v: Any) -> tuple[int, int]:
        return (v, v) if isinstance(v, int) else (v[0], v[1])

    kh, kw = pair(fields["kernel"])
    sh, sw = pair(fields.get("stride", fields["kernel"] if fields["op"] != "conv" else 1))
    dh, dw = pair(fields.get("dilation", 1))
    same = (*same_pads(h, kh, sh, dh), *same_pads(w, kw, sw, dw))
    if tuple(module.pads) == same:
        return {**fields, "padding": "same"}
    return fields


def _conv_transpose(m: Any) -> dict:
    fields = {"op": "conv_transpose", "out": m.out_channels, "kernel": _pair(m.kernel_size)}
    for key, value, default in (("stride", _pair(m.stride), 1), ("padding", _pair(m.padding), 0),
                                ("output_padding", _pair(m.output_padding), 0),
                                ("dilation", _pair(m.dilation), 1), ("groups", m.groups, 1)):
        if value != default:
            fields[key] = value
    fields["bias"] = m.bias is not None
    return fields


MODULES[nn.Upsample] = _upsample
MODULES[nn.ConvTranspose2d] = _conv_transpose
MODULES[nn.PReLU] = lambda m: {"op": "prelu", "per_channel": m.num_parameters > 1}
MODULES[nn.LayerNorm] = lambda m: {"op": "layernorm", "eps": m.eps,
                                   "affine": m.elementwise_affine}
MERGE_MODULES = ("add", "mul", "concat")

ACTIVATIONS = {"relu", "relu6", "silu", "gelu", "sigmoid", "hardsigmoid", "hardswish", "tanh",
               "elu", "leaky_relu"}

# functions and methods: target -> op, for calls whose arguments are the inputs alone
UNARY_FUNCTIONS: dict[Any, str] = {
    F.relu: "relu", torch.relu: "relu", F.relu6: "relu6", F.silu: "silu", F.gelu: "gelu",
    torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid", F.hardsigmoid: "hardsigmoid",
    F.hardswish: "hardswish", torch.tanh: "tanh", F.tanh: "tanh",
    "relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh",
}
MERGES: dict[Any, str] = {operator.add: "add", operator.iadd: "add", torch.add: "add",
                          "add": "add", "add_": "add", operator.mul: "mul", torch.mul: "mul",
                          "mul": "mul"}


def _flatten_call(node: Any) -> dict | None:
    start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
    end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
    return {"op": "flatten"} if start == 1 and end == -1 else None


def _mean_call(node: Any) -> dict | None:
    dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
    keep = node.args[2] if len(node.args) > 2 else node.kwargs.get("keepdim", False)
    if dims is not None and sorted(d % 4 for d in dims) == [2, 3]:
        return {"op": "global_avgpool", "keepdims": bool(keep)}
    return None


def _adaptive_call(node: Any) -> dict | None:
    size = node.args[1] if len(node.args) > 1 else node.kwargs.get("output_size")
    if size in (1, (1, 1), [1, 1]):
        return {"op": "global_avgpool", "keepdims": True}
    return {"op": "adaptive_avgpool", "output": _pair(size)} if size is not None else None


def _cat_call(node: Any) -> dict | None:
    dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
    return {"op": "concat"} if dim == 1 else None


def _arg(node: Any, index: int, key: str, default: Any) -> Any:
    return node.args[index] if len(node.args) > index else node.kwargs.get(key, default)


def _pool_call(kind: str) -> Callable[[Any], dict | None]:
    def rule(node: Any) -> dict | None:
        kernel = _pair(_arg(node, 1, "kernel_size", None))
        stride = _arg(node, 2, "stride", None)
        stride = _pair(stride) if stride not in (None, [], ()) else kernel
        fields: dict[str, Any] = {"op": kind, "kernel": kernel}
        if stride != kernel:
            fields["stride"] = stride
        padding = _pair(_arg(node, 3, "padding", 0))
        if padding != 0:
            fields["padding"] = padding
        if kind == "maxpool":
            if _pair(_arg(node, 4, "dilation", 1)) != 1:
                fields["dilation"] = _pair(_arg(node, 4, "dilation", 1))
            ceil = _arg(node, 5, "ceil_mode", False)
        else:
            ceil = _arg(node, 4, "ceil_mode", False)
            if not _arg(node, 5, "count_include_pad", True):
                fields["count_include_pad"] = False
            if _arg(node, 6, "divisor_override", None) is not None:
                return None
        if ceil:
            fields["ceil_mode"] = True
        return fields
    return rule


def _stochastic_depth_call(node: Any) -> dict | None:
    """torchvision.ops.stochastic_depth: the identity unless training."""
    return {"op": "identity"} if not _arg(node, 3, "training", True) else None


def _getitem_call(node: Any) -> dict | None:
    """x[:, a:b] (channels [a, b)) -> slice; any other indexing has no equivalent."""
    index = node.args[1]
    if not (isinstance(index, tuple) and len(index) >= 2 and index[0] == slice(None)
            and isinstance(index[1], slice) and index[1].step in (None, 1)
            and all(i == slice(None) for i in index[2:])):
        return None
    fields: dict[str, Any] = {"op": "slice"}
    if index[1].start not in (None, 0):
        fields["start"] = index[1].start
    if index[1].stop is not None:
        fields["stop"] = index[1].stop
    if any(isinstance(v, int) and v < 0 for v in (index[1].start, index[1].stop)):
        return None
    return fields


CALLS: dict[Any, Callable[[Any], dict | None]] = {
    operator.getitem: _getitem_call,
    F.max_pool2d: _pool_call("maxpool"), F.avg_pool2d: _pool_call("avgpool"),
    torch.flatten: _flatten_call, "flatten": _flatten_call,
    "mean": _mean_call, torch.mean: _mean_call,
    F.adaptive_avg_pool2d: _adaptive_call,
    torch.cat: _cat_call,
}


class Unsupported(NamedTuple):
    node: str  # the fx node
    what: str  # the module class or the function
    where: str  # the module path, or the source line


def _where(node: Any) -> str:
    trace = (node.meta.get("stack_trace") or "").strip().splitlines()
    return trace[-2].strip() if len(trace) >= 2 else ""


def _shape(node: Any) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta") if hasattr(node, "meta") else None
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None


class _Layouts:
    """Patterns that are one spec layer, or none, written with tensor plumbing:

    - Python values (`x.size()`, its items, integer arithmetic) and parameters read
      directly (`get_attr`) are not layers;
    - channels-last stretches (`permute(0, 2, 3, 1)` ... `permute(0, 3, 1, 2)`, ConvNeXt):
      `nn.LayerNorm`/`F.layer_norm` over the channels is `layernorm`, `nn.Linear` a 1x1
      conv, activations act per element; `x * p` with a C x 1 x 1 parameter is `scale`;
    - ShuffleNet's channel shuffle (view to N x g x C/g x H x W, transpose(1, 2), view back)
      is `channel_shuffle`, and `x.chunk(k, dim=1)` items are channel slices;
    - `view`/`reshape` of a map to N x (C*H*W) is `flatten`.
    `step` returns None for a node it leaves to the ordinary rules."""

    def __init__(self, modules: dict) -> None:
        self.modules = modules
        self.nhwc: set[Any] = set()  # nodes whose value is a channels-last map
        self.shuffle: dict[Any, tuple[Any, int, bool]] = {}  # 5-D view -> (source, g, transposed)
        self.chunks: dict[Any, tuple[Any, int, int]] = {}  # chunk -> (source, k, channels)

    def step(self, node: Any) -> tuple[str, Any] | None:
        if node.op == "get_attr":
            return "skip", None
        if node.op not in ("call_function", "call_method", "call_module"):
            return None
        target = node.target
        name = target if isinstance(target, str) else getattr(target, "__name__", "")
        args = node.args
        source = args[0] if args and hasattr(args[0], "op") else None
        shape = _shape(node)
        if node.op == "call_module":
            return self._module(node, source)
        if name in ("chunk",) and source is not None:
            dim = _arg(node, 2, "dim", 0)
            in_shape = _shape(source)
            if dim == 1 and in_shape is not None and len(in_shape) == 4:
                self.chunks[node] = (source, int(args[1]), in_shape[1])
                return "skip", None
            return None
        if target is operator.getitem and source in self.chunks and isinstance(args[1], int):
            origin, k, channels = self.chunks[source]
            size = -(-channels // k)
            start, stop = args[1] * size, min(channels, (args[1] + 1) * size)
            fields: dict[str, Any] = {"op": "slice", "stop": stop}
            if start:
                fields["start"] = start
            return "layer", (fields, [origin])
        if shape is None and name not in ("chunk",):
            tensor_args = [a for a in node.all_input_nodes if _shape(a) is not None]
            if not tensor_args or name in ("size", "dim"):
                return "skip", None  # Python values: shapes, sizes, integer arithmetic
            return None
        in_shape = _shape(source) if source is not None else None
        if name == "permute" and source is not None and in_shape is not None:
            order = tuple(args[1:]) if len(args) > 2 else tuple(args[1])
            if order == (0, 2, 3, 1) and len(in_shape) == 4 and source not in self.nhwc:
                self.nhwc.add(node)
                return "alias", source
            if order == (0, 3, 1, 2) and source in self.nhwc:
                return "alias", source
            return None
        if name == "contiguous" and source is not None:
            self._carry(node, source)
            return "alias", source
        if name in ("view", "reshape") and source is not None and in_shape is not None \
                and shape is not None:
            if len(in_shape) == 4 and len(shape) == 5 and source not in self.nhwc \
                    and shape[1] * shape[2] == in_shape[1]:
                self.shuffle[node] = (source, shape[1], False)
                return "alias", source
            if source in self.shuffle and self.shuffle[source][2] and len(shape) == 4:
                origin, groups, _ = self.shuffle[source]
                return "layer", ({"op": "channel_shuffle", "groups": groups}, [origin])
            if len(in_shape) == 4 and len(shape) == 2 and source not in self.nhwc:
                return "layer", ({"op": "flatten"}, [source])
            return None
        if name == "transpose" and source in self.shuffle and sorted(args[1:3]) == [1, 2]:
            origin, groups, _ = self.shuffle[source]
            self.shuffle[node] = (origin, groups, True)
            return "alias", source
        if name == "layer_norm" and source in self.nhwc and in_shape is not None:
            normalized = _arg(node, 1, "normalized_shape", None)
            if normalized is not None and tuple(normalized) == (in_shape[-1],):
                self.nhwc.add(node)
                weight = _arg(node, 2, "weight", None)
                return "layer", ({"op": "layernorm", "eps": _arg(node, 4, "eps", 1e-5),
                                  "affine": weight is not None}, [source])
            return None
        if target in (operator.mul, torch.mul, "mul") and len(args) == 2:
            params = [a for a in args if hasattr(a, "op") and a.op == "get_attr"]
            data = [a for a in args if hasattr(a, "op") and a.op != "get_attr"]
            if len(params) == 1 and len(data) == 1:
                value = self._parameter(params[0])
                data_shape = _shape(data[0])
                if value is not None and data_shape is not None and len(data_shape) == 4 \
                        and tuple(value.shape) in ((data_shape[1], 1, 1), (data_shape[1],)) \
                        and data[0] not in self.nhwc:
                    return "layer", ({"op": "scale"}, [data[0]])
            return None
        if source in self.nhwc:
            op = UNARY_FUNCTIONS.get(target)
            if op is not None and len(node.all_input_nodes) == 1:
                self.nhwc.add(node)
                return "layer", ({"op": op}, [source])
            return None
        return None

    def _parameter(self, node: Any) -> Any:
        path, _, attr = str(node.target).rpartition(".")
        owner = self.modules.get(path)
        return getattr(owner, attr, None) if owner is not None else None

    def _carry(self, node: Any, source: Any) -> None:
        if source in self.nhwc:
            self.nhwc.add(node)
        if source in self.shuffle:
            self.shuffle[node] = self.shuffle[source]

    def _module(self, node: Any, source: Any) -> tuple[str, Any] | None:
        if source is None or source not in self.nhwc:
            return None
        module = self.modules[node.target]
        channels = (_shape(source) or (0,))[-1]
        if isinstance(module, nn.LayerNorm) and tuple(module.normalized_shape) == (channels,):
            fields: dict[str, Any] = {"op": "layernorm", "eps": module.eps,
                                      "affine": module.elementwise_affine}
        elif isinstance(module, nn.Linear) and module.in_features == channels:
            fields = {"op": "conv", "out": module.out_features, "kernel": 1,
                      "bias": module.bias is not None}
        elif type(module) in MODULES and MODULES[type(module)](module)["op"] in ACTIVATIONS:
            fields = MODULES[type(module)](module)
        else:
            return None
        self.nhwc.add(node)
        return "layer", (fields, [source])


def _check_every_parameter_is_used(model: Any, traced: Any) -> None:
    """Modules with parameters or buffers that the traced (eval) forward never calls, such
    as training-only auxiliary heads: the spec would miss them, so the import stops."""
    called = {str(n.target) for n in traced.graph.nodes if n.op == "call_module"}
    called |= {str(n.target).rpartition(".")[0] for n in traced.graph.nodes
               if n.op == "get_attr"}  # a parameter read directly: its module is used
    unused = []
    for path, module in model.named_modules():
        own = sum(t.numel() for t in list(module.parameters(recurse=False))
                  + list(module.buffers(recurse=False)))
        if own and path not in called and not any(path.startswith(c + ".") for c in called):
            unused.append((path, own))
    if unused:
        heads = sorted({p.split(".")[0] for p, _ in unused})
        total = sum(n for _, n in unused)
        raise _fail(f"the forward pass in eval mode never uses {', '.join(heads)} "
                    f"({total:,} parameters and buffers; training-only heads?): a spec of "
                    "what the model runs would not count them. Build the model without them "
                    "(e.g. aux_logits=False) or write them as train_only layers by hand")


class Opaque(NamedTuple):
    """A module (or a top-level call) written as an `opaque` layer (--allow-opaque)."""

    layer: str  # the spec layer's name
    path: str  # the module's path in the model ("" for a call in the model's own forward)
    what: str  # the module's class, or the function called
    params: int
    buffers: int


def to_spec(model: Any, input_shape: tuple[int, ...], name: str = "imported", *,
            allow_opaque: bool = False, opaque: list[Opaque] | None = None,
            leaves: frozenset[str] = frozenset()) -> dict:
    """The spec (a plain dict) of `model` for one sample of `input_shape` (C, H, W).

    An operation with no spec equivalent stops the import (SpecError naming each one),
    unless `allow_opaque`: then the innermost module that holds it (or the call itself,
    in the model's own forward) becomes an `opaque` layer with the module's parameters,
    buffers and output shape, and is appended to `opaque` when given. `leaves`: module
    paths traced as single calls (how those modules are found: a second trace)."""
    import torch.fx
    from torch.fx.passes.shape_prop import ShapeProp

    rules = {**MODULES, **_cnncost_modules()}

    class Tracer(torch.fx.Tracer):
        def is_leaf_module(self, m: Any, qualified_name: str) -> bool:
            return (type(m) in rules or qualified_name in leaves
                    or super().is_leaf_module(m, qualified_name))

    try:
        graph = Tracer().trace(model)
        traced = torch.fx.GraphModule(model, graph)
    except Exception as exc:  # noqa: BLE001
        raise _fail(f"torch.fx cannot trace the model symbolically: {type(exc).__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''} (control flow that "
                    "depends on tensor values is not supported)") from None
    try:
        with torch.no_grad():
            ShapeProp(traced).propagate(torch.zeros(1, *input_shape))
    except Exception as exc:  # noqa: BLE001 - the model's own error on this input
        cause = exc.__cause__ or exc
        raise _fail(f"running the model on one input of shape "
                    f"{'x'.join(map(str, input_shape))} failed: {type(cause).__name__}: "
                    f"{str(cause).splitlines()[0] if str(cause) else ''}") from None
    modules = dict(traced.named_modules())
    _check_every_parameter_is_used(model, traced)
    layers: list[Layer] = []
    layer_of: dict[Any, str] = {}  # fx node -> the spec layer that produces its value
    unsupported: list[Unsupported] = []
    users = {node: list(node.users) for node in traced.graph.nodes}

    def tensor_inputs(node: Any) -> list[Any]:
        return [a for a in node.all_input_nodes]

    layouts = _Layouts(modules)
    taken: set[str] = set()  # layer names given so far
    wrap: set[str] = set()  # modules holding an unsupported operation (allow_opaque)
    made: list[Opaque] = []
    for node in traced.graph.nodes:
        if node.op == "placeholder":
            layer_of[node] = "input"
            continue
        if node.op == "output":
            continue
        shaped = layouts.step(node)
        if shaped is not None:
            kind, payload = shaped
            if kind == "skip":
                continue
            if kind == "alias":
                layer_of[node] = layer_of[payload]
                continue
            fields, extra_inputs = payload
            layer_name = unique(identifier(node.name), taken)
            layers.append(Layer(layer_name, fields, extra_inputs, _scope(node)))
            layer_of[node] = layer_name
            continue
        fields = None
        inputs = tensor_inputs(node)
        label = node.name
        what = "a parameter or buffer read directly" if node.op == "get_attr" \
            else str(node.target)
        try:
            if node.op == "call_module":
                module = modules[node.target]
                label = str(node.target)
                what = type(module).__name__
                rule = rules.get(type(module))
                fields = rule(module) if rule is not None else None
                if fields is not None and hasattr(module, "pads") and "kernel" in fields:
                    fields = _same_if_it_is(fields, module, inputs[0])
            elif node.op == "call_function" or node.op == "call_method":
                target = node.target
                if target is operator.getitem:
                    inputs = inputs[:1]
                what = getattr(target, "__name__", str(target))
                if target in UNARY_FUNCTIONS and len(inputs) == 1:
                    fields = {"op": UNARY_FUNCTIONS[target]}
                elif target in MERGES and len(inputs) == 2 and len(node.args) == 2:
                    fields = {"op": MERGES[target]}
                elif target in CALLS:
                    fields = CALLS[target](node)
                    if fields is not None and fields["op"] == "concat":
                        inputs = list(node.args[0])
                        if len(inputs) == 1:  # torch.cat of one tensor: itself
                            fields = {"op": "identity"}
                elif what == "stochastic_depth":
                    fields = _stochastic_depth_call(node)
                elif node.op == "call_function" and target is torch.nn.functional.dropout:
                    fields = {"op": "dropout", "p": node.kwargs.get("p", 0.5)}
        except ValueError as exc:
            fields = None
            what = f"{what} ({exc})"
        if fields is None and allow_opaque:
            holder = _holder(node)
            if holder and node.op != "call_module":  # trace its module as one call
                wrap.add(holder)
                continue
            fields, why = _opaque_fields(node, modules, inputs)
            if fields is not None:
                layer_name = unique(identifier(label), taken)
                layers.append(Layer(layer_name, fields, inputs, _scope(node)))
                layer_of[node] = layer_name
                made.append(Opaque(layer_name, holder if node.op == "call_module" else "",
                                   what, fields["params"], fields["buffers"]))
                continue
            what = f"{what} ({why})"
        if fields is None:
            unsupported.append(Unsupported(node.name, what, label if node.op == "call_module"
                                           else _where(node)))
            continue
        if fields["op"] == "identity":
            layer_of[node] = layer_of[inputs[0]]
            continue
        # conv (or linear) + its only user, a batch norm, + that one's only user, an act
        if fields["op"] == "batchnorm" and len(inputs) == 1 and layers:
            last = layers[-1]
            if (last.fields["op"] in ("conv",) and layer_of.get(inputs[0]) == last.name
                    and len(users[inputs[0]]) == 1 and "norm" not in last.fields
                    and "act" not in last.fields):
                last.fields["norm"] = "batchnorm"
                last.fields["_bn"] = {k: fields[k] for k in ("eps", "momentum", "affine")}
                layer_of[node] = last.name
                continue
        if fields["op"] in ACTIVATIONS and len(inputs) == 1 and layers and len(fields) == 1:
            last = layers[-1]
            if (last.fields["op"] in ("conv", "linear") and layer_of.get(inputs[0]) == last.name
                    and len(users[inputs[0]]) == 1 and "act" not in last.fields):
                last.fields["act"] = fields["op"]
                layer_of[node] = last.name
                continue
        layer_name = unique(identifier(label), taken)
        layers.append(Layer(layer_name, fields, inputs, _scope(node)))
        layer_of[node] = layer_name
    if wrap - leaves and not unsupported:
        return to_spec(model, input_shape, name, allow_opaque=True, opaque=opaque,
                       leaves=leaves | frozenset(wrap))
    if unsupported:
        kinds: dict[str, list[str]] = {}
        for u in unsupported:
            kinds.setdefault(u.what, []).append(
                u.node + (f" at {u.where}" if u.where and u.where != u.node else ""))
        raise _fail(f"{len(unsupported)} operation{'s' if len(unsupported) != 1 else ''} "
                    f"without a spec equivalent: {unsupported_list(kinds)}. Nothing was written; such an "
                    "operation needs a rule in cnncost/pytorch/importer.py (or the model "
                    "rewritten with the modules and functions it maps)"
                    + ("" if allow_opaque else "; --allow-opaque writes each as an opaque "
                       "layer: its module's params, buffers and output shape, no counted "
                       "work"))
    if opaque is not None:
        opaque.extend(made)
    return _emit(layers, layer_of, input_shape, name)


def _holder(node: Any) -> str:
    """The path of the innermost module whose forward makes `node` ("" for the model's
    own forward; a parameter read directly: its module)."""
    if node.op == "get_attr":
        return str(node.target).rpartition(".")[0]
    if node.op == "call_module":
        return str(node.target)
    scope = _scope(node)
    return str(scope[-1]) if scope else ""


def _opaque_fields(node: Any, modules: dict, inputs: list) -> tuple[dict | None, str]:
    """The fields of an opaque layer for `node`, or None and why it cannot be one."""
    if len(inputs) != 1:
        return None, f"takes {len(inputs)} tensors; an opaque layer takes one"
    shape = _shape(node)
    if shape is None or len(shape) not in (2, 4):
        return None, "its output is not one N x C x H x W or N x F tensor"
    params = buffers = 0
    if node.op == "call_module":
        module = modules[node.target]
        params = sum(p.numel() for p in module.parameters())
        buffers = sum(b.numel() for b in module.buffers())
    return {"op": "opaque", "shape": list(shape[1:]), "params": params,
            "buffers": buffers}, ""


def _scope(node: Any) -> tuple:
    return tuple((node.meta.get("nn_module_stack") or {}).keys())


def _emit(layers: list[Layer], layer_of: dict, input_shape: tuple[int, ...],
          name: str) -> dict:
    """The spec dict: batch-norm settings shared by most norms go to `defaults`; other
    norms are written out (unfused); `from:`/`inputs:` where the data does not flow from
    the previous layer."""
    common = shared_batchnorm(layer.fields["_bn"] for layer in layers if "_bn" in layer.fields)
    out: list[dict] = []
    scopes: list[tuple] = []
    final: dict[str, str] = {"input": "input"}  # a layer's name -> its last entry's name
    previous = "input"
    for layer in layers:
        fields = dict(layer.fields)
        bn = fields.pop("_bn", None)
        sources = [final[layer_of[node]] for node in layer.inputs]
        entry = {"op": fields.pop("op"), "name": layer.name}
        if entry["op"] in ("add", "mul", "concat"):
            entry["inputs"] = sources
        elif sources and sources[0] != previous:
            entry["from"] = sources[0]
        act = fields.pop("act", None)
        norm = fields.pop("norm", None)
        entry.update(fields)
        if norm is not None and bn == common:
            entry["norm"] = norm
        if norm is not None and bn != common:  # a norm with its own settings: its own layer
            out.append(_plain_fields(entry))
            scopes.append(layer.scope)
            entry = {"op": "batchnorm", "name": f"{layer.name}_norm", **(bn or {})}
            if act is not None:
                out.append(entry)
                scopes.append(layer.scope)
                entry = {"op": act, "name": f"{layer.name}_act"}
                act = None
        if act is not None:
            entry["act"] = act
        out.append(_plain_fields(entry))
        scopes.append(layer.scope)
        final[layer.name] = previous = entry["name"]
    defaults = batchnorm_defaults(common)
    spec: dict[str, Any] = {"name": name, "input": list(input_shape)}
    if defaults:
        spec["defaults"] = defaults
    flat = {**spec, "layers": out}
    blocks, grouped = blockify(out, scopes)
    if blocks:
        readable = {**spec, "blocks": blocks, "layers": grouped}
        merged_blocks, merged_layers = merge_alike(blocks, grouped)
        candidates = [readable]
        if merged_blocks is not blocks:  # blocks alike but for widths, as one
            candidates.insert(0, {**spec, "blocks": merged_blocks, "layers": merged_layers})
        for candidate in candidates:
            if _same_numbers(candidate, flat):  # a readability step never changes a number
                return candidate
    return flat


def _same_numbers(a: dict, b: dict) -> bool:
    """Both specs analyze to the same rows (op, shape, params, MACs) and totals."""
    from ..api import analyze

    try:
        ta, tb = analyze(a), analyze(b)
    except SpecError:
        return False
    return ta.totals == tb.totals and \
        [(r.op, r.shape, r.params, r.buffers, r.macs) for r in ta.rows] == \
        [(r.op, r.shape, r.params, r.buffers, r.macs) for r in tb.rows]


def _plain_fields(entry: dict) -> dict:
    """Drop fields equal to the op's default, so the spec reads as written by hand."""
    if entry.get("op") == "batchnorm":
        for key, default in (("eps", 1e-5), ("momentum", 0.1), ("affine", True)):
            if entry.get(key) == default:
                entry.pop(key)
    if entry.get("op") in ("conv", "linear") and entry.get("bias") is True:
        entry.pop("bias")
    return entry


# ----------------------------------------------------------------------- checking
class Counts(NamedTuple):
    params: int
    buffers: int
    macs: int
    output: tuple[int, ...]
    opaque_macs: int = 0  # of `macs`, those inside opaque layers' modules (not in the spec)


def torch_counts(model: Any, input_shape: tuple[int, ...],
                 opaque: Sequence[str] = ()) -> Counts:
    """What torch counts: parameters, buffers, FlopCounterMode // 2, the output shape;
    and the MACs counted inside the modules at the paths `opaque`."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        y = model(torch.zeros(1, *input_shape))
    per_module = counter.get_flop_counts()
    root = type(model).__name__
    inside = sum(sum(per_module.get(f"{root}.{path}", {}).values()) for path in opaque if path)
    return Counts(sum(p.numel() for p in model.parameters()),
                  sum(b.numel() for b in model.buffers()),
                  counter.get_total_flops() // 2, tuple(y.shape[1:]), inside // 2)


def check(spec: dict, model: Any, input_shape: tuple[int, ...],
          opaque: Sequence[Opaque] = ()) -> Counts:
    """The spec analyzes to exactly what torch counts for `model` (less the MACs inside
    `opaque` layers' modules, which the spec does not count); SpecError otherwise."""
    from ..api import analyze

    result = analyze(spec)
    theirs = torch_counts(model, input_shape, [o.path for o in opaque])
    ours = Counts(result.totals.params, result.totals.buffers,
                  result.totals.macs + theirs.opaque_macs, tuple(result.output_shape),
                  theirs.opaque_macs)
    if ours != theirs:
        diffs = ", ".join(f"{k} {a} (spec) vs {b} (torch)"
                          for k, a, b in zip(Counts._fields, ours, theirs, strict=True) if a != b)
        raise _fail(f"the imported spec does not reproduce the model: {diffs}; this is a "
                    "bug in cnncost's importer, please report it")
    return theirs
