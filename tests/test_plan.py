"""Expansion plans (cnncost.lang.plan): evaluating a plan gives exactly the graph the full
expansion gives, or None (then the full expansion runs), never another graph.

Checked on every bundled spec and variant with the variables moved around, on random
architectures from the verify property test at other input sizes, and on small specs
whose structure follows their variables (repeat, when, a residual's shortcut, a fused
activation, a loop). Problems found through the planned path are the full expansion's,
word for word.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnncost
from cnncost.api import builtin_blocks, bundled_specs, load, resolve_vars
from cnncost.cost.analysis import analyze_graph
from cnncost.errors import ErrorSink, SpecError
from cnncost.lang import plan as plans
from cnncost.lang.expand import expand
from cnncost.lang.plan import compile_plan, evaluate, expand_planned

from test_property_verify import architectures


def full(spec, variables, input_shape=None):
    errors = ErrorSink()
    graph = expand(spec, builtin_blocks(), variables, errors, input_shape)
    return graph if graph is not None and not errors else None


def same(planned, expanded) -> None:
    """A planned graph is the expanded graph (its shared live-tensor schedules aside), and
    analyzes to the same numbers, per layer and in total, peak memory included."""
    assert expanded is not None
    assert planned._replace(shared=None, columns=None) == expanded
    for batch, dtype in ((1, "fp32"), (3, "bf16")):
        assert analyze_graph(planned, batch, dtype) == analyze_graph(expanded, batch, dtype)


def moved(spec, variables, seed: int, count: int = 6) -> list[dict]:
    """Settings near `variables`: integers moved up and down, booleans flipped; those that
    resolve (derived variables follow)."""
    rnd = random.Random(seed)
    out = []
    for _ in range(count):
        changed = {}
        for key, value in variables.items():
            if key not in spec.vars or rnd.random() < 0.5:
                continue
            if isinstance(value, bool):
                changed[key] = not value
            elif isinstance(value, int):
                changed[key] = max(1, value + rnd.choice([-8, -1, 1, 2, 16, value]))
        try:
            out.append(resolve_vars(spec, None, changed))
        except SpecError:
            continue
    return out


@pytest.mark.parametrize("name", sorted(bundled_specs()))
def test_bundled_specs_plans_give_the_expansion(name):
    spec = load(name)
    defaults = resolve_vars(spec)
    plan = compile_plan(spec, builtin_blocks(), defaults)
    assert plan is not None, f"{name}: no plan"
    settings_ = [defaults, *(resolve_vars(spec, v) for v in spec.variants)]
    settings_ += moved(spec, defaults, seed=len(name))
    evaluated = 0
    for variables in settings_:
        graph = evaluate(plan, variables)
        if graph is not None:
            evaluated += 1
            same(graph, full(spec, variables))
    assert evaluate(plan, defaults) is not None  # the plan fits the settings it was made with
    assert evaluated >= 1


@pytest.mark.parametrize("name", ["resnet50", "mobilenet_v2", "efficientnet", "regnet",
                                  "shufflenet_v2", "inception_v3"])
def test_plans_follow_the_input_size(name):
    spec = load(name)
    variables = resolve_vars(spec)
    plan = compile_plan(spec, builtin_blocks(), variables)
    assert plan is not None
    for size in (96, 161, 224, 299):
        shape = (3, size, size)
        graph = evaluate(plan, variables, shape)
        if graph is not None:
            same(graph, full(spec, variables, shape))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.data_too_large])
@given(spec=architectures(), h=st.integers(4, 40), w=st.integers(4, 40),
       c=st.integers(1, 8))
def test_random_architectures_plans_give_the_expansion(spec, h, w, c):
    loaded = load(spec)
    plan = compile_plan(loaded, builtin_blocks(), resolve_vars(loaded))
    assert plan is not None
    assert evaluate(plan, resolve_vars(loaded)) is not None
    shape = (c, h, w)
    graph = evaluate(plan, resolve_vars(loaded), shape)
    expanded = full(loaded, resolve_vars(loaded), shape)
    if graph is not None:
        same(graph, expanded)


# A spec whose structure follows its variables: a guard for each kind of decision.
STRUCTURAL = {
    "name": "structural",
    "input": [3, "res", "res"],
    "vars": {"res": 32, "depth": 2, "se": True, "width": 16, "act": "relu",
             "widths": [8, 16], "head": True},
    "blocks": {
        "unit": {"params": {"out": None, "stride": 1},
                 "shortcut": "auto",
                 "layers": [{"op": "conv", "out": "out", "kernel": 3, "stride": "stride",
                             "padding": 1, "norm": "batchnorm", "act": "act"}]},
    },
    "layers": [
        {"op": "conv", "out": "width", "kernel": 3, "padding": 1, "act": "act"},
        {"op": "stage", "block": "unit", "repeat": "depth", "stride": 2,
         "with": {"out": "width * 2"}},
        {"op": "se", "ratio": 4, "when": "se"},
        {"op": "for", "each": "w", "in": "widths",
         "layers": [{"op": "conv", "out": "w", "kernel": 1}]},
        {"op": "residual", "shortcut": "if_match",
         "layers": [{"op": "conv", "out": "widths[-1]", "kernel": 3, "padding": 1}]},
        {"op": "global_avgpool", "keepdims": False},
        {"op": "linear", "out": 10, "when": "head"},
    ],
}

STRUCTURE_CHANGES = [
    {"depth": 3}, {"depth": 0}, {"se": False}, {"act": "none"}, {"act": "relu6"},
    {"widths": [8, 16, 32]}, {"widths": [8, 12]}, {"head": False}, {"res": 31},
    {"width": 8, "widths": [4, 16]},
]


def structural_spec():
    return load(STRUCTURAL)


def test_the_structural_spec_plans():
    spec = structural_spec()
    plan = compile_plan(spec, builtin_blocks(), resolve_vars(spec))
    assert plan is not None
    same(evaluate(plan, resolve_vars(spec)), full(spec, resolve_vars(spec)))


@pytest.mark.parametrize("change", STRUCTURE_CHANGES, ids=lambda c: ",".join(map(str, c)))
def test_a_structural_change_is_never_evaluated_into_another_graph(change):
    spec = structural_spec()
    plan = compile_plan(spec, builtin_blocks(), resolve_vars(spec))
    variables = resolve_vars(spec, None, change)
    graph = evaluate(plan, variables)
    expanded = full(spec, variables)
    if graph is not None:
        same(graph, expanded)
    elif expanded is not None:  # the structure differs: the guard saw it
        def structure(nodes):
            return [(n.name, n.op, n.inputs) for n in nodes]

        assert structure(expanded.nodes) != structure(plan.nodes) or (
            expanded.nodes[0].shape != plan.nodes[0].shape)


def test_width_changes_are_evaluated_not_expanded():
    """Changing a width or the resolution keeps the structure: the plan evaluates it."""
    spec = structural_spec()
    plan = compile_plan(spec, builtin_blocks(), resolve_vars(spec))
    for change in ({"width": 24}, {"res": 64}, {"widths": [4, 8]}, {"width": 32, "res": 48}):
        variables = resolve_vars(spec, None, change)
        graph = evaluate(plan, variables)
        assert graph is not None, change
        same(graph, full(spec, variables))


def test_expand_planned_keeps_a_plan_per_structure_and_gives_the_expansion():
    spec = structural_spec()
    sequence = [{}, {}, {"width": 24}, {"depth": 3}, {"depth": 3, "width": 8}, {"se": False},
                {"depth": 1}, {"head": False}, {}, {"depth": 3}]
    for change in sequence:
        variables = resolve_vars(spec, None, change)
        graph = expand_planned(spec, builtin_blocks(), variables, ErrorSink())
        same(graph, full(spec, variables))
    entry = plans._ENTRIES[id(spec)]
    assert 1 <= len(entry.plans) <= plans.MAX_PLANS


def problems(call):
    with pytest.raises(SpecError) as info:
        call()
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize("bad", [
    {"width": 0}, {"depth": -1}, {"res": 2}, {"act": "swish2"}, {"widths": [8, 0]},
    {"width": 7},  # SE needs channels divisible by its ratio only if checked; any outcome
])
def test_problems_through_planned_specs_are_the_full_expansions(bad):
    spec = structural_spec()
    for _ in range(3):  # the spec now has a plan
        cnncost.analyze(spec)
    assert plans._ENTRIES[id(spec)].plans
    fresh = structural_spec()  # another Spec object: no plan
    try:
        expected = cnncost.analyze(fresh, set=bad)
    except SpecError as exc:
        assert problems(lambda: cnncost.analyze(spec, set=bad)) == [str(p) for p in
                                                                    exc.problems]
    else:
        assert cnncost.analyze(spec, set=bad).to_dict() == expected.to_dict()


def test_the_planned_path_is_taken():
    """Analyses after the second of a spec come from its plan (else this file tests
    nothing): the plan's shared dict is on the graph."""
    spec = load("resnet50")
    for _ in range(3):
        cnncost.build_graph(spec)
    graph = cnncost.build_graph(spec, set={"width": 48})
    assert graph.shared is not None
    planned = cnncost.analyze(spec, set={"width": 48})
    expanded = analyze_graph(full(spec, resolve_vars(spec, None, {"width": 48})))
    assert (planned.rows, planned.totals) == (expanded.rows, expanded.totals)


