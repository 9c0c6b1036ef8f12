"""Reports of an evaluation: ``results.csv``, ``summary.json``, ``summary.md`` (markdown table)
and ``summary.png`` (bars drawn with OpenCV)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

from ..core.errors import HardmatchError
from .pose import pose_cells
from .rows import BASE_COLUMNS
from .store import (
    RESULTS_CSV,
    RESULTS_JSONL,
    SUMMARY_JSON,
    SUMMARY_MD,
    SUMMARY_PNG,
    write_atomic,
)
from .summary import summarize


def write_outputs(rows: Sequence[dict], out_dir: Path, pipelines: Sequence[str], run_info: dict) -> list:
    """Write ``results.csv``, ``summary.json``, ``summary.md`` and ``summary.png``; returns the summary."""
    summary = summarize(rows, pipelines)
    write_atomic(out_dir / RESULTS_CSV, rows_to_csv(rows))
    write_atomic(out_dir / SUMMARY_JSON, json.dumps({**run_info, "pipelines": summary}, indent=1) + "\n")
    write_atomic(out_dir / SUMMARY_MD, summary_markdown(summary, run_info))
    image = draw_summary(summary, title=f"{run_info.get('dataset', '')}: {run_info.get('pairs', 0)} pairs")
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise HardmatchError(f"{out_dir / SUMMARY_PNG}: cannot encode the summary plot")
    write_atomic(out_dir / SUMMARY_PNG, encoded.tobytes())
    return summary


#: Row keys kept out of the CSV: ``source`` (what the row was computed from) is nested; results.jsonl has it.
NOT_IN_CSV = ("reason", "source")


def csv_columns(rows: Sequence[dict]) -> list:
    """:data:`BASE_COLUMNS`, then every ``time_<stage>`` in order of first appearance, other keys, ``reason``."""
    columns = list(BASE_COLUMNS)
    for row in rows:
        columns.extend(k for k in row if k not in columns and k not in NOT_IN_CSV)
    return columns + ["reason"]


def rows_to_csv(rows: Sequence[dict]) -> str:
    """The rows as CSV text (None -> empty cell)."""
    buffer = io.StringIO()
    columns = csv_columns(rows)
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items() if k in columns})
    return buffer.getvalue()


def _fmt(value, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def summary_table(summary: Sequence[dict]) -> str:
    """Markdown table, one row per pipeline (extra columns for errors, steps, non-matching pairs and
    pose accuracy when there are any)."""
    with_errors = any(s["errors"] for s in summary)
    with_steps = any(s["steps"] for s in summary)
    with_negatives = any(s.get("negatives") for s in summary)
    header = ["pipeline", "matched", "mean inliers (matched)", "total time [s]", "median time / pair [s]"]
    header += ["errors"] * with_errors + ["matched per step"] * with_steps
    header += ["false accepts (non-matching pairs)"] * with_negatives
    with_pose = any("maa10" in s for s in summary)  # calibrated pairs: judged by the pose error
    header += ["pose mAA@5 / @10 / @20", "wrong poses (> 10 deg, reported)"] * with_pose
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for s in summary:
        cells = [s["pipeline"], f"{s['matched']}/{s['pairs']}", _fmt(s["mean_inliers"]), _fmt(s["total_time_s"]),
                 _fmt(s["median_time_s"], 2)]
        cells += [str(s["errors"])] * with_errors
        cells += [", ".join(f"{k}: {v}" for k, v in s["steps"].items()) or "-"] * with_steps
        cells += [f"{s.get('false_accepts', 0)}/{s.get('negatives', 0)}"] * with_negatives
        if with_pose:
            cells += pose_cells(s)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def summary_markdown(summary: Sequence[dict], run_info: dict) -> str:
    """``summary.md``: a heading, the run counts and :func:`summary_table`."""
    head = (f"## Evaluation: {run_info.get('dataset', '')}\n\n"
            f"{run_info.get('pairs', 0)} pairs x {len(summary)} pipeline(s); this run computed "
            f"{run_info.get('computed', 0)} rows and resumed {run_info.get('resumed', 0)} from {RESULTS_JSONL} "
            f"in {run_info.get('wall_s', 0.0):.1f} s.\n\n")
    return head + summary_table(summary)


# ---- plot ---------------------------------------------------------------------------------------

_PALETTE = ((180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148), (75, 86, 140),
            (194, 119, 227), (127, 127, 127), (34, 189, 188), (207, 190, 23))
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_ROW_H, _PANEL_W, _MARGIN = 30, 260, 16


def draw_summary(summary: Sequence[dict], title: str = "") -> np.ndarray:
    """BGR uint8 image: one horizontal bar per pipeline in three panels (matched pairs, mean
    inliers over matched pairs, median seconds per pair)."""
    labels = [s["pipeline"] for s in summary]
    label_w = max([_text_width(t, 0.5) for t in labels] + [60]) + 2 * _MARGIN
    panels = [
        ("matched pairs", [s["matched"] for s in summary], max([s["pairs"] for s in summary] + [1]),
         [f"{s['matched']}/{s['pairs']}" for s in summary]),
        ("mean inliers (matched)", [s["mean_inliers"] or 0 for s in summary], None,
         [_fmt(s["mean_inliers"], 0) for s in summary]),
        ("median s / pair", [s["median_time_s"] or 0 for s in summary], None,
         [_fmt(s["median_time_s"], 2) for s in summary]),
    ]
    top = 70
    height = top + _ROW_H * len(summary) + _MARGIN
    canvas = np.full((height, label_w + len(panels) * (_PANEL_W + _MARGIN), 3), 255, np.uint8)
    cv2.putText(canvas, title, (_MARGIN, 24), _FONT, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    for i, label in enumerate(labels):
        cv2.putText(canvas, label, (_MARGIN, top + i * _ROW_H + 19), _FONT, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for k, (name, values, full, texts) in enumerate(panels):
        _draw_panel(canvas, label_w + k * (_PANEL_W + _MARGIN), top, name, values, full, texts)
    return canvas


def _draw_panel(canvas: np.ndarray, x0: int, top: int, name: str, values: Sequence[float],
                full: Optional[float], texts: Sequence[str]) -> None:
    """Bars of ``values`` from x0, scaled so ``full`` (default: the largest value) spans the panel,
    each annotated with its entry of ``texts``."""
    cv2.putText(canvas, name, (x0, top - 14), _FONT, 0.5, (60, 60, 60), 1, cv2.LINE_AA)
    scale = full if full else max(list(values) + [1e-9])
    bar_max = _PANEL_W - 60
    for i, (value, text) in enumerate(zip(values, texts)):
        y = top + i * _ROW_H + 4
        width = int(round(bar_max * min(float(value) / scale, 1.0))) if scale > 0 else 0
        colour = _PALETTE[i % len(_PALETTE)]
        cv2.rectangle(canvas, (x0, y), (x0 + max(width, 1), y + _ROW_H - 10), colour, -1)
        cv2.putText(canvas, text, (x0 + width + 6, y + _ROW_H - 14), _FONT, 0.45, (0, 0, 0), 1,
                    cv2.LINE_AA)
    cv2.line(canvas, (x0, top), (x0, top + _ROW_H * len(values)), (0, 0, 0), 1)


def _text_width(text: str, scale: float) -> int:
    (width, _), _ = cv2.getTextSize(text, _FONT, scale, 1)
    return width
