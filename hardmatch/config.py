"""Pipeline configuration and named presets, shared by the CLI and the Python API.

Every option is defined once, here, as a field of :class:`PipelineConfig` with its default and
help text; the CLI builds its options from these fields, the API takes them as keyword arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from .describe import BACKENDS, PRECISIONS
from .detect.dog import DEFAULT_MAGNIFICATION
from .detect.orientation import ORIENTATIONS
from .detect.shape import SHAPES
from .match import DEFAULT_FGINN_RADIUS, DEFAULT_RATIO
from .match import METHODS as MATCHERS
from .weights import DEFAULT_DESCRIPTOR


def _opt(default, help: str, choices: tuple | None = None):
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class PipelineConfig:
    detector: str = _opt("dog", "detector(s): dog, hessian, hessaff (Hessian-affine), mser, or several joined "
                                "with '+' (e.g. dog+mser)")
    nfeatures: int = _opt(8000, "keep at most this many strongest features per detector and image (0: all)")
    contrast_threshold: float = _opt(0.03, "DoG contrast threshold (lower: more, weaker features)")
    affine: str = _opt("none", "affine shape: none, baumberg (second-moment iteration) or affnet "
                               "(hessaff uses baumberg unless told otherwise; MSER regions are affine already)",
                       SHAPES)
    orientation: str = _opt("dominant", "orientation: dominant gradient (DoG keeps SIFT's own), orinet, or upright "
                                        "(for images without in-plane rotation)", ORIENTATIONS)
    magnification: float = _opt(DEFAULT_MAGNIFICATION, "patch radius = magnification * keypoint size / 2")
    descriptor: str = _opt("hardnet", "hardnet, or the OpenCV baselines sift / rootsift on the same frames",
                           ("hardnet", "sift", "rootsift"))
    weights: str = _opt(DEFAULT_DESCRIPTOR, "descriptor weights: registry name or .pth path")
    device: str = _opt("auto", "torch device for the descriptor: auto, cpu, cuda, cuda:1, ...")
    backend: str = _opt("auto", "descriptor runtime: onnxruntime (CPU, 2.5x faster when installed), torch, or auto",
                        BACKENDS)
    precision: str = _opt("auto", "descriptor precision: fp32, int8 (CPU with onnxruntime and weights with a "
                                  "shipped int8 model; 1.3-1.5x faster, descriptors within cosine 0.99 of fp32), "
                                  "or auto (fp32 for now, see hardmatch.describe.AUTO_INT8)", PRECISIONS)
    batch_size: int = _opt(256, "patches per descriptor batch (256 is fastest on CPU, measured)")
    matcher: str = _opt("snn", "snn: ratio test, mnn: mutual nearest neighbour, smnn: both, fginn: ratio against "
                               "the first neighbour farther than fginn_radius px", MATCHERS)
    ratio: float = _opt(DEFAULT_RATIO, "ratio-test threshold (snn, smnn, fginn)")
    fginn_radius: float = _opt(DEFAULT_FGINN_RADIUS, "fginn: neighbours closer than this (px) to the first are the same point")
    geometry: str = _opt("fundamental", "model to verify: homography (planar scene or pure rotation) "
                                        "or fundamental (any rigid scene)", ("homography", "fundamental"))
    ransac: str = _opt("degensac", "robust estimator: degensac (pydegensac) or magsac (OpenCV MAGSAC++)",
                       ("degensac", "magsac"))
    threshold: float | None = _opt(None, "inlier threshold in pixels (default: 3 for homography, 1 for fundamental)")
    max_iters: int = _opt(10000, "RANSAC iterations at most")
    confidence: float = _opt(0.9999, "RANSAC confidence")
    seed: int = _opt(0, "random seed of the robust estimator")
    min_inliers: int = _opt(10, "a model with fewer inliers counts as not found")
    on_demand: bool = _opt(False, "MODS: if the first step finds fewer than step_inliers inliers, try affine frames "
                                  "and synthesized tilted views (see hardmatch.mods)")
    step_inliers: int = _opt(15, "on_demand: a step that verifies this many inliers ends the search")
    view_tilts: str = _opt("2,4", "on_demand: tilts of the synthesized views of the last step, comma-separated "
                                  "(ASIFT: 1.41,2,2.83,4,...)")
    view_angle_step: float = _opt(72.0, "on_demand: in-plane angle step of the views, degrees (divided by the tilt)")
    laf_check: float = _opt(0.0, "degensac: pydegensac's LAF-consistency coefficient for minimal samples (0: off)")

    def __post_init__(self) -> None:
        from .frames import parse_detector

        parse_detector(self.detector)  # raises ValueError naming the bad part
        self.tilts()
        for name in ("affine", "orientation", "descriptor", "backend", "precision", "matcher", "geometry", "ransac"):
            choices = PipelineConfig.__dataclass_fields__[name].metadata["choices"]
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}")

    def tilts(self) -> tuple[float, ...]:
        """``view_tilts`` parsed; ``ValueError`` unless comma-separated numbers >= 1."""
        try:
            tilts = tuple(float(t) for t in str(self.view_tilts).split(","))
        except ValueError:
            raise ValueError(f"view_tilts must be comma-separated numbers, got {self.view_tilts!r}") from None
        if not tilts or min(tilts) < 1.0 or self.view_angle_step <= 0:
            raise ValueError(f"view_tilts must be >= 1 and view_angle_step > 0, got {self.view_tilts!r}, "
                             f"{self.view_angle_step}")
        return tilts

    def with_options(self, **options) -> "PipelineConfig":
        """A copy with ``options`` replaced; unknown names raise ``TypeError`` naming them."""
        names = {f.name for f in fields(self)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise TypeError(f"unknown pipeline option(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        return replace(self, **{k: v for k, v in options.items() if v is not None or k == "threshold"})


PRESETS: dict[str, PipelineConfig] = {
    "default": PipelineConfig(),
    "fast": PipelineConfig(nfeatures=2000, matcher="smnn"),
    # Hessian-affine frames with AffNet shape and dominant-gradient orientation: the combination that
    # matched the most dev pairs (benchmarks/RESULTS.md, "Detectors and affine shape")
    "affine": PipelineConfig(detector="hessaff", affine="affnet"),
    # MODS-style matching on demand: the default first, affine frames and view synthesis when it fails
    "wide": PipelineConfig(on_demand=True),
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
