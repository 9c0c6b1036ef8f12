"""Affine frames through the public API: Feature2D, match_pair, the CLI (Oxford graf 1-5)."""

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

import hardmatch
from hardmatch.core import laf
from hardmatch.cli import main

from .conftest import need_shared, reprojection_error


def test_feature2d_returns_affine_frames(texture, affnet_home):
    hn = hardmatch.HardNet_create(nfeatures=300, detector="hessaff", affine="affnet", orientation="orinet")
    keypoints, descriptors, frames = hn.detectAndComputeFrames(texture)
    assert len(keypoints) == len(descriptors) == len(frames) > 100
    assert descriptors.dtype == np.float32 and frames.shape[1:] == (2, 3)
    assert np.median(laf.anisotropy(frames)) > 1.05  # shapes are adapted, not circles
    kp_xy = np.array([k.pt for k in keypoints])
    np.testing.assert_allclose(kp_xy, laf.centers(frames), atol=1e-3)
    assert len(hn.detect(texture)) == len(keypoints)


@pytest.mark.parametrize("bad", [{"detector": "sift"}, {"affine": "shear"}, {"orientation": "north"}])
def test_bad_frame_options_fail_early(bad):
    with pytest.raises(ValueError):
        hardmatch.Pipeline("default", **bad)


def test_cli_rejects_an_unknown_detector_in_one_line(tmp_path):
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))
    res = CliRunner().invoke(main, ["pair", str(img), str(img), "--detector", "dog+surf"])
    assert res.exit_code == 2 and "unknown detector" in res.output and "Traceback" not in res.output


def test_cli_hessaff_affnet_matches_graf_1_5(tmp_path, affnet_home):
    graf = need_shared("data/oxford/graf")
    out = tmp_path / "o.json"
    res = CliRunner().invoke(main, ["pair", str(graf / "img1.png"), str(graf / "img5.png"), "--detector", "hessaff",
                                    "--affine", "affnet", "--geometry", "homography", "--json", str(out)])
    assert res.exit_code == 0, res.output
    h_est = np.array(json.loads(out.read_text())["H"])
    h_true = np.loadtxt(graf / "H1to5p")
    img = cv2.imread(str(graf / "img1.png"), cv2.IMREAD_GRAYSCALE)
    assert reprojection_error(h_est, h_true, img.shape[1], img.shape[0]) < 5.0
