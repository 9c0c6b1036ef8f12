"""The images of a scene: every image file under one folder, subfolders included, by relative name.

An image is named by its path relative to the scene folder with ``/`` between parts
(``cam0/img001.jpg``), as COLMAP and hloc name it; that name is its ``features.h5`` group (a nested
group for a nested name, as h5py and hloc make it), its COLMAP database name, its name in
``pairs.txt`` and in the report. Names are sorted (a flat folder: by file name, as before).

What is listed:

- files whose name ends in one of :data:`IMAGE_SUFFIXES` (any case); anything else is ignored;
- hidden files and folders (a name starting with ``.``: ``.git/``, ``.thumbnails/``, macOS ``._x.jpg``)
  are ignored at every depth;
- the output folder, when it lies inside the scene folder (``reconstruct photos photos/out``), is not
  entered: the images a run writes there are not part of the scene;
- symbolic links are followed, to files and to folders (a camera's folder linked into the scene is
  part of it); a link to a folder already listed (a loop such as ``all -> .``) is not entered again,
  and a broken link is ignored like any file that is not there.

A folder that is missing, is not a folder, or holds fewer than two image files is a layout
problem (:class:`~hardmatch.core.errors.DatasetError`, exit 5), and so are two names that hloc's
pair names cannot tell apart (``a/b.jpg`` and ``a-b.jpg``: :func:`~hardmatch.scene.hloc_files.pair_name`
of both is ``a-b.jpg``), and a name holding white space (``pairs.txt`` is ``name0 name1`` per line, as in
hloc, so such a name cannot be written there).
Whether each file decodes is found out when its features are extracted
(:mod:`hardmatch.scene.features`): a corrupt image is skipped there with a warning.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from ..core.errors import DatasetError
from .hloc_files import pair_name

#: File name endings taken as images (case-insensitive); anything else in the folder is ignored.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pnm", ".jp2")
#: Colliding names shown in the refusal message.
SHOWN = 3


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _walk(folder: Path, skip: Optional[Path] = None) -> list[str]:
    """Relative ``/`` names of the image files under ``folder`` (unsorted), links followed once; the
    folder ``skip`` (resolved through links) is not entered."""
    names: list[str] = []
    seen: set[str] = {os.path.realpath(skip)} if skip is not None else set()

    def fail(exc: OSError):
        raise exc

    for root, dirs, files in os.walk(folder, followlinks=True, onerror=fail):
        real = os.path.realpath(root)
        if real in seen:  # a link back to a folder already listed
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not _hidden(d))
        relative = Path(root).relative_to(folder)
        for file in files:
            if _hidden(file) or os.path.splitext(file)[1].lower() not in IMAGE_SUFFIXES:
                continue
            if os.path.isfile(os.path.join(root, file)):  # follows links: a broken one is no file
                names.append((relative / file).as_posix())
    return names


def list_images(folder: Path, skip: Optional[Path] = None) -> list[str]:
    """Sorted relative names of the image files under ``folder`` (at least two, else :class:`DatasetError`);
    the folder ``skip`` (a run's output folder) is not listed even when it lies inside ``folder``."""
    folder = Path(folder)
    if not folder.exists():
        raise DatasetError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise DatasetError(f"{folder}: not a folder (give a folder of images)")
    try:
        names = sorted(_walk(folder, skip))
    except OSError as exc:
        where = exc.filename or folder
        raise DatasetError(f"{where}: cannot list ({exc.strerror or exc})") from exc
    if not names:
        raise DatasetError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES[:4])}, ...) in it or its subfolders")
    if len(names) == 1:
        raise DatasetError(f"{folder}: only one image ({names[0]}); a reconstruction needs at least two")
    check_distinct_pair_names(folder, names)
    check_no_white_space(folder, names)
    return names


def check_no_white_space(folder: Path, names: list[str]) -> None:
    """:class:`DatasetError` naming the images whose relative name holds white space (``pairs.txt``,
    COLMAP's and hloc's pair list, separates the two names of a pair by a space)."""
    spaced = [name for name in names if any(ch.isspace() for ch in name)]
    if spaced:
        shown = ", ".join(repr(name) for name in spaced[:SHOWN])
        more = f" (and {len(spaced) - SHOWN} more)" if len(spaced) > SHOWN else ""
        raise DatasetError(f"{folder}: {shown}{more}: white space in an image name (pairs.txt, as in hloc, "
                           f"separates names by spaces); rename the files")


def check_distinct_pair_names(folder: Path, names: list[str]) -> None:
    """:class:`DatasetError` when two ``names`` have the same :func:`pair_name` (their pairs would
    share groups of matches.h5, in hloc's naming)."""
    by_key: dict[str, list[str]] = {}
    for name in names:
        by_key.setdefault(pair_name(name), []).append(name)
    clashes = [group for group in by_key.values() if len(group) > 1]
    if not clashes:
        return
    shown = "; ".join(" and ".join(group) for group in clashes[:SHOWN])
    more = f" (and {len(clashes) - SHOWN} more)" if len(clashes) > SHOWN else ""
    raise DatasetError(f"{folder}: {shown}{more} have the same name in hloc's pair names ('/' -> '-'); "
                       f"rename one of each")
