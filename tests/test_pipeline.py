"""End to end on real images: a known homography is recovered; API options and results."""

import cv2
import numpy as np
import pytest

import hardmatch
from hardmatch.twoview.config import PipelineConfig

from .conftest import reprojection_error

H_TRUE = np.array([[0.85, 0.2, 30.0], [-0.15, 0.9, 60.0], [3e-4, -1e-4, 1.0]])


@pytest.fixture(scope="module")
def warped_pair(texture):
    h, w = texture.shape
    return texture, cv2.warpPerspective(texture, H_TRUE, (w, h), flags=cv2.INTER_LINEAR)


def test_known_homography_is_recovered(warped_pair):
    img1, img2 = warped_pair
    result = hardmatch.match_pair(img1, img2, geometry="homography", nfeatures=1500)
    assert result.success, result.reason
    assert result.num_inliers >= 50
    assert reprojection_error(result.H, H_TRUE, img1.shape[1], img1.shape[0]) < 2.0
    p1, p2 = result.inlier_points
    q = cv2.perspectiveTransform(p1[None], H_TRUE)[0]
    assert np.median(np.linalg.norm(q - p2, axis=1)) < 1.5
    assert set(result.timings) >= {"detect1", "patches1", "describe1", "match", "verify", "total"}
    data = result.to_dict()
    assert np.asarray(data["H"]).shape == (3, 3) and data["num_inliers"] == result.num_inliers


def test_fundamental_and_magsac_paths(warped_pair):
    img1, img2 = warped_pair
    result = hardmatch.match_pair(img1, img2, geometry="fundamental", ransac="magsac", nfeatures=1000, matcher="smnn")
    assert result.success and result.F is not None and result.H is None
    x1 = np.c_[result.inlier_points[0], np.ones(result.num_inliers)]
    x2 = np.c_[result.inlier_points[1], np.ones(result.num_inliers)]
    lines = x1 @ result.F.T  # epipolar lines in image 2
    distance = np.abs((x2 * lines).sum(1)) / np.linalg.norm(lines[:, :2], axis=1)
    assert np.median(distance) < 1.0


def test_unrelated_images_give_no_model(texture):
    from .conftest import synthetic_texture

    other = synthetic_texture(texture.shape[0], texture.shape[1], seed=5)
    result = hardmatch.match_pair(texture, other, geometry="homography", nfeatures=800, min_inliers=15)
    assert not result.success and result.reason
    assert result.num_inliers == 0


def test_presets_and_option_checks():
    assert hardmatch.PRESETS["fast"].nfeatures < hardmatch.PRESETS["default"].nfeatures
    with pytest.raises(TypeError, match="unknown pipeline option"):
        PipelineConfig().with_options(nfeature=3)
    with pytest.raises(ValueError, match="unknown preset"):
        hardmatch.Pipeline("fastest")


def test_torch_path_on_cpu_recovers_the_homography_like_the_opencv_path():
    """path=torch (upload once, DoG/patches/HardNet/matching in torch; here on CPU) vs path=opencv."""
    import torch

    from .conftest import textured_image

    img1 = textured_image(400)  # small: the torch DoG is slow on CPU
    img2 = cv2.warpPerspective(img1, H_TRUE, img1.shape[::-1], flags=cv2.INTER_LINEAR)
    pipelines = {path: hardmatch.Pipeline("default", path=path, device="cpu", geometry="homography", nfeatures=500,
                                          precision="fp32") for path in ("opencv", "torch")}
    assert pipelines["torch"].path == "torch" and pipelines["opencv"].path == "opencv"
    results = {path: p.match_pair(img1, img2) for path, p in pipelines.items()}
    for path, result in results.items():
        assert result.success, (path, result.reason)
        assert reprojection_error(result.H, H_TRUE, img1.shape[1], img1.shape[0]) < 2.0, path
    torch_result = results["torch"]
    assert isinstance(torch_result.features1.descriptors, torch.Tensor)  # stayed a tensor until matching
    assert torch_result.features1.descriptors_numpy.shape == (len(torch_result.features1), 128)
    assert torch_result.num_inliers > 0.7 * results["opencv"].num_inliers
    # precision auto on the torch path is what its torch network runs: fp32, even where CPU auto means int8
    assert hardmatch.Pipeline("default", path="torch", device="cpu").descriptor.precision == "fp32"
    assert set(torch_result.timings) >= {"detect1", "patches1", "describe1", "match", "verify", "total"}
    # same frames -> same descriptors on both paths (fp32), through the public describe_frames
    gray = img1
    detections = pipelines["opencv"].frames(gray)
    on_cpu = pipelines["opencv"].describe_frames(gray, detections).descriptors
    on_torch = pipelines["torch"].describe_frames(gray, detections).descriptors_numpy
    assert np.abs(on_cpu - on_torch).max() < 1e-3


def test_execution_path_choice():
    from hardmatch.twoview.pipeline import execution_path

    assert execution_path(PipelineConfig(device="cpu")) == "opencv"  # auto on CPU
    assert execution_path(PipelineConfig(device="cpu", path="torch")) == "torch"
    assert execution_path(PipelineConfig(device="cuda", path="opencv")) == "opencv"
    assert execution_path(PipelineConfig(device="cuda", descriptor="sift")) == "opencv"
    with pytest.raises(ValueError, match="hardnet"):
        execution_path(PipelineConfig(path="torch", descriptor="sift"))
    with pytest.raises(ValueError, match="path: expected one of"):
        PipelineConfig(path="gpu")


def test_torch_path_runs_affnet_and_host_stages_like_the_opencv_path(affnet_home):
    """Hessian (host) + AffNet and dominant orientation (device patches) on the torch path == the opencv path."""
    from .conftest import textured_image

    img1 = textured_image(400)
    img2 = cv2.warpPerspective(img1, H_TRUE, img1.shape[::-1], flags=cv2.INTER_LINEAR)
    results = {path: hardmatch.Pipeline("affine", path=path, device="cpu", geometry="homography",
                                        nfeatures=400).match_pair(img1, img2) for path in ("opencv", "torch")}
    assert results["torch"].num_features == results["opencv"].num_features  # same frames kept
    for path, result in results.items():
        assert result.success, (path, result.reason)
        assert reprojection_error(result.H, H_TRUE, img1.shape[1], img1.shape[0]) < 2.0, path
    np.testing.assert_allclose(results["torch"].features1.lafs, results["opencv"].features1.lafs, atol=0.05)
