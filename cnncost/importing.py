"""What the two importers (`cnncost.pytorch.importer` for PyTorch models,
`cnncost.onnxfile` for ONNX files) share: layer names from module paths or node names,
the batch-norm settings that go to `defaults`, the message that lists unsupported
operations, and the spec written as YAML. Pure Python; no torch, no onnx.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

# PyTorch's batch-norm defaults: settings equal to these need not be written
BATCHNORM_DEFAULTS = (("eps", 1e-5), ("momentum", 0.1), ("affine", True))


def identifier(text: str) -> str:
    """A layer name from a module path or a node name: `layer1.0.conv1` -> `layer1_0_conv1`;
    a name starting with a digit gets `l_` in front."""
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in text.replace(".", "_"))
    return name if name and not name[0].isdigit() else f"l_{name}"


def unique(name: str, taken: set[str]) -> str:
    """`name`, with `_` appended until no earlier layer has it; recorded in `taken`."""
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def shared_batchnorm(settings: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The settings most fused batch norms share (they go to `defaults`); {} for none."""
    counts = Counter(tuple(sorted(s.items())) for s in settings)
    return dict(counts.most_common(1)[0][0]) if counts else {}


def batchnorm_defaults(common: Mapping[str, Any]) -> dict[str, Any]:
    """The spec's `defaults:` for the shared settings: those that differ from PyTorch's."""
    extra = {k: v for k, v in common.items() if (k, v) not in BATCHNORM_DEFAULTS}
    return {"batchnorm": extra} if extra else {}


def unsupported_list(kinds: Mapping[str, list[str]]) -> str:
    """'what xN (first: where); ...' for every kind of unsupported operation, each with how
    often it occurs and where it first does."""
    return "; ".join(f"{what}" + (f" x{len(places)}" if len(places) > 1 else "")
                     + f" (first: {places[0]})" for what, places in kinds.items())


def to_yaml(spec: dict) -> str:
    """The spec as YAML, one layer a line (flow style), as specs are written by hand."""
    import yaml

    class Flow(dict):
        pass

    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(Flow, lambda dumper, data: dumper.represent_mapping(
        "tag:yaml.org,2002:map", data.items(), flow_style=True))
    doc = {**spec, "layers": [Flow(layer) for layer in spec["layers"]]}
    if "blocks" in spec:
        doc = {**doc, "blocks": {
            name: {**({"params": Flow(block["params"])} if block.get("params") else {}),
                   "layers": [Flow(x) for x in block["layers"]]}
            for name, block in spec["blocks"].items()}}
        doc = {k: doc[k] for k in ("name", "input", "defaults", "blocks", "layers") if k in doc}
    return yaml.dump(doc, Dumper=Dumper, sort_keys=False, default_flow_style=None, width=200)


def written(spec: dict) -> str:
    """`to_yaml(spec)`, checked: the text read back analyzes to the spec's numbers, layer
    by layer (what is written is what was checked); SpecError otherwise (a bug)."""
    from .api import analyze
    from .errors import ErrorSink, Loc, Problem, SpecError
    from .lang.yamlio import parse_yaml

    text = to_yaml(spec)
    errors = ErrorSink()
    back = parse_yaml(text, "<imported>", errors)
    try:
        ours, theirs = analyze(spec), analyze(back)
        same = ours.totals == theirs.totals and ours.rows == theirs.rows
    except SpecError:
        same = False
    if errors or not same:
        raise SpecError([Problem(Loc(""), "", "the YAML written for the imported spec does "
                                 "not read back as the spec that was checked; this is a bug "
                                 "in cnncost's importer, please report it")])
    return text
