"""The analytic engine: the op registry (shape and cost rules) and the analysis.

Pure Python over the expanded graph. May import cnncost.errors and cnncost.lang;
never torch, pandas, or the gate, comparison, pytorch or CLI packages.
"""
