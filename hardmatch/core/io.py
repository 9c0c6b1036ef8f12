"""Image loading and validation.

Every stage below works on a grayscale ``uint8`` array of shape (H, W). :func:`load_gray`
accepts a path or an array and turns anything sensible into that, or raises
:class:`~hardmatch.core.errors.ImageError` with a one-line reason.

:func:`load_working` does the same at a bounded *working resolution* (longest side at most
``max_side``) and returns a :class:`WorkingImage` that knows how its pixels map to the original
image's. JPEGs to be downscaled are decoded straight to gray (1 byte per pixel, never a colour
copy), already reduced by 2, 4 or 8 where the working size allows it (libjpeg's DCT scaling), and
area-averaged; other colour files to be downscaled are decoded straight to gray too, alpha and 16-bit
ones converted in strips. Files larger than :data:`MAX_PIXELS` are refused from their header, before
decoding, for every format :mod:`hardmatch.core.image_header` sizes (all that OpenCV decodes).

Files are taken as displayed: EXIF orientation applied as ``cv2.imread`` applies it, so a path and
``cv2.imread`` of it give the same pixels and coordinates (docs/conventions.md, "Image orientation").
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import cv2
import numpy as np

from .errors import ImageError
from .image_header import ImageHeader, mirrored_axes, orient, read_header
from .options import check_fields, option

ImageLike = Union[str, os.PathLike, np.ndarray]

#: Smallest side (pixels) an image may have: below it no 32x32 patch fits a feature.
MIN_SIDE = 16

#: Largest image (pixels) accepted: 250 Mpx keeps a full decode of an 8-bit colour file under 1 GB.
MAX_PIXELS = 250_000_000

#: How a JPEG (or other colour file without alpha) that will be downscaled is decoded: gray only, EXIF
#: orientation left to the loader (as IMREAD_UNCHANGED leaves it).
_JPEG_GRAY = cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION

#: The same, reduced by 2, 4 or 8 while decoding (libjpeg's DCT-domain scaling: ceil(W / r) x ceil(H / r)
#: pixels, reduced pixel i covering original pixels [r * i, r * i + r), the last one a partial block when r
#: does not divide the size).
_JPEG_REDUCED = {r: flag | cv2.IMREAD_IGNORE_ORIENTATION for r, flag in
                 ((2, cv2.IMREAD_REDUCED_GRAYSCALE_2), (4, cv2.IMREAD_REDUCED_GRAYSCALE_4),
                  (8, cv2.IMREAD_REDUCED_GRAYSCALE_8))}


def load_gray(image: ImageLike, name: str = "image") -> np.ndarray:
    """Load ``image`` (path or array) as a grayscale uint8 array of shape (H, W).

    Colour images are converted with OpenCV's luma weights, an alpha channel is composited
    over black (transparent regions carry no texture), 16-bit and float images are rescaled
    to the 0..255 range. Raises :class:`ImageError` for missing, unreadable, non-image,
    empty, constant, too small or too large (:data:`MAX_PIXELS`) input. The full-resolution case
    of :func:`load_working`.
    """
    return load_working(image, 0, name).gray


def decode_file(path: Path, flags: int = cv2.IMREAD_UNCHANGED, error: type[Exception] = ImageError) -> np.ndarray:
    """Decode an image file with ``cv2.imdecode(flags)`` (handles non-ASCII paths), or raise ``error``
    with a one-line reason (missing, directory, unreadable, empty, not decodable, too large: refused
    from the header before decoding for every format :func:`read_header` sizes)."""
    decoded, _, _ = _decode(Path(path), lambda header, jpeg: flags, error)
    return decoded


def image_size(path: Path, error: type[Exception] = ImageError) -> tuple[int, int]:
    """(width, height) of an image file as displayed, i.e. as :func:`load_gray` and ``cv2.imread``
    return it (EXIF orientation applied), from its header; decoded only when no header parser knows
    the format. Raises ``error`` like :func:`decode_file`."""
    path = Path(path)
    header = _header_of(path, error)
    if header.size is not None:
        return header.displayed_size
    decoded, _, _ = _decode(path, lambda header, jpeg: cv2.IMREAD_UNCHANGED, error)
    return int(decoded.shape[1]), int(decoded.shape[0])


def _header_of(path: Path, error: type[Exception]) -> ImageHeader:
    """The header of the image file ``path`` (:func:`read_header`), or ``error`` if it cannot be read."""
    if not path.exists():
        raise error(f"{path}: no such file")
    if path.is_dir():
        raise error(f"{path}: is a directory, not an image")
    try:
        with open(path, "rb") as fp:
            return read_header(fp)
    except OSError as exc:
        raise error(f"{path}: cannot read file ({exc.strerror or exc})") from None


def _decode(path: Path, choose_flags, error: type[Exception] = ImageError) -> tuple[np.ndarray, ImageHeader, int]:
    """Read ``path`` and decode it with ``choose_flags(its ImageHeader, is JPEG)``: ``cv2.imdecode``
    flags, or a list of them tried in turn until one decodes.

    Returns (decoded array, the header, the flags that decoded it). Sizes above :data:`MAX_PIXELS`
    are refused before decoding when the header tells them, after decoding otherwise.
    """
    header = _header_of(path, error)
    if header.size is not None:
        _check_pixels(header.size[0], header.size[1], str(path), error)
    try:
        raw = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise error(f"{path}: cannot read file ({exc.strerror or exc})") from None
    if raw.size == 0:
        raise error(f"{path}: empty file")
    chosen = choose_flags(header, is_jpeg(raw))
    for flags in chosen if isinstance(chosen, list) else [chosen]:
        decoded = cv2.imdecode(raw, flags)
        if decoded is not None and decoded.size > 0:
            break
    if decoded is None or decoded.size == 0:
        raise error(f"{path}: not an image OpenCV can decode (corrupt, unsupported format, or over OpenCV's "
                    f"size limit)")
    if header.size is None:
        _check_pixels(decoded.shape[1], decoded.shape[0], str(path), error)
    return decoded, header, flags


def _check_pixels(width: int, height: int, label: str, error: type[Exception] = ImageError) -> None:
    if width * height > MAX_PIXELS:
        raise error(f"{label}: image is {width}x{height} ({width * height / 1e6:.0f} Mpx), more than hardmatch "
                    f"handles ({MAX_PIXELS / 1e6:.0f} Mpx); downscale it first")


def header_size(raw: np.ndarray) -> tuple[int, int] | None:
    """(width, height) as stored, from the header of the image file bytes ``raw`` (uint8), else None."""
    return read_header(io.BytesIO(raw.tobytes())).size


def is_jpeg(raw: np.ndarray) -> bool:
    return raw.size > 2 and raw[0] == 0xFF and raw[1] == 0xD8


@dataclass
class WorkingImage:
    """A grayscale uint8 image (h, w) at working resolution, and how it maps to the original image.

    ``original_shape`` (H, W) of the image as given; ``scale`` (sx, sy) original pixels per working
    pixel, with pixel centres in register: ``x_original = sx * (x_working + 0.5) - 0.5``.
    """

    gray: np.ndarray
    original_shape: tuple[int, int]
    scale: tuple[float, float] = (1.0, 1.0)

    @property
    def is_original(self) -> bool:
        return self.scale == (1.0, 1.0)

    @property
    def to_original(self) -> np.ndarray:
        """Homography (3, 3) working -> original pixels."""
        sx, sy = self.scale
        return np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])

    @property
    def from_original(self) -> np.ndarray:
        """Homography (3, 3) original -> working pixels."""
        sx, sy = self.scale
        return np.array([[1 / sx, 0.0, 0.5 / sx - 0.5], [0.0, 1 / sy, 0.5 / sy - 0.5], [0.0, 0.0, 1.0]])

    def mask(self, mask: np.ndarray | None) -> np.ndarray | None:
        """A mask (H, W) of the original image resampled to the working image (nearest), or None."""
        if mask is None or self.is_original:
            return mask
        h, w = self.gray.shape
        covered = mask[:round(self.scale[1] * h), :round(self.scale[0] * w)]  # all of it unless decoded reduced
        return cv2.resize(np.ascontiguousarray(covered), (w, h), interpolation=cv2.INTER_NEAREST)

    @staticmethod
    def as_is(gray: np.ndarray) -> "WorkingImage":
        """A uint8 (H, W) array taken as its own working image (no resampling, no checks)."""
        return WorkingImage(gray, gray.shape[:2])


def working_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(w, h) of the working image of a (width, height) image: longest side ``max_side`` (0: unchanged)."""
    if max_side <= 0 or max(width, height) <= max_side:
        return width, height
    factor = max_side / max(width, height)
    return max(1, int(round(width * factor))), max(1, int(round(height * factor)))


