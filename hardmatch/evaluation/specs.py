"""What an evaluation runs: pipeline specs (``NAME`` or ``NAME:key=value,...``, a preset plus
option overrides) and tasks (one pipeline on one pair estimating one geometry)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

from ..twoview.config import PipelineConfig, convert_option, get_preset, option_fields
from ..datasets.spec import PairSpec


@dataclass(frozen=True)
class PipelineSpec:
    """A preset plus option overrides, labelled by the spec string it was parsed from.

    Attributes:
        label: the spec string as written (``"fast:nfeatures=500"``); names the pipeline in outputs.
        preset: preset name (validated with :func:`~hardmatch.config.get_preset`).
        options: ``((name, value), ...)`` overrides, values cast to the field types.
    """

    label: str
    preset: str
    options: tuple = ()

    @property
    def config(self) -> PipelineConfig:
        """The resolved :class:`PipelineConfig` (preset with the overrides)."""
        return get_preset(self.preset).with_options(**dict(self.options))

    def forced_geometry(self) -> Optional[str]:
        """The geometry set in the spec's options, or None when the spec leaves it open."""
        return dict(self.options).get("geometry")


def parse_pipeline_spec(text: str) -> PipelineSpec:
    """Parse ``NAME`` or ``NAME:key=value,key=value`` into a :class:`PipelineSpec`.

    ``NAME`` is a preset; keys are :class:`PipelineConfig` fields (``-`` may stand for ``_``);
    values are cast by the field type (``int``, ``float``, ``bool``: true/false/1/0/yes/no,
    ``none`` for optional fields) and checked against the field's choices.

    Raises:
        ValueError: empty spec, unknown preset, unknown option, malformed or invalid value.
    """
    label = text.strip()
    name, _, rest = label.partition(":")
    name = name.strip()
    if not name:
        raise ValueError(f"pipeline spec {text!r}: expected NAME or NAME:key=value,...")
    get_preset(name)  # ValueError naming the known presets
    options = {}
    for item in (part.strip() for part in rest.split(",")):
        if not item:
            continue
        key, value = _split_option(item, label)
        if key in options:
            raise ValueError(f"pipeline spec {label!r}: option {key!r} given twice")
        options[key] = value
    spec = PipelineSpec(label, name, tuple(sorted(options.items())))
    spec.config  # noqa: B018 - validates the combination
    return spec


def parse_pipeline_specs(texts: Iterable[str]) -> list:
    """Parse several spec strings (see :func:`parse_pipeline_spec`); repeated labels are kept once."""
    specs, seen = [], set()
    for text in texts:
        spec = text if isinstance(text, PipelineSpec) else parse_pipeline_spec(text)
        if spec.label not in seen:
            seen.add(spec.label)
            specs.append(spec)
    if not specs:
        raise ValueError("no pipeline to evaluate")
    return specs


def _split_option(item: str, label: str) -> tuple:
    """``"key=value"`` -> ``(field_name, cast value)``; ValueError for malformed or unknown items."""
    key, sep, raw = item.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key:
        raise ValueError(f"pipeline spec {label!r}: expected key=value, got {item!r}")
    known = {f.name: f for f in option_fields()}
    if key not in known:
        raise ValueError(f"pipeline spec {label!r}: unknown option {key!r}; known: {', '.join(sorted(known))}")
    try:
        value = _cast(raw.strip(), known[key])
    except ValueError as exc:
        raise ValueError(f"pipeline spec {label!r}: option {key}: {exc}") from None
    return key, value


def _cast(raw: str, f) -> object:
    """Cast the text ``raw`` to the type of field ``f`` (:func:`hardmatch.config.convert_option`); ValueError when it does not fit."""
    try:
        return convert_option(f, raw)
    except TypeError as exc:
        raise ValueError(str(exc)) from None


@dataclass(frozen=True)
class Task:
    """One unit of work: ``pipeline`` on ``pair`` estimating ``geometry``, in dataset ``dataset``."""

    dataset: str
    pipeline: PipelineSpec
    pair: PairSpec
    geometry: str

    @property
    def key(self) -> tuple:
        return (self.dataset, self.pipeline.label, self.pair.name)


def resolve_geometry(pipeline: PipelineSpec, pair: PairSpec, forced: Optional[str] = None) -> str:
    """Model a pipeline estimates on a pair: spec option, else ``forced``, else the pair's geometry."""
    return pipeline.forced_geometry() or forced or pair.geometry
