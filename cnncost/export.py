"""`cnncost export`: write a spec's PyTorch model as one standalone Python file.

The file needs only torch. It holds the helper modules of `cnncost/torch_modules.py`
(copied verbatim), then one ``nn.Module`` class whose ``__init__`` creates every layer
exactly as `cnncost.build` does (the same factories, written out as constructor calls)
under the same dotted names, and whose ``forward`` is straight-line code over the
expanded graph, reusing variable names once a tensor is dead so that activations are
freed as in the analytic peak. ``state_dict`` keys equal those of `cnncost.build`, so
weights move between the two.
"""

from __future__ import annotations

import inspect
import keyword
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import __version__
from .torch_import import torch  # noqa: F401 - first, so its import is quiet
from torch import nn  # noqa: E402

from . import torch_modules
from .builder import BuildError, Make, last_uses, make_for
from .expand import Graph

MODULES_FILE = Path(torch_modules.__file__)


def class_name(spec_name: str) -> str:
    """'resnet50' -> 'Resnet50', 'seed_mnist_cnn' -> 'SeedMnistCnn'."""
    words = re.findall(r"[A-Za-z0-9]+", spec_name)
    name = "".join(w[:1].upper() + w[1:] for w in words) or "Model"
    return name if name[0].isalpha() else f"Model{name}"


def _constructor(make: Make) -> str:
    cls = make.cls
    if cls.__module__ == torch_modules.__name__:
        prefix = ""
    elif cls.__module__.startswith("torch.nn") and getattr(nn, cls.__name__, None) is cls:
        prefix = "nn."
    else:
        raise BuildError(f"cannot write {cls.__module__}.{cls.__name__} as source")
    args = ", ".join(f"{key}={value!r}" for key, value in make.kwargs.items()
                     if not _is_default(cls, key, value))
    return f"{prefix}{cls.__name__}({args})"


def _is_default(cls: type, key: str, value: Any) -> bool:
    """`value` is what `cls` would use for `key` anyway (an int default n covers (n, n))."""
    parameter = inspect.signature(cls.__init__).parameters.get(key)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return False
    default = parameter.default
    if isinstance(value, tuple) and isinstance(default, int) and not isinstance(default, bool):
        return all(v == default for v in value)
    return type(value) is type(default) and value == default


def _access(name: str, layer_names: set[str]) -> str:
    """Attribute access to a layer where Python allows it, else torch_modules.layer()."""
    atoms = name.split(".")
    plain = all(a.isidentifier() and not keyword.iskeyword(a) and not a.startswith("_")
                and not hasattr(nn.Module, a) for a in atoms)
    nested_in_layer = any(".".join(atoms[:i]) in layer_names for i in range(1, len(atoms)))
    if plain and not nested_in_layer:
        return "self." + name
    return f"layer(self, {name!r})"


def _helpers_source() -> str:
    """torch_modules.py without its module docstring."""
    text = MODULES_FILE.read_text(encoding="utf-8")
    end = text.index('"""', 3) + 3  # the file starts with its docstring
    return text[end:].lstrip("\n")


def export_source(graph: Graph, name: str | None = None, spec_file: str = "") -> str:
    """Python source of a standalone module defining the model of `graph`."""
    cls = name or class_name(graph.name)
    if keyword.iskeyword(cls):
        raise BuildError(f"class name {cls!r} is a Python keyword")
    if not cls.isidentifier():
        raise BuildError(f"class name {cls!r} is not a Python identifier")
    nodes = graph.nodes
    names = {n.name for n in nodes[1:]}
    init = []
    for node in nodes[1:]:
        init.append(f"        attach(self, {node.name!r}, {_constructor(make_for(node, nodes))})")

    last_use = last_uses(graph)
    var = {0: "x"}
    free: list[str] = []
    count = 0
    body = []
    for node in nodes[1:]:
        args = ", ".join(var[i] for i in node.inputs)
        for i in dict.fromkeys(node.inputs):
            if last_use[i] == node.index:
                free.append(var[i])
        if free:
            out = free.pop()
        else:
            count += 1
            out = f"x{count}"
        var[node.index] = out
        if last_use[node.index] == node.index:  # never read: free its name at once
            free.append(out)
        body.append(f"        {out} = {_access(node.name, names)}({args})")
    body.append(f"        return {var[graph.output]}")

    settings = ", ".join(f"{k}={v!r}" for k, v in graph.vars.items()) or "none"
    shape = "x".join(map(str, graph.input_shape))
    source = f'''"""PyTorch model of {graph.name}, written by cnncost {__version__} (`cnncost export`){f" from {spec_file}" if spec_file else ""}.

{graph.description or graph.name}
Input {shape} per sample; variables: {settings}.
Standalone: needs only torch. Module names are cnncost's layer names, so this model's
state_dict keys equal those of cnncost.build on the same spec.
"""

{_helpers_source()}

# ---------------------------------------------------------------- the model


class {cls}(nn.Module):
    input_shape = {tuple(graph.input_shape)!r}

    def __init__(self) -> None:
        super().__init__()
{chr(10).join(init)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
{chr(10).join(body)}


if __name__ == "__main__":
    model = {cls}().eval()
    with torch.inference_mode():
        y = model(torch.randn(1, *{cls}.input_shape))
    params = sum(p.numel() for p in model.parameters())
    print(f"{cls}: {{params:,}} params, output {{tuple(y.shape[1:])}}")
'''
    return source


def export(spec: Any, *, input: tuple | str | None = None, set: Mapping | None = None,
           variant: str | None = None, name: str | None = None) -> str:
    """The standalone PyTorch source of a spec (path, bundled name, mapping or Spec)."""
    from .api import build_graph

    graph = build_graph(spec, input=input, set=set, variant=variant)
    return export_source(graph, name, Path(graph.file).name)  # no local paths in the file
