"""Error types and the collector every pass reports into.

A spec problem is a :class:`Problem`: where (file, line, layer path), what was
received, what is allowed, and a did-you-mean. Passes append problems to an
:class:`ErrorSink` and keep going where they can, so that one run reports every
error in a spec; :class:`SpecError` carries the whole list out to the caller.
Nothing here prints.
"""

from __future__ import annotations

import datetime
import difflib
import re
from collections.abc import Iterable
from typing import NamedTuple


class Loc(NamedTuple):
    """A place in a spec file: path and 1-based line (0 when unknown)."""

    file: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


def printable(text: str) -> str:
    """`text` on one line: control characters (a newline in a file name) as escapes."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class Problem(NamedTuple):
    """One error in a spec, ready to print on one line."""

    loc: Loc
    path: str  # layer path such as "layers[3].layer2.block1.conv2"; "" at top level
    message: str

    def __str__(self) -> str:
        where = f"{self.loc}: " if self.loc.file else ""
        path = f"{self.path}: " if self.path else ""
        return printable(f"{where}{path}{self.message}")  # one problem, one line


class SpecError(Exception):
    """Raised at the end of a pass that found problems; holds all of them."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class Abort(Exception):
    """Stops a pass early (limits exceeded); the sink already holds the reason."""


class ErrorSink:
    """Collects problems; `raise_if_any` ends a pass that found some.

    The same message at the same place (a block used many times with one bad value)
    is kept once, with a count of the other layers it hit.
    """

    def __init__(self, limit: int = 200) -> None:
        self._found: list[Problem] = []
        self._repeats: dict[tuple, int] = {}  # (loc, message) -> index in _found
        self._more: list[int] = []  # other layers with the same problem, per problem
        self.limit = limit

    def add(self, loc: Loc, path: str, message: str) -> None:
        key = (loc, message)
        if key in self._repeats:
            i = self._repeats[key]
            if self._found[i].path != path:
                self._more[i] += 1
            return
        if len(self._found) < self.limit:
            self._repeats[key] = len(self._found)
            self._found.append(Problem(loc, path, message))
            self._more.append(0)

    @property
    def problems(self) -> list[Problem]:
        return [p if not more else p._replace(
                    message=f"{p.message} (and at {more} more layer{'s' * (more > 1)} from this "
                    "line)") for p, more in zip(self._found, self._more, strict=True)]

    def count(self) -> int:
        return len(self._found)

    def __bool__(self) -> bool:
        return bool(self._found)

    def raise_if_any(self) -> None:
        if self._found:
            raise SpecError(self.problems)


def count(n: int, noun: str, plural: str | None = None) -> str:
    """'1 layer', '2 layers', '1,000 layers': a number with its noun in the right number."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or ''."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


_YAML_NUMBER_TEXT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def show(value: object) -> str:
    """How a received value is quoted in messages, with its YAML type."""
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str):
        if _YAML_NUMBER_TEXT.match(value):
            mantissa, _, exponent = value.lower().partition("e")
            if "." not in mantissa:
                mantissa += ".0"
            if exponent[0] not in "+-":
                exponent = "+" + exponent
            number = float(value)
            plain = f"{int(number)}" if number.is_integer() and abs(number) < 1e16 else repr(number)
            return (f"{value!r} (text: YAML 1.1 reads a number like {value} as a string; "
                    f"write it out, e.g. {plain}, or with a dot and a signed exponent, "
                    f"e.g. {mantissa}e{exponent})")
        return repr(value)
    if isinstance(value, datetime.date):
        return f"the date {value.isoformat()} (YAML reads unquoted dates as dates; quote it)"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return repr(value)


def one_of(choices: Iterable[str]) -> str:
    return ", ".join(sorted(choices))