def test_totals_only_analysis_has_the_same_totals():
    for name in ("resnet50", "densenet", "googlenet"):
        whole = cnncost.analyze(name, batch=2)
        totals = cnncost.analyze(name, batch=2, rows=False)
        assert totals.totals == whole.totals and totals.rows == []
        assert totals.output_shape == whole.output_shape


def test_totals_only_analysis_reports_limits_at_their_layer():
    assert problems(lambda: cnncost.analyze("resnet50", batch=10**9, rows=False)) == \
        problems(lambda: cnncost.analyze("resnet50", batch=10**9))


# Block calls across evaluations (Plan.calls): a call whose given values, input shape and
# the variables it reads are those of a call of an earlier evaluation takes its layers.

@pytest.mark.parametrize("name", ["resnet50", "mobilenet_v2", "regnet", "densenet121"])
def test_a_sweep_reuses_block_calls_and_gives_the_expansion(name):
    """A width x resolution grid, resolution varying fastest as `compare --sweep` orders
    it: deep stages see the same feature-map sizes for neighbouring resolutions."""
    spec = load(name)
    defaults = resolve_vars(spec)
    plan = compile_plan(spec, builtin_blocks(), defaults)
    assert plan is not None
    sizes = (160, 162, 164, 166, 192)
    reused = 0
    for width_change in ({}, *({k: v} for k, v in moved_width(spec, defaults))):
        variables = resolve_vars(spec, None, width_change)
        previous = None
        for size in sizes:
            graph = evaluate(plan, variables, (3, size, size))
            assert graph is not None, (width_change, size)
            same(graph, full(spec, variables, (3, size, size)))
            if previous is not None:
                reused += sum(a.attrs is b.attrs for a, b in zip(graph.nodes, previous.nodes,
                                                                 strict=True)
                              if a.attrs is not plan.nodes[a.index].attrs)
            previous = graph
    assert plan.calls, f"{name}: no block call kept"
    assert reused, f"{name}: no layer taken from an earlier evaluation"


