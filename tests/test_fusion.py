"""cmc fuse: the fused network is exactly b + Σ w_k μ_k of its members, fitted on validation, with errors
that cover 68.3 % of the validation images, and it exports and scans like any network."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from cmcnn import cli  # noqa: E402
from cmcnn.train.training import predict_run, train  # noqa: E402
from cmcnn.train.recipe import TrainConfig  # noqa: E402


@pytest.fixture(scope="module")
def fused(tmp_path_factory):
    from conftest import write_planted_dataset

    d = tmp_path_factory.mktemp("fusion")
    data = write_planted_dataset(d / "p.h5", n_halos=80, projections=2)
    runs = []
    for ch in ("Ypar", "Fxb"):
        train(data, d / ch, TrainConfig.survey([ch], epochs=2, batch_size=16, lr=3e-3), progress=False)
        runs.append(d / ch)
    assert cli.main(["fuse", str(data), "--members", ",".join(map(str, runs)), "--out", str(d / "fused")]) == 0
    return data, runs, d / "fused"


def test_fused_mass_is_the_validation_least_squares_combination(fused):
    data, runs, out = fused
    cfg = json.loads((out / "config.json").read_text())
    members = [predict_run(r, split="validation") for r in runs]
    y = members[0]["log10_m200_true"]
    x = np.column_stack([m["log10_m200_pred"] for m in members] + [np.ones(y.size)])
    coef = np.linalg.lstsq(x, y, rcond=None)[0]   # independent least squares
    np.testing.assert_allclose(cfg["fusion"]["weights"], coef[:-1], rtol=1e-6, atol=1e-9)
    p = predict_run(out, split="validation")
    np.testing.assert_allclose(p["log10_m200_pred"], x @ coef, atol=2e-5)
    # no worse on validation than its best member (least squares includes each member alone)
    rms = np.sqrt(np.mean((p["log10_m200_pred"] - y) ** 2))
    assert rms <= min(np.sqrt(np.mean((m["log10_m200_pred"] - y) ** 2)) for m in members) + 1e-6
    c1, c2 = np.mean(np.abs(p["log10_m200_pred"] - y) <= p["log10_m200_err"]), np.mean(np.abs(p["log10_m200_pred"] - y) <= 2 * p["log10_m200_err"])   # at least nominal at 1σ and 2σ, one of them tight
    assert c1 >= 0.6827 - 1.5 / y.size and c2 >= 0.9545 - 1.5 / y.size
    assert min(abs(c1 - 0.6827), abs(c2 - 0.9545)) <= 1.5 / y.size


def test_fused_network_exports_and_predicts_through_onnxruntime(fused, tmp_path):
    from cmcnn.serve.predictor import Predictor
    from cmcnn.train.data import ImageSource

    data, _, out = fused
    assert cli.main(["export", str(out), "--out", str(tmp_path / "f.onnx")]) == 0
    p = Predictor(tmp_path / "f.onnx")
    assert p.info.channels == ("Ypar", "Fxb") and p.info.takes_redshift and p.info.has_error
    with ImageSource(data, ["Ypar", "Fxb"]) as src:
        rows = src.rows("validation")
        logm = p.predict(src.read(rows), redshift=src.label("redshift", rows), extrapolate=True)
    np.testing.assert_allclose(logm, predict_run(out, split="validation")["log10_m200_pred"], atol=2e-5)


def test_the_card_of_a_fused_network_states_the_fusion(fused, tmp_path):
    data, _, out = fused
    model = tmp_path / "f.onnx"
    assert cli.main(["export", str(out), "--out", str(model)]) == 0
    assert cli.main(["evaluate", str(model), "--data", str(data), "--out", str(tmp_path / "r")]) == 0
    assert cli.main(["card", str(model), "--report", str(tmp_path / "r"), "--out", str(tmp_path / "f.md")]) == 0
    text = (tmp_path / "f.md").read_text()
    w = json.loads((out / "config.json").read_text())["fusion"]["weights"]
    assert "`cmc fuse`: log10 M =" in text and f"{w[0]:+.4f} μ(Ypar)" in text and "linearly" in text
