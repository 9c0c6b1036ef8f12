"""Camera intrinsics: parsing (CLI text, API arrays), EXIF focal length, the prior, and config checks."""

import numpy as np
import pytest
from PIL import Image

from hardmatch.twoview.config import PipelineConfig
from hardmatch.geometry.intrinsics import (
    PRIOR_FOCAL, calibration_matrix, exif_focal, format_intrinsics, parse_intrinsics, prior_camera, resolve_camera,
    resolve_pair,
)


def test_parse_once_and_twice():
    (k,) = parse_intrinsics("1000,1010,640.5,480")
    assert np.array_equal(k, [[1000, 0, 640.5], [0, 1010, 480], [0, 0, 1]])
    k1, k2 = parse_intrinsics("1000,1000,640,480/900,910,600,400")
    assert k1[0, 0] == 1000 and k2[1, 1] == 910 and k2[0, 2] == 600
    assert len(parse_intrinsics("1 2 3 4; 5,6,7,8")) == 2


def test_parse_arrays_and_round_trip():
    k = calibration_matrix(800.0, 805.0, 320.0, 240.0)
    assert np.array_equal(parse_intrinsics(k)[0], k)
    assert np.array_equal(parse_intrinsics([800, 805, 320, 240])[0], k)
    two = parse_intrinsics((k, 2 * k - np.diag([0, 0, 1])))
    assert len(two) == 2 and two[1][0, 0] == 1600
    assert np.array_equal(parse_intrinsics(format_intrinsics(two))[1], two[1])


@pytest.mark.parametrize("text, message", [
    ("1000,1000,640", "4 numbers"),
    ("1000,1000,640,480,1", "4 numbers"),
    ("1000,1000,640,480/1,1,1,1/2,2,2,2", "2"),
    ("1000,abc,640,480", "numbers"),
    ("0,1000,640,480", "> 0"),
    ("1000,-5,640,480", "> 0"),
    ("nan,1000,640,480", "finite"),
])
def test_bad_intrinsics_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        parse_intrinsics(text)
    with pytest.raises(ValueError, match="^intrinsics: "):  # the config names the field
        PipelineConfig(geometry="essential", intrinsics=text)


def test_skewed_matrix_is_refused():
    k = calibration_matrix(800, 800, 320, 240)
    k[0, 1] = 3.0
    with pytest.raises(ValueError, match="skew"):
        parse_intrinsics(k)


def test_config_normalizes_api_arrays_and_cli_tuples():
    k = calibration_matrix(800, 805, 320, 240)
    assert PipelineConfig(geometry="essential", intrinsics=k).intrinsics == "800.0,805.0,320.0,240.0"
    config = PipelineConfig(geometry="essential", intrinsics=("1,2,3,4", "5,6,7,8"))  # --intrinsics twice
    assert config.intrinsics == "1,2,3,4/5,6,7,8"
    assert PipelineConfig(geometry="essential", intrinsics="none").intrinsics is None


def test_ransac_must_fit_the_geometry():
    assert PipelineConfig(geometry="essential").ransac == "auto"
    PipelineConfig(geometry="essential", ransac="magsac")
    with pytest.raises(ValueError, match="^ransac: .*essential"):
        PipelineConfig(geometry="fundamental", ransac="poselib")
    with pytest.raises(ValueError, match="^ransac: degensac"):
        PipelineConfig(geometry="essential", ransac="degensac")


def test_prior_camera():
    k = prior_camera((2048, 3072))
    assert k[0, 0] == k[1, 1] == PRIOR_FOCAL * 3072
    assert (k[0, 2], k[1, 2]) == (1535.5, 1023.5)


def _jpeg_with_exif(path, size, tags):
    exif = Image.Exif()
    ifd = exif.get_ifd(0x8769)
    ifd.update(tags)
    Image.new("L", size, 128).save(path, exif=exif)
    return path


def test_exif_35mm_focal(tmp_path):
    path = _jpeg_with_exif(tmp_path / "a.jpg", (600, 400), {0xA405: 36})  # FocalLengthIn35mmFilm 36 mm
    focal, tag = exif_focal(path)
    assert focal == pytest.approx(600.0) and "35mm" in tag
    camera = resolve_camera(None, path, (400, 600))
    assert camera.K[0, 0] == pytest.approx(600.0) and camera.K[0, 2] == 299.5 and "EXIF" in camera.source


def test_exif_focal_length_with_focal_plane_resolution(tmp_path):
    # 4.5 mm lens, 200 px per mm on a sensor 4000 px wide, image stored at 800 px: 4.5 * 200 * 800 / 4000
    path = _jpeg_with_exif(tmp_path / "b.jpg", (800, 600), {0x920A: 4.5, 0xA20E: 200.0, 0xA210: 4, 0xA002: 4000})
    focal, tag = exif_focal(path)
    assert focal == pytest.approx(180.0) and "FocalLength" in tag


def test_no_exif_falls_back_to_prior(tmp_path):
    path = tmp_path / "plain.png"
    Image.new("L", (300, 200), 0).save(path)
    assert exif_focal(path) is None
    camera = resolve_camera(None, path, (200, 300))
    assert camera.source.startswith("prior") and camera.K[0, 0] == pytest.approx(360.0)
    assert resolve_camera(None, np.zeros((200, 300), np.uint8), (200, 300)).source.startswith("prior")


def test_resolve_pair_order(tmp_path):
    path = _jpeg_with_exif(tmp_path / "a.jpg", (600, 400), {0xA405: 72})
    given = calibration_matrix(1, 1, 0, 0)
    c1, c2 = resolve_pair(None, given, None, (path, path), ((400, 600), (400, 600)))
    assert c1.source == "given" and c2.K[0, 0] == pytest.approx(1200.0)
    c1, c2 = resolve_pair("10,10,1,1/20,20,2,2", None, None, (path, path), ((400, 600), (400, 600)))
    assert (c1.K[0, 0], c2.K[0, 0]) == (10, 20) and c1.source == c2.source == "given"
