"""Variables 2.0: lists, expressions of earlier variables (derived), and declarations
with choices, bounds and docs, checked against --set and variants (exit 2 with the
variable and what it allows), listed by `cnncost specs NAME`."""

from __future__ import annotations

import textwrap

import pytest
from click.testing import CliRunner

import cnncost
from cnncost import SpecError
from cnncost.cli import main

SPEC = """
name: vars_demo
description: declared and derived variables
input: [3, 32, 32]
vars:
  width: {default: 1.0, min: 0.25, max: 2.0, doc: channel multiplier}
  stem: "make_divisible(32 * width, 8)"
  widths: [16, 32]
  act: {default: relu, choices: [relu, relu6, silu], doc: activation after each conv}
  depth: {default: 2, choices: [1, 2, 3]}
variants:
  slim: {width: 0.5}
layers:
  - {op: conv, name: stem, out: stem, kernel: 3, act: act}
  - {op: conv, name: c1, out: "widths[0]", kernel: 3, act: act}
  - {op: conv, name: c2, out: "widths[-1]", kernel: 3, when: depth >= 2}
"""


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "vars_demo.yaml"
    path.write_text(textwrap.dedent(SPEC).lstrip(), encoding="utf-8")
    return path


def out(path, **kwargs) -> dict:
    return {r.name: r.shape[0] for r in cnncost.analyze(str(path), **kwargs).rows}


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_derived_variable_follows_set_and_variants(spec):
    assert out(spec)["stem.conv"] == 32
    assert out(spec, set={"width": 0.75})["stem.conv"] == 24  # make_divisible(24, 8)
    assert out(spec, variant="slim")["stem.conv"] == 16
    assert out(spec, set={"stem": 40})["stem.conv"] == 40  # set directly: kept
    analysis = cnncost.analyze(str(spec), set={"width": 0.75})
    assert analysis.vars["stem"] == 24 and analysis.vars["width"] == 0.75


def test_list_variables_and_set_lists(spec):
    rows = out(spec)
    assert (rows["c1.conv"], rows["c2"]) == (16, 32)
    rows = out(spec, set={"widths": [8, 8, 64]})
    assert (rows["c1.conv"], rows["c2"]) == (8, 64)
    result = cli("analyze", spec, "--set", "widths=[4, 12]", "--format", "csv")
    assert result.exit_code == 0 and "c2,conv,12x" in result.output


@pytest.mark.parametrize("args,fragment", [
    (("--set", "width=3"), "--set width: variable 'width': 3 is outside what it allows "
                           "(allowed: from 0.25 to 2)"),
    (("--set", "act=gelu"), "variable 'act': 'gelu' is outside what it allows (allowed: one "
                            "of 'relu', 'relu6', 'silu')"),
    (("--set", "depth=5"), "allowed: one of 1, 2, 3"),
    (("--set", "width=wide"), "expected a number from 0.25 to 2"),
])
def test_set_outside_a_declaration_is_exit_2(spec, args, fragment):
    result = cli("analyze", spec, *args)
    assert result.exit_code == 2 and fragment in result.stderr, result.output
    assert "Traceback" not in result.output


def test_declaration_errors_are_located(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent("""
        input: [3, 32, 32]
        vars:
          a: {default: 5, max: 4}
          b: {choices: [1, 2]}
          c: {default: 1, doc: fine, chioces: [1]}
          d: "wdith * 2"
          e: {default: 1, min: low}
          f: "sqrt(-1)"
        variants:
          v: {a: 9}
        layers: [relu]
        """).lstrip(), encoding="utf-8")
    with pytest.raises(SpecError) as info:
        cnncost.analyze(str(path))
    text = "\n".join(str(p) for p in info.value.problems)
    assert ":3: vars.a: default 4" not in text
    assert ":3: vars.a: default 5 is outside what the variable allows (allowed: at most 4)" in text
    assert ":4: vars.b: a declared variable needs a default" in text
    assert ":5: vars.c: unknown key 'chioces' of a variable; did you mean 'choices'?" in text
    assert "variants.v" not in text  # `a` failed its declaration: not also "unknown"
    assert ":7: vars.e: min: expected a number, received 'low'" in text
    with pytest.raises(SpecError) as info:  # evaluation errors come at resolution
        cnncost.analyze({"input": [3, 8, 8], "vars": {"d": "wdith * 2"}, "layers": ["relu"]})
    assert "unknown variable 'wdith'" in str(info.value.problems[0])
    with pytest.raises(SpecError) as info:
        cnncost.analyze({"input": [3, 8, 8], "vars": {"f": "sqrt(-1)"}, "layers": ["relu"]})
    assert "vars.f" in str(info.value.problems[0]) and "sqrt()" in str(info.value.problems[0])


