"""Readable imports: runs of identical numbered submodules (a stage's repeated blocks,
`layer1.1`, `layer1.2`, ...) written as one block used in a `stage` with `repeat`.

Works on the flat entries the importer emits, with the module paths each entry runs in.
An instance qualifies when its entries are contiguous, read nothing but the instance's
input, and nothing outside reads its inner layers; two or more consecutive instances with
the same computation become one stage. The importer keeps the result only when it
analyzes to the flat spec's numbers, layer by layer. Pure data; no torch.
"""

from __future__ import annotations

from typing import Any

from ..importing import identifier as _identifier


def _refs(entry: dict) -> list[str]:
    return list(entry.get("inputs", [])) + ([entry["from"]] if "from" in entry else [])


def instances(scopes: list[tuple[str, ...]]) -> dict[str, list[tuple[str, int, int]]]:
    """parent module path (with the children's name stem) -> its numbered children
    (`layer1.0`, `layer1.1`, ...; `block1-0`, `block1-1`, ...) that own a contiguous run of
    entries: (child path, first entry, last entry)."""
    spans: dict[str, list[int]] = {}
    for i, scope in enumerate(scopes):
        for path in scope:
            spans.setdefault(path, []).append(i)
    out: dict[str, list[tuple[str, int, int]]] = {}
    for path, where in spans.items():
        parent, _, last = path.rpartition(".")
        stem = last.rstrip("0123456789")  # `0`, `1`, ... or `block1-0`, `block1-1`, ...
        if stem == last or where != list(range(where[0], where[-1] + 1)):
            continue
        out.setdefault(f"{parent}.{stem}" if stem else parent, []).append(
            (path, where[0], where[-1]))
    return out


def signature(entries: list[dict], first: int, last: int) -> tuple | None:
    """What an instance computes, with its references made local; None when it reads
    anything but its input, or something outside reads one of its inner layers."""
    entering = entries[first - 1]["name"] if first else "input"
    names = {entries[k]["name"]: k - first for k in range(first, last + 1)}
    body = []
    for k in range(first, last + 1):
        refs: list[tuple] = []
        for ref in _refs(entries[k]):
            if ref in names:
                refs.append(("local", names[ref]))
            elif ref == entering:
                refs.append(("input",))
            else:
                return None
        fields = tuple(sorted((key, str(value)) for key, value in entries[k].items()
                              if key not in ("name", "from", "inputs")))
        body.append((fields, tuple(refs), "inputs" in entries[k]))
    inner = set(names) - {entries[last]["name"]}
    for k, entry in enumerate(entries):
        if not first <= k <= last and set(_refs(entry)) & inner:
            return None
    return tuple(body)


def block_body(entries: list[dict], first: int, last: int, prefix: str) -> list[dict]:
    """The instance's entries as a block's layers: local names, `input` for its input."""
    entering = entries[first - 1]["name"] if first else "input"
    local: dict[str, str] = {}
    body: list[dict] = []
    for k in range(first, last + 1):
        entry = dict(entries[k])
        short = entry["name"][len(prefix):] if entry["name"].startswith(prefix) else ""
        if not short or not (short[0].isalpha() or short[0] == "_"):
            short = entry["op"]
        while short in local.values() or short == "input":
            short += "_"
        local[entry["name"]] = short

        def rename(ref: str) -> str:
            return "input" if ref == entering else local[ref]

        entry["name"] = short
        if "inputs" in entry:
            entry["inputs"] = [rename(r) for r in entry["inputs"]]
        if "from" in entry:
            entry["from"] = rename(entry["from"])
            previous = body[-1]["name"] if body else "input"
            if entry["from"] == previous:
                del entry["from"]
        body.append(entry)
    return body


