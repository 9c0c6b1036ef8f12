"""MODS view synthesis and matching on demand."""

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from hardmatch.core import laf
from hardmatch.cli import main
from hardmatch.twoview.config import get_preset
from hardmatch.features.detections import Detections
from hardmatch.twoview.steps import Frames, Step, default_steps
from hardmatch.twoview.on_demand import OnDemandMatcher
from hardmatch.twoview.views import View, detect_in_views, synthesize, view_set

from .conftest import need_shared, reprojection_error, textured_image


def test_view_set_follows_asift_sampling():
    assert view_set((1.0,)) == [View(1.0, 0.0)]
    views = view_set((1.0, 2.0, 4.0))
    assert len(views) == 1 + 5 + 10
    assert [v.angle for v in views if v.tilt == 2.0] == pytest.approx([0, 36, 72, 108, 144])


def test_view_set_samples_scales_and_mods_rotation_density():
    views = view_set((1.0, 2.0, 8.0), 360.0, scales=(1.0, 0.25))
    assert len(views) == 2 * (1 + 1 + 4)
    assert [v.angle for v in views if v.tilt == 8.0 and v.scale == 1.0] == pytest.approx([0, 45, 90, 135])
    assert {v.scale for v in views} == {1.0, 0.25}


@pytest.mark.parametrize("view", [View(2.0, 30.0), View(4.0, 100.0), View(2.8, 0.0), View(1.0, 0.0, 0.25),
                                  View(6.0, 20.0, 0.5)])
def test_synthesized_view_maps_points_as_its_affine_says(view):
    image = np.zeros((200, 300), np.uint8)
    image[50:53, 80:83] = 255
    out, affine = synthesize(image, view)
    expected = affine @ np.array([81.0, 51.0, 1.0])
    ys, xs = np.nonzero(out > out.max() * 0.5)
    weights = out[ys, xs].astype(np.float64)
    centre = np.array([np.average(xs, weights=weights), np.average(ys, weights=weights)])
    assert np.linalg.norm(centre - expected) < 0.5
    assert abs(np.linalg.det(affine[:, :2]) - view.scale ** 2 / view.tilt) < 0.02


def test_frames_from_a_tilted_view_come_back_as_affine_frames_on_the_blob():
    image = np.full((240, 320), 30.0)
    ys, xs = np.mgrid[0:240, 0:320]
    image += 200 * np.exp(-0.5 * (((xs - 160) / 6.0) ** 2 + ((ys - 120) / 6.0) ** 2))
    image = image.astype(np.uint8)

    def brightest_blob(view_image):  # a stand-in detector: one circle at the brightest pixel
        y, x = np.unravel_index(np.argmax(cv2.GaussianBlur(view_image, (0, 0), 2)), view_image.shape)
        return Detections(laf.from_center_radius_angle(np.array([[x, y]], float), np.array([20.0]), np.zeros(1)),
                          np.ones(1, np.float32), np.zeros(1, np.int64))

    back = detect_in_views(brightest_blob, image, [View(4.0, 0.0)])
    assert len(back) == 1
    assert np.linalg.norm(back.lafs[0, :, 2] - [160, 120]) < 2.5
    assert laf.anisotropy(back.lafs)[0] == pytest.approx(4.0, rel=0.05)  # a circle in the view, 4:1 here


def test_unique_keeps_the_first_of_equal_frames():
    frames = laf.from_center_radius_angle(np.array([[10, 10], [10.2, 10.1], [50, 50], [10, 10]], float),
                                          np.array([20.0, 20.0, 20.0, 60.0]), np.zeros(4))
    assert laf.unique(frames).tolist() == [0, 2, 3]


def _tilted_pair(image: np.ndarray, tilt: float, angle: float):
    """image and a strongly tilted, rotated view of it with the homography between them."""
    view, affine = synthesize(image, View(tilt, angle))
    return image, view, np.vstack([affine, [0, 0, 1.0]])


@pytest.fixture(scope="module")
def hard_pair():
    return _tilted_pair(textured_image(400), 4.0, 50.0)


