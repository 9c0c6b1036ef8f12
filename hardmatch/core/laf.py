"""Local affine frames (LAFs): the one representation of a feature used by every stage.

A LAF is a (2, 3) matrix ``[A | c]``: ``c`` (2,) is the centre in pixel coordinates (OpenCV's
convention: x to the right, y down, pixel centres at integers) and ``A`` (2, 2) maps the unit
disc of the canonical patch onto the measurement region in the image::

    x_image = A @ u + c,   u in [-1, 1]^2  (u = (1, 0) is the patch's "right", u = (0, 1) its "down")

A batch is an ``np.ndarray`` of shape (N, 2, 3), float32. This is kornia's LAF layout without
the batch dimension (kornia: (B, N, 2, 3)), so conversion is a reshape.

Scale convention, written down once: the *radius* of a frame, ``sqrt(|det A|)``, is the
half-width of the square that becomes the 32x32 patch. A detector keypoint of OpenCV size
``s`` (diameter, in OpenCV's convention ``s = 2 * sigma`` for SIFT) becomes a frame of radius
``magnification * s / 2``.

Orientation convention: OpenCV's ``KeyPoint.angle`` (degrees, counter-clockwise as seen on the
screen, i.e. measured with y pointing up) maps to ``A = r * [[cos t, -sin t], [sin t, cos t]]``
with ``t = angle`` in radians (the patch's x axis is the image direction ``(cos t, sin t)``),
the convention under which OpenCV SIFT orientations make patches of a rotated image agree. Rotating an image rotates the patches with it (tested).
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from .close_pairs import close_pairs


def from_center_radius_angle(centers: np.ndarray, radii: np.ndarray, angles_deg: np.ndarray) -> np.ndarray:
    """Frames from centres (N, 2), radii (N,) and OpenCV angles in degrees (N,) -> (N, 2, 3)."""
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
    radii = np.asarray(radii, dtype=np.float64).reshape(-1)
    theta = np.deg2rad(np.asarray(angles_deg, dtype=np.float64).reshape(-1))
    cos, sin = np.cos(theta), np.sin(theta)
    lafs = np.empty((len(centers), 2, 3), dtype=np.float64)
    lafs[:, 0, 0] = radii * cos
    lafs[:, 0, 1] = -radii * sin
    lafs[:, 1, 0] = radii * sin
    lafs[:, 1, 1] = radii * cos
    lafs[:, :, 2] = centers
    return lafs.astype(np.float32)


def from_keypoints(keypoints: Sequence[cv2.KeyPoint], magnification: float, upright: bool = False) -> np.ndarray:
    """``cv2.KeyPoint`` list -> frames (N, 2, 3). ``upright`` ignores ``kp.angle``."""
    if len(keypoints) == 0:
        return np.zeros((0, 2, 3), np.float32)
    centers = np.array([kp.pt for kp in keypoints], dtype=np.float64)
    sizes = np.array([kp.size for kp in keypoints], dtype=np.float64)
    angles = np.zeros(len(keypoints)) if upright else np.array([kp.angle if kp.angle >= 0 else 0.0 for kp in keypoints])
    return from_center_radius_angle(centers, magnification * sizes / 2.0, angles)


def to_keypoints(lafs: np.ndarray, magnification: float, responses: np.ndarray | None = None,
                 octaves: np.ndarray | None = None) -> list[cv2.KeyPoint]:
    """Frames (N, 2, 3) -> ``cv2.KeyPoint`` list (centre, size, angle; the affine part is lost)."""
    lafs = np.asarray(lafs, dtype=np.float64)
    centers = lafs[:, :, 2]
    radii = radius(lafs)
    angles = orientation_deg(lafs)
    keypoints = []
    for i in range(len(lafs)):
        keypoints.append(cv2.KeyPoint(
            x=float(centers[i, 0]), y=float(centers[i, 1]), size=float(2.0 * radii[i] / magnification),
            angle=float(angles[i]), response=float(responses[i]) if responses is not None else 0.0,
            octave=int(octaves[i]) if octaves is not None else 0))
    return keypoints


def radius(lafs: np.ndarray) -> np.ndarray:
    """Radius ``sqrt(|det A|)`` of each frame: (N, 2, 3) -> (N,)."""
    a = np.asarray(lafs, dtype=np.float64)
    return np.sqrt(np.abs(a[:, 0, 0] * a[:, 1, 1] - a[:, 0, 1] * a[:, 1, 0]))


def orientation_deg(lafs: np.ndarray) -> np.ndarray:
    """OpenCV-convention angle in [0, 360) of each frame's rotation: (N, 2, 3) -> (N,).

    ``A = U R(angle)`` with ``U = make_upright(A)``; for a similarity frame ``r R(angle)`` this is
    the direction of the patch's x axis in the image (kornia's ``get_laf_orientation`` is its negative).
    """
    a = np.asarray(lafs, dtype=np.float64)
    return np.rad2deg(np.arctan2(-a[:, 0, 1], a[:, 0, 0])) % 360.0


def make_upright(lafs: np.ndarray) -> np.ndarray:
    """Drop each frame's rotation, keep its region: ``A = U R`` -> ``U`` (N, 2, 3).

    ``U = [[a, 0], [b, d]]`` (a, d > 0) is the lower-triangular factor with ``U U^T = A A^T``
    (kornia's ``make_upright`` convention), so centre, ellipse and radius are kept and
    :func:`orientation_deg` of the result is 0. A reflection (``det A < 0``) is dropped too.
    """
    a = np.asarray(lafs, dtype=np.float64)
    row = np.hypot(a[:, 0, 0], a[:, 0, 1])
    safe = np.maximum(row, 1e-12)
    det = np.abs(a[:, 0, 0] * a[:, 1, 1] - a[:, 0, 1] * a[:, 1, 0])
    out = np.zeros_like(a)
    out[:, 0, 0] = row
    out[:, 1, 0] = (a[:, 1, 0] * a[:, 0, 0] + a[:, 1, 1] * a[:, 0, 1]) / safe
    out[:, 1, 1] = det / safe
    out[:, :, 2] = a[:, :, 2]
    return out.astype(np.float32)


def rotate(lafs: np.ndarray, angles_deg: np.ndarray) -> np.ndarray:
    """Turn each frame's patch axes by ``angles_deg`` (N,) in the OpenCV sense: ``A -> A R(angle)``.

    For an upright frame the result has :func:`orientation_deg` equal to ``angles_deg``; the
    region (ellipse) is unchanged.
    """
    a = np.asarray(lafs, dtype=np.float64)
    t = np.deg2rad(np.asarray(angles_deg, dtype=np.float64).reshape(-1))
    rot = np.empty((len(t), 2, 2))
    rot[:, 0, 0], rot[:, 0, 1] = np.cos(t), -np.sin(t)
    rot[:, 1, 0], rot[:, 1, 1] = np.sin(t), np.cos(t)
    out = a.copy()
    out[:, :, :2] = a[:, :, :2] @ rot
    return out.astype(np.float32)


def anisotropy(lafs: np.ndarray) -> np.ndarray:
    """Ratio (N,) >= 1 of the long to the short axis of each frame's ellipse."""
    s = np.linalg.svd(np.asarray(lafs, dtype=np.float64)[:, :, :2], compute_uv=False)
    return s[:, 0] / np.maximum(s[:, 1], 1e-12)


def set_radius(lafs: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Rescale each frame's shape so that its radius ``sqrt|det A|`` is ``radii`` (N,)."""
    return scale(lafs, np.asarray(radii, np.float64) / np.maximum(radius(lafs), 1e-12))


def centers(lafs: np.ndarray) -> np.ndarray:
    """Centres (N, 2) of frames (N, 2, 3)."""
    return np.asarray(lafs)[:, :, 2]


def scale(lafs: np.ndarray, factor: float | np.ndarray) -> np.ndarray:
    """Multiply the shape part of each frame by ``factor`` (scalar or (N,)), keep centres."""
    out = np.array(lafs, dtype=np.float32, copy=True)
    out[:, :, :2] *= np.asarray(factor, dtype=np.float32).reshape(-1, 1, 1)
    return out


def transform(lafs: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """Map frames through a homography (3, 3), using its local affine approximation at each centre.

    The returned frame at ``H(c)`` is ``J(c) @ A`` where ``J`` is the Jacobian of ``H`` at ``c``:
    the exact first-order image of the measurement region.
    """
    lafs = np.asarray(lafs, dtype=np.float64)
    h = np.asarray(homography, dtype=np.float64)
    c = lafs[:, :, 2]
    ones = np.ones((len(c), 1))
    p = np.concatenate([c, ones], axis=1) @ h.T
    w = p[:, 2]
    mapped = p[:, :2] / w[:, None]
    # d(x'/w)/dx = (h0 - x' * h2) / w, rows of the Jacobian for x' and y'
    jac = np.empty((len(c), 2, 2))
    jac[:, 0, :] = (h[0, :2][None, :] - mapped[:, 0:1] * h[2, :2][None, :]) / w[:, None]
    jac[:, 1, :] = (h[1, :2][None, :] - mapped[:, 1:2] * h[2, :2][None, :]) / w[:, None]
    out = np.empty_like(lafs)
    out[:, :, :2] = jac @ lafs[:, :, :2]
    out[:, :, 2] = mapped
    return out.astype(np.float32)


def to_ellipses(lafs: np.ndarray) -> np.ndarray:
    """Frames -> ellipses (N, 5) ``x, y, a, b, c`` with ``a x^2 + 2 b x y + c y^2 = 1`` (Oxford format).

    The ellipse is the image of the unit circle under ``A``: ``(A A^T)^{-1}``.
    """
    lafs = np.asarray(lafs, dtype=np.float64)
    shape = lafs[:, :, :2]
    inv = np.linalg.inv(shape @ np.transpose(shape, (0, 2, 1)))
    return np.stack([lafs[:, 0, 2], lafs[:, 1, 2], inv[:, 0, 0], inv[:, 0, 1], inv[:, 1, 1]], axis=1)


def to_kornia(lafs: np.ndarray):
    """Frames (N, 2, 3) numpy -> kornia LAF tensor (1, N, 2, 3) float32."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(lafs, dtype=np.float32))[None]


def from_kornia(lafs) -> np.ndarray:
    """kornia LAF tensor (1, N, 2, 3) -> frames (N, 2, 3) numpy float32."""
    return lafs.detach().cpu().numpy().reshape(-1, 2, 3).astype(np.float32)


def unique(lafs: np.ndarray, tolerance: float = 0.1) -> np.ndarray:
    """Indices (sorted) of the frames to keep: of frames whose centres lie within ``tolerance`` radius
    of each other, whose radii differ by less than ``tolerance`` (log) and whose normalised shapes
    ``A A^T / r^2`` differ by less than ``tolerance``, the first (lowest tilt) is kept."""
    if len(lafs) < 2:
        return np.arange(len(lafs))
    lafs = np.asarray(lafs, dtype=np.float64)
    radii = radius(lafs)
    shape = lafs[:, :, :2] @ np.transpose(lafs[:, :, :2], (0, 2, 1)) / (radii ** 2)[:, None, None]
    drop = np.zeros(len(lafs), bool)
    pairs = close_pairs(lafs[:, :, 2], float(tolerance * np.median(radii)))  # sorted by i, then j
    for i, j in pairs:
        if drop[i] or drop[j]:
            continue
        same = (abs(np.log(radii[i] / radii[j])) < tolerance and np.abs(shape[i] - shape[j]).max() < tolerance
                and np.linalg.norm(lafs[i, :, 2] - lafs[j, :, 2]) < tolerance * radii[i])
        if same:
            drop[max(i, j)] = True
    return np.nonzero(~drop)[0]


# Device path: the few frame operations the torch pipeline needs, on (N, 2, 3) float32 tensors.

def upright_torch(centers, radii):
    """Upright frames (N, 2, 3) tensor from centres (N, 2) and radii (N,) tensors (same device)."""
    import torch

    lafs = torch.zeros((len(centers), 2, 3), dtype=torch.float32, device=centers.device)
    lafs[:, 0, 0] = radii
    lafs[:, 1, 1] = radii
    lafs[:, :, 2] = centers
    return lafs


def rotate_torch(lafs, angles_deg):
    """:func:`rotate` on tensors: ``A -> A R(angle)``, frames (N, 2, 3), angles (N,) degrees."""
    import torch

    t = torch.deg2rad(angles_deg.double())
    cos, sin = torch.cos(t), torch.sin(t)
    rot = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)  # (N, 2, 2)
    out = lafs.double().clone()
    out[:, :, :2] = out[:, :, :2] @ rot
    return out.float()
