"""Models side by side: compare (tables and sweeps), diff (layer by layer),
plot (matplotlib, imported only when drawing). Never imports torch.
"""
