"""Drawing: inlier matches of a pair side by side, and writing the drawing safely.

:func:`check_image_output` refuses an image path before any work (folder, permission, an extension
OpenCV cannot encode); :func:`draw_pair_result` draws a :class:`~hardmatch.core.records.PairResult`
on its working images; :func:`write_image` encodes in memory and writes atomically.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .core.errors import OutputError
from .core.files import check_writable, write_atomic


def check_image_output(path: Path, what: str = "drawing") -> Path:
    """``path`` when an image can be written there (folder exists and is writable, extension known
    to OpenCV's encoders); else :class:`~hardmatch.core.errors.OutputError` (exit 5) with one line."""
    path = check_writable(path, what)
    if not path.suffix or not cv2.haveImageWriter(str(path)):
        raise OutputError(f"{path}: cannot write the {what}: unknown image extension "
                          f"'{path.suffix}' (use .png, .jpg, .tif, .bmp or .webp)")
    return path


def write_image(path: Path, image: np.ndarray) -> None:
    """Encode ``image`` (H, W) or (H, W, 3) uint8 for ``path``'s extension and write it atomically."""
    ok, encoded = cv2.imencode(Path(path).suffix, image)
    if not ok:
        raise OutputError(f"{path}: cannot encode the image as '{Path(path).suffix}'")
    write_atomic(path, encoded.tobytes())


def draw_pair_result(result, work1, work2) -> np.ndarray:
    """Side-by-side BGR canvas of ``result``'s inliers on the working images ``work1``/``work2``
    (:class:`~hardmatch.core.io.WorkingImage`): the original-pixel inlier points (K, 2) are taken to
    working pixels by each image's ``from_original`` (3, 3) scaling."""
    p1, p2 = result.inlier_points
    return draw_matches(work1.gray, work2.gray, _to_working(p1, work1.from_original),
                        _to_working(p2, work2.from_original))


def _to_working(points: np.ndarray, from_original: np.ndarray) -> np.ndarray:
    """(K, 2) original pixels -> (K, 2) working pixels under the affine (3, 3) ``from_original``."""
    return points @ from_original[:2, :2].T + from_original[:2, 2]


def draw_matches(image1: np.ndarray, image2: np.ndarray, points1: np.ndarray, points2: np.ndarray,
                 max_lines: int = 2000, seed: int = 0) -> np.ndarray:
    """Side-by-side BGR canvas with a line per correspondence. images: (H, W) uint8; points: (K, 2)."""
    h1, w1 = image1.shape[:2]
    h2, w2 = image2.shape[:2]
    canvas = np.zeros((max(h1, h2), w1 + w2, 3), np.uint8)
    canvas[:h1, :w1] = cv2.cvtColor(image1, cv2.COLOR_GRAY2BGR)
    canvas[:h2, w1:] = cv2.cvtColor(image2, cv2.COLOR_GRAY2BGR)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(points1))[:max_lines]
    thickness = max(1, int(round(max(canvas.shape) / 1200)))
    for i in order:
        colour = tuple(int(c) for c in rng.integers(64, 256, 3))
        a = (int(round(points1[i, 0])), int(round(points1[i, 1])))
        b = (int(round(points2[i, 0] + w1)), int(round(points2[i, 1])))
        cv2.line(canvas, a, b, colour, thickness, cv2.LINE_AA)
        cv2.circle(canvas, a, 2 * thickness, colour, -1, cv2.LINE_AA)
        cv2.circle(canvas, b, 2 * thickness, colour, -1, cv2.LINE_AA)
    return canvas
