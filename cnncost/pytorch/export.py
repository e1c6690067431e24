"""`cnncost export`: write a spec's PyTorch model as one standalone Python file.

The file needs only torch. It holds the helper modules of `cnncost/pytorch/torch_modules.py`
(copied verbatim), then one ``nn.Module`` class whose ``__init__`` creates every layer
exactly as `cnncost.build` does (the same factories, written out as constructor calls)
under the same dotted names, and whose ``forward`` is straight-line code over the
expanded graph, reusing variable names once a tensor is dead so that activations are
freed as in the analytic peak. ``state_dict`` keys equal those of `cnncost.build`, so
weights move between the two.

No text from a spec, its file name or the command line is pasted into the code: values
are written by `_literal` (a Python literal that evaluates back to the value), the module
docstring by `_docstring`, and the only identifier that is not cnncost's own, the class
name, is checked by `check_class_name` (or made up from the spec's name by `class_name`,
which always gives a valid one). The finished source is compiled before it is returned:
`ExportError` if it does not compile, so a bug here can never write a broken file.
"""

from __future__ import annotations

import ast
import builtins
import functools
import inspect
import keyword
import math
import re
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import __version__
from .torch_import import torch  # noqa: F401 - first, so its import is quiet
from torch import nn  # noqa: E402

from . import torch_modules
from .builder import BuildError, Make, last_uses, make_for
from ..lang.graph import Graph

MODULES_FILE = Path(torch_modules.__file__)


class ExportError(BuildError):
    """The model cannot be written as a standalone file (the command's exit 2)."""


class ClassNameError(ExportError):
    """The class name asked for cannot name the model's class in the exported file."""


# ---------------------------------------------------------------- writing values
def _literal(value: Any) -> str:
    """`value` as Python source that evaluates back to it: the one way a value gets into
    the exported code. Text is repr'd (quotes, backslashes, NUL, newlines, U+2028 and
    every other non-printable character escaped); inf and nan, which have no literal,
    become float('inf') and the like."""
    if value is None or isinstance(value, (bool, int)):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f"float({str(value)!r})"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (tuple, list)):
        items = ", ".join(_literal(v) for v in value)
        if isinstance(value, list):
            return f"[{items}]"
        return f"({items},)" if len(value) == 1 else f"({items})"
    raise ExportError(f"cannot write a value of type {type(value).__name__} ({value!r:.60}) "
                      "as source")


def _docstring(text: str) -> str:
    """`text` as a triple-quoted string literal equal to it, its line breaks kept for the
    reader: a backslash is doubled, a double quote next to another (or last) is escaped so
    that no three meet, and every non-printable character (CR, NUL, U+2028, bidi
    controls, lone surrogates ...) is written as its escape."""
    out = []
    for i, ch in enumerate(text):
        if ch == "\n":
            out.append(ch)
        elif ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"' if text[i + 1:i + 2] in ('"', "") else ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(repr(ch)[1:-1])  # '\r', '\x00', '\u2028', '\ud800'
    return '"""' + "".join(out) + '"""'


# ---------------------------------------------------------------- the class name
@functools.lru_cache(maxsize=1)
def _taken_names() -> frozenset[str]:
    """Names a model class must not take: what the helpers define or import at module
    level (``attach``, ``Add``, ``torch``, ``F``, ...) and the builtins, which the helpers
    and the generated code call."""
    names = set(dir(builtins))
    for statement in ast.parse(MODULES_FILE.read_text(encoding="utf-8")).body:
        if isinstance(statement, (ast.FunctionDef, ast.ClassDef)):
            names.add(statement.name)
        elif isinstance(statement, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in statement.names)
        else:
            names.update(n.id for n in ast.walk(statement)
                         if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))
    return frozenset(names)


