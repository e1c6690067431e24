"""JSON Schema of the spec language, generated from the op registry.

Editors (VS Code with the YAML extension, JetBrains) use it for completion and
inline checks: add ``# yaml-language-server: $schema=<path>/cnncost.schema.json``
at the top of a spec. `cnncost schema` prints it; docs/cnncost.schema.json is
the committed copy, kept equal to this output by a test. The schema is a
convenience for editors: cnncost's own validation is stricter (it checks
expressions, shapes and references).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..cost.ops import OPS
from ..cost.ops import base as b
from .expr import MAX_LIST
from .spec import MERGES, SHORTCUTS, STRUCTURAL, STRUCTURAL_ALIASES, TOP_KEYS

Json = dict[str, Any]  # one JSON Schema object

EXPR = {"type": "string", "description": "an expression, e.g. 'out // 4' or 'round(64 * width)'"}
_INT = {"anyOf": [{"type": "integer"}, EXPR]}
_PAIR = {"anyOf": [{"type": "integer"}, {"type": "array", "items": _INT, "minItems": 2,
                                          "maxItems": 2}, EXPR]}


def _field_schema(field: b.Field) -> Json:
    check = field.check
    if field.choices:
        schema: Json = {"anyOf": [{"enum": list(field.choices)}, EXPR]}
    elif check is b.boolean:
        schema = {"anyOf": [{"type": "boolean"}, EXPR]}
    elif check in (b.number, b.probability, b.positive_number, b.fraction):
        schema = {"anyOf": [{"type": "number"}, EXPR]}
    elif check is b.padding:
        schema = {"anyOf": [{"enum": ["same", "valid"]}, {"type": "integer"},
                            {"type": "array", "items": _INT, "minItems": 2, "maxItems": 4}, EXPR]}
    elif getattr(check, "__name__", "") == "spatial_padding":
        schema = {"anyOf": [{"type": "integer"},
                            {"type": "array", "items": _INT, "minItems": 2, "maxItems": 4}, EXPR]}
    elif check is b.pos_pair or "pair" in getattr(check, "__name__", "") or "padding" in getattr(
            check, "__name__", ""):
        schema = dict(_PAIR)
    else:
        schema = dict(_INT)
    schema["description"] = field.doc
    return schema


COMMON = {
    "name": {"type": "string", "description": "layer name (default: op + counter, e.g. conv1)"},
    "when": {"anyOf": [{"type": "boolean"}, EXPR], "description": "keep the layer only if true"},
    "train_only": {"type": "boolean", "description": "params kept; work and activations "
                   "counted only with --set training=true (auxiliary heads)"},
    "from": {"type": "string", "description": "input: a named earlier layer (default: previous)"},
}
LAYERS_REF = {"$ref": "#/$defs/layers"}


def _primitive(name: str) -> Json:
    op = OPS[name]
    props: Json = {"op": {"enum": [name, *op.aliases]}, "name": COMMON["name"],
                   "when": COMMON["when"], "train_only": COMMON["train_only"]}
    if op.merge:
        props["inputs"] = {"type": "array", "items": {"type": "string"},
                           "description": "names of the layers to merge"}
    else:
        props["from"] = COMMON["from"]
    for fname, field in op.fields.items():
        props[fname] = _field_schema(field)
    required = ["op"] + [f for f, d in op.fields.items() if d.required]
    return {"type": "object", "description": op.doc, "properties": props, "required": required,
            "additionalProperties": False}


def _structural(layers_ref: Json = LAYERS_REF) -> list[Json]:
    fields: dict[str, Json] = {
        "layers": layers_ref,
        "post": layers_ref,
        "shortcut": {"anyOf": [{"enum": list(SHORTCUTS)}, layers_ref]},
        "branches": {"type": "object", "additionalProperties": layers_ref},
        "merge": {"enum": list(MERGES)},
        "block": {"type": "string", "description": "the block each stage step instantiates"},
        "repeat": _INT,
        "stride": _PAIR,
        "with": {"type": "object", "description": "parameters passed to every block"},
        "fn": {"type": "string", "description": "activation name"},
        "each": {"type": "string", "description": "the loop variable's name"},
        "in": {"anyOf": [{"type": "array"}, EXPR], "description": "the values to loop over: "
               "a list, or an expression giving one (\"range(depth)\", \"widths\")"},
    }
    out = []
    for name, keys in STRUCTURAL.items():
        props = {"op": {"const": name}, **COMMON}
        for key in keys:
            props[key] = fields.get(key) or (_field_schema(OPS["conv"].fields[key])
                                             if key in OPS["conv"].fields else
                                             _field_schema(OPS["depthwise"].fields[key]))
        out.append({"type": "object", "properties": props, "required": ["op"],
                    "additionalProperties": False})
    return out


def json_schema(builtin_blocks: Sequence[str] | None = None) -> dict[str, Any]:
    """The whole schema as a dict. `builtin_blocks`: the names of the built-in blocks
    (default: read from cnncost's blocks.yaml); a spec without `blocks:` or `imports:`
    can call only those, so there an unknown op is an error for the editor too."""
    if builtin_blocks is None:
        from pathlib import Path

        from ..errors import ErrorSink
        from .spec import load_blocks

        builtin_blocks = sorted(load_blocks(Path(__file__).with_name("blocks.yaml"),
                                            ErrorSink()))
    reserved = sorted({*OPS, *STRUCTURAL, *(a for op in OPS.values() for a in op.aliases)})
    words = sorted({*reserved, *STRUCTURAL_ALIASES, *builtin_blocks})

    def layer_def(known_only: bool) -> Json:
        ref = {"$ref": "#/$defs/known_layers"} if known_only else LAYERS_REF
        block_op: Json = ({"enum": sorted(builtin_blocks)} if known_only
                          else {"type": "string", "not": {"enum": reserved}})
        return {"anyOf": [
            *(_primitive(n) for n in sorted(OPS)), *_structural(ref),
            {"type": "object", "description": "a block (built-in, or from `blocks:` or "
             "`imports:`)", "properties": {"op": block_op, **COMMON}, "required": ["op"]},
            ({"enum": words, "description": "shorthand for {op: NAME}"} if known_only
             else {"type": "string", "description": "shorthand for {op: NAME}"})]}
    scalar = {"type": ["number", "string", "boolean"]}
    props = {
        "name": {"type": "string"},
        "description": {"type": "string", "description": "one line, shown by `cnncost specs`"},
        "source": {"type": "string", "description": "paper or code the spec follows"},
        "imports": {"type": "array", "items": {"type": "string"},
                    "description": "YAML files of blocks (only `blocks:`), relative to this "
                    "file"},
        "input": {"anyOf": [{"type": "array", "items": _INT, "minItems": 1, "maxItems": 3},
                            {"type": "string", "pattern": r"^\d+(x\d+)*$"}],
                  "description": "[channels, height, width] or [features]"},
        "vars": {"type": "object", "additionalProperties": {"anyOf": [
            scalar, {"type": "array", "items": scalar, "maxItems": MAX_LIST},
            {"type": "object", "required": ["default"], "additionalProperties": False,
             "properties": {
                 "default": {"anyOf": [scalar, {"type": "array", "items": scalar}]},
                 "choices": {"type": "array", "items": scalar, "minItems": 1},
                 "min": {"type": "number"}, "max": {"type": "number"},
                 "doc": {"type": "string"}}}]},
                 "description": "variables with defaults, overridable with --set: a value, a "
                 "list, an expression of earlier variables, or {default, choices, min, max, "
                 "doc}"},
        "defaults": {"type": "object", "description": "field defaults: plain (every op with "
                     "that field) or per op ({linear: {bias: true}})"},
        "blocks": {"type": "object", "additionalProperties": {
            "type": "object", "properties": {
                "description": {"type": "string"},
                "checks": {"type": "array", "items": {
                    "type": "object", "required": ["that", "message"],
                    "additionalProperties": False,
                    "properties": {"that": {"type": "string"}, "message": {"type": "string"}}}},
                "params": {"type": "object", "additionalProperties": {
                    "type": ["number", "string", "boolean", "null"]}},
                "layers": LAYERS_REF, "post": LAYERS_REF,
                "shortcut": {"anyOf": [{"enum": list(SHORTCUTS)}, LAYERS_REF]}},
            "required": ["layers"], "additionalProperties": False}},
        "layers": LAYERS_REF,
        "variants": {"type": "object", "additionalProperties": {
            "type": "object", "additionalProperties": {"anyOf": [
                scalar, {"type": "array", "items": scalar, "maxItems": MAX_LIST}]}}},
    }
    assert set(props) == set(TOP_KEYS)  # noqa: S101 - a programming invariant
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://cnncost.dev/cnncost.schema.json",
        "title": "cnncost architecture spec",
        "type": "object",
        "properties": props,
        "required": ["input", "layers"],
        "additionalProperties": False,
        # without blocks of its own, a spec's layers may name only known ops and blocks
        "if": {"anyOf": [{"required": ["blocks"]}, {"required": ["imports"]}]},
        "then": {},
        "else": {"properties": {"layers": {"$ref": "#/$defs/known_layers"}}},
        "$defs": {
            "layer": layer_def(False),
            "layers": {"anyOf": [{"type": "array", "items": {"$ref": "#/$defs/layer"}},
                                 {"$ref": "#/$defs/layer"}]},
            "known_layer": layer_def(True),
            "known_layers": {"anyOf": [{"type": "array",
                                        "items": {"$ref": "#/$defs/known_layer"}},
                                       {"$ref": "#/$defs/known_layer"}]},
        },
    }


def render_schema() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=False) + "\n"
