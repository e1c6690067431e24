"""The JSON document `cnncost bench --format json` writes, as a JSON Schema (draft 2020-12).

No torch here: `compare` and `gate` read bench results (`--measurements FILE`) on the
analytic path. `tests/test_bench.py` validates real `cnncost bench` output against
:data:`SCHEMA`; docs/bench.md describes the fields in prose. Bump
:data:`SCHEMA_VERSION` on any change a reader would notice.
"""

from __future__ import annotations

from .choices import DTYPES

KIND = "cnncost.bench"
SCHEMA_VERSION = 1

_NUMBER_OR_NULL = {"type": ["number", "null"]}

LATENCY = {
    "type": "object",
    "description": "Statistics over the timed forward passes of one batch, milliseconds.",
    "required": ["median_ms", "p10_ms", "p90_ms", "iqr_ms", "samples", "first_ms", "spread"],
    "additionalProperties": False,
    "properties": {
        "median_ms": {"type": "number", "exclusiveMinimum": 0},
        "p10_ms": {"type": "number", "exclusiveMinimum": 0},
        "p90_ms": {"type": "number", "exclusiveMinimum": 0},
        "iqr_ms": {"type": "number", "minimum": 0},
        "samples": {"type": "integer", "minimum": 1},
        "first_ms": {"type": "number", "minimum": 0,
                     "description": "the first call, timed on its own (allocation, autotuning, "
                                    "compilation)"},
        "spread": {"type": "number", "minimum": 0, "description": "iqr_ms / median_ms"},
    },
}

CROSS_CHECK = {
    "type": "object",
    "description": "An independent measurement of the same model in the same run.",
    "required": ["method", "median_ms", "difference", "tolerance", "agrees"],
    "additionalProperties": False,
    "properties": {
        "method": {"type": "string"},
        "median_ms": {"type": "number", "minimum": 0},
        "difference": {"type": "number",
                       "description": "(bench median - independent median) / independent median"},
        "tolerance": {"type": "number", "minimum": 0},
        "agrees": {"type": "boolean"},
    },
}

LAYER = {
    "type": "object",
    "required": ["name", "op", "shape", "macs", "flops", "other_ops", "bytes", "intensity",
                 "time_ms", "share", "bound_ms", "bound", "efficiency"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "op": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}},
        "macs": {"type": "integer", "minimum": 0},
        "flops": {"type": "integer", "minimum": 0},
        "other_ops": {"type": "integer", "minimum": 0},
        "bytes": {"type": "integer", "minimum": 0,
                  "description": "compulsory traffic: inputs read, output written, parameters "
                                 "and buffers read, once each"},
        "intensity": {**_NUMBER_OR_NULL, "description": "(flops + other_ops) / bytes; null "
                                                         "when nothing is moved"},
        "time_ms": {"type": "number", "minimum": 0, "description": "median over the runs"},
        "share": {"type": "number", "minimum": 0, "description": "time_ms / sum of time_ms"},
        "bound_ms": {**_NUMBER_OR_NULL, "description": "roofline time: max(ops / peak "
                                                        "FLOP/s, bytes / bandwidth)"},
        "bound": {"enum": ["compute", "memory", "overhead", None]},
        "efficiency": {**_NUMBER_OR_NULL, "description": "bound_ms / time_ms"},
    },
}

PER_LAYER = {
    "type": "object",
    "required": ["mode", "runs", "total_ms", "end_to_end_ms", "overhead_ms", "layers"],
    "additionalProperties": False,
    "properties": {
        "mode": {"enum": ["eager"], "description": "per-layer times come from the eager model "
                                                   "(hooks cannot see inside a compiled one)"},
        "runs": {"type": "integer", "minimum": 1},
        "total_ms": {"type": "number", "minimum": 0, "description": "sum of the layers' times"},
        "end_to_end_ms": {"type": "number", "minimum": 0,
                          "description": "median of the hooked forward passes, end to end"},
        "overhead_ms": {"type": "number", "minimum": 0,
                        "description": "measured time of one trivial layer: the fixed cost "
                                       "below which a layer is overhead-bound"},
        "layers": {"type": "array", "items": LAYER},
    },
}

