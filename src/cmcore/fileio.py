"""Atomic file writing: a file appears under its name complete, or not at all.

Every writer of cmc (halo catalogues, FITS cutouts, synthetic snapshots, dataset
parts and files) writes to a temporary name in the destination folder and moves
it into place with :func:`os.replace`, which is atomic on POSIX file systems.  An
interrupted run leaves at worst a hidden ``.NAME.*.tmp`` file, never a truncated
file under the real name.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def new_file_mode() -> int:
    """Permissions a newly created file gets under the current umask (0666 less the umask)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def temporary_path(path: str | os.PathLike) -> Path:
    """Create an empty temporary file beside ``path`` (same folder, ordinary permissions).

    ``tempfile.mkstemp`` makes files readable by their owner only; the file is given
    the permissions of a normally created file, since it becomes ``path``.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    os.chmod(tmp, new_file_mode())
    return Path(tmp)


def publish(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Flush ``tmp`` to disk and move it to ``path`` atomically."""
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Context manager yielding a temporary path that becomes ``path`` on success.

    On an exception (or an interrupt) the temporary file is removed and ``path`` is
    left as it was.

    Examples
    --------
    >>> with atomic_write("halos.h5") as tmp:          # doctest: +SKIP
    ...     with h5py.File(tmp, "w") as f:
    ...         f["m200"] = m200
    """
    tmp = temporary_path(path)
    try:
        yield tmp
        publish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the ``.NAME.*.tmp`` files that killed writers of ``path`` left behind.

    :func:`atomic_write` cleans up after exceptions and interrupts, but a process killed
    with SIGKILL (or a power cut) cannot.  A writer calls this before writing ``path``
    again; it must be the only writer of ``path`` at the time.  Returns the removed paths.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    removed = []
    for tmp in folder.glob(f".{path.name}.*.tmp"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
