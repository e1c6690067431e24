"""`cnncost import model.onnx`: an ONNX graph as a cnncost spec, with the `onnx` package
(the optional extra `cnncost[onnx]`; no onnxruntime, no torch).

The file is read bounded, shapes are inferred with onnx.shape_inference, and every node is
mapped by a registry of rules (op type -> spec fields), with the same conv + norm + act
fusion and the same naming of data flow as the PyTorch importer. A node without a rule
stops the import with every such node named. The spec is checked against the file: its
parameters (the initializers that are weights, biases and batch-norm scales and shifts)
and its output shape must be what the spec analyzes to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from .errors import Loc, Problem, SpecError
from .importing import batchnorm_defaults, shared_batchnorm, unique, unsupported_list
from .safeio import read_bytes

LIMIT = 4_000_000_000  # bytes: an ONNX file with its weights


def _fail(message: str, source: str = "") -> SpecError:
    return SpecError([Problem(Loc(source), "", message)])


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise _fail("importing an ONNX file needs the onnx package: pip install "
                    "'cnncost[onnx]' (or pip install onnx)") from None
    return onnx


class Graph(NamedTuple):
    nodes: list  # onnx NodeProto
    shapes: dict[str, tuple[int, ...]]  # value name -> shape (batch first)
    constants: dict[str, Any]  # initializer name -> numpy array
    input: str
    input_shape: tuple[int, ...]  # per sample
    output: str
    initializers: frozenset[str] = frozenset()  # the file's initializers (not Constant nodes)


def load(path: str) -> Graph:
    onnx = _onnx()
    from onnx import numpy_helper, shape_inference

    data = read_bytes(path, what="ONNX files", limit=LIMIT)
    try:
        model = shape_inference.infer_shapes(onnx.load_from_string(data))
    except Exception as exc:  # noqa: BLE001 - the file's own problem
        raise _fail(f"not a readable ONNX model: {type(exc).__name__}: {exc}", path) from None
    graph = model.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    initializers = frozenset(constants)
    for node in graph.node:  # Constant nodes hold small tensors (Clip bounds, Slice starts)
        if node.op_type == "Constant" and node.attribute:
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    shapes: dict[str, tuple[int, ...]] = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = tuple(d.dim_value for d in dims)
    inputs = [v for v in graph.input if v.name not in constants]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise _fail(f"a model with one input and one output is supported; this one has "
                    f"{len(inputs)} inputs and {len(graph.output)} outputs", path)
    name = inputs[0].name
    if name not in shapes or shapes[name][0] != 1:
        raise _fail("the input's shape must be fixed with batch 1 (export with a fixed "
                    "example input)", path)
    before = set(constants)
    _fold_shape_arithmetic(list(graph.node), shapes, constants)
    folded = set(constants) - before
    if folded:  # infer again with the folded values as initializers: shapes past them
        kept = [n for n in graph.node if n.output[0] not in folded]
        del graph.node[:]
        graph.node.extend(kept)
        graph.initializer.extend(numpy_helper.from_array(constants[v], v) for v in folded)
        del graph.value_info[:]
        try:
            graph = shape_inference.infer_shapes(model).graph
        except Exception:  # noqa: BLE001 - keep the shapes known so far
            graph = model.graph
        for value in [*graph.value_info, *graph.output]:
            dims = value.type.tensor_type.shape.dim
            if dims and all(d.HasField("dim_value") for d in dims):
                shapes[value.name] = tuple(d.dim_value for d in dims)
    return Graph(list(graph.node), shapes, constants, name, shapes[name][1:], graph.output[0].name,
                 initializers)


def _fold_shape_arithmetic(nodes: list, shapes: dict, constants: dict) -> None:
    """Evaluate the small integer subgraphs exporters write to compute shapes, slice
    bounds and pads (Shape, Gather, Unsqueeze, Concat, Cast, arithmetic, ConstantOfShape,
    Reshape, Transpose, Slice: `F.pad`'s pads are reversed that way), so that the
    layers they feed see constants. Only nodes whose inputs are all known are evaluated;
    a tensor's Shape is known from shape inference."""
    import numpy as np
    from onnx import helper

    def attrs(node: Any) -> dict:
        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    binary = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.floor_divide}
    for node in nodes:
        inputs = [v for v in node.input if v]
        try:
            if node.op_type == "Shape" and inputs[0] in shapes:
                value = np.array(shapes[inputs[0]], dtype=np.int64)
            elif not all(v in constants for v in inputs) or not inputs:
                continue
            elif node.op_type == "Gather":
                value = np.take(constants[inputs[0]], constants[inputs[1]],
                                axis=attrs(node).get("axis", 0))
            elif node.op_type == "Unsqueeze":
                axes = attrs(node).get("axes") or [int(x) for x in constants[inputs[1]]]
                value = np.expand_dims(constants[inputs[0]], axis=tuple(axes))
            elif node.op_type == "Squeeze":
                value = np.squeeze(constants[inputs[0]])
            elif node.op_type == "Concat":
                value = np.concatenate([np.atleast_1d(constants[v]) for v in inputs],
                                       axis=attrs(node).get("axis", 0))
            elif node.op_type == "Cast":
                value = constants[inputs[0]].astype(np.int64)
            elif node.op_type in binary and constants[inputs[0]].dtype.kind in "iu":
                value = binary[node.op_type](constants[inputs[0]], constants[inputs[1]])
            elif node.op_type == "ConstantOfShape":
                value = np.zeros([int(x) for x in constants[inputs[0]]], dtype=np.int64)
            elif node.op_type == "Reshape":
                data = constants[inputs[0]]
                dims = [int(d) if int(d) != 0 else data.shape[i]  # 0: that dimension kept
                        for i, d in enumerate(constants[inputs[1]])]
                value = data.reshape(dims)
            elif node.op_type == "Transpose":
                value = np.transpose(constants[inputs[0]], attrs(node).get("perm"))
            elif node.op_type == "Slice":
                data = constants[inputs[0]]
                parts = [[int(x) for x in constants[v]] for v in inputs[1:]]
                starts, ends = parts[0], parts[1]
                axes = parts[2] if len(parts) > 2 else list(range(len(starts)))
                steps = parts[3] if len(parts) > 3 else [1] * len(starts)
                index = [slice(None)] * data.ndim
                for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
                    index[axis] = slice(start, end, step)
                value = data[tuple(index)]
            else:
                continue
        except (KeyError, IndexError, ValueError, TypeError):
            continue
        constants[node.output[0]] = np.asarray(value)


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _pair(values: Any) -> Any:
    values = list(values)
    return values[0] if len(values) == 2 and values[0] == values[1] else values


