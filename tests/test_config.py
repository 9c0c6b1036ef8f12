"""Every PipelineConfig field is converted and checked from its declaration when a configuration is made."""

import subprocess
import sys
from dataclasses import dataclass, fields

import cv2
import numpy as np
import pytest

import hardmatch
from hardmatch.core.options import field_kind, option as _opt
from hardmatch.twoview.config import PRESETS, PipelineConfig

from .conftest import reprojection_error, synthetic_texture

FIELDS = {f.name: f for f in fields(PipelineConfig)}


def _text(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_every_field_takes_its_default_as_text_and_refuses_a_wrong_kind(name):
    default = getattr(PipelineConfig(), name)
    if default is not None:
        assert getattr(PipelineConfig(**{name: _text(default)}), name) == default
    with pytest.raises(TypeError, match=f"^{name}: "):
        PipelineConfig(**{name: object()})


@pytest.mark.parametrize("name", sorted(n for n, f in FIELDS.items() if f.metadata.get("range")))
def test_numbers_outside_the_declared_range_are_refused(name):
    interval = FIELDS[name].metadata["range"]
    low = float(interval[1:-1].split(",")[0])
    outside = low if interval.startswith("(") else low - 1
    with pytest.raises(ValueError, match=f"^{name}: expected a value in"):
        PipelineConfig(**{name: outside})
    with pytest.raises(ValueError, match=f"^{name}: expected "):
        PipelineConfig(**{name: "abc"})


@pytest.mark.parametrize("name", sorted(n for n, f in FIELDS.items() if f.metadata.get("choices")))
def test_choices_are_enforced(name):
    with pytest.raises(ValueError, match=f"^{name}: expected one of"):
        PipelineConfig(**{name: "no-such-choice"})


def test_conversions_and_refusals():
    config = PipelineConfig(ratio="0.8", nfeatures="2000", on_demand="yes", threshold="none", view_tilts=(2, 4),
                            max_iters=500.0, seed=np.int64(3), confidence=np.float32(0.5))
    assert (config.ratio, config.nfeatures, config.on_demand, config.threshold, config.view_tilts) == (
        0.8, 2000, True, None, "2,4")
    assert type(config.max_iters) is int and type(config.seed) is int and type(config.confidence) is float
    assert PipelineConfig(threshold="2.5").threshold == 2.5
    for options, error, message in [
        (dict(nfeatures=True), TypeError, "nfeatures: expected an integer"),
        (dict(nfeatures="1.5"), ValueError, "nfeatures: expected an integer"),
        (dict(confidence=float("nan")), ValueError, "confidence: expected a finite number"),
        (dict(on_demand="maybe"), ValueError, "on_demand: expected a boolean"),
        (dict(on_demand=2), TypeError, "on_demand: expected a boolean"),
        (dict(device="gpu"), ValueError, "device: expected auto, cpu"),
        (dict(view_tilts="0.5"), ValueError, "view_tilts: expected tilts >= 1"),
        (dict(detector="dog+sift"), ValueError, "detector: unknown detector 'sift'"),
        (dict(weights=""), ValueError, "weights: expected a name or a path"),
        (dict(nfeatures=None), TypeError, "nfeatures: expected an integer, got None"),
    ]:
        with pytest.raises(error, match=message):
            PipelineConfig(**options)
    # with_options drops None (meaning: keep) except for optional fields
    assert PRESETS["fast"].with_options(nfeatures=None).nfeatures == 2000
    assert PipelineConfig(threshold=2.0).with_options(threshold=None).threshold is None


def test_a_new_field_is_validated_from_its_declaration_alone():
    @dataclass(frozen=True)
    class Extended(PipelineConfig):
        precision: str = _opt("auto", "descriptor precision", ("fp32", "int8", "auto"))
        max_pixels: int = _opt(100, "a count", range="[1, 1000]")

    assert Extended(max_pixels="7").max_pixels == 7
    with pytest.raises(ValueError, match="^precision: expected one of fp32, int8, auto"):
        Extended(precision="int4")
    with pytest.raises(ValueError, match=r"^max_pixels: expected a value in \[1, 1000\]"):
        Extended(max_pixels=1001)
    assert field_kind(fields(Extended)[-1]) == ("int", False)


def test_api_converts_text_numbers():
    image = synthetic_texture(240, 320)
    moved = cv2.warpAffine(image, np.float32([[1, 0, 7], [0, 1, 5]]), (320, 240))
    result = hardmatch.match_pair(image, moved, ratio="0.8", nfeatures="800", geometry="homography")
    assert result.config.ratio == 0.8 and result.success
    shift = np.array([[1, 0, 7], [0, 1, 5], [0, 0, 1]], np.float64)
    assert reprojection_error(result.H, shift, 320, 240) < 1.0


def test_cli_bad_value_is_one_line_naming_the_option(tmp_path):
    for args, word in ((["--ratio", "abc"], "ratio"), (["--max-iters", "0"], "max_iters")):
        proc = subprocess.run([sys.executable, "-m", "hardmatch.cli", "pair", "a.png", "b.png", *args],
                              capture_output=True, text=True, cwd=tmp_path, timeout=120)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and word in lines[0], proc.stderr
