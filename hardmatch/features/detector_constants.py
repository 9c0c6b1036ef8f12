"""Detector constants shared by each detector's two implementations (OpenCV/numpy and torch).

They sit below both, so :mod:`hardmatch.features.dog` / :mod:`hardmatch.features.hessian` (which pick
the implementation from the image type) and their device twins ``dog_torch`` / ``hessian_torch``
read the same values without importing each other.
"""

#: Frame radius = MAGNIFICATION * (OpenCV keypoint size / 2) = MAGNIFICATION * sigma: the patch
#: covers +-6 sigma of the blob, the convention of the official HardNet and of kornia (``mr_size``).
DEFAULT_MAGNIFICATION = 6.0

#: Hessian response threshold for images scaled to [0, 1]; weak, since ``nfeatures`` does the selection.
DEFAULT_HESSIAN_THRESHOLD = 1e-4
#: Octave pixels the Hessian detector keeps clear of the image border.
HESSIAN_BORDER = 4