def _pads(pads: list[int]) -> Any:
    """ONNX [top, left, bottom, right] -> the spec's padding (int, [h, w] or 4 values)."""
    top, left, bottom, right = pads
    if top == bottom and left == right:
        return top if top == left else [top, left]
    return [top, bottom, left, right]


def _window(node: Any, a: dict, fields: dict) -> dict:
    kernel = list(a.get("kernel_shape", []))
    fields["kernel"] = _pair(kernel)
    strides = list(a.get("strides", [1, 1]))
    if node.op_type == "Conv":
        if strides != [1, 1]:
            fields["stride"] = _pair(strides)
    elif strides != kernel:
        fields["stride"] = _pair(strides)
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("SAME_UPPER",):
        fields["padding"] = "same"
    elif auto not in ("NOTSET", "VALID"):
        raise ValueError(f"auto_pad {auto}")
    elif any(a.get("pads", [0, 0, 0, 0])):
        fields["padding"] = _pads(list(a["pads"]))
    dilations = list(a.get("dilations", [1, 1]))
    if dilations != [1, 1]:
        fields["dilation"] = _pair(dilations)
    return fields


def _conv(node: Any, a: dict, g: Graph) -> dict:
    weight = g.constants[node.input[1]]
    fields = _window(node, a, {"op": "conv", "out": int(weight.shape[0])})
    if a.get("group", 1) != 1:
        fields["groups"] = int(a["group"])
    fields["bias"] = len(node.input) > 2 and bool(node.input[2])
    return fields


