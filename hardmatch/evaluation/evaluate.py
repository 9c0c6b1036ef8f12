"""Batch evaluation: every pipeline on every pair of a two-view dataset, judged against ground truth.

:func:`evaluate` runs pipelines (given as spec strings, see
:func:`~hardmatch.evaluation.specs.parse_pipeline_spec`) on the
:class:`~hardmatch.datasets.spec.PairSpec` list of a dataset, judges each estimated model with
:func:`~hardmatch.datasets.scoring.judge` and writes into ``out_dir``:

``results.jsonl``
    one JSON object per finished (pipeline, pair) row, appended and flushed as soon as the row
    is done, so a killed run keeps its work; a later run with ``resume=True`` skips the rows
    already there (same dataset, pipeline label, pair name and geometry, and the same ``source``:
    what the row was computed from, :mod:`hardmatch.evaluation.provenance`). The folder holds one
    dataset and one run at a time (:class:`~hardmatch.core.files.FolderLock`).
``results.csv``
    the rows of this run's pipelines and pairs (resumed and computed), one line each.
``summary.json`` / ``summary.md``
    one entry per pipeline: matched / total pairs, mean inliers over matched pairs, total
    time and median time per pair (the layout of MODS paper, Table 3).
``summary.png``
    bars comparing the pipelines (matched pairs, mean inliers, median time), drawn with OpenCV.

A row is a flat dict (:mod:`hardmatch.evaluation.rows`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional, Sequence, Union

from ..core.files import FolderLock
from ..datasets.spec import GEOMETRIES, PairSpec
from .progress import Progress
from .provenance import check_same_dataset, dataset_root_of, reusable, task_source
from .report import write_outputs
from .rows import row_key
from .runner import Runner, run_tasks
from .specs import PipelineSpec, Task, parse_pipeline_specs, resolve_geometry
from .store import RESULTS_JSONL, ResultsWriter, load_results


def evaluate(
    pairs: Sequence[PairSpec],
    pipelines: Sequence[Union[str, PipelineSpec]],
    out_dir: Union[str, os.PathLike],
    workers: int = 1,
    resume: bool = True,
    progress: bool = True,
    dataset_name: Optional[str] = None,
    geometry: Optional[str] = None,
    dataset_root: Optional[Union[str, os.PathLike]] = None,
) -> list:
    """Run every pipeline on every pair, judge, and write the results and summaries into ``out_dir``.

    Args:
        pairs: the dataset's pairs (:func:`~hardmatch.datasets.registry.read_dataset`).
        pipelines: spec strings (``"fast"``, ``"default:nfeatures=1000"``) or parsed specs.
        out_dir: output folder (created).
        workers: processes; > 1 uses a spawn-context process pool, each worker with
            ``cpu_count // workers`` torch threads.
        resume: reuse rows already in ``out_dir/results.jsonl`` (same dataset name, pipeline label,
            pair name and geometry, computed from the same ``source``: dataset root, image files,
            ground truth and configuration); False starts the file afresh.
        progress: draw a progress bar on stderr.
        dataset_name: the ``dataset`` column (default: name of the first pair's image folder).
        geometry: force this model for every pipeline whose spec does not set ``geometry``;
            None estimates each pair's ground-truth geometry.
        dataset_root: the dataset folder or pairs file, recorded in every row's ``source``
            (:mod:`hardmatch.evaluation.provenance`); default: the common folder of the images.

    Raises:
        OutputError: (exit 5) ``out_dir`` is in use by another run, or holds another dataset's
            results (with ``resume`` False too: they are never truncated).

    Returns:
        ``list[dict]``: the rows, pipeline-major in the order of ``pipelines`` and ``pairs``.
    """
    if geometry is not None and geometry not in GEOMETRIES:
        raise ValueError(f"geometry must be one of {', '.join(GEOMETRIES)}, got {geometry!r}")
    specs = parse_pipeline_specs(pipelines)
    out = Path(out_dir)
    dataset = dataset_name or _default_dataset_name(pairs)
    root = str(Path(dataset_root).resolve()) if dataset_root is not None else dataset_root_of(pairs)
    tasks = [Task(dataset, spec, pair, resolve_geometry(spec, pair, geometry)) for spec in specs for pair in pairs]
    with FolderLock(out, "eval"):  # a second run on the same folder is refused at once (exit 5)
        started = time.perf_counter()
        rows, computed = _run(tasks, out, root, workers, resume, progress, dataset)
        run_info = {"dataset": dataset, "dataset_root": root, "pairs": len(pairs), "rows": len(rows),
                    "computed": computed, "resumed": len(tasks) - computed, "workers": workers,
                    "wall_s": round(time.perf_counter() - started, 3)}
        write_outputs(rows, out, [s.label for s in specs], run_info)
    return rows


def _run(tasks: Sequence[Task], out: Path, root: str, workers: int, resume: bool, progress: bool,
         dataset: str) -> tuple[list, int]:
    """Compute the rows of ``tasks`` that ``out/results.jsonl`` cannot answer and append them;
    returns ``(rows in task order, how many were computed)``. Another dataset's results there are
    refused before anything is read for reuse or truncated."""
    stored = load_results(out / RESULTS_JSONL)
    check_same_dataset(stored.values(), root, out / RESULTS_JSONL)
    done = stored if resume else {}
    sources = {task.key: task_source(task, root) for task in tasks}
    todo = [task for task in tasks if not reusable(done.get(task.key), task, sources[task.key])]
    runner = Runner()
    runner.prepare(todo)  # configuration errors surface here, before the progress bar
    with ResultsWriter(out / RESULTS_JSONL, fresh=not resume) as writer, Progress(todo, progress, dataset) as bar:
        for row in run_tasks(todo, workers, on_start=bar.show, runner=runner):
            row["source"] = sources[row_key(row)]
            writer.write(row)
            done[row_key(row)] = row
            bar.advance(row)
    return [done[task.key] for task in tasks], len(todo)


def _default_dataset_name(pairs: Sequence[PairSpec]) -> str:
    return Path(pairs[0].image1).parent.name if pairs else "dataset"
