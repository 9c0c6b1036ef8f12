"""Writing results safely: atomic files, unique temporary names, one run per output folder.

- :func:`write_atomic` writes through a temporary file with a unique name beside the target and
  renames it, so a killed run never leaves half a file and two runs never share a temporary name;
  the temporary file is removed on any error.
- :func:`temporary_path` is that unique name, for writers that need a path (SQLite, HDF5, folders):
  ``with temporary_path(final) as temp: ...write temp...; os.replace(temp, final)``; whatever is
  left at ``temp`` (and its SQLite sidecars ``-wal``/``-shm``/``-journal``) is removed on exit.
- :func:`check_writable` refuses an output path before the work starts (missing folder, a folder
  in the way, no permission), with an :class:`~hardmatch.core.errors.OutputError` (exit 5).
- :class:`FolderLock` holds an exclusive lock on an output folder (``OUT/.hardmatch.lock``, an
  ``fcntl`` lock the kernel drops when the process dies, so a killed run never leaves a stale lock);
  a second run on the same folder is refused with one line naming the holder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Union

from .errors import OutputError

SQLITE_SIDECARS = ("-wal", "-shm", "-journal")
LOCK_NAME = ".hardmatch.lock"


def check_writable(path: Union[str, os.PathLike], what: str = "output") -> Path:
    """``path`` as a :class:`Path` when a file can be created there; else :class:`OutputError` with one line."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OutputError(f"{path}: cannot write the {what}: it is a folder")
    if not folder.is_dir():
        raise OutputError(f"{path}: cannot write the {what}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OutputError(f"{path}: cannot write the {what}: permission denied")
    return path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    for suffix in SQLITE_SIDECARS:
        with contextlib.suppress(FileNotFoundError):
            Path(str(path) + suffix).unlink()


@contextlib.contextmanager
def temporary_path(final: Union[str, os.PathLike]) -> Iterator[Path]:
    """A unique, not yet existing path beside ``final`` (same folder, so ``os.replace`` is atomic),
    removed with its SQLite sidecars on exit unless it was renamed away."""
    final = Path(final)
    handle, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(handle)
    temp = Path(name)
    temp.unlink()  # the caller creates it (a file, a database or a folder)
    try:
        yield temp
    finally:
        _remove(temp)


def write_atomic(path: Union[str, os.PathLike], data: Union[str, bytes]) -> None:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` atomically; :class:`OutputError` when it cannot."""
    path = Path(path)
    try:
        with temporary_path(path) as temp:
            if isinstance(data, str):
                temp.write_text(data, encoding="utf-8")
            else:
                temp.write_bytes(data)
            os.replace(temp, path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None


class FolderLock:
    """Exclusive lock of an output folder for one run: ``with FolderLock(out, "reconstruct"): ...``.

    A second holder (another process, or another lock object in this one) gets :class:`OutputError`
    at once: "OUT is in use by another hardmatch run (pid N, reconstruct)". The lock file stays in
    the folder; the lock itself is the kernel's and ends with the process.
    """

    def __init__(self, folder: Union[str, os.PathLike], job: str = "hardmatch") -> None:
        self.folder = Path(folder)
        self.job = job
        self._handle = None

    def __enter__(self) -> "FolderLock":
        import fcntl

        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / LOCK_NAME
        handle = open(path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise OutputError(f"{self.folder} is in use by another hardmatch run ({holder}); "
                              f"wait for it or choose another output folder") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, {self.job}\n")
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc) -> None:
        import fcntl

        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None
