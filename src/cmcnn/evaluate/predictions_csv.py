"""Predictions files: one CSV row per image, the common currency of networks and baselines.

Header (in this order)::

    index,halo_id,projection,redshift,split,m200_true,m200_pred,log10_m200_true,log10_m200_pred

``index`` is the image's row in the dataset file, ``split`` the split's name (``train``,
``validation`` or ``test``), masses in M☉.  An estimator with an error per image adds the
column ``log10_m200_err`` (1σ of log10 M200, dex, positive).  :func:`write_predictions` writes one
atomically; :func:`read_predictions` reads and checks one (every column present, masses
finite and positive, the log10 columns equal to the log of the mass columns).
"""
from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from cmcore.datafile import SPLIT_NAMES
from cmcore.errors import FileFormatError, InputError
from cmcore.fileio import atomic_write

COLUMNS = ("index", "halo_id", "projection", "redshift", "split",
           "m200_true", "m200_pred", "log10_m200_true", "log10_m200_pred")
#: Columns an estimator may add: the predicted 1σ error of log10 M200 [dex].
OPTIONAL = ("log10_m200_err",)
_INT = ("index", "halo_id")
_STR = ("projection", "split")
#: Largest accepted |log10 m − log10_m| between a mass column and its log column [dex].
LOG_TOLERANCE = 1e-5


def make_predictions(index, halo_id, projection, redshift, split, m200_true, m200_pred) -> dict[str, np.ndarray]:
    """Assemble the columns of a predictions file (the log10 columns computed here).

    ``projection`` and ``split`` may be bytes or str; ``split`` may also be the
    dataset's integer codes (0 train, 1 validation, 2 test).
    """
    split = np.asarray(split)
    if split.dtype.kind in "iu":
        if split.size and (split.min() < 0 or split.max() >= len(SPLIT_NAMES)):
            raise InputError(f"split codes must be 0..{len(SPLIT_NAMES) - 1}")
        split = np.asarray(SPLIT_NAMES, dtype=object)[split]
    cols = {
        "index": np.asarray(index, dtype=np.int64),
        "halo_id": np.asarray(halo_id, dtype=np.int64),
        "projection": np.array([_text(p) for p in np.asarray(projection).tolist()], dtype=object),
        "redshift": np.asarray(redshift, dtype=float),
        "split": np.array([_text(s) for s in split.tolist()], dtype=object),
        "m200_true": np.asarray(m200_true, dtype=float),
        "m200_pred": np.asarray(m200_pred, dtype=float),
    }
    with np.errstate(divide="ignore", invalid="ignore"):
        cols["log10_m200_true"] = np.log10(cols["m200_true"])
        cols["log10_m200_pred"] = np.log10(cols["m200_pred"])
    return check_predictions(cols, "predictions")


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def check_predictions(cols: Mapping[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """Check a predictions table (a mapping column → array); return it as a dict.

    Raises
    ------
    InputError
        A missing column, columns of different lengths, a split name that is not
        one of the dataset's, a NaN or non-positive mass, or log10 columns that do not
        match the mass columns.
    """
    missing = [c for c in COLUMNS if c not in cols]
    if missing:
        raise InputError(f"{source}: missing column(s) {', '.join(missing)}")
    out = {c: np.asarray(cols[c]) for c in COLUMNS + OPTIONAL if c in cols}
    n = {v.shape for v in out.values()}
    if len(n) != 1 or len(next(iter(n))) != 1:
        raise InputError(f"{source}: columns of different lengths {sorted(n)}")
    bad = sorted(set(out["split"].tolist()) - set(SPLIT_NAMES))
    if bad:
        raise InputError(f"{source}: unknown split name(s) {', '.join(map(str, bad))}; expected {', '.join(SPLIT_NAMES)}")
    for name in ("m200_true", "m200_pred"):
        m = out[name].astype(float)
        wrong = ~np.isfinite(m) | (m <= 0)
        if wrong.any():
            k = int(np.flatnonzero(wrong)[0])
            raise InputError(f"{source}: {wrong.sum()} {name} values are not finite and positive (first at row {k}: {m[k]})")
        log_col = out["log10_" + name].astype(float)
        off = np.abs(np.log10(m) - log_col)
        if not (off <= LOG_TOLERANCE).all():
            k = int(np.flatnonzero(~(off <= LOG_TOLERANCE))[0])
            raise InputError(f"{source}: log10_{name} differs from log10({name}) at row {k} ({log_col[k]} vs {np.log10(m[k])})")
    if "log10_m200_err" in out:
        err = out["log10_m200_err"].astype(float)
        wrong = ~np.isfinite(err) | (err <= 0)
        if wrong.any():
            k = int(np.flatnonzero(wrong)[0])
            raise InputError(f"{source}: {wrong.sum()} log10_m200_err values are not finite and positive "
                             f"(first at row {k}: {err[k]})")
    return out


def write_predictions(path: str | os.PathLike, cols: Mapping[str, np.ndarray]) -> Path:
    """Write a predictions CSV atomically (floats with 17 significant digits)."""
    cols = check_predictions(cols, str(path))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = cols["index"].shape[0]
    names = [c for c in COLUMNS + OPTIONAL if c in cols]
    with atomic_write(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(names)
            for i in range(n):
                w.writerow([_cell(c, cols[c][i]) for c in names])
    return path


def _cell(column: str, value) -> str:
    if column in _INT:
        return str(int(value))
    if column in _STR:
        return _text(value)
    return repr(float(value))


def read_predictions(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read and check a predictions CSV; columns come back as arrays (ints, floats, str objects).

    Raises
    ------
    FileFormatError
        The file does not exist or is not a CSV with a header.
    InputError
        See :func:`check_predictions`; also an unparsable number.
    """
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"predictions file {path} does not exist")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None:
            raise FileFormatError(f"{path} is empty (no CSV header)")
        header = [h.strip() for h in reader.fieldnames]
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
        reader.fieldnames = header
        rows = list(reader)
    cols: dict[str, np.ndarray] = {}
    for c in COLUMNS + tuple(c for c in OPTIONAL if c in header):
        values = [(r[c] or "").strip() for r in rows]
        try:
            if c in _INT:
                cols[c] = np.array([int(v) for v in values], dtype=np.int64)
            elif c in _STR:
                cols[c] = np.array(values, dtype=object)
            else:
                cols[c] = np.array([float(v) for v in values], dtype=float)
        except ValueError as exc:
            raise InputError(f"{path}: column {c}: {exc}") from None
    return check_predictions(cols, str(path))


def select_split(cols: Mapping[str, np.ndarray], split: str, source: str) -> dict[str, np.ndarray]:
    """The rows of one split; :class:`InputError` if the split is unknown or has no rows."""
    if split not in SPLIT_NAMES:
        raise InputError(f"unknown split {split!r}; choose from {', '.join(SPLIT_NAMES)}")
    sel = cols["split"] == split
    if not sel.any():
        raise InputError(f"{source}: no rows of the {split} split")
    return {c: np.asarray(v)[sel] for c, v in cols.items()}
