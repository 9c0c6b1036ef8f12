"""Batch evaluation: every pipeline on every pair of a two-view dataset, judged against ground truth.

:func:`evaluate` runs pipelines (given as spec strings, see
:func:`~hardmatch.evaluation.specs.parse_pipeline_spec`) on the
:class:`~hardmatch.datasets.spec.PairSpec` list of a dataset, judges each estimated model with
:func:`~hardmatch.datasets.scoring.judge` and writes into ``out_dir``:

``results.jsonl``
    one JSON object per finished (pipeline, pair) row, appended and flushed as soon as the row
    is done, so a killed run keeps its work; a later run with ``resume=True`` skips the rows
    already there (same dataset, pipeline label, pair name and geometry).
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

from ..datasets.spec import GEOMETRIES, PairSpec
from .progress import Progress
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
) -> list:
    """Run every pipeline on every pair, judge, and write the results and summaries into ``out_dir``.

    Args:
        pairs: the dataset's pairs (:func:`~hardmatch.datasets.registry.read_dataset`).
        pipelines: spec strings (``"fast"``, ``"default:nfeatures=1000"``) or parsed specs.
        out_dir: output folder (created).
        workers: processes; > 1 uses a spawn-context process pool, each worker with
            ``cpu_count // workers`` torch threads.
        resume: reuse rows already in ``out_dir/results.jsonl`` (same dataset name, pipeline label,
            pair name and geometry); False starts the file afresh.
        progress: draw a progress bar on stderr.
        dataset_name: the ``dataset`` column (default: name of the first pair's image folder).
        geometry: force this model for every pipeline whose spec does not set ``geometry``;
            None estimates each pair's ground-truth geometry.

    Returns:
        ``list[dict]``: the rows, pipeline-major in the order of ``pipelines`` and ``pairs``.
    """
    if geometry is not None and geometry not in GEOMETRIES:
        raise ValueError(f"geometry must be one of {', '.join(GEOMETRIES)}, got {geometry!r}")
    specs = parse_pipeline_specs(pipelines)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dataset = dataset_name or _default_dataset_name(pairs)
    tasks = [Task(dataset, spec, pair, resolve_geometry(spec, pair, geometry)) for spec in specs for pair in pairs]
    done = load_results(out / RESULTS_JSONL) if resume else {}
    todo = [task for task in tasks if not _reusable(done.get(task.key), task)]
    started = time.perf_counter()
    runner = Runner()
    runner.prepare(todo)  # configuration errors surface here, before the progress bar
    with ResultsWriter(out / RESULTS_JSONL, fresh=not resume) as writer, Progress(todo, progress, dataset) as bar:
        for row in run_tasks(todo, workers, on_start=bar.show, runner=runner):
            writer.write(row)
            done[row_key(row)] = row
            bar.advance(row)
    rows = [done[task.key] for task in tasks]
    run_info = {"dataset": dataset, "pairs": len(pairs), "rows": len(rows), "computed": len(todo),
                "resumed": len(tasks) - len(todo), "workers": workers,
                "wall_s": round(time.perf_counter() - started, 3)}
    write_outputs(rows, out, [s.label for s in specs], run_info)
    return rows


def _reusable(row: Optional[dict], task: Task) -> bool:
    """Whether a stored row answers ``task`` (it exists and estimated the same geometry)."""
    return row is not None and row.get("geometry") == task.geometry


def _default_dataset_name(pairs: Sequence[PairSpec]) -> str:
    return Path(pairs[0].image1).parent.name if pairs else "dataset"