def _conv_transpose(node: Any, a: dict, g: Graph) -> dict:
    weight = g.constants[node.input[1]]
    groups = int(a.get("group", 1))
    fields = _window(node, {**a, "auto_pad": a.get("auto_pad", b"NOTSET")},
                     {"op": "conv_transpose", "out": int(weight.shape[1]) * groups})
    if groups != 1:
        fields["groups"] = groups
    if isinstance(fields.get("padding"), list) and len(fields["padding"]) == 4:
        raise ValueError("ConvTranspose with uneven pads")
    output_padding = list(a.get("output_padding", [0, 0]))
    if any(output_padding):
        fields["output_padding"] = _pair(output_padding)
    fields["bias"] = len(node.input) > 2 and bool(node.input[2])
    return fields


def _gemm(node: Any, a: dict, g: Graph) -> dict:
    if a.get("transA", 0) or not a.get("transB", 0) or a.get("alpha", 1.0) != 1.0:
        raise ValueError("Gemm other than x @ W.T + b")
    weight = g.constants[node.input[1]]
    return {"op": "linear", "out": int(weight.shape[0]),
            "bias": len(node.input) > 2 and bool(node.input[2])}


def _matmul(node: Any, a: dict, g: Graph) -> dict:
    weight = g.constants.get(node.input[1])
    shape = g.shapes.get(node.input[0])
    if weight is None or weight.ndim != 2 or shape is None or len(shape) != 2 or \
            shape[1] != weight.shape[0]:
        raise ValueError("MatMul other than of a vector by a weight matrix")
    return {"op": "linear", "out": int(weight.shape[1]), "bias": False}


def _batchnorm(node: Any, a: dict, g: Graph) -> dict:
    # ONNX keeps them as float32: 1e-5 reads back as 9.99999974e-06; 7 digits are exact
    return {"op": "batchnorm", "eps": float(f"{float(a.get('epsilon', 1e-5)):.7g}"),
            "momentum": float(f"{1.0 - float(a.get('momentum', 0.9)):.7g}")}


def _pool(kind: str) -> Callable[[Any, dict, Graph], dict]:
    def rule(node: Any, a: dict, g: Graph) -> dict:
        fields = _window(node, a, {"op": kind})
        if a.get("ceil_mode", 0):
            fields["ceil_mode"] = True
        if kind == "avgpool" and not a.get("count_include_pad", 0) and "padding" in fields:
            fields["count_include_pad"] = False
        return fields
    return rule


def _clip(node: Any, a: dict, g: Graph) -> dict:
    low = float(g.constants[node.input[1]]) if len(node.input) > 1 and node.input[1] else \
        a.get("min")
    high = float(g.constants[node.input[2]]) if len(node.input) > 2 and node.input[2] else \
        a.get("max")
    if low == 0.0 and high == 6.0:
        return {"op": "relu6"}
    raise ValueError(f"Clip({low}, {high})")


def _hardsigmoid(node: Any, a: dict, g: Graph) -> dict:
    if abs(a.get("alpha", 0.2) - 1 / 6) < 1e-6 and abs(a.get("beta", 0.5) - 0.5) < 1e-9:
        return {"op": "hardsigmoid"}
    raise ValueError("HardSigmoid with other than PyTorch's alpha 1/6")


def _flatten(node: Any, a: dict, g: Graph) -> dict:
    if a.get("axis", 1) != 1:
        raise ValueError(f"Flatten axis {a.get('axis')}")
    return {"op": "flatten"}


def _concat(node: Any, a: dict, g: Graph) -> dict:
    if a.get("axis") != 1:
        raise ValueError(f"Concat axis {a.get('axis')}")
    return {"op": "concat"}


