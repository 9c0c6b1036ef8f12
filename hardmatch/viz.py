"""Drawing: inlier matches of a pair side by side."""

from __future__ import annotations

import cv2
import numpy as np


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
