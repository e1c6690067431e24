"""`cnncost export`: the standalone model file equals `cnncost.build` on the same spec.

For every bundled spec the exported class has the same state_dict keys and shapes and
the same layer order; for the smaller specs (and the pinned edge-case architectures of
test_property_verify) it computes the same output from the same weights. The file runs
as a script with only torch, and the CLI writes it. Hostile text in every place a spec
string reaches the file is written as text: the file compiles, importing it runs nothing
else, and the model is unchanged; a bad --class-name is a usage error, and source that
would not compile is never written.
"""

from __future__ import annotations

import ast
import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import cnncost
from cnncost.api import build_graph
from cnncost.cli import main, parse_sets

torch = pytest.importorskip("torch")
from cnncost.pytorch.builder import build  # noqa: E402
import cnncost.pytorch.export as export_module  # noqa: E402
from cnncost.pytorch.export import _docstring, _literal, check_class_name, class_name, export  # noqa: E402

from test_property_verify import PINNED  # noqa: E402

pytestmark = pytest.mark.torch
BUNDLED = sorted(cnncost.bundled_specs())
SMALL = [n for n in BUNDLED if cnncost.analyze(n).totals.macs < 500_000_000]


def load_class(source: str):
    namespace: dict = {"__name__": "exported"}
    exec(compile(source, "<exported>", "exec"), namespace)  # noqa: S102 - our own output
    classes = [v for v in namespace.values()
               if isinstance(v, type) and issubclass(v, torch.nn.Module)
               and v.__module__ == "exported" and hasattr(v, "input_shape")]
    assert len(classes) == 1
    return classes[0]


def shapes(model) -> dict:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", BUNDLED)
def test_exported_model_has_the_built_models_tensors(name):
    cls = load_class(export(name))
    assert cls.__name__ == class_name(cnncost.analyze(name).name)
    with torch.device("meta"):
        exported = cls()
    built = build(name, device="meta")
    assert shapes(exported) == shapes(built)
    x = torch.zeros(2, *cls.input_shape, device="meta")
    assert exported(x).shape == built(x).shape


