"""`train_only: true` (auxiliary heads, GoogLeNet/Inception): the module exists, so its
params count, but its work and activations count only with --set training=true, as the
built model runs it only in training (and verify checks both ways)."""

from __future__ import annotations

import pytest

import cnncost
from cnncost import SpecError

SPEC = {"name": "aux", "input": [3, 32, 32], "layers": [
    {"op": "conv", "name": "c1", "out": 8, "kernel": 3, "act": "relu"},
    {"op": "sequential", "name": "aux1", "train_only": True, "layers": [
        {"op": "adaptive_avgpool", "output": 4},
        {"op": "conv", "out": 16, "kernel": 1, "act": "relu"},
        "flatten", {"op": "linear", "out": 10}]},
    {"op": "conv", "name": "c2", "from": "c1", "out": 16, "kernel": 3, "stride": 2,
     "act": "relu"},
    {"op": "global_avgpool", "keepdims": False},
    {"op": "linear", "out": 10}]}
AUX_PARAMS = 8 * 16 + 16 + 256 * 10 + 10
AUX_MACS = 8 * 16 * 16 + 256 * 10


def test_params_always_work_only_in_training():
    plain = cnncost.analyze(SPEC)
    training = cnncost.analyze(SPEC, set={"training": True})
    assert plain.totals.params == training.totals.params
    assert sum(r.params for r in plain.rows if r.name.startswith("aux1.")) == AUX_PARAMS
    assert training.totals.macs - plain.totals.macs == AUX_MACS
    aux_rows = [r for r in plain.rows if r.name.startswith("aux1.")]
    assert all(r.macs == r.other_ops == r.act_bytes == 0 for r in aux_rows)
    assert training.totals.activation_bytes > plain.totals.activation_bytes


def test_the_built_model_runs_the_head_in_training_only():
    torch = pytest.importorskip("torch")
    model = cnncost.build(SPEC)
    seen = []
    model.get_submodule("aux1.linear1").register_forward_hook(lambda *a: seen.append(1))
    x = torch.randn(2, 3, 32, 32)
    model.eval()(x)
    assert seen == []
    model.train()(x)
    assert seen == [1]


@pytest.mark.parametrize("training", [False, True])
def test_verify_agrees_either_way(training):
    pytest.importorskip("torch")
    from cnncost.pytorch.verification import verify

    result = verify(SPEC, device="cpu", latency_runs=0, set={"training": training})
    assert result.ok


def test_the_evaluation_path_cannot_read_a_head():
    spec = {**SPEC, "layers": SPEC["layers"][:2] + [{"op": "linear", "out": 3}]}
    with pytest.raises(SpecError) as info:
        cnncost.analyze(spec)
    assert "reads 'aux1.linear1', a train_only layer" in str(info.value.problems[0])


def test_training_is_a_boolean_builtin():
    with pytest.raises(SpecError, match="variable 'training' is true or false"):
        cnncost.analyze(SPEC, set={"training": 1})
    with pytest.raises(SpecError, match="not allowed"):
        cnncost.analyze({"input": [3, 8, 8], "vars": {"training": False}, "layers": ["relu"]})
    assert "training" not in cnncost.analyze(SPEC).vars  # only when set


def test_train_only_must_be_a_boolean():
    with pytest.raises(SpecError, match="train_only: expected true or false"):
        cnncost.analyze({"input": [3, 8, 8], "layers": [{"op": "relu", "train_only": "yes"}]})
