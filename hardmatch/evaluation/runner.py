"""Running evaluation tasks: one pipeline on one pair, matched and judged into a row; serially or
in a spawn-context process pool."""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Iterable, Iterator, Optional, Sequence

import cv2

from ..datasets.scoring import judge
from ..core.errors import HardmatchError
from .feature_cache import FeatureCache, match_with_cache
from .pose import no_pose, pose_row
from .rows import error_row, result_row
from .specs import PipelineSpec, Task


class Runner:
    """Runs tasks, building one matcher per (label, geometry) and reusing it, and extracting each
    image once per feature configuration (:class:`~hardmatch.evaluation.feature_cache.FeatureCache`)."""

    def __init__(self) -> None:
        self._pipelines: dict = {}
        self.features = FeatureCache()

    def pipeline(self, spec: PipelineSpec, geometry: str):
        """The cached pipeline of ``spec`` estimating ``geometry``."""
        key = (spec.label, geometry)
        if key not in self._pipelines:
            self._pipelines[key] = build_pipeline(spec, geometry)
        return self._pipelines[key]

    def prepare(self, tasks: Iterable[Task]) -> None:
        """Build the pipelines ``tasks`` need now, so that a bad configuration (e.g. missing weights)
        fails before any pair runs."""
        for task in tasks:
            self.pipeline(task.pipeline, task.geometry)

    def run(self, task: Task) -> dict:
        """Match and judge one pair -> row dict. A :class:`HardmatchError` of the pair (unreadable
        image, missing ground truth) becomes a row with ``matched=False``; errors building the
        pipeline (bad weights) propagate."""
        pipeline = self.pipeline(task.pipeline, task.geometry)
        t0 = time.perf_counter()
        try:
            result = match_with_cache(pipeline, task.pair, self.features)
            geometry = getattr(result, "geometry", task.geometry)
            if task.pair.calibrated:  # judged by the pose error against the true cameras
                return pose_row(task, result, geometry)
            matched, error = judge(task.pair, result.model, geometry, _image_sizes(result))
        except HardmatchError as exc:
            row = error_row(task, exc, time.perf_counter() - t0)
            return {**row, **no_pose()} if task.pair.calibrated else row
        return result_row(task, result, geometry, matched, error)


def build_pipeline(spec: PipelineSpec, geometry: str):
    """The matcher of ``spec`` (:func:`~hardmatch.twoview.api.build_matcher`) with ``geometry`` set."""
    from ..twoview.api import build_matcher

    options = dict(spec.options)
    options["geometry"] = geometry
    return build_matcher(spec.preset, **options)


def _image_sizes(result) -> Optional[tuple]:
    """``((w1, h1), (w2, h2))`` from the result's features, or None (judge then reads the files)."""
    f1, f2 = getattr(result, "features1", None), getattr(result, "features2", None)
    if f1 is None or f2 is None:
        return None
    (h1, w1), (h2, w2) = f1.image_shape[:2], f2.image_shape[:2]
    return (int(w1), int(h1)), (int(w2), int(h2))


# ---- process pool -------------------------------------------------------------------------------

_WORKER_RUNNER: Optional[Runner] = None


def _worker_init(threads: int) -> None:
    """Pool initializer: split the CPU cores between the workers, start an empty pipeline cache.

    torch is not imported for it (the CPU path runs without torch): ``OMP_NUM_THREADS`` sets the
    threads of ONNX Runtime (:func:`hardmatch.core.lazytorch.cpu_threads`) and of torch if a pipeline
    imports it later."""
    global _WORKER_RUNNER
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    cv2.setNumThreads(threads)
    _WORKER_RUNNER = Runner()


def _worker_run(task: Task) -> dict:
    assert _WORKER_RUNNER is not None, "worker not initialised"
    return _WORKER_RUNNER.run(task)


def run_tasks(tasks: Sequence[Task], workers: int = 1, on_start=None, runner: Optional[Runner] = None
              ) -> Iterator[dict]:
    """Rows of ``tasks`` as they finish: in order with ``workers=1``, else completion order from a
    spawn-context process pool. ``on_start(task)`` is called before a serial task runs; serial
    runs use ``runner`` (and its cached pipelines) when given."""
    if workers <= 1 or len(tasks) <= 1:
        runner = runner if runner is not None else Runner()
        for task in tasks:
            if on_start is not None:
                on_start(task)
            yield runner.run(task)
        return
    yield from _run_pool(tasks, workers)


def _run_pool(tasks: Sequence[Task], workers: int) -> Iterator[dict]:
    threads = max(1, (os.cpu_count() or 1) // workers)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_init, initargs=(threads,))
    try:
        pending = {pool.submit(_worker_run, task) for task in tasks}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
    except BaseException:  # Ctrl-C or the caller stopping: end the workers now, not after their pairs
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
