"""What an evaluation row was computed from, and which output folder a dataset gets by default.

Every row of ``results.jsonl`` carries ``source`` (:func:`task_source`):

``dataset_root``
    the resolved dataset folder or pairs file;
``image1``, ``image2``
    each image's resolved path, size and ``mtime_ns`` (a cheap identity of its content; a missing
    file is recorded as missing);
``truth``
    a hash of the pair's ground truth (geometry, H, points, cameras, negative flag);
``config``
    a hash of the pipeline's resolved :class:`~hardmatch.twoview.config.PipelineConfig`.

A resumed run reuses a row only when its ``source`` equals the task's (:func:`reusable`). An output
folder holds one dataset: a run of another dataset into it (resumed or ``--no-resume``) is refused
with one line (:func:`check_same_dataset`, exit 5), so neither a report nor a truncation ever
touches another dataset's results. The default folder (:func:`default_out_dir`) is
``eval-out/<stem>-<8 hex digits of the resolved dataset path>``: two datasets of one name get two.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import numpy as np

from ..core.errors import OutputError
from .specs import Task

#: Parent of the default output folders.
DEFAULT_PARENT = Path("eval-out")
#: Hex digits of the dataset path's hash in a default folder name.
HASH_DIGITS = 8
#: Ground-truth fields of a :class:`~hardmatch.datasets.spec.PairSpec` that a row's judgement depends on.
TRUTH_FIELDS = ("geometry", "H", "points", "negative", "K1", "K2", "R", "t")


def _short_hash(text: str, digits: int = 16) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:digits]


def default_out_dir(dataset: Union[str, os.PathLike]) -> Path:
    """``eval-out/<stem>-<hash>`` of a dataset folder or pairs file (hash of its resolved path)."""
    resolved = Path(dataset).resolve()
    stem = resolved.stem if resolved.is_file() else resolved.name
    return DEFAULT_PARENT / f"{stem or 'dataset'}-{_short_hash(str(resolved), HASH_DIGITS)}"


def dataset_root_of(pairs: Sequence) -> str:
    """The folder holding every image of ``pairs`` (their common resolved parent), for callers
    that give no dataset root."""
    parents = [str(Path(p).resolve().parent) for pair in pairs for p in (pair.image1, pair.image2)]
    return os.path.commonpath(parents) if parents else ""


def file_identity(path: Union[str, os.PathLike]) -> dict:
    """``{"path", "size", "mtime_ns"}`` of a file (resolved path), or ``{"path", "missing": True}``."""
    resolved = Path(path).resolve()
    try:
        stat = resolved.stat()
    except OSError:
        return {"path": str(resolved), "missing": True}
    return {"path": str(resolved), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def truth_hash(pair) -> str:
    """A hash of the pair's ground truth (:data:`TRUTH_FIELDS`); arrays hashed by their float64 values."""
    digest = hashlib.sha256()
    for name in TRUTH_FIELDS:
        value = getattr(pair, name, None)
        digest.update(name.encode())
        if value is None or isinstance(value, (str, bool)):
            digest.update(repr(value).encode())
        else:
            array = np.ascontiguousarray(value, dtype=np.float64)
            digest.update(repr(array.shape).encode() + array.tobytes())
    return digest.hexdigest()[:16]


def config_hash(spec) -> str:
    """A hash of the resolved configuration of a :class:`~hardmatch.evaluation.specs.PipelineSpec`."""
    return _short_hash(json.dumps(asdict(spec.config), sort_keys=True, default=str))


def task_source(task: Task, dataset_root: str) -> dict:
    """The ``source`` of the row ``task`` makes (see the module note)."""
    return {"dataset_root": dataset_root, "image1": file_identity(task.pair.image1),
            "image2": file_identity(task.pair.image2), "truth": truth_hash(task.pair),
            "config": config_hash(task.pipeline)}


def reusable(row: Optional[dict], task: Task, source: dict) -> bool:
    """Whether a stored row answers ``task``: same geometry and computed from the same ``source``."""
    return row is not None and row.get("geometry") == task.geometry and row.get("source") == source


def check_same_dataset(rows: Iterable[dict], dataset_root: str, results: Path) -> None:
    """:class:`OutputError` (exit 5) when ``results`` (its ``rows``) holds rows of another dataset root.
    Rows without a ``source`` (older versions) name no dataset: they are never reused, never refused."""
    others = sorted({row["source"].get("dataset_root") for row in rows if isinstance(row.get("source"), dict)}
                    - {dataset_root})
    if others:
        raise OutputError(f"{results} holds results of another dataset ({others[0]}); use another --out "
                          f"folder (or the default, one per dataset), or delete {results.parent} to start afresh")
