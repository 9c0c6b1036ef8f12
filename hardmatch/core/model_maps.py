"""Two-view models carried between pixel frames: working <-> original images, essential -> fundamental.

Plain 3x3 matrix maths on numpy, shared by the records (:mod:`hardmatch.core.records`), the
pipeline and the calibrated geometry (:mod:`hardmatch.geometry.essential`).
"""

from __future__ import annotations

import numpy as np


def model_to_original(model: np.ndarray, geometry: str, to_working1: np.ndarray | None,
                      to_working2: np.ndarray | None) -> np.ndarray:
    """A model (3, 3) between working images -> between the original images (``W``: original -> working)."""
    w1 = np.eye(3) if to_working1 is None else to_working1
    w2 = np.eye(3) if to_working2 is None else to_working2
    if geometry == "homography":
        h = np.linalg.inv(w2) @ model @ w1
        return h / h[2, 2] if abs(h[2, 2]) > 1e-12 else h
    f = w2.T @ model @ w1
    return f / np.linalg.norm(f)


def fundamental_from_essential(E: np.ndarray, K1: np.ndarray, K2: np.ndarray) -> np.ndarray:
    """F = K2^-T E K1^-1 (3, 3), unit Frobenius norm: ``x2^T F x1 = 0`` for pixel coordinates."""
    f = np.linalg.inv(K2).T @ np.asarray(E, np.float64) @ np.linalg.inv(K1)
    return f / max(np.linalg.norm(f), 1e-300)
