"""Observed gas scaling relations the synthetic universe is measured against.

Each relation gives the observed *mean* (median in log) of a quantity at
M500c [M☉, no h] at z = 0, for the cosmology of :mod:`cmcore.synth.cosmo`
(h70 = H0/70 km s⁻¹ Mpc⁻¹; luminosities scale as h70⁻², masses as h70⁻¹), its
intrinsic scatter, and the mass range of the sample it was fitted on.  The
gas fraction and the M–T relation are also inputs of the generator
(:mod:`cmcore.synth.relations`); they are written out again here from the
papers, so that a wrong input (a planted error in the tests) shows up as an
offset instead of moving the reference with it.

=================  =================================================================  ============
relation           form (M in M☉)                                                     sample
=================  =================================================================  ============
L_X(0.5–2 keV)     0.62 × 1.03e44 h70⁻² (M500 h70 / 2e14)^1.53 erg/s, within R500     REXCESS,
(Pratt+09)         (Table B.2: L[0.1–2.4]–M_Y, BCES Y|X; 0.62 = their soft- to        1e14–1e15
                   ROSAT-band normalisation ratio, 1.77/2.86 and 1.56/2.52)
Y500 (Arnaud+10)   10^−4.739 (M500 h70 / 3e14)^1.79 h70^−5/2 Mpc², within R500         REXCESS
T_X (Arnaud+05)    5 keV (M500 h70 / 3.84e14)^(1/1.71), 0.15–1 R500                   1e14–1e15
f_gas (Vikhlinin   (0.125 + 0.037 log(M500 h / 1e15)) (h/0.72)^−3/2                    1e14–1e15
+09)
=================  =================================================================  ============

Slopes (:data:`SLOPES`, :func:`slopes`): the L_X–M500 slope of REXCESS (1.53 ± 0.10,
the same Table B.2 row) over 1e14–1e15 M☉; for groups, 1e13–1e14 M☉, the slope of
Lovisari, Reiprich & Schellenberger 2015 (A&A 573, A118) corrected for selection
effects, 1.66 ± 0.22 (their abstract; their normalisation, band and pivots could
not be read here, so groups are compared in slope only); Y500–M500 1.79 ± 0.08
(Arnaud et al. 2010).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .cosmo import COSMOLOGY


def _h70() -> float:
    return COSMOLOGY.H0.value / 70.0


def lx_soft_pratt09(m500) -> np.ndarray:
    """L_X(0.5–2 keV, < R500) [erg/s] of Pratt et al. 2009 (A&A 498, 361) at z = 0."""
    h70 = _h70()
    return 0.62 * 1.03e44 * (np.asarray(m500, dtype=float) * h70 / 2e14) ** 1.53 * h70**-2


def y500_arnaud10(m500) -> np.ndarray:
    """Y500 = Y_sph(R500) D_A² [Mpc²] of Arnaud et al. 2010 (A&A 517, A92) at z = 0."""
    h70 = _h70()
    return 10**-4.739 * (np.asarray(m500, dtype=float) * h70 / 3e14) ** 1.79 * h70**-2.5


def kt_arnaud05(m500) -> np.ndarray:
    """X-ray temperature [keV] of Arnaud, Pointecouteau & Pratt 2005 (A&A 441, 893).

    M500 = 3.84 × 10¹⁴ h70⁻¹ M☉ (kT / 5 keV)^1.71, inverted.
    """
    return 5.0 * (np.asarray(m500, dtype=float) * _h70() / 3.84e14) ** (1.0 / 1.71)


def fgas_vikhlinin09(m500) -> np.ndarray:
    """Hot-gas fraction within R500 of Vikhlinin et al. 2009 (ApJ 692, 1033).

    (0.125 + 0.037 log₁₀(M500 / 10¹⁵ h⁻¹ M☉)) at h = 0.72, scaled as h^−3/2;
    only meaningful where positive (M500 ≳ 10¹³ M☉; observed 10¹⁴–10¹⁵).
    """
    h = COSMOLOGY.H0.value / 100.0
    m = np.asarray(m500, dtype=float)
    return (0.125 + 0.037 * np.log10(m * h / 1e15)) * (h / 0.72) ** -1.5


@dataclass(frozen=True)
class Relation:
    """One observed relation: what is measured, the mean, its scatter and its sample.

    Attributes
    ----------
    key : str
        Name of the measured quantity in :func:`cmcore.synth.measure.measure`'s output.
    label : str
        Axis label.
    source : str
        Citation.
    mean : callable
        Mean value at M500 [M☉].
    scatter_dex : float
        Intrinsic scatter at fixed mass [dex].
    m_range : tuple of float
        M500 range [M☉] of the observed sample.
    """

    key: str
    label: str
    source: str
    mean: Callable[[np.ndarray], np.ndarray]
    scatter_dex: float
    m_range: tuple[float, float]


#: The relations the figure and ``synth.json`` compare with; scatter σ_ln L = 0.41
#: (Pratt et al. 2009, L–Y_X), σ_log Y = 0.075 (Planck Collaboration 2014, XX),
#: 0.04 dex in T at fixed mass and 0.06 dex in f_gas (the generator's, :mod:`.relations`).
RELATIONS = (
    Relation("lx_soft500", "L_X(0.5–2 keV, <R500) [erg/s]", "Pratt et al. 2009",
             lx_soft_pratt09, 0.41 / np.log(10.0), (1e14, 1e15)),
    Relation("lx_soft_image", "L_X(0.5–2 keV, <R500 projected, Fxs image) [erg/s]",
             "Pratt et al. 2009", lx_soft_pratt09, 0.41 / np.log(10.0), (1e14, 1e15)),
    Relation("y500", "Y500 [Mpc²]", "Arnaud et al. 2010", y500_arnaud10, 0.075, (1e14, 1e15)),
    Relation("t_sl_kev", "T_sl(0.15–1 R500) [keV]", "Arnaud et al. 2005", kt_arnaud05,
             0.04, (1e14, 1e15)),
    Relation("f_gas500", "f_gas(<R500)", "Vikhlinin et al. 2009", fgas_vikhlinin09,
             0.06, (1e14, 1e15)),
)

#: Mass ranges [M☉] in which the offsets are reported: the target of the
#: REXCESS comparison, the whole sample range, and groups (an extrapolation).
OFFSET_RANGES = {"1e14-3e14": (1e14, 3e14), "sample": None, "groups_1e13-1e14": (1e13, 1e14)}


def offsets(measured: dict, relations=RELATIONS) -> dict:
    """Median offset log₁₀(measured / literature) of each relation in each mass range.

    Parameters
    ----------
    measured : dict of ndarray
        Output of :func:`cmcore.synth.measure.measure` (``m500`` and each
        relation's ``key``; relations whose key is absent are skipped).

    Returns
    -------
    dict
        ``{key: {"source", "scatter_dex", ranges...: {"n", "median_dex", "ratio",
        "rms_dex"}}}``; ranges with no halo hold ``n = 0`` only.
    """
    m500 = np.asarray(measured["m500"], dtype=float)
    out = {}
    for r in relations:
        if r.key not in measured:
            continue
        value = np.asarray(measured[r.key], dtype=float)
        good = (value > 0) & np.isfinite(value)
        resid = np.full(m500.shape, np.nan)
        resid[good] = np.log10(value[good] / r.mean(m500[good]))
        entry = {"source": r.source, "scatter_dex": r.scatter_dex}
        for name, rng in OFFSET_RANGES.items():
            lo, hi = rng if rng is not None else r.m_range
            sel = good & (m500 >= lo) & (m500 < hi)
            if not sel.any():
                entry[name] = {"n": 0}
                continue
            med = float(np.median(resid[sel]))
            entry[name] = {"n": int(sel.sum()), "median_dex": med, "ratio": 10**med,
                           "rms_dex": float(np.sqrt(np.mean((resid[sel] - med) ** 2)))}
        out[r.key] = entry
    return out


@dataclass(frozen=True)
class Slope:
    """An observed power-law slope of a relation over a mass range.

    Attributes
    ----------
    key : str
        Measured quantity (a key of :func:`cmcore.synth.measure.measure`'s output).
    source : str
        Citation.
    slope, error : float
        d log y / d log M500 and its 1σ uncertainty.
    m_range : tuple of float
        M500 range [M☉] the slope is measured over.
    """

    key: str
    source: str
    slope: float
    error: float
    m_range: tuple[float, float]


#: Observed slopes compared with the universe's (module docstring).
SLOPES = (
    Slope("lx_soft500", "Pratt et al. 2009 (REXCESS, BCES Y|X)", 1.53, 0.10, (1e14, 1e15)),
    Slope("lx_soft500", "Lovisari et al. 2015 (groups, bias-corrected)", 1.66, 0.22, (1e13, 1e14)),
    Slope("y500", "Arnaud et al. 2010", 1.79, 0.08, (1e14, 1e15)),
)


def slopes(measured: dict, references=SLOPES) -> list[dict]:
    """Measured least-squares slope of each :data:`SLOPES` entry beside the observed one.

    Returns
    -------
    list of dict
        ``key``, ``source``, ``m_range``, ``n``, ``measured``, ``observed``, ``error`` and
        ``sigmas`` = (measured − observed) / error; ``measured`` is None with fewer than 5 haloes.
    """
    m500 = np.asarray(measured["m500"], dtype=float)
    out = []
    for ref in references:
        if ref.key not in measured:
            continue
        value = np.asarray(measured[ref.key], dtype=float)
        sel = (value > 0) & np.isfinite(value) & (m500 >= ref.m_range[0]) & (m500 < ref.m_range[1])
        entry = {"key": ref.key, "source": ref.source, "m_range": list(ref.m_range), "n": int(sel.sum()),
                 "observed": ref.slope, "error": ref.error, "measured": None, "sigmas": None}
        if sel.sum() >= 5:
            b = float(np.polyfit(np.log10(m500[sel]), np.log10(value[sel]), 1)[0])
            entry.update(measured=b, sigmas=(b - ref.slope) / ref.error)
        out.append(entry)
    return out
