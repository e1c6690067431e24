"""Everything that touches PyTorch: build, verify, export, measure, bench.

The only package whose modules may import torch (tests/test_architecture.py
checks it). Importing the package itself imports nothing heavy.
"""
