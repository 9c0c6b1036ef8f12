"""Scenes laid out as users lay them out: images in subfolders named ``cam0/img.jpg`` (as COLMAP and hloc
name them), read back with hloc's own readers, and ``matching_scores0`` in hloc's [0, 1] convention."""

import json
import os
import subprocess
import sys

import cv2
import h5py
import numpy as np
import pytest

from hardmatch.core.errors import DatasetError, HardmatchError
from hardmatch.scene import hloc_files as store
from hardmatch.scene.features import reusable_features
from hardmatch.scene.images import list_images

from .conftest import need_shared, synthetic_texture

FAST = ("--nfeatures", "2000")
#: fountain-P11 images and the subfolder each goes to in the split copy (interleaved, so the split
#: scene's name order differs from the flat one's).
SPLIT = {"0002.jpg": "a", "0003.jpg": "b", "0004.jpg": "a", "0005.jpg": "b"}


def run(*args, timeout=900):
    return subprocess.run([sys.executable, "-m", "hardmatch.cli", *map(str, args)], capture_output=True, text=True, check=False,
                          timeout=timeout)


# hloc's readers, as hloc/utils/io.py and hloc/utils/parsers.py have them (hloc is not a dependency)
def hloc_list_h5_names(path):
    names = []
    with h5py.File(str(path), "r") as fd:
        fd.visititems(lambda _, obj: names.append(obj.parent.name.strip("/")) if isinstance(obj, h5py.Dataset)
                      else None)
    return sorted(set(names))


def hloc_names_to_pair(name0, name1, separator="/"):
    return separator.join((name0.replace("/", "-"), name1.replace("/", "-")))


def hloc_get_keypoints(path, name):
    with h5py.File(str(path), "r") as hfile:
        return hfile[name]["keypoints"].__array__()


def hloc_get_matches(path, name0, name1):
    with h5py.File(str(path), "r") as hfile:
        pair, reverse = hloc_names_to_pair(name0, name1), False
        if pair not in hfile:
            pair, reverse = hloc_names_to_pair(name1, name0), True
        matches = hfile[pair]["matches0"].__array__()
        scores = hfile[pair]["matching_scores0"].__array__()
    idx = np.where(matches != -1)[0]
    matches = np.stack([idx, matches[idx]], -1)
    if reverse:
        matches = np.flip(matches, -1)
    return matches, scores[idx]


def _png(path, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), synthetic_texture(60, 80, seed=seed))
    return path


def test_subfolders_listed_by_relative_name_hidden_and_other_files_skipped(tmp_path):
    scene, elsewhere = tmp_path / "scene", tmp_path / "elsewhere"
    for i, name in enumerate(["top.jpg", "cam0/b.JPG", "cam0/deep/c.png", "cam1/d.tif", ".hidden/e.jpg",
                              "cam1/.f.jpg", "cam1/._g.jpg", "cam1/.thumbnails/h.png"]):
        _png(scene / name, seed=i)
    (scene / "cam0" / "notes.txt").write_text("not an image")
    (scene / "cam0" / "K.txt").write_text("1 0 0\n0 1 0\n0 0 1\n")
    (scene / "cam1" / "dir.jpg").mkdir()  # a folder named like an image is a folder (its images are listed)
    _png(scene / "cam1" / "dir.jpg" / "i.png")
    _png(elsewhere / "linked.jpg", seed=9)
    os.symlink(elsewhere, scene / "cam2")  # a linked camera folder is followed
    os.symlink(elsewhere / "linked.jpg", scene / "cam0" / "alias.jpg")  # a linked file is an image
    os.symlink(scene, scene / "cam0" / "loop")  # a loop is not entered again
    os.symlink(tmp_path / "gone.jpg", scene / "cam1" / "broken.jpg")  # a broken link is no file
    assert list_images(scene) == ["cam0/alias.jpg", "cam0/b.JPG", "cam0/deep/c.png", "cam1/d.tif",
                                  "cam1/dir.jpg/i.png", "cam2/linked.jpg", "top.jpg"]
    flat = tmp_path / "flat"
    for i in range(3):
        _png(flat / f"{i}.png", seed=i)
    assert list_images(flat) == ["0.png", "1.png", "2.png"]  # a flat folder lists as before


def test_only_subfolders_and_layout_problems(tmp_path):
    only = tmp_path / "only"
    _png(only / "cam0" / "x.png")
    _png(only / "cam1" / "x.png", seed=1)
    assert list_images(only) == ["cam0/x.png", "cam1/x.png"]  # today's exit 5: no images directly in it
    one = tmp_path / "one"
    _png(one / "cam0" / "x.png")
    _png(one / ".trash" / "y.png")
    with pytest.raises(DatasetError, match="only one image"):
        list_images(one)
    clash = tmp_path / "clash"
    _png(clash / "a" / "b.png")
    _png(clash / "a-b.png", seed=1)
    _png(clash / "c.png", seed=2)
    with pytest.raises(DatasetError, match="a-b.png and a/b.png have the same name in hloc's pair names"):
        list_images(clash)