def moved_width(spec, defaults):
    """One other value of the spec's width-like variable (`width`, or none)."""
    value = defaults.get("width")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return []
    return [("width", value * 2 if isinstance(value, int) else value * 0.5)]


GLOBAL_READ = {
    "name": "global_read",
    "input": [3, 32, 32],
    "vars": {"k": 3, "mult": 2, "eps": 1e-5},
    "blocks": {
        # reads `k`, `mult` and `eps` from the variables, not from its parameters
        "unit": {"params": {"out": None},
                 "shortcut": "auto",
                 "layers": [{"op": "conv", "out": "out * mult", "kernel": "k",
                             "padding": "k // 2", "norm": "batchnorm", "act": "relu"},
                            {"op": "conv", "out": "out", "kernel": 1},
                            {"op": "batchnorm", "eps": "eps"}]},
    },
    "layers": [
        {"op": "conv", "out": 8, "kernel": 3, "padding": 1},
        {"op": "stage", "block": "unit", "repeat": 2, "with": {"out": 8}},
        {"op": "global_avgpool", "keepdims": False},
        {"op": "linear", "out": 10},
    ],
}


def test_a_block_reading_a_variable_is_evaluated_again_when_it_changes():
    """The block's given values and input shape stay; a variable it reads by name moves:
    its kept call must not be taken."""
    spec = load(GLOBAL_READ)
    plan = compile_plan(spec, builtin_blocks(), resolve_vars(spec))
    assert plan is not None
    for change in ({}, {"k": 5}, {"mult": 3}, {"eps": 1e-3}, {"k": 1, "mult": 1}, {},
                   {"k": 5}):
        variables = resolve_vars(spec, None, change)
        graph = evaluate(plan, variables)
        assert graph is not None, change
        same(graph, full(spec, variables))
    assert plan.calls


