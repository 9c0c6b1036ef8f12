"""Offline without AffNet/OriNet weights: the affine and wide presets fall back to Baumberg / dominant
orientation and say so; AffNet or OriNet asked for explicitly still stop with a weights error."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from hardmatch import Pipeline
from hardmatch.twoview.config import PRESETS
from hardmatch.features.orientation import DominantGradientOrientation
from hardmatch.features.shape import BaumbergShape
from hardmatch.core.errors import WeightsError
from hardmatch.features.frames import FrameDetector

from .conftest import need_shared, reprojection_error


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    """No cached AffNet/OriNet, and no download attempt ($HARDMATCH_OFFLINE)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("HARDMATCH_OFFLINE", "1")
    return tmp_path / "torch-home"


def test_frame_detector_falls_back_only_when_allowed(empty_torch_home, texture):
    with pytest.raises(WeightsError, match="affnet"):
        FrameDetector("hessaff", affine="affnet")
    detector = FrameDetector("hessaff", nfeatures=300, affine="affnet", orientation="orinet", fallback=True)
    assert [(f.option, f.asked, f.used) for f in detector.fallbacks] == [
        ("orientation", "orinet", "dominant"), ("affine", "affnet", "baumberg")]
    assert isinstance(detector.stages[0].shape, BaumbergShape)
    assert isinstance(detector.orienter, DominantGradientOrientation)
    assert "HARDMATCH_OFFLINE" in detector.fallbacks[0].notice()
    assert len(detector(texture)) > 50


def test_presets_fall_back_but_explicit_requests_do_not(empty_torch_home):
    assert PRESETS["affine"].offline_fallback and PRESETS["wide"].offline_fallback
    pipeline = Pipeline("affine", nfeatures=500)
    assert [f.used for f in pipeline.frames.fallbacks] == ["baumberg"]
    for options in ({"affine": "affnet"}, {"orientation": "orinet"}):
        assert not PRESETS["affine"].with_options(**options).offline_fallback
        with pytest.raises(WeightsError):
            Pipeline("affine", **options)
    assert PRESETS["default"].with_options(affine="affnet", offline_fallback=True).offline_fallback


def test_wide_preset_offline_on_graf(tmp_path):
    graf = need_shared("data/oxford/graf")
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch-home"), "HARDMATCH_OFFLINE": "1"}
    out = tmp_path / "out.json"
    # 2000 base features do not match graf 1-5 (60 degrees), so the affine step runs, on Baumberg shape
    proc = subprocess.run([sys.executable, "-m", "hardmatch.cli", "pair", graf / "img1.png", graf / "img5.png",
                           "--preset", "wide", "--geometry", "homography", "--nfeatures", "2000",
                           "--step-inliers", "100", "--json", out], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    notices = proc.stderr.strip().splitlines()
    assert len(notices) == 1 and notices[0].startswith("hardmatch: notice: affine affnet unavailable, using baumberg")
    data = json.loads(out.read_text())
    assert data["fallbacks"] == {"affine": "baumberg"} and data["step"] != "base"
    h_true = np.loadtxt(graf / "H1to5p")
    assert reprojection_error(np.asarray(data["H"]), h_true, 800, 640) < 5.0
    assert not (tmp_path / "torch-home" / "hub" / "checkpoints" / "AffNet.pth").exists()
