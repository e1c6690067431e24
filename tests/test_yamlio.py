"""The YAML reader's two ways (cnncost.lang.yamlio): the fast build from libyaml's events
and the full loader give the same data, the same lines and the same problems.

Every document is parsed twice by `parse_yaml`: as it runs, and with the fast way turned
off (the full loader only). Documents come from a table of what specs contain and of
what the fast way hands over (tags, anchors, merge keys, duplicates, several documents,
deep nesting, malformed text), and from hypothesis: random nested data written in block,
flow and mixed styles, with scalars that YAML 1.1 reads as other types.
"""

from __future__ import annotations

import datetime

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnncost.errors import ErrorSink
from cnncost.lang import yamlio
from cnncost.lang.yamlio import LocDict, LocList


def shape(value):
    """The value with its types and every recorded line, for exact comparison."""
    if isinstance(value, LocDict):
        return ("map", value.line, [(shape(k), value.key_lines[k], shape(v))
                                    for k, v in value.items()])
    if isinstance(value, LocList):
        return ("seq", value.line, value.item_lines, [shape(v) for v in value])
    if isinstance(value, float) and value != value:
        return ("float", "nan")
    return (type(value).__name__, value)


def both(text):
    """(fast-enabled result, full-loader result): each (data shape, problems)."""
    def run():
        errors = ErrorSink()
        data = yamlio.parse_yaml(text, "spec.yaml", errors)
        return shape(data), [str(p) for p in errors.problems]

    fast = run()
    with pytest.MonkeyPatch.context() as m:
        m.setattr(yamlio, "_fast_load", lambda text: yamlio._SLOW)
        full = run()
    return fast, full


TABLE = {
    "spec": "name: x\ninput: [3, 224, 224]\nvars: {width: 64, act: relu}\nlayers:\n"
            "- {op: conv, out: width, kernel: 3, padding: 1, bias: false}\n"
            "- op: batchnorm\n  eps: 1e-5\n- {op: linear, out: 10}\n",
    "scalars": "a: yes\nb: No\nc: on\nd: ~\ne: null\nf: .nan\ng: -.inf\nh: 0x1f\ni: 0o17\n"
               "j: 017\nk: 1_000\nl: 1e3\nm: 1.0e+3\nn: '1e3'\no: \"true\"\np: 2001-12-14\n"
               "q: 2001-12-14t21:59:43.10-05:00\nr: 190:20:30\ns: ''\nt:\nu: +12\nv: -0\n"
               "w: 3.\nx: .5\ny: 0b101\n",
    "value scalar": "z: =\n",
    "block scalars": "a: |\n  line one\n  line two\nb: >\n  folded\n  text\nc: |-\n  x\n",
    "nested": "a:\n- b:\n  - c: [1, {d: [2, 3]}]\n    e: {}\n  - []\n- - - 1\n    - 2\n",
    "bool and number keys": "2: a\ntrue: b\n2.5: c\nnull: d\n",
    "true after one": "1: a\ntrue: b\n",
    "duplicate": "a: 1\nb: 2\na: 3\n",
    "duplicate after equal number": "1: a\n1.0: b\n",
    "duplicate bool": "true: a\nyes: b\n",
    "anchor alias": "a: &x {k: 1}\nb: *x\n",
    "merge": "base: &b {k: 1, j: 2}\nd:\n  <<: *b\n  j: 3\n",
    "quoted merge key": "'<<': 1\n",
    "tags": "a: !!int '3'\nb: !!str 3\nc: !!float 1\nd: !!binary aGVsbG8=\ne: !!set {x}\n",
    "bad tag value": "a: !!int ''\n",
    "custom tag": "a: !foo bar\n",
    "non-specific tag": "a: ! 12\n",
    "complex key": "? [a, b]\n: 1\n",
    "two documents": "a: 1\n---\nb: 2\n",
    "explicit document": "---\na: 1\n...\n",
    "empty": "",
    "comment only": "# nothing\n",
    "scalar document": "42\n",
    "tab": "a:\n\tb: 1\n",
    "malformed": "a: [1, 2\nb: 3\n",
    "bad indentation": "a:\n  b: 1\n c: 2\n",
    "bad character": "a: \x07\n",
    "brackets in scalars": "a: x[[[[\nb: '[[[[' # [[[[\n",
    "deep flow": "a: " + "[" * 300 + "]" * 300 + "\n",
    "deep block": "".join("  " * i + f"k{i}:\n" for i in range(300)) + "  " * 300 + "v\n",
    "deep mixed": "a: " + "{b: " * 200 + "[" * 60 + "]" * 60 + "}" * 200 + "\n",
    "mid deep": "a: " + "{b: " * 100 + "[" * 50 + "]" * 50 + "}" * 100 + "\n",
    "brackets in quotes, many": "a: '" + "[" * 300 + "'\n",
    "alias bomb": "a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\n",
    "big int": "a: 123456789012345678901234567890\n",
    "invalid date": "a: 2001-13-45\n",
    "unicode": "name: résumé\nä: ü\n",
}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_the_fast_way_reads_what_the_full_loader_reads(name):
    fast, full = both(TABLE[name])
    assert fast == full


def test_the_fast_way_takes_spec_documents():
    """The table's spec document is built from events (else the test above compares the
    full loader with itself)."""
    for name in ("spec", "scalars", "block scalars", "nested", "bool and number keys",
                 "brackets in scalars", "unicode", "mid deep"):
        assert yamlio._fast_load(TABLE[name]) is not yamlio._SLOW, name
    for name in ("duplicate", "anchor alias", "merge", "tags", "two documents", "malformed",
                 "complex key", "deep block", "deep mixed", "custom tag", "value scalar",
                 "true after one"):
        assert yamlio._fast_load(TABLE[name]) is yamlio._SLOW, name


def test_the_flow_bound_never_misses_a_deep_nesting():
    for text in (TABLE["deep flow"], TABLE["brackets in quotes, many"],
                 "a: " + "[{" * 130 + "}]" * 130, "a: " + "[" * 257):
        assert yamlio._flow_may_nest_deeply(text)
    assert not yamlio._flow_may_nest_deeply(TABLE["spec"] * 100)


# Random documents: nested data with scalars of every kind, written in several styles.
_SCALAR_TEXTS = st.sampled_from(["yes", "no", "on", "off", "~", "null", "1e3", "1.5", ".inf",
                                 "0x1f", "017", "1_000", "2001-12-14", "<<", "=", "true",
                                 "3", "-2", "a b", "x[1]", "#no", "", "é"])
_SCALARS = st.one_of(st.integers(-10**20, 10**20), st.floats(allow_nan=False),
                     st.booleans(), st.none(), st.text(max_size=8), _SCALAR_TEXTS,
                     st.dates(), st.datetimes(timezones=st.just(datetime.timezone.utc)))
_KEYS = st.one_of(st.text(min_size=1, max_size=6), _SCALAR_TEXTS, st.integers(0, 5),
                  st.booleans())
_DATA = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(_KEYS, inner, max_size=4)), max_leaves=25)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_DATA, flow=st.sampled_from([True, False, None]),
       width=st.sampled_from([20, 80]))
def test_random_documents_read_alike(data, flow, width):
    text = yaml.safe_dump({"doc": data}, default_flow_style=flow, width=width,
                          allow_unicode=True)
    fast, full = both(text)
    assert fast == full


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(alphabet=st.sampled_from(list("ab:-[]{},'\"#&*!|>? \n\t1.e")),
                    max_size=60))
def test_random_text_reads_alike(text):
    """Mostly malformed: the same problem, at the same line, either way."""
    fast, full = both(text)
    assert fast == full
