"""Validation of array and number arguments at the boundary of the compiled kernels.

Shared by :mod:`cmcore.projection` and :mod:`cmcore.cellindex`: each check
returns the value in the form the kernels take, or raises
:class:`~cmcore.errors.InputError` naming the argument.
"""
from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from . import _kernels
from .errors import InputError


def as_positions(positions: npt.ArrayLike) -> np.ndarray:
    """Validate the dtype and shape of ``positions`` (finiteness is the kernel's job)."""
    pos = np.asarray(positions)
    if pos.dtype not in (np.float32, np.float64):
        raise InputError(f"positions must be float32 or float64, got dtype {pos.dtype}")
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise InputError(f"positions must have shape (N, 3), got {pos.shape}")
    return np.ascontiguousarray(pos)


def real_array(name: str, values: npt.ArrayLike) -> np.ndarray:
    """``values`` as float32/float64 (used in place) or integers converted to float64."""
    arr = np.asarray(values)
    if arr.dtype in (np.float32, np.float64):
        return arr
    if arr.dtype.kind in "biu":
        return arr.astype(np.float64)
    raise InputError(f"{name} must be real numbers, got dtype {arr.dtype}")


def finite_float(name: str, value: object, *, positive: bool = True) -> float:
    """``value`` as a finite float (and > 0 when ``positive``)."""
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(x) or (positive and x <= 0.0):
        raise InputError(f"{name} must be finite{' and positive' if positive else ''}, got {value!r}")
    return x


def wrapped_centre(centre: npt.ArrayLike, boxsize: float | None) -> np.ndarray:
    """Validate ``centre`` and wrap it into ``[0, boxsize)`` for a periodic box."""
    try:
        c = np.asarray(centre, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"centre must be 3 numbers, got {centre!r}") from None
    if c.shape != (3,) or not np.all(np.isfinite(c)):
        raise InputError(f"centre must be 3 finite numbers, got {centre!r}")
    if boxsize is not None:
        c = c - boxsize * np.floor(c / boxsize)
        c[c >= boxsize] = 0.0
    return np.ascontiguousarray(c)


def thread_count(nthreads: int | None) -> int:
    """OpenMP threads: ``nthreads`` (a positive integer), or OpenMP's default for None."""
    if nthreads is None:
        return max(1, _kernels.max_threads())
    if isinstance(nthreads, bool) or not isinstance(nthreads, (int, np.integer)) or nthreads < 1:
        raise InputError(f"nthreads must be a positive integer or None, got {nthreads!r}")
    return int(nthreads)
