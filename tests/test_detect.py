"""Detectors (Hessian, MSER, combinations), affine shape (Baumberg, AffNet) and orientation (dominant, OriNet)."""

import cv2
import numpy as np
import pytest

from hardmatch.core import laf
from hardmatch.features.hessian import HessianDetector
from hardmatch.features.mser import MSERDetector
from hardmatch.features.orientation import DominantGradientOrientation, OriNetOrientation
from hardmatch.features.shape import AffNetShape, BaumbergShape
from hardmatch.core.errors import WeightsError
from hardmatch.features.frames import FrameDetector, parse_detector
from hardmatch.features.patches import extract_patches



def _gaussian_image(blobs, size=(240, 320)) -> np.ndarray:
    """uint8 image of bright Gaussian blobs (x, y, covariance (2, 2)) on a dark background."""
    ys, xs = np.mgrid[0:size[0], 0:size[1]].astype(np.float64)
    img = np.full(size, 30.0)
    for x, y, cov in blobs:
        d = np.stack([xs - x, ys - y], -1)
        inv = np.linalg.inv(cov)
        img += 200 * np.exp(-0.5 * np.einsum("...i,ij,...j->...", d, inv, d))
    return np.clip(img, 0, 255).astype(np.uint8)


def _ncc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.reshape(len(a), -1)
    b = b.reshape(len(b), -1)
    a = (a - a.mean(1, keepdims=True)) / (a.std(1, keepdims=True) + 1e-6)
    b = (b - b.mean(1, keepdims=True)) / (b.std(1, keepdims=True) + 1e-6)
    return (a * b).mean(1)


