"""The layout holds by construction: torch only in cnncost/pytorch/, and the language
and the analytic engine import nothing from the packages built on top of them.

Imports are read from the source (every `import` and `from ... import`, also those
inside functions), so a lazy `import torch` in the wrong folder fails here too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "cnncost"
UPPER = ("cnncost.gate", "cnncost.comparison", "cnncost.pytorch", "cnncost.cli",
         "cnncost.commands", "cnncost.formats", "cnncost.api")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Absolute names of every module `path` imports (relative imports resolved)."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


def in_folder(path: Path, folder: str) -> bool:
    return path.relative_to(PACKAGE).parts[0] == folder


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_the_pytorch_package_imports_torch(path):
    if in_folder(path, "pytorch"):
        return
    bad = sorted(m for m in imports(path) if m == "torch" or m.startswith("torch."))
    assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}: torch belongs in cnncost/pytorch/"


@pytest.mark.parametrize("path", [p for p in SOURCES if in_folder(p, "lang") or in_folder(p, "cost")],
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_language_and_the_engine_import_nothing_built_on_them(path):
    found = imports(path)
    bad = sorted(m for m in found if any(m == u or m.startswith(u + ".") for u in UPPER))
    assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


def test_the_checks_see_a_planted_import(tmp_path):
    planted = tmp_path / "cnncost" / "cost" / "bad.py"
    planted.parent.mkdir(parents=True)
    planted.write_text("def f():\n    import torch\n    from ..gate import baseline\n")
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path / "cnncost"
    try:
        assert {"torch", "cnncost.gate", "cnncost.gate.baseline"} <= imports(planted)
        with pytest.raises(AssertionError, match="torch belongs in cnncost/pytorch/"):
            test_only_the_pytorch_package_imports_torch(planted)
        with pytest.raises(AssertionError, match="cnncost.gate"):
            test_the_language_and_the_engine_import_nothing_built_on_them(planted)
    finally:
        PACKAGE = saved


def gate_cycle() -> list[str] | None:
    """An import circle among the gate modules (lazy imports counted), or None."""
    modules = {module_name(p): p for p in SOURCES if in_folder(p, "gate")}
    edges = {m: sorted(i for i in imports(p) if i in modules and i != m)
             for m, p in modules.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(m: str, path: list[str]) -> list[str] | None:
        state[m] = 1
        for n in edges[m]:
            if state.get(n) == 1:
                return path[path.index(n):] + [n]
            if n not in state and (found := visit(n, path + [n])):
                return found
        state[m] = 2
        return None

    for m in modules:
        if m not in state and (found := visit(m, [m])):
            return found
    return None


def test_the_gate_modules_import_each_other_without_a_circle():
    """keys.py holds what baseline, benchfile and metrics share, below all three."""
    cycle = gate_cycle()
    assert cycle is None, " -> ".join(cycle)
