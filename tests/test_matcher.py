"""The front module: one-shot pipeline or matching on demand, chosen above both."""

import cv2
import numpy as np
import pytest

import hardmatch
from hardmatch.core.errors import HardmatchError
from hardmatch.twoview.api import build_matcher
from hardmatch.twoview.on_demand import OnDemandMatcher
from hardmatch.twoview.pipeline import Pipeline

from .conftest import reprojection_error, textured_image


def test_build_matcher_picks_by_on_demand():
    one_shot = build_matcher("fast", nfeatures=700)
    assert type(one_shot) is Pipeline and one_shot.config.nfeatures == 700
    wide = build_matcher("wide", geometry="homography")
    assert isinstance(wide, OnDemandMatcher)
    assert wide.config.on_demand and wide.config.geometry == "homography"
    assert [s.name for s in wide.steps][0] == "base"
    assert isinstance(build_matcher(hardmatch.PRESETS["default"].with_options(on_demand=True)), OnDemandMatcher)


def test_bad_options_fail_when_the_matcher_is_built():
    with pytest.raises(ValueError, match="ratio"):
        build_matcher("wide", ratio=1.5)


def test_pipeline_refuses_on_demand_configurations_in_one_line():
    with pytest.raises(HardmatchError, match="build_matcher") as caught:
        Pipeline("wide").match_pair("no-such-file.png", "no-such-file.png")  # refused before any image is read
    assert "\n" not in str(caught.value)


def test_api_match_pair_runs_the_wide_preset_on_demand():
    image = textured_image(400)
    h = np.array([[0.9, 0.1, 20], [-0.1, 0.9, 30], [0, 0, 1.0]])
    warped = cv2.warpPerspective(image, h, (image.shape[1], image.shape[0]))
    result = hardmatch.match_pair(image, warped, geometry="homography", preset="wide", nfeatures=500)
    assert result.step == "base" and [s["step"] for s in result.steps] == ["base"]
    assert reprojection_error(result.H, h, image.shape[1], image.shape[0]) < 3.0
    plain = hardmatch.match_pair(image, warped, geometry="homography", nfeatures=500)
    assert plain.num_inliers == result.num_inliers  # the base step is the default pipeline
