"""The hard tier of the extreme-view dev set (benchmarks/make_evd_like.py --tier hard)."""

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np

from .conftest import textured_image

GENERATOR = Path(__file__).resolve().parents[1] / "benchmarks" / "make_evd_like.py"


def _generator():
    spec = importlib.util.spec_from_file_location("make_evd_like", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _photos(folder: Path, count: int) -> Path:
    folder.mkdir()
    base = textured_image(640)
    for i in range(count):
        cv2.imwrite(str(folder / f"p{i}.png"), np.roll(base, 37 * i, axis=1))
    return folder


def test_hard_tier_is_seeded_and_as_hard_as_it_says(tmp_path):
    gen = _generator()
    photos = _photos(tmp_path / "photos", 4)
    records = gen.generate_hard(photos, tmp_path / "a", count=3, seed=5, texture_source=photos)
    gen.generate_hard(photos, tmp_path / "b", count=3, seed=5, texture_source=photos)
    for sub in ("1", "2", "h"):
        for f in sorted((tmp_path / "a" / sub).iterdir()):
            assert f.read_bytes() == (tmp_path / "b" / sub / f.name).read_bytes()
    assert [r["kind"] for r in records] == ["tilt", "zoom", "overlap"]
    tilt, zoom, overlap = records
    assert tilt["local"]["tilt"][1] >= 10.0  # transition tilt 12-45: the median local tilt is high
    assert 3.0 <= max(zoom["local"]["scale"][1], 1.0 / zoom["local"]["scale"][1]) <= 12.0
    assert 0.1 <= overlap["overlap"] <= 0.45
    lines = (tmp_path / "a" / "nonmatching.txt").read_text().splitlines()[1:]
    assert len(lines) == 3 and all(a.split("/")[1] != b.split("/")[1] for a, b in (line.split() for line in lines))
    assert json.loads((tmp_path / "a" / "params.json").read_text())["tier"] == "hard"


def test_easy_and_hard_draws_differ_only_where_asked():
    gen = _generator()
    rng1, rng2 = np.random.default_rng(0), np.random.default_rng(0)
    v1, w1 = gen.draw_pair(rng1, 6.0)
    v2, w2 = gen.draw_pair(rng2, 6.0, share=(0.0, 0.5))  # the easy tier's default draws, unchanged
    assert v1 == v2 and w1 == w2
    assert abs(gen.transition_tilt(v1, w1) - 6.0) < 1e-6
