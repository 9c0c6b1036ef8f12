"""``hardmatch eval SCENE --reconstruct``: reconstructions judged against ground-truth cameras.

On a Strecha-layout scene (``images/`` + ``cameras/``), each pipeline (a label and a
:class:`~hardmatch.config.PipelineConfig`) reconstructs the scene's images with
:func:`hardmatch.scene.reconstruct.reconstruct` into ``OUT/<label>/``, and COLMAP's own SIFT
pipeline (:mod:`hardmatch.scene.colmap_sift`) reconstructs the same images into
``OUT/colmap-sift/``, in the same run. Each model is scored by :mod:`hardmatch.scene.accuracy`
(registered share, median/max rotation and position error after a similarity alignment, pair
mAA@10 over all pairs) and timed; the time ratio is a pipeline's seconds over COLMAP SIFT's.

Every run recomputes from scratch (the pipelines' folders are emptied first): the table compares
times, and a resumed run's time would not be one. Writes ``OUT/reconstruction.json`` (rows with
per-view errors) and ``OUT/reconstruction.md`` (the table); returns the rows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from ..core.errors import HardmatchError, NoModelError
from ..core.files import FolderLock, write_atomic
from ..datasets.strecha import read_strecha_views
from .accuracy import model_poses, reconstruction_accuracy
from .colmap_sift import run_colmap_sift
from .images import list_images
from .reconstruct import reconstruct

COLMAP_LABEL = "colmap-sift"
RESULTS_JSON = "reconstruction.json"
RESULTS_MD = "reconstruction.md"


def evaluate_reconstruction(scene: Path, pipelines: Sequence[tuple], out_dir: Path, executor=None,
                            colmap: bool = True, colmap_device: str = "cpu", bar=None,
                            warn: Callable[[str], None] = print, log: Callable[[str], None] = print,
                            colmap_shared_camera: bool = False) -> list:
    """Reconstruct ``scene`` with each ``(label, config)`` of ``pipelines`` and with COLMAP SIFT.

    Args:
        scene: Strecha-layout folder (``images/``, ``cameras/``); the ground truth.
        pipelines: ``(label, PipelineConfig)`` pairs, labels unique.
        out_dir: output folder (one subfolder per pipeline, ``colmap-sift/``, the reports).
        executor: runs features and matching (:mod:`hardmatch.scene.executor`; default serial).
        colmap: also run the COLMAP SIFT baseline.
        colmap_shared_camera: COLMAP SIFT with one camera for all images (default: one per image,
            COLMAP's own default).
        bar: progress factory handed to ``reconstruct`` (default: none).
        warn, log: where warnings (skipped images) and one line per finished run go.

    Returns:
        one row per run: ``pipeline``, ``registered``, ``views``, ``registered_share``,
        ``rotation_median_deg``, ``rotation_max_deg``, ``position_median``, ``position_max``,
        ``pair_maa``, ``pair_rotation_median_deg``, ``seconds`` (and ``stage_seconds``), ``time_ratio``
        (None without a COLMAP row or for it),
        ``reason`` (why no model), ``per_view``.
    """
    scene, out_dir = Path(scene), Path(out_dir)
    views = read_strecha_views(scene)
    image_dir = scene / "images"
    names = list_images(image_dir, skip=out_dir)
    labels = [label for label, _ in pipelines]
    if len(set(labels)) != len(labels) or COLMAP_LABEL in labels:
        raise HardmatchError(f"--pipeline: labels must be distinct and not {COLMAP_LABEL!r}, got {labels}")
    with FolderLock(out_dir, "eval --reconstruct"):  # a second run on OUT is refused at once (exit 5)
        return _evaluate_locked(scene, views, names, pipelines, out_dir, executor, colmap, colmap_device, bar,
                                warn, log, colmap_shared_camera)


def _evaluate_locked(scene: Path, views: list, names: list, pipelines: Sequence[tuple], out_dir: Path, executor,
                     colmap: bool, colmap_device: str, bar, warn: Callable[[str], None],
                     log: Callable[[str], None], colmap_shared_camera: bool = False) -> list:
    """The runs and reports of :func:`evaluate_reconstruction` in ``out_dir`` (locked by the caller)."""
    image_dir = scene / "images"
    rows = []
    for label, config in pipelines:
        work = _fresh(out_dir / _folder_name(label))
        options = {} if bar is None else {"bar": bar}
        start, stages = time.perf_counter(), {}
        try:
            summary = reconstruct(image_dir, work, config, executor=executor, warn=warn, **options)
            poses, reason, stages = _read_model(summary["model"]["model"]), "", summary["seconds"]
        except NoModelError as exc:
            poses, reason = None, str(exc)
        rows.append(report_row(label, poses, views, time.perf_counter() - start, reason, stages))
        log(row_line(rows[-1]))
    if colmap:
        result = run_colmap_sift(image_dir, _fresh(out_dir / COLMAP_LABEL), image_names=names, device=colmap_device,
                                  single_camera=colmap_shared_camera)
        poses = None if result.reconstruction is None else model_poses(result.reconstruction)
        rows.append(report_row(COLMAP_LABEL, poses, views, result.seconds, "" if poses else "no model: COLMAP made none",
                         {k: round(v, 2) for k, v in result.stage_seconds.items()}))
        log(row_line(rows[-1]))
        baseline = rows[-1]["seconds"]  # the ratio of the seconds as reported (rounded to 0.01 s)
        for row in rows[:-1]:
            row["time_ratio"] = row["seconds"] / baseline if baseline > 0 else None
    _write_reports(out_dir, scene, rows, names)
    return rows


def report_row(label: str, poses: Optional[dict], views: list, seconds: float, reason: str, stages: dict) -> dict:
    """One run's row: ``poses`` (``model_poses`` of its model, None without one) judged against the
    ground-truth ``views``, with its ``seconds``, the ``reason`` there is no model, and stage ``stages``."""
    accuracy = reconstruction_accuracy(poses, views)
    return {"pipeline": label, "registered": accuracy["registered"], "views": accuracy["views"],
            **{k: accuracy[k] for k in ("registered_share", "rotation_median_deg", "rotation_max_deg",
                                        "position_median", "position_max", "pair_maa",
                                        "pair_rotation_median_deg", "scale")},
            "seconds": round(seconds, 2), "stage_seconds": stages, "time_ratio": None, "reason": reason,
            "per_view": accuracy["per_view"]}


def _read_model(path: str) -> dict:
    import pycolmap

    return model_poses(pycolmap.Reconstruction(path))


def _folder_name(label: str) -> str:
    """A file-system-safe folder name for a pipeline label (``wide:nfeatures=4000`` -> ``wide_nfeatures=4000``)."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", label).strip("._") or "pipeline"


