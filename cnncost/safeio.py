"""Bounded, fail-closed file input and clobber-safe file output.

Every file cnncost reads (specs, budgets, baselines, bench results) goes through
:func:`read_bytes`: the path must be a regular file (or standard input, as ``-``
or ``/dev/stdin``, or a pipe the shell opened, ``<(...)``), its size is checked before a byte is read, and at most the
limit plus one byte is ever read, so ``/dev/zero``, a FIFO or a sparse 2 GB file
are refused at once with a one-line message. JSON goes through :func:`parse_json`,
which refuses what Python's ``json`` would quietly accept or crash on: duplicate
keys (the last one would win), NaN and Infinity, numbers too large to be counts,
and nesting too deep to be a document of ours; every problem names the file and
the JSON path of the bad value.

Output goes through :func:`write_output`: a regular file (or a new one) is
replaced atomically through an unpredictable temporary file created exclusively
in the same folder (never following a planted link), which is removed on any
failure; anything else (``/dev/null``, ``/dev/stdout``, a FIFO) is written in
place and never replaced. Nothing here prints.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

from .errors import Loc, Problem, SpecError

STDIN_NAMES = ("-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0")
# A pipe the shell already opened (`cnncost analyze <(...)`): it has a writer, so
# reading it cannot block on open the way a named FIFO does.
_OPEN_FD = re.compile(r"/(?:dev|proc/self)/fd/[0-9]+\Z")
JSON_MAX_DEPTH = 64  # no document of ours nests deeper than a dozen levels
JSON_MAX_DIGITS = 40  # an integer literal longer than this is no count (2**63 has 19 digits)

_stdin_cache: tuple[Any, bytes] | None = None  # (the stream, what it held)


def _fail(filename: str, message: str, line: int = 0) -> SpecError:
    return SpecError([Problem(Loc(filename, line), "", message)])


def is_stdin(path: str | os.PathLike) -> bool:
    """`-` or /dev/stdin (and its aliases): read standard input."""
    return str(path) in STDIN_NAMES


def _read_stdin(filename: str, what: str, limit: int) -> bytes:
    """Standard input, read once (a spec may be loaded twice) and at most limit+1 bytes."""
    global _stdin_cache
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:
        raise _fail(filename, "standard input is closed")
    if _stdin_cache is None or _stdin_cache[0] is not stream:
        _stdin_cache = (stream, stream.read(limit + 1))
    data = _stdin_cache[1]
    if len(data) > limit:
        raise _fail(filename, f"standard input has more than {limit:,} bytes; {what} are "
                              f"limited to {limit:,} bytes")
    return data


def read_bytes(path: str | os.PathLike, *, what: str, limit: int,
               missing: str = "no such file") -> bytes:
    """The bytes of a regular file (or stdin) of at most `limit` bytes.

    `what` names the kind of file in plural for messages ("specs", "baselines");
    `missing` is the message for a file that does not exist. SpecError otherwise.
    """
    filename = str(path)
    if is_stdin(path):
        return _read_stdin(filename, what, limit)
    try:
        info = os.stat(path)  # stat never blocks, open on a FIFO would
    except FileNotFoundError:
        raise _fail(filename, missing) from None
    except OSError as exc:
        raise _fail(filename, f"cannot read file: {exc.strerror or exc}") from None
    pipe = stat.S_ISFIFO(info.st_mode) and _OPEN_FD.match(filename) is not None
    if not pipe:
        _check_regular(filename, info, what, limit)
    try:
        fd = os.open(path, os.O_RDONLY | (0 if pipe else getattr(os, "O_NONBLOCK", 0)))
    except OSError as exc:
        raise _fail(filename, f"cannot read file: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        if not pipe:
            _check_regular(filename, os.fstat(handle.fileno()), what, limit)  # swapped?
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise _fail(filename, f"file has more than {limit:,} bytes; {what} are limited to "
                              f"{limit:,} bytes")
    return data


def _check_regular(filename: str, info: os.stat_result, what: str, limit: int) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise _fail(filename, "is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise _fail(filename, f"not a regular file ({_kind(info.st_mode)}); give a file, or - "
                              "for standard input")
    if info.st_size > limit:
        raise _fail(filename, f"file is {info.st_size:,} bytes; {what} are limited to "
                              f"{limit:,} bytes")


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a file"


def decode_utf8(data: bytes, filename: str) -> str:
    """UTF-8 text, or SpecError at the line of the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise _fail(filename, f"file is not UTF-8 text ({exc.reason} at byte {exc.start})",
                    line) from None


def read_text(path: str | os.PathLike, *, what: str, limit: int,
              missing: str = "no such file") -> str:
    """UTF-8 text of a bounded regular file (see read_bytes)."""
    return decode_utf8(read_bytes(path, what=what, limit=limit, missing=missing), str(path))


