"""The registry of two-view dataset layouts: ``hardmatch eval --format`` choices and auto-detection.

:data:`LAYOUTS` lists every layout (a :class:`~hardmatch.datasets.spec.Layout`: name, reader,
detection predicates) in detection priority order. :func:`detect_format` returns the first
layout whose ``detect`` holds for the dataset path; when none does, the first whose
``detect_nested`` holds (a folder that is itself a dataset wins over a folder of datasets).
Only layouts of the path's kind are tried: file layouts on a file, folder layouts on a folder.
:func:`read_dataset` lists a dataset's pairs with the layout's reader, each pair once
(:func:`unique_pairs`: a repeated pair is dropped with one warning).

A new layout is one module defining its ``Layout`` and one entry in :data:`LAYOUTS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from ..core.errors import DatasetError
from . import calibrated_pairs, cmp, evd, oxford, pairs_file, strecha, wxbs
from .spec import GEOMETRIES, Layout, PathLike

#: Every layout, in detection priority order.
LAYOUTS = (
    cmp.LAYOUT,
    oxford.OXFORD,
    oxford.HPATCHES,
    evd.LAYOUT,
    strecha.LAYOUT,
    wxbs.LAYOUT,
    calibrated_pairs.LAYOUT,
    pairs_file.LAYOUT,
)

#: ``--format`` choices: ``auto`` (detected) and every layout's name.
FORMATS = ("auto",) + tuple(layout.name for layout in LAYOUTS)


def get_layout(fmt: str) -> Layout:
    """The registered layout named ``fmt``; raises :class:`DatasetError` for an unknown name."""
    for layout in LAYOUTS:
        if layout.name == fmt:
            return layout
    raise DatasetError(f"unknown dataset format {fmt!r} (expected one of {', '.join(FORMATS)})")


def read_dataset(root: PathLike, fmt: str = "auto", geometry: Optional[str] = None, allow_outside_root: bool = False,
                 warn: Optional[Callable[[str], None]] = None) -> list:
    """List the image pairs of a two-view dataset with their ground truth.

    Args:
        root: dataset folder (or, for a layout that is a file such as ``pairs``, the file).
        fmt: ``"auto"`` or a name of :data:`FORMATS` (see each layout's module).
        geometry: None (decide from the data) or ``"homography"`` / ``"fundamental"`` to force
            the geometry of every pair; only meaningful for layouts without a fixed geometry
            (``cmp``; ``pairs`` files for pairs without a ground-truth file); the others raise
            :class:`DatasetError` on a conflicting override.
        allow_outside_root: layouts that list paths (``pairs``, ``calibrated-pairs``) refuse a
            path leaving the listing's folder (absolute, ``../``) unless this is true.
        warn: called with one line when a pair is listed more than once (it is kept once);
            default :func:`warnings.warn`.

    Returns:
        ``list[PairSpec]`` sorted by pair name (``pairs`` keeps the file order).

    Raises:
        DatasetError: missing root, unknown format, undetectable or broken layout.
    """
    if fmt not in FORMATS:
        raise DatasetError(f"unknown dataset format {fmt!r} (expected one of {', '.join(FORMATS)})")
    if geometry is not None and geometry not in GEOMETRIES:
        raise DatasetError(f"unknown geometry {geometry!r} (expected homography or fundamental)")
    path = Path(root)
    if not path.exists():
        raise DatasetError(f"{path}: no such dataset file or folder")
    layout = get_layout(detect_format(path) if fmt == "auto" else fmt)
    if not layout.takes_file and not path.is_dir():
        raise DatasetError(f"{path}: {layout.name} dataset must be a folder, got a file")
    if layout.geometry is not None and geometry is not None and geometry != layout.geometry:
        raise DatasetError(
            f"{path}: {layout.name} datasets are {layout.geometry} pairs, cannot override geometry to {geometry}"
        )
    reading = {"allow_outside_root": allow_outside_root} if layout.lists_paths else {}
    return unique_pairs(layout.read(path, geometry, **reading), path, warn)


def unique_pairs(specs: list, where: PathLike, warn: Optional[Callable[[str], None]] = None) -> list:
    """``specs`` with each (image 1, image 2) pair kept once, at its first place; one line to
    ``warn`` (default :func:`warnings.warn`) naming the repeated pairs when there were any."""
    kept, seen, repeats = [], {}, {}
    for spec in specs:
        key = (Path(spec.image1).resolve(), Path(spec.image2).resolve())
        if key in seen:
            repeats[seen[key]] = repeats.get(seen[key], 1) + 1
            continue
        seen[key] = spec.name
        kept.append(spec)
    if repeats:
        listed = ", ".join(f"{name} (x{count})" for name, count in list(repeats.items())[:3])
        more = f" and {len(repeats) - 3} more" if len(repeats) > 3 else ""
        message = f"{where}: {len(specs) - len(kept)} duplicate pair(s) counted once: {listed}{more}"
        if warn is None:
            import warnings

            warnings.warn(message, stacklevel=3)
        else:
            warn(message)
    return kept


def detect_format(root: PathLike) -> str:
    """The name of the layout of ``root`` (see the module docstring); raises :class:`DatasetError`."""
    path = Path(root)
    if not path.exists():
        raise DatasetError(f"{path}: no such dataset file or folder")
    candidates = [layout for layout in LAYOUTS if layout.takes_file == path.is_file()]
    for layout in candidates:
        if layout.detect(path):
            return layout.name
    for layout in candidates:
        if layout.detect_nested is not None and layout.detect_nested(path):
            return layout.name
    hints = [layout.hint for layout in LAYOUTS if layout.hint]
    raise DatasetError(
        f"{path}: cannot detect the dataset format (no {', '.join(hints[:-1])} or {hints[-1]} found); "
        "pass the format explicitly"
    )
