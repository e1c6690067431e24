"""Bad input: one located line per problem on stderr, exit code 2, never a traceback.

Most cases are rows of CASES, one table grouped by kind (YAML and files, unknown names,
types, sizes and shapes, blocks, expressions). A row is a bad spec and the one located
error it must give. To add a case, add a row to the group it belongs to:

    case("conv_without_out", '''
        input: [3, 32, 32]
        layers:
          - {op: conv, kernel: 3}
        ''', 3, "conv1", ("conv needs field 'out'", "required: kernel, out"), count=1),

that is: an id (how the case reads in pytest's output), the spec text (indent it freely,
it is dedented; bytes are written as they are), the line and layer path the error must
name (0 and "" for none), and the parts its message must contain. Optional keywords:
`count` the exact number of errors in the report, `args` options for `cnncost analyze`
(--set and --variant are passed to the library too), `after` {marker: parts that must
come after the marker}, `absent` text that must appear in no message, and
`marks=pytest.mark.xfail(strict=True, reason=...)` for a bug still open. Cases that need
more than one spec, no file at all, another command, a bound on the work done, or
assertions of another kind are functions below the table.

Every case is checked twice, through the CLI (`cnncost analyze FILE`, stderr line
``error: file:line: layer.path: message``, exit 2) and through the library
(`cnncost.analyze` raising SpecError whose Problems carry the same file, line, layer
path and message). Each test asserts what was received and what is allowed or the
did-you-mean. Many tests here pinned bugs found while writing them (fixed in 656ce17 and
8130427); those still open are marked xfail(strict=True), each reason saying what a user
gets now and what they should get instead.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import cnncost
from cnncost import Problem, SpecError
from cnncost.cli import main


class WorkExceeded(BaseException):  # not an Exception: no handler in cnncost catches it
    pass


@contextmanager
def bounded_work(max_calls: int):
    """Fail if the code inside makes more than `max_calls` function calls (Python and C).

    "Refused quickly" measured as work, not time: the count is the same on a loaded CI
    machine and a fast laptop, and an unbounded loop is stopped at the bound instead of
    running on. The bounds below are about ten times what the refusals take today.
    """
    calls = 0

    def count(frame, event, arg):
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1
            if calls > max_calls:
                raise WorkExceeded(f"more than {max_calls:,} calls")

    previous = sys.getprofile()
    sys.setprofile(count)
    try:
        yield
    finally:
        sys.setprofile(previous)


# ----------------------------------------------------------------------------- helpers
def write(tmp_path: Path, text: str | bytes, name: str = "spec.yaml") -> Path:
    """Write a spec: text is dedented (and leading blank lines dropped), bytes as given."""
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def cli(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def error_lines(result) -> list[str]:
    """The `error: ...` lines of a failed run, after checking the run failed cleanly."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output and "internal error" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert lines, result.stderr
    return lines


def message(line: str, path: object) -> str:
    """An error line without `error: FILE` (tmp_path names contain test names)."""
    return line.replace(f"error: {path}", "", 1)


def problems(spec, **kwargs) -> list[Problem]:
    with pytest.raises(SpecError) as info:
        cnncost.analyze(spec, **kwargs)
    assert info.value.problems
    for problem in info.value.problems:
        assert isinstance(problem, Problem)
        assert "\n" not in str(problem)
    return info.value.problems


def where(file: object, line: int) -> str:
    return f"{file}:{line}" if line else f"{file}"


def expect(path: Path, line: int, layer: str, *parts: str, args: tuple = (),
           count: int | None = None, after: Mapping[str, tuple[str, ...]] | None = None,
           absent: tuple[str, ...] = ()) -> str:
    """Check one problem through the CLI and the library; return the CLI line.

    The CLI must print `error: path:line: layer: message` whose message contains every
    part, and the library must raise a Problem with that file, line, layer path and a
    message containing every part. `after`: {marker: parts}, the message must contain
    the marker and each of these parts after its first occurrence. `absent`: text that
    appears neither in stderr (the file's path taken out) nor in any library message.
    `count`: the exact number of problems expected in the whole report.
    """
    def says(text: str) -> bool:
        return all(part in text for part in parts) and all(
            marker in text and all(part in text.split(marker, 1)[1] for part in later)
            for marker, later in (after or {}).items())

    result = cli("analyze", path, *args)
    lines = error_lines(result)
    prefix = f"error: {where(path, line)}: " + (f"{layer}: " if layer else "")
    hits = [x for x in lines if x.startswith(prefix) and says(x[len(prefix):])]
    assert hits, (f"no line starting {prefix!r} with {parts!r} and {after!r} in:\n"
                  f"{result.stderr}")
    stderr = result.stderr.replace(str(path), "")
    for text in absent:
        assert text not in stderr, f"{text!r} in:\n{result.stderr}"
    if count is not None:
        assert len(lines) == count, result.stderr
        if count > 1:
            assert f"{count} errors" in result.stderr

    kwargs = {}
    for option, value in zip(args[::2], args[1::2], strict=True):
        if option == "--set":
            key, _, raw = value.partition("=")
            kwargs.setdefault("set", {})[key] = cnncost.api.parse_value(raw)
        elif option == "--variant":
            kwargs["variant"] = value
    found = problems(str(path), **kwargs)
    match = [p for p in found if p.loc.file == str(path) and p.loc.line == line
             and p.path == layer and says(p.message)]
    assert match, f"library problems differ: {[str(p) for p in found]}"
    for text in absent:
        assert not any(text in p.message for p in found), [str(p) for p in found]
    if count is not None:
        assert len(found) == count
    return hits[0]


SMALL = """
input: [3, 32, 32]
vars: {width: 16}
variants:
  wide: {width: 32}
layers:
  - {op: conv, name: stem, out: width, kernel: 3}
"""

LONG_SUM = " + ".join(["1"] * 300)  # more characters than the limit of 500
DEEP_NEGATION = "-" * 150 + "1"  # more parts than the limit of 200


def case(name: str, text: str | bytes, line: int, layer: str, parts: tuple[str, ...], *,
         count: int | None = None, args: tuple[str, ...] = (),
         after: Mapping[str, tuple[str, ...]] | None = None, absent: tuple[str, ...] = (),
         marks: Any = ()) -> Any:
    """One row of CASES: a spec, and the located error it must give (see `expect`)."""
    options = {"count": count, "args": args, "after": after, "absent": absent}
    return pytest.param(text, line, layer, parts, options, id=name, marks=marks)


