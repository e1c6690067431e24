"""Record what other FLOP counters report for the language 2.0 ops, one op at a time.

For every case below (a one-op spec on a small input), build the PyTorch model with
``cnncost.build`` and run fvcore ``FlopCountAnalysis(...).total()``, ptflops
``get_model_complexity_info(..., backend="pytorch")``, thop ``profile`` and
``torch.utils.flop_counter.FlopCounterMode`` (halved to MACs), exactly as
benchmarks/convention_reference.py does for the bundled specs. The totals, with the
tool versions, go to tests/data/convention_ops_reference.json, which
tests/test_conventions.py checks every counting profile against. Regenerate with

    python -m venv /tmp/refvenv && . /tmp/refvenv/bin/activate
    pip install torch==2.13.0 numpy pyyaml click rich fvcore==0.1.5.post20221221 \\
        ptflops==0.7.5 thop==0.1.1.post2209072238
    python benchmarks/convention_ops_reference.py

(these tools are not cnncost dependencies; install them only to regenerate the data).
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import cnncost  # noqa: E402
from convention_reference import fvcore_counts, ptflops_counts, thop_counts, torch_counts  # noqa: E402

INPUT = [8, 10, 12]

# case name -> the op's layer, or a short list of layers (the spec, on an 8x10x12 input)
CASES = {
    "slice": {"op": "slice", "start": 2, "stop": 6},
    "pad": {"op": "pad", "padding": [1, 2, 3, 4]},
    "pad_channels": {"op": "pad", "channels": [2, 6]},
    "pad_reflect": {"op": "pad", "padding": 2, "mode": "reflect"},
    "crop": {"op": "crop", "size": [5, 7]},
    "upsample_nearest": {"op": "upsample", "scale": 2},
    "upsample_nearest_size": {"op": "upsample", "size": [15, 17]},
    "upsample_bilinear": {"op": "upsample", "scale": [2, 3], "mode": "bilinear"},
    "upsample_bilinear_size": {"op": "upsample", "size": [15, 17], "mode": "bilinear",
                               "align_corners": True},
    "scale": {"op": "scale", "init": 1e-6},
    "rescaling": {"op": "rescaling", "scale": 0.5},
    "rescaling_offset": {"op": "rescaling", "scale": 0.5, "offset": -1},
    "normalization": {"op": "normalization"},
    "batchnorm_beta_only": {"op": "batchnorm", "scale": False},
    "batchnorm_gamma_only": {"op": "batchnorm", "center": False},
    "batchnorm_eps": {"op": "batchnorm", "eps": 0.001, "momentum": 0.01},
    "layernorm_eps": {"op": "layernorm", "eps": 1e-6},
    "layernorm_plain": {"op": "layernorm", "affine": False},
    "layernorm_vector": ["flatten", {"op": "layernorm"}],
    "layernorm_vector_plain": ["flatten", {"op": "layernorm", "affine": False}],
    "batchnorm_plain": {"op": "batchnorm", "affine": False},
}


def layers_of(case: dict | list) -> list:
    return case if isinstance(case, list) else [case]


def main() -> None:
    from importlib.metadata import version

    versions = {"torch": torch.__version__, "fvcore": version("fvcore"),
                "ptflops": version("ptflops"), "thop": version("thop")}
    out: dict = {"generated_by": "benchmarks/convention_ops_reference.py", "batch": 1,
                 "input": INPUT, "versions": versions, "cases": {}}
    warnings.filterwarnings("ignore")
    for name, layer in CASES.items():
        spec = {"input": INPUT, "layers": layers_of(layer)}
        model = cnncost.build(spec).eval()
        x = torch.zeros(1, *INPUT)
        with torch.no_grad():
            out["cases"][name] = {
                "layer": layer,
                "torch_flop_counter": torch_counts(model, x),
                "fvcore": fvcore_counts(model, x),
                "ptflops": ptflops_counts(cnncost.build(spec).eval(), tuple(INPUT)),
                "thop": thop_counts(cnncost.build(spec).eval(), x),
            }
        print(name, {k: v for k, v in out["cases"][name].items() if k != "layer"})
    path = ROOT / "tests" / "data" / "convention_ops_reference.json"
    path.write_text(json.dumps(out, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print("wrote", path)


if __name__ == "__main__":
    main()
