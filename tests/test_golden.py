"""Golden figures: every bundled spec must reproduce its published numbers exactly.

Sources: the project's reference sheet of published figures (shared/reference/
published.md beside the repository: torchvision 0.29 weight metadata, the MobileNetV1
paper, the seed tutorial texts), and closed-form counts written out below. Params are PyTorch's trainable parameters; MACs are conv/linear
multiply-accumulates without bias (torchvision's `_ops`, half of
``torch.utils.flop_counter``); buffers are BN running mean/var plus one
``num_batches_tracked`` per BN; ``keras_params`` is Keras' "Total params"
(trainable + BN moving mean/variance). Every expected value was also checked
against a hand-built PyTorch model (params, buffers, FlopCounterMode // 2); that check
is tests/test_torch_reference.py.
"""

from __future__ import annotations

import pytest

import cnncost
from cnncost.api import bundled_specs

# (spec, analyze kwargs, params, MACs, other exact totals)
GOLDEN = [
    # torchvision (published.md table)
    ("alexnet", {}, 61_100_840, 714_188_480, {"buffers": 0}),
    ("vgg11", {}, 132_863_336, 7_609_090_048, {}),
    ("vgg13", {}, 133_047_848, 11_308_466_176, {}),
    ("vgg16", {}, 138_357_544, 15_470_264_320, {}),
    ("vgg19", {}, 143_667_240, 19_632_062_464, {}),
    # 13 BNs: 2 * (2*64 + 2*128 + 3*256 + 6*512) = 8,448 params over vgg16;
    # buffers 8,448 + 13 num_batches_tracked
    ("vgg16_bn", {}, 138_365_992, 15_470_264_320, {"buffers": 8_461}),
    ("vgg16", {"variant": "bn"}, 138_365_992, 15_470_264_320, {"buffers": 8_461}),
    ("resnet18", {}, 11_689_512, 1_814_073_344, {"buffers": 9_620}),
    ("resnet34", {}, 21_797_672, 3_663_761_408, {"buffers": 17_060}),
    ("resnet50", {}, 25_557_032, 4_089_184_256, {"buffers": 53_173}),
    # the 2015 paper's layout (stride on the first 1x1): same params, 3.86 GMACs
    ("resnet50", {"variant": "paper"}, 25_557_032, 3_857_973_248, {"buffers": 53_173}),
    ("resnet101", {}, 44_549_160, 7_801_405_440, {"buffers": 105_448}),
    ("resnet152", {}, 60_192_808, 11_513_626_624, {"buffers": 151_579}),
    # 3,538,984 is also Keras' "Total params" of applications.MobileNetV2()
    ("mobilenet_v2", {}, 3_504_872, 300_774_272, {"buffers": 34_164,
                                                  "keras_params": 3_538_984}),
    # MobileNetV1: 4,231,976 trainable / 4,253,864 total is Keras' applications.MobileNet()
    ("mobilenet_v1", {}, 4_231_976, 568_740_352, {"keras_params": 4_253_864}),
    # LeNet-5 closed form, see test_lenet5_closed_form
    ("lenet5", {}, 61_706, 416_520, {"buffers": 0}),
    # seeds (Keras): params = keras_params when there is no BN
    ("seed_mnist_cnn", {}, 1_199_882, 11_992_448, {"keras_params": 1_199_882}),
    ("seed_mlp_4096", {}, 2_365_450, 2_364_416, {"keras_params": 2_365_450}),
    ("seed_mnist_mlp", {}, 134_794, 134_400, {"keras_params": 134_794}),
    ("seed_conv_arithmetic", {}, 67_392, 892_631_808, {"flops": 1_785_263_616}),
    # derivations in test_seed_cifar_preact_resnet_keras / test_seed_cifar_depthwise_keras
    ("seed_cifar_preact_resnet", {}, 4_368_714, 214_796_800, {"keras_params": 4_374_538,
                                                               "buffers": 5_849}),
    ("seed_cifar_depthwise", {}, 282_506, 13_656_576, {"keras_params": 287_754,
                                                        "buffers": 5_271}),
    ("seed_bottleneck_unit", {}, 5_264, 6_422_528 + 57_802_752, {"keras_params": 5_360}),
    # the zoo's family specs at their defaults: the torchvision model named in the comment,
    # as benchmarks/zoo_reference.py counted it (every size: tests/test_zoo.py)
    ("convnext", {}, 28_589_128, 4_455_531_264, {"buffers": 0}),  # convnext_tiny
    ("densenet", {}, 7_978_856, 2_834_161_664, {"buffers": 83_769}),  # densenet121
    ("efficientnet", {}, 5_288_548, 385_814_752, {"buffers": 42_065}),  # efficientnet_b0
    ("efficientnet_v2", {}, 21_458_488, 8_365_617_152, {"buffers": 153_982}),  # _v2_s, 384
    # with its two auxiliary classifiers, as googlenet(weights=None) builds it; torchvision
    # publishes it without them: 6,624,904
    ("googlenet", {}, 13_004_888, 1_498_376_192, {"buffers": 15_131}),
    ("googlenet", {"variant": "no_aux"}, 6_624_904, 1_498_376_192, {}),
    ("inception_v3", {}, 27_161_264, 5_713_216_096, {"buffers": 36_320}),  # 299x299
    ("mnasnet", {}, 4_383_312, 314_415_872, {"buffers": 37_972}),  # mnasnet1_0
    ("mobilenet_v3", {}, 5_483_032, 216_589_760, {"buffers": 24_446}),  # mobilenet_v3_large
    ("regnet", {}, 5_495_976, 413_812_608, {"buffers": 37_927}),  # regnet_x_400mf
    ("shufflenet_v2", {}, 2_278_604, 144_907_992, {"buffers": 16_236}),  # shufflenet_v2_x1_0
    ("squeezenet", {}, 1_248_424, 818_924_576, {"buffers": 0}),  # squeezenet1_0
]