def _reduce_mean(node: Any, a: dict, g: Graph) -> dict:
    axes = list(a.get("axes", [])) or (list(g.constants[node.input[1]])
                                        if len(node.input) > 1 else [])
    if sorted(int(x) % 4 for x in axes) != [2, 3]:
        raise ValueError(f"ReduceMean over axes {axes}")
    return {"op": "global_avgpool", "keepdims": bool(a.get("keepdims", 1))}


def _dropout(node: Any, a: dict, g: Graph) -> dict:
    ratio = a.get("ratio")
    if ratio is None and len(node.input) > 1 and node.input[1] in g.constants:
        ratio = float(g.constants[node.input[1]])
    return {"op": "dropout", "p": float(ratio if ratio is not None else 0.5)}


def _softmax(a: dict, g: Graph, node: Any) -> dict:
    """Softmax over the channels (axis 1, or the last axis of a vector)."""
    shape = g.shapes.get(node.input[0], ())
    axis = a.get("axis", -1)
    if axis % max(len(shape), 1) != 1:
        raise ValueError(f"Softmax over axis {axis}")
    return {"op": "softmax"}


def _ints(g: Graph, node: Any, index: int) -> list[int] | None:
    if len(node.input) <= index or not node.input[index]:
        return None
    value = g.constants.get(node.input[index])
    return None if value is None else [int(v) for v in value.reshape(-1)]


def _slice(node: Any, a: dict, g: Graph) -> dict:
    starts, ends = _ints(g, node, 1), _ints(g, node, 2)
    axes = _ints(g, node, 3) or list(range(len(starts or [])))
    steps = _ints(g, node, 4) or [1] * len(axes)
    if starts is None or ends is None or any(step != 1 for step in steps):
        raise ValueError("Slice with a step, or bounds computed at run time")
    shape = g.shapes[node.input[0]]
    axes = [axis % len(shape) for axis in axes]
    if len(shape) == 4 and axes and set(axes) <= {2, 3}:  # of H and W: a centred crop
        size = list(shape[2:])
        for start, end, axis in zip(starts, ends, axes, strict=True):
            length = shape[axis]
            first = max(0, start + length if start < 0 else min(start, length))
            last = max(0, end + length if end < 0 else min(end, length))
            size[axis - 2] = last - first
            if last <= first or first != (length - (last - first)) // 2:
                raise ValueError("Slice of H or W other than a centred crop")
        return {"op": "crop", "size": size[0] if size[0] == size[1] else size}
    if len(starts) != 1 or axes[0] != 1:
        raise ValueError("Slice other than a channel range or a centred crop of H and W")
    channels = shape[1]
    start, stop = max(starts[0], 0), min(ends[0], channels)
    fields: dict[str, Any] = {"op": "slice"}
    if start:
        fields["start"] = start
    if stop < channels:
        fields["stop"] = stop
    return fields


def _pad(node: Any, a: dict, g: Graph) -> dict:
    pads = _ints(g, node, 1) or list(a.get("pads", []))
    mode = a.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if len(pads) != 8 or pads[0] or pads[4]:
        raise ValueError("Pad other than of channels and H, W")
    _, cb, hb, wb, _, ce, he, we = pads
    fields: dict[str, Any] = {"op": "pad"}
    if hb or he or wb or we:
        fields["padding"] = _pads([hb, wb, he, we])
    if cb or ce:
        fields["channels"] = [cb, ce]
    if mode != "constant":
        fields["mode"] = {"reflect": "reflect", "edge": "replicate"}[mode]
    value = g.constants.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if value is not None and float(value) != 0.0:
        fields["value"] = float(value)
    return fields


