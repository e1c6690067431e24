"""Pass 1: safe, line-aware YAML loading.

`parse_yaml` parses with PyYAML's safe loader (the C parser when present), rejects
duplicate keys, and returns plain dicts and lists that remember where they came
from: :class:`LocDict` knows the line of each key and :class:`LocList` the line of
each item. Later passes use those lines in error messages.

Two ways reach the same result. The fast one (:func:`_fast_load`) builds the dicts and
lists straight from libyaml's events, resolving each distinct plain scalar once; it
takes the documents specs are made of (untagged scalars, mappings and lists) and hands
anything else to the full loader: tags, anchors and aliases, merge keys, duplicate or
complex keys, several documents, deep nesting, malformed YAML. The full loader composes
nodes and constructs them with PyYAML's constructors, and reports every problem with
its line. `tests/test_yamlio.py` checks that both give equal data and lines.
"""

from __future__ import annotations

import os
import re
from typing import Any

import yaml

from ..errors import ErrorSink, Loc, SpecError
from ..safeio import nesting_line, read_text

MAX_BYTES = 2_000_000  # a spec larger than this is refused before parsing
MAX_DEPTH = 256  # YAML nesting refused beyond this, before the parser's own limit (libyaml: 1000)

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LocDict(dict[Any, Any]):
    """A mapping from YAML with the 1-based line of itself and of each key."""

    line: int = 0
    key_lines: dict[Any, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line) if hasattr(self, "key_lines") else self.line


class LocList(list[Any]):
    """A sequence from YAML with the 1-based line of itself and of each item."""

    line: int = 0
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        lines = getattr(self, "item_lines", [])
        return lines[index] if 0 <= index < len(lines) else self.line


class _DuplicateKey(yaml.MarkedYAMLError):
    pass


class _Loader(_Base):  # type: ignore[misc]  # _Base is CSafeLoader or SafeLoader
    """Safe loader that rejects duplicate keys and records line numbers."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> LocDict:
        self.flatten_mapping(node)
        result = LocDict()
        result.line = node.start_mark.line + 1
        result.key_lines = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    "found an unhashable key", key_node.start_mark) from None
            if key in result:
                first = result.key_lines[key]
                raise _DuplicateKey(
                    None, None,
                    f"duplicate key '{key}' (first defined on line {first}); "
                    "YAML would silently keep only the last one",
                    key_node.start_mark)
            result[key] = self.construct_object(value_node, deep=deep)
            result.key_lines[key] = key_node.start_mark.line + 1
        return result

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """PyYAML's constructors raise plain exceptions for some tagged values (an empty
        `!!int`, a bad `!!timestamp`, `!!seq` on a mapping); give them the node's line."""
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, IndexError, KeyError, OverflowError, AttributeError):
            tag = (node.tag or "").rsplit(":", 1)[-1] or "a value"
            what = repr(node.value) if isinstance(node, yaml.ScalarNode) else f"this {getattr(node, 'id', 'node')}"
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {what} as {tag} (check the !!{tag} tag)",
                node.start_mark) from None

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> LocList:
        result = LocList(self.construct_object(child, deep=deep) for child in node.value)
        result.line = node.start_mark.line + 1
        result.item_lines = [child.start_mark.line + 1 for child in node.value]
        return result


def _mapping(loader: _Loader, node: yaml.MappingNode) -> LocDict:
    return loader.construct_mapping(node, deep=True)


def _sequence(loader: _Loader, node: yaml.SequenceNode) -> LocList:
    return loader.construct_sequence(node, deep=True)


_Loader.add_constructor("tag:yaml.org,2002:map", _mapping)
_Loader.add_constructor("tag:yaml.org,2002:seq", _sequence)


class _Slow(Exception):
    """This document needs the full loader."""


