"""The tile reader's worker processes: one process per lane, state built once, gone with the parent.

:class:`LanePool` runs ``n`` lanes of tasks (:mod:`tiling.store.lanes`), each in its own
single-process :class:`concurrent.futures.ProcessPoolExecutor`. Lane ``i``'s tasks always run in
process ``i``, in order, so what a process keeps from one task to the next (an open raster, the
row buffer that the next task of its lane continues) is reused by construction, whatever the
executor's dispatch: with one shared pool, a lane's next task goes to whichever process takes it
from the queue first. A killed process breaks only its executor, which raises
``BrokenProcessPool`` for its task (``multiprocessing.Pool`` would wait for the task forever).

Each process runs :func:`_start_worker` once (the pool initializer): it caps GDAL's block cache
(:func:`tiling.sources.gdal.configure_gdal`), starts :func:`watch_parent`, and builds the
process's state object with the factory it is given; every task is then ``state.run(task)``.
The state lives in one module slot of the worker process (:data:`_STATE`) because a task call
must find it; the parent never sets it.

Workers exit when the parent dies: a ``multiprocessing`` worker waiting for its next task holds
the queue's write end itself, so it would wait forever after a ``kill -9`` of the parent. The
watchdog thread polls the parent's pid every :data:`PARENT_POLL_S` seconds and ends the process
once the parent is gone (its pid changed: the orphan was adopted by init or a subreaper).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Protocol

from tiling.sources.gdal import configure_gdal

#: Seconds between two checks that the parent process is alive.
PARENT_POLL_S = 0.5
#: Exit status of a worker whose parent died.
ORPHAN_EXIT = 3


class WorkerState(Protocol):
    """What a worker process keeps between tasks; ``run`` does one task, ``close`` frees it."""

    def run(self, task: Any) -> Any:
        """Do one task in this process; its result goes back to the parent."""
        ...

    def close(self) -> None:
        """Close what the state opened."""
        ...


_STATE: WorkerState | None = None


def watch_parent(parent: int, interval: float = PARENT_POLL_S) -> threading.Thread:
    """Start a daemon thread that ends this process (``os._exit``) once ``parent`` is gone.

    Args:
        parent: the parent's pid as the parent saw it (``os.getpid()`` there).
        interval: seconds between checks.

    Returns:
        The started thread.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(ORPHAN_EXIT)  # no clean-up: the parent that would collect the results is gone

    thread = threading.Thread(target=watch, name="parent-watchdog", daemon=True)
    thread.start()
    return thread


def _start_worker(factory: Callable[[], WorkerState], cache_mb: int, parent: int) -> None:
    """Pool initializer: GDAL cache, parent watchdog, then the process's state."""
    global _STATE
    configure_gdal(cache_mb, override=True)
    watch_parent(parent)
    _STATE = factory()


def _run(task: Any) -> Any:
    """A task in a worker process: ``state.run(task)``."""
    if _STATE is None:
        raise RuntimeError("worker state missing: tasks run only in LanePool processes")
    return _STATE.run(task)


class LanePool:
    """``n`` worker processes, one per lane (a context manager that shuts them down).

    Args:
        n: lanes, at least 1.
        factory: builds a process's state (picklable: a class or a module-level function).
        cache_mb: GDAL block cache of each process, in MB.
        context: ``multiprocessing`` start method (``"spawn"``: workers import only what the
            tasks need).
    """

    def __init__(
        self, n: int, factory: Callable[[], WorkerState], *, cache_mb: int, context: str
    ) -> None:
        ctx = multiprocessing.get_context(context)
        args = (factory, cache_mb, os.getpid())
        self.executors = [ProcessPoolExecutor(1, ctx, _start_worker, args) for _ in range(n)]

    def submit(self, lane: int, task: Any) -> Future:
        """Run ``task`` in lane ``lane``'s process (after the lane's earlier tasks)."""
        return self.executors[lane].submit(_run, task)

    def shutdown(self) -> None:
        """Cancel the tasks not started, wait for the running ones, end the processes."""
        for executor in self.executors:
            executor.shutdown(wait=False, cancel_futures=True)
        for executor in self.executors:
            executor.shutdown(wait=True)

    def __enter__(self) -> LanePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
