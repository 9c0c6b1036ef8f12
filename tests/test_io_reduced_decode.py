"""JPEGs to be downscaled are decoded reduced by 2, 4 or 8 (libjpeg's DCT scaling), their partial last blocks
dropped, and area-averaged to the working size: same size as before, pixel centres in register with the original."""

import cv2
import numpy as np
import pytest

from hardmatch.core.io import load_working, working_size

REDUCED_FLAG = {2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4, 8: cv2.IMREAD_REDUCED_GRAYSCALE_8}
#: Odd sizes whose whole 2-, 4- and 8-blocks cover different widths/heights (so the scale tells r apart).
SIZES = [(1283, 997), (2055, 1541)]
#: Dot centres as fractions of the size (several near the right and bottom edges) and their sigma in pixels.
DOTS = [(0.10, 0.15), (0.50, 0.50), (0.37, 0.81), (0.93, 0.92), (0.95, 0.07), (0.06, 0.94), (0.71, 0.33)]
SIGMA = 2.5
BACKGROUND = 30


def _expected_reduction(width, height, w, h):
    return next((r for r in (8, 4, 2) if width // r >= w and height // r >= h), 1)


def _max_side_for(width, height, r):
    """A max_side at which a (width, height) JPEG is decoded reduced by exactly r."""
    max_side = max(width, height) // r - 1
    assert _expected_reduction(width, height, *working_size(width, height, max_side)) == r
    return max_side


def _dots(width, height):
    """Sharp Gaussian dots at off-grid positions on a flat background, and those positions (n, 2)."""
    points = np.array([(fx * width + 0.3, fy * height + 0.7) for fx, fy in DOTS])
    img = np.full((height, width), float(BACKGROUND))
    for x0, y0 in points:
        x1, y1 = int(x0) - 15, int(y0) - 15
        gy, gx = np.mgrid[y1:y1 + 31, x1:x1 + 31]
        img[y1:y1 + 31, x1:x1 + 31] += 200 * np.exp(-((gx - x0) ** 2 + (gy - y0) ** 2) / (2 * SIGMA ** 2))
    return np.clip(img, 0, 255).round().astype(np.uint8), points


def _texture(width, height, detail=2.0, seed=0):
    """Noise smoothed at two scales (1.5 and 4 times ``detail`` pixels), photo-like at a working resolution
    of 1 / ``detail``: noise with detail down to the working pixel would differ by a few gray levels
    between any two ways of downscaling."""
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width), np.float32)
    for sigma, amplitude in ((1.5 * detail, 1.0), (4.0 * detail, 1.5)):
        layer = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), sigma)
        img += amplitude * layer / layer.std()
    return np.clip(128 + 30 * img, 0, 255).round().astype(np.uint8)


def _write(tmp_path, image, name="img.jpg"):
    path = tmp_path / name
    assert cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return path


@pytest.fixture
def imdecode_flags(monkeypatch):
    """The flags of every cv2.imdecode call, in order."""
    calls, real = [], cv2.imdecode

    def spy(buf, flags):
        calls.append(flags)
        return real(buf, flags)

    monkeypatch.setattr(cv2, "imdecode", spy)
    return calls


def _centroid_errors(work, points):
    """(n, 2) error of each dot's working-image centroid mapped to the original, in working pixels."""
    sx, sy = work.scale
    to_original = work.to_original
    gray = np.clip(work.gray.astype(np.float64) - BACKGROUND, 0, None)
    errors = []
    for x0, y0 in points:
        xw, yw = (x0 + 0.5) / sx - 0.5, (y0 + 0.5) / sy - 0.5
        r = int(np.ceil(5 * SIGMA / min(sx, sy))) + 2
        x1, y1 = int(round(xw)) - r, int(round(yw)) - r
        patch = gray[y1:y1 + 2 * r + 1, x1:x1 + 2 * r + 1]
        gy, gx = np.mgrid[y1:y1 + 2 * r + 1, x1:x1 + 2 * r + 1]
        cx, cy = (patch * gx).sum() / patch.sum(), (patch * gy).sum() / patch.sum()
        x, y, _ = to_original @ (cx, cy, 1.0)
        errors.append(((x - x0) / sx, (y - y0) / sy))
    return np.array(errors)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("r", [2, 4, 8])
