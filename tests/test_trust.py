"""Hostile files and streams: every input bounded before it is read, no output path
replaced unless it is a regular file, closed or broken streams handled in one line.

Each class of problem found by the hostile-input review has a test here; the gate's
own files (budgets, baselines) are covered in tests/test_gate*.py and the exporter's
strings in tests/test_export.py.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path

import pytest
from click.testing import CliRunner

from cnncost import SpecError, safeio
from cnncost.cli import main
from cnncost.lang.yamlio import MAX_BYTES

SPEC = "input: [3, 8, 8]\nlayers:\n  - {op: conv, out: 4, kernel: 3}\n  - relu\n"
BAD_SPEC = "input: [3, 8, 8]\nlayers:\n  - {op: conv, out: x, kernel: 3}\n"


def cli(*args: object, input: str | None = None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input,
                              catch_exceptions=False)


def run(*args: object, **kwargs) -> subprocess.CompletedProcess:
    """cnncost in a subprocess (timeout only as a safety net: asserts are on the result)."""
    return subprocess.run([sys.executable, "-m", "cnncost", *map(str, args)],
                          capture_output=True, text=True, timeout=120, **kwargs)


def one_error(result, *parts: str) -> str:
    """Exit 2 and exactly one `error:` line containing every part; no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output and "internal error" not in result.output
    lines = [x for x in result.stderr.splitlines() if x.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    assert all(p in lines[0] for p in parts), (parts, lines[0])
    return lines[0]


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC, encoding="utf-8")
    return path


# ------------------------------------------------------------------ bounded inputs
def test_a_device_is_refused_unread():
    one_error(cli("analyze", "/dev/zero"), "/dev/zero: not a regular file (a character device)")


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    proc = run("analyze", fifo)  # opening a FIFO with no writer would block forever
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == f"error: {fifo}: not a regular file (a FIFO); give a file, " \
                                  "or - for standard input"


def test_a_sparse_huge_file_is_refused_by_its_size_without_reading_it(tmp_path):
    big = tmp_path / "big.yaml"
    with open(big, "wb") as handle:
        handle.truncate(2**31)  # 2 GiB of holes: reading it would take seconds and 2 GiB
    tracemalloc.start()
    try:
        result = cli("analyze", big)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    one_error(result, "file is 2,147,483,648 bytes; specs are limited to 2,000,000 bytes")
    assert peak < MAX_BYTES, f"{peak:,} bytes allocated to refuse a file by its size"


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(SpecError, match="is a directory"):
        safeio.read_bytes(tmp_path, what="specs", limit=10)


def test_a_pipe_the_shell_opened_is_read(tmp_path):
    read, write = os.pipe()
    os.write(write, SPEC.encode())
    os.close(write)
    try:
        data = safeio.read_bytes(f"/dev/fd/{read}", what="specs", limit=MAX_BYTES)
    finally:
        os.close(read)
    assert data == SPEC.encode()


def test_a_pipe_is_read_only_to_the_limit():
    read, write = os.pipe()
    os.write(write, b"#" * 200)
    os.close(write)
    try:
        with pytest.raises(SpecError, match="limited to 100 bytes"):
            safeio.read_bytes(f"/dev/fd/{read}", what="specs", limit=100)
    finally:
        os.close(read)


# ------------------------------------------------------------------ standard input
def test_spec_from_stdin_as_dash(spec):
    from_file = cli("analyze", spec, "--format", "json")
    from_stdin = cli("analyze", "-", "--format", "json", input=SPEC)
    assert from_stdin.exit_code == 0, from_stdin.output
    assert json.loads(from_stdin.output)["totals"] == json.loads(from_file.output)["totals"]


def test_spec_from_stdin_errors_are_located_at_stdin():
    one_error(cli("analyze", "-", input=BAD_SPEC), "error: <stdin>:3: conv1: out:")


def test_dev_stdin_keeps_working(spec):
    with open(spec, encoding="utf-8") as handle:
        proc = run("analyze", "/dev/stdin", "--format", "json", stdin=handle)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["totals"]["params"] == 3 * 4 * 9 + 4


def test_stdin_is_bounded_too():
    one_error(cli("analyze", "-", input="#" * (MAX_BYTES + 1)), "limited to 2,000,000 bytes")


# ------------------------------------------------------------------ --set values
@pytest.mark.parametrize("value, says", [
    ("1e400", "1e400 is not a finite number"),
    ("nan", "nan is not a finite number"),
    ("-inf", "-inf is not a finite number"),
    ("9" * 5000, "(5,000 characters) is not a finite number"),
    (str(2**63), "is too large"),
], ids=["1e400", "nan", "-inf", "5000-digits", "2**63"])
def test_set_refuses_numbers_no_spec_can_use(value, says):
    result = cli("analyze", "resnet18", "--set", f"width={value}")
    assert result.exit_code == 2
    assert "--set" in result.output and says in result.output and "Traceback" not in result.output


def test_sweep_refuses_them_too():
    one_error(cli("compare", "resnet18", "--sweep", "width=32,1e400"),
              "--sweep width: 1e400 is not a finite number")


# ------------------------------------------------------------------ strict JSON
HOSTILE_JSON = [
    ('{"a": 1, "a": 2}', "a: duplicate key"),
    ('{"a": {"b": [1, NaN]}}', "a.b[1]: NaN is not a number"),
    ('{"a": Infinity}', "a: Infinity is not a number"),
    ('{"a": [1e400]}', "a[0]: 1e400 is a number too large to be finite"),
    ('{"a": ' + "9" * 5000 + "}", "a: 999999999999... (5,000 digits) is a number too large"),
    ("[" * 100_000 + "]" * 100_000, ":1: not a valid bench result: nested more than 64 levels"),
    ('{"a": 1,}', ":1: not valid JSON"),
]


