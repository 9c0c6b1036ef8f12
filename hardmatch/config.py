"""Pipeline configuration and named presets, shared by the CLI and the Python API.

Every option is defined once, here, as a field of :class:`PipelineConfig` with its default and
help text; the CLI builds its options from these fields, the API takes them as keyword arguments.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import Field, dataclass, field, fields, replace

from .describe import BACKENDS, PRECISIONS
from .detect.dog import DEFAULT_MAGNIFICATION
from .detect.orientation import ORIENTATIONS
from .intrinsics import format_intrinsics, parse_intrinsics
from .detect.shape import SHAPES
from .match import DEFAULT_FGINN_RADIUS, DEFAULT_RATIO
from .match import METHODS as MATCHERS
from .weights import DEFAULT_DESCRIPTOR


#: Models ``geometry`` may name, and robust estimators (``auto``: degensac for H/F, poselib for E).
GEOMETRIES = ("homography", "fundamental", "essential")
RANSAC_METHODS = ("auto", "degensac", "magsac", "poselib")

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_NONE = ("none", "null", "")


def _opt(default, help: str, choices: tuple | None = None, *, range: str | None = None, check=None, parse=None,
         repeatable: bool = False):
    """A :class:`PipelineConfig` field. Everything :func:`convert_option` checks is declared here:

    ``choices`` the allowed values; ``range`` an interval such as ``"(0, 1]"`` or ``"[0, inf)"`` for
    numbers; ``check(value)`` raises ``ValueError`` for values a range cannot express; ``parse(value)``
    turns other accepted forms into the field's type first (e.g. a list of tilts into ``"2,4"``);
    ``repeatable``: the CLI option may be given several times (its values reach ``parse`` as a tuple).
    The field's type annotation (``int``, ``float``, ``str``, ``bool``, ``X | None``) gives the conversion.
    """
    return field(default=default, metadata={"help": help, "choices": choices, "range": range, "check": check,
                                            "parse": parse, "repeatable": repeatable})


def _check_not_empty(value: str) -> None:
    if not value.strip():
        raise ValueError("expected a name or a path, got an empty string")


def _check_detector(value: str) -> None:
    from .frames import parse_detector

    parse_detector(value)  # ValueError naming the bad part


def _check_device(value: str) -> None:
    if value not in ("auto", "cpu"):
        import torch

        try:
            torch.device(value)
        except (RuntimeError, ValueError):
            raise ValueError(f"expected auto, cpu, cuda, cuda:N or another torch device, got {value!r}") from None


def _check_tilts(value: str) -> None:
    parse_tilts(value)


def _check_intrinsics(value: str) -> None:
    parse_intrinsics(value)  # ValueError saying what is wrong


def _join_intrinsics(value):
    """Intrinsics as arrays / sequences (API) or a CLI tuple of texts -> the normalized text
    ``"fx,fy,cx,cy"`` or ``"fx,fy,cx,cy/fx,fy,cx,cy"``; text and None stay as they are."""
    if not isinstance(value, (list, tuple)) and not hasattr(value, "shape"):
        return value  # text, None, or a wrong kind that the text conversion refuses (TypeError)
    if isinstance(value, tuple) and all(isinstance(v, str) for v in value):
        return "/".join(value) if value else None  # --intrinsics given once or twice
    return format_intrinsics(parse_intrinsics(value))


def _join_numbers(value):
    """A list/tuple of numbers -> ``"2,4"`` (view_tilts given as a sequence); anything else unchanged."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return value


def parse_tilts(text: str) -> tuple[float, ...]:
    """``"2,4"`` or ``"2/4"`` -> ``(2.0, 4.0)``; ``ValueError`` unless finite numbers >= 1 separated by ``,`` or ``/``."""
    try:
        tilts = tuple(float(t) for t in str(text).replace("/", ",").split(","))
    except ValueError:
        raise ValueError(f"expected comma-separated numbers, got {text!r}") from None
    if not tilts or not all(math.isfinite(t) and t >= 1.0 for t in tilts):
        raise ValueError(f"expected tilts >= 1, got {text!r}")
    return tilts


# --------------------------------------------------------------------------------------------
# Converting and checking one option value from its field's declaration
# --------------------------------------------------------------------------------------------


def field_kind(f: Field) -> tuple[str, bool]:
    """``(base type name, optional)`` of a dataclass field whose annotation may be a string
    (``"float | None"`` -> ``("float", True)``)."""
    annotation = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    parts = [p.strip() for p in annotation.replace("Optional[", "").rstrip("]").split("|")]
    base = next((p for p in parts if p != "None"), "str")
    return base, "None" in parts


