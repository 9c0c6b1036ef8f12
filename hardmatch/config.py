"""The configuration front: ``hardmatch.config.PipelineConfig``, the presets and the option helpers.

The stages declare their own options (:mod:`hardmatch.core.options`); the composed
:class:`~hardmatch.twoview.config.PipelineConfig` and the presets live in
:mod:`hardmatch.twoview.config`, below the scene, evaluation and CLI code that use them. This module
is the public name for them.
"""

from .twoview.config import (  # noqa: F401 (the public names)
    GEOMETRIES,
    PRESETS,
    RANSAC_METHODS,
    STAGE_CONFS,
    ExecutionConf,
    PipelineConfig,
    convert_option,
    field_kind,
    get_preset,
    option_fields,
    parse_tilts,
)
