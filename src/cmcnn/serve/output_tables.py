"""Prediction tables written as they stream in: CSV, Parquet or HDF5, chosen by suffix.

Columns, one row per predicted input in input order:

=================  ================================================================
``name``           the input file
``hdu``            FITS HDU the cutout was read from (−1 for stacks)
``index``          row in a ``.npy`` or dataset stack (−1 for FITS)
``log10_m200``     predicted log10(M200c/M☉)
``m200``           10**log10_m200 [M☉]
``filled_pixels``  pixels filled under the non-finite policy (0 unless opted in)
=================  ================================================================

The file is written under a temporary name and renamed when complete
(:func:`cmcore.fileio.atomic_write`), so an interrupted run leaves no partial table.
Parquet needs ``pyarrow``.
"""
from __future__ import annotations

import csv
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from cmcore.errors import InputError
from cmcore.fileio import atomic_write

COLUMNS = ("name", "hdu", "index", "log10_m200", "m200", "filled_pixels")
#: Columns added for a model that takes the redshift, and for one with an error output.
REDSHIFT_COLUMN, ERROR_COLUMN = "redshift", "log10_m200_err"
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".h5": "h5", ".hdf5": "h5"}


def table_format(path: str | os.PathLike) -> str:
    """``csv``, ``parquet`` or ``h5`` from the file's suffix (refusing others)."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise InputError(f"output {path}: choose a .csv, .parquet or .h5 file")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise InputError("Parquet output needs pyarrow (pip install pyarrow); or write .csv or .h5") from None
    return fmt


class _Csv:
    def __init__(self, path: Path, meta: dict, extra: tuple[str, ...]) -> None:
        self.fh = open(path, "w", newline="")
        self.w = csv.writer(self.fh, lineterminator="\n")
        self.w.writerow(COLUMNS + extra)
        self.extra = extra

    def write(self, names, hdus, indices, logm, filled, **extra) -> None:
        cols = [names, hdus.tolist(), indices.tolist(), (f"{v:.7f}" for v in logm),
                (f"{10.0 ** v:.7e}" for v in logm), filled.tolist()]
        cols += [(f"{v:.9g}" for v in extra[c]) for c in self.extra]
        self.w.writerows(zip(*cols))

    def close(self) -> None:
        self.fh.close()


class _Parquet:
    ROWS = 65536

    def __init__(self, path: Path, meta: dict, extra: tuple[str, ...]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa = pa
        self.extra = extra
        self.schema = pa.schema([("name", pa.string()), ("hdu", pa.int64()), ("index", pa.int64()),
                                 ("log10_m200", pa.float64()), ("m200", pa.float64()),
                                 ("filled_pixels", pa.int64())] + [(c, pa.float64()) for c in extra],
                                metadata={k.encode(): str(v).encode() for k, v in meta.items()})
        self.w = pq.ParquetWriter(str(path), self.schema)
        self.buf: list[tuple] = []
        self.n = 0

    def write(self, names, hdus, indices, logm, filled, **extra) -> None:
        self.buf.append((list(names), hdus, indices, logm, filled, *(extra[c] for c in self.extra)))
        self.n += len(names)
        if self.n >= self.ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self.buf:
            return
        cols = [sum((b[0] for b in self.buf), [])] + [np.concatenate([b[i] for b in self.buf]) for i in (1, 2, 3)]
        cols.insert(4, 10.0 ** cols[3])
        cols.append(np.concatenate([b[4] for b in self.buf]))
        cols += [np.concatenate([b[5 + i] for b in self.buf]) for i in range(len(self.extra))]
        self.w.write_table(self.pa.Table.from_arrays(cols, schema=self.schema))
        self.buf, self.n = [], 0

    def close(self) -> None:
        self._flush()
        self.w.close()


class _Hdf5:
    def __init__(self, path: Path, meta: dict, extra: tuple[str, ...]) -> None:
        import h5py

        self.f = h5py.File(path, "w")
        self.f.attrs.update({k: str(v) for k, v in meta.items()})
        str_t = h5py.string_dtype()
        self.extra = extra
        floats = ("log10_m200", "m200") + extra
        self.d = {c: self.f.create_dataset(c, shape=(0,), maxshape=(None,), chunks=(4096,),
                                           dtype=str_t if c == "name" else (np.float64 if c in floats else np.int64))
                  for c in COLUMNS + extra}
        self.d["log10_m200"].attrs["units"] = "log10(Msun)"
        self.d["m200"].attrs["units"] = "Msun"
        if ERROR_COLUMN in extra:
            self.d[ERROR_COLUMN].attrs["units"] = "dex (1 sigma of log10_m200)"

    def write(self, names, hdus, indices, logm, filled, **extra) -> None:
        n0 = self.d["name"].shape[0]
        values = (np.asarray(names, dtype=object), hdus, indices, logm, 10.0 ** logm, filled,
                  *(extra[c] for c in self.extra))
        for c, v in zip(COLUMNS + self.extra, values):
            self.d[c].resize((n0 + len(v),))
            self.d[c][n0:] = v

    def close(self) -> None:
        self.f.close()


@contextmanager
def prediction_table(path: str | os.PathLike, meta: dict | None = None, extra: tuple[str, ...] = ()):
    """Context manager yielding a writer with ``write(names, hdus, indices, log10_m200, filled, **extra)``.

    The table appears at ``path`` only when the block ends without an exception.
    ``meta`` (string values) goes into the file's metadata (Parquet schema metadata,
    HDF5 root attributes; CSV has none).  ``extra`` names float columns after the
    standard ones (:data:`REDSHIFT_COLUMN`, :data:`ERROR_COLUMN`), given to ``write`` by name.
    """
    fmt = table_format(path)
    cls = {"csv": _Csv, "parquet": _Parquet, "h5": _Hdf5}[fmt]
    with atomic_write(path) as tmp:
        w = cls(tmp, meta or {}, tuple(extra))
        try:
            yield w
        finally:
            w.close()
