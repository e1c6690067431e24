"""cnncost: the cost of a convolutional network before you train it.

Analytic shapes, parameters, MACs, FLOPs and memory from a declarative YAML
spec, without importing torch. ``cnncost.analyze("resnet50")`` returns an
:class:`Analysis`; see README.md and docs/.
"""

from .analysis import Analysis, Row, Totals
from .api import analyze, build_graph, bundled_specs, load, resolve_vars
from .errors import Problem, SpecError

__version__ = "0.1.0"
__all__ = ["Analysis", "Problem", "Row", "SpecError", "Totals", "analyze", "build_graph",
           "bundled_specs", "compare", "load", "resolve_vars", "__version__"]


def __getattr__(name: str) -> object:
    """`cnncost.compare` on first use (it imports pandas when called, not at import)."""
    if name == "compare":
        from .comparison import compare

        return compare
    raise AttributeError(f"module 'cnncost' has no attribute {name!r}")
