"""cnncost: the cost of a convolutional network before you train it.

Analytic shapes, parameters, MACs, FLOPs and memory from a declarative YAML
spec, without importing torch. ``cnncost.analyze("resnet50")`` returns an
:class:`Analysis`; see README.md and docs/.
"""

from .cost.analysis import Analysis, Row, Totals
from .api import analyze, build_graph, bundled_specs, load, resolve_vars
from .errors import Problem, SpecError

__version__ = "0.1.0"
__all__ = ["Analysis", "Problem", "Row", "SpecError", "Totals", "analyze", "build",
           "build_graph", "bundled_specs", "compare", "load", "resolve_vars", "verify",
           "__version__"]

# Functions imported on first use, so that `import cnncost` imports neither torch (build,
# verify) nor pandas (compare, which imports it when called).
_LAZY = {"build": "cnncost.pytorch.builder", "verify": "cnncost.pytorch.verification",
         "compare": "cnncost.comparison.compare"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cnncost' has no attribute {name!r}")