@pytest.mark.parametrize("patches_from", ["original", "view"])
def test_views_step_matches_what_the_first_step_cannot(hard_pair, patches_from):
    image, view, h_true = hard_pair
    config = get_preset("wide").with_options(geometry="homography")
    steps = (Step("plain", {"nfeatures": 500}),
             Step("views", {"nfeatures": 300, "matcher": "fginn"}, tilts=(2.0, 4.0)))
    result = OnDemandMatcher(config, steps, patches_from=patches_from).match_pair(image, view)
    assert [s["step"] for s in result.steps] == ["plain", "views"]
    assert result.steps[0]["inliers"] < 15 and result.step == "views" and result.num_inliers >= 15
    assert reprojection_error(result.H, h_true, image.shape[1], image.shape[0]) < 5.0
    assert set(result.timings) == {"step plain", "step views", "total"}


def test_easy_pairs_stop_after_the_first_step():
    image = textured_image(400)
    h = np.array([[0.9, 0.1, 20], [-0.1, 0.9, 30], [0, 0, 1.0]])
    warped = cv2.warpPerspective(image, h, (image.shape[1], image.shape[0]))
    config = get_preset("wide").with_options(geometry="homography", nfeatures=500)
    result = OnDemandMatcher(config).match_pair(image, warped)
    assert result.step == "base" and len(result.steps) == 1
    assert reprojection_error(result.H, h, image.shape[1], image.shape[0]) < 3.0


