"""Name scopes and the block memo of one expansion.

A :class:`Scope` holds the names visible in one layer list: its local layers, the
scopes of its named groups, its parent. The :class:`BlockMemo` makes repeated blocks
cheap: a block called again with the same parameters on the same input shape expands
to the same layers, so the first expansion is recorded (names relative to the call,
node references relative to the block input) and replayed for the next calls. A
replayed block's scope is lazy: it keeps the recorded code and decodes its names only
when a dotted reference looks inside it. The memo lives for one expansion only.

Recorded node references: -1 is the block input, n >= 0 the block's n-th node.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, NamedTuple

from ..errors import Loc
from .graph import Node, Shape

# A recorded scope: (input, {name: ref}, {name: child code}), or, for a scope that was
# itself replayed inside the recorded block, ("shift", its code, node offset, input).
ScopeCode = tuple[Any, ...]


class Scope:
    """Names visible in one layer list: local layers, child scopes, the parent."""

    __slots__ = ("input", "parent", "_names", "_children", "_lazy")

    def __init__(self, input: int | None, parent: Scope | None = None) -> None:
        self.input = input  # the list's input ("input" in references)
        self.parent = parent
        self._names: dict[str, int | None] | None = {}  # local name -> node index
        self._children: dict[str, Scope] | None = {}  # local name -> Scope of a named group
        self._lazy: tuple[ScopeCode, int | None, int] | None = None  # (code, src, start)

    @classmethod
    def replayed(cls, code: ScopeCode, src: int | None, start: int,
                 parent: Scope | None) -> Scope:
        """A scope decoded on demand from recorded `code`, relative to `src` and `start`."""
        if code[0] == "shift":  # a replayed scope recorded inside another replay
            _, inner, delta, src_rel = code
            src, start = decode_ref(src_rel, src, start), start + delta
            code = inner
        scope = cls(decode_ref(code[0], src, start), parent)
        scope._names = scope._children = None
        scope._lazy = (code, src, start)
        return scope

    def _decode(self) -> tuple[dict[str, int | None], dict[str, Scope]]:
        assert self._lazy is not None  # noqa: S101  only lazy scopes lack their tables
        (_, names, children), src, start = self._lazy
        self._names = {k: decode_ref(v, src, start) for k, v in names.items()}
        self._children = {k: Scope.replayed(c, src, start, self) for k, c in children.items()}
        return self._names, self._children

    @property
    def names(self) -> dict[str, int | None]:
        return self._names if self._names is not None else self._decode()[0]

    @property
    def children(self) -> dict[str, Scope]:
        return self._children if self._children is not None else self._decode()[1]

    def lookup(self, dotted: str) -> tuple[bool, int | None]:
        """(found, node index) of `name` or `group.inner.name`, here or in a parent."""
        head, *rest = dotted.split(".")
        scope: Scope | None = self
        while scope is not None:
            if head == "input" and not rest:
                return True, scope.input
            if head in scope.names:
                if not rest:
                    return True, scope.names[head]
                inner = scope.children.get(head)
                for part in rest[:-1]:
                    inner = inner.children.get(part) if inner else None
                if inner is not None and rest[-1] in inner.names:
                    return True, inner.names[rest[-1]]
                return False, None
            scope = scope.parent
        return False, None

    def visible(self) -> list[str]:
        out: list[str] = ["input"]
        scope: Scope | None = self
        while scope is not None:
            out += list(scope.names)
            scope = scope.parent
        return out


def decode_ref(ref: int | None, src: int | None, start: int) -> int | None:
    """A recorded node reference: -1 is the block input, others count from `start`."""
    return None if ref is None else (src if ref == -1 else ref + start)


class Recording(NamedTuple):
    """One block expansion, relative to its call."""

    # (name after the call's prefix, op, attrs, inputs, shape, loc or None, view, size,
    # train_only)
    nodes: list[tuple[str, str, dict[str, Any], tuple[int, ...], Shape | None, Loc | None,
                      bool, int, bool]]
    out: int
    scope: ScopeCode


class BlockMemo:
    """Recorded block expansions of one expansion run, keyed by call."""

    def __init__(self) -> None:
        self._recordings: dict[Hashable, Recording] = {}

    @staticmethod
    def key(block: Any, params: dict[str, Any], shape: Shape | None,
            outer_block: str) -> Hashable | None:
        """What makes two calls expand alike; None if the call cannot be memoised."""
        if shape is None:
            return None
        key = (block.name, id(block), tuple(params.items()), shape, outer_block)
        try:
            hash(key)
        except TypeError:  # a list-valued parameter
            return None
        return key

    def get(self, key: Hashable) -> Recording | None:
        return self._recordings.get(key)

    def record(self, key: Hashable, nodes: list[Node], start: int, src: int, out: int,
               inner: Scope, prefix: str, site: Loc) -> None:
        """Record the nodes from `start` on, expanded by a call at `site` under `prefix`."""
        def enc(ref: int) -> int:
            return -1 if ref == src else ref - start

        def enc_opt(ref: int | None) -> int | None:
            return None if ref is None else enc(ref)

        cut = len(prefix)
        # A layer located at the call (one of a built-in block's) is located at each
        # replay's own call: its loc is recorded as None.
        recorded = [(n.name[cut:], n.op, n.attrs, tuple(enc(i) for i in n.inputs), n.shape,
                     None if n.loc == site else n.loc, n.view, n.size, n.train_only)
                    for n in nodes[start:]]

        def enc_scope(scope: Scope) -> ScopeCode:
            if scope._lazy is not None:  # keep a replay's code; shift it to this block
                code, src_c, start_c = scope._lazy
                return ("shift", code, start_c - start, enc_opt(src_c))
            return (enc_opt(scope.input), {k: enc_opt(v) for k, v in scope.names.items()},
                    {k: enc_scope(v) for k, v in scope.children.items()})

        self._recordings[key] = Recording(recorded, enc(out), enc_scope(inner))


def replay(recording: Recording, nodes: list[Node], src: int, prefix: str,
           site: Loc) -> tuple[int, Scope]:
    """Append the recorded nodes for a call at `site` on input `src` under `prefix`;
    returns the call's output node and its (lazy) scope."""
    start = len(nodes)
    for rel, op, attrs, inputs, shape, loc, view, size, train_only in recording.nodes:
        nodes.append(Node(len(nodes), prefix + rel, op, attrs,
                          tuple(src if i == -1 else i + start for i in inputs),
                          shape, site if loc is None else loc, view, size, train_only))
    out = src if recording.out == -1 else recording.out + start
    return out, Scope.replayed(recording.scope, src, start, None)


__all__ = ["BlockMemo", "Recording", "Scope", "decode_ref", "replay"]
