"""`imports:` reads blocks from other YAML files (block libraries): relative paths, nested
imports, and located errors for missing files, URLs, cycles and names defined twice."""

from __future__ import annotations

import pytest

import cnncost
from cnncost import SpecError

LIB = """
description: shared blocks
blocks:
  dsconv:
    params: {out: null, stride: 1}
    layers:
      - {op: depthwise, kernel: 3, stride: stride, padding: 1, norm: batchnorm, act: relu}
      - {op: pointwise, out: out, norm: batchnorm, act: relu}
"""


def write(folder, name: str, text: str):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.lstrip(), encoding="utf-8")
    return path


def problems(path) -> str:
    with pytest.raises(SpecError) as info:
        cnncost.analyze(str(path))
    return "\n".join(str(p) for p in info.value.problems)


def test_imported_blocks_are_called_like_the_specs_own(tmp_path):
    write(tmp_path, "libs/mobile.yaml", LIB)
    spec = write(tmp_path, "net.yaml", """
name: net
imports: [libs/mobile.yaml]
input: [3, 32, 32]
layers:
  - {op: conv, out: 16, kernel: 3, padding: 1}
  - {op: dsconv, out: 32, stride: 2}
  - {op: stage, block: dsconv, repeat: 2, with: {out: 64}}
""")
    result = cnncost.analyze(str(spec))
    assert result.output_shape == (64, 16, 16)
    assert sum(r.params for r in result.rows if r.name.startswith("dsconv1.")) == (
        (16 * 9 + 16) + 2 * 16 + (16 * 32 + 32) + 2 * 32)  # depthwise, BN, pointwise, BN


def test_nested_imports_resolve_from_the_importing_file(tmp_path):
    write(tmp_path, "libs/base.yaml", LIB)
    write(tmp_path, "libs/more.yaml", """
imports: [base.yaml]
blocks:
  two: {params: {out: null}, layers: [{op: dsconv, out: out}, {op: dsconv, out: out}]}
""")
    spec = write(tmp_path, "net.yaml", """
imports: [libs/more.yaml]
input: [8, 8, 8]
layers: [{op: two, out: 8}]
""")
    assert cnncost.analyze(str(spec)).output_shape == (8, 8, 8)


def test_import_errors_are_located(tmp_path):
    write(tmp_path, "lib.yaml", LIB)
    write(tmp_path, "a.yaml", "imports: [b.yaml]\nblocks: {}\n")
    write(tmp_path, "b.yaml", "imports: [a.yaml]\nblocks: {}\n")
    write(tmp_path, "notlib.yaml", "input: [3, 8, 8]\nlayers: [relu]\n")
    spec = write(tmp_path, "net.yaml", """
imports: [lib.yaml, nope.yaml, "https://example.com/x.yaml", a.yaml, notlib.yaml]
input: [3, 8, 8]
blocks:
  dsconv: {params: {}, layers: [relu]}
layers: [relu]
""")
    text = problems(spec)
    assert f"{spec}:1: imports[1]: no such block file 'nope.yaml'" in text
    assert f"{spec}:1: imports[2]: imports are local files, received the URL" in text
    assert f"{tmp_path / 'b.yaml'}:1: imports[0]: 'a.yaml' closes an import cycle" in text
    assert "notlib.yaml:1: input: a block file holds only blocks, description, imports" in text
    assert f"{spec}:4: blocks.dsconv: block 'dsconv' is also imported from " \
           f"{tmp_path / 'lib.yaml'}:" in text


def test_errors_inside_an_imported_block_name_the_library(tmp_path):
    write(tmp_path, "lib.yaml", LIB)
    spec = write(tmp_path, "net.yaml", "imports: [lib.yaml]\ninput: [3, 8, 8]\n"
                                        "layers: [{op: dsconv, out: 8, stride: 0}]\n")
    text = problems(spec)
    assert f"{spec}:3:" in text and "imported block 'dsconv'" in text and "lib.yaml:6" in text