# Bad specs and the one error each must give: case(id, spec text, line, layer path,
# parts of the message, count=, args=, after=, absent=, marks=); see the module docstring.
# To add a case, add a row.
CASES = [
    # ------------------------------------------------------------ YAML and files
    case("malformed_yaml", """
        input: [3, 32, 32]
        layers:
          - {op: conv, out: 8, kernel: 3
          - {op: relu}
        """, 4, "", ("malformed YAML", "expected ',' or '}'", "flow mapping"), count=1),
    case("malformed_yaml_bad_indentation", """
        input: [3, 32, 32]
        layers:
          - op: conv
            out: 8
           kernel: 3
        """, 5, "", ("malformed YAML",), count=1),
    case("duplicate_key_is_rejected_with_both_lines", """
        input: [3, 32, 32]
        layers:
          - op: conv
            out: 8
            kernel: 3
            out: 16
        """, 6, "", ("duplicate key 'out'", "first defined on line 4"), count=1),
    case("duplicate_top_level_key", """
        input: [3, 32, 32]
        layers: [relu]
        input: [3, 64, 64]
        """, 3, "", ("duplicate key 'input'", "first defined on line 1"), count=1),
    case("empty_file", """

        """, 1, "", ("spec is empty", "'input' and 'layers'"), count=1),
    case("comment_only_file_is_empty", """
        # nothing here
        """, 1, "", ("spec is empty",), count=1),
    case("spec_that_is_a_list", """
        - input: [3, 32, 32]
        - layers: [relu]
        """, 1, "", ("a spec must be a mapping", "received a list"), count=1),
    case("spec_that_is_a_scalar", """
        just some words
        """, 1, "", ("a spec must be a mapping", "received 'just some words'"), count=1),
    case("non_utf8_file",  # byte 43 is the é of café in Latin-1
         b"input: [3, 32, 32]\nlayers: [relu]\nname: caf\xe9\n",
         3, "", ("not UTF-8", "byte 43"), count=1),
    case("explicit_yaml_tag_error_names_the_line", """
        input: [3, 32, 32]
        layers:
          - {op: conv, out: !!int "", kernel: 3}
        """, 3, "", ("malformed YAML",), count=1),
    case("tab_indentation_is_named", "input: [3, 8, 8]\nlayers:\n\t- relu\n",
         3, "", ("malformed YAML", "tab"), count=1),
    case("null_key_is_shown_as_yaml", """
        input: [3, 32, 32]
        layers: [relu]
        null: 1
        """, 3, "", ("unknown top-level key", "null"), absent=("None",), count=1),

    # ------------------------------------------------------------- unknown names
    case("unknown_op_did_you_mean", """
        input: [3, 32, 32]
        layers:
          - {op: conv, out: 8, kernel: 3}
          - {op: maxpol, kernel: 2}
        """, 4, "layers[1]", ("unknown op 'maxpol'", "did you mean 'maxpool'", "ops: ", "conv",
                              "global_avgpool", "bottleneck"),  # blocks are listed too
         count=1),
    case("unknown_op_in_a_block_body", """
        input: [3, 32, 32]
        blocks:
          mine:
            params: {out: null}
            layers:
              - {op: cnov, out: out, kernel: 3}
        layers:
          - {op: mine, out: 8}
        """, 6, "blocks.mine.layers[0]", ("unknown op 'cnov'", "did you mean 'conv'"), count=1),
    case("unknown_field_did_you_mean", """
        input: [3, 32, 32]
        layers:
          - {op: conv, out: 8, kernal: 3}
        """, 3, "layers[0]", ("unknown field 'kernal' for op 'conv'", "did you mean 'kernel'"),
         after={"(allowed: ": ("kernel", "stride", "padding", "groups", "out")}, count=1),
    case("unknown_field_on_a_block_call", """
        input: [3, 32, 32]
        layers:
          - {op: basic, out: 8, strid: 2}
        """, 3, "layers[0]", ("unknown field 'strid'", "did you mean 'stride'"), count=1),
    case("unknown_block_parameter_in_stage_with", """
        input: [3, 32, 32]
        layers:
          - {op: stage, block: bottleneck, repeat: 2, with: {out: 64, grups: 2}}
        """, 3, "stage1", ("block 'bottleneck' has no parameter 'grups'", "did you mean 'groups'"), count=1),
    case("unknown_variable_in_expression_did_you_mean", """
        input: [3, 32, 32]
        vars: {width: 16}
        layers:
          - {op: conv, out: "2 * widht", kernel: 3}
        """, 4, "conv1", ("out: unknown variable 'widht'", "did you mean 'width'"),
         after={"known: ": ("width",)}, count=1),
    case("unknown_variable_in_when", """
        input: [3, 32, 32]
        vars: {use_pool: true}
        layers:
          - {op: maxpool, kernel: 2, when: use_pol}
        """, 4, "layers[0]", ("when: unknown variable 'use_pol'", "did you mean 'use_pool'")),
    case("unknown_variable_in_variants_section", """
        input: [3, 32, 32]
        vars: {width: 16}
        variants:
          wide: {widht: 32}
        layers: [relu]
        """, 4, "variants.wide", ("unknown variable 'widht'", "did you mean 'width'"), count=1),
    case("unknown_set_variable_did_you_mean", SMALL, 0, "--set",
         ("unknown variable 'widht'", "did you mean 'width'", "vars: width"),
         args=("--set", "widht=3"), count=1),
    case("unknown_variant_did_you_mean", SMALL, 0, "--variant",
         ("unknown variant 'wid'", "did you mean 'wide'", "variants: wide"),
         args=("--variant", "wid"), count=1),
    case("variant_on_a_spec_without_variants", """
        input: [3, 32, 32]
        layers: [relu]
        """, 0, "--variant", ("unknown variant 'big'", "none defined"),
         args=("--variant", "big"), count=1),
    case("from_names_an_unknown_layer", """
        input: [3, 32, 32]
        layers:
          - {op: conv, name: conv_a, out: 3, kernel: 1}
          - {op: conv, from: cnov_a, out: 8, kernel: 1}
        """, 4, "conv1", ("from: no layer named 'cnov_a'", "did you mean 'conv_a'", "visible: ",
                          "input"), count=1),
    case("inputs_names_an_unknown_layer", """
        input: [3, 32, 32]
        layers:
          - {op: conv, name: conv_a, out: 3, kernel: 1}
          - {op: add, inputs: [conv_b, input]}
        """, 4, "add1", ("inputs: no layer named 'conv_b'", "did you mean 'conv_a'",
                         "visible: conv_a, input"), count=1),
    case("from_cannot_see_a_later_layer", """
        input: [3, 32, 32]
        layers:
          - {op: conv, from: later, out: 8, kernel: 1}
          - {op: relu, name: later}
        """, 3, "conv1", ("from: no layer named 'later' before this one",), count=1),
    case("broken_layers_do_not_leak_placeholder_names", """
        input: [3, 32, 32]
        layers:
          - {op: [conv]}
          - {op: add, inputs: [nothing, input]}
        """, 4, "add1", ("(visible: input)",), absent=("broken",)),

    # ------------------------------------------------------- types and YAML 1.1
    case("act_no_is_a_yaml_boolean", """
        input: [3, 32, 32]
        layers:
          - {op: conv, out: 8, kernel: 3, act: no}
        """, 3, "conv1", ("act: expected one of", "received false (a boolean)", "yes/no/on/off",
                          "write 'none' or quote the word", "relu", "none"), count=1),
    case("norm_yes_is_a_yaml_boolean", """
        input: [3, 32, 32]
        layers:
          - {op: conv, out: 8, kernel: 3, norm: yes}
        """, 3, "conv1", ("norm: expected one of", "batchnorm", "received true (a boolean)"), count=1),
    case("a_date_is_not_a_size", """
        input: [3, 32, 32]
        layers:
          - {op: conv, out: 2020-01-01, kernel: 3}
        """, 3, "conv1", ("out: expected a positive integer",), count=1),
    case("a_date_message_does_not_leak_python_reprs", """
        input: [3, 32, 32]
        layers:
          - {op: conv, out: 2020-01-01, kernel: 3}
        """, 3, "conv1", ("2020-01-01",), absent=("datetime",), count=1),
    case("bool_is_not_a_size", """
        input: [3, 32, 32]
        layers:
          - {op: conv, out: true, kernel: 3}
        """, 3, "conv1", ("out: expected a positive integer", "received true (a boolean)"), count=1),
    case("1e3_message_explains_yaml", """
        input: [3, 32, 32]
        vars: {n: 8}
        variants: {big: {n: 1e3}}
        layers:
          - {op: conv, out: n, kernel: 3}
        """, 5, "conv1", ("YAML 1.1 reads a number like 1e3 as a string",
                          # both suggestions are numbers YAML reads as numbers
                          "write it out, e.g. 1000, or with a dot and a signed exponent, "
                          "e.g. 1.0e+3"), args=("--variant", "big"), count=1),
    case("set_value_of_the_wrong_type", SMALL, 0, "--set width",
         ("'width' is a number", "received 'abc'"), args=("--set", "width=abc"), count=1),
    case("bad_padding_word_did_you_mean", """
        input: [3, 32, 32]
        layers:
          - {op: conv, out: 8, kernel: 3, padding: sam}
        """, 3, "conv1", ("padding: expected 'same', 'valid'", "received 'sam'", "did you mean 'same'"), count=1),
    case("bad_shortcut_mode_did_you_mean", """
        input: [3, 32, 32]
        layers:
          - {op: residual, shortcut: identiy, layers: [relu]}
        """, 3, "layers[0]", ("shortcut must be one of", "received 'identiy'", "did you mean 'identity'"), count=1),
    case("bad_inputs_value_is_reported_once", """
        input: [3, 32, 32]
        layers:
          - {op: add, inputs: 5}
        """, 3, "layers[0]", ("inputs must be a list of layer names", "received 5"), count=1),
    case("defaults_for_an_op_must_be_a_mapping", """
        input: [3, 32, 32]
        defaults: {conv: 5}
        layers: [relu]
        """, 2, "defaults.conv", ("mapping", "received 5"),
         absent=("did you mean 'conv'", "unknown default"), count=1),

    # ---------------------------------------------------------- sizes and shapes
    case("zero_input_size", """
        input: [3, 0, 32]
        layers: [relu]
        """, 1, "input", ("positive integer", "received 0"), count=1),
    case("zero_input_size_points_at_the_input_line", """
        name: x
        input: [0, 8, 8]
        layers: [relu]
        """, 2, "input", ("input sizes: expected a positive integer, received 0",), count=1),
    case("input_text_of_two_sizes_is_quoted_as_written", """
        name: x
        input: "3x8"
        layers: [relu]
        """, 2, "input", ("or 'CxHxW', received '3x8' (2 sizes)",), count=1),
    case("bad_input_is_reported_once", """
        input: [3, 32]
        layers: [relu]
        """, 1, "input", ("input must be [channels, height, width]",), count=1),
    case("probability_out_of_range", """
        input: [3, 32, 32]
        layers:
          - {op: dropout, p: 1.5}
        """, 3, "dropout1", ("p: expected a probability in [0, 1), received 1.5",), count=1),
    case("kernel_larger_than_padded_input", """
        input: [3, 32, 32]
        layers:
          - {op: conv, out: 8, kernel: 40, padding: 2}
        """, 3, "conv1", ("kernel 40 is larger than the padded input height 36", "input 32 + padding 4", "[input 3x32x32]"), count=1),
    case("kernel_larger_than_input_after_downsampling", """
        input: [3, 8, 8]
        layers:
          - {op: maxpool, kernel: 2}
          - {op: maxpool, kernel: 2}
          - {op: conv, out: 8, kernel: 3}
        """, 5, "conv1", ("kernel 3 is larger than the padded input height 2", "[input 3x2x2]"), count=1),
    case("ceil_mode_with_uneven_padding", """
        input: [3, 32, 32]
        layers:
          - {op: maxpool, kernel: 3, stride: 2, padding: [0, 1, 1, 1], ceil_mode: true}
        """, 3, "maxpool1", ("ceil_mode needs the same padding on both sides", "received [top, bottom, left, right] = [0, 1, 1, 1]"), count=1),
    case("residual_identity_add_of_mismatched_shapes", """
        input: [3, 32, 32]
        layers:
          - op: residual
            shortcut: identity
            layers:
              - {op: conv, out: 8, kernel: 3, padding: 1}
        """, 3, "residual1", ("residual add of mismatched shapes", "input is 3x32x32", "body gives 8x32x32", "shortcut: projection or auto"), count=1),
    case("add_of_mismatched_shapes", """
        input: [3, 32, 32]
        layers:
          - {op: conv, name: a, out: 8, kernel: 1}
          - {op: add, name: sum, inputs: [a, input]}
        """, 4, "sum", ("cannot add tensors of different shapes", "8x32x32 + 3x32x32"), count=1),
    case("concat_of_mismatched_spatial_sizes", """
        input: [3, 32, 32]
        layers:
          - {op: conv, name: a, out: 8, kernel: 3}
          - {op: conv, name: b, from: input, out: 8, kernel: 1}
          - {op: concat, name: cat, inputs: [a, b]}
        """, 5, "cat", ("cannot concatenate along channels: spatial sizes differ", "8x30x30", "8x32x32"), count=1),
    case("linear_on_a_feature_map", """
        input: [3, 32, 32]
        layers:
          - {op: linear, out: 10}
        """, 3, "linear1", ("needs a flat vector", "3x32x32", "flatten"), count=1),
    case("linear_on_a_feature_map_suggests_pointwise", """
        input: [3, 8, 8]
        layers: [{op: linear, out: 3}]
        """, 2, "linear1", ("linear: needs a flat vector, received 3x8x8", "add a flatten",
                            "use pointwise"), count=1),
    case("linear_after_global_pool_with_keepdims_says_so", """
        input: [3, 8, 8]
        layers: [gap, {op: linear, out: 3}]
        """, 2, "linear1", ("linear: needs a flat vector, received 3x1x1", "keepdims: false"),
         absent=("linear: linear",), count=1),
    case("missing_required_field", """
        input: [3, 32, 32]
        layers:
          - {op: conv, out: 8}
        """, 3, "conv1", ("conv needs field 'kernel'", "required: kernel, out"), count=1),
    case("absurdly_large_output_channels", """
        input: [3, 32, 32]
        layers:
          - {op: conv, out: 99999999999999999999999, kernel: 3}
        """, 3, "conv1", ("has more than 1e+12 elements",), count=1),

    # -------------------------------------------------------------------- blocks
    case("stage_of_an_undefined_block", """
        input: [3, 32, 32]
        layers:
          - {op: stage, block: bottlenek, repeat: 2}
        """, 3, "layers[0]", ("block", "'bottlenek'", "did you mean 'bottleneck'"),
         after={"blocks: ": ("basic",)}, count=1),
    case("block_body_calls_an_undefined_block", """
        input: [3, 32, 32]
        blocks:
          outer:
            layers:
              - {op: innner}
          inner:
            layers: [relu]
        layers:
          - {op: outer}
        """, 5, "blocks.outer.layers[0]", ("unknown op 'innner'", "did you mean 'inner'"), count=1),
    case("block_that_uses_itself", """
        input: [3, 32, 32]
        blocks:
          selfish:
            params: {out: null}
            layers:
              - {op: conv, out: out, kernel: 1}
              - {op: selfish, out: out}
        layers:
          - {op: selfish, out: 8}
        """, 7, "blocks.selfish", ("block 'selfish' uses itself", "blocks cannot be recursive"), count=1),
    case("block_that_stages_itself", """
        input: [3, 32, 32]
        blocks:
          selfish:
            params: {out: null}
            layers:
              - {op: stage, block: selfish, repeat: 2, with: {out: out}}
        layers:
          - {op: selfish, out: 8}
        """, 6, "blocks.selfish", ("block 'selfish' uses itself",), count=1),
    case("block_missing_a_required_parameter", """
        input: [3, 32, 32]
        layers:
          - {op: bottleneck, stride: 2}
        """, 3, "bottleneck1", ("block 'bottleneck' needs parameter 'out'", "required: out")),
    case("missing_required_parameter_is_reported_once", """
        input: [3, 32, 32]
        layers:
          - {op: bottleneck, stride: 2}
        """, 3, "bottleneck1", (), count=1),
    case("error_inside_builtin_block_points_at_the_call", """
        input: [16]
        layers:
          - {op: se}
        """, 3, "se1.pool", ("global pooling needs a feature map", "received input of shape 16",
                             "in built-in block 'se'", "blocks.yaml:"), count=1),
    case("a_misspelt_with_key_is_the_only_error", """
        input: [3, 32, 32]
        blocks:
          b: {params: {out: "in_channels"}, layers: [{op: conv, out: out, kernel: 1}]}
        layers:
          - {op: stage, block: bottleneck, repeat: 2, with: {out: 64, grups: 2}}
          - {op: b}
        """, 5, "stage1", ("has no parameter 'grups'", "did you mean 'groups'"), count=1),
    # Regression: blocks after a failed layer evaluated their defaults and checks with
    # in_channels = 0 and reported problems that were not there (three after the real one).
    case("a_failed_layer_gives_no_follow_on_errors_in_later_blocks", """
        input: [3, 32, 32]
        blocks:
          b:
            params: {out: "in_channels * 2"}
            checks: [{that: "in_channels >= 3", message: "needs 3 channels, has {in_channels}"}]
            layers: [{op: conv, out: out, kernel: 3}]
        layers:
          - {op: conv, out: 16, kernel: 99}
          - {op: b}
          - {op: b}
          - {op: stage, block: b, repeat: 2}
        """, 8, "conv1", ("kernel 99 is larger than the padded input",), count=1),

    # --------------------------------------------------------------- expressions
    case("expression_disallowed_function_did_you_mean", """
        input: [3, 32, 32]
        layers:
          - {op: conv, out: "maxx(8, 4)", kernel: 3}
        """, 3, "layers[0]", ("function 'maxx' is not allowed", "did you mean 'max'"), count=1),
    case("expression_syntax_error", """
        input: [3, 32, 32]
        layers:
          - {op: conv, out: "2 * (width", kernel: 3}
        """, 3, "layers[0]", ("cannot parse expression '2 * (width'",), count=1),
    case("expression_attribute_access", """
        input: [3, 32, 32]
        vars: {width: 16}
        layers:
          - {op: conv, out: "width.__class__", kernel: 3}
        """, 4, "layers[0]", ("attribute access is not allowed in expressions",
                              "make_divisible"),  # says what is allowed
         count=1),
    case("expression_too_long", f"""
        input: [3, 32, 32]
        layers:
          - {{op: conv, out: "{LONG_SUM}", kernel: 3}}
        """, 3, "layers[0]", (f"expression is {len(LONG_SUM)} characters long (limit 500)",),
         count=1),
    case("expression_with_too_many_parts", f"""
        input: [3, 32, 32]
        layers:
          - {{op: conv, out: "{DEEP_NEGATION}", kernel: 3}}
        """, 3, "layers[0]", ("expression has", "parts (limit 200)"), count=1),
    case("parse_time_expression_error_names_the_field", """
        input: [3, 32, 32]
        layers:
          - {op: conv, out: 8, kernel: "3", stride: "__import__('os')"}
        """, 3, "layers[0]", ("stride",), count=1),
    # in_channels used to mean the model's input channels in every top-level layer, silently
    case("in_channels_outside_a_block_is_an_error_not_the_model_input", """
        input: [3, 32, 32]
        layers:
          - {op: conv, out: 16, kernel: 3}
          - {op: conv, out: "in_channels * 2", kernel: 3}
        """, 4, "conv2", ("'in_channels' is the shape entering a block",), count=1),
]


