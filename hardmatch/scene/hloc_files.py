"""``features.h5`` and ``matches.h5`` in hloc's layout, written one record at a time (resumable).

Image names are relative paths with ``/`` (``cam0/img001.jpg``, :mod:`hardmatch.scene.images`).

features.h5, one group per image name (hloc's ``extract_features``; a nested name is a nested group,
``cam0`` holding ``img001.jpg``, which is what ``f["cam0/img001.jpg"]`` reads):
  ``keypoints`` (N, 2) float32, pixel centres at integers (OpenCV's and hloc's convention; COLMAP
  adds 0.5); ``descriptors`` (128, N) float32 (HardNet, unit norm); ``scores`` (N,) float32
  (detector response); ``image_size`` (2,) int (width, height of the original image);
  plus ``frames`` (N, 2, 3) float32 local affine frames in original pixels and ``to_working``
  (3, 3) float64 (original -> working pixels, where matching thresholds apply).

matches.h5, one group per pair named as hloc's ``names_to_pair`` names it (``name0/name1`` with ``/``
in each name replaced by ``-``: ``cam0-img001.jpg/cam1-img001.jpg``, two levels deep):
  ``matches0`` (N0,) int32, index into image 1's keypoints or -1 (the tentative matches);
  ``matching_scores0`` (N0,) float32 in [0, 1], hloc's convention: :func:`hloc_score` of the two unit
  descriptors' cosine, ``(1 + cos) / 2`` (= ``1 - d^2 / 4`` for their L2 distance d), the mapping of
  hloc's own nearest-neighbour matcher; 0 where none); plus ``inliers`` (I, 2)
  int32 keypoint indices of the verified correspondences and, when a model was accepted, ``model``
  (3, 3) float64 with attribute ``geometry``; attribute ``reason`` says why there is none.

A group counts as written only once its attribute ``complete`` is set (the last thing written),
so a job stopped mid-record redoes just that record. Each file carries ``fingerprint``: the
configuration that wrote it; a re-run with another configuration is refused, never mixed in. Each
image group of features.h5 carries ``source``: what the image file was
(:mod:`hardmatch.scene.image_identity`); a re-run on other images under the same names is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..core.errors import HardmatchError

FEATURES_H5 = "features.h5"
MATCHES_H5 = "matches.h5"
#: How ``matching_scores0`` is made (stamped in matches.h5's fingerprint: older files held the cosine).
SCORE_CONVENTION = "(1+cos)/2"


def _h5py():
    import h5py

    return h5py


def pair_name(name: str) -> str:
    """An image name as hloc's pair names hold it: ``/`` -> ``-``."""
    return name.replace("/", "-")


def pair_key(name0: str, name1: str) -> str:
    """hloc's group name of a pair (``names_to_pair``): ``name0/name1`` with ``/`` inside a name replaced by ``-``."""
    return "/".join((pair_name(name0), pair_name(name1)))


def hloc_score(cosine) -> np.ndarray:
    """Descriptor cosine similarity in [-1, 1] -> hloc's matching score in [0, 1]: ``(1 + cos) / 2``,
    monotone (the most similar scores highest), as hloc's nearest-neighbour matcher scores unit
    descriptors; clipped against rounding (float32)."""
    return np.clip((1.0 + np.asarray(cosine, np.float32)) / 2.0, 0.0, 1.0).astype(np.float32)


def check_fingerprint(path: Path, fingerprint: dict) -> None:
    """Create ``path`` stamped with ``fingerprint`` or check that it already carries the same one.

    Raises :class:`HardmatchError` (exit 2) when the file was written with another configuration
    or cannot be read as HDF5.
    """
    h5py = _h5py()
    text = json.dumps(fingerprint, sort_keys=True)
    try:
        with h5py.File(path, "a") as f:
            stored = f.attrs.get("fingerprint")
            if stored is None:
                f.attrs["fingerprint"] = text
                return
    except OSError as exc:
        raise HardmatchError(f"{path}: not a readable HDF5 file ({str(exc).splitlines()[0]}); "
                             f"delete it to recompute") from exc
    if stored != text:
        old, new = json.loads(stored), fingerprint
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise HardmatchError(f"{path} was written with another configuration ({', '.join(diff)} differ); "
                             f"use another OUT folder or delete the file")


def written_groups(path: Path) -> set[str]:
    """Names of the complete records (image names, or ``name0/name1`` pair keys) in an h5 file."""
    if not path.exists():
        return set()
    done: set[str] = set()

    def visit(name, obj):
        if obj.attrs.get("complete", False):
            done.add(name)

    with _h5py().File(path, "r") as f:
        f.visititems(visit)
    return done


def drop_pairs_of(path: Path, names) -> int:
    """Delete the pair records of matches.h5 that involve any of ``names`` (their features were
    rewritten, so their matches are stale); returns how many were deleted."""
    names = {pair_name(n) for n in names}
    if not names or not path.exists():
        return 0
    stale = [key for key in written_groups(path) if any(part in names for part in key.split("/"))]
    with _h5py().File(path, "a") as f:
        for key in stale:
            del f[key]
    return len(stale)


def _write_group(path: Path, key: str, datasets: dict, attrs: dict) -> None:
    with _h5py().File(path, "a") as f:
        if key in f:
            del f[key]
        group = f.create_group(key)
        for name, value in datasets.items():
            group.create_dataset(name, data=value)
        for name, value in attrs.items():
            group.attrs[name] = value
        group.attrs["complete"] = True


