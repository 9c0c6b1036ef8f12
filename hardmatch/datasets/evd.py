"""EVD layout (``--format evd``): ``1/NAME.png``, ``2/NAME.png`` and ``h/NAME.txt`` (float64 (3, 3)
homography, image 1 -> image 2); every pair is judged as a homography.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..core.errors import DatasetError
from .files import find_image, is_image, load_matrix
from .spec import Layout, PairSpec


def is_evd(root: Path) -> bool:
    """Whether ``root`` has the folders ``1/``, ``2/`` and ``h/``."""
    return all((root / sub).is_dir() for sub in ("1", "2", "h"))


def read_evd(root: Path, geometry: Optional[str] = None) -> list:
    """The pairs of an EVD folder (``1/``, ``2/``, ``h/``), sorted by name."""
    dirs = {sub: root / sub for sub in ("1", "2", "h")}
    missing = [sub + "/" for sub, d in dirs.items() if not d.is_dir()]
    if missing:
        raise DatasetError(f"{root}: EVD layout needs folders 1/, 2/ and h/; missing {', '.join(missing)}")
    specs = []
    for image1 in sorted(p for p in dirs["1"].iterdir() if is_image(p)):
        name = image1.stem
        image2 = find_image(dirs["2"], name)
        if image2 is None:
            raise DatasetError(f"{root}: EVD pair {name} has 1/{image1.name} but no 2/{name}.<ext>")
        h_path = dirs["h"] / f"{name}.txt"
        if not h_path.is_file():
            raise DatasetError(f"{root}: EVD pair {name} has no homography file h/{name}.txt")
        specs.append(PairSpec(name, image1, image2, "homography", load_matrix(h_path, "3x3 homography")))
    if not specs:
        raise DatasetError(f"{root}: EVD folder 1/ holds no images")
    return specs


LAYOUT = Layout("evd", read_evd, is_evd, geometry="homography", hint="1/ 2/ h/")
