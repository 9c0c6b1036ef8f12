"""Homography sequences: the Oxford affine layout (``--format oxford``) and HPatches
(``--format hpatches``), which keeps Oxford's shape with other file names.

``oxford``
    ``img1.ext`` .. ``imgN.ext`` + ``H1to2p`` .. ``H1toNp``; a folder of such sequence folders
    is accepted too. Pairs whose image is absent are skipped.
``hpatches``
    A folder of sequence folders with ``1.ppm`` .. ``6.ppm`` + ``H_1_2`` .. ``H_1_6``, or a
    single sequence folder.

Every pair is image 1 against image k (name ``SEQUENCE/1-k``), judged as a homography
(float64 (3, 3), image 1 -> image k). A folder holding both kinds of sequence folders is
detected as HPatches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from ..core.errors import DatasetError
from .files import find_image, load_matrix, subdirs
from .spec import Layout, PairSpec


@dataclass(frozen=True)
class _Naming:
    """File names of one kind of sequence.

    ``h_glob`` / ``h_pattern``: homography files, the pattern's group is k; ``image_stem``:
    ``str.format`` template of image k's stem; ``no_first_image``: message when image 1 is
    absent; ``skip_missing``: a homography without its image k is skipped (else an error)."""

    h_glob: str
    h_pattern: str
    image_stem: str
    no_first_image: str
    skip_missing: bool


_OXFORD = _Naming("H1to*p", r"H1to(\d+)p", "img{}",
                  "no img1.<ext> (Oxford affine sequence expects img1..imgN + H1to2p..H1toNp)", True)
_HPATCHES = _Naming("H_1_*", r"H_1_(\d+)", "{}", "HPatches sequence has H_1_k files but no image 1.ppm", False)


def _read_sequence(folder: Path, naming: _Naming) -> list:
    """The pairs (1, k) of one sequence folder, sorted by k."""
    image1 = find_image(folder, naming.image_stem.format(1))
    if image1 is None:
        raise DatasetError(f"{folder}: {naming.no_first_image}")
    specs = []
    for h_path in folder.glob(naming.h_glob):
        match = re.fullmatch(naming.h_pattern, h_path.name)
        if not match or match.group(1) == "1":
            continue
        k = int(match.group(1))
        image2 = find_image(folder, naming.image_stem.format(k))
        if image2 is None:
            if naming.skip_missing:
                continue  # pairs are listed for the files present
            raise DatasetError(f"{folder}: has {h_path.name} but no image {k}.ppm")
        specs.append((k, PairSpec(f"{folder.name}/1-{k}", image1, image2, "homography",
                                  load_matrix(h_path, "3x3 homography"))))
    specs.sort(key=lambda item: item[0])
    return [spec for _, spec in specs]


def _read_sequences(root: Path, naming: _Naming, is_sequence: Callable[[Path], bool], empty: str) -> list:
    """``root`` as one sequence, else every sequence folder directly below it; ``empty``: message
    when there is no pair."""
    if is_sequence(root):
        specs = _read_sequence(root, naming)
    else:
        specs = []
        for sub in subdirs(root):
            if is_sequence(sub):
                specs.extend(_read_sequence(sub, naming))
    if not specs:
        raise DatasetError(f"{root}: {empty}")
    return specs


# ---- Oxford affine --------------------------------------------------------------------------


def is_oxford_sequence(path: Path) -> bool:
    """Whether ``path`` holds ``H1to*p`` files and an ``img1`` image."""
    return any(path.glob("H1to*p")) and find_image(path, "img1") is not None


def holds_oxford_sequences(path: Path) -> bool:
    """Whether a sub-folder of ``path`` is an Oxford sequence (and none an HPatches one)."""
    folders = subdirs(path)
    return any(is_oxford_sequence(d) for d in folders) and not any(_has_first_hpatches_h(d) for d in folders)


def read_oxford(root: Path, geometry: Optional[str] = None) -> list:
    """The pairs of an Oxford affine sequence folder or of a folder of them."""
    return _read_sequences(root, _OXFORD, is_oxford_sequence,
                           "no Oxford affine pairs (expected img1.<ext>, imgK.<ext> and H1toKp files)")


# ---- HPatches -------------------------------------------------------------------------------


def _has_first_hpatches_h(path: Path) -> bool:
    return (path / "H_1_2").is_file()


def _is_hpatches_sequence(path: Path) -> bool:
    return any(path.glob("H_1_*"))


def holds_hpatches_sequences(path: Path) -> bool:
    """Whether a sub-folder of ``path`` holds ``H_1_2``."""
    return any(_has_first_hpatches_h(d) for d in subdirs(path))


def read_hpatches(root: Path, geometry: Optional[str] = None) -> list:
    """The pairs of an HPatches sequence folder or of a folder of them."""
    return _read_sequences(root, _HPATCHES, _is_hpatches_sequence,
                           "no HPatches sequences (expected folders with 1.ppm..6.ppm and H_1_2..H_1_6)")


OXFORD = Layout("oxford", read_oxford, is_oxford_sequence, holds_oxford_sequences, "homography", "H1to2p")
HPATCHES = Layout("hpatches", read_hpatches, _has_first_hpatches_h, holds_hpatches_sequences, "homography", "H_1_2")
