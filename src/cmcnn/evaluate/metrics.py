"""Bias and scatter of mass estimates: the paper's Table 2 and its per-bin bias (Fig. 6).

Yan et al. (2020), §3 and Table 2, summarise an estimator over the test clusters with
13.25 < log10(M200,true/M☉) < 14.5 by three numbers:

``<log(M_pred/M_true)>``
    the mean of log10(M_pred/M_true) (the *log bias*, dex), ± its standard error;
``<M_pred/M_true> − 1``
    the mean fractional bias ΔM/M_true with ΔM ≡ M_pred − M_true, in %, ± its standard error;
``<RMS>``
    the "rms scatter" in %.  The paper gives no formula; it calls it the uncertainty
    "per individual cluster" and lists it beside the mean of M_pred/M_true, so it is
    taken here as the root mean square of the fractional error about zero,
    100·√⟨(M_pred/M_true − 1)²⟩ (which includes the bias; with the paper's ~1 % biases
    this differs from the standard deviation by < 0.1 percentage point).

The RMS in % is dominated by the few largest over-predictions (M_pred/M_true is
unbounded above, bounded below by 0), so two scatters in dex are added:
``scatter_dex``, the standard deviation of log10(M_pred/M_true) (ddof = 1), and
``robust_scatter_dex``, 1.4826 × the median absolute deviation of the same, which
equals the standard deviation for a Gaussian and ignores tails.

Standard errors.  The images of one halo (its projections) are not independent, so
when the halo of every image is given (``halo_id``) the standard errors — of the two
biases and of ``scatter_dex`` — are bootstrap standard deviations over haloes
(:data:`BOOTSTRAP` resamples of the haloes with replacement, each taking all its images,
from a fixed seed).  Without halo ids they are s/√n over images (s the sample standard
deviation, ddof = 1) and the scatter's error is NaN.

Per-bin numbers (Fig. 6) use bins of 0.25 dex in log10 M_true, ``[lo, hi)`` with the
last bin closed, over the whole range of the sample; the figure's error bars are the
standard deviation of ΔM/M_true in each bin (the paper's caption).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from cmcore.errors import InputError

#: The paper's central range of log10(M200,true/M☉) (open interval), Table 2.
CENTRAL_RANGE = (13.25, 14.5)
#: Width of the per-bin statistics [dex] (Fig. 6).
BIN_WIDTH = 0.25
#: 1 / Φ⁻¹(3/4): the median absolute deviation of a Gaussian times this is its σ.
MAD_TO_SIGMA = 1.4826
#: Bootstrap resamples of the haloes for the standard errors.
BOOTSTRAP = 1000


@dataclass(frozen=True)
class BiasScatter:
    """Bias and scatter of one set of estimates (one row of Table 2, or one mass bin).

    Attributes
    ----------
    n
        Number of estimates.
    log_bias, log_bias_se
        Mean of log10(M_pred/M_true) [dex] and its standard error.
    frac_bias_pct, frac_bias_pct_se
        Mean of M_pred/M_true − 1 [%] and its standard error.
    frac_std_pct
        Standard deviation of M_pred/M_true − 1 [%] (Fig. 6 error bars).
    rms_pct
        Root mean square of M_pred/M_true − 1 [%] (Table 2's ⟨RMS⟩).
    scatter_dex, scatter_dex_se
        Standard deviation of log10(M_pred/M_true) [dex] and its standard error
        (bootstrap over haloes; NaN without halo ids).
    n_halos
        Number of distinct haloes (NaN without halo ids).
    robust_scatter_dex
        1.4826 × median absolute deviation of log10(M_pred/M_true) [dex].

    Statistics that need two estimates (standard deviations, errors) are NaN for n < 2;
    all are NaN for n = 0.
    """

    n: int
    log_bias: float
    log_bias_se: float
    frac_bias_pct: float
    frac_bias_pct_se: float
    frac_std_pct: float
    rms_pct: float
    scatter_dex: float
    robust_scatter_dex: float
    scatter_dex_se: float = float("nan")
    n_halos: float = float("nan")

    def to_dict(self) -> dict:
        """Plain dictionary (NaN becomes None, for JSON)."""
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in asdict(self).items()}


def check_masses(m_true: np.ndarray, m_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate a pair of mass arrays: same length, finite and positive [M☉].

    Raises
    ------
    InputError
        On a shape mismatch, a NaN/infinite or a non-positive mass.
    """
    m_true = np.asarray(m_true, dtype=float)
    m_pred = np.asarray(m_pred, dtype=float)
    if m_true.ndim != 1 or m_true.shape != m_pred.shape:
        raise InputError(f"true and predicted masses must be 1-d arrays of one length, got {m_true.shape} and {m_pred.shape}")
    for name, m in (("true", m_true), ("predicted", m_pred)):
        bad = ~np.isfinite(m) | (m <= 0)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise InputError(f"{bad.sum()} {name} masses are not finite and positive (first: row {k}, {m[k]})")
    return m_true, m_pred


def _halo_bootstrap(log_ratio: np.ndarray, frac: np.ndarray, halo_id: np.ndarray,
                    n_boot: int = BOOTSTRAP) -> tuple[float, float, float, int]:
    """Bootstrap standard errors over haloes of mean log ratio, mean fractional error and σ(log ratio)."""
    haloes, inverse = np.unique(halo_id, return_inverse=True)
    h = haloes.size
    if h < 2:
        return float("nan"), float("nan"), float("nan"), int(h)
    counts = np.bincount(inverse, minlength=h).astype(float)
    s1, f1 = np.bincount(inverse, log_ratio, h), np.bincount(inverse, frac, h)
    s2 = np.bincount(inverse, log_ratio**2, h)
    rng = np.random.default_rng(20201026)  # fixed: the same errors for the same estimates
    w = rng.multinomial(h, np.full(h, 1.0 / h), size=n_boot).astype(float)  # times each halo is drawn
    n = w @ counts
    mean_log = (w @ s1) / n
    mean_frac = (w @ f1) / n
    var = np.maximum((w @ s2) / n - mean_log**2, 0.0) * n / np.maximum(n - 1, 1)
    return float(mean_log.std(ddof=1)), float(mean_frac.std(ddof=1)), float(np.sqrt(var).std(ddof=1)), int(h)


def _check_halos(halo_id: np.ndarray | None, n: int) -> np.ndarray | None:
    if halo_id is None:
        return None
    halo_id = np.asarray(halo_id)
    if halo_id.shape != (n,):
        raise InputError(f"halo_id must have one entry per mass ({n}), got shape {halo_id.shape}")
    return halo_id


def bias_scatter(m_true: np.ndarray, m_pred: np.ndarray, halo_id: np.ndarray | None = None) -> BiasScatter:
    """Bias and scatter of estimates ``m_pred`` of masses ``m_true`` (all given) [M☉].

    See the module docstring for the definitions.  With ``halo_id`` (the halo of each
    image) the standard errors are bootstrap errors over haloes.

    Examples
    --------
    >>> s = bias_scatter([1e14, 1e14], [1.1e14, 0.9e14])
    >>> round(s.frac_bias_pct, 6), round(s.rms_pct, 6)
    (0.0, 10.0)
    """
    m_true, m_pred = check_masses(m_true, m_pred)
    n = m_true.size
    halo_id = _check_halos(halo_id, n)
    if n == 0:
        nan = float("nan")
        return BiasScatter(0, nan, nan, nan, nan, nan, nan, nan, nan)
    log_ratio = np.log10(m_pred) - np.log10(m_true)
    frac = 100.0 * (m_pred / m_true - 1.0)
    std = (lambda x: float(np.std(x, ddof=1))) if n > 1 else (lambda x: float("nan"))
    root_n = math.sqrt(n)
    if halo_id is None:
        log_se, frac_se, scatter_se, n_halos = std(log_ratio) / root_n, std(frac) / root_n, float("nan"), float("nan")
    else:
        log_se, frac_se, scatter_se, n_halos = _halo_bootstrap(log_ratio, frac, halo_id)
    return BiasScatter(
        n=int(n),
        log_bias=float(log_ratio.mean()),
        log_bias_se=log_se,
        frac_bias_pct=float(frac.mean()),
        frac_bias_pct_se=frac_se,
        frac_std_pct=std(frac),
        rms_pct=float(np.sqrt(np.mean(frac**2))),
        scatter_dex=std(log_ratio),
        robust_scatter_dex=float(MAD_TO_SIGMA * np.median(np.abs(log_ratio - np.median(log_ratio)))) if n > 1 else float("nan"),
        scatter_dex_se=scatter_se,
        n_halos=n_halos,
    )


def in_range(m_true: np.ndarray, log_range: tuple[float, float] = CENTRAL_RANGE) -> np.ndarray:
    """Mask of masses with ``lo < log10(m_true) < hi`` (open interval, as the paper)."""
    lo, hi = log_range
    logm = np.log10(np.asarray(m_true, dtype=float))
    return (logm > lo) & (logm < hi)


def table2(m_true: np.ndarray, m_pred: np.ndarray, log_range: tuple[float, float] = CENTRAL_RANGE,
           halo_id: np.ndarray | None = None) -> BiasScatter:
    """Table 2 of the paper: :func:`bias_scatter` over ``lo < log10 M_true < hi``.

    Parameters
    ----------
    m_true, m_pred
        True and predicted M200 [M☉], one per image.
    log_range
        The open range of log10(M_true/M☉); the paper's 13.25–14.5 by default.
    halo_id
        The halo of each image: standard errors by bootstrap over haloes.
    """
    m_true, m_pred = check_masses(m_true, m_pred)
    sel = in_range(m_true, log_range)
    halo_id = _check_halos(halo_id, m_true.size)
    return bias_scatter(m_true[sel], m_pred[sel], None if halo_id is None else halo_id[sel])


def bin_edges(log_m_true: np.ndarray, width: float = BIN_WIDTH) -> np.ndarray:
    """Edges at multiples of ``width`` that cover ``log_m_true`` (0.25 dex: 13, 13.25, …).

    A value on a multiple of ``width`` opens a bin; the largest value closes the last one.
    """
    log_m_true = np.asarray(log_m_true, dtype=float)
    if log_m_true.size == 0:
        raise InputError("no masses to bin")
    lo = np.floor(log_m_true.min() / width + 1e-9) * width
    hi = np.ceil(log_m_true.max() / width - 1e-9) * width
    if hi <= lo:
        hi = lo + width
    return np.round(np.arange(lo, hi + width / 2, width), 10)


def per_bin(m_true: np.ndarray, m_pred: np.ndarray, edges: np.ndarray | None = None,
            halo_id: np.ndarray | None = None) -> list[dict]:
    """:func:`bias_scatter` in bins of log10 M_true (Fig. 6), every bin of ``edges`` listed.

    Parameters
    ----------
    m_true, m_pred
        True and predicted M200 [M☉].
    edges
        Increasing bin edges in log10(M/M☉); bins are ``[lo, hi)``, the last closed.
        By default :func:`bin_edges` (0.25 dex over the sample's whole range).
    halo_id
        The halo of each image: standard errors by bootstrap over haloes.

    Returns
    -------
    list of dict
        One per bin: ``lo``, ``hi``, ``centre``, ``central`` (whether the bin lies inside
        the paper's 13.25–14.5) and the fields of :class:`BiasScatter` (NaN → None).
    """
    m_true, m_pred = check_masses(m_true, m_pred)
    halo_id = _check_halos(halo_id, m_true.size)
    logm = np.log10(m_true)
    edges = bin_edges(logm) if edges is None else np.asarray(edges, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise InputError(f"bin edges must be at least two increasing numbers, got {edges}")
    out = []
    last = edges.size - 2
    for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        sel = (logm >= lo) & ((logm <= hi) if k == last else (logm < hi))
        row = {"lo": float(lo), "hi": float(hi), "centre": float((lo + hi) / 2),
               "central": bool(lo >= CENTRAL_RANGE[0] - 1e-9 and hi <= CENTRAL_RANGE[1] + 1e-9)}
        row.update(bias_scatter(m_true[sel], m_pred[sel], None if halo_id is None else halo_id[sel]).to_dict())
        out.append(row)
    return out


#: Probabilities of the central intervals scored by :func:`coverage` (1σ and 2σ of a Gaussian).
INTERVALS = {"68": 0.6826894921370859, "95": 0.9544997361036416}


def coverage(log_true: np.ndarray, log_pred: np.ndarray, log_err: np.ndarray,
             halo_id: np.ndarray | None = None) -> dict:
    """How often the predicted Gaussian intervals of log10 M200 hold the true mass.

    For each of :data:`INTERVALS` (68.3 % and 95.4 %: ±1σ and ±2σ) the fraction of images
    with |log M_pred − log M_true| ≤ z·σ, beside the nominal probability, with a bootstrap
    standard error over haloes when ``halo_id`` is given (over images otherwise); and the
    *reliability curve*: observed against nominal coverage at 19 probabilities.

    Returns
    -------
    dict
        ``{"68": {"nominal", "observed", "se"}, "95": {...}, "reliability": {"nominal": [...],
        "observed": [...]}, "n": n, "median_err_dex": ...}``.
    """
    from scipy.stats import norm

    r = np.abs(np.asarray(log_pred, float) - np.asarray(log_true, float)) / np.asarray(log_err, float)
    n = r.size
    if n == 0:
        raise InputError("no estimates to score the intervals of")
    groups = np.arange(n) if halo_id is None else np.unique(np.asarray(halo_id), return_inverse=True)[1]
    h = int(groups.max()) + 1
    counts = np.bincount(groups, minlength=h).astype(float)
    rng = np.random.default_rng(20201026)
    w = rng.multinomial(h, np.full(h, 1.0 / h), size=BOOTSTRAP).astype(float)
    out: dict = {"n": int(n), "median_err_dex": float(np.median(log_err))}
    for key, prob in INTERVALS.items():
        inside = (r <= norm.ppf(0.5 + prob / 2)).astype(float)
        boot = (w @ np.bincount(groups, inside, h)) / (w @ counts)
        out[key] = {"nominal": prob, "observed": float(inside.mean()), "se": float(boot.std(ddof=1))}
    nominal = np.linspace(0.05, 0.95, 19)
    out["reliability"] = {"nominal": nominal.round(4).tolist(),
                          "observed": [float(np.mean(r <= norm.ppf(0.5 + p / 2))) for p in nominal]}
    return out
