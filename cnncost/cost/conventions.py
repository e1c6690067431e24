"""Counting profiles: what other tools call MACs/FLOPs and params, op by op.

FLOP counters disagree: fvcore counts one fused multiply-add as one "flop" and adds
batch-norm and adaptive-pooling elements; ptflops adds biases, batch norm,
activations and pooling (some of them twice); thop counts batch norm four times per
element and no activations; Keras counts batch-norm moving
statistics as parameters. A :class:`Profile` states one tool's rules as a registry
entry: for every primitive op, a rule giving the count that tool reports for it (per
sample; ``None``: the tool skips the op), and a rule for the parameter count. The
analysis applies the profile node by node, so a profile changes the MACs column (and
FLOPs = 2 x MACs, params, weight memory) but never shapes or memory.

``torchvision`` is the default and changes nothing: MACs of conv and linear layers,
bias excluded (cnncost's own rules, docs/conventions.md). Each other profile is checked
against the tool's recorded output (tests/data/convention_reference.json, written by
benchmarks/convention_reference.py) on every bundled spec. Pure Python; no torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NamedTuple

from .ops import OPS, Cost, numel
from .ops.base import Attrs, Shape, Shapes

# A rule: (input shapes, output shape, resolved attrs, cnncost's own Cost) -> count per sample.
Rule = Callable[[Shapes, Shape, Attrs, Cost], int]
ParamsRule = Callable[[Cost], int]


class Profile(NamedTuple):
    """One tool's counting rules."""

    name: str
    tool: str  # the tool and version whose numbers the profile reproduces
    label: str  # what that tool calls the number shown in the MACs column
    doc: str  # one line: what is counted
    counts: Mapping[str, Rule | None]  # op -> count per sample; None: the tool skips the op
    params: ParamsRule  # params as the tool reports them
    identity: bool = False  # the profile is cnncost's own rules (nothing to apply)
    # op -> the params the tool reports for it, where that is not `params` (a tool that
    # only counts the parameters of module types it knows)
    op_params: Mapping[str, Rule] = MappingProxyType({})
    # the tool splits its params into trainable and non-trainable (Keras): the analysis
    # keeps PyTorch's trainable count beside the tool's params
    splits_trainable: bool = False
    # op -> the "activations" the tool reports for it (pycls' acts), for a tool that
    # counts them; the analysis totals them as `acts`
    acts: Mapping[str, Rule] | None = None

    def apply(self, op: str, ins: Shapes, out: Shape, attrs: Attrs, cost: Cost) -> Cost:
        """`cost` with MACs and params as this tool counts them (a new Cost)."""
        rule = self.counts[op]
        own = self.op_params.get(op)
        params = own(ins, out, attrs, cost) if own is not None else self.params(cost)
        new = Cost(params=params, buffers=cost.buffers,
                   keras_nontrainable=cost.keras_nontrainable,
                   macs=rule(ins, out, attrs, cost) if rule is not None else 0,
                   other_ops=cost.other_ops, weights=cost.weights)
        if new.params > cost.params:  # the extra params are the Keras non-trainable ones
            new.keras_nontrainable = 0
        return new


# --------------------------------------------------------------------------- rules

def macs(ins: Shapes, out: Shape, attrs: Attrs, cost: Cost) -> int:
    """cnncost's MACs: conv/linear multiply-accumulates, bias excluded (0 for other ops)."""
    return cost.macs


def macs_plus_bias(ins: Shapes, out: Shape, attrs: Attrs, cost: Cost) -> int:
    """MACs plus one per output element when the layer has a bias."""
    return cost.macs + (numel(out) if attrs.get("bias") else 0)


def times_output(k: int) -> Rule:
    def rule(ins: Shapes, out: Shape, attrs: Attrs, cost: Cost) -> int:
        return k * numel(out)
    rule.__doc__ = f"{k} per output element"
    return rule


def times_input(k: int) -> Rule:
    def rule(ins: Shapes, out: Shape, attrs: Attrs, cost: Cost) -> int:
        return k * numel(ins[0])
    rule.__doc__ = f"{k} per input element"
    return rule