@pytest.mark.parametrize("text,line,layer,parts,options", CASES)
def test_bad_spec(tmp_path, text, line, layer, parts, options):
    expect(write(tmp_path, text), line, layer, *parts, **options)


# ------------------------------------------------------------------- YAML and files
def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    expect(path, 0, "", "no such spec file", count=1)


def test_missing_bundled_name_suggests_the_closest(tmp_path):
    lines = error_lines(cli("analyze", "resnet5"))
    assert lines[0].startswith("error: resnet5: ")
    assert "did you mean 'resnet50'" in lines[0]
    # the zoo has too many names to print them all: the message says where to look
    assert "`cnncost specs` lists the" in lines[0]


def test_unknown_top_level_key_did_you_mean(tmp_path):
    path = write(tmp_path, """
        input: [3, 32, 32]
        layer: [relu]
        """)
    expect(path, 2, "", "unknown top-level key 'layer'", "did you mean 'layers'", count=2)
    expect(path, 1, "", "spec has no 'layers'")


def test_python_tags_are_not_constructed(tmp_path):
    marker = tmp_path / "pwned"
    path = write(tmp_path, f"""
        input: [3, 32, 32]
        layers:
          - !!python/object/apply:os.system ["touch {marker}"]
        """)
    expect(path, 3, "", "malformed YAML", "python/object/apply:os.system", count=1)
    assert not marker.exists()