def _jpeg_reduction(width: int, height: int, w: int, h: int, orientation: int = 1) -> int:
    """Largest JPEG decoding reduction r in 8, 4, 2 whose whole r x r blocks of a (width, height) image,
    (width // r) x (height // r), still number at least the (w, h) working size (all as stored); 1 if
    none does. Under an EXIF ``orientation`` that mirrors a stored axis, r must divide that side too: its
    partial last block, which is dropped, would be the displayed first one (the pixel map has no offset)."""
    mirror_x, mirror_y = mirrored_axes(orientation)
    return next((r for r in (8, 4, 2) if width // r >= w and height // r >= h
                 and not (mirror_x and width % r) and not (mirror_y and height % r)), 1)


def _file_flags(header: ImageHeader, jpeg: bool, max_side: int) -> tuple[list[int], int]:
    """How to decode a file: (``cv2.imdecode`` flags to try in turn, JPEG reduction of the first).

    Unchanged unless downscaled (colour then converted in strips, :func:`to_gray_uint8`); downscaled:
    JPEG reduced to gray (:func:`_jpeg_reduction`), other colour without alpha straight to gray by the
    codec (1 byte per pixel), the rest (gray, 16-bit gray, alpha: composited over black) unchanged. EXIF
    orientation is left to :func:`_load_file` everywhere (as IMREAD_UNCHANGED leaves it)."""
    size = header.displayed_size
    if size is None or not 0 < max_side < max(size):
        return [cv2.IMREAD_UNCHANGED], 1
    if jpeg and header.size is not None:
        w, h = working_size(*size, max_side)
        reduction = _jpeg_reduction(*header.size, *((h, w) if header.transposed else (w, h)), header.orientation)
        return ([_JPEG_REDUCED[reduction], _JPEG_GRAY] if reduction > 1 else [_JPEG_GRAY]), reduction
    if header.opaque_colour:
        return [_JPEG_GRAY, cv2.IMREAD_UNCHANGED], 1
    return [cv2.IMREAD_UNCHANGED], 1