def norm(affine: int, plain: int) -> Rule:
    def rule(ins: Shapes, out: Shape, attrs: Attrs, cost: Cost) -> int:
        return (affine if attrs.get("affine", True) else plain) * numel(ins[0])
    rule.__doc__ = f"{affine} per element with a learned scale/shift, else {plain}"
    return rule


def batchnorm_by(kind: Callable[[Attrs], str], counts: Mapping[str, int]) -> Rule:
    """Per input element, by the kind of batch-norm module the builder makes: "full"
    (nn.BatchNorm with gamma and beta), "plain" (affine off) or "partial" (Keras' gamma-
    or beta-only norm, cnncost's PartialBatchNorm), or "weighted"/"unweighted" where
    only the presence of gamma matters."""
    def rule(ins: Shapes, out: Shape, attrs: Attrs, cost: Cost) -> int:
        return counts[kind(attrs)] * numel(ins[0])
    rule.__doc__ = ", ".join(f"{n} per element ({k})" for k, n in counts.items())
    return rule


def bn_module(attrs: Attrs) -> str:
    if not attrs["affine"]:
        return "plain"
    return "full" if attrs["center"] and attrs["scale"] else "partial"


def bn_gamma(attrs: Attrs) -> str:
    return "weighted" if attrs["affine"] and attrs["scale"] else "unweighted"


def on_vectors(rule: Rule) -> Rule:
    """`rule` for a vector input (nn.LayerNorm), 0 on a feature map (cnncost's
    ChannelLayerNorm, a subclass a type-keyed hook table does not know)."""
    def vector_only(ins: Shapes, out: Shape, attrs: Attrs, cost: Cost) -> int:
        return rule(ins, out, attrs, cost) if len(ins[0]) == 1 else 0
    vector_only.__doc__ = f"on vectors: {rule.__doc__}; on feature maps 0"
    return vector_only


def upsample_by_mode(nearest: int, bilinear: int) -> Rule:
    per = {"nearest": nearest, "bilinear": bilinear}

    def rule(ins: Shapes, out: Shape, attrs: Attrs, cost: Cost) -> int:
        return per[attrs["mode"]] * numel(out)
    rule.__doc__ = f"{nearest} per output element (nearest), {bilinear} (bilinear)"
    return rule


def no_params(ins: Shapes, out: Shape, attrs: Attrs, cost: Cost) -> int:
    return 0


def params_unless_partial(ins: Shapes, out: Shape, attrs: Attrs, cost: Cost) -> int:
    return 0 if bn_module(attrs) == "partial" else cost.params


def params_on_vectors(ins: Shapes, out: Shape, attrs: Attrs, cost: Cost) -> int:
    return cost.params if len(ins[0]) == 1 else 0


def trainable(cost: Cost) -> int:
    return cost.params


def keras_total(cost: Cost) -> int:
    return cost.params + cost.keras_nontrainable


def _all(rule: Rule | None) -> dict[str, Rule | None]:
    return dict.fromkeys(OPS, rule)


CONV_LINEAR = ("conv", "depthwise", "pointwise", "conv_transpose", "linear")

# fvcore 0.1.5 FlopCountAnalysis: handles for aten::_convolution, linear/addmm/matmul
# (no bias), batch_norm (eval: 2 per element with a gamma, 1 without), layer_norm (5 with
# affine, 4 without), adaptive_avg_pool2d (1 per input element, which is also how a
# global average pool is written in torchvision) and upsample (1 per output element
# nearest, 4 bilinear); every other op (relu, add, max pool, avg pool, softmax, pad,
# slice, layer scale's mul, ...) has no handle and counts 0.
FVCORE = {**_all(None), **dict.fromkeys(CONV_LINEAR, macs),
          "batchnorm": batchnorm_by(bn_gamma, {"weighted": 2, "unweighted": 1}),
          "layernorm": norm(5, 4),
          "adaptive_avgpool": times_input(1), "global_avgpool": times_input(1),
          "upsample": upsample_by_mode(1, 4)}