@pytest.mark.parametrize("value", [
    '!!int ""',
    "!!int 0x",
    "!!float abc",
    "!!bool maybe",
    "!!timestamp someday",
    "!!timestamp 2020-13-45",
    "!!seq {a: 1}",
    "!!map [1]",
])
def test_explicit_yaml_tags_with_bad_values_are_spec_errors(tmp_path, value):
    path = write(tmp_path, f"""
        input: [3, 32, 32]
        layers:
          - {{op: conv, out: {value}, kernel: 3}}
        """)
    result = cli("analyze", path)
    lines = error_lines(result)
    assert lines[0].startswith(f"error: {path}"), lines
    assert "malformed YAML" in message(lines[0], path), lines
    problems(str(path))


def test_control_character_gives_one_located_line(tmp_path):
    path = tmp_path / "nul.yaml"
    path.write_bytes(b"input: [3, 32, 32]\nlayers: [relu]\x00\n")
    result = cli("analyze", path)
    assert result.exit_code == 2
    stderr = result.stderr.strip().splitlines()
    assert len(stderr) == 1, stderr
    assert stderr[0].startswith(f"error: {path}:2: "), stderr
    assert "<unicode string>" not in stderr[0]


def test_control_character_is_still_a_spec_error(tmp_path):
    path = tmp_path / "nul.yaml"
    path.write_bytes(b"input: [3, 32, 32]\nlayers: [relu]\x00\n")
    result = cli("analyze", path)
    assert result.exit_code == 2 and "internal error" not in result.output
    assert result.stderr.startswith(f"error: {path}")
    assert "x0000" in result.stderr  # names the character


