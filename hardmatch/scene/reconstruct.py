"""``reconstruct(IMAGES, OUT)``: the scene stages in order, each resumable, and the summary.

images -> features.h5 -> pairs.txt -> matches.h5 -> database.db -> sparse/N + points.ply + summary.json

A re-run reuses what is written (features per image, matches per pair) and redoes only the
cheap derived stages; the mapper runs again only when something upstream changed or no summary
is there (``force_mapping``: always). Features are reused only for the same image files
(:mod:`hardmatch.scene.image_identity`): another scene into the same ``OUT`` is refused (exit 5).
A run holds :class:`~hardmatch.core.files.FolderLock` on ``OUT`` throughout: a second run on the same
folder is refused at once (exit 5); temporaries have unique names and what killed runs left is removed.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable, Optional

from ..core.errors import HardmatchError, ImageError
from ..core.files import FolderLock, write_atomic
from ..core.progress import ProgressFactory, no_bar
from ..twoview.config import PipelineConfig
from . import database as dblib
from .camera_mode import prefer_shared, shared_camera_evidence, shared_camera_model
from .features import extract_features
from .hloc_files import FEATURES_H5, MATCHES_H5, drop_pairs_of
from .images import list_images
from .loop_consistency import ViewGraphConf, check_view_graph, summary_text
from .mapping import SPARSE, model_stats, publish_model, replace_model, run_mapping
from .pair_matching import match_pairs
from .pairs import PAIRS_TXT, check_pairs_spec, make_pairs, write_pairs
from .wide_retry import WideRetryConf, retry_weak_pairs
from .wide_retry import summary_text as wide_retry_text

SUMMARY_JSON = "summary.json"
#: ``--camera-mode auto``: the one-camera database is written here until its model is chosen
#: (``sparse.shared``: where older versions mapped it a second time; their leftovers are removed).
SHARED_DATABASE, SHARED_SPARSE = "database.shared.db", "sparse.shared"

def reconstruct(image_dir: Path, out: Path, config: PipelineConfig, pairs: str = "exhaustive",
                camera_mode: str = "auto", intrinsics: Optional[str] = None, executor=None,
                bar: ProgressFactory = no_bar, warn: Callable[[str], None] = print,
                force_mapping: bool = False, view_graph: ViewGraphConf = ViewGraphConf(),
                wide_retry: WideRetryConf = WideRetryConf()) -> dict:
    """Reconstruct the images of ``image_dir`` into ``out``; returns the summary (also ``out/summary.json``).

    Raises :class:`~hardmatch.core.errors.DatasetError` (exit 5) for a missing/empty/one-image folder or a
    pairs file naming images the folder lacks, :class:`~hardmatch.core.errors.OutputError` (exit 5) when
    ``out`` is in use by another run or holds the features of other images,
    :class:`~hardmatch.core.errors.ImageError` (exit 3) when fewer than two images are readable,
    :class:`HardmatchError` (exit 2) for bad options, :class:`~hardmatch.core.errors.NoModelError`
    (exit 1) when the mapper makes no model.
    """
    from .executor import SerialExecutor

    image_dir, out = Path(image_dir), Path(out)
    names = list_images(image_dir, skip=out)
    choice = dblib.camera_choice(camera_mode, intrinsics)  # bad options fail before any work
    if config.geometry == "homography":
        raise HardmatchError("reconstruct: --geometry homography describes no 3D scene; use fundamental")
    check_pairs_spec(pairs, names)  # a pairs file naming unknown images fails before any work
    with FolderLock(out, "reconstruct"):
        remove_stale_temporaries(out)
        return _run_stages(image_dir, out, names, config, pairs, camera_mode, intrinsics, choice,
                           executor or SerialExecutor(), bar, warn, force_mapping, view_graph, wide_retry)


def _run_stages(image_dir: Path, out: Path, names: list[str], config: PipelineConfig, pairs: str,
                camera_mode: str, intrinsics: Optional[str], choice, executor, bar: ProgressFactory,
                warn: Callable[[str], None], force_mapping: bool, view_graph: ViewGraphConf,
                wide_retry: WideRetryConf) -> dict:
    """The stages of :func:`reconstruct` in ``out`` (locked by the caller); returns the summary."""
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

    t0 = time.perf_counter()  # weakly attached images: their unverified pairs retried with wide's later steps
    retried = retry_weak_pairs(out, image_dir, usable, pair_list, config, wide_retry, bar=bar)
    seconds["wide_retry"] = time.perf_counter() - t0

    t0 = time.perf_counter()  # the view graph's loops: wrong pairs are dropped before the database
    mapped_pairs, graph = check_view_graph(out, image_dir, pair_list, intrinsics, view_graph)
    seconds["loop_check"] = time.perf_counter() - t0

    previous = _read_summary(out)
    changed = bool(extracted["written"] or matched["written"] or retried.get("recovered")) or force_mapping
    reuse_model = previous is not None and not changed and (out / SPARSE).is_dir() and previous.get(
        "options") == _options(pairs, camera_mode, intrinsics, usable, view_graph, wide_retry)
    t0 = time.perf_counter()
    db_choice = choice
    if reuse_model and previous["model"].get("cameras", {}).get("mode") == "shared":
        db_choice = replace(choice, mode="single")  # the database matches the model it is kept with
    db = dblib.write_database(out, image_dir, usable, mapped_pairs, db_choice)
    seconds["database"] = time.perf_counter() - t0

    if reuse_model:
        model = previous["model"]
        seconds["mapping"] = 0.0
    else:
        t0 = time.perf_counter()
        model = _map(out, image_dir, usable, mapped_pairs, choice, db["path"], bar)
        seconds["mapping"] = time.perf_counter() - t0

    summary = {
        "images": len(names),
        "skipped": extracted["skipped"],
        "features": {"written": len(extracted["written"]), "reused": len(extracted["reused"])},
        "pairs": len(pair_list),
        "matches": {**matched, "verified_pairs": db["verified_pairs"]},
        "wide_retry": retried,
        "view_graph": graph,
        "model": model,
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "options": _options(pairs, camera_mode, intrinsics, usable, view_graph, wide_retry),
    }
    write_atomic(out / SUMMARY_JSON, json.dumps(summary, indent=1))
    return summary


def remove_stale_temporaries(out: Path) -> None:
    """Remove what killed runs left in ``out`` (held under :class:`FolderLock`, so no run is using them):
    unique temporaries (``.NAME.XXXX.tmp`` and their SQLite sidecars, see
    :func:`hardmatch.core.files.temporary_path`) and the fixed ``.tmp`` names of older versions."""
    for name in (dblib.DATABASE, SHARED_DATABASE, SPARSE, SHARED_SPARSE, SUMMARY_JSON, PAIRS_TXT):
        for leftover in [*out.glob(f".{name}.*.tmp*"), *out.glob(f"{name}.tmp*")]:
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)


def _map(out: Path, image_dir: Path, usable: list[str], pair_list, choice, database: Path,
         bar: ProgressFactory) -> dict:
    """The mapping stage with the cameras of ``choice`` (:mod:`hardmatch.scene.camera_mode`); returns the
    published model's stats with ``cameras``: what was chosen and why."""
    with bar("mapping", len(usable)) as advance:
        stats, model = run_mapping(out, image_dir, database, len(usable), choice.fixed, progress=advance,
                                   refine_principal_point=choice.mode == "single")
    if choice.mode == "single":
        cameras = {"mode": "single", "reason": stats.pop("principal_point", "intrinsics given")}
    elif choice.mode == "per-image" or choice.fixed:
        cameras = {"mode": "per-image", "reason": "intrinsics given" if choice.fixed else "--camera-mode per-image"}
    else:
        shared, reason = _map_shared_camera(out, image_dir, usable, pair_list, choice, database, stats, model, bar)
        if shared is not None:
            return shared
        cameras = {"mode": "per-image", "reason": reason}
    return {**publish_model(out, stats, model), "cameras": cameras}


