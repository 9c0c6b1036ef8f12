"""The steps of matching on demand (MODS): which frames, on which views, each step describes.

A :class:`Step` is a configuration of stages: its own options over the base configuration, and
frame groups (:class:`Frames`: detector options and the views they run on). :func:`default_steps`
is the ``wide`` preset's sequence, cheapest first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..core.options import check_fields, option
from .views import ANGLE_STEP, View, view_set

#: FrameDetector options a :class:`Frames` group may set; everything else is a step (pipeline) option.
FRAME_OPTIONS = ("detector", "nfeatures", "affine", "orientation", "contrast_threshold")


@dataclass(frozen=True)
class Frames:
    """One detector setting of a step and the views it runs on.

    ``options``: :data:`FRAME_OPTIONS` overrides (``nfeatures`` counts per view);
    ``tilts``/``angle_step``/``scales`` give the views (:func:`view_set`). ``density`` > 0: frames per
    view by the area of the image the view shows instead (``density`` frames per 1000 px^2 of it,
    ``area * scale^2 / tilt``), at least ``nfeatures`` and at most :data:`MAX_VIEW_FEATURES`
    (:meth:`budget`), so untilted views keep what a detector finds on a whole image and steep ones less.
    """

    options: dict = field(default_factory=dict)
    tilts: tuple = (1.0,)
    angle_step: float = ANGLE_STEP
    scales: tuple = (1.0,)
    density: float = 0.0

    def budget(self, view: View, image_area: float) -> int:
        """Frames per detector on ``view`` of an image of ``image_area`` px^2 (multiples of 50)."""
        least = int(self.options.get("nfeatures", VIEW_FEATURES))
        if self.density <= 0:
            return least
        wanted = self.density * image_area * view.scale ** 2 / view.tilt / 1000.0
        return int(min(max(50 * round(wanted / 50.0), least), MAX_VIEW_FEATURES))

    def with_budget(self, nfeatures: int) -> "Frames":
        """This group with ``nfeatures`` per view (no density): the detector setting of one budget."""
        return Frames({**self.options, "nfeatures": int(nfeatures)}, self.tilts, self.angle_step, self.scales)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.options) - set(FRAME_OPTIONS))
        if unknown:
            raise ValueError(f"Frames options must be among {', '.join(FRAME_OPTIONS)}, got {', '.join(unknown)}")

    def views(self) -> list[View]:
        return view_set(self.tilts, self.angle_step, self.scales)


@dataclass(frozen=True)
class Step:
    """One matching step: pipeline option overrides and the frames to detect.

    ``options`` override the base configuration (matcher, ratio, ... and, for the frames of a step
    without ``frames``, detector, nfeatures per view, affine, orientation). ``frames`` lists several
    detector settings, each on its own views (MODS: MSER on tilts 1, 3, 6, 9 at three scales with
    Hessian-affine on tilts 1, 2, 4, 6, 8 in one step); without it, one group on the views given by
    ``tilts``/``angle_step``. All groups' patches are described in one batched call per image.
    """

    name: str
    options: dict = field(default_factory=dict)
    tilts: tuple = (1.0,)
    angle_step: float = ANGLE_STEP
    frames: tuple = ()

    def groups(self) -> tuple[Frames, ...]:
        if self.frames:
            return tuple(self.frames)
        frame_options = {k: v for k, v in self.options.items() if k in FRAME_OPTIONS}
        return (Frames(frame_options, self.tilts, self.angle_step),)

    def views(self) -> list[View]:
        """All views of the step (the union over its groups, in order)."""
        views = []
        for group in self.groups():
            views += [v for v in group.views() if v not in views]
        return views

    @property
    def is_plain(self) -> bool:
        """One group on the original image only: the step is its pipeline's own ``extract``."""
        groups = self.groups()
        return len(groups) == 1 and not self.frames and all(v.is_identity for v in groups[0].views())


