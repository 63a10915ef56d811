"""Linear calibration on the validation split removes regression to the mean."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cmcnn.train.calibration import Calibration, calibrated_columns, fit_calibration
from cmcnn.evaluate.evaluation import evaluate
from cmcnn.evaluate.predictions_csv import make_predictions, write_predictions
from cmcore.errors import InputError


def _shrunk(seed: int, n: int = 4000, slope: float = 0.8, scatter: float = 0.05):
    rng = np.random.default_rng(seed)
    logm = rng.uniform(13.0, 15.0, n)
    pred = 14.0 + slope * (logm - 14.0) + rng.normal(0.0, scatter, n)
    return logm, pred


def test_fit_recovers_planted_shrinkage_and_unbiases_every_bin():
    t_val, p_val = _shrunk(0)
    cal = fit_calibration(t_val, p_val)
    assert cal.slope == pytest.approx(0.8, abs=0.01)
    assert cal.intercept == pytest.approx(14.0 * (1 - 0.8), abs=0.15)
    t, p = _shrunk(1)
    edges = np.arange(13.0, 15.01, 0.25)
    before = [np.mean(p[(t >= a) & (t < b)] - t[(t >= a) & (t < b)]) for a, b in zip(edges[:-1], edges[1:])]
    after_all = cal.apply(p)
    after = [np.mean(after_all[(t >= a) & (t < b)] - t[(t >= a) & (t < b)]) for a, b in zip(edges[:-1], edges[1:])]
    assert before[0] > 0.15 and before[-1] < -0.15      # shrinkage: lightest over, heaviest under
    assert max(abs(b) for b in after) < 0.01            # < 2.3 % in every bin


def test_refuses_uninformative_predictions():
    rng = np.random.default_rng(2)
    with pytest.raises(InputError, match="slope"):
        fit_calibration(rng.uniform(13, 15, 100), rng.normal(14, 0.1, 100))
    with pytest.raises(InputError):
        fit_calibration(np.array([14.0, 14.0, 14.0]), np.array([13.0, 14.0, 15.0]))


def test_calibrated_columns_keep_masses_consistent():
    cols = {"log10_m200_pred": np.array([13.5, 14.5]), "m200_pred": 10 ** np.array([13.5, 14.5]), "x": 1}
    out = calibrated_columns(cols, Calibration(2.8, 0.8, 10))
    np.testing.assert_allclose(out["log10_m200_pred"], (cols["log10_m200_pred"] - 2.8) / 0.8)
    np.testing.assert_allclose(out["m200_pred"], 10 ** out["log10_m200_pred"])
    assert cols["log10_m200_pred"][0] == 13.5  # input untouched


def test_evaluate_adds_a_calibrated_row_fitted_on_validation(tmp_path):
    t, p = _shrunk(3, n=2000)
    split = np.random.default_rng(4).choice(3, size=t.size, p=(0.6, 0.2, 0.2))
    p_val_only = p.copy()
    cols = make_predictions(np.arange(t.size), np.arange(t.size), np.array([b"x"] * t.size),
                            np.full(t.size, 0.05), split, 10**t, 10**p_val_only)
    write_predictions(tmp_path / "net" / "predictions.csv", cols)
    report = evaluate([tmp_path / "net" / "predictions.csv"], tmp_path / "rep", calibrate=True)
    names = [m["name"] for m in report["estimators"]]
    assert names == ["net", "net calibrated"]
    raw, cal = report["estimators"]
    assert cal["calibration"]["fitted_on"] == "validation"
    assert cal["calibration"]["n"] == int(np.sum(split == 1))
    worst = lambda m: max(abs(b["frac_bias_pct"]) for b in m["per_bin"] if b["n"] > 20)  # noqa: E731
    assert worst(raw) > 20 and worst(cal) < 5
    saved = json.loads((tmp_path / "rep" / "net-calibrated" / "metrics.json").read_text())
    assert saved["calibration"]["slope"] == pytest.approx(0.8, abs=0.03)
