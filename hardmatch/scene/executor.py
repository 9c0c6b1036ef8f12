"""Who runs a stage's tasks: in this process, or on a Dask distributed cluster.

A scene stage (features of each image, matches of each block of pairs) is a list of independent
tasks. Both executors have one method, ``map_ordered(fn, tasks, names=None)``: it yields
``fn(task)`` for every task, in the order of ``tasks``, so the caller (the client) writes the
results to its files in a fixed order whoever ran them. A task that raises is retried
``retries`` times; if it still fails, ``map_ordered`` raises :class:`TaskFailed` naming the
item (``image 0003.jpg: ...``), one line, no traceback.

What a Dask worker needs (``--scheduler tcp://HOST:PORT``): the same hardmatch (and
dependencies) installed in its Python, the image folder and ``OUT`` at the same paths as the
client (a shared file system: tasks carry paths, not pixels), ``TORCH_HOME`` with the
AffNet/OriNet weights when a preset uses them, and a GPU only where ``--device`` asks for one
(one worker process with one thread per GPU node: ``dask worker tcp://HOST:PORT --nworkers 1
--nthreads 1``). ``fn`` must be picklable: a module-level function, or a
``functools.partial`` of one over picklable arguments (a config, paths).
"""

from __future__ import annotations

from collections import deque
from pathlib import PurePath
from typing import Callable, Hashable, Iterable, Iterator, Optional, Sequence

from ..core.errors import HardmatchError

_WORKER_CACHE: dict = {}


class TaskFailed(HardmatchError):
    """A task still failed after its retries; the message names the item and the last error.

    Exit code: the task's own when it raised a :class:`HardmatchError`, else 1."""

    exit_code = 1

    def __init__(self, name: str, error: BaseException) -> None:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.error = error
        if isinstance(error, HardmatchError):  # a bad image stays exit 3, a weights problem exit 4
            self.exit_code = error.exit_code


def worker_cached(key: Hashable, build: Callable[[], object]) -> object:
    """``build()`` once per process and key (a pipeline per worker, not per task)."""
    if key not in _WORKER_CACHE:
        _WORKER_CACHE[key] = build()
    return _WORKER_CACHE[key]


def task_name(task: object, index: int) -> str:
    """A readable name of a task for error messages: its ``.name``, a path's file name, the names
    of a tuple's path/str items joined by ``/`` (a pair), else ``task INDEX``."""
    if hasattr(task, "name") and isinstance(task.name, str):
        return task.name
    if isinstance(task, (str, PurePath)):
        return PurePath(task).name or str(task)
    if isinstance(task, (tuple, list)):
        parts = [PurePath(t).name for t in task if isinstance(t, (str, PurePath))]
        if parts:
            return "/".join(parts[:2]) + (f" (+{len(parts) - 2})" if len(parts) > 2 else "")
    return f"task {index}"


def _names(tasks: Sequence, names: Optional[Sequence[str]]) -> list:
    if names is None:
        return [task_name(t, i) for i, t in enumerate(tasks)]
    if len(names) != len(tasks):
        raise ValueError(f"{len(names)} names for {len(tasks)} tasks")
    return [str(n) for n in names]


class SerialExecutor:
    """Runs every task in this process, one after another (the default)."""

    def __init__(self, retries: int = 1) -> None:
        if retries < 0:
            raise ValueError(f"retries: expected >= 0, got {retries}")
        self.retries = retries

    @property
    def workers(self) -> int:
        return 1

    def map_ordered(self, fn: Callable, tasks: Iterable, names: Optional[Sequence[str]] = None) -> Iterator:
        """Yield ``fn(task)`` for each task in order; :class:`TaskFailed` after ``retries`` retries."""
        tasks = list(tasks)
        for task, name in zip(tasks, _names(tasks, names)):
            for attempt in range(self.retries + 1):
                try:
                    result = fn(task)
                    break
                except Exception as exc:  # any error of the task is retried, then reported
                    if attempt == self.retries:
                        raise TaskFailed(name, exc) from exc
            yield result

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return "SerialExecutor()"


