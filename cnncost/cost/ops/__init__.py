"""Primitive ops. Importing this package registers every op in :data:`OPS`."""

from . import act, conv, misc, norm, pool  # noqa: F401  (registration side effects)
from . import affine, spatial  # noqa: F401  (registered after the others: order is kept)
from .base import ALIASES, OPS, Cost, Field, OpDef, OpError, canonical, fmt_shape, numel

__all__ = ["ALIASES", "OPS", "Cost", "Field", "OpDef", "OpError", "canonical", "fmt_shape",
           "numel"]