def same_outputs(spec) -> None:
    torch.manual_seed(0)
    built = build(spec).eval()
    exported = load_class(export(spec))().eval()
    exported.load_state_dict(built.state_dict())
    x = torch.randn(2, *built.input_shape)
    with torch.inference_mode():
        torch.testing.assert_close(exported(x), built(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", SMALL)
def test_exported_model_computes_what_the_built_one_does(name):
    same_outputs(name)


@pytest.mark.parametrize("spec", PINNED, ids=["ceil", "same-pool", "transpose", "structure"])
def test_exported_edge_cases(spec):
    same_outputs(spec)


def test_layer_names_that_are_not_attributes():
    spec = {"input": [3, 8, 8], "layers": [
        {"op": "conv", "name": "train", "out": 4, "kernel": 3, "padding": 1},
        {"op": "relu", "name": "forward"},
        {"op": "add", "name": "to", "inputs": ["train", "forward"]}]}
    source = export(spec)
    assert "layer(self, 'train')" in source
    same_outputs(spec)


def test_cli_writes_a_file_that_runs_with_torch_alone(tmp_path):
    target = tmp_path / "model.py"
    result = CliRunner().invoke(main, ["export", "seed_mnist_cnn", "-o", str(target),
                                       "--class-name", "MnistNet"])
    assert result.exit_code == 0, result.output
    text = target.read_text()
    assert "class MnistNet(nn.Module):" in text
    assert "import cnncost" not in text and "from cnncost" not in text
    assert "from seed_mnist_cnn.yaml" in text.splitlines()[0]  # the file name, no local path
    done = subprocess.run([sys.executable, str(target)], capture_output=True, text=True,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "MnistNet: 1,199,882 params, output (10,)"


def test_cli_export_errors():
    out = CliRunner().invoke(main, ["export", "lenet5", "--class-name", "not valid"])
    assert out.exit_code == 2 and "not a Python identifier" in out.output
    out = CliRunner().invoke(main, ["export", "lenet5", "--class-name", "class"])
    assert out.exit_code == 2 and "is a Python keyword" in out.output
    out = CliRunner().invoke(main, ["export", "no_such_spec"])
    assert out.exit_code == 2 and "no such spec file or bundled spec" in out.stderr


# ------------------------------------------------------------ hostile text in a spec
# Every string a spec, its file name or the command line carries must reach the exported
# file only as an escaped literal: the file compiles, importing it runs nothing but the
# model's definition, and the model is still the built one.

PWNED = 'x""" + str(__import__("os").system("touch PWNED")) + """'
HOSTILE = {
    "triple-double": '"""',
    "triple-single": "'''",
    "quotes": "\"'\"'",
    "nul": "a\x00b",
    "newline": "two\nlines",
    "cr": "cr\rcrlf\r\n",
    "escape-text": "\\x41\\n\\u2028\\",
    "line-separators": "a\u2028b\u2029c\x85d",
    "backslash-end": "ends with a backslash\\",
    "pwned": PWNED,
    "pwned-single": PWNED.replace('"', "'"),
    "pwned-newline": '\n""")\nimport os; os.system("touch PWNED")\n("""',
    "comment": "# not a comment\n#",
    "braces": "{braces} {0} {{}} {__import__('os')}",
    "non-ascii": "Modèle ñ 模型 ✓ 🙂",
    "controls": "\t\x0b\x0c\x1b\x7f",
    "bidi": "\u202eevil\u202c",
    "empty": "",
}


def base_spec() -> dict:
    return {"name": "hostile", "description": "a spec", "source": "tests",
            "input": [3, 8, 8], "vars": {"width": 4, "tag": "plain"},
            "variants": {"other": {"tag": "other"}},
            "blocks": {"blk": {"description": "a block", "layers": [{"op": "relu"}]}},
            "layers": [{"op": "conv", "name": "stem", "out": "width", "kernel": 3},
                       {"op": "blk", "name": "body"}, {"op": "flatten"},
                       {"op": "linear", "out": 2}]}


def _description(spec, text):
    spec["description"] = text
    return [], lambda g: g.description == text


def _name(spec, text):
    spec["name"] = text
    return [], lambda g: g.name == (text or "spec")


def _source(spec, text):
    spec["source"] = text
    return [], None


def _var_default(spec, text):
    spec["vars"]["tag"] = text
    return [], lambda g: g.vars["tag"] == text


def _set(spec, text):
    return ["--set", f"tag={text}"], lambda g: isinstance(g.vars["tag"], str)


def _variant_value(spec, text):
    spec["variants"] = {"v": {"tag": text}}
    return ["--variant", "v"], lambda g: g.vars["tag"] == text


def _variant_name(spec, text):
    spec["variants"] = {text: {"tag": "named"}}
    return ["--variant", text], lambda g: g.vars["tag"] == "named"


def _block_description(spec, text):
    spec["blocks"]["blk"]["description"] = text
    return [], None


PLACES = {"description": _description, "name": _name, "source": _source,
          "var-default": _var_default, "set": _set, "variant-value": _variant_value,
          "variant-name": _variant_name, "block-description": _block_description,
          "file-name": None}


def expected_doc(graph) -> str:
    """The module docstring as export writes it, from the graph's own values."""
    settings_ = ", ".join(f"{k}={v!r}" for k, v in graph.vars.items())
    return (f"PyTorch model of {graph.name}, written by cnncost {cnncost.__version__} "
            f"(`cnncost export`) from {Path(graph.file).name}.\n\n"
            f"{graph.description or graph.name}\n"
            f"Input {'x'.join(map(str, graph.input_shape))} per sample; variables: "
            f"{settings_}.\n")


def import_file(path: Path):
    """Import the exported file as Python imports a module (not as __main__)."""
    name = f"exported_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def model_class(module):
    classes = [v for v in vars(module).values()
               if isinstance(v, type) and issubclass(v, torch.nn.Module)
               and v.__module__ == module.__name__ and hasattr(v, "input_shape")]
    assert len(classes) == 1
    return classes[0]


def export_and_check(tmp_path, monkeypatch, spec: dict, file_name: str, args: list,
                     class_name_: str | None = None):
    """Export through the CLI from a YAML file; import the file in an empty folder; the
    model equals cnncost.build. Returns (the module, the graph, the source)."""
    spec_dir, out_dir, cwd = (tmp_path / d for d in ("spec", "out", "cwd"))
    for d in (spec_dir, out_dir, cwd):
        d.mkdir()
    spec_file = spec_dir / file_name
    spec_file.write_text(yaml.safe_dump(spec), encoding="utf-8")
    target = out_dir / "model.py"
    extra = ["--class-name", class_name_] if class_name_ is not None else []
    result = CliRunner().invoke(main, ["export", str(spec_file), "-o", str(target),
                                       *args, *extra])
    assert result.exit_code == 0, result.output
    source = target.read_text(encoding="utf-8")
    assert all(c.isprintable() or c == "\n" for c in source)  # nothing hidden or line-breaking
    compile(source, str(target), "exec")
    monkeypatch.chdir(cwd)
    module = import_file(target)
    assert list(cwd.iterdir()) == [] and not list(tmp_path.rglob("PWNED"))
    pairs = dict(zip(args[::2], args[1::2], strict=True))  # each option once here
    options = dict(set=parse_sets(tuple(v for k, v in pairs.items() if k == "--set")),
                   variant=pairs.get("--variant"))
    graph = build_graph(spec_file, **options)
    assert module.__doc__.startswith(expected_doc(graph))
    cls = model_class(module)
    assert cls.__name__ == (class_name_ or class_name(graph.name))
    with torch.device("meta"):
        exported = cls()
    built = build(spec_file, device="meta", **options)
    assert list(shapes(exported).items()) == list(shapes(built).items())
    return module, graph, source


@pytest.mark.parametrize(("place", "text"), [
    pytest.param(place, text, id=f"{key}-{place}") for key, text in HOSTILE.items()
    for place in PLACES if not (place == "file-name" and "\x00" in text)])  # no NUL in a path
def test_hostile_text_is_written_as_text(tmp_path, monkeypatch, place, text):
    spec = base_spec()
    file_name = "spec.yaml"
    if place == "file-name":
        file_name = f"{text}.yaml"
        args, probe = [], lambda g: Path(g.file).name == file_name
    else:
        args, probe = PLACES[place](spec, text)
    _, graph, _ = export_and_check(tmp_path, monkeypatch, spec, file_name, args)
    if probe is not None:
        assert probe(graph)  # the text did reach the graph the file was written from


def test_hostile_text_everywhere_at_once_runs_as_a_script(tmp_path, monkeypatch):
    spec = base_spec()
    for fill in (_description, _name, _source, _var_default, _block_description):
        fill(spec, PWNED)
    spec["variants"] = {PWNED: {"tag": PWNED + "\\"}}
    args = ["--variant", PWNED, "--set", f"tag={PWNED}\n"]  # --set wins over the variant
    module, graph, _ = export_and_check(tmp_path, monkeypatch, spec, f"{PWNED}.yaml", args)
    assert graph.description == graph.name == PWNED and graph.vars["tag"] == PWNED
    assert Path(graph.file).name == f"{PWNED}.yaml" and f"\n\n{PWNED}\n" in module.__doc__
    done = subprocess.run([sys.executable, module.__file__], capture_output=True, text=True,
                          cwd=tmp_path / "cwd")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("XStrImportOsSystemTouchPWNED: 402 params") and not list(tmp_path.rglob("PWNED"))


def test_hostile_text_through_the_library(monkeypatch, tmp_path):
    """A mapping spec skips YAML, so it can carry what YAML refuses (a lone surrogate)."""
    monkeypatch.chdir(tmp_path)
    for text in [*HOSTILE.values(), "\ud800", "\udfff\U0010ffff"]:
        spec = base_spec()
        spec["name"] = spec["description"] = spec["vars"]["tag"] = text
        source = export(spec)
        assert all(c.isprintable() or c == "\n" for c in source)
        namespace: dict = {"__name__": "exported"}
        exec(compile(source, "<exported>", "exec"), namespace)  # noqa: S102
        assert namespace["__doc__"].startswith(expected_doc(build_graph(spec)))
    assert list(tmp_path.iterdir()) == []


# Layer and variable names are identifiers (the spec language refuses anything else),
# but many of them mean something in the exported file.
TRICKY_NAMES = ["self", "x", "x1", "x2", "layer", "attach", "torch", "nn", "F", "super",
                "print", "__init__", "__class__", "__dict__", "_modules", "forward", "train",
                "to", "model", "params", "y", "Add", "Group", "match", "case", "type",
                "__name__", "__builtins__", "__import__", "PWNED"]


def test_names_that_mean_something_in_python():
    chain = [{"op": "relu", "name": n} for n in TRICKY_NAMES]
    spec = {"name": "__import__", "input": [3, 8, 8],
            "vars": {n: n for n in TRICKY_NAMES},
            "layers": [{"op": "conv", "name": "self", "out": 4, "kernel": 3, "padding": 1},
                       {"op": "sequential", "name": "__class__", "layers": chain},
                       {"op": "sequential", "name": "x", "layers": chain},
                       {"op": "add", "name": "attach", "inputs": ["self", "x"]}]}
    same_outputs(spec)
    assert cnncost.analyze(spec).name == "__import__"


@pytest.mark.parametrize(("spec_name", "expected"), [
    ("resnet50", "Resnet50"), ("seed_mnist_cnn", "SeedMnistCnn"), ("add", "AddModel"),
    ("group", "GroupModel"), ("none", "NoneModel"), ("true", "TrueModel"), ("f", "FModel"),
    ("value_error", "ValueErrorModel"), ("3d", "Model3d"), ("", "Model"), ("模型", "Model"),
    (PWNED, "XStrImportOsSystemTouchPWNED"), ("__name__", "Name")])
def test_class_names_from_spec_names_are_always_valid(spec_name, expected):
    assert class_name(spec_name) == expected == check_class_name(expected)


@pytest.mark.parametrize("spec_name", ["add", "group", "none", "f"])
def test_spec_named_like_a_helper(spec_name):
    # The model class used to be `Add`: it replaced the helper Add, and building it
    # recursed without end.
    spec = {"name": spec_name, "input": [3, 8, 8], "layers": [
        {"op": "conv", "name": "a", "out": 4, "kernel": 3, "padding": 1},
        {"op": "sequential", "name": "g", "layers": [{"op": "relu"}]},
        {"op": "add", "inputs": ["a", "g"]}, {"op": "mul", "inputs": ["a", "add1"]}]}
    same_outputs(spec)


BAD_CLASS_NAMES = {
    "space": "not valid", "keyword": "class", "None": "None", "empty": "", "digit": "1abc",
    "dash": "a-b", "quotes": 'A"""', "newline": "A\nB", "nul": "A\x00", "cr": "A\rB",
    "u2028": "A\u2028", "ligature": "\ufb01le", "fullwidth": "\uff2dodel", "dunder": "__name__",
    "init": "__init__", "helper-function": "attach", "helper-class": "Add", "torch": "torch",
    "nn": "nn", "F": "F", "builtin": "super", "type": "type", "print": "print",
    "pwned": PWNED, "braces": "{A}",
}


@pytest.mark.parametrize("name", BAD_CLASS_NAMES.values(), ids=BAD_CLASS_NAMES.keys())
def test_bad_class_names_are_usage_errors(tmp_path, name):
    target = tmp_path / "model.py"
    result = CliRunner().invoke(main, ["export", "lenet5", "--class-name", name,
                                       "-o", str(target)])
    assert result.exit_code == 2 and not target.exists()
    assert "Traceback" not in result.output and result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "--class-name" in errors[0] and "class name" in errors[0]
    assert not [line for line in result.stderr.splitlines()
                if line and not line.startswith(("Usage:", "Try ", "Error:"))]


@pytest.mark.parametrize("name", ["MnistNet", "Modèle", "Μοντέλο", "match", "_", "Model_2"])
def test_unusual_class_names_that_work(tmp_path, monkeypatch, name):
    export_and_check(tmp_path, monkeypatch, base_spec(), "spec.yaml", [], class_name_=name)


@pytest.mark.parametrize("broken", ['"""unterminated', "'\x00'", "x = ("],
                         ids=["unterminated", "nul", "syntax"])
def test_source_that_does_not_compile_is_refused(tmp_path, monkeypatch, broken):
    monkeypatch.setattr(export_module, "_docstring", lambda text: broken)
    target = tmp_path / "model.py"
    result = CliRunner().invoke(main, ["export", "lenet5", "-o", str(target)])
    assert result.exit_code == 2 and not target.exists()
    assert result.stdout == "" and "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: export: the generated source does not compile"), result.stderr
    with pytest.raises(export_module.ExportError, match="does not compile"):
        export("lenet5")


# ------------------------------------------------------------ the two escaping functions
def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, (tuple, list)):
        return (type(a) is type(b) and len(a) == len(b)
                and all(_same(x, y) for x, y in zip(a, b, strict=True)))
    return type(a) is type(b) and a == b


VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.lists(inner, max_size=4).map(tuple),
    max_leaves=12)


