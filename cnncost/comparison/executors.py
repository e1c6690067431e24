"""Where the points of a sweep are analyzed: the engines `cnncost compare --executor` offers.

Each entry of :data:`EXECUTORS` opens a :class:`Pool`: a standard
:class:`concurrent.futures.Executor` and the number of tasks it runs at once (which sets
the chunk size in :func:`cnncost.comparison.compare.run`). cnncost schedules nothing
itself; it hands chunks of independent points to an engine that already does:

- ``local``: a process pool on this machine, ``--jobs`` processes (needs nothing);
- ``dask``: a dask.distributed cluster, through the client's own
  ``concurrent.futures`` executor (``Client.get_executor``): the scheduler at
  ``--address`` (``tcp://host:8786``), or without an address a cluster of ``--jobs``
  worker processes started on this machine for the run. Needs ``cnncost[dask]``
  (``distributed``), imported only when chosen.

A missing extra or a cluster that cannot be reached is a :class:`SpecError` (exit 2 in
the CLI) that says what to install or what failed, after at most the connect timeout.
Adding an engine (Ray, an MPI pool) is one function that yields a Pool and one line here.
"""

from __future__ import annotations

import socket

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from concurrent.futures import Executor

from ..errors import Loc, Problem, SpecError

CONNECT_TIMEOUT = 10.0  # seconds to reach a cluster's scheduler (--connect-timeout)


class Pool(NamedTuple):
    """An open executor, how many tasks it runs at once, and the most points per task."""

    executor: Executor
    workers: int
    # A task's overhead (pickling, and for dask the scheduler's round trip, about 3 ms of
    # a worker's CPU) against its points' (0.6 ms each for ResNet-50): bigger tasks for
    # dask. Fewer points than 4 tasks a worker would fill make smaller tasks.
    chunk: int = 64


class Engine(NamedTuple):
    """One `--executor` choice."""

    summary: str  # one line for --help and the docs
    extra: str  # the cnncost extra that installs it ("" when built in)
    open: Callable[[int, str | None, float], AbstractContextManager[Pool]]  # jobs, address, timeout
    available: Callable[[], Any] = lambda: None  # raises SpecError saying what to install


def _problem(message: str) -> SpecError:
    return SpecError([Problem(Loc(""), "--executor", message)])


@contextmanager
def _local(jobs: int, address: str | None, timeout: float) -> Iterator[Pool]:
    """A process pool of `jobs` processes on this machine."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=jobs) as pool:
        yield Pool(pool, jobs, chunk=64)


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise _problem(f"dask needs dask.distributed, which cannot be imported here ({exc}): "
                       "pip install 'cnncost[dask]' (or pip install distributed)") from None
    return distributed


def _reach(address: str, timeout: float) -> None:
    """Check that a dask scheduler answers at `address` within `timeout` seconds, before a
    Client is built: a Client waits without bound on a socket that accepts but does not
    speak dask. A plain TCP connection first (a refused port or an unknown host fails at
    once with the system's reason), then one `identity` call in dask's protocol, in an
    event loop of its own on a thread of its own (a caller's running loop, as in Jupyter,
    is left alone). OSError, ValueError or TimeoutError, with the reason, if not."""
    import asyncio
    import threading

    from distributed.comm import connect, parse_address, parse_host_port
    from distributed.comm.registry import get_backend

    scheme, location = parse_address(address)
    get_backend(scheme)  # ValueError naming the known schemes
    if scheme in ("tcp", "tls"):
        host, port = parse_host_port(location)
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except TimeoutError:
            raise TimeoutError(f"no answer within {timeout:g} s (--connect-timeout)") from None

    async def identity() -> Any:
        comm = await connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    answer: dict[str, Any] = {}

    def ask() -> None:
        try:
            answer["info"] = asyncio.run(asyncio.wait_for(identity(), timeout))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            answer["error"] = exc

    thread = threading.Thread(target=ask, name="cnncost-dask-probe", daemon=True)
    thread.start()
    thread.join(timeout + 5)  # wait_for ends it; a margin for the loop to close
    if "error" in answer:
        error = answer["error"]
        raise TimeoutError(f"no answer in dask's protocol within {timeout:g} s "
                           "(--connect-timeout)") if isinstance(error, TimeoutError) else error
    info = answer.get("info")
    if not isinstance(info, dict):
        raise TimeoutError(f"no answer in dask's protocol within {timeout:g} s "
                           "(--connect-timeout)")
    if info.get("type") != "Scheduler":
        raise ValueError(f"it answers as a dask {info.get('type', 'server')}, not the scheduler")


@contextmanager
def _dask(jobs: int, address: str | None, timeout: float) -> Iterator[Pool]:
    """The dask.distributed scheduler at `address`, or a local cluster of `jobs` processes."""
    distributed = _import_distributed()
    cluster = None
    try:
        if address:
            _reach(address, timeout)
            client = distributed.Client(address, timeout=timeout, set_as_default=False)
        else:
            cluster = distributed.LocalCluster(n_workers=jobs, threads_per_worker=1,
                                               processes=True, dashboard_address=":0")
            client = distributed.Client(cluster, timeout=timeout, set_as_default=False)
    except Exception as exc:  # noqa: BLE001 - any failure to connect is reported as such
        if cluster is not None:
            cluster.close()
        where = f"the dask scheduler at {address!r}" if address else "a local dask cluster"
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise SpecError([Problem(Loc(""), "--address" if address else "--executor",
                                 f"cannot reach {where}: {reason} (expected a running "
                                 "scheduler's address, such as tcp://host:8786)" if address
                                 else f"cannot start {where}: {reason}")]) from None
    try:
        workers = sum(client.nthreads().values())
        if workers < 1:
            raise _problem(f"the dask cluster at {address!r} has no workers")
        try:
            yield Pool(client.get_executor(pure=False), workers, chunk=256)
        except (OSError, distributed.KilledWorker) as exc:  # the cluster, not a point, failed
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise _problem(f"the dask cluster failed during the run: {reason}") from None
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


EXECUTORS: dict[str, Engine] = {
    "local": Engine("a process pool on this machine (--jobs processes)", "", _local),
    "dask": Engine("a dask.distributed cluster: the scheduler at --address, or --jobs local "
                   "worker processes", "dask", _dask, _import_distributed),
}


def check(name: str, jobs: int = 1, address: str | None = None) -> Engine:
    """The engine `name`, once the options fit it and its extra imports; SpecError if not."""
    engine = EXECUTORS.get(name)
    if engine is None:
        from ..errors import did_you_mean, one_of

        raise _problem(f"unknown executor {name!r}{did_you_mean(name, EXECUTORS)} "
                       f"(executors: {one_of(EXECUTORS)})")
    if address is not None and not engine.extra:
        raise SpecError([Problem(Loc(""), "--address", f"is for a cluster (--executor "
                                 f"{' or '.join(n for n, e in EXECUTORS.items() if e.extra)}); "
                                 f"--executor {name} runs on this machine")])
    if address is not None and jobs > 1:
        raise SpecError([Problem(Loc(""), "--jobs", "with --address, the cluster's workers "
                                 "decide how many points run at once; drop --jobs")])
    if engine.extra:
        engine.available()
    return engine


def open_pool(name: str, jobs: int = 1, address: str | None = None,
              timeout: float = CONNECT_TIMEOUT) -> AbstractContextManager[Pool]:
    """The Pool of executor `name` (a key of EXECUTORS), checked by :func:`check`."""
    return check(name, jobs, address).open(jobs, address, timeout)


__all__ = ["CONNECT_TIMEOUT", "EXECUTORS", "Engine", "Pool", "open_pool"]
