"""cmc export: graph layout, metadata, parity with TensorFlow, refusals."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cmcnn import cli
from cmcnn.serve import export as ex


def _session(path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_graph_input_output_and_metadata(trained_onnx):
    sess = _session(trained_onnx["model4"])
    inp, outp = sess.get_inputs()[0], sess.get_outputs()[0]
    assert inp.name == "image" and inp.type == "tensor(float)"
    assert inp.shape == ["batch", 24, 24, 4] and outp.name == "log10_m200" and outp.shape == ["batch", 1]
    meta = sess.get_modelmeta().custom_metadata_map
    cfg = json.loads((trained_onnx["run4"] / "config.json").read_text())
    assert json.loads(meta["channels"]) == ["Star", "Fxs", "Fxb", "Ypar"]
    assert json.loads(meta["units"]) == {"Star": "solMass kpc-2", "Fxs": "erg s-1 cm-2",
                                        "Fxb": "erg s-1 cm-2", "Ypar": ""}
    assert meta["npix"] == "24" and float(meta["pixel_scale_arcsec"]) == 10.0
    assert meta["dataset_sha256"] == cfg["data_sha256"] and len(meta["dataset_sha256"]) == 64
    assert meta["test_metrics"] == "none measured"
    assert meta["code_version"] and meta["instrument"] == "unknown"
    assert json.loads(meta["scaling"]) == cfg["scaling"]
    assert float(meta["parity_max_abs_diff"]) <= 1e-5 and meta["parity_images"] == "24"


def test_onnx_equals_keras_on_any_batch_size(trained_onnx):
    from cmcnn.train.training import load_model

    model, _ = load_model(trained_onnx["run1"])
    rng = np.random.default_rng(5)
    sess = _session(trained_onnx["model1"])
    for n in (1, 7, 33):
        x = (rng.lognormal(-16, 2, (n, 24, 24, 1)) * rng.choice([-1, 1], (n, 24, 24, 1))).astype(np.float32)
        want = np.asarray(model(x, training=False))
        got = sess.run(None, {"image": x})[0]
        assert got.shape == (n, 1)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_parity_failure_writes_nothing(trained_onnx, tmp_path, monkeypatch):
    import onnx.numpy_helper as nh

    real = ex.keras_to_onnx

    def off_by_a_bit(model, **kw):  # a planted conversion bug: output bias shifted by 1e-3 dex
        proto = real(model, **kw)
        init = next(i for i in proto.graph.initializer
                    if nh.to_array(i).shape == (1,) and "log10_m200" in i.name.lower())
        init.CopyFrom(nh.from_array(nh.to_array(init) + np.float32(1e-3), init.name))
        return proto

    monkeypatch.setattr(ex, "keras_to_onnx", off_by_a_bit)
    out = tmp_path / "bad.onnx"
    with pytest.raises(ex.ParityError, match=r"disagree on 24 of 24 .* > tolerance 1e-05.*nothing written"):
        ex.export_run(trained_onnx["run1"], out)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_metrics_recorded(trained_onnx, tmp_path):
    est = {"name": "run1", "kind": "network", "table2": {"n": 10, "rms_pct": 31.0}, "per_bin": []}
    report = {"split": "test", "estimators": [est, {"name": "baseline Ypar", "kind": "baseline", "table2": {}}]}
    (tmp_path / "metrics.json").write_text(json.dumps(report))
    s = ex.export_run(trained_onnx["run1"], tmp_path / "m.onnx", metrics=tmp_path / "metrics.json")
    assert json.loads(s.metadata["test_metrics"]) == est
    meta = _session(tmp_path / "m.onnx").get_modelmeta().custom_metadata_map
    assert json.loads(meta["test_metrics"])["table2"]["rms_pct"] == 31.0
    assert json.loads(meta["training"])["run"] == "run1"


def test_read_metrics_ambiguous(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps({"estimators": [{"name": "a", "kind": "network"},
                                                                 {"name": "b", "kind": "network"}]}))
    with pytest.raises(ValueError, match="none is named 'c'"):
        ex.read_metrics(tmp_path / "m.json", "c")
    assert ex.read_metrics(tmp_path / "m.json", "b")["name"] == "b"


def test_cli_export_and_errors(trained_onnx, tmp_path, capsys):
    out = tmp_path / "cli.onnx"
    assert cli.main(["export", str(trained_onnx["run1"]), "--out", str(out), "--opset", "18"]) == 0
    assert "max |diff|" in capsys.readouterr().out
    import onnx

    assert {o.version for o in onnx.load(str(out)).opset_import if o.domain in ("", "ai.onnx")} == {18}
    assert cli.main(["export", str(tmp_path), "--out", str(tmp_path / "x.onnx")]) == 2
    assert "not a training run" in capsys.readouterr().err
    assert cli.main(["export", str(trained_onnx["run1"]), "--out", str(tmp_path / "x.onnx"),
                     "--data", str(tmp_path / "missing.h5")]) == 2
    assert "validation images" in capsys.readouterr().err
    assert cli.main(["export", str(trained_onnx["run1"]), "--out", str(tmp_path / "x.pb")]) == 2
    assert not (tmp_path / "x.onnx").exists()


def test_exported_models_split_for_mask_scans(trained_onnx):
    """cmc interpret mask reads cmc export's graphs (both networks)."""
    from cmcnn.interpret.maskscan import ScanModel, brute_force_scan, split_brute_force_scan
    from cmcnn.serve.predictor import Predictor

    for key in ("model1", "model4"):
        scan, pred = ScanModel(trained_onnx[key]), Predictor(trained_onnx[key])
        x = np.random.default_rng(3).lognormal(-15, 1, (2, *pred.info.input_shape)).astype(np.float32)
        np.testing.assert_allclose(scan.predict(x), pred.predict(x), atol=1e-6)
        a = brute_force_scan(scan, x[0], sigma=2.0, stride=6)
        b = split_brute_force_scan(scan, x[0], sigma=2.0, stride=6)
        np.testing.assert_allclose(a.delta, b.delta, atol=1e-5)