def test_cli_wide_preset_matches_a_hard_homogr_pair(tmp_path, affnet_home):
    root = need_shared("data/homogr")
    out = tmp_path / "r.json"
    res = CliRunner().invoke(main, ["pair", str(root / "LePoint2A.png"), str(root / "LePoint2B.png"), "--preset",
                                    "wide", "--geometry", "homography", "--json", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["step"] != "base" and data["num_inliers"] >= 15
    assert data["steps"][0]["step"] == "base" and data["steps"][0]["inliers"] < 15


def test_view_sets_come_from_the_configuration():
    config = get_preset("wide").with_options(view_tilts="1.41/2,2.83", view_angle_step=60)
    views = [g for g in OnDemandMatcher(config).steps[2].groups() if g.options["detector"] == "dog"][0].views()
    assert sorted({v.tilt for v in views}) == [1.41, 2.0, 2.83] and len(views) == 5 + 6 + 9
    for bad in ({"view_tilts": "0.5"}, {"view_tilts": "2,x"}, {"view_angle_step": 0.0}):
        with pytest.raises(ValueError, match="view_"):
            get_preset("wide").with_options(**bad)


def test_default_steps_follow_mods_order():
    steps = default_steps(get_preset("wide"))
    assert [s.name for s in steps] == ["base", "affine", "views", "views-dense", "views-denser"]
    assert steps[0].is_plain and not any(s.is_plain for s in steps[1:])
    views, dense, denser = steps[2], steps[3], steps[4]
    assert max(v.tilt for v in views.views()) == 9.0  # MSER reaches 9 next to Hessian/DoG's 8
    assert {g.options["detector"] for g in views.groups()} == {"dog", "hessaff", "mser"}
    dog_views = [len(g.views()) for s in (views, dense, denser) for g in s.groups() if g.options["detector"] == "dog"]
    # tilts 2, 4, 6, 8 at MODS's rotation densities 360, 120, 72 (one view per density/t degrees over [0, 180))
    assert dog_views == [1 + 2 + 3 + 4, 3 + 6 + 9 + 12, 5 + 10 + 15 + 20]
    # frames per view by the area the view shows: an untilted 1000 x 1000 view keeps 6 per 1000 px^2, a
    # tilt-4 view a quarter; the dense step a third of that (three times the views)
    group, dense_group = views.groups()[0], dense.groups()[0]
    assert group.budget(View(1.0), 1e6) == 2000 and group.budget(View(4.0, 0.0), 1e6) == 1500
    assert dense_group.budget(View(4.0, 0.0), 1e6) == 500 and denser.groups()[0].budget(View(4.0, 0.0), 1e6) == 1500
    fixed = default_steps(get_preset("wide").with_options(view_density=0))  # a fixed count per view: 150, 50, 30
    assert [s.groups()[0].budget(View(4.0, 0.0), 1e6) for s in fixed[2:]] == [150, 50, 30]
    assert all(s.options == {"matcher": "fginn", "ratio": 0.8} for s in steps[1:])
    with pytest.raises(ValueError, match="Frames options"):
        Frames({"matcher": "snn"})


def test_a_step_with_several_frame_groups_describes_them_in_one_call(hard_pair, monkeypatch):
    image, view, _ = hard_pair
    config = get_preset("wide").with_options(geometry="homography")
    step = Step("mixed", {"matcher": "fginn"}, frames=(Frames({"detector": "dog", "nfeatures": 200}, (1.0, 4.0)),
                                                        Frames({"detector": "mser", "nfeatures": 200}, scales=(1.0, 0.5))))
    matcher = OnDemandMatcher(config, (step,))
    calls = []
    pipeline = matcher.pipeline(step)
    original = pipeline.describe_frames
    monkeypatch.setattr(pipeline, "describe_frames", lambda *a, **k: calls.append(1) or original(*a, **k))
    features = matcher.features(step, view)
    assert len(calls) == 1 and len(features) > 200
    assert np.all((features.points >= 0) & (features.points <= [view.shape[1] - 1, view.shape[0] - 1]))


def test_frame_groups_get_frame_detectors_not_pipelines(hard_pair, monkeypatch):
    """Each group and frame budget needs only its frames: one Pipeline (with its descriptor) per step."""
    import hardmatch.twoview.on_demand as mods

    image, view, _ = hard_pair
    step = Step("views", {"matcher": "fginn"}, frames=(
        Frames({"detector": "dog", "nfeatures": 100}, (2.0, 4.0), 360.0, density=2.0),
        Frames({"detector": "mser", "nfeatures": 100}, (1.0, 3.0), 360.0)))
    made = []
    real = mods.Pipeline
    monkeypatch.setattr(mods, "Pipeline", lambda config: made.append(config) or real(config))
    matcher = OnDemandMatcher(get_preset("wide").with_options(geometry="homography"), (step,))
    features = matcher.features(step, view)
    assert len(made) == 1 and len(features) > 20
    assert matcher.frames(step, step.groups()[1]) is matcher.frames(step, step.groups()[1])


def test_frame_budget_follows_the_area_a_view_shows():
    group = Frames({"detector": "dog", "nfeatures": 150}, (2.0, 4.0, 8.0), 360.0, density=2.0)
    area = 1000.0 * 700.0
    budgets = [group.budget(View(t, 0.0), area) for t in (1.0, 2.0, 4.0, 8.0)]
    assert budgets == [1400, 700, 350, 200]  # 2 per 1000 px^2 of the image's area / tilt, multiples of 50
    assert group.budget(View(2.0, 0.0), 100.0 * 100.0) == 150  # never below nfeatures
    assert group.budget(View(1.0, 0.0), 4000.0 * 3000.0) == 2000  # nor above MAX_VIEW_FEATURES
    assert Frames({"nfeatures": 150}).budget(View(8.0, 0.0), area) == 150  # no density: nfeatures per view
    assert group.with_budget(350).options["nfeatures"] == 350


def test_detect_in_views_takes_a_detector_per_view():
    image = textured_image(200)
    asked = []

    def per_view(view):
        asked.append(view.tilt)
        return lambda view_image: Detections(
            laf.from_center_radius_angle(np.array([[view_image.shape[1] / 2, view_image.shape[0] / 2]]),
                                         np.array([5.0]), np.zeros(1)), np.ones(1, np.float32), np.zeros(1, np.int64))

    views = [View(1.0, 0.0), View(2.0, 0.0), View(4.0, 45.0)]
    found = detect_in_views(None, image, views, per_view)
    assert asked == [1.0, 2.0, 4.0]
    assert 1 <= len(found) <= 3