class DaskExecutor:
    """Runs tasks on Dask distributed: an existing cluster (``scheduler='tcp://HOST:PORT'``) or a
    ``LocalCluster`` of ``workers`` processes with ``threads`` threads each, started here and
    closed by :meth:`close`.

    Tasks are submitted in order with at most ``window`` of them unfinished (results of a slow
    early task do not pile up on the workers); results are gathered in task order.
    """

    def __init__(self, scheduler: Optional[str] = None, workers: Optional[int] = None, threads: int = 1,
                 retries: int = 1, window: Optional[int] = None, timeout: float = 20.0) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - dask is a dependency
            raise HardmatchError(f"--scheduler/--workers need dask[distributed] ({exc})") from exc
        if (scheduler is None) == (workers is None):
            raise HardmatchError("DaskExecutor: give exactly one of scheduler (tcp://HOST:PORT) or workers (N)")
        if workers is not None and workers < 1:
            raise HardmatchError(f"--workers: expected >= 1, got {workers}")
        if retries < 0:
            raise HardmatchError(f"retries: expected >= 0, got {retries}")
        self.retries = retries
        self.cluster = None
        if workers is not None:
            import logging

            import signal
            import threading

            main_thread = threading.current_thread() is threading.main_thread()  # signals: main thread only
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main_thread else None  # workers inherit it
            try:
                self.cluster = LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True,
                                            dashboard_address=":0", silence_logs=logging.ERROR)
            except Exception as exc:  # workers are spawned: a script without a __main__ guard fails here
                raise HardmatchError(f"cannot start a local Dask cluster of {workers} workers ({exc}); "
                                     f"a script that starts one needs an `if __name__ == '__main__':` guard") from exc
            finally:
                if main_thread:
                    signal.signal(signal.SIGINT, previous)
            address = self.cluster
        else:
            address = scheduler
        try:
            self.client = Client(address, timeout=timeout)
            self.client.wait_for_workers(1, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            self.close()
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise HardmatchError(f"Dask scheduler {scheduler or 'LocalCluster'}: {why}") from exc
        self.window = window or max(4, 4 * self.workers)

    @property
    def workers(self) -> int:
        """Worker threads the cluster has now (at least 1)."""
        return max(1, sum(self.client.nthreads().values()))

    def map_ordered(self, fn: Callable, tasks: Iterable, names: Optional[Sequence[str]] = None) -> Iterator:
        """Yield ``fn(task)`` for each task in task order; :class:`TaskFailed` after ``retries`` retries."""
        tasks = list(tasks)
        names = _names(tasks, names)
        pending: deque = deque()
        following = iter(range(len(tasks)))
        try:
            for index in following:
                pending.append(self._submit(fn, tasks[index]))
                if len(pending) >= self.window:
                    break
            done = 0
            while pending:
                future = pending.popleft()
                try:
                    result = future.result()
                except Exception as exc:  # the task's own error, or a worker that died under it
                    raise TaskFailed(names[done], exc) from exc
                finally:
                    future.release()
                done += 1
                nxt = next(following, None)
                if nxt is not None:
                    pending.append(self._submit(fn, tasks[nxt]))
                yield result
        finally:
            for future in pending:
                future.cancel()

    def _submit(self, fn: Callable, task: object):
        return self.client.submit(fn, task, pure=False, retries=self.retries)

    def close(self) -> None:
        client, self.client = getattr(self, "client", None), None
        if client is not None:
            client.close()
        self._close_cluster()

    def _close_cluster(self) -> None:
        cluster, self.cluster = self.cluster, None
        if cluster is not None:
            cluster.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        where = "LocalCluster" if self.cluster is not None else getattr(self.client, "scheduler", "?")
        return f"DaskExecutor({where})"


def make_executor(scheduler: Optional[str] = None, workers: Optional[int] = None, retries: int = 1):
    """The executor the CLI options ask for: ``--scheduler`` (an existing Dask cluster),
    ``--workers N`` (a local Dask cluster of N single-thread processes), or neither (serial)."""
    if scheduler is not None and workers is not None:
        raise HardmatchError("give --scheduler or --workers, not both")
    if scheduler is not None:
        if not scheduler.strip():
            raise HardmatchError("--scheduler: expected an address like tcp://HOST:PORT")
        return DaskExecutor(scheduler=scheduler, retries=retries)
    if workers is not None:
        return DaskExecutor(workers=workers, retries=retries)
    return SerialExecutor(retries=retries)