def _map_shared_camera(out: Path, image_dir: Path, usable: list[str], pair_list, choice, database: Path,
                       per_image: dict, per_image_model, bar: ProgressFactory) -> tuple[Optional[dict], str]:
    """``--camera-mode auto`` after the per-image map (its stats ``per_image`` and its
    ``pycolmap.Reconstruction``): when that model shows one camera, re-adjust it with one shared camera
    (:func:`~hardmatch.scene.camera_mode.shared_camera_model`) and keep that if it explains the images
    as well. Returns ``(stats, "")``, the published shared model's stats with ``cameras`` (the model
    replaces the per-image one in ``out/sparse`` and ``database.db`` gets one camera to match), or
    ``(None, why the per-image cameras stay)``, in which case ``out`` is left as it was."""
    why = shared_camera_evidence(per_image_model)
    if why is not None:
        return None, f"per-image cameras: {why}"
    with bar("one shared camera: bundle adjustment", 1) as advance:
        try:
            shared_model, note = shared_camera_model(per_image_model)
        except ValueError as exc:
            return None, f"per-image cameras: {exc}"
        advance(1)
    stats = {**model_stats(shared_model), "model": per_image["model"], "models": per_image["models"]}
    keep, reason = prefer_shared(per_image, stats)
    if not keep:
        return None, f"kept per-image cameras: {reason}"
    try:  # refuses images of different sizes (possible among the unregistered ones)
        shared_db = dblib.write_database(out, image_dir, usable, pair_list, replace(choice, mode="single"),
                                         filename=SHARED_DATABASE)["path"]
    except HardmatchError as exc:
        return None, f"per-image cameras: {exc}"
    replace_model(Path(per_image["model"]), shared_model)
    os.replace(shared_db, database)
    return {**publish_model(out, stats, shared_model),
            "cameras": {"mode": "shared", "reason": f"{reason}; {note}"}}, ""


def _options(pairs: str, camera_mode: str, intrinsics: Optional[str], usable: list[str],
             view_graph: ViewGraphConf, wide_retry: WideRetryConf) -> dict:
    return {"pairs": pairs, "camera_mode": camera_mode, "intrinsics": intrinsics, "images": usable,
            "view_graph": asdict(view_graph), "wide_retry": asdict(wide_retry)}


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
    mode = m.get("cameras", {}).get("mode")
    cameras = {"shared": "1 shared camera", "single": "1 camera"}.get(mode, "a camera per image")
    return (f"registered {m['registered']}/{usable} images ({cameras}), {m['points3D']} points, mean track length "
            f"{m['mean_track_length']:.2f}, mean reprojection error {m['mean_reprojection_error']:.3f} px "
            f"({summary['matches']['verified_pairs']}/{summary['pairs']} pairs verified; "
            f"{wide_retry_text(summary.get('wide_retry', {}))}; "
            f"{summary_text(summary.get('view_graph', {}))}); seconds: {stages}")
