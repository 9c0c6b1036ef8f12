"""Issue 29, case 6: one EXIF convention on every path. Files are taken as displayed (EXIF orientation applied, as
cv2.imread does): a path and cv2.imread of the same file give the same pixels, sizes and reported coordinates."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

import hardmatch
from hardmatch.core.image_header import orient
from hardmatch.core.io import image_size, load_gray, load_working
from hardmatch.datasets.files import image_size as dataset_image_size

from .conftest import synthetic_texture, textured_image

#: EXIF orientation -> how a viewer turns the stored pixels (numpy), written independently of hardmatch's table.
DISPLAY = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: a.T, 6: lambda a: np.rot90(a, -1), 7: lambda a: np.rot90(a, -1)[::-1], 8: lambda a: np.rot90(a)}
#: The stored pixels that display as ``a`` under each orientation (the inverse turns).
STORE = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
         5: lambda a: a.T, 6: lambda a: np.rot90(a), 7: lambda a: np.rot90(a[::-1]), 8: lambda a: np.rot90(a, -1)}


def write_oriented(path, stored: np.ndarray, orientation: int, **options):
    """Save the uint8 gray ``stored`` pixels with an EXIF Orientation tag (Pillow; JPEG at quality 95)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    if path.suffix == ".jpg":
        options.setdefault("quality", 95)
    Image.fromarray(np.ascontiguousarray(stored)).save(path, exif=exif, **options)
    return path


def cv2_displayed(path) -> np.ndarray:
    """What cv2.imread(path, IMREAD_GRAYSCALE) returns (through imdecode: OpenCV 5.1's imread fails on oriented TIFF)."""
    return cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_GRAYSCALE)


def test_stored_and_display_tables_are_inverse():
    a = np.arange(12).reshape(3, 4)
    for o in range(1, 9):
        assert np.array_equal(DISPLAY[o](STORE[o](a)), a)
        assert np.array_equal(orient(STORE[o](a), o), a)  # hardmatch's table is the viewer's


@pytest.mark.parametrize("suffix, options", [(".jpg", {}), (".png", {}), (".webp", {"lossless": True}), (".tif", {})])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_path_gives_cv2_imread_pixels_and_size(tmp_path, suffix, options, orientation):
    displayed = synthetic_texture(120, 200, seed=orientation)
    path = write_oriented(tmp_path / f"img{suffix}", STORE[orientation](displayed), orientation, **options)
    reference = cv2_displayed(path)
    assert reference.shape == (120, 200)  # OpenCV applies the tag for these formats
    assert np.array_equal(load_gray(path), reference)
    assert image_size(path) == dataset_image_size(path) == (200, 120)


@pytest.mark.parametrize("orientation", [1, 5, 6, 7, 8])
@pytest.mark.parametrize("size", [(1283, 997), (2048, 1536)])
def test_reduced_jpeg_decode_keeps_displayed_coordinates(tmp_path, orientation, size):
    """Downscaled JPEGs decoded reduced by libjpeg: dots land where the displayed image has them, whatever the tag
    (sides not divisible by r under a mirroring tag fall back to a smaller r or a full gray decode)."""
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    dots = [(0.2 * width + 0.3, 0.3 * height + 0.6), (0.8 * width + 0.7, 0.85 * height + 0.2),
            (0.1 * width + 0.5, 0.9 * height + 0.5)]
    displayed = np.full((height, width), 30.0)
    for x0, y0 in dots:
        displayed += 200 * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * 6.0 ** 2))
    displayed = displayed.round().astype(np.uint8)
    path = write_oriented(tmp_path / "dots.jpg", STORE[orientation](displayed), orientation)
    work = load_working(path, 600)
    assert work.original_shape == (height, width)
    array = load_working(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), 600)
    assert work.gray.shape == array.gray.shape
    gray = np.clip(work.gray.astype(np.float64) - 30, 0, None)
    for x0, y0 in dots:
        xw, yw = work.from_original[:2] @ (x0, y0, 1.0)
        r = 6
        y1, x1 = int(round(yw)) - r, int(round(xw)) - r
        patch = gray[y1:y1 + 2 * r + 1, x1:x1 + 2 * r + 1]
        gy, gx = np.mgrid[y1:y1 + 2 * r + 1, x1:x1 + 2 * r + 1]
        centroid = ((patch * gx).sum() / patch.sum(), (patch * gy).sum() / patch.sum(), 1.0)
        x, y, _ = work.to_original @ centroid
        assert abs(x - x0) < 0.25 * work.scale[0] and abs(y - y0) < 0.25 * work.scale[1], (orientation, x, y, x0, y0)


@pytest.fixture(scope="module")
def exif6_pair(tmp_path_factory):
    """A.png and B_exif6.jpg: B displays as A under a known homography, its pixels stored turned by 90 degrees
    (EXIF orientation 6, as a phone held upright writes them)."""
    folder = tmp_path_factory.mktemp("exif6")
    a = textured_image(640)
    h, w = a.shape
    h_true = np.array([[0.9, 0.05, 20.0], [-0.04, 0.95, 15.0], [1e-5, 2e-5, 1.0]])
    b = cv2.warpPerspective(a, h_true, (w, h), borderValue=0)
    path_a = folder / "A.png"
    cv2.imwrite(str(path_a), a)
    path_b = write_oriented(folder / "B_exif6.jpg", STORE[6](b), 6)
    assert Image.open(path_b).size == (h, w)  # stored turned: width and height swapped
    return path_a, path_b, h_true


POINT = np.array([[[300.0, 200.0]]])


def test_match_pair_gives_the_same_answer_for_a_path_and_cv2_imread(exif6_pair):
    path_a, path_b, h_true = exif6_pair
    by_path = hardmatch.match_pair(path_a, path_b, geometry="homography")
    by_array = hardmatch.match_pair(cv2.imread(str(path_a)), cv2.imread(str(path_b)), geometry="homography")
    assert by_path.H is not None and by_array.H is not None
    displayed_shape = cv2.imread(str(path_a)).shape[:2]  # B displays at A's size
    assert by_path.features2.image_shape[:2] == by_array.features2.image_shape[:2] == displayed_shape
    mapped = [cv2.perspectiveTransform(POINT, r.H)[0, 0] for r in (by_path, by_array)]
    truth = cv2.perspectiveTransform(POINT, h_true)[0, 0]
    assert np.linalg.norm(mapped[0] - truth) < 1.5, (mapped, truth)  # displayed pixels: the true homography
    assert np.linalg.norm(mapped[0] - mapped[1]) < 0.5, mapped
    assert by_path.num_inliers > 50


def test_cli_pair_on_the_path_reports_displayed_coordinates(exif6_pair, tmp_path):
    path_a, path_b, h_true = exif6_pair
    out = tmp_path / "pair.json"
    proc = subprocess.run([sys.executable, "-m", "hardmatch.cli", "pair", str(path_a), str(path_b), "--geometry",
                           "homography", "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    mapped = cv2.perspectiveTransform(POINT, np.asarray(data["H"]))[0, 0]
    truth = cv2.perspectiveTransform(POINT, h_true)[0, 0]
    assert np.linalg.norm(mapped - truth) < 1.5, (mapped, truth)