def check_class_name(name: str) -> str:
    """`name` if it can name the model class; ClassNameError (one line) if not."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ClassNameError(f"class name {name!r} is not a Python identifier")
    if keyword.iskeyword(name):
        raise ClassNameError(f"class name {name!r} is a Python keyword")
    normal = unicodedata.normalize("NFKC", name)
    if normal != name:  # Python reads identifiers in NFKC: the class would be called `normal`
        raise ClassNameError(f"class name {name!r} is not in Unicode normal form NFKC "
                             f"(Python would read it as {normal!r})")
    if name.startswith("__") and name.endswith("__"):
        raise ClassNameError(f"class name {name!r} is a reserved (dunder) name")
    if name in _taken_names():
        raise ClassNameError(f"class name {name!r} is taken by a builtin or a helper of the "
                             "exported file")
    return name


def class_name(spec_name: str) -> str:
    """'resnet50' -> 'Resnet50', 'seed_mnist_cnn' -> 'SeedMnistCnn'; always a valid class
    name ('add' -> 'AddModel', not the helper Add; 'none' -> 'NoneModel')."""
    words = re.findall(r"[A-Za-z0-9]+", spec_name)
    name = "".join(w[:1].upper() + w[1:] for w in words) or "Model"
    if not name[0].isalpha():
        name = f"Model{name}"
    if keyword.iskeyword(name) or name in _taken_names():
        name += "Model"
    return check_class_name(name)


# ---------------------------------------------------------------- the code
def _constructor(make: Make) -> str:
    cls = make.cls
    if cls.__module__ == torch_modules.__name__:
        prefix = ""
    elif cls.__module__.startswith("torch.nn") and getattr(nn, cls.__name__, None) is cls:
        prefix = "nn."
    else:
        raise ExportError(f"cannot write {cls.__module__}.{cls.__name__} as source")
    for key in make.kwargs:
        if not key.isidentifier() or keyword.iskeyword(key):
            raise ExportError(f"cannot write argument {key!r} of {cls.__name__} as source")
    args = ", ".join(f"{key}={_literal(value)}" for key, value in make.kwargs.items()
                     if not _is_default(cls, key, value))
    return f"{prefix}{cls.__name__}({args})"


def _is_default(cls: type, key: str, value: Any) -> bool:
    """`value` is what `cls` would use for `key` anyway (an int default n covers (n, n))."""
    parameter = inspect.signature(cls).parameters.get(key)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return False
    default = parameter.default
    if isinstance(value, tuple) and isinstance(default, int) and not isinstance(default, bool):
        return all(v == default for v in value)
    return type(value) is type(default) and value == default


def _access(name: str, layer_names: set[str]) -> str:
    """Attribute access to a layer where Python allows it, else torch_modules.layer()."""
    atoms = name.split(".")
    plain = all(a.isascii() and a.isidentifier() and not keyword.iskeyword(a)
                and not a.startswith("_") and not hasattr(nn.Module, a) for a in atoms)
    nested_in_layer = any(".".join(atoms[:i]) in layer_names for i in range(1, len(atoms)))
    if plain and not nested_in_layer:
        return "self." + name
    return f"layer(self, {_literal(name)})"


def _helpers_source() -> str:
    """torch_modules.py without its module docstring."""
    text = MODULES_FILE.read_text(encoding="utf-8")
    end = text.index('"""', 3) + 3  # the file starts with its docstring
    return text[end:].lstrip("\n")


def _check_compiles(source: str, filename: str) -> None:
    """The safety net under the escaping: ExportError (one line) if `source` is not Python."""
    try:
        compile(source, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:  # ValueError: a NUL byte (before Python 3.12)
        lineno = getattr(exc, "lineno", None)
        where = f" (line {lineno})" if lineno else ""
        message = " ".join(str(getattr(exc, "msg", None) or exc).split())
        raise ExportError(f"the generated source does not compile{where}: {message}; refusing "
                          "to write it (a bug in cnncost export, please report it)") from None


def export_source(graph: Graph, name: str | None = None, spec_file: str = "") -> str:
    """Python source of a standalone module defining the model of `graph`."""
    cls = check_class_name(name) if name is not None else class_name(graph.name)
    nodes = graph.nodes
    names = {n.name for n in nodes[1:]}
    init = []
    for node in nodes[1:]:
        init.append(f"        attach(self, {_literal(node.name)}, "
                    f"{_constructor(make_for(node, nodes))})")

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
        guard = "if self.training: " if node.train_only else ""  # auxiliary heads
        body.append(f"        {guard}{out} = {_access(node.name, names)}({args})")
    body.append(f"        return {var[graph.output]}")

    settings = ", ".join(f"{k}={v!r}" for k, v in graph.vars.items()) or "none"
    shape = "x".join(map(str, graph.input_shape))
    origin = f" from {spec_file}" if spec_file else ""
    docstring = _docstring(f"""\
PyTorch model of {graph.name}, written by cnncost {__version__} (`cnncost export`){origin}.

{graph.description or graph.name}
Input {shape} per sample; variables: {settings}.
Standalone: needs only torch. Module names are cnncost's layer names, so this model's
state_dict keys equal those of cnncost.build on the same spec.
""")
    source = f'''{docstring}

{_helpers_source()}

# ---------------------------------------------------------------- the model


class {cls}(nn.Module):
    input_shape = {_literal(tuple(graph.input_shape))}

    def __init__(self) -> None:
        super().__init__()
{chr(10).join(init)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
{chr(10).join(body)}


if __name__ == "__main__":
    model = {cls}().eval()
    with torch.inference_mode():
        y = model(torch.randn(1, *model.input_shape))
    params = sum(p.numel() for p in model.parameters())
    print(f"{{type(model).__name__}}: {{params:,}} params, output {{tuple(y.shape[1:])}}")
'''
    _check_compiles(source, "<cnncost export>")
    return source


def export(spec: Any, *, input: tuple | str | None = None, set: Mapping | None = None,
           variant: str | None = None, name: str | None = None) -> str:
    """The standalone PyTorch source of a spec (path, bundled name, mapping or Spec).

    Raises SpecError on an invalid spec, ClassNameError on a `name` that cannot name the
    class, ExportError if the model cannot be written as source."""
    from ..api import build_graph

    if name is not None:
        check_class_name(name)  # before the work of expanding the spec
    from ..api import refuse_opaque

    graph = build_graph(spec, input=input, set=set, variant=variant)
    refuse_opaque(graph, "exported")
    return export_source(graph, name, Path(graph.file).name)  # no local paths in the file