def _fresh(folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def _fmt(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def row_line(row: dict) -> str:
    """One line per run: registered, errors, mAA, seconds (and the reason when there is no model)."""
    line = (f"{row['pipeline']}: registered {row['registered']}/{row['views']}, rotation median "
            f"{_fmt(row['rotation_median_deg'], 2)} deg, position median {_fmt(row['position_median'], 4)}, "
            f"pair mAA@10 {row['pair_maa']:.3f}, {row['seconds']:.1f} s")
    return line + (f" ({row['reason']})" if row["reason"] else "")


def table_markdown(rows: Sequence[dict]) -> str:
    """The markdown table of :func:`evaluate_reconstruction` rows."""
    lines = ["| pipeline | registered | rot. median (deg) | rot. max (deg) | pos. median | pos. max | "
             "pair mAA@10 | pair rot. median (deg) | seconds | time / COLMAP SIFT |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['pipeline']} | {r['registered']}/{r['views']} | {_fmt(r['rotation_median_deg'], 2)} | "
                     f"{_fmt(r['rotation_max_deg'], 2)} | {_fmt(r['position_median'], 4)} | "
                     f"{_fmt(r['position_max'], 4)} | {r['pair_maa']:.3f} | "
                     f"{_fmt(r.get('pair_rotation_median_deg'), 3)} | {r['seconds']:.1f} | "
                     f"{_fmt(r['time_ratio'], 2)} |")
    return "\n".join(lines)


def _write_reports(out_dir: Path, scene: Path, rows: list, names: list) -> None:
    info = {"scene": str(scene), "images": names, "cpu_count": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    write_atomic(out_dir / RESULTS_JSON, json.dumps({**info, "rows": rows}, indent=1) + "\n")
    note = ("Positions in ground-truth units after a similarity (Umeyama) alignment of the camera centres; "
            "pair mAA@10 over all pairs of views (an unregistered view's pairs count as failures); pair rot. "
            "median: median relative-rotation error over the registered pairs, free of the alignment (which "
            "fixes the rotation about a line of few centres loosely).")
    write_atomic(out_dir / RESULTS_MD, f"# Reconstruction of {scene.name} ({len(names)} images)\n\n"
                                       f"{table_markdown(rows)}\n\n{note}\n")