@settings(max_examples=300, deadline=None, database=None)
@given(VALUES)
def test_literal_evaluates_back_to_the_value(value):
    literal = _literal(value)
    assert literal.isprintable()  # one line, nothing hidden
    assert _same(eval(literal, {"__builtins__": {}, "float": float}), value)  # noqa: S307


@settings(max_examples=300, deadline=None, database=None)
@given(st.text() | st.lists(st.sampled_from(['"', "\\", "\n", "\r", "'", "x", "\x00",
                                              "\u2028"])).map("".join))
def test_docstring_is_the_text(text):
    literal = _docstring(text)
    assert all(c.isprintable() or c == "\n" for c in literal)
    tree = ast.parse(literal)
    assert len(tree.body) == 1 and ast.get_docstring(tree, clean=False) == text


def test_literal_of_what_has_no_literal():
    assert [_literal(v) for v in (math.inf, -math.inf, math.nan, (1,), [])] == [
        "float('inf')", "float('-inf')", "float('nan')", "(1,)", "[]"]
    with pytest.raises(export_module.ExportError, match="cannot write a value of type dict"):
        _literal({"a": 1})


def test_every_spec_string_field_is_covered():
    """A new top-level text field must be added to PLACES above."""
    from cnncost.lang.spec import TOP_KEYS

    covered = {"name", "description", "source", "vars", "variants", "blocks"}
    # imports: file paths that are read (their blocks expand to layers), never written out
    assert set(TOP_KEYS) - covered <= {"input", "defaults", "layers", "imports"}