def test_reduced_jpeg_keeps_dots_in_register(tmp_path, imdecode_flags, size, r):
    width, height = size
    image, points = _dots(width, height)
    path = _write(tmp_path, image)
    max_side = _max_side_for(width, height, r)
    work = load_working(path, max_side)
    assert imdecode_flags == [REDUCED_FLAG[r] | cv2.IMREAD_IGNORE_ORIENTATION]
    errors = _centroid_errors(work, points)
    # each dot within 0.2 working pixel of its true position, no systematic shift
    assert np.abs(errors).max() < 0.2, errors
    assert np.abs(errors.mean(axis=0)).max() < 0.05, errors
    # as good as the full decode (a PNG of the same pixels goes that way): within 0.1 working pixel
    full = load_working(_write(tmp_path, image, "img.png"), max_side)
    assert np.abs(errors).max() < np.abs(_centroid_errors(full, points)).max() + 0.1


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("r", [2, 4, 8])
def test_reduced_jpeg_working_shape_and_scale(tmp_path, size, r):
    width, height = size
    path = _write(tmp_path, _texture(width, height))
    max_side = _max_side_for(width, height, r)
    w, h = working_size(width, height, max_side)
    work = load_working(path, max_side)
    assert work.gray.shape == (h, w) and work.gray.dtype == np.uint8
    assert work.original_shape == (height, width)
    # the working image covers the whole r x r blocks only: r * (W // r) x r * (H // r) original pixels
    assert work.scale == (r * (width // r) / w, r * (height // r) / h)
    assert work.scale != (width / w, height / h)


@pytest.mark.parametrize("max_side", [1600, 1000, 0])
def test_jpeg_not_downscaled_or_barely_is_decoded_in_full(tmp_path, imdecode_flags, max_side):
    width, height = SIZES[0]
    path = _write(tmp_path, _texture(width, height))
    work = load_working(path, max_side)
    w, h = working_size(width, height, max_side)
    assert work.gray.shape == (h, w)
    if (w, h) == (width, height):  # not downscaled: as before, decoded unchanged
        assert imdecode_flags == [cv2.IMREAD_UNCHANGED] and work.scale == (1.0, 1.0)
    else:  # 1000 px: shrunk, but not to half, so no reduction fits: full gray decode
        assert imdecode_flags == [cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION]
        assert work.scale == (width / w, height / h)


def test_png_and_array_of_the_same_content_keep_the_full_path(tmp_path, imdecode_flags):
    width, height = SIZES[1]
    image = _texture(width, height)
    max_side = _max_side_for(width, height, 4)
    w, h = working_size(width, height, max_side)
    expected = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    png = tmp_path / "img.png"
    assert cv2.imwrite(str(png), image)
    for work in (load_working(png, max_side), load_working(image, max_side)):
        assert work.scale == (width / w, height / h) and work.original_shape == (height, width)
        assert np.array_equal(work.gray, expected)
    assert imdecode_flags == [cv2.IMREAD_UNCHANGED]


@pytest.mark.parametrize("r", [2, 4, 8])
def test_reduced_and_full_decode_agree(tmp_path, r):
    width, height = SIZES[1]
    path = _write(tmp_path, _texture(width, height, r))
    max_side = _max_side_for(width, height, r)
    w, h = working_size(width, height, max_side)
    work = load_working(path, max_side)
    # the same original pixels, fully decoded and area-averaged
    full = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)[:r * (height // r), :r * (width // r)]
    reference = cv2.resize(full, (w, h), interpolation=cv2.INTER_AREA).astype(np.float64)
    diff = work.gray - reference
    assert np.abs(diff).mean() < 1.6 and abs(diff.mean()) < 0.3  # measured 0.94-1.21 and up to 0.13
    # no shift between them (least squares on the gradients; a 0.1 px shift reads 0.14 here)
    gx, gy = np.gradient(reference, axis=1), np.gradient(reference, axis=0)
    shift = np.linalg.lstsq(np.c_[gx.ravel(), gy.ravel()], -diff.ravel(), rcond=None)[0]
    assert np.abs(shift).max() < 0.02, shift


def test_failed_reduced_decode_falls_back_to_full_decode(tmp_path, monkeypatch):
    width, height = SIZES[0]
    image = _texture(width, height)
    path = _write(tmp_path, image)
    max_side = _max_side_for(width, height, 4)
    real, calls = cv2.imdecode, []

    def no_reduced(buf, flags):
        calls.append(flags)
        return None if flags & ~cv2.IMREAD_IGNORE_ORIENTATION in REDUCED_FLAG.values() else real(buf, flags)

    monkeypatch.setattr(cv2, "imdecode", no_reduced)
    work = load_working(path, max_side)
    w, h = working_size(width, height, max_side)
    assert calls == [REDUCED_FLAG[4] | cv2.IMREAD_IGNORE_ORIENTATION, cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION]
    assert work.scale == (width / w, height / h) and work.original_shape == (height, width)
    full = real(np.fromfile(str(path), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(work.gray, cv2.resize(full, (w, h), interpolation=cv2.INTER_AREA))