def test_half_weights_halve_the_file_within_tolerance(trained_onnx, tmp_path):
    from cmcnn.interpret.maskscan import ScanModel
    from cmcnn.serve.predictor import Predictor

    full = tmp_path / "full.onnx"
    half = tmp_path / "half.onnx"
    ex.export_run(trained_onnx["run4"], full)
    s = ex.export_run(trained_onnx["run4"], half, half=True)
    assert s.metadata["weights_storage"].startswith("float16 for 460,800 weights in 1 tensor")  # dense1: 4 x 3x3x64 x 200
    assert half.stat().st_size < 0.75 * full.stat().st_size   # dense1 holds most of the weights
    from cmcnn.train.data import ImageSource

    with ImageSource(trained_onnx["data"], ["Star", "Fxs", "Fxb", "Ypar"], cache="none") as src:
        x = src.read(src.rows("test"))            # images the parity check never saw
    want = _session(full).run(None, {"image": x})[0][:, 0]
    got = _session(half).run(None, {"image": x})[0][:, 0]
    assert 0 < np.abs(got - want).max() <= 1e-4          # rounded, not identical, within the promise
    np.testing.assert_allclose(Predictor(half).predict(x), got, rtol=0, atol=1e-5)
    np.testing.assert_allclose(ScanModel(half).predict(x), got, rtol=0, atol=1e-5)


def test_half_weights_refused_beyond_tolerance(trained_onnx, tmp_path):
    out = tmp_path / "half.onnx"
    with pytest.raises(ex.ParityError, match="float16 weights change the predictions"):
        ex.export_run(trained_onnx["run4"], out, half=True, half_tolerance=1e-12)
    assert not out.exists()
