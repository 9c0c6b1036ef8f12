"""Stage 3b, between matching and the loop check: MODS inside the scene, for the images it needs.

The exhaustive stage verifies each pair with the scene's preset. On sparse or wide-baseline views
some images end up **weakly attached**: fewer than two verified partners (no triangle of the loop
check can vouch for them, and the mapper has little to place them by) or outside the largest
connected part of the view graph. Their unverified pairs are retried with the ``wide`` preset's
steps (:func:`hardmatch.twoview.steps.default_steps`: the scene's own features first, then affine
shape, then view synthesis) on the images themselves, with every check and the a-contrario test of
:class:`~hardmatch.twoview.on_demand.OnDemandMatcher`.

The mapper links pairs through shared keypoints, so the recovered matches must land on the scene's
features (:func:`joined_record`): an inlier's end within ``duplicate_radius`` of a stored feature IS
that feature (``wide``'s first step detects exactly the stored ones), and the other ends are appended
to the image's features in features.h5 (HardNet descriptors like the rest; matches already written
index the features before them and stay valid). A weak image's matches to a well-attached one then
reach the 3D points of that image's tracks, which is what registering it needs. (Carrying the model
over to the stored features alone, by guided matching in its epipolar bands, does not work where it
matters: on homogr LePoint2, 22-46 % of such matches were right; the stored DoG features do not match
at that viewpoint.) The pair is recovered when at least ``min_inliers`` distinct inliers remain; its
record in matches.h5 is replaced (``wide_retry`` attribute: the step that found the model).

The budget keeps easy scenes as fast as before and bounds hard ones:

- only pairs with a weakly attached image are candidates, so a scene whose images all have two
  verified partners in one connected graph retries nothing (every dev scene, at every density);
- candidates go most promising first: a partner that is itself well attached, then more tentative
  matches (the exhaustive stage's nearest neighbours as a retrieval guess); after each recovery the
  weak images are counted again, so an image stops being retried once it is attached;
- no new retry, and no new step of a running one, starts after ``wide_retry_seconds`` (a step already
  running finishes).

A retried pair is marked in matches.h5 whether or not it was recovered, so a re-run does not retry it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..core.options import CommandConf, option
from ..core.progress import ProgressFactory, no_bar
from ..twoview.config import PipelineConfig
from . import hloc_files as store

#: An image with fewer verified partners than this is weakly attached (a triangle needs two).
MIN_PARTNERS = 2
#: Default budget of the stage, in seconds per scene.
RETRY_SECONDS = 180.0


@dataclass(frozen=True)
class WideRetryConf(CommandConf):
    """Options of the wide-baseline retry (``hardmatch reconstruct --wide-retry/--no-wide-retry``)."""

    wide_retry: bool = option(True, "retry the unverified pairs of weakly attached images (fewer than two "
                                    "verified partners, or outside the largest connected part) with wide's affine "
                                    "and view-synthesis steps before mapping (docs/scenes.md); on by default")
    wide_retry_seconds: float = option(RETRY_SECONDS, "no new wide retry starts after this many seconds "
                                                      "(default 180)", range="[0, inf)")


def weak_images(names: list[str], verified: set) -> set[str]:
    """Images with fewer than :data:`MIN_PARTNERS` verified partners or outside the largest connected
    component of the ``verified`` pairs ({(name0, name1)})."""
    partners = {n: set() for n in names}
    for a, b in verified:
        partners[a].add(b)
        partners[b].add(a)
    component, largest = {}, set()
    for start in names:  # connected components by depth-first search
        if start in component:
            continue
        members, todo = set(), [start]
        while todo:
            n = todo.pop()
            if n not in members:
                members.add(n)
                todo.extend(partners[n] - members)
        for n in members:
            component[n] = members
        largest = max(largest, members, key=len)
    return {n for n in names if len(partners[n]) < MIN_PARTNERS or n not in largest}


def _candidates(summaries: dict, verified: set, tried: set, weak: set) -> list:
    return [p for p in summaries if p not in verified and p not in tried and (p[0] in weak or p[1] in weak)]


def next_candidate(names: list[str], summaries: dict, verified: set, tried: set) -> Optional[tuple[str, str]]:
    """The next pair to retry, or None: an unverified, untried pair with a weakly attached image, its
    partner well attached first, then by the most tentative matches (``summaries``:
    :func:`~hardmatch.scene.hloc_files.pair_summaries`)."""
    weak = weak_images(names, verified)
    candidates = _candidates(summaries, verified, tried, weak)
    if not candidates:
        return None
    return min(candidates, key=lambda p: (p[0] in weak and p[1] in weak, -summaries[p][1], p))


def wide_matcher(config: PipelineConfig):
    """The on-demand matcher of ``config`` on ``wide``'s steps, fundamental geometry. Its first step is
    the scene's own (the stored features again), so inliers on those features join the scene's tracks."""
    from ..twoview.on_demand import OnDemandMatcher

    return OnDemandMatcher(config.with_options(on_demand=True, offline_fallback=True, geometry="fundamental"))


def nearest_within(points, stored, radius: float):
    """For each of ``points`` (M, 2), the index of the nearest of ``stored`` (N, 2) within ``radius`` px, else -1.
    A k-d tree: no (M, N) distance matrix (a view step's thousands of inliers against a scene image's features)."""
    import numpy as np
    from scipy.spatial import cKDTree

    points, stored = np.asarray(points, np.float64).reshape(-1, 2), np.asarray(stored, np.float64).reshape(-1, 2)
    if len(stored) == 0 or len(points) == 0:
        return np.full(len(points), -1, np.int64)
    # the tree's bound is strict: the next float above the radius keeps a distance of exactly ``radius``
    distance, nearest = cKDTree(stored).query(points, distance_upper_bound=np.nextafter(radius, np.inf))
    return np.where(np.isfinite(distance), nearest, -1).astype(np.int64)


def joined_record(result, stored0, stored1, radius: float) -> tuple[dict, list, list]:
    """A wide result's verified matches as a matches.h5 record between the stored features ``stored0``,
    ``stored1`` and the ones to append: ``(record, [features to append to image 0, to image 1], on_scene)``.

    Each inlier's end is the stored feature within ``radius`` px (a feature of the scene's own first
    step, or one appended before), else a new feature appended after the stored ones; a stored or new
    feature is used once per image (the first inlier that claims it). ``on_scene``: per image, the inliers
    whose end there was already a feature of the scene (on a well-attached image, those reach its tracks)."""
    import numpy as np

    pairs = np.asarray(result.matches, np.int64)[np.asarray(result.inliers, bool)]
    ends, appended = [], []
    for side, (wide, stored) in enumerate(((result.features1, stored0), (result.features2, stored1))):
        index = nearest_within(wide.points[pairs[:, side]], stored.points, radius)
        new = np.nonzero(index < 0)[0]
        index[new] = len(stored) + np.arange(len(new))
        ends.append(index)
        appended.append(wide.subset(pairs[new, side]))
    keep = np.zeros(len(pairs), bool)
    _, first0 = np.unique(ends[0], return_index=True)
    _, first1 = np.unique(ends[1], return_index=True)
    keep[np.intersect1d(first0, first1)] = True
    matches = np.stack([ends[0][keep], ends[1][keep]], axis=1)
    size0 = len(stored0) + len(appended[0])
    matches0 = np.full(size0, -1, np.int32)
    scores0 = np.zeros(size0, np.float32)
    matches0[matches[:, 0]] = matches[:, 1]
    wide0, wide1 = result.features1.descriptors_numpy, result.features2.descriptors_numpy
    cosine = (wide0[pairs[keep, 0]] * wide1[pairs[keep, 1]]).sum(1)
    scores0[matches[:, 0]] = store.hloc_score(cosine)
    on_scene = [int((matches[:, 0] < len(stored0)).sum()), int((matches[:, 1] < len(stored1)).sum())]
    record = {"matches0": matches0, "matching_scores0": scores0, "inliers": matches.astype(np.int32),
              "model": np.asarray(result.F, np.float64), "geometry": "fundamental", "reason": "",
              "wide_retry": f"recovered by {result.step}"}
    return record, appended, on_scene


def retry_pair(matcher, out: Path, image_dir: Path, a: str, b: str, deadline: float | None = None) -> dict:
    """Retry one pair and write what it found (features appended, then the pair's record); returns the
    report: ``pair``, ``recovered``, ``step``, ``inliers``, ``on_scene_features`` ([in a, in b]: inlier ends on
    features the scene already had), ``appended`` ([to a, to b]), ``seconds``, ``reason``. ``deadline``: no
    step of the search starts after it (:meth:`~hardmatch.twoview.on_demand.OnDemandMatcher.match_pair`)."""
    t0 = time.perf_counter()
    result = matcher.match_pair(str(Path(image_dir) / a), str(Path(image_dir) / b), deadline=deadline)
    report = {"pair": [a, b], "recovered": False, "step": result.step, "inliers": 0, "on_scene_features": [0, 0],
              "appended": [0, 0], "reason": result.reason}
    features_path, matches_path = Path(out) / store.FEATURES_H5, Path(out) / store.MATCHES_H5
    if result.success:
        stored = [store.read_features(features_path, n) for n in (a, b)]
        record, appended, on_scene = joined_record(result, *stored, matcher.config.duplicate_radius)
        report.update(inliers=len(record["inliers"]), on_scene_features=on_scene, appended=[len(f) for f in appended])
        if report["inliers"] >= matcher.config.min_inliers:
            for name, extra in zip((a, b), appended):
                if len(extra):
                    store.append_features(features_path, name, extra)
            store.write_matches(matches_path, a, b, record)
            report.update(recovered=True, reason="")
        else:
            report["reason"] = (f"{result.step}: {report['inliers']} inliers left on distinct features "
                                f"(< min_inliers {matcher.config.min_inliers})")
    cut_short = not result.success and len(result.steps) < len(matcher.steps)  # the deadline stopped it
    if not report["recovered"] and not cut_short:  # (a cut-short pair stays unmarked: a rerun may finish it)
        store.mark_pair(matches_path, a, b, wide_retry=f"tried: {report['reason']}"[:500])
    report["seconds"] = round(time.perf_counter() - t0, 2)
    return report


def retry_weak_pairs(out: Path, image_dir: Path, names: list[str], pairs, config: PipelineConfig,
                     conf: WideRetryConf = WideRetryConf(), bar: ProgressFactory = no_bar) -> dict:
    """Retry the candidates among ``pairs`` (written in ``out/matches.h5``) within the budget; returns the
    report: ``enabled``, ``weak_before`` / ``weak_after`` (image names), ``tried``, ``recovered`` (their
    reports), ``failed`` (their reports), ``left`` (candidates not tried: budget), ``seconds_budget``.
    ``bar(label, length)``: a context manager yielding ``advance(n)`` (as ``reconstruct``'s stages have),
    its length the candidates at the start (an upper bound of the retries), advanced once per retried pair."""
    if not conf.wide_retry:
        return {"enabled": False}
    path = Path(out) / store.MATCHES_H5
    summaries = store.pair_summaries(path, pairs)
    verified = {p for p, (inliers, _, _) in summaries.items() if inliers > 0}
    tried = {p for p, (_, _, mark) in summaries.items() if mark}
    weak = weak_images(names, verified)
    report = {"enabled": True, "seconds_budget": conf.wide_retry_seconds, "weak_before": sorted(weak),
              "recovered": [], "failed": []}
    matcher, t0 = None, time.perf_counter()
    with bar("wide retry", len(_candidates(summaries, verified, tried, weak))) as advance:
        while (pair := next_candidate(names, summaries, verified, tried)) is not None:
            if time.perf_counter() - t0 >= conf.wide_retry_seconds:
                break
            matcher = matcher or wide_matcher(config)
            outcome = retry_pair(matcher, out, image_dir, *pair, deadline=t0 + conf.wide_retry_seconds)
            tried.add(pair)
            if outcome["recovered"]:
                verified.add(pair)
            report["recovered" if outcome["recovered"] else "failed"].append(outcome)
            advance(1)
    weak = weak_images(names, verified)
    report.update(tried=len(report["recovered"]) + len(report["failed"]),
                  left=len(_candidates(summaries, verified, tried, weak)), weak_after=sorted(weak))
    return report


def summary_text(report: dict) -> str:
    """A few words for the summary line: ``wide retry: 2 weak images, 1 of 3 pairs recovered``."""
    if not report.get("enabled"):
        return "wide retry off"
    return (f"wide retry: {len(report['weak_before'])} weak images, {len(report['recovered'])} of "
            f"{report['tried']} pairs recovered")

