"""Aggregating an evaluation's rows: one summary dict per pipeline (the layout of the MODS paper,
Table 3: matched / total pairs, mean inliers over matched pairs, total and median time)."""

from __future__ import annotations

import statistics
from typing import Optional, Sequence

import numpy as np

from .pose import summarize_poses
from .rows import ERROR_PREFIX


def summarize(rows: Sequence[dict], pipelines: Optional[Sequence[str]] = None) -> list:
    """One dict per pipeline (order of ``pipelines``, else of first appearance in ``rows``).

    Keys: ``pipeline``, ``pairs`` (rows), ``matched``, ``matched_ratio``, ``mean_inliers``
    (over matched pairs, None if none matched), ``total_time_s``, ``median_time_s`` (per
    pair), ``errors`` (rows whose pair raised an error) and ``steps`` (matched pairs per
    ``step``, empty when the pipeline reports no steps); with calibrated pairs also the pose keys
    of :func:`~hardmatch.evaluation.pose.summarize_poses` (mAA@5/10/20, wrong poses).
    """
    labels = list(pipelines) if pipelines is not None else list(dict.fromkeys(r["pipeline"] for r in rows))
    return [_summarize_one(label, [r for r in rows if r["pipeline"] == label]) for label in labels]


def _summarize_one(label: str, rows: Sequence[dict]) -> dict:
    matched = [r for r in rows if r["matched"]]
    times = [float(r["time_total"]) for r in rows if r.get("time_total") is not None]
    steps: dict = {}
    for r in matched:
        if r.get("step") is not None:
            steps[r["step"]] = steps.get(r["step"], 0) + 1
    return {
        "pipeline": label,
        "pairs": len(rows),
        "matched": len(matched),
        "matched_ratio": round(len(matched) / len(rows), 4) if rows else None,
        "mean_inliers": round(float(np.mean([r["inliers"] for r in matched])), 1) if matched else None,
        "total_time_s": round(sum(times), 3),
        "median_time_s": round(statistics.median(times), 3) if times else None,
        "errors": sum(1 for r in rows if str(r.get("reason", "")).startswith(ERROR_PREFIX)),
        "steps": steps,
        "negatives": sum(1 for r in rows if r.get("negative")),
        "false_accepts": sum(1 for r in rows if r.get("false_accept")),
        **summarize_poses(rows),
    }