_SLOW = object()  # what _fast_load returns for a document it does not take
_NO_KEY = object()  # a mapping waiting for its next key
_STR = "tag:yaml.org,2002:str"
_BRACKETS_ONLY = re.compile(r"[^\[\]{}]+")
_PAIRS = ("[]", "{}", "[}", "{]")
_SCALARS: dict[tuple[str, bool], Any] = {}  # (text, plain) -> its value, for short texts
_SCALARS_KEPT = 20_000
_SCALAR_TEXT = 64  # longer texts are resolved each time, not kept


def _scalar(resolver: Any, value: str, plain: bool) -> Any:
    """An untagged scalar's value, as the safe loader constructs it."""
    key = (value, plain)
    found = _SCALARS.get(key, _SLOW)
    if found is not _SLOW:
        return found
    tag = resolver.resolve(yaml.ScalarNode, value, (True, False)) if plain else _STR
    constructor = _Loader.yaml_constructors.get(tag)
    if constructor is None or tag == "tag:yaml.org,2002:merge":
        raise _Slow
    result = constructor(resolver, yaml.ScalarNode(tag, value))
    if len(value) <= _SCALAR_TEXT and len(_SCALARS) < _SCALARS_KEPT:
        _SCALARS[key] = result  # immutable: str, int, float, bool, None, datetime
    return result


def _fast_load(text: str) -> Any:
    """The document in `text` built from the parser's events, or _SLOW."""
    parser = _Base(text)
    get = parser.get_event
    events = yaml.events
    scalar, start_map, start_seq = events.ScalarEvent, events.MappingStartEvent, \
        events.SequenceStartEvent
    end_map, end_seq = events.MappingEndEvent, events.SequenceEndEvent
    try:
        get()  # the stream's start
        if type(get()) is events.StreamEndEvent:
            return None  # no document: what yaml.load gives
        # [the collection, whether a mapping, its pending key, that key's line]
        stack: list[list[Any]] = []
        root: Any = None
        while True:
            event = get()
            kind = type(event)
            if kind is scalar:
                if event.anchor is not None or event.tag is not None:
                    raise _Slow
                obj = _scalar(parser, event.value, event.implicit[0])
                collection = False
            elif kind is start_map or kind is start_seq:
                if event.anchor is not None or event.tag is not None or len(stack) >= MAX_DEPTH:
                    raise _Slow
                if kind is start_map:
                    obj = LocDict()
                    obj.key_lines = {}
                else:
                    obj = LocList()
                    obj.item_lines = []
                obj.line = event.start_mark.line + 1
                collection = True
            elif kind is end_map or kind is end_seq:
                done = stack.pop()
                if not stack:
                    root = done[0]
                    break
                continue
            else:  # an alias, or the document's end where a value belongs
                raise _Slow
            if stack:
                top = stack[-1]
                into = top[0]
                if not top[1]:
                    into.append(obj)
                    into.item_lines.append(event.start_mark.line + 1)
                elif top[2] is _NO_KEY:
                    if collection or obj in into or obj == "<<":
                        raise _Slow  # a complex, duplicate or merge key
                    top[2], top[3] = obj, event.start_mark.line + 1
                else:
                    into[top[2]] = obj
                    into.key_lines[top[2]] = top[3]
                    top[2] = _NO_KEY
            elif not collection:
                root = obj
                break
            if collection:
                stack.append([obj, kind is start_map, _NO_KEY, 0])
        if type(get()) is not events.DocumentEndEvent or \
                type(get()) is not events.StreamEndEvent:
            raise _Slow  # another document follows
        return root
    except Exception:  # noqa: BLE001  whatever it is, the full loader reports it
        return _SLOW
    finally:
        parser.dispose()


def _flow_may_nest_deeply(text: str) -> bool:
    """False when no flow brackets in `text` can nest beyond MAX_DEPTH (a bound: brackets
    in quotes and comments count too); True sends the text to the exact count."""
    brackets = _BRACKETS_ONLY.sub("", text)
    for passes in range(8):  # each pass removes innermost pairs: at most 4 levels
        before = len(brackets)
        for pair in _PAIRS:
            brackets = brackets.replace(pair, "")
        if len(brackets) == before:  # what is left never closes: it only goes deeper
            return 4 * passes + brackets.count("[") + brackets.count("{") > MAX_DEPTH
    return True