# ---------------------------------------------------------------------- unknown names
def test_set_and_variant_errors_are_reported_together(tmp_path):
    path = write(tmp_path, SMALL)
    result = cli("validate", path, "--set", "widht=3", "--variant", "wid")
    lines = error_lines(result)
    assert len(lines) == 2, lines
    assert any("unknown variable 'widht'" in x for x in lines)
    assert any("unknown variant 'wid'" in x for x in lines)


# ---------------------------------------------------------------- types and YAML 1.1
def test_1e3_in_vars_is_an_expression_of_value_1000(tmp_path):
    path = write(tmp_path, """
        input: [3, 32, 32]
        vars: {n: 1e3}
        layers:
          - {op: conv, out: n, kernel: 3}
        """)
    assert cnncost.analyze(str(path)).output_shape == (1000, 30, 30)


def test_1e2_input_size_is_treated_like_other_sizes(tmp_path):
    path = write(tmp_path, """
        input: [3, 1e2, 1e2]
        layers:
          - {op: conv, out: 1e2, kernel: 3}
        """)
    result = cnncost.analyze(str(path))
    assert result.rows[-1].shape == (100, 98, 98)


def test_wrong_types_of_structure(tmp_path):
    path = write(tmp_path, """
        input: [3, 32, 32]
        layers:
          - {op: [conv]}
          - 5
          - {op: add, inputs: first}
          - {op: sequential, layers: 7}
          - {op: conv, out: 8, kernel: {h: 3}}
        """)
    result = cli("analyze", path)
    lines = error_lines(result)
    text = "\n".join(lines)
    assert f"{path}:3: layers[0]: op must be a name, received a list" in text
    assert f"{path}:4: layers[1]: expected a layer mapping" in text and "received 5" in text
    assert f"{path}:5: layers[2]: inputs must be a list of layer names, received 'first'" in text
    assert f"{path}:6: layers[3].layers: expected a list of layers, received 7" in text
    assert "kernel: expected a positive integer, received a mapping" in text


