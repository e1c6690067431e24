"""`cnncost export`: the standalone model file equals `cnncost.build` on the same spec.

For every bundled spec the exported class has the same state_dict keys and shapes and
the same layer order; for the smaller specs (and the pinned edge-case architectures of
test_property_verify) it computes the same output from the same weights. The file runs
as a script with only torch, and the CLI writes it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

import cnncost
from cnncost.cli import main

torch = pytest.importorskip("torch")
from cnncost.builder import build  # noqa: E402
from cnncost.export import class_name, export  # noqa: E402

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