def _rotate90(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The image turned 90 degrees counter-clockwise and the homography of that turn."""
    width = image.shape[1]
    return np.ascontiguousarray(np.rot90(image)), np.array([[0, 1, 0], [-1, 0, width - 1], [0, 0, 1.0]])


@pytest.mark.parametrize("sigma", [3.0, 6.0])
def test_hessian_finds_a_blob_at_its_centre_and_scale(sigma):
    img = _gaussian_image([(150.3, 110.6, np.eye(2) * sigma ** 2)])
    det = HessianDetector(nfeatures=0)(img)
    best = np.argmax(det.responses)
    centre = det.lafs[best, :, 2]
    assert np.linalg.norm(centre - [150.3, 110.6]) < 0.3
    found_sigma = laf.radius(det.lafs[best:best + 1])[0] / 6.0
    assert abs(np.log(found_sigma / sigma)) < np.log(1.25)
    assert np.allclose(laf.orientation_deg(det.lafs), 0)  # upright: orientation comes later


def test_hessian_is_rotation_covariant(texture):
    rot, h = _rotate90(texture)
    d1, d2 = HessianDetector(nfeatures=1000)(texture), HessianDetector(nfeatures=1000)(rot)
    mapped = laf.centers(laf.transform(d1.lafs, h))
    dist = np.linalg.norm(mapped[:, None] - laf.centers(d2.lafs)[None], axis=2).min(1)
    assert (dist < 1.0).mean() > 0.7


def test_mser_frame_follows_the_region_ellipse():
    angle = np.radians(30)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    cov = rot @ np.diag([16.0 ** 2, 6.0 ** 2]) @ rot.T
    img = _gaussian_image([(130, 100, cov)])  # level sets: ellipses of axis ratio 16:6 at 30 degrees
    det = MSERDetector(nfeatures=0)(img)
    assert len(det) >= 1
    for frame in det.lafs:
        assert np.linalg.norm(frame[:, 2] - [130, 100]) < 1.0
        vals, vecs = np.linalg.eigh(frame[:, :2] @ frame[:, :2].T)
        assert np.sqrt(vals[1] / vals[0]) == pytest.approx(16 / 6, rel=0.1)
        assert abs(np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1])) % 180 - 30) < 3
        assert laf.orientation_deg(frame[None])[0] == pytest.approx(0, abs=1e-3)


def test_detector_names_combine_and_bad_names_fail(texture):
    assert parse_detector("dog+MSER") == ["dog", "mser"]
    for bad in ("sift", "dog+dog", "dog+"):
        with pytest.raises(ValueError):
            parse_detector(bad)
    dog = FrameDetector("dog", nfeatures=300)(texture)
    mser = FrameDetector("mser", nfeatures=300)(texture)
    both = FrameDetector("dog+mser", nfeatures=300)(texture)
    assert len(both) == len(dog) + len(mser) and len(mser) > 20


def test_mask_keeps_frames_inside(texture):
    mask = np.zeros(texture.shape, np.uint8)
    mask[:, : texture.shape[1] // 2] = 255
    det = FrameDetector("hessian+mser", nfeatures=500)(texture, mask)
    assert len(det) > 50 and (laf.centers(det.lafs)[:, 0] <= texture.shape[1] // 2 + 0.5).all()


def test_baumberg_adapts_to_an_elongated_blob():
    angle = np.radians(30)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    cov = rot @ np.diag([8.0 ** 2, 4.0 ** 2]) @ rot.T
    img = _gaussian_image([(160, 120, cov)])
    start = laf.from_center_radius_angle(np.array([[160.0, 120.0]]), np.array([6 * 5.6]), np.array([0.0]))
    frames, keep = BaumbergShape()(img, start)
    assert keep.all()
    vals, vecs = np.linalg.eigh(frames[0, :, :2] @ frames[0, :, :2].T)
    assert abs(np.sqrt(vals[1] / vals[0]) - 2.0) < 0.3  # the blob's axis ratio
    long_axis = np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1])) % 180
    assert abs(long_axis - 30) < 5
    assert laf.radius(frames)[0] == pytest.approx(laf.radius(start)[0], rel=1e-4)


@pytest.mark.parametrize("estimator", ["baumberg", "affnet"])
def test_affine_shape_makes_patches_of_a_tilted_view_agree(texture, affnet_home, estimator):
    """Tilt the image 2:1; frames adapted on both views agree better than plain circles do."""
    shape = BaumbergShape() if estimator == "baumberg" else AffNetShape()
    tilt = np.array([[1.0, 0.25, 0.0], [0.0, 0.5, 0.0], [0, 0, 1.0]])
    size = (int(texture.shape[1] * 1.25), int(texture.shape[0] * 0.5))
    warped = cv2.warpAffine(texture, tilt[:2], size, flags=cv2.INTER_AREA)
    d1 = HessianDetector(nfeatures=400)(texture)
    exact = laf.transform(d1.lafs, tilt)
    inside = (laf.centers(exact) > 40).all(1) & (laf.centers(exact) < np.array(size) - 40).all(1)
    frames1 = d1.lafs[inside]
    # what a similarity-covariant detector finds in the tilted view: a circle of the mapped radius
    circles2 = laf.from_center_radius_angle(laf.centers(exact[inside]), laf.radius(exact[inside]),
                                            np.zeros(inside.sum()))
    orient = DominantGradientOrientation()
    plain = _ncc(extract_patches(texture, orient(texture, frames1)), extract_patches(warped, orient(warped, circles2)))
    a1, k1 = shape(texture, frames1)
    a2, k2 = shape(warped, circles2)
    keep = k1 & k2
    adapted = _ncc(extract_patches(texture, orient(texture, a1[keep])),
                   extract_patches(warped, orient(warped, a2[keep])))
    assert keep.mean() > 0.5
    assert np.median(adapted) > np.median(plain) + 0.1


@pytest.mark.parametrize("name", ["dominant", "orinet"])
def test_orientation_makes_patches_of_a_rotated_image_agree(texture, affnet_home, name):
    orient = DominantGradientOrientation() if name == "dominant" else OriNetOrientation()
    rot, h = _rotate90(texture)
    frames = HessianDetector(nfeatures=300)(texture).lafs
    frames_rot = laf.make_upright(laf.transform(frames, h))  # as a detector would find them: upright
    unoriented = _ncc(extract_patches(texture, frames), extract_patches(rot, frames_rot))
    o1, o2 = orient(texture, frames), orient(rot, frames_rot)
    oriented = _ncc(extract_patches(texture, o1), extract_patches(rot, o2))
    assert np.median(unoriented) < 0.3 < 0.9 < np.median(oriented)


def test_affnet_weights_are_checked_against_the_registry(affnet_home):
    (affnet_home / "AffNet.pth").write_bytes(b"not the official file")
    with pytest.raises(WeightsError, match="sha256"):
        AffNetShape()


def _nearest_frame_agreement(lafs: np.ndarray, reference: np.ndarray, max_px: float = 1.5,
                             max_scale: float = 1.3) -> float:
    """Fraction of ``lafs`` with a ``reference`` frame within ``max_px`` pixels and a factor ``max_scale`` in radius."""
    d = np.linalg.norm(lafs[:, None, :, 2] - reference[None, :, :, 2], axis=2)
    j = d.argmin(1)
    scale = np.abs(np.log(laf.radius(lafs) / laf.radius(reference)[j]))
    return float(((d[np.arange(len(lafs)), j] < max_px) & (scale < np.log(max_scale))).mean())


def test_torch_dog_finds_the_opencv_frames_on_a_real_image():
    """Device DoG (plain torch, here on CPU) against OpenCV SIFT's detector: same blobs, same scales."""
    import torch

    from hardmatch.features.dog import DoGDetector
    from hardmatch.features.patches_torch import image_tensor

    from .conftest import need_shared

    image = cv2.imread(str(need_shared("data/oxford/graf/img1.png")), cv2.IMREAD_GRAYSCALE)
    image = cv2.resize(image, (400, 320), interpolation=cv2.INTER_AREA)
    reference = DoGDetector(0, contrast_threshold=0.03, upright=True)(image)  # all ~960 blobs
    everything = DoGDetector(0, contrast_threshold=0.03, upright=True).detect_torch(image_tensor(image)).numpy()
    assert abs(len(everything) - len(reference)) < 0.1 * len(reference)
    assert _nearest_frame_agreement(everything.lafs, reference.lafs) > 0.9  # measured 0.975
    assert _nearest_frame_agreement(reference.lafs, everything.lafs) > 0.9
    detector = DoGDetector(500, contrast_threshold=0.03, upright=True)
    got = detector.detect_torch(image_tensor(image))
    assert isinstance(got.lafs, torch.Tensor) and got.lafs.shape == (500, 2, 3)
    assert (got.responses[:-1] >= got.responses[1:]).all()  # strongest first
    assert _nearest_frame_agreement(got.numpy().lafs, reference.lafs) > 0.9
    # oriented: one frame per orientation peak, still the same blobs
    oriented = DoGDetector(500, contrast_threshold=0.03).detect_torch(image_tensor(image)).numpy()
    assert len(oriented) == 500 and _nearest_frame_agreement(oriented.lafs, reference.lafs) > 0.9
    # the mask is honoured
    mask = np.zeros_like(image)
    mask[:, :200] = 255
    masked = detector.detect_torch(image_tensor(image), torch.from_numpy(mask)).numpy()
    assert len(masked) and (masked.lafs[:, 0, 2] < 200.5).all()


def test_torch_dominant_orientation_equals_the_numpy_one(texture):
    import torch

    from hardmatch.features.orientation import dominant_gradient_angles, gradient_orientation_peaks_torch

    frames = HessianDetector(300)(texture).lafs
    patches = extract_patches(texture, frames)
    expected = dominant_gradient_angles(patches)
    index, angles = gradient_orientation_peaks_torch(torch.from_numpy(patches))
    assert (index.numpy() == np.arange(len(frames))).all()
    difference = (angles.numpy() - expected + 180.0) % 360.0 - 180.0
    assert np.abs(difference).max() < 1e-2
    index, angles = gradient_orientation_peaks_torch(torch.from_numpy(patches), peak_ratio=0.8)
    assert len(frames) < len(index) < 2 * len(frames)  # some frames get a second orientation (SIFT's rule)
    assert set(index.tolist()) == set(range(len(frames)))


def test_torch_hessian_gives_the_opencv_filter_frames():
    from hardmatch.features.patches_torch import image_tensor

    from .conftest import need_shared

    image = cv2.imread(str(need_shared("data/oxford/graf/img1.png")), cv2.IMREAD_GRAYSCALE)
    image = cv2.resize(image, (400, 320), interpolation=cv2.INTER_AREA)
    detector = HessianDetector(300)
    expected = detector(image)
    got = detector.detect_torch(image_tensor(image)).numpy()
    assert len(got) == len(expected) == 300
    # same scale space up to the Gaussian kernels' truncation: measured 99.8 % within 0.1 px and 1 % in scale
    assert _nearest_frame_agreement(got.lafs, expected.lafs, max_px=0.1, max_scale=1.01) > 0.97
    assert _nearest_frame_agreement(expected.lafs, got.lafs, max_px=0.1, max_scale=1.01) > 0.97


def test_baumberg_on_device_patches_adapts_like_the_numpy_one():
    """Baumberg's iteration with patches and moments on the device (torch image) vs numpy, same frames."""
    from hardmatch.features.patches_torch import build_pyramid_torch, image_tensor

    from .conftest import need_shared

    image = cv2.imread(str(need_shared("data/oxford/graf/img1.png")), cv2.IMREAD_GRAYSCALE)
    image = cv2.resize(image, (400, 320), interpolation=cv2.INTER_AREA)
    frames = HessianDetector(200)(image).lafs
    expected, keep_expected = BaumbergShape()(image, frames)
    tensor = image_tensor(image)
    got, keep = BaumbergShape()(tensor, frames, pyramid=build_pyramid_torch(tensor))
    assert (keep == keep_expected).mean() > 0.97
    both = keep & keep_expected
    # per-patch blur borders differ from the stacked-patch blur of the numpy path: measured 1 % of the radius (90th pct.)
    error = np.abs(got[both] - expected[both]).reshape(-1, 6).max(1) / laf.radius(expected[both])
    assert np.percentile(error, 90) < 0.05
    assert laf.anisotropy(expected[both]).max() > 1.3  # some frames really were adapted
