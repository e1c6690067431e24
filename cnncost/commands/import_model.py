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
@click.option("--allow-opaque", is_flag=True,
              help="Write each operation without a spec equivalent as an `opaque` layer (its "
                   "module's params, buffers and output shape; its work not counted, and "
                   "flagged in every output) instead of stopping.")
@guarded
def import_model(model: str, input_: str, name: str | None, output: str | None,
                 allow_opaque: bool) -> None:
    """Write a spec of a PyTorch MODEL (FILE.py:CALLABLE or package.module:CALLABLE: a
    function returning an nn.Module, or a module class taking no arguments), traced with
    torch.fx; the spec analyzes to exactly what torch counts (checked before writing).
    MODEL may also be an ONNX file (model.onnx; needs the onnx package)."""
    from ..errors import Loc, Problem, SpecError
    from ..importing import written

    if model.lower().endswith(".onnx"):
        from pathlib import Path

        from .. import onnxfile

        held: list[tuple[str, str, int]] = []
        spec, params = onnxfile.to_spec(model, name or Path(model).stem,
                                        allow_opaque=allow_opaque, opaque=held)
        onnxfile.check(spec, model, params)
        flag = " --allow-opaque" if allow_opaque else ""
        emit(f"# Imported by `cnncost import {model}{flag}` (onnx).\n# The file holds "
             f"{params:,} parameters; this spec analyzes to the same.\n"
             + ("# Opaque (no spec equivalent; initializers and output shape only, work "
                "not counted):\n" + "".join(f"#   {layer}: {op}, {n:,} params\n"
                                             for layer, op, n in held) if held else "")
             + written(spec), output)
        return
    if input_ is None:
        raise SpecError([Problem(Loc(""), "--input", "a PyTorch model is imported for one "
                                                     "input shape: give --input CxHxW")])
    from .verify import import_torch_or_exit

    import_torch_or_exit("import")
    from ..pytorch.importer import Opaque, check, load_model, to_spec

    try:
        shape = tuple(int(d) for d in input_.lower().split("x"))
    except ValueError:
        raise SpecError([Problem(Loc(""), "--input", f"a shape such as 3x224x224, received "
                                                     f"{input_!r}")]) from None
    module = load_model(model)
    opaque: list[Opaque] = []
    spec = to_spec(module, shape, name or model.rpartition(":")[2],
                   allow_opaque=allow_opaque, opaque=opaque)
    counts = check(spec, module, shape, opaque)
    flag = " --allow-opaque" if allow_opaque else ""
    header = (f"# Imported by `cnncost import {model} --input {input_}{flag}` (torch.fx).\n"
              f"# torch counts {counts.params:,} params, {counts.buffers:,} buffers, "
              f"{counts.macs:,} MACs; this spec analyzes to the same")
    if opaque:
        header += (f", except the {counts.opaque_macs:,} MACs torch counts inside its "
                   f"{len(opaque)} opaque layer{'s' if len(opaque) != 1 else ''}, which "
                   "it does not count.\n# Opaque (no spec equivalent; params, buffers and "
                   "output shape only):\n" + "".join(
                       f"#   {o.layer}: {o.what}"
                       + (f" at {o.path}" if o.path else " in the model's forward")
                       + f", {o.params:,} params, {o.buffers:,} buffers\n" for o in opaque))
    else:
        header += ".\n"
    emit(header + written(spec), output)

