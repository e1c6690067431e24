"""Pass 1: safe, line-aware YAML loading.

`load_yaml` parses with PyYAML's safe loader (the C parser when present), rejects
duplicate keys, and returns plain dicts and lists that remember where they came
from: :class:`LocDict` knows the line of each key and :class:`LocList` the line of
each item. Later passes use those lines in error messages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import ErrorSink, Loc

MAX_BYTES = 2_000_000  # a spec larger than this is refused before parsing

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LocDict(dict):
    """A mapping from YAML with the 1-based line of itself and of each key."""

    line: int = 0
    key_lines: dict

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line) if hasattr(self, "key_lines") else self.line


class LocList(list):
    """A sequence from YAML with the 1-based line of itself and of each item."""

    line: int = 0
    item_lines: list

    def line_of(self, index: int) -> int:
        lines = getattr(self, "item_lines", [])
        return lines[index] if 0 <= index < len(lines) else self.line


class _DuplicateKey(yaml.MarkedYAMLError):
    pass


class _Loader(_Base):  # type: ignore[misc, valid-type]
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
            what = repr(node.value) if isinstance(node, yaml.ScalarNode) else f"this {node.id}"
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


def _one_line(text: str) -> str:
    return " ".join(text.split())


def read_yaml(path: str | Path, errors: ErrorSink) -> Any:
    """Read and parse a YAML file, reporting unreadable files as problems."""
    filename = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        errors.add(Loc(filename), "", f"cannot read file: {exc.strerror or exc}")
        return None
    if len(raw) > MAX_BYTES:
        errors.add(Loc(filename), "", f"file is {len(raw):,} bytes; specs are limited to "
                   f"{MAX_BYTES:,} bytes")
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        errors.add(Loc(filename, line), "", f"file is not UTF-8 text ({exc.reason} at byte "
                   f"{exc.start})")
        return None
    return parse_yaml(text, filename, errors)
