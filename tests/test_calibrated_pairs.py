"""Tests of hardmatch.datasets.calibrated_pairs: the "pairs with ground truth" list layout, made
from the real Strecha scene (skipped when ../shared is absent) and broken copies of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hardmatch.datasets.calibrated_pairs import is_calibrated_pairs, read_calibrated_pairs
from hardmatch.datasets.strecha import read_strecha_pairs, read_strecha_views, relative_pose
from hardmatch.core.errors import DatasetError

from .conftest import need_shared


def _line(name0: str, name1: str, a, b, rot=(0, 0)) -> str:
    R, t = relative_pose(a, b)
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, t
    numbers = list(rot) + a.K.ravel().tolist() + b.K.ravel().tolist() + T.ravel().tolist()
    return " ".join([name0, name1] + [repr(float(v)) if i >= 2 else str(int(v)) for i, v in enumerate(numbers)])


@pytest.fixture(scope="module")
def views():
    return read_strecha_views(need_shared("data/strecha/Herz-Jesus-P8"))


@pytest.fixture
def list_dir(tmp_path, views) -> Path:
    """A folder with the scene's images linked under ``color/`` and a 3-pair list file."""
    (tmp_path / "color").mkdir()
    for view in views[:4]:
        (tmp_path / "color" / view.image.name).symlink_to(view.image)
    lines = [
        "# name0 name1 rot0 rot1 K0 K1 T_0to1",
        _line("color/0000.jpg", "color/0001.jpg", views[0], views[1]),
        "",
        _line("color/0001.jpg", "color/0003.jpg", views[1], views[3]) + "  # trailing comment",
        _line("color/0002.jpg", "color/0000.jpg", views[2], views[0]),
    ]
    (tmp_path / "pairs.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_reads_the_list_with_the_scene_ground_truth(list_dir, views):
    path = list_dir / "pairs.txt"
    assert is_calibrated_pairs(path)
    specs = read_calibrated_pairs(path)
    assert [s.name for s in specs] == ["color/0000-0001", "color/0001-0003", "color/0002-0000"]
    by_name = {s.name: s for s in read_strecha_pairs(need_shared("data/strecha/Herz-Jesus-P8"))}
    for spec, key in zip(specs[:2], ["0000-0001", "0001-0003"]):
        truth = by_name[key]
        assert spec.geometry == "fundamental" and spec.calibrated
        assert spec.image1.resolve() == truth.image1.resolve()
        assert np.allclose(spec.K1, truth.K1) and np.allclose(spec.K2, truth.K2)
        assert np.allclose(spec.R, truth.R, atol=1e-12) and np.allclose(spec.t, truth.t, atol=1e-12)
    # the reversed direction: the inverse pose
    R20, t20 = specs[2].R, specs[2].t
    R02, t02 = relative_pose(views[0], views[2])
    assert np.allclose(R20, R02.T, atol=1e-12) and np.allclose(t20, -R02.T @ t02, atol=1e-9)


def test_detection_is_by_field_count(list_dir, tmp_path):
    other = tmp_path / "plain.txt"
    other.write_text("color/0000.jpg color/0001.jpg none\n")
    assert not is_calibrated_pairs(other)
    assert not is_calibrated_pairs(tmp_path / "missing.txt")


def test_repeated_names_get_the_line_number(list_dir):
    path = list_dir / "pairs.txt"
    first = [ln for ln in path.read_text().splitlines() if ln.startswith("color/0000.jpg")][0]
    path.write_text(first + "\n" + first + "\n")
    assert [s.name for s in read_calibrated_pairs(path)] == ["color/0000-0001", "color/0000-0001@2"]


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda f: f[:-1], "expected 38 fields"),
        (lambda f: f[:5] + ["x"] + f[6:], "must be numbers"),
        (lambda f: f[:2] + ["1", "0"] + f[4:], "rotated pairs are not supported"),
        (lambda f: f[:4] + ["-5"] + f[5:], "K0: intrinsics"),
        (lambda f: f[:13] + ["0"] + f[14:], "K1: intrinsics"),
        (lambda f: f[:22] + ["3"] + f[23:], "not a rotation"),
        (lambda f: f[:37] + ["2"], "not a rigid transform"),
        (lambda f: f[:25] + ["0"] + f[26:29] + ["0"] + f[30:33] + ["0"] + f[34:], "no translation"),
        (lambda f: ["color/9999.jpg"] + f[1:], "does not exist"),
        (lambda f: f[:20] + ["nan"] + f[21:], "NaN"),
    ],
)
def test_broken_lines_give_one_line_errors_with_the_line_number(list_dir, edit, message):
    path = list_dir / "pairs.txt"
    line = [ln for ln in path.read_text().splitlines() if ln.startswith("color/0000.jpg")][0]
    path.write_text("# header\n" + " ".join(edit(line.split())) + "\n")
    with pytest.raises(DatasetError, match=message) as info:
        read_calibrated_pairs(path)
    assert f"{path}:2" in str(info.value) and "\n" not in str(info.value)


def test_empty_list_and_folder_are_refused(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("# nothing\n")
    with pytest.raises(DatasetError, match="lists no pairs"):
        read_calibrated_pairs(path)
    with pytest.raises(DatasetError, match="expects a text file"):
        read_calibrated_pairs(tmp_path)


def test_registry_detects_the_list_before_plain_pairs_files(list_dir, tmp_path):
    from hardmatch.datasets.registry import detect_format, read_dataset

    path = list_dir / "pairs.txt"
    assert detect_format(path) == "calibrated-pairs"
    assert [s.name for s in read_dataset(path)] == [s.name for s in read_calibrated_pairs(path)]
    plain = list_dir / "plain.txt"
    plain.write_text("color/0000.jpg color/0001.jpg none\n")
    assert detect_format(plain) == "pairs"
