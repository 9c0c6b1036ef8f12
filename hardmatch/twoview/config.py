"""The pipeline's configuration, composed of the stages' own, and the named presets.

Each stage declares its options in its own small configuration (hloc's ``confs``, LightGlue's
``default_conf``): :class:`~hardmatch.features.frames.FramesConf`,
:class:`~hardmatch.features.describe.DescriptorConf`, :class:`ExecutionConf` (here),
:class:`~hardmatch.matching.matchers.MatchingConf`, :class:`~hardmatch.geometry.ransac.RansacConf`,
:class:`~hardmatch.geometry.intrinsics.CamerasConf`, :class:`~hardmatch.geometry.acceptance.AcceptanceConf`,
:class:`~hardmatch.twoview.steps.OnDemandConf` and :class:`~hardmatch.core.io.WorkingResolutionConf`.
:class:`PipelineConfig` is their union, one flat frozen dataclass (``config.ratio``), built by
:func:`hardmatch.core.options.compose`; ``config.stage(MatchingConf)`` is one stage's part. The CLI
builds its options from the same fields, the API takes them as keyword arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from ..core.io import WorkingResolutionConf
from ..core.options import check_fields, compose, convert_option, field_kind, option
from ..features.describe import DescriptorConf
from ..features.frames import FramesConf
from ..geometry.acceptance import AcceptanceConf
from ..geometry.intrinsics import CamerasConf
from ..geometry.ransac import GEOMETRIES, RansacConf
from ..geometry.ransac import METHODS as RANSAC_METHODS
from ..matching.matchers import MatchingConf
from .steps import OnDemandConf, parse_tilts

__all__ = ["PipelineConfig", "PRESETS", "get_preset", "option_fields", "STAGE_CONFS", "ExecutionConf",
           "convert_option", "field_kind", "parse_tilts", "GEOMETRIES", "RANSAC_METHODS"]


@dataclass(frozen=True)
class ExecutionConf:
    """The execution path of the one-pass pipeline."""

    path: str = option("auto", "execution path: opencv (numpy stages, OpenCV detection and patches), torch (image "
                             "uploaded once, detection/patches/HardNet/matching in torch on the descriptor device), "
                             "auto: torch when that device is CUDA", ("auto", "opencv", "torch"))

    def __post_init__(self) -> None:
        check_fields(self)


#: The stages' configurations, in the order their options appear (``--help``, ``asdict``).
STAGE_CONFS = (FramesConf, DescriptorConf, ExecutionConf, MatchingConf, RansacConf, CamerasConf, AcceptanceConf,
               OnDemandConf, WorkingResolutionConf)


def _post_init(self) -> None:
    check_fields(self)  # conversions first: the stages' own checks then see typed values
    for conf_type in STAGE_CONFS:
        self.stage(conf_type)  # each stage's checks across its fields (e.g. ransac against geometry)


def _stage(self, conf_type: type):
    """This configuration's part for one stage: an instance of ``conf_type`` (one of :data:`STAGE_CONFS`)."""
    return conf_type(**{f.name: getattr(self, f.name) for f in fields(conf_type)})


def _tilts(self) -> tuple[float, ...]:
    """``view_tilts`` parsed (``,`` or ``/`` between numbers: ``/`` fits in an eval spec): (T,) floats >= 1."""
    return parse_tilts(self.view_tilts)


def _with_options(self, **options):
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


PipelineConfig = compose("PipelineConfig", STAGE_CONFS, {
    "__module__": __name__, "__post_init__": _post_init, "stage": _stage, "tilts": _tilts,
    "with_options": _with_options}, doc="""Every pipeline option, with its default, help, and what values it takes:
    the union of the stages' configurations (:data:`STAGE_CONFS`).

    Values are checked and converted when a configuration is made (``PipelineConfig(...)``,
    :meth:`with_options`, presets): numbers and booleans given as text are converted (``"0.8"`` ->
    0.8, ``"true"`` -> True), anything else that does not fit raises ``TypeError`` (wrong kind) or
    ``ValueError`` (bad text, out of range, not a choice) with one line naming the field.
    """)


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