@pytest.mark.parametrize("text, says", HOSTILE_JSON,
                         ids=["duplicate", "nan", "infinity", "1e400", "5000-digits",
                              "deep", "invalid"])
def test_hostile_json_is_refused_with_its_path(tmp_path, text, says):
    path = tmp_path / "bench.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        safeio.load_json(path, what="bench result", limit=10**7)
    assert says in str(info.value)
    assert str(info.value).startswith(str(path))


@pytest.mark.parametrize("text, says", HOSTILE_JSON[:2] + HOSTILE_JSON[4:6],
                         ids=["duplicate", "nan", "5000-digits", "deep"])
def test_hostile_bench_files_exit_2_through_the_cli(tmp_path, text, says):
    path = tmp_path / "bench.json"
    path.write_text(text, encoding="utf-8")
    result = cli("compare", "lenet5", "--measurements", path)
    assert result.exit_code == 2, result.output
    assert says in result.stderr and str(path) in result.stderr
    assert "Traceback" not in result.output


def test_brackets_inside_json_strings_do_not_count_as_nesting():
    assert safeio.parse_json(json.dumps({"a": "[" * 1000}), "f.json") == {"a": "[" * 1000}


def test_measurements_from_a_device_are_refused():
    one_error(cli("compare", "lenet5", "--measurements", "/dev/zero"), "not a regular file")


# ------------------------------------------------------------------ output files
def test_output_replaces_a_regular_file_atomically_and_keeps_its_mode(spec, tmp_path):
    out = tmp_path / "out.json"
    out.write_text("old", encoding="utf-8")
    out.chmod(0o640)
    assert cli("analyze", spec, "--format", "json", "-o", out).exit_code == 0
    assert json.loads(out.read_text())["totals"]["params"] == 112
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "spec.yaml"]


def test_a_planted_link_at_a_temporary_name_is_never_followed(spec, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious", encoding="utf-8")
    (tmp_path / ".out.json.tmp").symlink_to(victim)  # the old fixed temporary name
    assert cli("analyze", spec, "--format", "json", "-o", tmp_path / "out.json").exit_code == 0
    assert victim.read_text() == "precious"
    assert (tmp_path / "out.json").is_file() and not (tmp_path / "out.json").is_symlink()


def test_a_special_file_is_written_in_place_not_replaced(spec, tmp_path):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    result = cli("analyze", spec, "--format", "csv", "-o", fifo)
    reader.join(timeout=60)
    assert result.exit_code == 0
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was replaced by a file"
    assert received and received[0].startswith(b"name,op,shape")


def test_a_link_to_dev_null_stays_a_link(spec, tmp_path):
    link = tmp_path / "null"
    link.symlink_to(os.devnull)
    assert cli("analyze", spec, "-o", link).exit_code == 0
    assert link.is_symlink() and os.readlink(link) == os.devnull
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_a_link_to_a_regular_file_is_written_through(spec, tmp_path):
    target = tmp_path / "real.csv"
    target.write_text("old", encoding="utf-8")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    assert cli("analyze", spec, "--format", "csv", "-o", link).exit_code == 0
    assert link.is_symlink() and target.read_text().startswith("name,op,shape")


def test_a_folder_as_output_is_refused_and_leaves_nothing_behind(spec, tmp_path):
    folder = tmp_path / "somedir"
    folder.mkdir()
    one_error(cli("analyze", spec, "-o", folder), f"-o {folder}: cannot write: is a directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["somedir", "spec.yaml"]


def test_a_failed_write_removes_its_temporary_file(tmp_path, monkeypatch):
    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        safeio.write_output(tmp_path / "out.json", "data")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ closed and broken streams
def test_closed_stdout_is_one_line_not_a_traceback(spec):
    proc = subprocess.run([sys.executable, "-m", "cnncost", "analyze", str(spec)],
                          stderr=subprocess.PIPE, text=True, timeout=120,
                          preexec_fn=lambda: os.close(1))
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: standard output is closed; write to a file with -o FILE"


def test_closed_stdout_does_not_matter_with_an_output_file(spec, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "cnncost", "analyze", str(spec), "-o",
                           str(tmp_path / "out.txt")], stderr=subprocess.PIPE, text=True,
                          timeout=120, preexec_fn=lambda: os.close(1))
    assert proc.returncode == 0, proc.stderr
    assert "conv1" in (tmp_path / "out.txt").read_text()


def test_a_reader_that_leaves_early_is_no_error():
    proc = subprocess.Popen([sys.executable, "-m", "cnncost", "analyze", "resnet152"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(10)
    proc.stdout.close()  # like `| head -c 10`
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0
    assert stderr == ""


# ------------------------------------------------------------------ spec before torch
@pytest.mark.parametrize("command", ["verify", "bench", "export"])
def test_a_broken_spec_is_reported_before_torch_is_imported(tmp_path, command):
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_SPEC, encoding="utf-8")
    code = ("import sys\nfrom cnncost.cli import main\ntry:\n"
            f"    main([{command!r}, {str(path)!r}])\nexcept SystemExit as e:\n"
            "    print(e.code, 'torch' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.stdout.split() == ["2", "False"], (proc.stdout, proc.stderr)
    assert f"error: {path}:3: conv1: out:" in proc.stderr


def test_a_file_name_with_a_newline_keeps_one_line_per_problem(tmp_path):
    path = tmp_path / "a\nb.yaml"
    path.write_text(BAD_SPEC, encoding="utf-8")
    line = one_error(cli("analyze", path), "a\\nb.yaml:3: conv1: out:")
    assert "\n" not in line
