"""Import every torchvision classification CNN with `cnncost import`'s converter and
record, per model, whether the spec reproduces torch's counts exactly, how many lines the
spec has, and the unsupported operations if any.

Run in the environment of benchmarks/zoo_reference.py (torchvision 0.28.0 on the CPU
build of torch 2.13.0):

    PYTHONPATH=. /tmp/refvenv/bin/python benchmarks/import_torchvision.py [NAME ...]

writes tests/data/import_torchvision.json (docs/import.md shows it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
OUT = ROOT / "tests" / "data" / "import_torchvision.json"
# weights=None builds these with auxiliary classifiers that eval mode never runs (the
# importer refuses them, naming them); torchvision's published models have none
BUILD = {"googlenet": {"aux_logits": False}, "inception_v3": {"aux_logits": False}}


def main(names: list[str]) -> None:
    import zoo_reference

    import torch

    from cnncost.errors import SpecError
    from cnncost.importing import to_yaml
    from cnncost.pytorch.importer import check, to_spec

    torchvision = zoo_reference.import_torchvision()
    models = torchvision.models
    reference = json.loads(zoo_reference.REFERENCE.read_text(encoding="utf-8"))["models"]
    results = json.loads(OUT.read_text(encoding="utf-8"))["models"] if OUT.exists() and names \
        else {}
    for name in names or list(reference):
        size = reference[name]["resolution"]
        model = models.get_model(name, weights=None, **BUILD.get(name, {})).eval()
        shape = (3, size, size)
        try:
            spec = to_spec(model, shape, name)
            counts = check(spec, model, shape)
            entry = {"exact": True, "lines": len(to_yaml(spec).splitlines()),
                     "params": counts.params, "macs": counts.macs}
            if name in BUILD:
                entry["built_with"] = BUILD[name]
        except SpecError as exc:
            entry = {"exact": False, "error": str(exc.problems[0].message)[:600]}
        results[name] = entry
        print(f"{name:24} {'exact' if entry['exact'] else 'NOT: ' + entry['error'][:150]}",
              flush=True)
    OUT.write_text(json.dumps({"torch": torch.__version__, "torchvision": torchvision.__version__,
                               "models": dict(sorted(results.items()))}, indent=1) + "\n",
                   encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
