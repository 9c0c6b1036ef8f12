"""WxBS layout (``--format wxbs``): one folder per pair (optionally one level under category
folders) holding two images and ``corrs.txt`` (lines ``x1 y1 x2 y2``, float64 (N, 4)); every
pair is judged as a fundamental matrix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..core.errors import DatasetError
from .files import is_image, load_correspondences, subdirs
from .spec import Layout, PairSpec


def _wxbs_pair_folders(root: Path) -> list:
    """``root`` when it holds ``corrs.txt``, else the folders one or two levels below that do."""
    if (root / "corrs.txt").is_file():
        return [root]
    found = []
    for sub in subdirs(root):
        if (sub / "corrs.txt").is_file():
            found.append(sub)
        else:
            found.extend(d for d in subdirs(sub) if (d / "corrs.txt").is_file())
    return found


def read_wxbs(root: Path, geometry: Optional[str] = None) -> list:
    """The pairs of a WxBS folder, sorted by name (the pair folder's path below ``root``)."""
    folders = _wxbs_pair_folders(root)
    if not folders:
        raise DatasetError(f"{root}: no WxBS pair folders (expected folders with two images and corrs.txt)")
    specs = []
    for folder in folders:
        images = sorted(p for p in folder.iterdir() if is_image(p))
        if len(images) < 2:
            raise DatasetError(f"{folder}: WxBS pair folder holds {len(images)} image(s), expected two")
        points = load_correspondences(folder / "corrs.txt")
        name = folder.name if folder == root else folder.relative_to(root).as_posix()
        specs.append(PairSpec(name, images[0], images[1], "fundamental", None, points))
    specs.sort(key=lambda spec: spec.name)
    return specs


def is_wxbs(root: Path) -> bool:
    """Whether ``root`` or folders one or two levels below it hold ``corrs.txt``."""
    return bool(_wxbs_pair_folders(root))


LAYOUT = Layout("wxbs", read_wxbs, is_wxbs, geometry="fundamental", hint="corrs.txt")