def test_white_space_in_a_name_is_refused_by_name(tmp_path):
    scene = tmp_path / "scene"
    _png(scene / "a.png")
    _png(scene / "my photo.png", seed=1)
    _png(scene / "cam 1" / "c.png", seed=2)
    with pytest.raises(DatasetError, match=r"'cam 1/c.png', 'my photo.png': white space in an image name"):
        list_images(scene)


def test_the_output_folder_inside_the_scene_is_not_listed(tmp_path):
    scene = tmp_path / "scene"
    for i in range(2):
        _png(scene / f"{i}.png", seed=i)
    _png(scene / "out" / "viz" / "pair.png", seed=5)  # what a run wrote into its OUT
    assert list_images(scene, skip=scene / "out") == ["0.png", "1.png"]
    os.symlink(scene / "out", tmp_path / "link")
    assert list_images(scene, skip=tmp_path / "link") == ["0.png", "1.png"]  # resolved through links
    assert list_images(scene) == ["0.png", "1.png", "out/viz/pair.png"]


def test_nested_names_in_the_h5_files_read_by_hloc(tmp_path):
    """features.h5 groups ``cam0/x.png`` are nested groups; resume identity and pair records find them."""
    scene, out = tmp_path / "scene", tmp_path / "out"
    out.mkdir()
    names = ["cam0/x.png", "cam1/x.png", "y.png"]
    for i, name in enumerate(names):
        _png(scene / name, seed=i)
    path = out / store.FEATURES_H5
    done, identities = reusable_features(path, scene, names)
    assert done == set()
    for i, name in enumerate(names):
        record = {"keypoints": np.full((3, 2), i, np.float32), "descriptors": np.zeros((128, 3), np.float32)}
        store.write_features(path, name, record, json.dumps(identities[name], sort_keys=True))
    with h5py.File(path, "r") as f:
        assert sorted(f) == ["cam0", "cam1", "y.png"] and isinstance(f["cam0"], h5py.Group)
    assert hloc_list_h5_names(path) == names
    assert np.all(hloc_get_keypoints(path, "cam1/x.png") == 1)
    assert set(store.read_sources(path)) == set(names)
    assert reusable_features(path, scene, names)[0] == set(names)  # resumed: every nested image reused
    _png(scene / "cam1" / "x.png", seed=7)  # another image under a stored nested name is refused
    with pytest.raises(HardmatchError, match="cam1/x.png differ"):
        reusable_features(path, scene, names)

    matches = out / store.MATCHES_H5
    record = {"matches0": np.array([2, -1, 0], np.int32), "matching_scores0": np.array([0.9, 0, 0.7], np.float32),
              "inliers": np.array([[0, 2], [2, 0]], np.int32), "geometry": "fundamental", "reason": ""}
    store.write_matches(matches, "cam0/x.png", "cam1/x.png", record)
    store.write_matches(matches, "cam1/x.png", "y.png", record)
    assert store.pair_key("cam0/x.png", "cam1/x.png") == "cam0-x.png/cam1-x.png"
    assert store.written_groups(matches) == {"cam0-x.png/cam1-x.png", "cam1-x.png/y.png"}
    found, scores = hloc_get_matches(matches, "cam1/x.png", "cam0/x.png")  # hloc finds it in either order
    assert found.tolist() == [[2, 0], [0, 2]] and np.allclose(scores, [0.9, 0.7])
    assert store.drop_pairs_of(matches, ["cam0/x.png"]) == 1
    assert store.written_groups(matches) == {"cam1-x.png/y.png"}


def test_hloc_score_is_monotone_in_0_1():
    cosine = np.linspace(-1, 1, 201)
    score = store.hloc_score(cosine)
    assert score.dtype == np.float32 and score[0] == 0 and score[100] == 0.5 and score[-1] == 1
    assert np.all(np.diff(score) > 0)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 50, 128))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    d = np.linalg.norm(a - b, axis=1)  # L2 distance of unit vectors, in [0, 2]
    assert np.allclose(store.hloc_score((a * b).sum(1)), 1 - d ** 2 / 4, atol=1e-6)
    assert store.hloc_score(np.float32(1.0000001)) == 1.0  # rounding never leaves [0, 1]


def _copy(root, folder, layout):
    for name, sub in layout.items():
        image = cv2.imread(str(root / name))
        f = 800 / max(image.shape[:2])
        target = folder / sub / name
        target.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(target), cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA))