def blockify(entries: list[dict], scopes: list[tuple[str, ...]]) -> tuple[dict, list[dict]]:
    """(blocks, layers): the runs of two or more identical consecutive instances as stages
    of one block each; every other entry as it was (copies: `entries` is not changed)."""
    entries = [dict(entry) for entry in entries]
    runs: list[tuple[int, int, str, list[tuple[str, int, int]]]] = []
    for parent, children in instances(scopes).items():
        children.sort(key=lambda c: c[1])
        signatures = [signature(entries, a, b) for _, a, b in children]
        i = 0
        while i < len(children):
            j = i
            while (j + 1 < len(children) and signatures[i] is not None
                   and signatures[j + 1] == signatures[i]
                   and children[j + 1][1] == children[j][2] + 1):
                j += 1
            if j > i:
                runs.append((children[i][1], children[j][2], parent, children[i:j + 1]))
            i = j + 1
    chosen: list[tuple[int, int, str, list]] = []
    for run in sorted(runs, key=lambda r: (r[0], -r[1])):  # the outermost where they overlap
        if all(run[1] < c[0] or run[0] > c[1] for c in chosen):
            chosen.append(run)
    if not chosen:
        return {}, entries
    blocks: dict[str, dict] = {}
    bodies: dict[str, str] = {}
    renamed: dict[str, str] = {}
    result: list[dict] = []
    position = 0
    for start, end, _parent, children in sorted(chosen):
        result.extend(entries[position:start])
        path, first, last = children[0]
        body = block_body(entries, first, last, _identifier(path) + "_")
        key = repr(body)
        owner = path.rpartition(".")[0]  # the module holding the repeated children
        if key not in bodies:
            block = f"{_identifier(owner)}_block" if owner else "block"
            while block in blocks:
                block += "_"
            bodies[key] = block
            blocks[block] = {"layers": body}
        stage = _identifier(path)
        entry: dict[str, Any] = {"op": "stage", "name": stage, "block": bodies[key],
                                 "repeat": len(children)}
        entering = entries[start - 1]["name"] if start else "input"
        entering = renamed.get(entering, entering)
        previous = result[-1]["name"] if result else "input"
        if entering != previous:
            entry["from"] = entering
        renamed[entries[end]["name"]] = stage
        result.append(entry)
        position = end + 1
    result.extend(entries[position:])
    for entry in result:  # a reference to a run's output now names its stage
        if "inputs" in entry:
            entry["inputs"] = [renamed.get(r, r) for r in entry["inputs"]]
        if "from" in entry and entry["op"] != "stage":
            entry["from"] = renamed.get(entry["from"], entry["from"])
    return blocks, result


def _is_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def merge_alike(blocks: dict[str, dict], layers: list[dict]) -> tuple[dict, list[dict]]:
    """Blocks that differ only in integer fields (a ResNet's stages: the same bottleneck
    at 64, 128, 256 and 512 channels) as one block with a parameter for each integer
    that differs, named after its first layer and field (`conv1_out`); each stage passes
    its values with `with:`. Integers that differ alike share a parameter. Blocks alike
    in nothing else are left as they are (copies: the arguments are not changed)."""
    def shape(body: list[dict]) -> str:
        return repr([{k: (None if _is_number(v) else v) for k, v in entry.items()}
                     for entry in body])

    groups: dict[str, list[str]] = {}
    for name, block in blocks.items():
        if "params" not in block:
            groups.setdefault(shape(block["layers"]), []).append(name)
    merged: dict[str, dict] = {}
    given: dict[str, tuple[str, dict]] = {}  # old block -> (new block, its parameters)
    for names in groups.values():
        if len(names) < 2:
            continue
        bodies = [blocks[name]["layers"] for name in names]
        params: dict[tuple, str] = {}  # the values across the blocks -> parameter name
        where: dict[tuple[int, str], str] = {}  # (layer, field) -> parameter name
        for k, entry in enumerate(bodies[0]):
            for field, value in entry.items():
                if not _is_number(value):
                    continue
                values = tuple(body[k][field] for body in bodies)
                if len(set(values)) == 1:
                    continue
                if values not in params:
                    label = f"{entry['name']}_{field}"
                    while label in params.values():
                        label += "_"
                    params[values] = label
                where[(k, field)] = params[values]
        body = [{field: where.get((k, field), value) for field, value in entry.items()}
                for k, entry in enumerate(bodies[0])]
        new = _common_name(names, set(blocks) | set(merged))
        merged[new] = {"params": {label: None for label in params.values()}, "layers": body}
        for i, name in enumerate(names):
            given[name] = (new, {label: values[i] for values, label in params.items()})
    if not merged:
        return blocks, layers
    out_blocks = {name: block for name, block in blocks.items() if name not in given}
    out_blocks.update(merged)
    out_layers = []
    for entry in layers:
        if entry.get("op") == "stage" and entry.get("block") in given:
            new, passed = given[entry["block"]]
            entry = {**entry, "block": new, "with": passed}
        out_layers.append(entry)
    return out_blocks, out_layers


def _common_name(names: list[str], taken: set[str]) -> str:
    """`layer1_block`, `layer2_block` -> `layer_block`; `block` when they share no stem."""
    import os.path

    stem = os.path.commonprefix(names).rstrip("0123456789_")
    name = f"{stem}_block" if stem and not stem.endswith("block") else (stem or "block")
    while name in taken - set(names):
        name += "_"
    return name
