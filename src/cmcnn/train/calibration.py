"""Undoing regression to the mean: a linear calibration of log M fitted on the validation split.

A network (or any estimator) trained with a squared-error loss on a finite mass range
shrinks its predictions towards the sample mean: at the extremes it over-predicts the
lightest clusters and under-predicts the heaviest (Yan et al. 2020, Fig. 6: about +20 %
in the lowest bin, −10 % in the highest).  To first order the conditional mean is
linear, ⟨log M_pred | log M_true⟩ = c + d · log M_true with d < 1, so

    log M_cal = (log M_pred − c) / d

has ⟨log M_cal | log M_true⟩ = log M_true in every mass bin.  ``c`` and ``d`` are the
least-squares fit of log M_pred on log M_true over the **validation** split (never the
test split that is scored).  The price is a scatter larger by 1/d.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from cmcore.errors import InputError


@dataclass(frozen=True)
class Calibration:
    """log M_cal = (log M_pred − intercept) / slope."""

    intercept: float
    slope: float
    n: int

    def apply(self, log_pred: np.ndarray) -> np.ndarray:
        """Calibrated log10 masses."""
        return (np.asarray(log_pred, dtype=float) - self.intercept) / self.slope

    def to_dict(self) -> dict:
        return asdict(self)


def fit_calibration(log_true: np.ndarray, log_pred: np.ndarray) -> Calibration:
    """Fit log M_pred = intercept + slope · log M_true by least squares (validation split).

    Raises
    ------
    InputError
        With fewer than 3 points, no spread in true mass, or a slope ≤ 0.05 (an estimator
        that carries no mass information cannot be calibrated).
    """
    x = np.asarray(log_true, dtype=float)
    y = np.asarray(log_pred, dtype=float)
    if x.shape != y.shape or x.size < 3 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InputError("calibration needs at least 3 finite (true, predicted) pairs")
    if np.ptp(x) <= 0:
        raise InputError("calibration needs a spread of true masses")
    slope, intercept = np.polyfit(x, y, 1)
    if slope <= 0.05:
        raise InputError(f"predictions barely follow the true mass (slope {slope:.3f}); not calibrated")
    return Calibration(float(intercept), float(slope), int(x.size))


def calibrated_columns(cols: dict[str, np.ndarray], cal: Calibration) -> dict[str, np.ndarray]:
    """A copy of predictions columns with the predicted masses calibrated."""
    out = dict(cols)
    out["log10_m200_pred"] = cal.apply(cols["log10_m200_pred"])
    out["m200_pred"] = 10.0 ** out["log10_m200_pred"]
    if "log10_m200_err" in cols:  # the error scales with the map's derivative 1/slope
        out["log10_m200_err"] = np.asarray(cols["log10_m200_err"], dtype=float) / cal.slope
    return out


#: The probabilities ±1σ and ±2σ of a Gaussian hold: the error scale covers both on validation.
COVERAGE_1SIGMA = 0.6826894921370859
COVERAGE_2SIGMA = 0.9544997361036416


def error_scale(ratios: np.ndarray) -> float:
    """The smallest factor s for which ±s·σ covers 68.3 % and ±2s·σ 95.4 % of the images.

    ``ratios`` are |log M_pred − log M_true| / σ on the validation split.  Matching the 1σ
    coverage alone leaves the heavier-than-Gaussian tails of the residuals short at 2σ (and
    validation, on which the best epoch was chosen, flatters the network a little).
    """
    r = np.asarray(ratios, dtype=float)
    return float(max(np.quantile(r, COVERAGE_1SIGMA), np.quantile(r, COVERAGE_2SIGMA) / 2.0))