def _id(case):
    name, kw = case[0], case[1]
    return name + "".join(f"-{v}" for v in kw.values() if isinstance(v, str))


@pytest.mark.parametrize("name,kwargs,params,macs,extra", GOLDEN, ids=[_id(c) for c in GOLDEN])
def test_golden(name, kwargs, params, macs, extra):
    totals = cnncost.analyze(name, **kwargs).totals
    assert totals.params == params
    assert totals.macs == macs
    assert totals.flops == 2 * macs
    for key, value in extra.items():
        assert getattr(totals, key) == value, key


def test_golden_covers_every_bundled_spec():
    missing = set(bundled_specs()) - {c[0] for c in GOLDEN}
    assert not missing, f"bundled specs without a golden entry: {sorted(missing)}"


# ----------------------------------------------------------------------- MobileNetV1

def weights(analysis):
    return sum(r.weights for r in analysis.rows)


def test_mobilenet_v1_weights():
    """Conv/FC kernels only (no BN, no FC bias): the paper's 4.2 M."""
    a = cnncost.analyze("mobilenet_v1")
    assert weights(a) == 4_209_088
    assert a.totals.macs == 568_740_352
    assert round(a.totals.macs / 1e6) == 569  # paper Table 8
    # BN: 2 params per channel of the 27 conv layers; FC bias: 1,000
    bn = a.totals.params - weights(a) - 1000
    assert bn == 2 * sum(r.shape[0] for r in a.rows if r.op == "batchnorm") == 21_888


