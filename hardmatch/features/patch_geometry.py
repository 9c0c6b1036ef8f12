"""The patch square shared by both patch samplers: its size and canonical sample positions.

:mod:`hardmatch.features.patches` (OpenCV, numpy) and :mod:`hardmatch.features.patches_torch` (torch, any device)
both read these, so neither imports the other for them; ``patches`` picks the sampler from the
image type and is the module the rest of the package calls.
"""

from __future__ import annotations

import numpy as np

#: Patch side P in pixels: patches are (N, 1, P, P).
PATCH_SIZE = 32


def patch_grid(patch_size: int = PATCH_SIZE) -> np.ndarray:
    """Canonical sample positions (P, P, 2) of ``u`` in [-1, 1]^2, x first."""
    coords = (2.0 * np.arange(patch_size, dtype=np.float32) + 1.0) / patch_size - 1.0
    gx, gy = np.meshgrid(coords, coords)
    return np.stack([gx, gy], axis=-1)