RESULT = {
    "type": "object",
    "required": ["batch", "env", "macs", "flops", "latency", "images_per_s", "tflops",
                 "peak_share", "quality", "cross_check", "per_layer"],
    "additionalProperties": False,
    "properties": {
        "batch": {"type": "integer", "minimum": 1},
        "env": {"type": "object", "description": "the environment fingerprint (as in "
                                                 "baselines), batch included"},
        "macs": {"type": "integer", "minimum": 0},
        "flops": {"type": "integer", "minimum": 0, "description": "2 x MACs, for the batch"},
        "latency": LATENCY,
        "images_per_s": {"type": "number", "exclusiveMinimum": 0},
        "tflops": {"type": "number", "minimum": 0,
                   "description": "analytic FLOPs / median latency, in 10^12 FLOP/s"},
        "peak_share": {**_NUMBER_OR_NULL, "description": "tflops / the device's peak"},
        "quality": {"enum": ["ok", "warn", "unreliable"],
                    "description": "spread above 0.10 warns, above 0.25 is unreliable"},
        "cross_check": {"oneOf": [CROSS_CHECK, {"type": "null"}]},
        "per_layer": {"oneOf": [PER_LAYER, {"type": "null"}]},
    },
}

PEAKS = {
    "type": "object",
    "required": ["device_name", "dtype", "flops_per_s", "bandwidth_bytes_per_s", "source",
                 "reference"],
    "additionalProperties": False,
    "properties": {
        "device_name": {"type": "string"},
        "dtype": {"type": "string"},
        "flops_per_s": {"type": "number", "exclusiveMinimum": 0},
        "bandwidth_bytes_per_s": {"type": "number", "exclusiveMinimum": 0},
        "source": {"enum": ["table", "measured"]},
        "reference": {"type": "string", "description": "datasheet, or how it was measured"},
    },
}

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "cnncost bench result",
    "type": "object",
    "required": ["kind", "schema_version", "tool_version", "spec", "settings", "env", "peaks",
                 "notes", "results"],
    "additionalProperties": False,
    "properties": {
        "kind": {"const": KIND},
        "schema_version": {"const": SCHEMA_VERSION},
        "tool_version": {"type": "string"},
        "spec": {
            "type": "object",
            "required": ["name", "file", "sha256", "input_shape", "output_shape", "vars",
                         "variant"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string"},
                "file": {"type": "string"},
                "sha256": {"type": ["string", "null"]},
                "input_shape": {"type": "array", "items": {"type": "integer"}},
                "output_shape": {"type": "array", "items": {"type": "integer"}},
                "vars": {"type": "object"},
                "variant": {"type": ["string", "null"]},
            },
        },
        "settings": {
            "type": "object",
            "required": ["device", "dtype", "channels_last", "compile", "threads", "runs",
                         "warmup", "warmup_s", "budget_s", "per_layer", "cross_check"],
            "additionalProperties": False,
            "properties": {
                "device": {"type": "string"},
                "dtype": {"enum": list(DTYPES)},
                "channels_last": {"type": "boolean"},
                "compile": {"type": "boolean"},
                "threads": {"type": ["integer", "null"]},
                "runs": {"type": "integer", "minimum": 1},
                "warmup": {"type": "integer", "minimum": 0},
                "warmup_s": {"type": "number", "minimum": 0},
                "budget_s": {"type": "number", "exclusiveMinimum": 0},
                "per_layer": {"type": "boolean"},
                "cross_check": {"type": "boolean"},
            },
        },
        "env": {"type": "object", "description": "environment without the batch"},
        "peaks": {"oneOf": [PEAKS, {"type": "null"}]},
        "notes": {"type": "array", "items": {"type": "string"},
                  "description": "warnings about the measurement (e.g. a busy CPU)"},
        "results": {"type": "array", "minItems": 1, "items": RESULT},
    },
}