def _resize(node: Any, a: dict, g: Graph) -> dict:
    mode = a.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    transform = a.get("coordinate_transformation_mode", b"half_pixel")
    transform = transform.decode() if isinstance(transform, bytes) else transform
    scales = g.constants.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    fields: dict[str, Any] = {"op": "upsample",
                              "mode": {"nearest": "nearest", "linear": "bilinear"}[mode]}
    out = g.shapes.get(node.output[0])
    if scales is not None and len(scales.reshape(-1)) == 4 and \
            all(float(v).is_integer() for v in scales.reshape(-1)[2:]):
        sh, sw = (int(v) for v in scales.reshape(-1)[2:])
        fields["scale"] = sh if sh == sw else [sh, sw]
    elif out is not None:
        fields["size"] = _pair(out[2:])
    else:
        raise ValueError("Resize without constant scales or a known output size")
    if mode == "linear" and transform == "align_corners":
        fields["align_corners"] = True
    return fields


def _reshape(node: Any, a: dict, g: Graph) -> dict:
    source, out = g.shapes.get(node.input[0]), g.shapes.get(node.output[0])
    if source is not None and out is not None and len(source) == 4 and len(out) == 2:
        return {"op": "flatten"}
    raise ValueError("Reshape other than a flatten")


def _simple(op: str) -> Callable[[Any, dict, Graph], dict]:
    return lambda node, a, g: {"op": op}


RULES: dict[str, Callable[[Any, dict, Graph], dict]] = {
    "Conv": _conv, "ConvTranspose": _conv_transpose, "Gemm": _gemm, "BatchNormalization": _batchnorm,
    "MaxPool": _pool("maxpool"), "AveragePool": _pool("avgpool"),
    "GlobalAveragePool": lambda n, a, g: {"op": "global_avgpool", "keepdims": True},
    "GlobalMaxPool": lambda n, a, g: {"op": "global_maxpool", "keepdims": True},
    "Relu": _simple("relu"), "Sigmoid": _simple("sigmoid"), "Tanh": _simple("tanh"),
    "HardSwish": _simple("hardswish"), "HardSigmoid": _hardsigmoid, "Clip": _clip,
    "LeakyRelu": lambda n, a, g: {"op": "leaky_relu", "slope": float(a.get("alpha", 0.01))},
    "Elu": lambda n, a, g: {"op": "elu", "alpha": float(a.get("alpha", 1.0))},
    "Softmax": lambda n, a, g: _softmax(a, g, n),
    "Gelu": _simple("gelu"),
    "Flatten": _flatten, "Concat": _concat, "Add": _simple("add"), "Mul": _simple("mul"),
    "ReduceMean": _reduce_mean, "Dropout": _dropout, "Identity": _simple("identity"),
    "Slice": _slice, "Pad": _pad, "Resize": _resize, "Reshape": _reshape, "MatMul": _matmul,
}
ACTIVATIONS = {"gelu", "relu", "relu6", "sigmoid", "tanh", "hardswish", "hardsigmoid", "leaky_relu",
               "elu"}
MERGES = ("add", "mul", "concat")
# inputs of each op that are weights (initializers), not data
WEIGHT_INPUTS = {"Conv": (1, 2), "ConvTranspose": (1, 2), "Gemm": (1, 2),
                 "LayerNormalization": (1, 2), "BatchNormalization": (1, 2, 3, 4),
                 "Clip": (1, 2), "ReduceMean": (1,), "Dropout": (1, 2), "Slice": (1, 2, 3, 4),
                 "Pad": (1, 2, 3), "Resize": (1, 2, 3), "Reshape": (1,), "Split": (1,),
                 "MatMul": (1,)}


def _identifier(text: str) -> str:
    """A layer name from an ONNX node name (`/layer1/0/conv1/Conv` -> `layer1_0_conv1_Conv`):
    unlike a module path's, runs of `_` are collapsed and an empty name is `layer`."""
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in text.replace(".", "_"))
    name = "_".join(part for part in name.split("_") if part) or "layer"
    return name if not name[0].isdigit() else f"l_{name}"


def value_source(node: Any, data: list[str], layouts: dict) -> str:
    """The value a pattern layer reads: a channel shuffle reads the map before its
    reshape; every other one its data input."""
    return layouts["shuffle"].get(data[0], (data[0],))[0] if data else data[0]


