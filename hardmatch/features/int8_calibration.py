"""Calibration data for the int8 HardNet: real patches from training images, a fixed seeded draw.

Gathering patches needs the frame detector and the patch sampler, which sit far above the
descriptor; so it lives here, above them, and :mod:`hardmatch.nets.quantize` (used by
:mod:`hardmatch.features.describe`) only takes the patches it is given.

The recipe (:mod:`hardmatch.nets.quantize` has the measurements): DoG frames (the default pipeline's
detector, ``CALIBRATION_FEATURES_PER_IMAGE`` per image) of the first
``CALIBRATION_IMAGES_PER_FOLDER`` images, sorted by name, of ``train-images/urban100`` and
``train-images/sunhays80`` (training images only: never bsd100 nor the dev pairs), 32x32 patches
from :func:`~hardmatch.features.patches.extract_patches`, ``CALIBRATION_PATCHES`` of them drawn with
``CALIBRATION_SEED``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.io import load_gray
from .frames import FrameDetector
from .patches import build_pyramid, extract_patches

CALIBRATION_FOLDERS = ("urban100", "sunhays80")
CALIBRATION_IMAGES_PER_FOLDER = 12
CALIBRATION_FEATURES_PER_IMAGE = 1000
CALIBRATION_PATCHES = 8192
CALIBRATION_SEED = 0


def calibration_images(train_images: Path) -> list[Path]:
    """The calibration images under ``train_images`` (shared/data/train-images), in a fixed order."""
    images = []
    for folder in CALIBRATION_FOLDERS:
        files = sorted(p for p in (Path(train_images) / folder).iterdir() if p.suffix.lower() in (".png", ".jpg"))
        images += files[:CALIBRATION_IMAGES_PER_FOLDER]
    return images


def calibration_patches(images: list[Path], num_patches: int = CALIBRATION_PATCHES,
                        seed: int = CALIBRATION_SEED) -> np.ndarray:
    """Real patches (num_patches, 1, 32, 32) float32 from the default detector on ``images``, seeded draw."""
    detector = FrameDetector("dog", nfeatures=CALIBRATION_FEATURES_PER_IMAGE)
    patches = []
    for path in images:
        gray = load_gray(path)
        pyramid = build_pyramid(gray)
        patches.append(extract_patches(gray, detector(gray, pyramid=pyramid).lafs, pyramid=pyramid))
    patches = np.concatenate(patches).astype(np.float32)
    order = np.random.default_rng(seed).permutation(len(patches))[:num_patches]
    return patches[np.sort(order)]
