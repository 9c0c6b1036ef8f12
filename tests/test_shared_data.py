"""How tests find the dev data: HARDMATCH_SHARED wins over ../shared, and absent data means a skip."""

import re

import numpy as np
import pytest

from .conftest import need_shared, shared_dir, synthetic_texture, textured_image


def test_hardmatch_shared_is_followed_and_absent_data_skips(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("HARDMATCH_SHARED", str(tmp_path))
    assert shared_dir() == tmp_path and need_shared("data") == tmp_path / "data"
    # absent there: a skip naming the path, never a fall-back to ../shared (which may well hold it)
    with pytest.raises(pytest.skip.Exception, match=re.escape(f"{tmp_path / 'data' / 'homogr'} is absent")):
        need_shared("data/homogr")


def test_textured_image_has_the_asked_size_with_or_without_the_photo(tmp_path, monkeypatch):
    monkeypatch.setenv("HARDMATCH_SHARED", str(tmp_path))  # no BostonA.jpg: the generated stand-in
    generated = textured_image(300)
    assert generated.shape == (240, 300) and generated.dtype == np.uint8  # BostonA's 1712x1368 aspect
    assert np.array_equal(generated, synthetic_texture(240, 300)) and generated.std() > 20  # textured, not flat
    assert textured_image(1600).shape == (1279, 1600)
