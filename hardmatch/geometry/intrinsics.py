"""Camera intrinsics for calibrated two-view geometry (``geometry="essential"``).

Where a camera matrix K (3, 3) comes from, in this order: given (``--intrinsics fx,fy,cx,cy``
once for both images or twice, image 1 then image 2; the API's ``K1``/``K2`` arrays or the
``intrinsics`` option), the image file's EXIF focal length (:func:`exif_camera`), or the usual
prior (:func:`prior_camera`: focal 1.2 x the longest side, principal point at the image centre).
:func:`resolve_camera` returns the matrix with a short text saying which source was used.

Pixel convention: pixel centres at integer coordinates (as everywhere in hardmatch), so the
centre of a W x H image is ((W - 1) / 2, (H - 1) / 2).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from ..core.options import check_fields, option

#: Prior focal length in units of the image's longest side (COLMAP's and most SfM tools' default).
PRIOR_FOCAL = 1.2

#: The long side of a 35 mm film frame (mm), for EXIF FocalLengthIn35mmFilm.
FILM_35MM_WIDTH = 36.0

# EXIF tags (Exif IFD 0x8769): FocalLength, FocalLengthIn35mmFilm, FocalPlaneXResolution,
# FocalPlaneResolutionUnit, PixelXDimension
_EXIF_IFD = 0x8769
_FOCAL_LENGTH, _FOCAL_35MM = 0x920A, 0xA405
_PLANE_X_RES, _PLANE_UNIT, _PIXEL_X = 0xA20E, 0xA210, 0xA002
_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}  # inch, cm, mm, micrometre


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: ``K`` (3, 3) float64 and ``source`` (given / exif ... / prior ...)."""

    K: np.ndarray
    source: str

    @property
    def params(self) -> list[float]:
        """[fx, fy, cx, cy]."""
        return [float(self.K[0, 0]), float(self.K[1, 1]), float(self.K[0, 2]), float(self.K[1, 2])]


