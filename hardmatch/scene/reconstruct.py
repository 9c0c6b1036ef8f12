"""``reconstruct(IMAGES, OUT)``: the scene stages in order, each resumable, and the summary.

images -> features.h5 -> pairs.txt -> matches.h5 -> database.db -> sparse/N + points.ply + summary.json

A re-run reuses what is written (features per image, matches per pair) and redoes only the
cheap derived stages; the mapper runs again only when something upstream changed or no summary
is there (``force_mapping``: always).
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Optional

from ..config import PipelineConfig
from ..errors import HardmatchError, ImageError
from . import database as dblib
from .features import extract_features
from .images import list_images
from .mapping import SPARSE, run_mapping
from .matching import match_pairs
from .pairs import PAIRS_TXT, make_pairs, write_pairs
from .store import FEATURES_H5, MATCHES_H5, drop_pairs_of

SUMMARY_JSON = "summary.json"

#: ``bar(label, length)`` -> a context manager yielding ``advance(n)``; the default draws nothing.
ProgressFactory = Callable[[str, int], object]


@contextmanager
def _no_bar(label: str, length: int):
    yield lambda n=1: None


def reconstruct(image_dir: Path, out: Path, config: PipelineConfig, pairs: str = "exhaustive",
                camera_mode: str = "per-image", intrinsics: Optional[str] = None, executor=None,
                bar: ProgressFactory = _no_bar, warn: Callable[[str], None] = print,
                force_mapping: bool = False) -> dict:
    """Reconstruct the images of ``image_dir`` into ``out``; returns the summary (also ``out/summary.json``).

    Raises :class:`~hardmatch.errors.DatasetError` (exit 5) for a missing/empty/one-image folder,
    :class:`~hardmatch.errors.ImageError` (exit 3) when fewer than two images are readable,
    :class:`HardmatchError` (exit 2) for bad options, :class:`~hardmatch.errors.NoModelError`
    (exit 1) when the mapper makes no model.
    """
    from .executor import SerialExecutor

    image_dir, out = Path(image_dir), Path(out)
    names = list_images(image_dir)
    choice = dblib.camera_choice(camera_mode, intrinsics)  # bad options fail before any work
    if config.geometry == "homography":
        raise HardmatchError("reconstruct: --geometry homography describes no 3D scene; use fundamental")
    out.mkdir(parents=True, exist_ok=True)
    executor = executor or SerialExecutor()
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    with bar("features", len(names)) as advance:
        extracted = extract_features(image_dir, names, out, config, executor, progress=advance, warn=warn)
    seconds["features"] = time.perf_counter() - t0
    usable = [n for n in names if n not in extracted["skipped"]]
    if len(usable) < 2:
        raise ImageError(f"{image_dir}: fewer than two readable images ({len(usable)} of {len(names)})")

    t0 = time.perf_counter()
    pair_list = make_pairs(pairs, usable, out / FEATURES_H5)
    write_pairs(out / PAIRS_TXT, pair_list)
    seconds["pairs"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    drop_pairs_of(out / MATCHES_H5, extracted["written"])  # matches of re-extracted images are stale
    with bar("matching", len(pair_list)) as advance:
        matched = match_pairs(pair_list, out, config, executor, progress=advance, image_dir=image_dir,
                              intrinsics=intrinsics)
    seconds["matching"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    db = dblib.write_database(out, image_dir, usable, pair_list, choice)
    seconds["database"] = time.perf_counter() - t0

    previous = _read_summary(out)
    changed = bool(extracted["written"] or matched["written"]) or force_mapping
    if previous is not None and not changed and (out / SPARSE).is_dir() and previous.get("options") == _options(
            pairs, camera_mode, intrinsics, usable):
        model = previous["model"]
        seconds["mapping"] = 0.0
    else:
        t0 = time.perf_counter()
        with bar("mapping", len(usable)) as advance:
            model = run_mapping(out, image_dir, db["path"], len(usable), choice.fixed, progress=advance)
        seconds["mapping"] = time.perf_counter() - t0

    summary = {
        "images": len(names),
        "skipped": extracted["skipped"],
        "features": {"written": len(extracted["written"]), "reused": len(extracted["reused"])},
        "pairs": len(pair_list),
        "matches": {**matched, "verified_pairs": db["verified_pairs"]},
        "model": model,
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "options": _options(pairs, camera_mode, intrinsics, usable),
    }
    (out / SUMMARY_JSON).write_text(json.dumps(summary, indent=1))
    return summary


def _options(pairs: str, camera_mode: str, intrinsics: Optional[str], usable: list[str]) -> dict:
    return {"pairs": pairs, "camera_mode": camera_mode, "intrinsics": intrinsics, "images": usable}


def _read_summary(out: Path) -> Optional[dict]:
    try:
        return json.loads((out / SUMMARY_JSON).read_text())
    except (OSError, ValueError):
        return None


def summary_line(summary: dict) -> str:
    """One line: registered images, points, track length, reprojection error, seconds per stage."""
    m = summary["model"]
    usable = summary["images"] - len(summary["skipped"])
    stages = "  ".join(f"{k} {v:.1f}" for k, v in summary["seconds"].items())
    return (f"registered {m['registered']}/{usable} images, {m['points3D']} points, mean track length "
            f"{m['mean_track_length']:.2f}, mean reprojection error {m['mean_reprojection_error']:.3f} px "
            f"({summary['matches']['verified_pairs']}/{summary['pairs']} pairs verified); seconds: {stages}")
