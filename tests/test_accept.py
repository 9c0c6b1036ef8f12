"""Model acceptance (hardmatch/geometry/acceptance.py): LAF consistency, duplicate merging, homography sanity,
and on real pairs: a non-matching pair is rejected by every preset with a reason, a matching one kept."""

import numpy as np
import pytest

from hardmatch.geometry import acceptance as acc
from hardmatch.core import laf

from .conftest import need_shared

H_TRUE = np.array([[0.9, 0.15, 20.0], [-0.1, 1.1, 10.0], [2e-4, 1e-4, 1.0]])


def _frames(n=60, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.uniform(20, 600, (n, 2))
    return laf.from_center_radius_angle(centers, rng.uniform(8, 40, n), rng.uniform(0, 360, n))


def test_laf_check_accepts_frames_mapped_by_the_homography():
    lafs1 = _frames()
    lafs2 = laf.transform(lafs1, H_TRUE)
    e = acc.laf_errors_homography(H_TRUE, lafs1, lafs2)
    assert max(e["scale"].max(), e["shape"].max()) < 1e-3 and e["angle"].max() < 0.05
    assert acc.laf_consistent("homography", H_TRUE, lafs1, lafs2).all()


@pytest.mark.parametrize("change, name", [("rotate", "angle"), ("scale", "scale"), ("squash", "shape"),
                                          ("mirror", "scale")])
def test_laf_check_rejects_rotated_scaled_squashed_or_mirrored_partners(change, name):
    lafs1 = _frames()
    lafs2 = laf.transform(lafs1, H_TRUE)
    bad = lafs2.copy()
    if change == "rotate":
        bad = laf.rotate(lafs2, np.full(len(lafs2), acc.MAX_ANGLE_ERROR + 20.0))
    elif change == "scale":
        bad = laf.scale(lafs2, 2.0 ** (acc.MAX_SCALE_ERROR + 0.5))
    elif change == "squash":
        bad[:, :, :2] = lafs2[:, :, :2] @ np.diag([2.0 ** (acc.MAX_SHAPE_ERROR + 0.5), 1.0])
        bad = laf.set_radius(bad, laf.radius(lafs2))
    else:
        bad[:, :, 0] = -bad[:, :, 0]  # a mirrored patch
    e = acc.laf_errors_homography(H_TRUE, lafs1, bad)
    assert np.all(e[name] > {"angle": acc.MAX_ANGLE_ERROR, "scale": acc.MAX_SCALE_ERROR,
                             "shape": acc.MAX_SHAPE_ERROR}[name])
    assert not acc.laf_consistent("homography", H_TRUE, lafs1, bad).any()


def test_fundamental_laf_check_uses_epipolar_transfer_of_the_axes():
    # a fronto-parallel translation: F of a pure x translation; frames moved along x agree, turned ones do not
    F = np.array([[0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
    lafs1 = _frames()
    lafs2 = lafs1.copy()
    lafs2[:, 0, 2] += 37.0
    assert (acc.laf_errors_fundamental(F, lafs1, lafs2) < 1e-6).all()
    assert acc.laf_consistent("fundamental", F, lafs1, lafs2).all()
    turned = laf.rotate(lafs2, np.full(len(lafs2), 60.0))
    assert not acc.laf_consistent("fundamental", F, lafs1, turned).any()


def test_duplicates_are_merged_keeping_the_best_ratio():
    pts1 = np.array([[10, 10], [11, 10.5], [10.5, 11], [50, 50], [10.2, 10]], float)
    pts2 = np.array([[100, 100], [101, 100], [200, 200], [60, 60], [100.5, 100.2]], float)
    ratios = np.array([0.8, 0.5, 0.6, 0.9, 0.7])
    keep = acc.unique_correspondences(pts1, pts2, ratios)
    # 0, 1, 4 are one correspondence (within 2 px in both images): 1 has the best ratio;
    # 2 is near in image 1 only, 3 is far: both stay
    assert keep.tolist() == [1, 2, 3]
    assert acc.unique_correspondences(pts1, pts2, ratios, radius=0).tolist() == [0, 1, 2, 3, 4]
    # image 1: {0, 1, 2, 4} and {3}; image 2: {0, 1, 4}, {2}, {3}: the smaller count
    assert acc.distinct_count(pts1, pts2) == 2
    assert acc.distinct_count(pts1[[0, 3]], pts2[[0, 3]]) == 2


def _grid(n=6, size=400.0):
    g = np.linspace(20, size, n)
    return np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)


def test_homography_sanity():
    pts = _grid()
    assert acc.homography_problem(H_TRUE, pts) == ""
    assert "flips" in acc.homography_problem(np.diag([-1.0, 1.0, 1.0]), pts)
    assert "scale" in acc.homography_problem(np.diag([40.0, 40.0, 1.0]), pts)
    assert "scale" in acc.homography_problem(np.diag([0.02, 0.02, 1.0]), pts)
    assert "squashes" in acc.homography_problem(np.diag([20.0, 1.0, 1.0]), pts)
    assert "singular" in acc.homography_problem(np.array([[1.0, 2, 3], [2, 4, 6], [0, 0, 1]]), pts)
    horizon = np.array([[1.0, 0, 0], [0, 1, 0], [-1 / 200.0, 0, 1]])  # line at infinity x = 200 crosses the grid
    assert "infinity" in acc.homography_problem(horizon, pts)


def test_degenerate_inliers_are_rejected():
    line = np.stack([np.linspace(0, 300, 30), np.linspace(0, 150, 30)], 1)
    assert "line" in acc.spread_problem(line, line + 5)
    assert acc.spread_problem(_grid(), _grid() + 5) == ""


def test_accept_removes_inconsistent_inliers_and_counts_distinct_ones():
    pts1 = _grid(7)
    lafs1 = laf.from_center_radius_angle(pts1, np.full(len(pts1), 15.0), np.zeros(len(pts1)))
    lafs2 = laf.transform(lafs1, H_TRUE)
    pts2 = lafs2[:, :, 2].astype(np.float64)
    inliers = np.ones(len(pts1), bool)
    ok = acc.accept("homography", H_TRUE, inliers, pts1, pts2, lafs1, lafs2, min_inliers=10)
    assert ok.accepted and ok.inliers.all()
    turned = laf.rotate(lafs2, np.r_[np.full(len(pts1) - 5, 90.0), np.zeros(5)])
    bad = acc.accept("homography", H_TRUE, inliers, pts1, pts2, lafs1, turned, min_inliers=10)
    assert not bad.accepted and bad.inliers.sum() == 5 and "distinct inliers" in bad.reason
    # ten copies of one correspondence are one inlier
    same = acc.accept("homography", H_TRUE, np.ones(10, bool), np.repeat(pts1[:1], 10, 0), np.repeat(pts2[:1], 10, 0),
                      np.repeat(lafs1[:1], 10, 0), np.repeat(lafs2[:1], 10, 0), min_inliers=5)
    assert not same.accepted and "only 1 distinct" in same.reason


PRESETS = ("default", "fast", "affine", "wide", "sift", "rootsift")


@pytest.fixture(scope="module")
def nonmatching_pair():
    root = need_shared("data/homogr")
    return str(root / "LePoint2A.png"), str(root / "grafB.png")


@pytest.mark.parametrize("preset", PRESETS)
def test_real_nonmatching_pair_is_rejected_by_every_preset(preset, nonmatching_pair, affnet_home):
    """Under F (the CLI default) DEGENSAC finds 12-76 "inliers" on this pair with every preset but
    rootsift (benchmarks/acceptance.py); the frames of none of them agree with the model."""
    import hardmatch

    # wide: 3 views per view step and 150 frames each (not by area): keep it short
    options = {"view_tilts": "2", "view_angle_step": 144.0, "view_density": 0} if preset == "wide" else {}
    result = hardmatch.match_pair(*nonmatching_pair, geometry="fundamental", preset=preset, nfeatures=2000,
                                  **options)
    assert not result.success and result.F is None and result.reason
    assert result.num_inliers == 0
    if preset == "wide":  # every step was tried and each says why it failed
        from hardmatch.twoview.steps import default_steps

        assert [s["step"] for s in result.steps] == [step.name for step in default_steps(result.config)]
        assert all(s["reason"] for s in result.steps) and result.reason.startswith("base: ")


def test_real_matching_pair_is_still_accepted():
    import hardmatch

    root = need_shared("data/oxford/graf")
    result = hardmatch.match_pair(str(root / "img1.png"), str(root / "img3.png"), geometry="homography",
                                  nfeatures=3000)
    assert result.success, result.reason
    from hardmatch.datasets.registry import read_dataset
    from hardmatch.datasets.scoring import judge

    spec = [s for s in read_dataset(root, "oxford") if s.name.endswith("1-3")][0]
    matched, error = judge(spec, result.H)
    assert matched and error < 5.0 and result.num_inliers >= 10


def test_pairs_file_marks_nonmatching_pairs_and_eval_counts_false_accepts(tmp_path):
    import cv2

    from hardmatch.datasets.registry import read_dataset
    from hardmatch.datasets.scoring import judge
    from hardmatch.evaluation.report import summary_table
    from hardmatch.evaluation.summary import summarize

    from .conftest import synthetic_texture

    for name, seed in (("a.png", 1), ("b.png", 2)):
        cv2.imwrite(str(tmp_path / name), synthetic_texture(64, 64, seed=seed))
    (tmp_path / "pairs.txt").write_text("a.png b.png none\n")
    spec = read_dataset(tmp_path / "pairs.txt", "pairs")[0]
    assert spec.negative and spec.H is None and spec.points is None
    assert judge(spec, np.eye(3)) == (False, float("inf"))  # any model of a non-matching pair is wrong
    rows = [{"pipeline": "p", "matched": False, "inliers": 0, "time_total": 1.0, "reason": "", "negative": True,
             "false_accept": accepted} for accepted in (True, False, False)]
    summary = summarize(rows)
    assert (summary[0]["negatives"], summary[0]["false_accepts"]) == (3, 1)
    assert "1/3" in summary_table(summary)



def test_essential_is_checked_through_its_fundamental_matrix():
    """Frames whose centres and axis end points are projections of 3D points seen by a calibrated pose
    pass the F check via F = K2^-T E K1^-1; the same frames shifted across the epipolar lines fail."""
    from hardmatch.geometry.essential import essential_from_pose
    from hardmatch.core.model_maps import fundamental_from_essential
    from hardmatch.geometry.intrinsics import calibration_matrix

    k = calibration_matrix(800.0, 800.0, 320.0, 240.0)
    a = np.radians(10)
    r = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    t = np.array([-1.0, 0.0, 0.1])
    f = fundamental_from_essential(essential_from_pose(r, t), k, k)
    rng = np.random.default_rng(0)
    centres = np.c_[rng.uniform(-1, 1, (20, 2)), rng.uniform(4, 6, 20)]

    def frames(rotation, translation):  # (20, 2, 3): axes to the projections of centre + 2 cm along x, y
        def image(points):
            q = (points @ rotation.T + translation) @ k.T
            return q[:, :2] / q[:, 2:]

        c = image(centres)
        axes = [image(centres + offset) - c for offset in ((0.02, 0, 0), (0, 0.02, 0))]
        return np.stack([axes[0], axes[1], c], axis=2)

    lafs1, lafs2 = frames(np.eye(3), np.zeros(3)), frames(r, t)
    assert acc.laf_consistent("essential", f, lafs1, lafs2).all()
    shifted = lafs2.copy()
    shifted[:, 1, 2] += 10.0  # centres 10 px off (frame radii ~3 px): the end points leave the epipolar lines
    assert not acc.laf_consistent("essential", f, lafs1, shifted).any()
