"""Patch-pair verification metrics: FPR at 95% recall and FDR, for HardNet, SIFT and RootSIFT.

A validation set is ``(patches1 (n,1,32,32), patches2 (n,1,32,32), is_match (n,) bool)``; the
score of a pair is the L2 distance of its descriptors (smaller = more similar).

- FPR95: the fraction of non-matching pairs accepted at the distance threshold that accepts 95%
  of the matching pairs (Brown et al.; the PhotoTour number of the paper).
- FDR95: the fraction of *accepted* pairs that are non-matching at that threshold, which, unlike
  FPR, depends on the ratio of matching to non-matching pairs (the paper's comment on FPR). With a
  50/50 set it is ``FPR / (FPR + 0.95)``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from .synthetic import SyntheticPairs

#: Keypoint sizes tried when describing a whole 32x32 patch with OpenCV SIFT (the SIFT window has
#: radius ~ 10.6 sigma = 5.3 * size, so 3.0 covers the patch); the baselines report their best size,
#: i.e. the comparison is tuned in SIFT's favour.
SIFT_PATCH_KEYPOINT_SIZES = (3.0, 4.0, 5.0, 6.0)


def fpr_at_recall(distances: np.ndarray, is_match: np.ndarray, recall: float = 0.95) -> tuple[float, float]:
    """(FPR, FDR) at the threshold that accepts ``recall`` of the matching pairs."""
    distances = np.asarray(distances, dtype=np.float64)
    is_match = np.asarray(is_match, dtype=bool)
    threshold = np.quantile(distances[is_match], recall)
    accepted = distances <= threshold
    false_pos = np.sum(accepted & ~is_match)
    fpr = false_pos / max(1, np.sum(~is_match))
    fdr = false_pos / max(1, np.sum(accepted))
    return float(fpr), float(fdr)


def make_validation_set(folders, num_pairs: int = 5000, seed: int = 12345) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deterministic held-out set: half matching pairs, half non-matching (patches of other points)."""
    source = SyntheticPairs(folders, seed=seed, pairs_per_warp=32)
    half = num_pairs // 2
    anchors, positives, labels = source.sample(2 * half)
    rng = np.random.default_rng(seed + 1)
    p1 = anchors[:half]
    p2 = positives[:half]
    # negatives: anchors of the second half against positives of other points, shuffled
    neg_a = anchors[half:]
    perm = rng.permutation(half)
    neg_p = positives[half:][perm]
    different = labels[half:] != labels[half:][perm]
    neg_a, neg_p = neg_a[different], neg_p[different]
    patches1 = np.concatenate([p1, neg_a])
    patches2 = np.concatenate([p2, neg_p])
    is_match = np.concatenate([np.ones(len(p1), bool), np.zeros(len(neg_a), bool)])
    return patches1, patches2, is_match


def save_validation_set(path: Path, data) -> None:
    np.savez_compressed(path, patches1=data[0], patches2=data[1], is_match=data[2])


def load_validation_set(path: Path):
    with np.load(path) as f:
        return f["patches1"], f["patches2"], f["is_match"]


def sift_patch_descriptors(patches: np.ndarray, root: bool = False, keypoint_size: float = 4.0) -> np.ndarray:
    """OpenCV SIFT (or RootSIFT) of each whole patch (n, 1, 32, 32) -> (n, 128) float32."""
    sift = cv2.SIFT_create()
    size = patches.shape[-1]
    keypoint = [cv2.KeyPoint((size - 1) / 2.0, (size - 1) / 2.0, keypoint_size, 0.0)]
    out = np.zeros((len(patches), 128), np.float32)
    for i, patch in enumerate(patches):
        _, desc = sift.compute(np.ascontiguousarray(patch[0], dtype=np.uint8), keypoint)
        if desc is not None and len(desc):
            out[i] = desc[0]
    return rootsift(out) if root else out


def rootsift(desc: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """RootSIFT (Arandjelovic & Zisserman 2012): L1-normalise, square root -> unit L2 norm."""
    desc = np.asarray(desc, dtype=np.float32)
    desc = desc / (np.abs(desc).sum(axis=1, keepdims=True) + eps)
    return np.sqrt(desc)


@torch.no_grad()
def hardnet_distances(net: torch.nn.Module, patches1: np.ndarray, patches2: np.ndarray, device="cpu",
                      batch_size: int = 1024) -> np.ndarray:
    """L2 distances (n,) between HardNet descriptors of paired patches."""
    was_training = net.training
    net.eval()
    dists = []
    for start in range(0, len(patches1), batch_size):
        a = torch.from_numpy(patches1[start:start + batch_size].astype(np.float32)).to(device)
        b = torch.from_numpy(patches2[start:start + batch_size].astype(np.float32)).to(device)
        dists.append((net(a) - net(b)).norm(dim=1).cpu().numpy())
    net.train(was_training)
    return np.concatenate(dists)


def evaluate_baselines(data) -> dict[str, tuple[float, float, float]]:
    """(FPR95, FDR95, keypoint size) of SIFT and RootSIFT on a validation set, at each one's best size."""
    p1, p2, is_match = data
    result = {}
    for name, root in (("sift", False), ("rootsift", True)):
        best = None
        for size in SIFT_PATCH_KEYPOINT_SIZES:
            d1 = sift_patch_descriptors(p1, root=root, keypoint_size=size)
            d2 = sift_patch_descriptors(p2, root=root, keypoint_size=size)
            fpr, fdr = fpr_at_recall(np.linalg.norm(d1 - d2, axis=1), is_match)
            if best is None or fpr < best[0]:
                best = (fpr, fdr, size)
        result[name] = best
    return result
