"""The spec language: YAML text to an expanded graph of primitive ops.

yamlio (line-aware loading) -> spec (validated, typed spec) -> expand (the graph),
with expr (safe expressions), replay (block memo) and schema (JSON Schema).
May import cnncost.errors, cnncost.safeio and cnncost.cost.ops; never torch,
pandas, or the gate, comparison, pytorch or CLI packages.
"""