def convert_option(f: Field, value):
    """``value`` converted to the type field ``f`` declares and checked against its choices, range and check.

    Text is converted for every type (``"0.8"``, ``"8000"``, ``"true"``, ``"none"`` for optional
    fields). Raises ``TypeError`` for a value of the wrong kind (a list for a number, a bool for a
    count), ``ValueError`` for text that does not parse or a value outside the choices or range.
    """
    meta = f.metadata
    base, optional = field_kind(f)
    if meta.get("parse") is not None:
        value = meta["parse"](value)
    if isinstance(value, str) and optional and value.strip().lower() in _NONE:
        return None
    if value is None:
        if optional:
            return None
        raise TypeError(f"expected {_KIND_NAMES.get(base, base)}, got None")
    value = _CONVERTERS.get(base, _to_text)(value)
    choices = meta.get("choices")
    if choices and value not in choices:
        raise ValueError(f"expected one of {', '.join(map(str, choices))}, got {value!r}")
    if meta.get("range"):
        _check_range(value, meta["range"])
    if meta.get("check") is not None:
        meta["check"](value)
    return value


def _to_bool(value) -> bool:
    if isinstance(value, (bool, numbers.Integral)) and value in (0, 1):  # numpy bools and ints too
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    if isinstance(value, str):
        raise ValueError(f"expected a boolean (true/false), got {value!r}")
    raise TypeError(f"expected a boolean (true/false), got {type(value).__name__} {value!r}")


def _to_int(value) -> int:
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            number = _parse_float(text, "an integer")
            if not number.is_integer():
                raise ValueError(f"expected an integer, got {value!r}") from None
            return int(number)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"expected an integer, got {type(value).__name__} {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    if not (math.isfinite(value) and float(value).is_integer()):
        raise ValueError(f"expected an integer, got {value!r}")
    return int(value)


def _to_float(value) -> float:
    if isinstance(value, str):
        number = _parse_float(value.strip(), "a number")
    elif isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"expected a number, got {type(value).__name__} {value!r}")
    else:
        number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {value!r}")
    return number


def _parse_float(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"expected {what}, got {text!r}") from None


def _to_text(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"expected text, got {type(value).__name__} {value!r}")


_CONVERTERS = {"bool": _to_bool, "int": _to_int, "float": _to_float, "str": _to_text}
_KIND_NAMES = {"bool": "a boolean", "int": "an integer", "float": "a number", "str": "text"}


def _check_range(value: float, interval: str) -> None:
    """``ValueError`` unless ``value`` lies in ``interval`` (``"(0, 1]"``, ``"[0, inf)"``: brackets include)."""
    low_text, high_text = (part.strip() for part in interval.strip()[1:-1].split(","))
    low, high = float(low_text), float(high_text)
    above = value > low if interval.startswith("(") else value >= low
    below = value < high if interval.endswith(")") else value <= high
    if not (above and below):
        raise ValueError(f"expected a value in {interval}, got {value!r}")


