"""Shared test helpers: where ../shared is, real textured images, the shipped weights."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    env = os.environ.get("HARDMATCH_SHARED")
    return Path(env) if env else REPO.parent / "shared"


def need_shared(sub: str) -> Path:
    """Path under shared/; skips the test with a reason when it is absent."""
    path = shared_dir() / sub
    if not path.exists():
        pytest.skip(f"{path} is absent (shared data not beside the checkout; set HARDMATCH_SHARED)")
    return path


def synthetic_texture(height: int = 360, width: int = 480, seed: int = 0) -> np.ndarray:
    """A generated textured uint8 image: multi-scale noise plus shapes, rich in blobs and corners."""
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width), np.float32)
    for cell in (4, 8, 16, 32):
        coarse = rng.uniform(0, 1, (height // cell + 2, width // cell + 2)).astype(np.float32)
        img += cv2.resize(coarse, (width + 2 * cell, height + 2 * cell), interpolation=cv2.INTER_CUBIC)[
            cell:cell + height, cell:cell + width] * cell
    img = (img - img.min()) / (img.max() - img.min()) * 200 + 20
    for _ in range(60):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        colour = float(rng.uniform(0, 255))
        if rng.random() < 0.5:
            cv2.circle(img, centre, int(rng.integers(3, 25)), colour, -1)
        else:
            cv2.rectangle(img, centre, (centre[0] + int(rng.integers(5, 40)), centre[1] + int(rng.integers(5, 40))), colour, -1)
    return np.clip(img, 0, 255).astype(np.uint8)


#: BostonA's size (width, height): the generated stand-in for it keeps its aspect ratio
BOSTON_A_SIZE = (1712, 1368)


def textured_image(max_side: int = 640) -> np.ndarray:
    """A real photo from shared/ (BostonA, resized to ``max_side`` on its longest side) when present,
    else a generated texture of the same size (so tests may rely on the size either way)."""
    path = shared_dir() / "data" / "homogr" / "BostonA.jpg"
    if path.is_file():
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        f = max_side / max(img.shape)
        return cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    return synthetic_texture(round(max_side * BOSTON_A_SIZE[1] / BOSTON_A_SIZE[0]), max_side)


def reprojection_error(h_est: np.ndarray, h_true: np.ndarray, width: int, height: int) -> float:
    """Mean distance (px) between a grid mapped by two homographies."""
    xs, ys = np.meshgrid(np.linspace(0, width - 1, 10), np.linspace(0, height - 1, 10))
    pts = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)[None]
    a = cv2.perspectiveTransform(pts, h_est)[0]
    b = cv2.perspectiveTransform(pts, h_true)[0]
    return float(np.linalg.norm(a - b, axis=1).mean())


@pytest.fixture(scope="session")
def texture() -> np.ndarray:
    return textured_image()


@pytest.fixture
def affnet_home(tmp_path, monkeypatch):
    """A TORCH_HOME holding the official AffNet/OriNet files from shared/weights (never downloaded)."""
    weights = need_shared("weights")
    checkpoints = tmp_path / "torch-home" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    for name in ("AffNet.pth", "OriNet.pth"):
        shutil.copy(weights / name, checkpoints / name)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    return checkpoints


def write_image(path: Path, image: np.ndarray) -> Path:
    """Write a gray uint8 image, creating folders (.ppm gets 3 channels: OpenCV writes PPM from BGR only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".ppm":
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    assert cv2.imwrite(str(path), image)
    return path


def write_matrix(path: Path, matrix: np.ndarray) -> Path:
    """Write a matrix as text (np.savetxt), creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, matrix)
    return path
