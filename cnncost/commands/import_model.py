"""`cnncost import MODEL --input CxHxW -o model.yaml`: a PyTorch model as a spec.

Thin: loads the model (FILE.py:CALLABLE or package.module:CALLABLE), converts it with
:mod:`cnncost.pytorch.importer`, checks that the spec counts exactly what torch counts,
and writes the YAML. Exit 2 on bad input, an operation without a spec equivalent, or a
count that differs (nothing is written then).
"""

from __future__ import annotations

import click

from ..cli import emit, guarded


@click.command(name="import")
@click.argument("model")
@click.option("--input", "input_", metavar="CxHxW",
              help="The shape of one input sample, e.g. 3x224x224 (a PyTorch model; an "
                   "ONNX file has its own).")
@click.option("--name", help="The spec's name (default: the callable's name).")
@click.option("-o", "--output", metavar="FILE", help="Write the spec to FILE instead of stdout.")
@guarded
def import_model(model: str, input_: str, name: str | None, output: str | None) -> None:
    """Write a spec of a PyTorch MODEL (FILE.py:CALLABLE or package.module:CALLABLE: a
    function returning an nn.Module, or a module class taking no arguments), traced with
    torch.fx; the spec analyzes to exactly what torch counts (checked before writing).
    MODEL may also be an ONNX file (model.onnx; needs the onnx package)."""
    from ..errors import Loc, Problem, SpecError
    from ..importing import to_yaml

    if model.lower().endswith(".onnx"):
        from pathlib import Path

        from .. import onnxfile

        spec, params = onnxfile.to_spec(model, name or Path(model).stem)
        onnxfile.check(spec, model, params)
        emit(f"# Imported by `cnncost import {model}` (onnx).\n# The file holds {params:,} "
             "parameters; this spec analyzes to the same.\n" + to_yaml(spec), output)
        return
    if input_ is None:
        raise SpecError([Problem(Loc(""), "--input", "a PyTorch model is imported for one "
                                                     "input shape: give --input CxHxW")])
    from .verify import import_torch_or_exit

    import_torch_or_exit("import")
    from ..pytorch.importer import check, load_model, to_spec

    try:
        shape = tuple(int(d) for d in input_.lower().split("x"))
    except ValueError:
        raise SpecError([Problem(Loc(""), "--input", f"a shape such as 3x224x224, received "
                                                     f"{input_!r}")]) from None
    module = load_model(model)
    spec = to_spec(module, shape, name or model.rpartition(":")[2])
    counts = check(spec, module, shape)
    header = (f"# Imported by `cnncost import {model} --input {input_}` (torch.fx).\n"
              f"# torch counts {counts.params:,} params, {counts.buffers:,} buffers, "
              f"{counts.macs:,} MACs; this spec analyzes to the same.\n")
    emit(header + to_yaml(spec), output)