def _printed(macs: int, printed: int) -> bool:
    """The paper prints millions of mult-adds, mostly rounded (568.74 -> 569) but in one
    case truncated (290.68 -> 290 at 160 px); accept either."""
    return printed in (round(macs / 1e6), macs // 10**6)


# (setting, exact MACs, exact conv/FC weights, paper's printed M mult-adds)
MOBILENET_V1_GRID = [
    ({"width": 0.75}, 325_400_448, 2_568_144, 325),  # Table 6
    ({"width": 0.5}, 149_497_088, 1_319_648, 149),
    ({"width": 0.25}, 41_030_272, 463_600, 41),
    ({"resolution": 192}, 418_121_728, 4_209_088, 418),  # Table 7
    ({"resolution": 160}, 290_675_200, 4_209_088, 290),
    ({"resolution": 128}, 186_400_768, 4_209_088, 186),
]


@pytest.mark.parametrize("setting,macs,n_weights,printed", MOBILENET_V1_GRID,
                         ids=[f"{k}={v}" for s, *_ in MOBILENET_V1_GRID for k, v in s.items()])
def test_mobilenet_v1_grid(setting, macs, n_weights, printed):
    a = cnncost.analyze("mobilenet_v1", set=setting)
    assert a.totals.macs == macs
    assert weights(a) == n_weights
    assert _printed(a.totals.macs, printed)


@pytest.mark.parametrize("variant,setting", [
    ("w075", {"width": 0.75}), ("w050", {"width": 0.5}), ("w025", {"width": 0.25}),
    ("r192", {"resolution": 192}), ("r160", {"resolution": 160}),
    ("r128", {"resolution": 128})])
def test_mobilenet_v1_variants_match_vars(variant, setting):
    by_variant = cnncost.analyze("mobilenet_v1", variant=variant).totals
    by_set = cnncost.analyze("mobilenet_v1", set=setting).totals
    assert by_variant == by_set


def test_mobilenet_v1_width_rounding():
    """Channels are max(int(c * width), 8): truncated, as TF-slim and Keras do."""
    a = cnncost.analyze("mobilenet_v1", set={"width": 0.75})
    convs = [r.shape[0] for r in a.rows if r.op in ("conv", "pointwise")]
    assert convs == [24, 48, 96, 96, 192, 192, 384, 384, 384, 384, 384, 384, 768, 768]
    a = cnncost.analyze("mobilenet_v1", set={"width": 0.25})
    assert [r.shape[0] for r in a.rows if r.op == "conv"] == [8]
    a = cnncost.analyze("mobilenet_v1", set={"width": 0.2})  # min_depth kicks in
    assert [r.shape[0] for r in a.rows if r.op == "conv"] == [8]
    assert a.output_shape == (1000,)


def test_mobilenet_v1_table3_single_layer():
    """Paper Table 3: 14x14x512 in, 3x3, 512 out, standard vs depthwise separable."""
    standard = cnncost.analyze({"input": [512, 14, 14], "layers": [
        {"op": "conv", "out": 512, "kernel": 3, "padding": 1, "bias": False}]})
    assert standard.totals.macs == 462_422_016
    assert weights(standard) == standard.totals.params == 2_359_296
    separable = cnncost.analyze({"input": [512, 14, 14], "layers": [
        {"op": "depthwise", "kernel": 3, "padding": 1, "bias": False},
        {"op": "pointwise", "out": 512, "bias": False}]})
    assert separable.totals.macs == 52_283_392
    assert weights(separable) == separable.totals.params == 266_752


# ----------------------------------------------------------------------- MobileNetV2

@pytest.mark.parametrize("variant,macs,params,stem,millions", [
    ("w140", 582_195_824, 6_108_776, 48, 582),
    ("w075", 209_069_792, 2_636_424, 24, 209),
    ("w050", 97_131_840, 1_968_680, 16, 97),
    ("w035", 59_285_808, 1_677_128, 16, 59),
])
def test_mobilenet_v2_widths(variant, macs, params, stem, millions):
    """torchvision's rounding, make_divisible(c * width, 8); the rounded MACs are the
    TF-slim MobileNetV2 table's (582 / 209 / 97 / 59 M MACs at 224)."""
    a = cnncost.analyze("mobilenet_v2", variant=variant)
    assert a.totals.macs == macs
    assert a.totals.params == params
    assert round(a.totals.macs / 1e6) == millions
    assert a.rows[1].name == "stem.conv" and a.rows[1].shape[0] == stem
    head = next(r for r in a.rows if r.name == "head.conv")
    assert head.shape[0] == (1792 if variant == "w140" else 1280)  # 1280 * max(1, width)


def test_mobilenet_v2_residuals():
    """Residual adds only where stride is 1 and in == out: 10 of 17 blocks."""
    a = cnncost.analyze("mobilenet_v2")
    assert sum(1 for r in a.rows if r.op == "add") == 10


# ----------------------------------------------------------------------- ResNet

def test_resnet50_buffers_and_paper_variant():
    a = cnncost.analyze("resnet50")
    assert a.totals.buffers == 53_173
    paper = cnncost.analyze("resnet50", variant="paper")
    assert paper.totals.macs == 3_857_973_248
    assert round(paper.totals.macs / 1e9, 1) == 3.9  # "3.8 x 10^9 FLOPs" in the paper
    assert paper.totals.params == a.totals.params


@pytest.mark.parametrize("name,blocks,projections", [
    ("resnet18", 8, 3), ("resnet34", 16, 3), ("resnet50", 16, 4), ("resnet101", 33, 4),
    ("resnet152", 50, 4)])
def test_resnet_structure(name, blocks, projections):
    a = cnncost.analyze(name)
    assert sum(1 for r in a.rows if r.op == "add") == blocks
    assert sum(1 for r in a.rows if "shortcut" in r.name and r.op == "conv") == projections
    assert a.output_shape == (1000,)


# ----------------------------------------------------------------------- LeNet-5

def test_lenet5_closed_form():
    conv = lambda cin, cout, k: cin * cout * k * k + cout  # noqa: E731
    fc = lambda n_in, n_out: n_in * n_out + n_out  # noqa: E731
    params = conv(1, 6, 5) + conv(6, 16, 5) + fc(16 * 5 * 5, 120) + fc(120, 84) + fc(84, 10)
    assert params == 156 + 2_416 + 48_120 + 10_164 + 850 == 61_706
    macs = 6 * 28 * 28 * 25 + 16 * 10 * 10 * 6 * 25 + 400 * 120 + 120 * 84 + 84 * 10
    a = cnncost.analyze("lenet5")
    assert (a.totals.params, a.totals.macs) == (params, macs)
    shapes = {r.name: r.shape for r in a.rows}
    assert shapes["c1.conv"] == (6, 28, 28)
    assert shapes["s2"] == (6, 14, 14)
    assert shapes["c3.conv"] == (16, 10, 10)
    assert shapes["s4"] == (16, 5, 5)
    assert shapes["flatten"] == (400,)
    assert a.output_shape == (10,)
    assert {r.op for r in a.rows if r.name.endswith(".act")} == {"tanh"}
    relu = cnncost.analyze("lenet5", variant="relu")
    assert {r.op for r in relu.rows if r.name.endswith(".act")} == {"relu"}
    assert relu.totals.params == params


# ----------------------------------------------------------------------- seeds

def test_seed_conv_arithmetic_layers():
    a = cnncost.analyze("seed_conv_arithmetic")
    first, second = [r for r in a.rows if r.op == "conv"]
    assert first.shape == (64, 222, 222)
    assert first.macs == 3 * 3 * 3 * 222 * 222 * 64 == 85_162_752  # the seed printed 28,387,584
    assert second.shape == (64, 111, 111)
    assert second.macs == 4 * 4 * 64 * 111 * 111 * 64 == 807_469_056
    assert a.output_shape == (64, 111, 111)
    assert a.totals.macs == 892_631_808  # the seed printed 835,856,640
    assert a.totals.flops == 1_785_263_616


def test_seed_bottleneck_unit_layers():
    a = cnncost.analyze("seed_bottleneck_unit")
    convs = {r.name: r for r in a.rows if r.op == "conv"}
    assert list(convs) == ["unit.reduce", "unit.expand"]
    assert convs["unit.reduce"].shape == (16, 112, 112)
    assert convs["unit.reduce"].macs == 32 * 112 * 112 * 16 == 6_422_528
    assert convs["unit.expand"].shape == (32, 112, 112)
    assert convs["unit.expand"].macs == 3 * 3 * 16 * 112 * 112 * 32 == 57_802_752
    assert a.totals.macs == 64_225_280  # the seed's table total
    assert sum(1 for r in a.rows if r.op == "add") == 1
    # the seed's code as printed: a 1x1 second conv
    code = cnncost.analyze("seed_bottleneck_unit", set={"kernel2": 1})
    assert [r.macs for r in code.rows if r.op == "conv"] == [6_422_528, 6_422_528]
    # the pool=True path: 2x2 max pool and a strided 1x1 shortcut conv
    pooled = cnncost.analyze("seed_bottleneck_unit", set={"pool": True})
    assert pooled.output_shape == (32, 56, 56)
    assert [r.name for r in pooled.rows if r.op == "conv"] == [
        "unit.reduce", "unit.expand", "unit.shortcut.conv"]


def test_seed_efficiency_table_depthwise_vs_standard():
    """The seed's 112x112x32 tables: depthwise 3x3 + pointwise vs standard 3x3."""
    dws = cnncost.analyze({"input": [32, 112, 112], "layers": [
        {"op": "depthwise", "kernel": 3, "padding": "same"},
        {"op": "pointwise", "out": 32}]})
    assert [r.macs for r in dws.rows[1:]] == [3_612_672, 12_845_056]
    std = cnncost.analyze({"input": [32, 112, 112], "layers": [
        {"op": "conv", "out": 32, "kernel": 3, "padding": "same"}]})
    assert std.totals.macs == 115_605_504


def test_seed_cifar_preact_resnet_keras():
    """What Keras' model.summary() would print ("Total params"), derived by hand.

    Keras: Conv2D/Dense have a bias; BN has gamma, beta (trainable) and moving
    mean, variance (non-trainable). conv(i, o, k) = k*k*i*o + o.
      stem conv(3, 32, 3)                                   =       896
      3 x [BN32 (64) + conv(32,32,3) (9,248)] x 2            =    55,872
      pool module 32->64: conv(32,64,1) 2,112 + BN32 64 + conv(32,64,3) 18,496
                          + BN64 128 + conv(64,64,3) 36,928  =    57,728
      2 x [BN64 128 + 36,928] x 2                            =   148,224
      pool module 64->128: 8,320 + 128 + 73,856 + 256 + 147,584 = 230,144
      2 x [BN128 256 + 147,584] x 2                          =   591,360
      pool module 128->256: 33,024 + 256 + 295,168 + 512 + 590,080 = 919,040
      2 x [BN256 512 + 590,080] x 2                          = 2,362,368
      final BN256 512 + Dense(256, 10) 2,570                 =     3,082
      trainable                                              = 4,368,714
    Non-trainable (moving stats = BN trainable counts): 2 * (3*2*32 + 32 + 64 + 2*2*64
      + 64 + 128 + 2*2*128 + 128 + 256 + 2*2*256 + 256) = 5,824
    Keras "Total params" = 4,374,538.
    """
    t = cnncost.analyze("seed_cifar_preact_resnet").totals
    assert t.params == 4_368_714
    assert t.keras_params - t.params == 5_824
    assert t.keras_params == 4_374_538
    # PyTorch buffers: the same moving stats + one counter for each of the 25 BNs
    assert t.buffers == 5_824 + 25


def test_seed_cifar_depthwise_keras():
    """Keras "Total params" of the seed's depthwise MiniModel, by hand.

    Unit(C -> C): BN 2C + DepthwiseConv2D 9C + C (bias) + BN 2C + conv1x1 C*C + C
    = C^2 + 15C; pool Unit(i -> o): 1x1 shortcut i*o + o, BN 2i, depthwise 10i,
    BN 2i, 1x1 i*o + o = 2io + 2o + 14i.
      stem 896; 2 x 1,504; 4,672; 2 x 5,056; 17,536; 2 x 18,304; 67,840; 2 x 69,376;
      BN256 512; Dense 2,570                         -> 282,506 trainable
    Moving stats: 4C per unit (at its input width) + 512 for the final BN = 5,248.
    """
    t = cnncost.analyze("seed_cifar_depthwise").totals
    unit = lambda c: c * c + 15 * c  # noqa: E731
    pool = lambda i, o: 2 * i * o + 2 * o + 14 * i  # noqa: E731
    trainable = (896 + 2 * unit(32) + pool(32, 64) + 2 * unit(64) + pool(64, 128)
                 + 2 * unit(128) + pool(128, 256) + 2 * unit(256) + 512 + 2_570)
    assert t.params == trainable == 282_506
    moving = 4 * (2 * 32 + 32 + 2 * 64 + 64 + 2 * 128 + 128 + 2 * 256) + 512
    assert t.keras_params == trainable + moving == 287_754
    a = cnncost.analyze("seed_cifar_depthwise")
    dws = [r for r in a.rows if r.op == "depthwise"]
    assert len(dws) == 11 and all(r.params == 10 * r.shape[0] for r in dws)  # 9C + C bias


@pytest.mark.parametrize("name", ["seed_cifar_preact_resnet", "seed_cifar_depthwise"])
def test_seed_cifar_shapes(name):
    a = cnncost.analyze(name)
    adds = [r for r in a.rows if r.op == "add"]
    assert [r.shape for r in adds if r.name.startswith("down")] == [
        (64, 16, 16), (128, 8, 8), (256, 4, 4)]
    assert next(r for r in a.rows if r.op == "avgpool").shape == (256, 1, 1)
    assert a.output_shape == (10,)


# ----------------------------------------------------------------------- every spec

SPECS = sorted(bundled_specs())


def test_bundled_specs_present():
    expected = {"alexnet", "lenet5", "mobilenet_v1", "mobilenet_v2", "resnet18", "resnet34",
                "resnet50", "resnet101", "resnet152", "vgg11", "vgg13", "vgg16", "vgg19",
                "vgg16_bn", "seed_mnist_cnn", "seed_mlp_4096", "seed_mnist_mlp",
                "seed_conv_arithmetic", "seed_cifar_preact_resnet", "seed_cifar_depthwise",
                "seed_bottleneck_unit"}
    assert expected <= set(SPECS)


@pytest.mark.parametrize("name", SPECS)
def test_spec_analyzes_with_description(name):
    spec = cnncost.load(name)
    assert spec.name == name
    assert spec.description.strip()
    assert spec.source.strip()
    a = cnncost.analyze(name)
    assert a.description == spec.description
    assert a.totals.params > 0 and a.totals.macs > 0
    assert all(r.shape for r in a.rows)
    for variant in spec.variants:
        cnncost.analyze(name, variant=variant)


@pytest.mark.parametrize("name", SPECS)
@pytest.mark.parametrize("batch", [1, 3])
def test_rows_sum_to_totals(name, batch):
    a = cnncost.analyze(name, batch=batch)
    t, rows = a.totals, a.rows
    assert sum(r.params for r in rows) == t.params
    assert sum(r.buffers for r in rows) == t.buffers
    assert sum(r.macs for r in rows) == t.macs
    assert sum(r.flops for r in rows) == t.flops == 2 * t.macs
    assert sum(r.other_ops for r in rows) == t.other_ops
    assert sum(r.act_bytes for r in rows) == t.activation_bytes
    assert sum(r.weight_bytes for r in rows) == t.weight_bytes == 4 * t.params
    assert t.params + sum(r.keras_nontrainable for r in rows) == t.keras_params
    assert sum(r.layers for r in rows) == t.layers == len(rows) - 1
    assert all(r.weights <= r.params for r in rows)
    assert t.peak_activation_bytes <= t.activation_bytes
    # collapsing to the top-level names keeps the sums
    top = a.collapse(1)
    assert sum(r.params for r in top) == t.params
    assert sum(r.macs for r in top) == t.macs
    if batch > 1:
        one = cnncost.analyze(name).totals
        assert t.macs == batch * one.macs and t.params == one.params

