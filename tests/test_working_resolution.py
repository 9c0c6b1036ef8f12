"""Working resolution (max_side): large images are measured smaller, every coordinate comes back in the
original image, big files are decoded reduced and absurd ones refused."""

import cv2
import numpy as np
import pytest
import torch

from hardmatch import HardNet_create, Pipeline
from hardmatch.core import laf as laflib
from hardmatch.core.errors import ImageError
from hardmatch.core.io import MAX_PIXELS, header_size, load_gray, load_working
from hardmatch.twoview.on_demand import OnDemandMatcher
from hardmatch.twoview.steps import Step

from .conftest import reprojection_error, textured_image

BLOBS = [(400.3, 300.7), (1700.0, 1300.25), (2700.5, 1700.5)]


def _blob_image(width=3001, height=2003) -> np.ndarray:
    """Gaussian blobs (sigma 40 px) at BLOBS on a flat background, plus a bright corner."""
    img = np.full((height, width), 20.0)
    for x0, y0 in BLOBS:
        y1, x1 = int(y0) - 200, int(x0) - 200
        gy, gx = np.mgrid[y1:y1 + 400, x1:x1 + 400]
        img[y1:y1 + 400, x1:x1 + 400] += 200 * np.exp(-((gx - x0) ** 2 + (gy - y0) ** 2) / (2 * 40.0 ** 2))
    img[:40, :40] = 255
    return np.clip(img, 0, 255).round().astype(np.uint8)


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_working_image_keeps_pixel_centres_in_register(tmp_path, suffix):
    path = tmp_path / f"blobs{suffix}"
    cv2.imwrite(str(path), _blob_image(), [cv2.IMWRITE_JPEG_QUALITY, 100])
    for max_side in (700, 1200):  # JPEG decoded to gray, then area-resized
        work = load_working(path, max_side)
        assert work.original_shape == (2003, 3001) and max(work.gray.shape) == max_side
        sx, sy = work.scale
        gray = work.gray.astype(np.float64) - 20
        for x0, y0 in BLOBS:
            xw, yw = (x0 + 0.5) / sx - 0.5, (y0 + 0.5) / sy - 0.5
            r = int(160 / sx)
            y1, x1 = int(yw) - r, int(xw) - r
            patch = np.clip(gray[y1:y1 + 2 * r + 1, x1:x1 + 2 * r + 1], 0, None)
            gy, gx = np.mgrid[y1:y1 + 2 * r + 1, x1:x1 + 2 * r + 1]
            cx, cy = (patch * gx).sum() / patch.sum(), (patch * gy).sum() / patch.sum()
            # the blob's centroid in the working image maps back onto its original position
            assert abs(sx * (cx + 0.5) - 0.5 - x0) < 0.15 and abs(sy * (cy + 0.5) - 0.5 - y0) < 0.15
    assert load_working(path, 0).gray.shape == (2003, 3001)


def test_header_size_and_absurd_sizes_refused_before_decoding(tmp_path):
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), textured_image(200))
    raw = bytearray(small.read_bytes())
    assert header_size(np.frombuffer(bytes(raw), np.uint8)) == cv2.imread(str(small)).shape[1::-1]
    raw[16:20] = (40000).to_bytes(4, "big")  # claim 40000 x 20000 pixels
    raw[20:24] = (20000).to_bytes(4, "big")
    huge = tmp_path / "huge.png"
    huge.write_bytes(bytes(raw))
    with pytest.raises(ImageError, match=r"40000x20000 \(800 Mpx\), more than hardmatch handles"):
        load_working(huge, 2048)
    with pytest.raises(ImageError, match="more than hardmatch handles"):
        load_gray(huge)
    jpeg = tmp_path / "x.jpg"
    cv2.imwrite(str(jpeg), np.zeros((123, 457), np.uint8))
    assert header_size(np.fromfile(str(jpeg), np.uint8)) == (457, 123)
    assert MAX_PIXELS >= 150_000_000


def _doubled(image: np.ndarray) -> np.ndarray:
    """Each pixel as a 2x2 block: its area-averaged half is exactly ``image`` again."""
    return np.repeat(np.repeat(image, 2, axis=0), 2, axis=1)


