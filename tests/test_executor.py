"""`cnncost compare --executor`: sweeps handed to dask.distributed give the output of
`--jobs 1` byte for byte; workers get the spec's text, not its path; a missing extra, a
wrong address or options that do not fit the executor are exit 2 with a message.

The dask tests start a two-worker LocalCluster (separate processes, so every chunk is
pickled to another interpreter) once for the module, and skip without `distributed`
(the `test` extra installs it)."""

from __future__ import annotations

import socket
import sys

import pytest
from click.testing import CliRunner

from cnncost.cli import main
from cnncost.comparison import compare as lib
from cnncost.comparison.executors import EXECUTORS

# A spec whose kernel is swept: k=40 does not fit the 32x32 input, so that point fails
# with the file, line and layer of the conv.
TINY = """\
name: tiny
input: [1, 32, 32]
vars:
  k: 5
  c: 8
layers:
  - {op: conv, name: c1, out: c, kernel: k}
  - {op: flatten, name: flat}
  - {op: linear, name: fc, out: 10}
"""


def run_cli(*args: str, stdin: str | None = None):
    return CliRunner().invoke(main, list(args), input=stdin, catch_exceptions=False)


@pytest.fixture(scope="module")
def cluster():
    """A dask scheduler with two single-thread worker processes on this machine."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as local:
        yield local


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    (tmp_path / "tiny.yaml").write_text(TINY)
    monkeypatch.chdir(tmp_path)
    lib.clear_caches()
    yield tmp_path / "tiny.yaml"
    lib.clear_caches()


def test_the_registry_offers_local_and_dask():
    assert {"local", "dask"} <= set(EXECUTORS)
    assert EXECUTORS["local"].extra == "" and EXECUTORS["dask"].extra == "dask"


# ------------------------------------------------------------------ same output as --jobs 1
@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_dask_output_is_byte_identical_to_jobs_1(cluster, tiny, fmt):
    """k=40 fails at the conv's line: the message names the user's file in both."""
    sweep = ["compare", "tiny.yaml", "--sweep", "k=3,5,7,40", "--sweep", "c=4,8,16",
             "--format", fmt]
    one = run_cli(*sweep, "--jobs", "1")
    dask = run_cli(*sweep, "--executor", "dask", "--address", cluster.scheduler_address)
    assert one.exit_code == dask.exit_code == 2
    assert dask.stdout == one.stdout and dask.stderr == one.stderr
    assert "error: tiny k=40 c=4: tiny.yaml:7: c1: conv: kernel 40 is larger" in one.stderr
    assert "3 of 12 models failed" in one.stderr


def test_dask_sweep_of_a_bundled_spec_with_a_progress_bar(cluster):
    args = ["compare", "resnet18", "--sweep", "width=16,32,48,64", "--sweep",
            "resolution=128,160,192", "--format", "csv"]
    one = run_cli(*args)
    dask = run_cli(*args, "--executor", "dask", "--address", cluster.scheduler_address,
                   "--progress")
    assert one.exit_code == dask.exit_code == 0
    assert dask.stdout == one.stdout and len(one.stdout.splitlines()) == 13


def test_a_local_dask_cluster_without_an_address(tiny):
    pytest.importorskip("distributed")
    args = ["compare", "tiny.yaml", "--sweep", "k=3,5", "--format", "csv"]
    one = run_cli(*args)
    dask = run_cli(*args, "--executor", "dask", "--jobs", "2")
    assert (dask.exit_code, dask.stdout) == (one.exit_code, one.stdout) == (0, one.stdout)


def test_workers_parse_the_text_they_are_sent_not_the_file(cluster, tiny):
    """The file is gone before the points are run: the workers (other processes) never
    read it; the text read when the sweep was planned travels with each chunk."""
    points, failures = lib.plan(["tiny.yaml"], [("k", [3, 5, 7]), ("c", [4, 8])])
    assert not failures and len(points) == 6
    tiny.unlink()
    options = {"batch": 1, "dtype": "fp32", "convention": "torchvision"}
    outcomes = lib.run(points, options, executor="dask", address=cluster.scheduler_address)
    assert [o.point for o in outcomes] == points
    assert all(not o.problems and o.name == "tiny" for o in outcomes)


def test_a_spec_on_standard_input_reaches_the_workers(cluster):
    args = ["compare", "-", "--sweep", "k=3,5,40", "--format", "csv"]
    one = run_cli(*args, stdin=TINY)
    dask = run_cli(*args, "--executor", "dask", "--address", cluster.scheduler_address,
                   stdin=TINY)
    assert (dask.exit_code, dask.stdout, dask.stderr) == (one.exit_code, one.stdout, one.stderr)
    assert "<stdin>:7" in one.stderr and one.exit_code == 2


def test_local_executor_ships_text_too(tiny):
    """--jobs 2 (a process pool) gives the rows and messages of --jobs 1."""
    args = ["compare", "tiny.yaml", "--sweep", "k=3,5,40", "--sweep", "c=4,8", "--format",
            "json"]
    one, two = run_cli(*args), run_cli(*args, "--jobs", "2")
    assert (two.exit_code, two.stdout, two.stderr) == (one.exit_code, one.stdout, one.stderr)


# ------------------------------------------------------------------ errors, exit 2
def test_missing_extra_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    result = run_cli("compare", "resnet18", "--executor", "dask")
    assert result.exit_code == 2
    assert "--executor: dask needs dask.distributed" in result.stderr
    assert "pip install 'cnncost[dask]'" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("address, reason", [
    ("tcp://127.0.0.1:1", "Connection refused"),
    ("nonsense://host:1", "unknown address scheme 'nonsense'"),
    ("hello", "missing port number"),
])
def test_unreachable_or_malformed_address(address, reason):
    pytest.importorskip("distributed")
    result = run_cli("compare", "resnet18", "--executor", "dask", "--address", address,
                     "--connect-timeout", "2")
    assert result.exit_code == 2
    assert f"error: --address: cannot reach the dask scheduler at {address!r}: " in result.stderr
    assert reason in result.stderr and "Traceback" not in result.output


def test_a_silent_server_times_out():
    """A port that accepts but never speaks dask: bounded by --connect-timeout."""
    pytest.importorskip("distributed")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
        result = run_cli("compare", "resnet18", "--executor", "dask", "--address", address,
                         "--connect-timeout", "0.5")
    assert result.exit_code == 2
    assert "no answer in dask's protocol within 0.5 s (--connect-timeout)" in result.stderr


def test_a_worker_address_is_not_the_scheduler(cluster):
    worker = next(iter(cluster.scheduler_info["workers"]))
    result = run_cli("compare", "resnet18", "--executor", "dask", "--address", worker)
    assert result.exit_code == 2
    assert "it answers as a dask Worker, not the scheduler" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--address", "tcp://127.0.0.1:8786"], "--address: is for a cluster (--executor dask); "
                                            "--executor local runs on this machine"),
    (["--executor", "dask", "--address", "tcp://127.0.0.1:8786", "--jobs", "2"],
     "--jobs: with --address, the cluster's workers decide"),
    (["--executor", "ray"], "Invalid value for '--executor'"),
])
def test_options_that_do_not_fit_the_executor(args, message):
    if "dask" in args:
        pytest.importorskip("distributed")
    result = run_cli("compare", "resnet18", *args)
    assert result.exit_code == 2 and message in result.output


def test_library_compare_on_dask(cluster, tiny):
    pytest.importorskip("pandas")
    import cnncost

    sweep = {"k": [3, 5, 7], "c": [4, 8]}
    local = cnncost.compare("tiny.yaml", sweep=sweep)
    dask = cnncost.compare("tiny.yaml", sweep=sweep, executor="dask",
                           address=cluster.scheduler_address)
    assert dask.equals(local) and len(local) == 6