@pytest.fixture(scope="module")
def flat_and_split(tmp_path_factory):
    """Four fountain-P11 images at 800 px reconstructed flat and split into subfolders a/ and b/ (with a
    hidden folder holding a fifth real image and a text file, both to be ignored)."""
    pytest.importorskip("pycolmap")
    root = need_shared("data/strecha/fountain-P11/images")
    base = tmp_path_factory.mktemp("layout")
    _copy(root, base / "flat", {name: "" for name in SPLIT})
    _copy(root, base / "split", SPLIT)
    _copy(root, base / "split" / "b" / ".cache", {"0006.jpg": ""})
    (base / "split" / "a" / "notes.txt").write_text("not an image")
    procs = {kind: run("reconstruct", base / kind, base / f"out-{kind}", *FAST) for kind in ("flat", "split")}
    return base, procs


def _relative_rotations(model_dir):
    import pycolmap

    model = pycolmap.Reconstruction(str(model_dir))
    rotations = {image.name.rsplit("/", 1)[-1]: image.cam_from_world().rotation.matrix()
                 for image in model.images.values() if image.has_pose}
    return {(i, j): rotations[j] @ rotations[i].T for i in rotations for j in rotations if i < j}


def test_split_folder_reconstructs_as_the_flat_one(flat_and_split):
    base, procs = flat_and_split
    for proc in procs.values():
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    flat, split = (json.loads((base / f"out-{k}" / "summary.json").read_text()) for k in ("flat", "split"))
    names = sorted(f"{sub}/{name}" for name, sub in SPLIT.items())
    assert split["options"]["images"] == names and split["images"] == len(SPLIT) and not split["skipped"]
    assert split["model"]["registered_images"] == names
    assert flat["model"]["registered_images"] == sorted(SPLIT)
    # the same images' features, bit for bit (a name is not an input of extraction)
    with h5py.File(base / "out-flat" / "features.h5", "r") as f, h5py.File(base / "out-split" / "features.h5", "r") as g:
        for name, sub in SPLIT.items():
            assert np.array_equal(f[name]["keypoints"][()], g[f"{sub}/{name}"]["keypoints"][()])
    # pairs are matched in the split scene's name order (some the other way round): nearly the same model
    points = flat["model"]["points3D"], split["model"]["points3D"]
    assert min(points) > 300 and abs(points[0] - points[1]) <= 0.05 * points[0], points
    assert split["model"]["mean_reprojection_error"] < 1.5
    a, b = _relative_rotations(base / "out-flat" / "sparse" / "0"), _relative_rotations(base / "out-split" / "sparse" / "0")
    assert set(a) == set(b) and len(a) == 6
    for key in a:
        r = a[key] @ b[key].T
        angle = np.degrees(np.arccos(np.clip((np.trace(r) - 1) / 2, -1, 1)))
        assert angle < 0.5, (key, angle)


def test_split_folder_names_everywhere_and_resumes(flat_and_split):
    import pycolmap

    base, _ = flat_and_split
    out = base / "out-split"
    names = sorted(f"{sub}/{name}" for name, sub in SPLIT.items())
    assert hloc_list_h5_names(out / "features.h5") == names
    pairs = [line.split() for line in (out / "pairs.txt").read_text().splitlines()]
    assert pairs[0] == ["a/0002.jpg", "a/0004.jpg"] and len(pairs) == 6
    for a, b in pairs:
        matches, scores = hloc_get_matches(out / "matches.h5", b, a)
        kp_a, kp_b = hloc_get_keypoints(out / "features.h5", a), hloc_get_keypoints(out / "features.h5", b)
        assert len(matches) > 50 and matches[:, 0].max() < len(kp_b) and matches[:, 1].max() < len(kp_a)
        # hloc's [0, 1] score: (1 + cos) / 2 of the two stored descriptors
        with h5py.File(out / "features.h5", "r") as f:
            da, db = f[a]["descriptors"][()], f[b]["descriptors"][()]
        cosine = (db[:, matches[:, 0]] * da[:, matches[:, 1]]).sum(0)
        assert np.all((scores > 0.5) & (scores <= 1)) and np.allclose(scores, (1 + cosine) / 2, atol=1e-5)
    with pycolmap.Database.open(out / "database.db") as db:
        assert sorted(image.name for image in db.read_all_images()) == names
    model = pycolmap.Reconstruction(str(out / "sparse" / "0"))
    assert sorted(image.name for image in model.images.values()) == names
    proc = run("reconstruct", base / "split", out, *FAST)  # resumed: the nested images are the same files
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["features"] == {"written": 0, "reused": len(SPLIT)} and summary["matches"]["written"] == 0