# ------------------------------------------------------------------------ JSON
class _Bad:
    """A value json would read but no document of ours may hold; reported with its path."""

    def __init__(self, text: str, why: str) -> None:
        self.text, self.why = text, why

    def __repr__(self) -> str:
        return self.text


class _Object(dict):
    """A JSON object that remembers the keys it saw twice."""

    duplicates: tuple[str, ...] = ()


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    out = _Object()
    seen: list[str] = []
    for key, value in pairs:
        if key in out:
            seen.append(key)
        out[key] = value
    if seen:
        out.duplicates = tuple(dict.fromkeys(seen))
    return out


def _int(text: str) -> Any:
    digits = len(text.lstrip("-"))
    if digits > JSON_MAX_DIGITS:
        return _Bad(f"{text[:12]}... ({digits:,} digits)", "a number too large to be a count")
    return int(text)


def _float(text: str) -> Any:
    value = float(text)
    return value if math.isfinite(value) else _Bad(text, "a number too large to be finite")


def _constant(text: str) -> _Bad:
    return _Bad(text, "not a number (JSON has no NaN or Infinity)")


_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)


def nesting_line(text: str, tokens: re.Pattern[str], limit: int) -> int:
    """The line where brackets first nest deeper than `limit`, else 0.

    `tokens` finds the brackets `[ ] { }` and whatever must be skipped whole (quoted
    strings, comments), so brackets inside those do not count. Shared by the JSON
    reader here and the YAML reader (cnncost.lang.yamlio).
    """
    depth = 0
    for match in tokens.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > limit:
                return text.count("\n", 0, match.start()) + 1
        elif token in ("]", "}"):
            depth = max(0, depth - 1)
    return 0


def json_path(parts: tuple) -> str:
    """('models', 'a', 'metrics', 0) -> 'models.a.metrics[0]'."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(the document)"


def _walk(value: Any, path: tuple, problems: list[tuple[str, str]]) -> None:
    if isinstance(value, _Bad):
        problems.append((json_path(path), f"{value.text} is {value.why}"))
    elif isinstance(value, dict):
        for key in getattr(value, "duplicates", ()):
            problems.append((json_path((*path, key)), "duplicate key (JSON readers keep only "
                                                      "the last one; refusing to guess)"))
        for key, item in value.items():
            _walk(item, (*path, key), problems)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk(item, (*path, i), problems)


def parse_json(text: str, filename: str, *, what: str = "JSON") -> Any:
    """Strict JSON: SpecError naming the file and the JSON path of every bad value.

    Refused: invalid JSON (with its line), nesting deeper than JSON_MAX_DEPTH,
    duplicate keys, NaN/Infinity, non-finite floats and integers longer than
    JSON_MAX_DIGITS digits. Objects come back as plain dicts.
    """
    line = nesting_line(text, _TOKENS, JSON_MAX_DEPTH)
    if line:
        raise _fail(filename, f"not a valid {what}: nested more than {JSON_MAX_DEPTH} levels "
                              "deep", line)
    try:
        data = json.loads(text, object_pairs_hook=_object, parse_int=_int, parse_float=_float,
                          parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise _fail(filename, f"not valid JSON ({exc.msg}, column {exc.colno}); expected "
                              f"a {what}", exc.lineno) from None
    except (RecursionError, ValueError) as exc:  # belt and braces: depth and digits are checked
        raise _fail(filename, f"not a valid {what}: {exc}") from None
    problems: list[tuple[str, str]] = []
    _walk(data, (), problems)
    if problems:
        raise SpecError([Problem(Loc(filename), "", f"{path}: {message}")
                         for path, message in problems])
    return data


def load_json(path: str | os.PathLike, *, what: str, limit: int,
              missing: str = "no such file") -> Any:
    """A bounded file read and parsed strictly (read_bytes + parse_json)."""
    text = read_text(path, what=f"{what}s", limit=limit, missing=missing)
    return parse_json(text, str(path), what=what)


# ---------------------------------------------------------------------- output
def write_output(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` without ever replacing anything but a regular file.

    A regular file (followed through a link the user named) or a new file is
    replaced atomically: readers see the old content or the new, never half.
    A device, FIFO or other special file is opened and written in place.
    OSError on failure, with no temporary file left behind.
    """
    try:
        info: os.stat_result | None = os.stat(path)  # through links: what would be written
    except FileNotFoundError:
        info = None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(21, "is a directory", str(path))
    if info is not None and not stat.S_ISREG(info.st_mode):
        with open(path, "w", encoding="utf-8") as handle:  # /dev/null, a FIFO: in place
            handle.write(text)
        return
    # A link the user named is followed, so that the link stays and its file changes.
    target = Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        mode = stat.S_IMODE(info.st_mode) if info is not None else 0o666 & ~_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
