"""Pass 1: safe, line-aware YAML loading.

`load_yaml` parses with PyYAML's safe loader (the C parser when present), rejects
duplicate keys, and returns plain dicts and lists that remember where they came
from: :class:`LocDict` knows the line of each key and :class:`LocList` the line of
each item. Later passes use those lines in error messages.
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


def parse_yaml(text: str, filename: str, errors: ErrorSink) -> Any:
    """Parse YAML text; on failure add one problem to `errors` and return None."""
    if len(text) > MAX_BYTES:
        errors.add(Loc(filename), "", f"file is {len(text):,} bytes; specs are limited to "
                   f"{MAX_BYTES:,} bytes")
        return None
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