def _layout(node: Any, a: dict, g: Graph, data: list[str], layouts: dict) -> \
        tuple[str, Any] | None:
    """Layout plumbing exporters write: channels-last stretches around LayerNormalization
    (Transpose [0, 2, 3, 1] ... [0, 3, 1, 2]); a per-channel gate reshaped from N x C to
    N x C x 1 x 1; ShuffleNet's channel shuffle (Reshape to 5-D, Transpose [0, 2, 1, 3, 4],
    Reshape back). Returns ("alias", value) or ("layer", fields), or None."""
    if not data:
        return None
    source = data[0]
    shape_in, shape_out = g.shapes.get(source), g.shapes.get(node.output[0])
    if node.op_type == "Reshape" and shape_out is None and shape_in is not None:
        target = _ints(g, node, 1)  # shape inference ran before the shape was folded
        if target is not None:
            dims = [shape_in[i] if d == 0 else d for i, d in enumerate(target)]
            if dims.count(-1) == 1:
                known = 1
                for d in dims:
                    known *= d if d != -1 else 1
                total = 1
                for d in shape_in:
                    total *= d
                dims[dims.index(-1)] = total // known
            shape_out = tuple(dims)
            g.shapes[node.output[0]] = shape_out
    if node.op_type == "Transpose" and shape_in is not None and \
            node.output[0] not in g.shapes and a.get("perm"):
        g.shapes[node.output[0]] = tuple(shape_in[i] for i in a["perm"])
    nhwc, shuffle = layouts["nhwc"], layouts["shuffle"]
    if node.op_type == "Transpose":
        perm = list(a.get("perm", []))
        if perm == [0, 2, 3, 1] and source not in nhwc:
            nhwc.add(node.output[0])
            return "alias", source
        if perm == [0, 3, 1, 2] and source in nhwc:
            return "alias", source
        if perm == [0, 2, 1, 3, 4] and source in shuffle:
            shuffle[node.output[0]] = (shuffle[source][0], shuffle[source][1], True)
            return "alias", source
        return None
    if node.op_type == "LayerNormalization" and source in nhwc and a.get("axis", -1) == -1:
        nhwc.add(node.output[0])
        return "layer", {"op": "layernorm", "eps": float(f"{float(a.get('epsilon', 1e-5)):.7g}"),
                         "affine": len(node.input) > 1 and bool(node.input[1])}
    if node.op_type == "Reshape" and shape_in is not None and shape_out is not None:
        if tuple(shape_in) == tuple(shape_out) or \
                (len(shape_in) == 2 and len(shape_out) == 4 and shape_out[2:] == (1, 1)):
            return "alias", source  # no change, or a per-channel gate broadcast by mul
        if len(shape_in) == 4 and len(shape_out) == 5 and \
                shape_out[1] * shape_out[2] == shape_in[1]:
            shuffle[node.output[0]] = (source, shape_out[1], False)
            return "alias", source
        if len(shape_in) == 5 and len(shape_out) == 4 and source in shuffle and \
                shuffle[source][2]:
            return "layer", {"op": "channel_shuffle", "groups": shuffle[source][1]}
    return None