# --------------------------------------------------------------------------- sizes
def test_zero_negative_and_fractional_sizes_all_reported(tmp_path):
    path = write(tmp_path, """
        input: [3, 32, 32]
        layers:
          - {op: conv, out: 0, kernel: 3}
          - {op: conv, from: input, out: 8, kernel: -1}
          - {op: conv, from: input, out: 8.5, kernel: 3}
          - {op: conv, from: input, out: 8, kernel: 3, stride: 0}
          - {op: conv, from: input, out: 8, kernel: 3, padding: -2}
        """)
    expect(path, 3, "conv1", "out: expected a positive integer, received 0", count=5)
    expect(path, 4, "conv2", "kernel: expected a positive integer, received -1")
    expect(path, 5, "conv3", "out: expected a positive integer, received 8.5",
           "not a whole number")
    expect(path, 6, "conv4", "stride: expected a positive integer, received 0")
    expect(path, 7, "conv5", "padding: expected a non-negative integer, received -2")


def test_negative_and_fractional_repeat(tmp_path):
    path = write(tmp_path, """
        input: [3, 32, 32]
        layers:
          - {op: stage, block: basic, repeat: -1, with: {out: 3}}
          - {op: stage, block: basic, repeat: 1.5, with: {out: 3}}
        """)
    expect(path, 3, "stage1", "repeat: expected a non-negative integer, received -1")
    expect(path, 4, "stage2", "repeat: expected a non-negative integer, received 1.5")


def test_channels_not_divisible_by_groups(tmp_path):
    path = write(tmp_path, """
        input: [3, 32, 32]
        layers:
          - {op: conv, out: 8, kernel: 3, groups: 2}
          - {op: conv, from: input, name: four, out: 4, kernel: 1}
          - {op: conv, out: 6, kernel: 1, groups: 4}
        """)
    expect(path, 3, "conv1", "input channels 3 are not divisible by groups=2",
           "[input 3x32x32]", count=2)
    expect(path, 5, "conv2", "output channels 6 are not divisible by groups=4",
           "[input 4x32x32]")


# ------------------------------------------------------------------------- blocks
def test_stage_in_an_unused_block_of_an_undefined_block(tmp_path):
    path = write(tmp_path, """
        input: [3, 32, 32]
        blocks:
          unused:
            layers:
              - {op: stage, block: nosuch, repeat: 2}
        layers: [relu]
        """)
    result = cli("validate", path)
    assert result.exit_code == 2, result.output
    assert "nosuch" in result.stderr


def test_mutual_block_cycle(tmp_path):
    path = write(tmp_path, """
        input: [3, 32, 32]
        blocks:
          ping:
            layers:
              - {op: pong}
          pong:
            layers:
              - {op: relu}
              - {op: ping}
        layers:
          - {op: ping}
        """)
    line = expect(path, 9, "blocks.pong", "is part of a cycle", "blocks cannot be recursive",
                  count=1)
    assert "ping -> pong -> ping" in line or "pong -> ping -> pong" in line


@pytest.mark.parametrize("layer", ["{op: conv, out: 8, kernel: 3}", "{op: conv}"])
def test_block_named_like_an_op(tmp_path, layer):
    path = write(tmp_path, f"""
        input: [3, 16, 16]
        blocks:
          conv:
            layers: [relu]
        layers:
          - {layer}
        """)
    result = cli("analyze", path)
    lines = error_lines(result)
    assert lines[0].startswith(f"error: {path}:3: blocks.conv: block name 'conv' is already an op")
    assert not any("unknown field" in x for x in lines), lines
    problems(str(path))


# -------------------------------------------------------------------- expressions
def test_expression_divides_by_zero(tmp_path):
    path = write(tmp_path, """
        input: [3, 32, 32]
        vars: {width: 16, zero: 0}
        layers:
          - {op: conv, out: "width // zero", kernel: 3}
          - {op: conv, from: input, out: "width / 0", kernel: 3}
          - {op: conv, from: input, out: "width % zero", kernel: 3}
        """)
    expect(path, 4, "conv1", "out: division by zero in 16 // 0", count=3)
    expect(path, 5, "conv2", "out: division by zero in 16 / 0")
    expect(path, 6, "conv3", "out: division by zero in 16 % 0")


def test_expression_calls_import(tmp_path):
    marker = tmp_path / "pwned"
    path = write(tmp_path, f"""
        input: [3, 32, 32]
        layers:
          - {{op: conv, out: "__import__('os').system('touch {marker}')", kernel: 3}}
          - {{op: conv, from: input, out: "__import__('os')", kernel: 3}}
        """)
    line = expect(path, 4, "layers[1]", "function '__import__' is not allowed", count=2)
    assert "allowed: abs, ceil" in line and "round" in line
    expect(path, 3, "layers[0]", "is not allowed")
    assert not marker.exists()


def test_expression_attribute_lambda_and_comprehension(tmp_path):
    path = write(tmp_path, """
        input: [3, 32, 32]
        vars: {widths: [8, 16]}
        layers:
          - {op: conv, out: "widths.count", kernel: 3}
          - {op: conv, from: input, out: "(lambda: 8)()", kernel: 3}
          - {op: conv, from: input, out: "sum(x for x in [8])", kernel: 3}
          - {op: conv, from: input, out: "widths[2]", kernel: 3}
          - {op: conv, from: input, out: "widths + 1", kernel: 3}
        """)
    expect(path, 4, "layers[0]", "attribute access is not allowed", count=5)
    expect(path, 5, "layers[1]", "is not allowed")
    expect(path, 6, "layers[2]", "comprehensions is not allowed")
    expect(path, 7, "conv1", "index 2 is outside a list of 2 items")
    expect(path, 8, "conv2", "'+' needs numbers, received [8, 16]")


