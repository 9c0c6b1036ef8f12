"""Image loading: conversions and one-line errors for bad input."""

import cv2
import numpy as np
import pytest

from hardmatch.core.errors import ImageError
from hardmatch.core.io import load_gray

from .conftest import synthetic_texture


def test_colour_16bit_alpha_float_are_converted(tmp_path):
    gray = synthetic_texture(64, 80)
    bgr = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    cv2.imwrite(str(tmp_path / "c.png"), bgr)
    cv2.imwrite(str(tmp_path / "w.png"), gray.astype(np.uint16) * 257)
    bgra = np.dstack([bgr, np.full(gray.shape, 255, np.uint8)])
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    for name in ("c.png", "w.png", "a.png"):
        out = load_gray(tmp_path / name)
        assert out.dtype == np.uint8 and out.shape == gray.shape
        assert np.abs(out.astype(int) - gray).max() <= 1, name
    assert np.abs(load_gray(gray.astype(np.float32) / 255.0).astype(int) - gray).max() <= 1
    assert load_gray(gray[:, :, None]).shape == gray.shape


def test_alpha_composites_over_black():
    bgra = np.dstack([np.full((40, 40, 3), 200, np.uint8), np.zeros((40, 40), np.uint8)])
    bgra[:20, :, 3] = 255
    out = load_gray(bgra)
    assert out[:20].min() == 200 and out[20:].max() == 0


@pytest.mark.parametrize("case, pattern", [
    ("missing", "no such file"),
    ("directory", "is a directory"),
    ("empty", "empty file"),
    ("text", "not an image"),
    ("truncated", "not an image"),
    ("tiny", "too small"),
    ("blank", "blank"),
])
def test_bad_files_raise_one_line_errors(tmp_path, case, pattern):
    path = tmp_path / f"{case}.png"
    if case == "directory":
        path.mkdir()
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("hello, not an image\n")
    elif case == "truncated":
        ok, buf = cv2.imencode(".png", synthetic_texture(64, 64))
        path.write_bytes(buf.tobytes()[:40])
    elif case == "tiny":
        cv2.imwrite(str(path), synthetic_texture(64, 64)[:8, :8])
    elif case == "blank":
        cv2.imwrite(str(path), np.full((100, 100), 7, np.uint8))
    with pytest.raises(ImageError, match=pattern) as info:
        load_gray(path)
    assert "\n" not in str(info.value)


def test_bad_arrays():
    with pytest.raises(ImageError, match="shape"):
        load_gray(np.zeros((10, 10, 2), np.uint8))
    with pytest.raises(ImageError, match="NaN"):
        load_gray(np.full((40, 40), np.nan, np.float32))