def test_a_derived_variable_sees_only_earlier_ones():
    with pytest.raises(SpecError) as info:
        cnncost.analyze({"input": [3, 8, 8], "vars": {"a": "b * 2", "b": 4},
                         "layers": ["relu"]})
    message = str(info.value.problems[0])
    assert "vars.a" in message and "unknown variable 'b'" in message
    assert "declared before it" in message


def test_variant_outside_a_declaration_is_located(tmp_path):
    path = tmp_path / "v.yaml"
    path.write_text("input: [3, 8, 8]\nvars:\n  a: {default: 1, max: 4}\n"
                    "variants:\n  v: {a: 9}\nlayers: [relu]\n", encoding="utf-8")
    result = cli("validate", path)
    assert result.exit_code == 2
    assert f"{path}:5: variants.v: a: 9 is outside what the variable allows" in result.stderr


def test_text_defaults_stay_text_and_words_stay_words():
    analysis = cnncost.analyze({"input": [3, 8, 8], "vars": {
        "note": "two words, not an expression!", "act": "relu", "quoted": "'x'"},
        "layers": [{"op": "conv", "out": 4, "kernel": 1, "act": "act"}]})
    assert analysis.vars["note"] == "two words, not an expression!"
    assert analysis.vars["quoted"] == "'x'" and analysis.rows[-1].op == "relu"


def test_specs_name_lists_variables_with_their_docs(spec):
    result = cli("specs", spec)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "vars_demo: declared and derived variables"
    assert "  width = 1.0  (from 0.25 to 2)  channel multiplier" in lines
    assert "  stem = make_divisible(32 * width, 8)" in lines
    assert "  act = 'relu'  (one of 'relu', 'relu6', 'silu')  activation after each conv" in lines
    assert "variant slim: width=0.5" in lines
    listing = cli("specs", "--vars")
    assert listing.exit_code == 0 and "resolution = 224" in listing.output
    assert cli("specs", "nope").exit_code == 2


# ------------------------------------------------------------------ block defaults
BLOCKS = {
    "inception": {"params": {"a": None, "k5": 5, "pool": 4}, "layers": [
        {"op": "conv", "name": "c5", "out": "a", "kernel": "k5", "padding": "k5 // 2"},
        {"op": "conv", "name": "p", "out": "pool", "kernel": 1}]},
    "other": {"params": {"k5": 7}, "layers": [
        {"op": "conv", "name": "c", "out": 4, "kernel": "k5", "padding": "k5 // 2"}]},
}


def test_block_parameters_take_the_specs_defaults():
    spec = {"input": [16, 8, 8], "blocks": BLOCKS,
            "defaults": {"k5": 3, "inception": {"pool": 8, "a": 2}},
            "layers": [{"op": "inception"}, {"op": "inception", "a": 4, "k5": 5},
                       {"op": "other"}]}
    rows = {r.name: r for r in cnncost.analyze(spec).rows}
    assert rows["inception1.c5"].params == 16 * 2 * 9 + 2  # a and k5 from defaults
    assert rows["inception1.p"].shape[0] == 8
    assert rows["inception2.c5"].params == 8 * 4 * 25 + 4  # given on the call: wins
    assert rows["other1.c"].params == 8 * 4 * 9 + 4  # plain k5 reaches every block with it


def test_block_default_errors():
    spec = {"input": [16, 8, 8], "blocks": BLOCKS, "layers": ["relu"],
            "defaults": {"inception": {"pol": 3}, "other": 3, "k55": 1}}
    with pytest.raises(SpecError) as info:
        cnncost.analyze(spec)
    text = "\n".join(str(p) for p in info.value.problems)
    assert "block 'inception' has no parameter 'pol'; did you mean 'pool'?" in text
    assert "defaults for block 'other' must be a mapping" in text
    assert "unknown default 'k55'" in text and "did you mean 'k5'?" in text
