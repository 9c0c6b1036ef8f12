"""What an image of a scene is: its size, modification time and content hash, stored with its features.

Each image's group of ``features.h5`` carries the identity of the file its features were computed
from (attribute ``source``: ``{"size", "mtime_ns", "sha256"}``). A re-run on the same ``OUT`` compares
each image it would reuse with that record: equal size and ``mtime_ns`` mean the same file (no
reading); otherwise the content hash decides, so a copied or touched image is still the same image,
and another image under the same name (another scene into the same ``OUT``) is refused with one
line (:class:`~hardmatch.core.errors.OutputError`, exit 5), never mixed in.

A group without the record (written by an older hardmatch) is not trusted: its image is extracted
again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Optional

from ..core.errors import OutputError

#: Attribute of a features.h5 image group holding :func:`image_identity` as JSON.
SOURCE_ATTR = "source"
#: Images named in the refusal message (the rest are counted).
SHOWN = 3


def file_sha256(path: Path) -> Optional[str]:
    """Hex SHA-256 of the file's bytes, or None when it cannot be read (it is skipped later anyway)."""
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return None


def image_identity(path: Path, known: Optional[dict] = None) -> dict:
    """``{"size", "mtime_ns", "sha256"}`` of the file at ``path``; ``known`` (a stored identity with the
    same size and mtime_ns) is returned as it is, without reading the file."""
    stat = Path(path).stat()
    if known and known.get("size") == stat.st_size and known.get("mtime_ns") == stat.st_mtime_ns:
        return known
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": file_sha256(Path(path))}


def encode(identity: dict) -> str:
    return json.dumps(identity, sort_keys=True)


def decode(text) -> Optional[dict]:
    """A stored ``source`` attribute -> identity dict, None when absent or unreadable."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) and value.get("sha256") else None


def current_identities(image_dir: Path, names: list[str], stored: dict) -> dict:
    """``{name: identity}`` of the images ``names`` of ``image_dir``, reusing ``stored`` ones whose size
    and mtime_ns still match (``stored``: ``{name: identity or None}`` of the features file)."""
    return {name: image_identity(Path(image_dir) / name, stored.get(name)) for name in names}


def check_same_images(features_path: Path, image_dir: Path, stored: dict, current: dict) -> None:
    """:class:`OutputError` (exit 5) when an image of ``current`` has features in ``stored`` computed
    from another file (a different content hash)."""
    differ = [name for name, identity in current.items()
              if stored.get(name) is not None and stored[name]["sha256"] != identity["sha256"]]
    if not differ:
        return
    shown = ", ".join(differ[:SHOWN]) + (f" and {len(differ) - SHOWN} more" if len(differ) > SHOWN else "")
    raise OutputError(f"{features_path} holds features of other images than {image_dir} ({shown} differ); "
                      f"use another OUT folder for this scene, or delete {features_path.parent} to start afresh")
