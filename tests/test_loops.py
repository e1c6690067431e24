"""`for` loops and the `index` a stage's copies see: the layers once per value, chained,
named iter1..N, the loop variable in scope; errors located at the loop."""

from __future__ import annotations

import pytest

import cnncost
from cnncost import SpecError


def shapes(spec: dict) -> dict:
    return {r.name: r.shape for r in cnncost.analyze(spec).rows}


def test_for_repeats_its_layers_with_the_variable_in_scope():
    spec = {"input": [3, 32, 32], "vars": {"widths": [8, 16, 32]}, "layers": [
        {"op": "for", "name": "stages", "each": "w", "in": "widths", "layers": [
            {"op": "conv", "name": "down", "out": "w", "kernel": 3, "stride": 2, "padding": 1},
            {"op": "relu"}]}]}
    s = shapes(spec)
    assert s["stages.iter1.down"] == (8, 16, 16) and s["stages.iter3.down"] == (32, 4, 4)
    assert [n for n in s if n.endswith("relu1")] == [f"stages.iter{k}.relu1" for k in (1, 2, 3)]


@pytest.mark.parametrize("loop_in", ["range(3)", [0, 1, 2], "[0, 1, 2]"])
def test_in_takes_a_list_or_an_expression(loop_in):
    spec = {"input": [4, 8, 8], "layers": [
        {"op": "for", "each": "i", "in": loop_in,
         "layers": [{"op": "conv", "out": "4 + i", "kernel": 1}]}]}
    assert cnncost.analyze(spec).output_shape == (6, 8, 8)


def test_references_reach_into_loop_copies():
    spec = {"input": [4, 8, 8], "layers": [
        {"op": "for", "name": "body", "each": "i", "in": "range(2)",
         "layers": [{"op": "conv", "name": "c", "out": 4, "kernel": 1}]},
        {"op": "add", "inputs": ["body.iter1", "body.iter2"]}]}
    assert cnncost.analyze(spec).rows[-1].shape == (4, 8, 8)


def test_stage_copies_see_their_index():
    spec = {"input": [8, 16, 16], "vars": {"outs": [8, 16, 24]}, "layers": [
        {"op": "stage", "name": "s", "block": "basic", "repeat": 3,
         "with": {"out": "outs[index]"}}]}
    s = shapes(spec)
    last = {k: [shape for name, shape in s.items() if name.startswith(f"s.block{k}.")][-1]
            for k in (1, 2, 3)}
    assert [last[k][0] for k in (1, 2, 3)] == [8, 16, 24]


def test_the_built_model_runs_the_loop():
    torch = pytest.importorskip("torch")
    spec = {"input": [3, 16, 16], "layers": [
        {"op": "for", "each": "k", "in": [1, 3, 5],
         "layers": [{"op": "conv", "out": 4, "kernel": "k", "padding": "k // 2"}]}]}
    model = cnncost.build(spec)
    kernels = [m.kernel_size for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    assert kernels == [(1, 1), (3, 3), (5, 5)]
    assert model(torch.zeros(1, 3, 16, 16)).shape == (1, 4, 16, 16)


@pytest.mark.parametrize("loop,fragment", [
    ({"each": "i", "in": "3"}, "in: expected a list to loop over, received 3"),
    ({"each": "i", "in": "range(20000)"}, "(limit 10,000)"),
    ({"each": "i", "in": "wdiths"}, "did you mean 'widths'"),
    ({"in": "range(2)"}, "for needs 'each: NAME'"),
    ({"each": "i"}, "for needs 'in:'"),
    ({"each": "in_h", "in": "range(2)"}, "each: the loop variable must be a name"),
])
def test_loop_errors(loop, fragment):
    spec = {"input": [3, 8, 8], "vars": {"widths": [4]},
            "layers": [{"op": "for", **loop, "layers": ["relu"]}]}
    with pytest.raises(SpecError) as info:
        cnncost.analyze(spec)
    assert any(fragment in str(p) for p in info.value.problems), info.value.problems