def test_kept_block_calls_are_bounded(monkeypatch):
    monkeypatch.setattr(plans, "MAX_CALLS", 16)
    spec = load(GLOBAL_READ)
    plan = compile_plan(spec, builtin_blocks(), resolve_vars(spec))
    sizes = []
    for k in range(1, 80, 2):  # each k: a call of `unit` kept (the second is alike)
        assert evaluate(plan, resolve_vars(spec, None, {"k": k}), (3, 8, 8)) is not None
        sizes.append(len(plan.calls))
    assert max(sizes) == 16
    assert any(b < a for a, b in zip(sizes, sizes[1:], strict=False))  # forgotten when full


def test_layer_costs_kept_across_analyses_follow_the_convention_and_batch():
    """A plan's graphs share their layers' costs by convention (Graph.shared): every
    convention, batch and dtype gives what an unplanned spec gives."""
    from cnncost.cost.conventions import PROFILES

    spec = load("mobilenet_v2")
    for _ in range(3):
        cnncost.analyze(spec)
    for convention in PROFILES:
        for batch, dtype in ((1, "fp32"), (4, "fp16")):
            for change in ({}, {"width": 0.5}):
                planned = cnncost.analyze(spec, convention=convention, batch=batch,
                                          dtype=dtype, set=change)
                fresh = cnncost.analyze(load("mobilenet_v2"), convention=convention,
                                        batch=batch, dtype=dtype, set=change)
                assert planned.to_dict() == fresh.to_dict(), (convention, batch, change)


def test_kept_block_calls_are_bounded_by_the_layers_they_hold(monkeypatch):
    """A call holds its layers (and its inner calls' again): the layers kept in all are
    bounded too, so a sweep over a huge spec does not keep a copy per point."""
    monkeypatch.setattr(plans, "MAX_CALL_NODES", 40)
    spec = load(GLOBAL_READ)
    plan = compile_plan(spec, builtin_blocks(), resolve_vars(spec))
    held, first = [], None
    for k in range(1, 60, 2):
        variables = resolve_vars(spec, None, {"k": k})
        graph = evaluate(plan, variables, (3, 8, 8))
        same(graph, full(spec, variables, (3, 8, 8)))
        held.append(plan.calls.nodes)
        assert plan.calls.nodes == sum(len(kept[-1]) for kept in plan.calls.values())
        first = first or set(plan.calls)
    assert max(held) <= 40 and first and not first <= set(plan.calls)  # forgotten


def test_a_whole_evaluation_is_kept_by_the_values_it_reads_and_their_types():
    """The same setting again takes the kept columns of the whole evaluation (a list-valued
    variable included); a value equal but not alike (1 for true, 2.0 for 2) is evaluated
    anew, so it gets what the full expansion gives it."""
    spec = load("densenet121")  # `block_config` is a list
    variables = resolve_vars(spec)
    plan = compile_plan(spec, builtin_blocks(), variables)
    first = evaluate(plan, variables)
    assert any(key[0] is plans._WHOLE for key in plan.calls if len(key) == 3)
    again = evaluate(plan, dict(variables))
    same(again, full(spec, variables))
    assert again.nodes[5].attrs is first.nodes[5].attrs and again.vars is not first.vars
    flagged = load({"name": "flagged", "input": [3, 16, 16],
                    "vars": {"flag": True, "width": 8},
                    "layers": [{"op": "conv", "out": "width", "kernel": 3},
                               {"op": "relu", "when": "flag"}]})
    plan = compile_plan(flagged, builtin_blocks(), resolve_vars(flagged))
    for value in (True, 1, True, 1.0):
        changed = {**resolve_vars(flagged), "flag": value}
        expected = full(flagged, changed)
        planned = evaluate(plan, changed)
        if expected is None:
            assert planned is None, value
        else:
            same(planned, expected)
    for width in (8, 8.0, 8):
        changed = {**resolve_vars(flagged), "width": width}
        same(evaluate(plan, changed), full(flagged, changed))
