"""MSER regions (OpenCV) turned into affine frames by their second moments.

A region with pixel covariance ``C`` (2x2) is the ellipse ``(x - c)^T C^-1 (x - c) <= 4`` (exact for
a uniform elliptical region). Its frame is ``A = magnification * chol(C)`` with a lower-triangular
(upright) Cholesky factor, so the patch covers the region's ellipse ``magnification / 2`` times
enlarged. Both bright-on-dark and dark-on-bright regions come from OpenCV's single pass over
the image (``cv2.MSER.detectRegions``). Regions are affine covariant by construction: no shape
adaptation is needed, orientation is assigned afterwards.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..core import laf as laflib
from .detections import Detections, apply_mask, strongest

#: Patch half-width in units of the region's standard deviation: the patch spans the region's
#: 2-sigma ellipse enlarged 1.5 times.
DEFAULT_MSER_MAGNIFICATION = 3.0


class MSERDetector:
    """OpenCV MSER (both polarities) as upright elliptical frames, largest-area-stable first.

    ``nfeatures`` keeps that many (0: all), preferring larger regions (more support for a
    descriptor); ``min_area``/``max_area_fraction`` bound the region size; ``delta`` is MSER's
    stability step. Near-duplicate nested regions (centres, radii and shapes within 10%) are merged.
    """


    def __init__(self, nfeatures: int = 8000, delta: int = 5, min_area: int = 30, max_area_fraction: float = 0.1,
                 magnification: float = DEFAULT_MSER_MAGNIFICATION) -> None:
        self.nfeatures = int(nfeatures)
        self.delta = int(delta)
        self.min_area = int(min_area)
        self.max_area_fraction = float(max_area_fraction)
        self.magnification = float(magnification)

    def __call__(self, image: np.ndarray, mask: np.ndarray | None = None) -> Detections:
        max_area = max(self.min_area + 1, int(self.max_area_fraction * image.size))
        mser = cv2.MSER_create(delta=self.delta, min_area=self.min_area, max_area=max_area)
        regions, _ = mser.detectRegions(image)
        if len(regions) == 0:
            return Detections.empty()
        centers, covariances, areas = _region_moments(regions)
        lafs = frames_from_covariances(centers, covariances, self.magnification)
        keep = np.isfinite(lafs).all(axis=(1, 2)) & (np.abs(np.linalg.det(lafs[:, :, :2])) > 1.0)
        detections = Detections(lafs[keep], areas[keep].astype(np.float32), np.zeros(int(keep.sum()), np.int64))
        detections = detections.subset(laflib.unique(detections.lafs))  # nested near-identical regions
        return strongest(apply_mask(detections, mask), self.nfeatures)


def _region_moments(regions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centres (K, 2), pixel covariances (K, 2, 2) and areas (K,) of point lists (each (n_k, 2) x/y)."""
    sizes = np.array([len(r) for r in regions])
    points = np.concatenate(regions).astype(np.float64)
    owner = np.repeat(np.arange(len(regions)), sizes)
    sums = np.zeros((len(regions), 5))
    x, y = points[:, 0], points[:, 1]
    for k, values in enumerate((x, y, x * x, x * y, y * y)):
        sums[:, k] = np.bincount(owner, weights=values, minlength=len(regions))
    n = sizes.astype(np.float64)
    mx, my = sums[:, 0] / n, sums[:, 1] / n
    # +1/12: a pixel is a unit square, not a point
    cxx = sums[:, 2] / n - mx * mx + 1.0 / 12
    cxy = sums[:, 3] / n - mx * my
    cyy = sums[:, 4] / n - my * my + 1.0 / 12
    cov = np.stack([np.stack([cxx, cxy], -1), np.stack([cxy, cyy], -1)], -2)
    return np.stack([mx, my], axis=1), cov, n


def frames_from_covariances(centers: np.ndarray, covariances: np.ndarray, magnification: float) -> np.ndarray:
    """Upright frames (K, 2, 3) with ``A A^T = magnification^2 * C`` for covariances (K, 2, 2)."""
    cxx, cxy, cyy = covariances[:, 0, 0], covariances[:, 0, 1], covariances[:, 1, 1]
    # upright factor [[a, 0], [b, d]] with A A^T = C: the convention of laf.make_upright
    a = np.sqrt(np.maximum(cxx, 1e-12))
    b = cxy / a
    d = np.sqrt(np.maximum(cyy - b * b, 1e-12))
    lafs = np.zeros((len(centers), 2, 3))
    lafs[:, 0, 0] = a
    lafs[:, 1, 0] = b
    lafs[:, 1, 1] = d
    lafs[:, :, :2] *= magnification
    lafs[:, :, 2] = centers
    return lafs.astype(np.float32)