def test_expression_huge_power_is_refused_quickly(tmp_path):
    path = write(tmp_path, """
        input: [3, 32, 32]
        layers:
          - {op: conv, out: "9 ** 9 ** 9", kernel: 3}
        """)
    with bounded_work(200_000):
        expect(path, 3, "conv1", "is too large", count=1)


# ----------------------------------------------------------------- absurd sizes, time
def test_absurdly_large_input_is_refused_quickly(tmp_path):
    path = write(tmp_path, f"""
        input: [3, {10**9}, {10**9}]
        layers:
          - {{op: conv, out: 8, kernel: 3}}
        """)
    with bounded_work(50_000):
        expect(path, 1, "input", "input 3x1000000000x1000000000 is absurdly large", count=1)


def test_absurdly_large_input_from_the_command_line(tmp_path):
    path = write(tmp_path, SMALL)
    with bounded_work(50_000):
        lines = error_lines(cli("analyze", path, "--input", f"3x{10**9}x{10**9}"))
    assert "absurdly large" in lines[0]


def test_stage_repeat_of_a_million_is_refused_quickly(tmp_path):
    path = write(tmp_path, f"""
        input: [3, 32, 32]
        layers:
          - {{op: stage, block: basic, repeat: {10**6}, with: {{out: 3}}}}
        """)
    with bounded_work(50_000):
        expect(path, 3, "stage1", "repeat: 1,000,000 is more than the limit of 10,000", count=1)


def test_model_expanding_past_the_layer_limit_stops(tmp_path):
    stages = "\n".join("  - {op: stage, block: basic, repeat: 10000, with: {out: 3}}"
                       for _ in range(4))
    path = write(tmp_path, "input: [3, 32, 32]\nlayers:\n" + stages + "\n")
    with bounded_work(25_000_000):
        result = cli("validate", path)
    lines = error_lines(result)
    assert len(lines) == 1
    assert "expands to more than 200,000 layers; refusing to go on" in lines[0]
    assert lines[0].startswith(f"error: {path}:")


def test_layer_limit_error_points_at_the_stage(tmp_path):
    stages = "\n".join("  - {op: stage, block: basic, repeat: 10000, with: {out: 3}}"
                       for _ in range(4))
    path = write(tmp_path, "input: [3, 32, 32]\nlayers:\n" + stages + "\n")
    lines = error_lines(cli("validate", path))
    assert lines[0].startswith(f"error: {path}:5: stage3"), lines


def _nested_repeat_spec(tmp_path: Path) -> Path:
    return write(tmp_path, """
        input: [3, 8, 8]
        blocks:
          empty:
            layers:
              - {op: relu, when: false}
          outer:
            layers:
              - {op: stage, block: empty, repeat: 10000}
          outer2:
            layers:
              - {op: stage, block: outer, repeat: 10000}
        layers:
          - {op: stage, block: outer2, repeat: 10000}
        """)


def test_nested_repeats_of_empty_blocks_are_bounded(tmp_path):
    path = _nested_repeat_spec(tmp_path)
    with bounded_work(10_000_000):
        result = cli("validate", path)
    # Valid (the blocks add no layers), so "ok"; either way it must finish with bounded work.
    assert result.exit_code in (0, 2), result.output
    assert result.exit_code == 0 or result.stderr.startswith(f"error: {path}:")


def test_yaml_alias_bomb_is_refused_quickly(tmp_path):
    lines = ["input: [3, 8, 8]", "layers:",
             "  - {op: sequential, layers: &a [relu, relu, relu, relu, relu, relu, relu, relu, "
             "relu, relu]}"]
    prev = "a"
    for i in range(6):
        name = f"l{i}"
        refs = ", ".join([f"{{op: sequential, layers: *{prev}}}"] * 10)
        lines.append(f"  - {{op: sequential, layers: &{name} [{refs}]}}")
        prev = name
    path = write(tmp_path, "\n".join(lines) + "\n")
    assert path.stat().st_size < 3000
    with bounded_work(40_000_000):
        result = cli("validate", path)
    errors = error_lines(result)
    assert len(errors) == 1 and errors[0].startswith(f"error: {path}:")
    assert "refusing to go on" in errors[0]


def test_deeply_nested_yaml_lists(tmp_path):
    path = write(tmp_path, "input: [3, 32, 32]\nlayers: " + "[" * 5000 + "]" * 5000 + "\n")
    with bounded_work(50_000):
        expect(path, 2, "", "YAML is nested too deeply", count=1)


def test_deeply_nested_yaml_document(tmp_path):
    path = write(tmp_path, "[" * 5000 + "]" * 5000 + "\n")
    with bounded_work(50_000):
        expect(path, 1, "", "nested too deeply", "more than 256 levels", count=1)


def test_deeply_nested_layer_lists(tmp_path):
    text, indent = "input: [3, 32, 32]\nlayers:\n", "  "
    for _ in range(70):
        text += f"{indent}- op: sequential\n{indent}  layers:\n"
        indent += "    "
    text += f"{indent}- relu\n"
    path = write(tmp_path, text)
    with bounded_work(200_000):
        lines = error_lines(cli("validate", path))
    assert len(lines) == 1
    assert "layers are nested more than 64 levels deep" in lines[0]
    assert lines[0].startswith(f"error: {path}:")


