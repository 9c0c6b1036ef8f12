"""Image retrieval for ``--pairs retrieval:K``: VLAD over a k-means vocabulary of the scene's own
HardNet descriptors.

Per image, up to :data:`SAMPLE` descriptors (the strongest by detector score) are read from
features.h5; a vocabulary of :data:`WORDS` centres is trained on them all (k-means, fixed seed),
each image becomes a VLAD vector (residuals to the nearest centre summed per centre,
intra-normalised, signed square root, L2-normalised: Arandjelovic and Zisserman, "All about VLAD",
CVPR 2013), and each image is paired with its K most similar by cosine similarity.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

#: Descriptors per image used for the vocabulary and the VLAD vector.
SAMPLE = 2000
#: Vocabulary size (visual words).
WORDS = 64


def _sampled_descriptors(features_path: Path, names: list[str]) -> list[np.ndarray]:
    import h5py

    out = []
    with h5py.File(features_path, "r") as f:
        for name in names:
            g = f[name]
            scores = g["scores"][()]
            keep = np.sort(np.argsort(-scores, kind="stable")[:SAMPLE])
            out.append(np.ascontiguousarray(g["descriptors"][()][:, keep].T, dtype=np.float32))  # (S, 128)
    return out


def vocabulary(descriptors: list[np.ndarray], words: int = WORDS, seed: int = 0) -> np.ndarray:
    """k-means centres (words, 128) float32 of the stacked descriptors (fewer words if few descriptors)."""
    data = np.concatenate(descriptors)
    words = max(1, min(words, len(data) // 4))
    cv2.setRNGSeed(seed)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30, 1e-4)
    _, _, centres = cv2.kmeans(data, words, None, criteria, 1, cv2.KMEANS_PP_CENTERS)
    return centres.astype(np.float32)


def vlad(descriptors: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """VLAD vector (words * 128,) of descriptors (S, 128) over centres (words, 128), unit L2 norm."""
    if len(descriptors) == 0:
        return np.zeros(centres.size, np.float32)
    distances = (descriptors ** 2).sum(1)[:, None] - 2 * descriptors @ centres.T + (centres ** 2).sum(1)[None]
    nearest = distances.argmin(1)
    v = np.zeros_like(centres)
    np.add.at(v, nearest, descriptors - centres[nearest])
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)  # intra-normalisation
    v = np.sign(v) * np.sqrt(np.abs(v))
    v = v.ravel()
    return v / max(float(np.linalg.norm(v)), 1e-12)


def retrieval_pairs(features_path: Path, names: list[str], k: int) -> list[tuple[str, str]]:
    """Each image with its ``k`` most similar others (unordered pairs; duplicates left to the caller)."""
    descriptors = _sampled_descriptors(features_path, names)
    centres = vocabulary(descriptors)
    vectors = np.stack([vlad(d, centres) for d in descriptors])  # (N, D)
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    k = min(k, len(names) - 1)
    pairs = []
    for i in range(len(names)):
        for j in np.argsort(-similarity[i], kind="stable")[:k]:
            pairs.append((names[i], names[int(j)]))
    return pairs
