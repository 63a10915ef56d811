"""Snapshot and catalogue files on disk: opening them, and the files of a multi-file set."""
from __future__ import annotations

import os
import re
from pathlib import Path

import h5py

from ..errors import FileFormatError

_MULTI = re.compile(r"^(?P<base>.*)\.(?P<num>\d+)\.hdf5$")


def open_hdf5(path: str | os.PathLike) -> h5py.File:
    """Open an HDF5 file read-only, turning every failure into one clear line.

    Raises
    ------
    FileFormatError
        The file is missing, is not HDF5, or is truncated or unreadable.
    """
    path = Path(path)
    if not path.exists():
        raise FileFormatError(f"{path}: no such file")
    if path.is_dir():
        raise FileFormatError(f"{path}: is a folder, not an HDF5 file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        text = str(exc)
        if "truncated" in text:
            raise FileFormatError(f"{path}: truncated HDF5 file ({text.split('(')[0].strip()})") from None
        if "signature" in text or not h5py.is_hdf5(path):
            raise FileFormatError(f"{path}: not an HDF5 file") from None
        raise FileFormatError(f"{path}: cannot read HDF5 file: {text}") from None


def snapshot_files(path: str | os.PathLike) -> list[Path]:
    """All files of the (possibly multi-file) snapshot that ``path`` belongs to.

    ``name.K.hdf5`` (any K) or ``name`` (when ``name.0.hdf5`` exists) stands for
    ``name.0.hdf5`` … ``name.{N-1}.hdf5`` with N = ``Header/NumFilesPerSnapshot``;
    any other path is a single file.

    Raises
    ------
    FileFormatError
        A file of the set is missing.
    """
    path = Path(path)
    if not path.exists() and Path(f"{path}.0.hdf5").exists():
        path = Path(f"{path}.0.hdf5")
    match = _MULTI.match(path.name)
    if match is None:
        return [path]
    with open_hdf5(path) as f:
        nfiles = int(f["Header"].attrs.get("NumFilesPerSnapshot", 1)) if "Header" in f else 1
    if nfiles <= 1:
        return [path]
    files = [path.with_name(f"{match['base']}.{i}.hdf5") for i in range(nfiles)]
    missing = [p.name for p in files if not p.exists()]
    if missing:
        raise FileFormatError(
            f"multi-file snapshot {match['base']} needs {nfiles} files; missing: {', '.join(missing)}"
        )
    return files
