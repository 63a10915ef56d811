"""Where each cutout's redshift comes from, for a network that takes image + redshift.

In order of precedence: a catalogue row for the cutout (``cmc predict --catalog``), one
redshift for every cutout (``--redshift``), the cutout itself — a FITS header's
``REDSHIFT`` card (which ``cmc render`` writes) or ``Z``, a cmc dataset's
``labels/redshift``.  A cutout with none, or outside the model's training range, is
refused in one line (``--extrapolate`` predicts outside the range anyway).
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping

import numpy as np

from cmcore.errors import InputError

#: FITS header keywords read as the cutout's redshift, in this order.
HEADER_KEYS = ("REDSHIFT", "Z")


class Refused(Exception):
    """One input cannot be predicted; the message is the one-line reason."""


class RedshiftCatalog:
    """Redshifts by cutout: ``name → z``, where a name is a file path (as given, or its
    base name) or ``path[row]`` / ``basename[row]`` for a row of a stack.

    Hashes by identity, so that :class:`~cmcnn.serve.cutouts.ReadOptions` holding one
    stays cheap to hash however long the catalogue.
    """

    def __init__(self, table: Mapping[str, float], source: str = "catalogue") -> None:
        self.table = dict(table)
        self.source = source

    def __len__(self) -> int:
        return len(self.table)

    def lookup(self, name: str, row: int | None = None) -> float | None:
        """The catalogued redshift of a cutout (``row`` for a stack's), or None."""
        base = os.path.basename(name)
        keys = (name, base) if row is None else (f"{name}[{row}]", f"{base}[{row}]")
        for k in keys:
            if k in self.table:
                return self.table[k]
        return None


def read_catalog(path: str | os.PathLike, key: str = "file", column: str = "redshift") -> RedshiftCatalog:
    """A redshift catalogue from any table astropy reads (CSV, ECSV, FITS, VOTable, …).

    Parameters
    ----------
    path
        The table file.
    key
        Column naming each cutout: its file path or base name, ``name[row]`` for a row of a stack.
    column
        Column of redshifts.

    Raises
    ------
    InputError
        Unreadable file, missing columns, duplicate keys, or a non-finite or non-positive redshift.
    """
    from astropy.table import Table

    try:
        t = Table.read(os.fspath(path), format="ascii.csv" if str(path).lower().endswith(".csv") else None)
    except Exception as exc:  # noqa: BLE001 - astropy raises many types for unreadable tables
        raise InputError(f"catalogue {path}: unreadable ({exc})") from None
    missing = [c for c in (key, column) if c not in t.colnames]
    if missing:
        raise InputError(f"catalogue {path}: no column(s) {', '.join(missing)} (it has {', '.join(t.colnames)})")
    names = [str(v).strip() for v in t[key]]
    try:
        z = np.asarray(t[column], dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"catalogue {path}: column {column}: {exc}") from None
    bad = ~np.isfinite(z) | (z <= 0)
    if bad.any():
        k = int(np.argmax(bad))
        raise InputError(f"catalogue {path}: {int(bad.sum())} redshift(s) not finite and positive "
                         f"(first: row {k}, {names[k]}: {z[k]})")
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise InputError(f"catalogue {path}: the key {dup!r} appears more than once")
    return RedshiftCatalog(dict(zip(names, z.tolist())), str(path))


def header_redshift(header: Mapping) -> float | None:
    """The redshift a FITS header carries (:data:`HEADER_KEYS`), or None; an unusable value is refused."""
    for key in HEADER_KEYS:
        value = header.get(key)
        if value is None:
            continue
        try:
            return float(value)
        except (TypeError, ValueError):
            raise Refused(f"header card {key} = {value!r} is not a number") from None
    return None


def resolve(z_range: tuple[float, float] | None, *, catalogued: float | None, given: float | None,
            own: float | None, extrapolate: bool = False) -> float:
    """The redshift to predict a cutout at (NaN for an image-only model), or :class:`Refused`.

    ``catalogued`` (a catalogue row), ``given`` (one for all) and ``own`` (the cutout's
    header or label) are tried in this order.
    """
    if z_range is None:
        return math.nan
    z = next((v for v in (catalogued, given, own) if v is not None), None)
    lo, hi = z_range
    if z is None:
        raise Refused(f"no redshift (the model takes image + redshift, trained on {lo:g} <= z <= {hi:g}): "
                      "give --redshift, --catalog, or a REDSHIFT header card")
    if not (math.isfinite(z) and z > 0):
        raise Refused(f"redshift {z} is not finite and positive")
    if not lo <= z <= hi and not extrapolate:
        raise Refused(f"redshift {z:g} outside the training range {lo:g}-{hi:g} (--extrapolate to predict anyway)")
    return float(z)