def write_features(path: Path, name: str, record: dict, source: str = "") -> None:
    """Write one image's record (keys as :func:`features_record` makes them) as group ``name``;
    ``source``: the identity of the image file (:mod:`hardmatch.scene.image_identity`), as JSON."""
    _write_group(path, name, record, {"source": source} if source else {})


def read_sources(path: Path) -> dict:
    """``{image name: source attribute or None}`` of the complete image groups of features.h5, at any
    depth (``cam0/img001.jpg``)."""
    if not path.exists():
        return {}
    found: dict = {}

    def visit(name, obj):
        if obj.attrs.get("complete", False):
            found[name] = obj.attrs.get("source")

    with _h5py().File(path, "r") as f:
        f.visititems(visit)
    return found


def features_record(features) -> dict:
    """:class:`~hardmatch.core.records.Features` (original pixels) -> the arrays of one features.h5 group."""
    h, w = features.image_shape
    return {
        "keypoints": features.points.astype(np.float32),
        "descriptors": np.ascontiguousarray(features.descriptors_numpy.T, dtype=np.float32),
        "scores": np.asarray(features.responses, dtype=np.float32),
        "image_size": np.array([w, h], dtype=np.int64),
        "frames": features.lafs.astype(np.float32),
        "to_working": np.eye(3) if features.to_working is None else np.asarray(features.to_working, np.float64),
    }


def read_features(path: Path, name: str):
    """Group ``name`` of features.h5 -> :class:`~hardmatch.core.records.Features` (descriptors (N, 128))."""
    from ..core.records import Features

    with _h5py().File(path, "r") as f:
        g = f[name]
        lafs = g["frames"][()].astype(np.float64)
        w, h = (int(v) for v in g["image_size"][()])
        to_working = g["to_working"][()]
        return Features(lafs, g["scores"][()], np.ascontiguousarray(g["descriptors"][()].T), (h, w),
                        to_working=None if np.allclose(to_working, np.eye(3)) else to_working)


def append_features(path: Path, name: str, extra) -> int:
    """Append :class:`~hardmatch.core.records.Features` ``extra`` (original pixels, the same image) to image
    ``name``'s group, keeping its source; returns how many features the group held before (the index of
    the first appended one). Matches already written stay valid: they index the features before."""
    from ..core.records import Features

    stored = read_features(path, name)
    with _h5py().File(path, "r") as f:
        source = f[name].attrs.get("source") or ""
    combined = Features(np.concatenate([stored.lafs, np.asarray(extra.lafs, np.float64)]),
                        np.concatenate([stored.responses, np.asarray(extra.responses, np.float32)]),
                        np.concatenate([stored.descriptors_numpy, extra.descriptors_numpy]), stored.image_shape,
                        to_working=stored.to_working)
    write_features(path, name, features_record(combined), source)
    return len(stored)


def read_keypoints(path: Path, name: str) -> tuple[np.ndarray, tuple[int, int]]:
    """Keypoints (N, 2) float64 (pixel centres at integers) and (width, height) of one image."""
    with _h5py().File(path, "r") as f:
        g = f[name]
        return g["keypoints"][()].astype(np.float64), tuple(int(v) for v in g["image_size"][()])


def write_matches(path: Path, name0: str, name1: str, record: dict) -> None:
    """Write one pair's record (keys as :func:`~hardmatch.scene.pair_matching.match_pair_task` returns them)."""
    datasets = {k: record[k] for k in ("matches0", "matching_scores0", "inliers")}
    if record.get("model") is not None:
        datasets["model"] = record["model"]
    attrs = {"geometry": record["geometry"], "reason": record["reason"]}
    if record.get("wide_retry"):
        attrs["wide_retry"] = record["wide_retry"]
    _write_group(path, pair_key(name0, name1), datasets, attrs)


def mark_pair(path: Path, name0: str, name1: str, **attrs) -> None:
    """Set attributes of a written pair record (e.g. ``wide_retry``: what a retry of the pair found)."""
    with _h5py().File(path, "a") as f:
        for name, value in attrs.items():
            f[pair_key(name0, name1)].attrs[name] = value


def pair_summaries(path: Path, pairs) -> dict:
    """``{(name0, name1): (verified inliers, tentative matches, wide_retry attribute or "")}`` of the
    written ``pairs`` (the view graph as matched; pairs not written are left out)."""
    found = {}
    with _h5py().File(path, "r") as f:
        for a, b in pairs:
            g = f.get(pair_key(a, b))
            if g is None or not g.attrs.get("complete", False):
                continue
            inliers = len(g["inliers"]) if "model" in g else 0
            found[(a, b)] = (inliers, int((g["matches0"][()] >= 0).sum()), str(g.attrs.get("wide_retry", "")))
    return found


def read_inliers(path: Path, name0: str, name1: str) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Verified correspondences (I, 2) int of a pair, its model (3, 3) or None, and the geometry name."""
    with _h5py().File(path, "r") as f:
        g = f[pair_key(name0, name1)]
        model = g["model"][()] if "model" in g else None
        return g["inliers"][()].astype(np.int64), model, str(g.attrs["geometry"])