# ptflops 0.7.5, pytorch backend (module hooks plus its default patching of
# torch.nn.functional, count_functional=True). Conv and linear: MACs plus the bias (one
# per output element). BatchNorm: 2 per input element with affine (1 without). LayerNorm:
# 1 per element (its hook tests `module.affine`, which nn.LayerNorm lacks). Modules whose
# forward calls a patched functional are counted twice: nn.ReLU, nn.ELU, nn.PReLU, nn.GELU
# (hook + F.relu/elu/prelu/gelu: 2 per element), every pooling module (hook + F.*pool*:
# 2 per input element). nn.ReLU6 and nn.LeakyReLU once (their functionals are not
# patched); nn.SiLU and nn.Softmax once (functional only); tanh, sigmoid, hardswish and
# hardsigmoid 0; residual `x + y` and SE `x * s` (Python operators) 0. Hooks are keyed
# by exact module type: cnncost's ChannelLayerNorm (layer norm on a feature map) and
# PartialBatchNorm (Keras' gamma- or beta-only norm) count 0. nn.Upsample: 2 per output
# element (its hook + the patched F.interpolate), whatever the mode. Pad, slice, crop,
# layer scale, rescaling and normalization: 0.
PTFLOPS = {**_all(None), **dict.fromkeys(CONV_LINEAR, macs_plus_bias),
           "batchnorm": batchnorm_by(bn_module, {"full": 2, "plain": 1, "partial": 0}),
           "layernorm": on_vectors(norm(1, 1)), "upsample": upsample_by_mode(2, 2),
           "relu": times_output(2), "elu": times_output(2), "prelu": times_output(2),
           "gelu": times_output(2), "relu6": times_output(1), "leaky_relu": times_output(1),
           "silu": times_output(1), "softmax": times_output(1),
           **dict.fromkeys(("maxpool", "avgpool", "adaptive_avgpool", "adaptive_maxpool",
                            "global_avgpool", "global_maxpool"), times_input(2))}



