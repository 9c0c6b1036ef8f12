"""Image loading and validation.

Every stage below works on a grayscale ``uint8`` array of shape (H, W). :func:`load_gray`
accepts a path or an array and turns anything sensible into that, or raises
:class:`~hardmatch.errors.ImageError` with a one-line reason.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import cv2
import numpy as np

from .errors import ImageError

ImageLike = Union[str, os.PathLike, np.ndarray]

#: Smallest side (pixels) an image may have: below it no 32x32 patch fits a feature.
MIN_SIDE = 16


def load_gray(image: ImageLike, name: str = "image") -> np.ndarray:
    """Load ``image`` (path or array) as a grayscale uint8 array of shape (H, W).

    Colour images are converted with OpenCV's luma weights, an alpha channel is composited
    over black (transparent regions carry no texture), 16-bit and float images are rescaled
    to the 0..255 range. Raises :class:`ImageError` for missing, unreadable, non-image,
    empty, constant or too small input.
    """
    if isinstance(image, np.ndarray):
        array = image
        label = f"{name} (array)"
    else:
        path = Path(image)
        label = str(path)
        array = decode_file(path)
    gray = to_gray_uint8(array, label)
    _check_usable(gray, label)
    return gray


def decode_file(path: Path, flags: int = cv2.IMREAD_UNCHANGED, error: type[Exception] = ImageError) -> np.ndarray:
    """Decode an image file with ``cv2.imdecode(flags)`` (handles non-ASCII paths), or raise ``error``
    with a one-line reason (missing, directory, unreadable, empty, not decodable)."""
    path = Path(path)
    if not path.exists():
        raise error(f"{path}: no such file")
    if path.is_dir():
        raise error(f"{path}: is a directory, not an image")
    try:
        raw = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise error(f"{path}: cannot read file ({exc.strerror or exc})") from None
    if raw.size == 0:
        raise error(f"{path}: empty file")
    decoded = cv2.imdecode(raw, flags)
    if decoded is None or decoded.size == 0:
        raise error(f"{path}: not an image OpenCV can decode (corrupt or unsupported format)")
    return decoded


def to_gray_uint8(array: np.ndarray, label: str = "image") -> np.ndarray:
    """Convert an (H, W), (H, W, 1), (H, W, 3) BGR or (H, W, 4) BGRA array to uint8 gray."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageError(f"{label}: expected an (H,W), (H,W,3) or (H,W,4) image, got shape {array.shape}")
    if array.size == 0:
        raise ImageError(f"{label}: empty image")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    array = _to_uint8_range(array, label)
    if array.ndim == 3:
        if array.shape[2] == 4:
            alpha = array[:, :, 3:4].astype(np.float32) / 255.0
            array = (array[:, :, :3].astype(np.float32) * alpha).round().astype(np.uint8)
        array = cv2.cvtColor(array, cv2.COLOR_BGR2GRAY)
    return np.ascontiguousarray(array)


def _to_uint8_range(array: np.ndarray, label: str) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        return (array.astype(np.float32) / 257.0).round().astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating):
        values = array.astype(np.float32)
        if not np.all(np.isfinite(values)):
            raise ImageError(f"{label}: image contains NaN or infinite values")
        if np.issubdtype(array.dtype, np.floating) and values.max(initial=0.0) <= 1.0 and values.min(initial=0.0) >= 0.0:
            values = values * 255.0
        return np.clip(values, 0, 255).round().astype(np.uint8)
    raise ImageError(f"{label}: unsupported pixel type {array.dtype}")


def _check_usable(gray: np.ndarray, label: str) -> None:
    height, width = gray.shape
    if min(height, width) < MIN_SIDE:
        raise ImageError(f"{label}: image is {width}x{height}, too small for any feature (need at least {MIN_SIDE}x{MIN_SIDE})")
    if int(gray.max()) == int(gray.min()):
        raise ImageError(f"{label}: image is blank (every pixel is {int(gray.max())}), no features can be found")