def calibration_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """K (3, 3) float64 of a pinhole camera without skew."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float64)


def parse_intrinsics(value) -> tuple[np.ndarray, ...]:
    """One or two K (3, 3) from ``value``; ``ValueError`` with one line saying what is wrong.

    Accepted: text ``"fx,fy,cx,cy"`` (both images) or ``"fx,fy,cx,cy/fx,fy,cx,cy"`` (image 1 /
    image 2; ``;`` also separates); a sequence of 4 numbers; a K (3, 3) array; or a sequence of two
    of these. Focal lengths must be > 0, every number finite, K without skew and with last row 0 0 1.
    """
    sets = _split_sets(value)
    if not 1 <= len(sets) <= 2:
        raise ValueError(f"expected intrinsics for both images or one set per image (2), got {len(sets)} sets")
    return tuple(_one_camera(s) for s in sets)


def format_intrinsics(matrices) -> str:
    """``"fx,fy,cx,cy"`` or ``"fx,fy,cx,cy/fx,fy,cx,cy"`` of one or two K (3, 3) (:func:`parse_intrinsics` inverse)."""
    return "/".join(",".join(repr(float(v)) for v in (k[0, 0], k[1, 1], k[0, 2], k[1, 2])) for k in matrices)


def _split_sets(value) -> list:
    if isinstance(value, str):
        return [part for part in value.replace(";", "/").split("/")]
    array = np.asarray(value, dtype=object) if not isinstance(value, np.ndarray) else value
    if array.shape == (3, 3) or array.shape == (4,):
        return [value]
    if array.ndim >= 1 and len(value) in (1, 2) and all(np.shape(v) in ((3, 3), (4,)) for v in value):
        return list(value)
    raise ValueError(f"expected fx,fy,cx,cy or a 3x3 camera matrix (once, or one per image), got shape "
                     f"{array.shape}")


def _one_camera(value) -> np.ndarray:
    if isinstance(value, str):
        parts = [p for p in value.replace(" ", ",").split(",") if p.strip()]
        if len(parts) != 4:
            raise ValueError(f"expected 4 numbers fx,fy,cx,cy per image, got {len(parts)} in {value!r}")
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"expected numbers fx,fy,cx,cy, got {value!r}") from None
        k = calibration_matrix(*numbers)
    else:
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"expected numbers fx,fy,cx,cy, got {value!r}") from None
        k = calibration_matrix(*array) if array.shape == (4,) else array
        if k.shape != (3, 3):
            raise ValueError(f"expected 4 numbers fx,fy,cx,cy or a 3x3 matrix, got shape {array.shape}")
        if abs(k[0, 1]) > 1e-9 * max(abs(k[0, 0]), 1.0) or np.any(k[1:, 0] != 0) or k[2, 1] != 0 or k[2, 2] != 1:
            raise ValueError("expected a camera matrix [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] (no skew)")
    if not np.all(np.isfinite(k)):
        raise ValueError(f"expected finite numbers, got fx,fy,cx,cy = {format_intrinsics([k])}")
    if not (k[0, 0] > 0 and k[1, 1] > 0):
        raise ValueError(f"focal lengths fx, fy must be > 0, got {k[0, 0]:g}, {k[1, 1]:g}")
    return k


def prior_camera(shape: tuple[int, int]) -> np.ndarray:
    """K (3, 3) for an image of ``shape`` (H, W): focal PRIOR_FOCAL x the longest side, centred principal point."""
    h, w = shape[:2]
    f = PRIOR_FOCAL * max(h, w)
    return calibration_matrix(f, f, (w - 1) / 2.0, (h - 1) / 2.0)


def exif_focal(path) -> tuple[float, str] | None:
    """Focal length in pixels of the image at its stored size, from its EXIF, and which tag gave it.

    ``FocalLengthIn35mmFilm`` (f35 / 36 mm x the longest side), else ``FocalLength`` with the
    sensor's focal-plane resolution (``FocalPlaneXResolution`` + unit, scaled by the image width
    over ``PixelXDimension``). None when the file has no usable tags (or is not readable by Pillow).
    """
    try:
        from PIL import Image

        with Image.open(os.fspath(path)) as image:
            exif = image.getexif()
            width, height = image.size
            ifd = exif.get_ifd(_EXIF_IFD)
    except Exception:  # any unreadable header: no EXIF (the image loader reports real problems)
        return None
    tags = {**dict(exif), **dict(ifd)}
    f35 = _number(tags.get(_FOCAL_35MM))
    if f35 is not None and f35 > 0:
        return f35 / FILM_35MM_WIDTH * max(width, height), "EXIF FocalLengthIn35mmFilm"
    focal, resolution = _number(tags.get(_FOCAL_LENGTH)), _number(tags.get(_PLANE_X_RES))
    unit = _UNIT_MM.get(int(_number(tags.get(_PLANE_UNIT)) or 2))
    if focal and focal > 0 and resolution and resolution > 0 and unit:
        pixels_per_mm = resolution / unit  # on the sensor, at PixelXDimension pixels across
        stored = _number(tags.get(_PIXEL_X))
        rescale = width / stored if stored and stored > 0 else 1.0
        f_px = focal * pixels_per_mm * rescale
        if math.isfinite(f_px) and f_px > 0:
            return f_px, "EXIF FocalLength and focal-plane resolution"
    return None


def _number(value) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) else None


def exif_camera(path, shape: tuple[int, int]) -> Camera | None:
    """The camera of an image file from its EXIF focal length, principal point at the centre of ``shape`` (H, W)."""
    found = exif_focal(path)
    if found is None:
        return None
    f, tag = found
    h, w = shape[:2]
    return Camera(calibration_matrix(f, f, (w - 1) / 2.0, (h - 1) / 2.0), f"{tag} (focal {f:.1f} px)")


def resolve_camera(given: np.ndarray | None, image, shape: tuple[int, int]) -> Camera:
    """The camera of one image: ``given`` K (3, 3) if any, else the EXIF of ``image`` when it is a
    path, else the prior for ``shape`` (H, W)."""
    if given is not None:
        return Camera(_one_camera(given), "given")
    if isinstance(image, (str, os.PathLike)):
        camera = exif_camera(image, shape)
        if camera is not None:
            return camera
    return Camera(prior_camera(shape), f"prior (focal {PRIOR_FOCAL:g} x longest side, centred principal point)")


def resolve_pair(configured: str | None, K1, K2, images, shapes) -> tuple[Camera, Camera]:
    """Cameras of a pair: ``K1``/``K2`` arrays first, then ``configured`` intrinsics text (one set
    for both or one per image), then EXIF / prior per image (:func:`resolve_camera`)."""
    given = [K1, K2]
    if configured:
        sets = parse_intrinsics(configured)
        sets = sets * 2 if len(sets) == 1 else sets
        given = [g if g is not None else s for g, s in zip(given, sets)]
    return resolve_camera(given[0], images[0], shapes[0]), resolve_camera(given[1], images[1], shapes[1])


def _check_intrinsics(value: str) -> None:
    parse_intrinsics(value)  # ValueError saying what is wrong


def _join_intrinsics(value):
    """Intrinsics as arrays / sequences (API) or a CLI tuple of texts -> the normalized text
    ``"fx,fy,cx,cy"`` or ``"fx,fy,cx,cy/fx,fy,cx,cy"``; text and None stay as they are."""
    if not isinstance(value, (list, tuple)) and not hasattr(value, "shape"):
        return value  # text, None, or a wrong kind that the text conversion refuses (TypeError)
    if isinstance(value, tuple) and all(isinstance(v, str) for v in value):
        return "/".join(value) if value else None  # --intrinsics given once or twice
    return format_intrinsics(parse_intrinsics(value))


@dataclass(frozen=True)
class CamerasConf:
    """The cameras of calibrated geometry (essential): given intrinsics, else EXIF or the prior."""

    intrinsics: str | None = option(None, "essential: camera intrinsics fx,fy,cx,cy in original pixels, once for "
                                        "both images or twice (image 1, then image 2; API: also a 3x3 K or (K1, K2)); "
                                        "default: the EXIF focal length, else focal 1.2 x the longest side with "
                                        "the principal point at the centre (a notice says which)",
                                  check=_check_intrinsics, parse=_join_intrinsics, repeatable=True)

    def __post_init__(self) -> None:
        check_fields(self)