def thop_conv(ins: Shapes, out: Shape, attrs: Attrs, cost: Cost) -> int:
    """thop: output elements x (C_in / groups) x K_h x K_w, bias excluded (also transposed)."""
    groups: int = attrs["groups"] if "groups" in attrs else ins[0][0]  # depthwise: C_in
    kh: int
    kw: int
    kh, kw = attrs["kernel"]
    return numel(out) * (ins[0][0] // groups) * kh * kw


def thop_adaptive_avg(ins: Shapes, out: Shape, attrs: Attrs, cost: Cost) -> int:
    """thop: (input/output area ratio + 1) x output elements, in float64 as thop does."""
    c, h, w = ins[0]
    oh, ow = out[1:] if len(out) == 3 else (1, 1)
    return int(((h / oh) * (w / ow) + 1) * (c * oh * ow))


def thop_softmax(ins: Shapes, out: Shape, attrs: Attrs, cost: Cost) -> int:
    """thop: per position, C exponentials, C - 1 adds and C divides over the channels."""
    c = out[0]
    return (numel(out) // c) * (3 * c - 1)


# thop 0.1.1.post2209072238 profile(): module hooks only. Conv (every kind, transposed
# included): output elements x C_in/groups x kernel area, no bias; linear: in x out, no
# bias; batch norm and layer norm 4 per element with affine (2 x its "2 per element"),
# 2 without; PReLU 1 per element; softmax 3C - 1 per position; avg pool 1 per *output*
# element; adaptive/global avg pool (input/output area + 1) per output element; ReLU,
# ReLU6, LeakyReLU, max pools and dropout 0; modules without a rule (tanh, sigmoid,
# ELU, GELU, SiLU, hardswish, flatten) 0; Python `+`/`*` 0. Hooks are keyed by exact
# module type, and thop counts params only for the modules it hooks: cnncost's
# ChannelLayerNorm (layer norm on a feature map), PartialBatchNorm and layer scale count
# 0 MACs and 0 params. nn.Upsample: 1 per output element (nearest), 11 (bilinear). Pad,
# slice, crop, rescaling and normalization: 0.
THOP = {**_all(None), **dict.fromkeys(("conv", "depthwise", "pointwise", "conv_transpose"),
                                       thop_conv),
        "linear": macs, "batchnorm": batchnorm_by(bn_module, {"full": 4, "plain": 2,
                                                               "partial": 0}),
        "layernorm": on_vectors(norm(4, 2)), "upsample": upsample_by_mode(1, 11),
        "prelu": times_output(1), "softmax": thop_softmax, "avgpool": times_output(1),
        "adaptive_avgpool": thop_adaptive_avg, "global_avgpool": thop_adaptive_avg}

def macs_plus_bias_once(ins: Shapes, out: Shape, attrs: Attrs, cost: Cost) -> int:
    """MACs plus one per output channel when the layer has a bias (pycls' conv2d_cx and
    linear_cx add `w_out`, once, not once per output element)."""
    return cost.macs + (out[0] if attrs.get("bias") else 0)


def output_elements(ins: Shapes, out: Shape, attrs: Attrs, cost: Cost) -> int:
    return numel(out)


# pycls (facebookresearch/pycls, models/blocks.py) complexity(): conv2d_cx and linear_cx
# add MACs plus w_out when the layer has a bias to "flops", and their output elements to
# "acts"; pool2d_cx (the max pool of the ResNet stem) adds its output elements to "acts";
# norm2d_cx adds only params; gap2d_cx, activations, residual adds and SE's multiply add
# nothing. Its models use only these layers, so other ops are skipped.
PYCLS = {**_all(None), **dict.fromkeys(CONV_LINEAR, macs_plus_bias_once)}
PYCLS_ACTS: dict[str, Rule] = {**dict.fromkeys(CONV_LINEAR, output_elements),
                               "maxpool": output_elements, "avgpool": output_elements}

PROFILES: dict[str, Profile] = {}


def register(profile: Profile) -> Profile:
    missing = sorted(set(OPS) - set(profile.counts))
    if missing:  # every op must be stated, "skipped" included (None)
        raise RuntimeError(f"profile {profile.name!r} has no rule for {missing}")
    PROFILES[profile.name] = profile
    return profile


register(Profile(
    "torchvision", "torchvision 0.29 `_ops` metadata, torch.utils.flop_counter (FLOPs / 2)",
    "MACs", "conv/linear multiply-accumulates, bias excluded; trainable params",
    _all(macs), trainable, identity=True))
register(Profile(
    "fvcore", "fvcore 0.1.5.post20221221 FlopCountAnalysis.total(), parameter_count",
    "fvcore flops", "conv/linear MACs (no bias) + batch/layer norm + adaptive/global avg pool "
    "inputs; trainable params", FVCORE, trainable))
register(Profile(
    "ptflops", "ptflops 0.7.5 get_model_complexity_info(backend='pytorch')",
    "ptflops MACs", "conv/linear MACs + bias + batch norm + activations + pooling (ReLU and "
    "pooling twice); trainable params", PTFLOPS, trainable))
register(Profile(
    "thop", "thop 0.1.1.post2209072238 profile(model, inputs)",
    "thop MACs", "conv/linear MACs (no bias) + 4 x batch-norm elements + avg pooling + "
    "softmax; trainable params of the module types it knows", THOP, trainable,
    op_params={"scale": no_params, "batchnorm": params_unless_partial,
               "layernorm": params_on_vectors}))
register(Profile(
    "keras", "Keras model.summary() 'Total params' (Keras reports no FLOPs)",
    "MACs", "params include batch-norm moving mean/variance; MACs as torchvision",
    _all(macs), keras_total, splits_trainable=True))

register(Profile(
    "pycls", "pycls complexity() (flops, params, acts; dev/model_complexity.json)",
    "pycls flops", "conv/linear MACs + one add per output channel with a bias; acts: "
    "output elements of conv, linear and pooling layers; trainable params",
    PYCLS, trainable, acts=PYCLS_ACTS))

DEFAULT = "torchvision"


def get(name: str | None) -> Profile:
    """The profile called `name` (None: the default); KeyError-free: raises ValueError."""
    from ..errors import did_you_mean, one_of

    key = DEFAULT if name is None else name
    if key not in PROFILES:
        raise ValueError(f"unknown convention {name!r}{did_you_mean(str(name), PROFILES)} "
                         f"(conventions: {one_of(PROFILES)})")
    return PROFILES[key]