def to_spec(path: str, name: str, *, allow_opaque: bool = False,
            opaque: list[tuple[str, str, int]] | None = None) -> tuple[dict, int]:
    """(the spec, the file's parameter count) of the ONNX model at `path`.

    A node with no spec equivalent stops the import, unless `allow_opaque`: then it is an
    `opaque` layer with its output shape and, as params, every initializer it reads (ONNX
    does not tell parameters from buffers; Constant nodes are not counted), appended to `opaque` as (layer, op type,
    params) when given."""
    g = load(path)
    layers: list[dict] = []
    layer_of: dict[str, str] = {g.input: "input"}
    users: dict[str, int] = {}
    for node in g.nodes:
        for value in node.input:
            users[value] = users.get(value, 0) + 1
    unsupported: dict[str, list[str]] = {}
    params = 0
    layouts: dict[str, Any] = {"nhwc": set(), "shuffle": {}}
    taken: set[str] = set()  # layer names given so far

    def add(node: Any, fields: dict, sources: list[str], part: int | None = None) -> None:
        """A new layer computing `fields` of `sources` (a merge names them all; another
        layer names its source when it is not the previous layer): the node's output, or
        its output number `part` (named with it)."""
        output = node.output[part or 0]
        label = node.name or node.output[0]
        layer = {"op": fields.pop("op"), "name": unique(_identifier(
            label if part is None else f"{label}_{part}"), taken)}
        if layer["op"] in MERGES:
            layer["inputs"] = sources
        elif sources and sources[0] != (layers[-1]["name"] if layers else "input"):
            layer["from"] = sources[0]
        layer.update(fields)
        layers.append(layer)
        layer_of[output] = layer["name"]

    for node in g.nodes:
        if node.op_type == "Constant":
            continue
        if node.output[0] in g.constants:  # folded shape arithmetic
            continue
        if node.op_type == "Identity" and node.input[0] in g.constants:  # a weight's alias
            g.constants[node.output[0]] = g.constants[node.input[0]]
            continue
        a = _attrs(node)
        weights = WEIGHT_INPUTS.get(node.op_type, ())
        data = [v for i, v in enumerate(node.input) if v and i not in weights
                and v not in g.constants]
        constant_data = [v for i, v in enumerate(node.input) if v and i not in weights
                         and v in g.constants]
        if any(v not in layer_of for v in data):  # fed by a node already reported
            unsupported.setdefault(f"{node.op_type} (after an unsupported node)", []).append(
                node.name or node.output[0])
            continue
        pattern = _layout(node, a, g, data, layouts)
        if pattern is not None:
            kind, value = pattern
            if kind == "alias":
                layer_of[node.output[0]] = layer_of[value]
                continue
            params += _parameters(node, g)
            add(node, value, [layer_of[value_source(node, data, layouts)]])
            continue
        if node.op_type == "Split" and len(data) == 1:
            parts = _split(node, a, g)
            if parts is None:
                unsupported.setdefault("Split (other than of channels)", []).append(
                    node.name or node.output[0])
                continue
            for part, piece in enumerate(parts):
                add(node, piece, [layer_of[data[0]]], part)
            continue
        rule = RULES.get(node.op_type)
        fields = None
        if node.op_type == "Mul" and len(data) == 1 and len(constant_data) == 1:
            factor = g.constants[constant_data[0]]
            shape = g.shapes.get(data[0])
            if shape is not None and len(shape) == 4 and \
                    tuple(factor.shape) in ((shape[1], 1, 1), (1, shape[1], 1, 1)):
                params += int(factor.size)
                add(node, {"op": "scale"}, [layer_of[data[0]]])
                continue
        if rule is not None and not constant_data:
            try:
                fields = rule(node, a, g)
            except (ValueError, KeyError) as exc:
                unsupported.setdefault(f"{node.op_type} ({exc})", []).append(node.name)
                continue
        if fields is None and allow_opaque:
            shape = g.shapes.get(node.output[0])
            if len(data) == 1 and len(node.output) == 1 and shape is not None and \
                    len(shape) in (2, 4):
                held = sum(int(g.constants[v].size) for v in node.input
                           if v in g.initializers)
                params += held
                add(node, {"op": "opaque", "shape": list(shape[1:]), "params": held},
                    [layer_of[data[0]]])
                if opaque is not None:
                    opaque.append((layers[-1]["name"], node.op_type, held))
                continue
        if fields is None:
            what = node.op_type + (" with a constant operand" if constant_data else "")
            unsupported.setdefault(what, []).append(node.name or node.output[0])
            continue
        params += _parameters(node, g)
        out = node.output[0]
        if fields["op"] == "identity":
            layer_of[out] = layer_of[data[0]]
            continue
        last = layers[-1] if layers else None
        if (fields["op"] == "batchnorm" and last is not None and last["op"] == "conv"
                and layer_of.get(data[0]) == last["name"] and users.get(data[0]) == 1
                and "norm" not in last and "act" not in last):
            last["norm"] = "batchnorm"
            last["_bn"] = {"eps": fields["eps"], "momentum": fields["momentum"]}
            layer_of[out] = last["name"]
            continue
        if (fields["op"] in ACTIVATIONS and len(fields) == 1 and last is not None
                and last["op"] in ("conv", "linear") and layer_of.get(data[0]) == last["name"]
                and users.get(data[0]) == 1 and "act" not in last):
            last["act"] = fields["op"]
            layer_of[out] = last["name"]
            continue
        add(node, fields, [layer_of[v] for v in data])
    if unsupported:
        raise _fail(f"{sum(map(len, unsupported.values()))} ONNX node(s) without a spec "
                    f"equivalent: {unsupported_list(unsupported)}. Nothing was written", path)
    return _finish(layers, g, name), params


