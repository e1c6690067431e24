"""Import torch once, quietly: the modules that need torch import it from here.

A torch build without NumPy beside it warns "Failed to initialize NumPy" at import;
cnncost never hands torch a NumPy array, so that one warning is silenced. Importing
this module imports torch: the analytic path never does.
"""

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
    import torch

__all__ = ["torch"]


def set_threads(threads: int | None) -> None:
    """torch's CPU thread count, when one is given (commands call this, not torch)."""
    if threads is not None:
        torch.set_num_threads(threads)