@dataclass(frozen=True)
class PipelineConfig:
    """Every pipeline option, with its default, help, and what values it takes.

    Values are checked and converted when a configuration is made (``PipelineConfig(...)``,
    :meth:`with_options`, presets): numbers and booleans given as text are converted (``"0.8"`` ->
    0.8, ``"true"`` -> True), anything else that does not fit raises ``TypeError`` (wrong kind) or
    ``ValueError`` (bad text, out of range, not a choice) with one line naming the field.
    """

    detector: str = _opt("dog", "detector(s): dog, hessian, hessaff (Hessian-affine), mser, or several joined "
                                "with '+' (e.g. dog+mser)", check=_check_detector)
    nfeatures: int = _opt(8000, "keep at most this many strongest features per detector and image (0: all)",
                          range="[0, inf)")
    contrast_threshold: float = _opt(0.03, "DoG contrast threshold (lower: more, weaker features)", range="(0, 1)")
    affine: str = _opt("none", "affine shape: none, baumberg (second-moment iteration) or affnet "
                               "(hessaff uses baumberg unless told otherwise; MSER regions are affine already)",
                       SHAPES)
    orientation: str = _opt("dominant", "orientation: dominant gradient (DoG keeps SIFT's own), orinet, or upright "
                                        "(for images without in-plane rotation)", ORIENTATIONS)
    magnification: float = _opt(DEFAULT_MAGNIFICATION, "patch radius = magnification * keypoint size / 2",
                                range="(0, inf)")
    descriptor: str = _opt("hardnet", "hardnet, or the OpenCV baselines sift / rootsift on the same frames",
                           ("hardnet", "sift", "rootsift"))
    weights: str = _opt(DEFAULT_DESCRIPTOR, "descriptor weights: registry name or .pth path", check=_check_not_empty)
    device: str = _opt("auto", "torch device for the descriptor: auto, cpu, cuda, cuda:1, ...", check=_check_device)
    path: str = _opt("auto", "execution path: opencv (numpy stages, OpenCV detection and patches), torch (image "
                             "uploaded once, detection/patches/HardNet/matching in torch on the descriptor device), "
                             "auto: torch when that device is CUDA", ("auto", "opencv", "torch"))
    backend: str = _opt("auto", "descriptor runtime: onnxruntime (CPU, 2.5x faster when installed), torch, or auto",
                        BACKENDS)
    precision: str = _opt("auto", "descriptor precision: fp32, bf16 (CPU with AMX or AVX-512 BF16, torch; 1.8x "
                                  "faster, descriptors within cosine 0.998 of fp32), int8 (CPU with onnxruntime "
                                  "and weights with a shipped int8 model; 1.3x faster, within cosine 0.97), or "
                                  "auto (fp32; bf16 in wide's view steps where the CPU has it)", PRECISIONS)
    batch_size: int = _opt(256, "patches per descriptor batch (256 is fastest on CPU, measured)", range="[1, inf)")
    matcher: str = _opt("snn", "snn: ratio test, mnn: mutual nearest neighbour, smnn: both, fginn: ratio against "
                               "the first neighbour farther than fginn_radius px", MATCHERS)
    ratio: float = _opt(DEFAULT_RATIO, "ratio-test threshold (snn, smnn, fginn)", range="(0, 1]")
    fginn_radius: float = _opt(DEFAULT_FGINN_RADIUS, "fginn: neighbours closer than this (px) to the first are the "
                                                     "same point", range="[0, inf)")
    geometry: str = _opt("fundamental", "model to verify: homography (planar scene or pure rotation), "
                                        "fundamental (any rigid scene) or essential (relative pose R, t of "
                                        "calibrated cameras: see intrinsics)", GEOMETRIES)
    intrinsics: str | None = _opt(None, "essential: camera intrinsics fx,fy,cx,cy in original pixels, once for "
                                        "both images or twice (image 1, then image 2; API: also a 3x3 K or (K1, K2)); "
                                        "default: the EXIF focal length, else focal 1.2 x the longest side with "
                                        "the principal point at the centre (a notice says which)",
                                  check=_check_intrinsics, parse=_join_intrinsics, repeatable=True)
    ransac: str = _opt("auto", "robust estimator: degensac (pydegensac), magsac (OpenCV MAGSAC++; for essential "
                               "findEssentialMat + refinement), poselib (essential only: PoseLib LO-RANSAC), or "
                               "auto (degensac for homography/fundamental, poselib for essential)", RANSAC_METHODS)
    threshold: float | None = _opt(None, "inlier threshold in pixels (default: 3 for homography, 1 for fundamental, "
                                         "in working pixels; essential: 1, Sampson distance in original pixels)",
                                   range="(0, inf)")
    max_iters: int = _opt(10000, "RANSAC iterations at most", range="[1, inf)")
    confidence: float = _opt(0.9999, "RANSAC confidence", range="(0, 1)")
    seed: int = _opt(0, "random seed of the robust estimator", range="[0, inf)")
    min_inliers: int = _opt(10, "a model with fewer distinct, frame-consistent inliers counts as not found",
                            range="[0, inf)")
    ransac_attempts: int = _opt(3, "RANSAC runs (seeds seed, seed+1, ...); the accepted model with the most inliers "
                                   "wins (one run misses models at 5% inliers: benchmarks/RESULTS.md)",
                                range="[1, inf)")
    duplicate_radius: float = _opt(2.0, "before RANSAC, of tentative matches closer than this (px) to another in "
                                        "both images keep the best ratio (MODS: 2; 0: off)", range="[0, inf)")
    accept_checks: bool = _opt(True, "accept a model only after the frame (LAF) consistency check, homography "
                                     "sanity and min_inliers distinct inliers (hardmatch.accept); off only to measure")
    on_demand: bool = _opt(False, "MODS: if the first step finds fewer than step_inliers inliers, try affine frames "
                                  "and synthesized tilted views (see hardmatch.mods)")
    step_inliers: int = _opt(15, "on_demand: a step whose accepted model has this many inliers ends the search "
                                 "(a step accepted with min_inliers..step_inliers-1 lets the next steps try; "
                                 "the best accepted model wins)", range="[1, inf)")
    view_tilts: str = _opt("2,4,6,8", "on_demand: tilts of the synthesized views of the view steps, separated by "
                                      "',' or '/' (MODS: 2,4,6,8; MSER views take tilts 3,6,9 up to the largest + 1)",
                           check=_check_tilts, parse=_join_numbers)
    view_angle_step: float = _opt(360.0, "on_demand: rotation density of the first view step, degrees (one view "
                                         "every angle/t degrees at tilt t; the next steps sample 3 and 5 times "
                                         "denser: MODS's 360, 120, 72)", range="(0, 720]")
    view_density: float = _opt(6.0, "on_demand: frames per detector and view, per 1000 px^2 of the image area the "
                                    "view shows (at least 150, at most 2000 per view; a third of it in the 3x denser "
                                    "step); 0: a fixed 150 per view (a third, a fifth in the denser steps)",
                               range="[0, inf)")
    laf_check: float = _opt(0.0, "degensac: pydegensac's LAF-consistency coefficient for minimal samples (0: off)",
                            range="[0, inf)")
    max_side: int = _opt(2400, "working resolution: images whose longest side is larger are downscaled to it "
                               "for detection and description (bounded time and memory); every reported "
                               "coordinate stays in the original image; RANSAC thresholds are in working pixels "
                               "(0: off; 2400 chosen by pose accuracy, benchmarks/RESULTS.md)", range="[0, inf)")
    offline_fallback: bool = _opt(False, "when AffNet/OriNet weights cannot be had (offline, not cached) use Baumberg "
                                         "shape / dominant orientation instead, with a notice (on in the affine and "
                                         "wide presets; off whenever --affine affnet or --orientation orinet is given)")

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            try:
                converted = convert_option(f, value)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"{f.name}: {exc}") from None
            if converted is not value:
                object.__setattr__(self, f.name, converted)
        if self.ransac == "poselib" and self.geometry != "essential":
            raise ValueError(f"ransac: poselib estimates relative poses (geometry essential) only, "
                             f"not a {self.geometry}")
        if self.ransac == "degensac" and self.geometry == "essential":
            raise ValueError("ransac: degensac has no essential-matrix solver; use auto, poselib or magsac")

    def tilts(self) -> tuple[float, ...]:
        """``view_tilts`` parsed (``,`` or ``/`` between numbers: ``/`` fits in an eval spec): (T,) floats >= 1."""
        return parse_tilts(self.view_tilts)

    def with_options(self, **options) -> "PipelineConfig":
        """A copy with ``options`` replaced; unknown names raise ``TypeError`` naming them.

        Asking for AffNet or OriNet here (``affine="affnet"``, ``orientation="orinet"``) means
        exactly that: ``offline_fallback`` turns off unless ``options`` set it too.
        """
        names = {f.name for f in fields(self)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise TypeError(f"unknown pipeline option(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        asks_learned = options.get("affine") == "affnet" or options.get("orientation") == "orinet"
        if asks_learned and options.get("offline_fallback") is None:
            options = {**options, "offline_fallback": False}
        optional = {f.name for f in fields(self) if field_kind(f)[1]}
        return replace(self, **{k: v for k, v in options.items() if v is not None or k in optional})


PRESETS: dict[str, PipelineConfig] = {
    "default": PipelineConfig(),
    "fast": PipelineConfig(nfeatures=2000, matcher="smnn"),
    # Hessian-affine frames with AffNet shape and dominant-gradient orientation: the combination that
    # matched the most dev pairs (benchmarks/RESULTS.md, "Detectors and affine shape")
    # (offline without the AffNet weights: Baumberg shape, with a notice)
    "affine": PipelineConfig(detector="hessaff", affine="affnet", offline_fallback=True),
    # MODS-style matching on demand: the default first, affine frames and view synthesis when it fails
    "wide": PipelineConfig(on_demand=True, offline_fallback=True),
    # baselines: OpenCV SIFT / RootSIFT descriptors with Lowe's ratio 0.8, same detector and verification
    "sift": PipelineConfig(descriptor="sift", ratio=0.8),
    "rootsift": PipelineConfig(descriptor="rootsift", ratio=0.8),
}


def get_preset(name: str) -> PipelineConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}") from None


def option_fields():
    """The dataclass fields of :class:`PipelineConfig` (for building CLI options)."""
    return fields(PipelineConfig)