def default_steps(config) -> tuple[Step, ...]:
    """The steps of ``--preset wide``, MODS's order (cheapest first, denser views later):

    1. ``base``: the base configuration itself (so pairs it matches cost what it costs);
    2. ``affine``: Hessian-affine + AffNet frames and MSER at scales 1, 1/4, 1/8 on the originals;
    3. ``views``: DoG and Hessian-affine (Baumberg) on views tilted by ``config.view_tilts`` at
       rotation density ``config.view_angle_step`` (MODS's 360: one view per 360/t degrees over
       [0, 180)), plus MSER on tilts 1, 3, 6, 9 (up to the largest view tilt + 1) at the same density;
    4. ``views-dense``: DoG and Hessian-affine on the same tilts at a three times denser rotation
       sampling (MODS's 120);
    5. ``views-denser``: the same at a five times denser sampling (MODS's 72).

    Matching is FGINN at ratio 0.8 over the union of the features of the steps so far.
    ``config.view_density`` (6): the view steps keep frames per view by the area the view shows
    (:attr:`Frames.density`, frames per 1000 px^2; ``views-dense`` a third of it, which with three
    times the views costs about what ``views`` costs); 0 keeps a fixed count per view
    (:data:`VIEW_FEATURES`, a third and a fifth of it in the denser steps). 6 took the hard tier of
    the extreme-view dev set from 6 to 9 of 12 pairs, ``views-denser`` to 10 (RESULTS "Extreme views:
    hard tier").
    """
    tilts = tuple(t for t in config.tilts() if t > 1.0) or (1.0,)
    mser_tilts = (1.0,) + tuple(t for t in MSER_TILTS if t <= max(tilts) + 1.0)
    density, per_area = config.view_angle_step, float(config.view_density)
    fginn = {"matcher": "fginn", "ratio": 0.8}

    def dog_and_hessaff(nfeatures: int, angle_step: float, frames_per_area: float) -> tuple[Frames, Frames]:
        return (Frames({"detector": "dog", "nfeatures": nfeatures}, tilts, angle_step, density=frames_per_area),
                Frames({"detector": "hessaff", "affine": "baumberg", "nfeatures": nfeatures}, tilts, angle_step,
                       density=frames_per_area))

    return (
        Step("base"),
        Step("affine", fginn, frames=(
            Frames({"detector": "hessaff", "affine": "affnet", "nfeatures": 4000}),
            Frames({"detector": "mser", "nfeatures": 2000}, scales=MSER_SCALES),
        )),
        Step("views", fginn, frames=dog_and_hessaff(VIEW_FEATURES, density, per_area) + (
            Frames({"detector": "mser", "nfeatures": VIEW_FEATURES}, mser_tilts, density, density=per_area),
        )),
        Step("views-dense", fginn, frames=dog_and_hessaff(VIEW_FEATURES // 3, density / 3.0, per_area / 3.0)),
        Step("views-denser", fginn, frames=dog_and_hessaff(VIEW_FEATURES // 5, density / 5.0, per_area)),
    )


#: MODS's MSER sampling: tilts (up to the largest view tilt) and scales.
MSER_TILTS = (3.0, 6.0, 9.0)
MSER_SCALES = (1.0, 0.25, 0.125)
#: frames per detector and view in the first view step (a third of it in the dense step, which has
#: about three times the views, so both steps cost about the same)
VIEW_FEATURES = 150
#: Frames per detector and view at most when a group sets a density (:meth:`Frames.budget`).
MAX_VIEW_FEATURES = 2000
#: A step whose frames carry no affine shape (round DoG frames on the originals: the frame check
#: cannot bind) ends the search only with this many inliers; fewer lets the next steps try and the
#: best accepted model wins. A repeated pattern gave such a step a wrong model with 21 (issue 18).
SHAPELESS_STEP_INLIERS = 30
#: Inlier threshold (pixels) of steps on views when the configuration gives none (DEGENSAC's symmetric one).
DEFAULT_H_THRESHOLD = 3.0


def has_shape(step: Step, config) -> bool:
    """Whether the step's frames carry an affine shape: an affine estimator, MSER, or tilted views."""
    for group in step.groups():
        options = {**step.options, **group.options}
        if options.get("affine", config.affine) != "none" or "mser" in str(options.get("detector", config.detector)):
            return True
        if any(v.tilt > 1.0 for v in group.views()):
            return True
    return False


def max_view_tilt(step: Step) -> float:
    """The largest tilt of the step's views (1 for a step on the originals)."""
    return max((v.tilt for v in step.views()), default=1.0)


def parse_tilts(text: str) -> tuple[float, ...]:
    """``"2,4"`` or ``"2/4"`` -> ``(2.0, 4.0)``; ``ValueError`` unless finite numbers >= 1 separated by ``,`` or ``/``."""
    try:
        tilts = tuple(float(t) for t in str(text).replace("/", ",").split(","))
    except ValueError:
        raise ValueError(f"expected comma-separated numbers, got {text!r}") from None
    if not tilts or not all(math.isfinite(t) and t >= 1.0 for t in tilts):
        raise ValueError(f"expected tilts >= 1, got {text!r}")
    return tilts


def _check_tilts(value: str) -> None:
    parse_tilts(value)


def _join_numbers(value):
    """A list/tuple of numbers -> ``"2,4"`` (view_tilts given as a sequence); anything else unchanged."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return value


@dataclass(frozen=True)
class OnDemandConf:
    """Matching on demand (MODS): whether, when a step ends the search, and the views of the view steps."""

    on_demand: bool = option(False, "MODS: if the first step finds fewer than step_inliers inliers, try affine frames "
                                  "and synthesized tilted views (see hardmatch.twoview.on_demand)")
    step_inliers: int = option(15, "on_demand: a step whose accepted model has this many inliers ends the search "
                                 "(a step accepted with min_inliers..step_inliers-1 lets the next steps try; "
                                 "the best accepted model wins)", range="[1, inf)")
    view_tilts: str = option("2,4,6,8", "on_demand: tilts of the synthesized views of the view steps, separated by "
                                      "',' or '/' (MODS: 2,4,6,8; MSER views take tilts 3,6,9 up to the largest + 1)",
                           check=_check_tilts, parse=_join_numbers)
    view_angle_step: float = option(360.0, "on_demand: rotation density of the first view step, degrees (one view "
                                         "every angle/t degrees at tilt t; the next steps sample 3 and 5 times "
                                         "denser: MODS's 360, 120, 72)", range="(0, 720]")
    view_density: float = option(6.0, "on_demand: frames per detector and view, per 1000 px^2 of the image area the "
                                    "view shows (at least 150, at most 2000 per view; a third of it in the 3x denser "
                                    "step); 0: a fixed 150 per view (a third, a fifth in the denser steps)",
                               range="[0, inf)")

    def __post_init__(self) -> None:
        check_fields(self)

    def tilts(self) -> tuple[float, ...]:
        """``view_tilts`` parsed: (T,) floats >= 1."""
        return parse_tilts(self.view_tilts)
