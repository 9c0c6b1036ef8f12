"""Files of an evaluation's output folder: ``results.jsonl`` (appended row by row, read back to
resume a run) and atomic writes of the other outputs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Union

from ..core import files
from .rows import row_key

RESULTS_JSONL = "results.jsonl"
RESULTS_CSV = "results.csv"
SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"
SUMMARY_PNG = "summary.png"


def load_results(path: Union[str, os.PathLike]) -> dict:
    """Rows of a ``results.jsonl`` by :func:`row_key` (a later line wins); unparsable lines, e.g.
    one cut off by a killed run, are skipped. Missing file -> ``{}``."""
    path = Path(path)
    if not path.is_file():
        return {}
    rows = {}
    for line in path.read_text(errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and None not in row_key(row):
            rows[row_key(row)] = row
    return rows


class ResultsWriter:
    """Appends rows to ``results.jsonl``, one flushed line per row (``fresh=True`` truncates first).

    A line cut off by a killed run (file not ending in a newline) is dropped before appending."""

    def __init__(self, path: Path, fresh: bool = False) -> None:
        if not fresh:
            _drop_partial_line(path)
        self._file = open(path, "w" if fresh else "a", encoding="utf-8")

    def write(self, row: dict) -> None:
        self._file.write(json.dumps(row, allow_nan=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "ResultsWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _drop_partial_line(path: Path) -> None:
    """Truncate ``path`` after its last newline (no-op when missing, empty or ending in one)."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        data = f.read()
        if not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)


def write_atomic(path: Path, data: Union[str, bytes]) -> None:
    """Write via a uniquely named temporary file and rename (:func:`hardmatch.core.files.write_atomic`),
    so a killed run never leaves half a file and two writers never share a temporary name."""
    files.write_atomic(path, data)