def parse_yaml(text: str, filename: str, errors: ErrorSink) -> Any:
    """Parse YAML text; on failure add one problem to `errors` and return None."""
    if len(text) > MAX_BYTES:
        errors.add(Loc(filename), "", f"file is {len(text):,} bytes; specs are limited to "
                   f"{MAX_BYTES:,} bytes")
        return None
    if not _flow_may_nest_deeply(text):
        data = _fast_load(text)
        if data is not _SLOW:
            return data
    line = _too_deep(text)
    if line:
        errors.add(Loc(filename, line), "", f"YAML is nested too deeply to be a spec (more than "
                   f"{MAX_DEPTH} levels of lists and mappings)")
        return None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        what = " ".join(x for x in (exc.context, exc.problem) if x)
        lines = text.splitlines()
        if line and line <= len(lines) and "\t" in lines[line - 1]:
            what += " (this line has a tab: YAML indents with spaces only)"
        errors.add(Loc(filename, line), "", f"malformed YAML: {_one_line(what)}")
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        char = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
        errors.add(Loc(filename, line), "", f"malformed YAML: character {char} is not allowed "
                   f"({exc.reason})")
    except yaml.YAMLError as exc:
        errors.add(Loc(filename), "", f"malformed YAML: {_one_line(str(exc))}")
    except RecursionError:
        errors.add(Loc(filename), "", "YAML is nested too deeply to be a spec")
    return None


_OPEN = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSE = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


# Flow brackets outside quoted scalars and comments (a quote starts a scalar only after
# a space, an indicator or the start of a line; elsewhere it is part of plain text).
_FLOW = re.compile(r"""(?<![^\s\[{,:?-])(?:"(?:[^"\\]|\\.)*"|'(?:[^']|'')*')"""
                   r"|(?<!\S)#[^\n]*|[\[\]{}]")


def _too_deep(text: str) -> int:
    """The line where nesting first exceeds MAX_DEPTH, else 0.

    cnncost reports deep nesting itself, not in whatever words the installed parser
    uses at its own limit. Flow nesting (`[[[...`) is counted on the text, since the
    parser looks all the way down a flow collection before it yields anything; block
    nesting by a pass over the parser's events (no objects built, aliases not
    followed), stopped as soon as the depth is exceeded. Malformed YAML ends the pass
    quietly: the real load reports it.
    """
    line = nesting_line(text, _FLOW, MAX_DEPTH)
    if line:
        return line
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_Base):
            if isinstance(event, _OPEN):
                depth += 1
                if depth > MAX_DEPTH:
                    return event.start_mark.line + 1 if event.start_mark else 0
            elif isinstance(event, _CLOSE):
                depth -= 1
    except yaml.YAMLError:
        return 0
    return 0


def _one_line(text: str) -> str:
    return " ".join(text.split())


def display_name(path: str | os.PathLike[str]) -> str:
    """How a spec file is named in messages: `<stdin>` for `-`."""
    return "<stdin>" if str(path) == "-" else str(path)


def read_yaml(path: str | os.PathLike[str], errors: ErrorSink, what: str = "specs") -> Any:
    """Read and parse a YAML file (or `-` for stdin), reporting unreadable files as problems.

    The file is bounded before it is read (cnncost.safeio): a device, a FIFO or a file
    over MAX_BYTES is refused without reading it.
    """
    text = read_yaml_text(path, errors, what)
    return None if text is None else parse_yaml(text, display_name(path), errors)


def read_yaml_text(path: str | os.PathLike[str], errors: ErrorSink,
                   what: str = "specs") -> str | None:
    """The text of a YAML file (or `-` for stdin), bounded as :func:`read_yaml` reads it;
    None, with the problem in `errors` under the file's display name, if it cannot be read."""
    filename = display_name(path)
    try:
        return read_text(path, what=what, limit=MAX_BYTES)
    except SpecError as exc:
        for problem in exc.problems:
            errors.add(Loc(filename, problem.loc.line), problem.path, problem.message)
        return None
