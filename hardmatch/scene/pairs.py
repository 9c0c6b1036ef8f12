"""Stage 2: which image pairs to match -> ``OUT/pairs.txt`` (``name0 name1`` per line, hloc's format).

``--pairs`` takes:

- ``exhaustive``: every pair (the default, up to :data:`EXHAUSTIVE_MAX` images; more need another choice);
- ``sequential:K``: each image with the next K in name order (video frames);
- ``retrieval:K``: each image with its K most similar by a global descriptor built from the local
  HardNet descriptors (:mod:`hardmatch.scene.retrieval`);
- a path to a pairs file (``name0 name1`` per line; ``#`` comments and blank lines ignored).

Names are the images' relative names (``cam0/img001.jpg``, :mod:`hardmatch.scene.images`), as hloc's
pairs files hold them; a name holding a space cannot be written in this format (hloc's neither).
Pairs are unordered: each is kept once, as (earlier name, later name) in the images' order.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

from ..core.errors import DatasetError, HardmatchError
from ..core.files import write_atomic

#: Most images ``exhaustive`` takes (N (N - 1) / 2 pairs: 4950 at 100).
EXHAUSTIVE_MAX = 200

PAIRS_TXT = "pairs.txt"


def parse_spec(spec: str) -> tuple[str, object]:
    """``"exhaustive"`` -> ("exhaustive", None); ``"sequential:K"``/``"retrieval:K"`` -> (kind, K);
    anything else -> ("file", Path). Raises :class:`HardmatchError` (exit 2) for a bad K."""
    text = spec.strip()
    if text == "exhaustive":
        return "exhaustive", None
    for kind in ("sequential", "retrieval"):
        if text.startswith(kind + ":") or text == kind:
            _, _, k = text.partition(":")
            try:
                value = int(k)
            except ValueError:
                value = 0
            if value < 1:
                raise HardmatchError(f"--pairs {spec}: expected {kind}:K with K a whole number >= 1")
            return kind, value
    path = Path(text)
    if not path.is_file():
        raise HardmatchError(f"--pairs {spec}: expected exhaustive, sequential:K, retrieval:K or a pairs file")
    return "file", path


def exhaustive(names: list[str]) -> list[tuple[str, str]]:
    if len(names) > EXHAUSTIVE_MAX:
        raise HardmatchError(f"--pairs exhaustive: {len(names)} images make {len(names) * (len(names) - 1) // 2} "
                             f"pairs (at most {EXHAUSTIVE_MAX} images); use retrieval:K or sequential:K")
    return list(combinations(names, 2))


def sequential(names: list[str], k: int) -> list[tuple[str, str]]:
    return [(names[i], names[j]) for i in range(len(names)) for j in range(i + 1, min(len(names), i + 1 + k))]


def read_pairs_file(path: Path, names: list[str]) -> list[tuple[str, str]]:
    """Pairs of a ``name0 name1`` file, restricted to ``names`` (an unknown name: :class:`DatasetError`)."""
    known = set(names)
    pairs = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise DatasetError(f"{path}:{number}: expected 'name0 name1', got {line!r}")
        unknown = [p for p in parts if p not in known]
        if unknown:
            raise DatasetError(f"{path}:{number}: {unknown[0]} is not an image of the scene (or was skipped)")
        if parts[0] != parts[1]:
            pairs.append((parts[0], parts[1]))
    return pairs


def canonical(pairs, names: list[str]) -> list[tuple[str, str]]:
    """Each unordered pair once, as (earlier, later) in ``names`` order, sorted by that order."""
    order = {n: i for i, n in enumerate(names)}
    unique = {tuple(sorted(p, key=order.__getitem__)) for p in pairs}
    return sorted(unique, key=lambda p: (order[p[0]], order[p[1]]))


def make_pairs(spec: str, names: list[str], features_path: Path) -> list[tuple[str, str]]:
    """The pairs ``spec`` asks for among ``names`` (images with features), canonical order."""
    kind, arg = parse_spec(spec)
    if kind == "exhaustive":
        pairs = exhaustive(names)
    elif kind == "sequential":
        pairs = sequential(names, arg)
    elif kind == "retrieval":
        from .retrieval import retrieval_pairs

        pairs = retrieval_pairs(features_path, names, arg)
    else:
        pairs = read_pairs_file(arg, names)
    return canonical(pairs, names)


def check_pairs_spec(spec: str, names: list[str]) -> None:
    """Check ``spec`` against the scene's image files ``names`` before any work: a bad K is a
    :class:`HardmatchError` (exit 2), a pairs file naming an image the folder lacks a
    :class:`DatasetError` (exit 5). Images skipped later as unreadable are checked by :func:`make_pairs`."""
    kind, arg = parse_spec(spec)
    if kind == "file":
        read_pairs_file(arg, names)


def write_pairs(path: Path, pairs: list[tuple[str, str]]) -> None:
    """``OUT/pairs.txt``, written atomically (:func:`hardmatch.core.files.write_atomic`)."""
    write_atomic(path, "".join(f"{a} {b}\n" for a, b in pairs))
