"""Result rows of an evaluation: one flat dict per (pipeline, pair).

A row has the keys of :data:`BASE_COLUMNS`, one ``time_<stage>`` key per stage timing of the
pipeline (seconds) and ``reason`` (empty for a matched pair; why not otherwise). ``error_px``
is None when no model was found (infinite error). Rows of non-matching pairs also carry
``negative`` and ``false_accept``.
"""

from __future__ import annotations

import math

from ..datasets.scoring import F_THRESHOLD_PX, H_THRESHOLD_PX
from ..core.errors import HardmatchError
from .specs import Task

#: Columns every row has, in output order; ``time_<stage>`` columns and ``reason`` follow.
BASE_COLUMNS = ("dataset", "pair", "pipeline", "geometry", "matched", "error_px", "inliers", "tentative",
                "features1", "features2", "step", "time_total")

#: ``reason`` of a row whose pair raised a :class:`HardmatchError` starts with this.
ERROR_PREFIX = "error: "


def row_key(row: dict) -> tuple:
    """``(dataset, pipeline, pair)``: what makes a row unique in ``results.jsonl``."""
    return (row.get("dataset"), row.get("pipeline"), row.get("pair"))


def _row_head(task: Task, geometry: str) -> dict:
    return {"dataset": task.dataset, "pair": task.pair.name, "pipeline": task.pipeline.label, "geometry": geometry}


def result_row(task: Task, result, geometry: str, matched: bool, error: float) -> dict:
    """Row of a pair the pipeline ran on."""
    timings = dict(getattr(result, "timings", {}) or {})
    row = _row_head(task, geometry)
    row.update({
        "matched": bool(matched),
        "error_px": round(float(error), 4) if math.isfinite(error) else None,
        "inliers": int(result.num_inliers),
        "tentative": int(result.num_matches),
        "features1": int(result.num_features[0]),
        "features2": int(result.num_features[1]),
        "step": getattr(result, "step", None),
        "time_total": round(float(timings.pop("total", 0.0)), 4),
    })
    row.update({f"time_{stage}": round(float(seconds), 4) for stage, seconds in timings.items()})
    row["reason"] = _reason(result, geometry, matched, error)
    if task.pair.negative:
        row["negative"] = True
        row["false_accept"] = result.model is not None
        if result.model is not None:
            row["reason"] = "false accept: a model for a non-matching pair"
    return row


def _reason(result, geometry: str, matched: bool, error: float) -> str:
    """Why a pair is not matched ("" when it is)."""
    if matched:
        return ""
    if result.model is None:
        return result.reason or "no model found"
    threshold = H_THRESHOLD_PX if geometry == "homography" else F_THRESHOLD_PX
    shown = f"{error:.2f} px" if math.isfinite(error) else "infinite"
    return f"{geometry} error {shown} > {threshold:g} px"


def error_row(task: Task, exc: HardmatchError, seconds: float) -> dict:
    """Row of a pair that raised a :class:`HardmatchError`."""
    row = _row_head(task, task.geometry)
    row.update({"matched": False, "error_px": None, "inliers": 0, "tentative": 0, "features1": 0, "features2": 0,
                "step": None, "time_total": round(seconds, 4), "reason": ERROR_PREFIX + " ".join(str(exc).split())})
    return row