def _split(node: Any, a: dict, g: Graph) -> list[dict] | None:
    """The channel slices a Split of the channels makes (one per output), or None."""
    shape = g.shapes.get(node.input[0])
    if shape is None or len(shape) != 4 or a.get("axis", 0) % 4 != 1:
        return None
    sizes = _ints(g, node, 1) or [int(v) for v in a.get("split", [])]
    if not sizes:  # equal parts
        count = len(node.output)
        if shape[1] % count:
            return None
        sizes = [shape[1] // count] * count
    if len(sizes) != len(node.output) or sum(sizes) != shape[1]:
        return None
    parts, start = [], 0
    for size in sizes:
        fields: dict[str, Any] = {"op": "slice"}
        if start:
            fields["start"] = start
        if start + size < shape[1]:
            fields["stop"] = start + size
        parts.append(fields)
        start += size
    return parts


def _parameters(node: Any, g: Graph) -> int:
    """The trainable parameters a node holds: weights and biases, norm scales and shifts."""
    if node.op_type == "MatMul":
        return int(g.constants[node.input[1]].size)
    if node.op_type not in ("Conv", "ConvTranspose", "Gemm", "LayerNormalization",
                            "BatchNormalization"):
        return 0
    return sum(int(g.constants[node.input[i]].size) for i in (1, 2)
               if len(node.input) > i and node.input[i])


def _finish(layers: list[dict], g: Graph, name: str) -> dict:
    """Batch-norm settings most norms share go to `defaults`; others unfuse."""
    common = shared_batchnorm(layer["_bn"] for layer in layers if "_bn" in layer)
    out: list[dict] = []
    for layer in layers:
        bn = layer.pop("_bn", None)
        if bn is not None and bn != common:
            act = layer.pop("act", None)
            layer.pop("norm")
            out.append(layer)
            out.append({"op": "batchnorm", "name": f"{layer['name']}_norm", **bn})
            if act is not None:
                out.append({"op": act, "name": f"{layer['name']}_act"})
            continue
        if layer.get("op") in ("conv", "linear") and layer.get("bias") is True:
            layer.pop("bias")
        out.append(layer)
    spec: dict[str, Any] = {"name": name, "input": list(g.input_shape)}
    defaults = batchnorm_defaults(common)
    if defaults:
        spec["defaults"] = defaults
    spec["layers"] = out
    return spec


def check(spec: dict, path: str, params: int) -> None:
    """The spec analyzes to the file's parameter count and output shape."""
    from .api import analyze

    g = load(path)
    result = analyze(spec)
    output = g.shapes.get(g.output, ())[1:]
    if result.totals.params != params or (output and tuple(result.output_shape) != output):
        raise _fail(f"the imported spec does not reproduce the file: params "
                    f"{result.totals.params:,} (spec) vs {params:,} (file), output "
                    f"{tuple(result.output_shape)} vs {output}; this is a bug in cnncost's "
                    "ONNX importer, please report it", path)
