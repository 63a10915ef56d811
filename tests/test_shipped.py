"""Shipped models by name: resolution, refusals, and evaluation of ONNX models."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cmcnn.serve import shipped
from cmcore.errors import InputError


def test_names_resolve_through_cmc_models(tmp_path, monkeypatch, trained_onnx):
    monkeypatch.setenv("CMC_MODELS", str(tmp_path))
    (tmp_path / "Ypar.onnx").write_bytes(trained_onnx["model1"].read_bytes())
    assert shipped.resolve_model("Ypar") == tmp_path / "Ypar.onnx"
    assert shipped.resolve_model("ypar") == tmp_path / "Ypar.onnx"          # case-insensitive
    assert shipped.shipped_models() == {"Ypar": tmp_path / "Ypar.onnx"}
    with pytest.raises(InputError, match="shipped model Star is not in this installation.*looked in"):
        shipped.resolve_model("Star")
    with pytest.raises(InputError, match="no such file, and not a shipped model"):
        shipped.resolve_model("Ymap")
    with pytest.raises(InputError, match="no such file"):
        shipped.resolve_model(tmp_path / "missing.onnx")
    assert shipped.resolve_model(trained_onnx["model4"]) == trained_onnx["model4"]


def test_an_existing_file_wins_over_a_name(tmp_path, monkeypatch, trained_onnx):
    models = tmp_path / "models"
    models.mkdir()
    (models / "Ypar.onnx").write_bytes(trained_onnx["model1"].read_bytes())
    monkeypatch.setenv("CMC_MODELS", str(models))
    here = tmp_path / "work"
    here.mkdir()
    (here / "Ypar").write_bytes(trained_onnx["model4"].read_bytes())   # a user's file named like a model
    monkeypatch.chdir(here)
    assert shipped.resolve_model("Ypar") == Path("Ypar")
    assert shipped.resolve_model("ypar") == models / "Ypar.onnx"          # no such file: the shipped one


def test_the_checkout_models_are_found_without_configuration(monkeypatch):
    """Run from a checkout (or installed), the names resolve to the files in models/ (or their copies)."""
    root = Path(__file__).resolve().parents[1] / "models"
    if not (root / "Ypar.onnx").is_file():
        pytest.skip("this checkout has no models/*.onnx")
    monkeypatch.delenv("CMC_MODELS", raising=False)
    found = shipped.shipped_models()
    assert sorted(found) == sorted(shipped.NAMES)       # packaging or lookup lost none of them
    for name, path in found.items():
        assert path.read_bytes() == (root / f"{name}.onnx").read_bytes()


def test_predictor_and_scan_model_take_a_name(tmp_path, monkeypatch, trained_onnx):
    from cmcnn.interpret.maskscan import ScanModel
    from cmcnn.serve.predictor import Predictor

    monkeypatch.setenv("CMC_MODELS", str(tmp_path))
    (tmp_path / "multi.onnx").write_bytes(trained_onnx["model4"].read_bytes())
    x = np.random.default_rng(0).lognormal(-15, 1, (3, 24, 24, 4)).astype(np.float32)
    by_name, by_path = Predictor("multi"), Predictor(trained_onnx["model4"])
    assert by_name.path == tmp_path / "multi.onnx"
    np.testing.assert_array_equal(by_name.predict(x), by_path.predict(x))
    assert ScanModel("multi").npix == 24


def test_evaluate_onnx_equals_the_training_run(trained_onnx, tmp_path):
    """An exported model evaluated through onnxruntime scores as its run does (to export parity)."""
    from cmcnn.evaluate.evaluation import estimate_from_input

    run = estimate_from_input(trained_onnx["run4"], data=trained_onnx["data"])
    onnx = estimate_from_input(trained_onnx["model4"], data=trained_onnx["data"])
    for col in ("index", "halo_id", "split", "m200_true"):
        np.testing.assert_array_equal(onnx.predictions[col], run.predictions[col])
    np.testing.assert_allclose(onnx.predictions["log10_m200_pred"], run.predictions["log10_m200_pred"], atol=1e-5)
    assert onnx.kind == "network" and onnx.channels == ["Star", "Fxs", "Fxb", "Ypar"]
    with pytest.raises(InputError, match="needs --data"):
        estimate_from_input(trained_onnx["model4"])


def test_predict_dataset_refuses_other_pixel_scale(trained_onnx, tmp_path):
    import h5py

    from cmcnn.evaluate.evaluation import predict_dataset

    other = tmp_path / "other.h5"
    other.write_bytes(trained_onnx["data"].read_bytes())
    with h5py.File(other, "r+") as f:
        f.attrs["pixel_scale_arcsec"] = 2 * float(f.attrs["pixel_scale_arcsec"])
    with pytest.raises(InputError, match="pixel scale 20, 20 arcsec .* the model takes 10 arcsec"):
        predict_dataset(trained_onnx["model1"], other)


def test_predict_dataset_refuses_other_units(trained_onnx, tmp_path):
    import h5py

    from cmcnn.evaluate.evaluation import predict_dataset

    other = tmp_path / "other.h5"
    other.write_bytes(trained_onnx["data"].read_bytes())
    with h5py.File(other, "r+") as f:
        f["images/Ypar"].attrs["units"] = "erg s-1 cm-2"
    with pytest.raises(InputError, match="images/Ypar units is 'erg s-1 cm-2'"):
        predict_dataset(trained_onnx["model1"], other)