def test_oversized_file_is_refused_before_parsing(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("input: [3, 32, 32]\nlayers: [relu]\n" + "# padding\n" * 250_000)
    with bounded_work(50_000):
        expect(path, 0, "", "specs are limited to", count=1)


# ------------------------------------------------------------------ collected reports
def test_several_errors_in_one_file_are_reported_together(tmp_path):
    path = write(tmp_path, """
        input: [3, 32, 32]
        vars: {width: 16}
        layers:
          - {op: conv, out: 8, kernal: 3}
          - {op: maxpol, kernel: 2}
          - {op: conv, from: input, out: 0, kernel: 3}
          - {op: conv, from: input, out: "2 * widht", kernel: 3}
          - {op: conv, from: nowhere, out: 8, kernel: 1}
          - {op: conv, from: input, out: 8, kernel: 3, act: no}
        """)
    result = cli("analyze", path)
    lines = error_lines(result)
    assert len(lines) == 6, result.stderr
    assert "6 errors" in result.stderr
    for lineno, part in [(4, "unknown field 'kernal'"), (5, "unknown op 'maxpol'"),
                         (6, "out: expected a positive integer, received 0"),
                         (7, "unknown variable 'widht'"), (8, "no layer named 'nowhere'"),
                         (9, "received false (a boolean)")]:
        assert any(x.startswith(f"error: {path}:{lineno}: ") and part in x for x in lines), (
            lineno, part, lines)
    found = problems(str(path))
    assert len(found) == 6
    assert sorted(p.loc.line for p in found) == [4, 5, 6, 7, 8, 9]


def test_errors_in_all_sections_are_reported_together(tmp_path):
    path = write(tmp_path, """
        input: [3, 32, 32]
        vars: {width: null}
        defaults: {kernal: 3}
        blocks:
          b: {params: {out: null}, layers: [{op: conv, out: out, kernel: 3, strid: 1}]}
        variants:
          v: {nope: 1}
        layers:
          - {op: b}
        extra: 1
        """)
    lines = error_lines(cli("validate", path))
    text = "\n".join(lines)
    assert f"{path}:2: vars.width: a variable's default must be" in text
    assert f"{path}:3: defaults: unknown default 'kernal'" in text and "'kernel'" in text
    assert f"{path}:5: blocks.b.layers[0]: unknown field 'strid'" in text
    assert f"{path}:7: variants.v: unknown variable 'nope'" in text
    assert f"{path}:9: " in text and "extra" in text
    assert len(lines) >= 5


def test_validate_reports_good_and_bad_files(tmp_path):
    good = write(tmp_path, SMALL, "good.yaml")
    bad = write(tmp_path, """
        input: [3, 32, 32]
        layers:
          - {op: maxpol, kernel: 2}
        """, "bad.yaml")
    result = cli("validate", good, bad)
    assert result.exit_code == 2
    assert f"ok: {good} (1 layer, output 16x30x30)" in result.stdout
    lines = error_lines(result)
    assert len(lines) == 1 and lines[0].startswith(f"error: {bad}:3: layers[0]: unknown op")
    assert "1 of 2 specs invalid" in result.stderr
    assert str(good) not in result.stderr


def test_validate_keeps_going_after_a_missing_file(tmp_path):
    good = write(tmp_path, SMALL, "good.yaml")
    result = cli("validate", tmp_path / "missing.yaml", good)
    assert result.exit_code == 2
    assert f"ok: {good}" in result.stdout
    assert "1 of 2 specs invalid" in result.stderr


# -------------------------------------------------------------------- CLI contract
def test_unwritable_output_path_exits_2(tmp_path):
    path = write(tmp_path, SMALL)
    target = tmp_path / "no" / "such" / "dir" / "out.txt"
    result = cli("analyze", path, "-o", target)
    assert result.exit_code == 2
    assert "internal error" not in result.output and str(target) in result.output


def test_library_rejects_bad_batch_and_dtype(tmp_path):
    path = write(tmp_path, SMALL)
    assert "batch must be a positive integer" in problems(str(path), batch=0)[0].message
    message = problems(str(path), dtype="fp33")[0].message
    assert "unknown dtype 'fp33'" in message and "did you mean 'fp32'" in message


# ------------------------------------------------------------------ found while fuzzing
def test_bottleneck_stride_on_must_be_conv1_or_conv2():
    result = cli("analyze", "resnet50", "--set", "stride_on=conv3", "--format", "json")
    assert result.exit_code == 2
    assert "stride_on" in result.stderr and "conv1" in result.stderr


# ------------------------------------------------------------------ library arguments
def test_library_input_string_is_validated(tmp_path):
    path = write(tmp_path, SMALL)
    for bad in ("3x0x32", "3x32", "abc", ""):
        found = problems(str(path), input=bad)
        assert len(found) == 1 and "input" in f"{found[0].path} {found[0].message}"
        assert repr(bad) in found[0].message and "CxHxW" in found[0].message


@pytest.mark.parametrize("bad", [(3, 0, 32), (3.5, 32, 32), (3, 32), ("3", 32, 32), 5])
def test_library_input_tuple_is_validated(tmp_path, bad):
    path = write(tmp_path, SMALL)
    found = problems(str(path), input=bad)
    assert len(found) == 1, [str(p) for p in found]
    assert "input" in f"{found[0].path} {found[0].message}"
    assert "positive integers" in found[0].message and repr(bad) in found[0].message


# ------------------------------------------------------------ messages and noise
def test_bad_when_names_the_layer(tmp_path):
    path = write(tmp_path, """
        input: [3, 32, 32]
        layers:
          - {op: relu}
          - {op: conv, out: 8, kernel: 3, when: 5}
        """)
    lines = error_lines(cli("analyze", path))
    assert len(lines) == 1, lines
    assert lines[0].startswith((f"error: {path}:4: conv1: ", f"error: {path}:4: layers[1]: ")), \
        lines
    assert "received 5" in lines[0]


def test_one_bad_value_is_not_repeated_per_block_instance():
    with pytest.raises(SpecError) as info:
        cnncost.analyze("resnet50", set={"width": 0.001})
    seen = [(str(p.loc), p.message) for p in info.value.problems]
    assert len(seen) == len(set(seen)), f"{len(seen)} problems, {len(set(seen))} distinct"


def test_derived_block_parameter_error_names_the_parameter(tmp_path):
    path = write(tmp_path, """
        input: [3, 32, 32]
        layers:
          - {op: bottleneck, out: 64, base_width: 3}
        """)
    lines = error_lines(cli("analyze", path))
    assert any("mid" in x or "base_width" in x for x in lines), lines


def test_library_rejects_wrong_argument_types():
    for bad in (5, None, 2.5):
        with pytest.raises(SpecError) as info:
            cnncost.analyze(bad)
        assert "a spec is a path, a bundled spec's name, a mapping or a loaded Spec" in str(
            info.value)
    with pytest.raises(SpecError) as info:
        cnncost.analyze("resnet18", set=[("width", 3)])
    assert "must be a mapping of name -> value, received list" in str(info.value)


def test_non_utf8_error_names_the_line(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"input: [3, 8, 8]\nlayers:\n  - relu # \xff\xfe\n")
    result = cli("analyze", path)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {path}:3: file is not UTF-8 text")