def _load_file(path: Path, max_side: int, label: str) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
    """Decode an image file for a working size of ``max_side``: (gray uint8 (h', w') as displayed, the
    displayed original (H, W), the original pixels (W', H') that gray covers from the top-left corner)."""
    reduction = 1

    def flags(header, jpeg):
        nonlocal reduction
        chosen, reduction = _file_flags(header, jpeg, max_side)
        return chosen

    decoded, header, used = _decode(path, flags)
    gray = to_gray_uint8(decoded, label)
    del decoded
    if used != _JPEG_REDUCED.get(reduction):  # not reduced, or the reduced decode failed and the full one did not
        reduction = 1
    # Keep whole r x r blocks only: the working image covers original pixels [0, W') x [0, H'), W' = r * (W // r)
    # (W' = W unreduced). Reduced pixel i is centred on original r * (i + 0.5) - 0.5; area averaging maps working
    # pixel k onto reduced [k * s, (k + 1) * s), s = (W' / r) / w, centred on reduced (k + 0.5) * s - 0.5, i.e. on
    # original r * ((k + 0.5) * s - 0.5 + 0.5) - 0.5 = (W' / w) * (k + 0.5) - 0.5: WorkingImage's formula, sx = W' / w.
    # Cropped as stored, then oriented: _jpeg_reduction kept the dropped blocks at the displayed far edges.
    if reduction > 1:
        width, height = header.size
        gray = gray[:height // reduction, :width // reduction]
    gray = orient(gray, header.left_to_loader)
    original = gray.shape[:2] if reduction == 1 else header.displayed_size[::-1]
    covered = (reduction * gray.shape[1], reduction * gray.shape[0])
    return gray, original, covered


def load_working(image: ImageLike, max_side: int = 0, name: str = "image") -> WorkingImage:
    """Load ``image`` (path or array, as :func:`load_gray`) at working resolution.

    The longest side is at most ``max_side`` pixels (0: original size), downscaled with area
    averaging. A JPEG file to be downscaled is decoded to gray directly, reduced by the largest r in
    8, 4, 2 that leaves at least the working size in whole r x r blocks (:func:`_jpeg_reduction`;
    libjpeg averages in the DCT domain, much faster than a full decode), the partial last blocks
    dropped, then area-averaged to the working size; ``scale`` then maps onto the original pixels
    the working image covers (up to r - 1 fewer than the width and height). A full gray decode is
    the fallback. Files are taken as displayed: EXIF orientation applied as ``cv2.imread`` does, so a
    path and ``cv2.imread`` of it give the same pixels and coordinates (docs/conventions.md). Raises
    :class:`ImageError` like :func:`load_gray`, and for images above :data:`MAX_PIXELS` (refused from
    the header, before decoding, for every format :func:`~hardmatch.core.image_header.read_header` sizes).
    """
    if isinstance(image, WorkingImage):
        return image
    if isinstance(image, np.ndarray):
        label = f"{name} (array)"
        if image.ndim >= 2:
            _check_pixels(image.shape[1], image.shape[0], label)
        gray = to_gray_uint8(image, label)
        original, covered = gray.shape[:2], gray.shape[1::-1]
    else:
        label = str(image)
        gray, original, covered = _load_file(Path(image), max_side, label)
    height, width = original
    w, h = working_size(width, height, max_side)
    if (w, h) == (width, height):
        _check_usable(gray, label)
        return WorkingImage(gray, (height, width))
    gray = cv2.resize(gray, (w, h), interpolation=cv2.INTER_AREA)
    _check_usable(gray, f"{label} at working size")
    return WorkingImage(gray, (height, width), (covered[0] / w, covered[1] / h))


#: Pixels converted at a time by :func:`to_gray_uint8`: its float copies stay a few MB whatever the image size.
_STRIP_PIXELS = 1 << 18


def to_gray_uint8(array: np.ndarray, label: str = "image") -> np.ndarray:
    """Convert an (H, W), (H, W, 1), (H, W, 3) BGR or (H, W, 4) BGRA array to uint8 gray (H, W).

    Converted in strips of rows into the output, so a colour, alpha or 16-bit image costs 1 byte per
    pixel beyond itself (plus one strip's copies), never a full-size float or colour copy."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageError(f"{label}: expected an (H,W), (H,W,3) or (H,W,4) image, got shape {array.shape}")
    if array.size == 0:
        raise ImageError(f"{label}: empty image")
    if array.ndim == 2 and array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    to_uint8 = _uint8_converter(array, label)
    gray = np.empty(array.shape[:2], np.uint8)
    rows = max(1, _STRIP_PIXELS // array.shape[1])
    for top in range(0, array.shape[0], rows):
        gray[top:top + rows] = _gray_strip(to_uint8(np.ascontiguousarray(array[top:top + rows])))
    return gray


def _gray_strip(strip: np.ndarray) -> np.ndarray:
    """uint8 rows (h, W), (h, W, 3) BGR or (h, W, 4) BGRA -> gray (h, W), alpha composited over black."""
    if strip.ndim == 2:
        return strip
    if strip.shape[2] == 4:
        alpha = strip[:, :, 3:4].astype(np.float32) / 255.0
        strip = (strip[:, :, :3].astype(np.float32) * alpha).round().astype(np.uint8)
    return cv2.cvtColor(strip, cv2.COLOR_BGR2GRAY)


def _uint8_converter(array: np.ndarray, label: str):
    """The function taking rows of ``array`` to the uint8 range, decided on the whole array (floats in
    [0, 1] are scaled by 255, other values clipped; 16-bit divided by 257; bool to 0/255)."""
    if array.dtype == np.bool_:
        return lambda rows: rows.astype(np.uint8) * 255
    if array.dtype == np.uint8:
        return lambda rows: rows
    if array.dtype == np.uint16:  # round(x / 257) without a float copy
        return lambda rows: cv2.convertScaleAbs(rows, alpha=1.0 / 257.0)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ImageError(f"{label}: unsupported pixel type {array.dtype}")
    unit = (np.issubdtype(array.dtype, np.floating) and np.float32(array.max(initial=0.0)) <= 1.0
            and np.float32(array.min(initial=0.0)) >= 0.0)

    def convert(rows: np.ndarray) -> np.ndarray:
        values = rows.astype(np.float32)
        if not np.all(np.isfinite(values)):
            raise ImageError(f"{label}: image contains NaN or infinite values")
        return np.clip(values * 255.0 if unit else values, 0, 255).round().astype(np.uint8)

    return convert


def _check_usable(gray: np.ndarray, label: str) -> None:
    height, width = gray.shape
    if min(height, width) < MIN_SIDE:
        raise ImageError(f"{label}: image is {width}x{height}, too small for any feature (need at least {MIN_SIDE}x{MIN_SIDE})")
    if int(gray.max()) == int(gray.min()):
        raise ImageError(f"{label}: image is blank (every pixel is {int(gray.max())}), no features can be found")


@dataclass(frozen=True)
class WorkingResolutionConf:
    """The working resolution images are detected and described at."""

    max_side: int = option(2400, "working resolution: images whose longest side is larger are downscaled to it "
                               "for detection and description (bounded time and memory); every reported "
                               "coordinate stays in the original image; RANSAC thresholds are in working pixels "
                               "(0: off; 2400 chosen by pose accuracy, benchmarks/RESULTS.md)", range="[0, inf)")

    def __post_init__(self) -> None:
        check_fields(self)
