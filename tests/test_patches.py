"""Patch extraction against a whole-image warp reference, rotation covariance, anti-aliasing."""

import cv2
import numpy as np
import pytest

from hardmatch.core import laf
from hardmatch.features.dog import DoGDetector
from hardmatch.features.patches import build_pyramid, extract_patches, select_levels


def _reference_patch(image: np.ndarray, frame: np.ndarray, size: int = 32) -> np.ndarray:
    """Warp the whole (pre-blurred) image so the frame's square becomes the patch, then crop."""
    # patch pixel (j, i) <- image at A @ u + c with u = (2j + 1) / P - 1
    scale = 2.0 / size
    m = np.zeros((2, 3))
    m[:, :2] = frame[:, :2] * scale
    m[:, 2] = frame[:, 2] + frame[:, :2] @ np.array([scale / 2 - 1, scale / 2 - 1])
    return cv2.warpAffine(image.astype(np.float32), m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def test_shape_contract_and_reference_at_level_zero(texture):
    frames = laf.from_center_radius_angle(np.array([[200.0, 150.0], [100.0, 120.0]]), np.array([16.0, 14.0]),
                                          np.array([0.0, 70.0]))
    patches = extract_patches(texture, frames)
    assert patches.shape == (2, 1, 32, 32) and patches.dtype == np.float32
    for i in range(2):
        ref = _reference_patch(texture, frames[i])
        assert np.abs(patches[i, 0] - ref).max() < 1e-2


def test_large_frames_sample_a_smoothed_level_close_to_blurred_reference(texture):
    frame = laf.from_center_radius_angle(np.array([[300.0, 200.0]]), np.array([64.0]), np.array([10.0]))
    assert select_levels(frame, 6)[0] == 2  # spacing 4 px -> level 2
    patch = extract_patches(texture, frame)[0, 0]
    blurred = cv2.GaussianBlur(texture.astype(np.float32), (0, 0), 2.0)
    ref_blur = _reference_patch(blurred, frame[0])
    ref_sharp = _reference_patch(texture, frame[0])
    err_blur = np.abs(patch - ref_blur).mean()
    # the pyramid patch is a smoothed version: much closer to the blurred warp than to the aliased one
    assert err_blur < 4.0 and err_blur < 0.6 * np.abs(patch - ref_sharp).mean()


def test_squashed_frame_is_blurred_along_its_long_axis_only():
    # a frame 4x longer along x than along y: x samples every 4 px, y every 1 px
    frame = np.array([[[64.0, 0.0, 128.0], [0.0, 16.0, 128.0]]], np.float32)
    period = (np.arange(256) % 5 < 2.5).astype(np.uint8) * 255  # finer than the x sampling: aliases
    across_x = np.tile(period, (256, 1))
    patch = extract_patches(across_x, frame)[0, 0]
    naive = extract_patches(across_x, frame, anisotropic=False)[0, 0]
    assert patch.std() < 0.4 * naive.std()
    # the same stripes along y are sampled finely enough and keep their contrast
    across_y = np.ascontiguousarray(across_x.T)
    patch = extract_patches(across_y, frame)[0, 0]
    naive = extract_patches(across_y, frame, anisotropic=False)[0, 0]
    assert patch.std() > 0.8 * naive.std() > 0


def test_rotating_the_image_rotates_the_patches(texture):
    img = texture
    rot = cv2.rotate(img, cv2.ROTATE_90_COUNTERCLOCKWISE)  # (x, y) -> (y, W - 1 - x)
    width = img.shape[1]
    det = DoGDetector(nfeatures=500)
    d1, d2 = det(img), det(rot)
    c1, c2 = laf.centers(d1.lafs), laf.centers(d2.lafs)
    mapped = np.stack([c1[:, 1], width - 1 - c1[:, 0]], 1)
    dist = np.linalg.norm(mapped[:, None] - c2[None], axis=2)
    j = dist.argmin(1)
    ok = (dist.min(1) < 0.5) & (np.abs(np.log(laf.radius(d1.lafs) / laf.radius(d2.lafs)[j])) < 0.05)
    assert ok.sum() > 50
    p1 = extract_patches(img, d1.lafs[ok]).reshape(ok.sum(), -1)
    p2 = extract_patches(rot, d2.lafs[j[ok]]).reshape(ok.sum(), -1)
    p1 = (p1 - p1.mean(1, keepdims=True)) / (p1.std(1, keepdims=True) + 1e-6)
    p2 = (p2 - p2.mean(1, keepdims=True)) / (p2.std(1, keepdims=True) + 1e-6)
    assert np.median((p1 * p2).mean(1)) > 0.85


def test_many_frames_and_empty_input(texture):
    frames = laf.from_center_radius_angle(np.random.default_rng(0).uniform(0, 300, (40000, 2)),
                                          np.full(40000, 8.0), np.zeros(40000))
    pyramid = build_pyramid(texture)
    out = extract_patches(texture, frames, pyramid=pyramid)  # more rows than one cv2.remap call takes
    assert out.shape == (40000, 1, 32, 32) and np.isfinite(out).all()
    assert extract_patches(texture, np.zeros((0, 2, 3), np.float32)).shape == (0, 1, 32, 32)


def _antialiased_reference(image: np.ndarray, frame: np.ndarray, size: int = 32, supersample: int = 8) -> np.ndarray:
    """Warp the whole image onto the frame's square at ``supersample`` x the patch resolution, then
    box-average down to (size, size): anti-aliased along every direction, at any anisotropy."""
    fine = _reference_patch(image, frame, size * supersample)
    return cv2.resize(fine, (size, size), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("stretch, angle", [(1.0, 30.0), (4.0, 0.0), (4.0, 35.0)])
def test_affine_frames_match_the_antialiased_warp_reference(texture, stretch, angle):
    rng = np.random.default_rng(1)
    centres = rng.uniform(120, 280, (30, 2))
    base = laf.from_center_radius_angle(centres, np.full(30, 40.0), np.full(30, angle))
    frames = base.copy()
    frames[:, :, :2] = base[:, :, :2] @ np.diag([np.sqrt(stretch), 1 / np.sqrt(stretch)]).astype(np.float32)
    ours = extract_patches(texture, frames)
    naive = extract_patches(texture, frames, anisotropic=False)
    ref = np.stack([_antialiased_reference(texture, f) for f in frames])[:, None]
    err = np.abs(ours - ref).mean()
    err_naive = np.abs(naive - ref).mean()
    assert err < 0.1 * texture.std()
    if stretch > 1:
        assert err < 0.8 * err_naive  # the long-axis taps are what brings elongated frames close


def test_device_path_gives_the_opencv_patches_on_a_real_image():
    """grid_sample from the torch pyramid == cv2.remap from the cv2 pyramid, isotropic and squashed frames."""
    import torch

    from hardmatch.features.patches_torch import (
        build_pyramid_torch, extract_patches_torch, image_tensor, select_levels_torch,
    )

    from .conftest import need_shared

    image = cv2.imread(str(need_shared("data/homogr/BostonA.jpg")), cv2.IMREAD_GRAYSCALE)[:600, :800]
    pyramid, pyramid_t = build_pyramid(image), build_pyramid_torch(image_tensor(image))
    assert len(pyramid) == len(pyramid_t)
    for level, level_t in zip(pyramid, pyramid_t):
        np.testing.assert_allclose(level_t[0, 0].numpy(), level, atol=1e-3)
    frames = DoGDetector(400, upright=True)(image).lafs
    rng = np.random.default_rng(0)
    squash = np.stack([np.diag([1.0, s]) for s in rng.uniform(1.0, 5.0, 100)]).astype(np.float32)
    turned = laf.rotate(frames[:100], rng.uniform(0, 360, 100).astype(np.float32))
    turned[:, :, :2] = turned[:, :, :2] @ squash
    frames = np.concatenate([frames, turned])
    assert (select_levels_torch(torch.from_numpy(frames), len(pyramid)).numpy()
            == select_levels(frames, len(pyramid))).all()
    expected = extract_patches(image, frames, pyramid=pyramid)
    got = extract_patches_torch(image_tensor(image), torch.from_numpy(frames), pyramid=pyramid_t)
    assert got.shape == expected.shape and got.dtype == torch.float32
    # cv2.remap quantises bilinear weights to 1/32 px: differences of a few hundredths of a grey level
    assert np.abs(got.numpy() - expected).max() < 0.05
    assert len(np.unique(select_levels(frames, len(pyramid)))) >= 3  # several levels and tap groups exercised
    # the public function dispatches on the input type
    np.testing.assert_array_equal(extract_patches(image_tensor(image), frames[:5], pyramid=pyramid_t).numpy(),
                                  got[:5].numpy())
