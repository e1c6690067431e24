"""CI gating: budget files, baselines (stored or at a git ref), bench-result files,
the checks and their reports. Analytic only: nothing here imports torch.
"""