def test_features_and_keypoints_come_back_in_original_pixels(texture):
    small = texture[:, :600]
    big = _doubled(small)
    side = max(small.shape)
    ref = Pipeline(nfeatures=300, max_side=0).extract(small)
    got = Pipeline(nfeatures=300, max_side=side).extract(big)
    to_big = np.array([[2.0, 0, 0.5], [0, 2.0, 0.5], [0, 0, 1]])  # x_big = 2 (x + 0.5) - 0.5
    assert got.image_shape == big.shape and len(got) == len(ref)
    np.testing.assert_allclose(got.lafs, laflib.transform(ref.lafs, to_big), atol=1e-3)
    np.testing.assert_allclose(got.descriptors_numpy, ref.descriptors_numpy, atol=1e-5)
    np.testing.assert_allclose(got.working_lafs(), ref.lafs, atol=1e-3)

    for options in ({}, {"detector": "hessian"}):  # OpenCV's own keypoints, and frames made keypoints
        kp_ref, d_ref = HardNet_create(300, max_side=0, **options).detectAndCompute(small, None)
        detector = HardNet_create(300, max_side=side, **options)
        kp_big, d_big = detector.detectAndCompute(big, None)
        assert len(kp_big) == len(kp_ref)
        np.testing.assert_allclose([k.pt for k in kp_big], [(2 * k.pt[0] + 0.5, 2 * k.pt[1] + 0.5) for k in kp_ref],
                                   atol=1e-3)
        np.testing.assert_allclose([k.size for k in kp_big], [2 * k.size for k in kp_ref], rtol=1e-4)
        np.testing.assert_allclose(d_big, d_ref, atol=1e-5)
        # and keypoints given in original pixels are described where they are
        _, d_again = detector.compute(big, kp_big)
        # another batch composition: on CUDA cuDNN may pick other (TF32) kernels, measured 3.4e-4 apart on an H100
        np.testing.assert_allclose(d_again, d_big, atol=1e-3 if torch.cuda.is_available() else 1e-4)


@pytest.fixture(scope="module")
def warped_pair():
    """A real photo (1600 px) and a copy under a known homography H_TRUE (image1 -> image2)."""
    image = textured_image(1600)
    h_true = np.array([[0.9, 0.12, 40.0], [-0.08, 0.95, 30.0], [2e-5, -1e-5, 1.0]])
    return image, cv2.warpPerspective(image, h_true, image.shape[::-1], flags=cv2.INTER_LINEAR), h_true


@pytest.mark.parametrize("geometry", ["homography", "fundamental"])
def test_models_are_mapped_back_to_the_original_images(warped_pair, geometry):
    image1, image2, h_true = warped_pair
    result = Pipeline(nfeatures=1500, max_side=640, geometry=geometry).match_pair(image1, image2)
    assert result.success and result.features1.image_shape == image1.shape
    p1, p2 = result.inlier_points
    q1 = cv2.perspectiveTransform(p1[None], h_true)[0]
    assert np.median(np.linalg.norm(q1 - p2, axis=1)) < 1.5  # inlier points are original pixels
    h, w = image1.shape
    if geometry == "homography":
        assert reprojection_error(result.H, h_true, w, h) < 2.0
    else:  # ground-truth correspondences satisfy the reported F (symmetric epipolar distance)
        xs, ys = np.meshgrid(np.linspace(100, w - 100, 8), np.linspace(100, h - 100, 8))
        x1 = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)], 1)
        x2 = x1 @ h_true.T
        x2 /= x2[:, 2:]
        l2, l1 = x1 @ result.F.T, x2 @ result.F
        residual = np.abs(np.sum(x2 * l2, axis=1))
        distance = residual / np.hypot(l2[:, 0], l2[:, 1]) + residual / np.hypot(l1[:, 0], l1[:, 1])
        assert np.median(distance) < 3.0


def test_mods_views_work_on_the_working_image(warped_pair):
    image1, image2, h_true = warped_pair
    config = Pipeline(nfeatures=300, max_side=640, geometry="homography").config
    matcher = OnDemandMatcher(config, steps=(Step("views", {"matcher": "fginn"}, tilts=(1.0, 2.0), angle_step=180),))
    result = matcher.match_pair(image1, image2)
    assert result.success and result.features1.image_shape == image1.shape
    assert reprojection_error(result.H, h_true, image1.shape[1], image1.shape[0]) < 2.0
    centres = result.features1.points
    assert image1.shape[1] > 1000  # 1600 px wide: the views were made from a 640-pixel working image
    assert centres.max(axis=0)[0] > 0.75 * image1.shape[1]  # original pixels, not the working image's
