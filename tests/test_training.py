"""``cmc train``: schedule, learning, determinism, resumption, refusals."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from cmcnn.train.data import ImageSource, square_symmetry  # noqa: E402
from cmcnn.train.history import read_history as _read  # noqa: E402
from cmcnn.train.training import load_model, predict_run, train  # noqa: E402
from cmcnn.train.recipe import TrainConfig, learning_rate_schedule  # noqa: E402


def read_history(run):
    """history.csv of a run as a list of row dicts (empty when absent)."""
    path = run / "history.csv"
    if not path.is_file():
        return []
    cols = _read(path)
    return [{k: cols[k][i] for k in cols} for i in range(len(cols["epoch"]))]
from cmcore.errors import InputError  # noqa: E402


def _cfg(**kw):
    base = dict(channels=["Ypar"], epochs=2, batch_size=16, lr=1e-3, seed=3)
    base.update(kw)
    return TrainConfig(**base)


def _weights(run, name="checkpoint.npz"):
    with np.load(run / name) as z:
        return [z[k] for k in sorted(z.files) if k.startswith("w")]


def test_inverse_time_decay_is_keras2_decay():
    sched = learning_rate_schedule(0.01, 1e-4)
    for step in (0, 1, 50, 10_000, 123_456):
        assert float(sched(step)) == pytest.approx(0.01 / (1 + 1e-4 * step), rel=1e-6)


def test_square_symmetries_form_the_group():
    rng = np.random.default_rng(0)
    img = rng.normal(size=(1, 5, 5, 2))
    outs = [square_symmetry(img, np.array([k]))[0] for k in range(8)]
    np.testing.assert_array_equal(outs[0], img[0])
    flat = {o.tobytes() for o in outs}
    assert len(flat) == 8  # eight distinct images
    # mass-relevant content is kept: every symmetry permutes the pixels
    for o in outs:
        np.testing.assert_allclose(np.sort(o.ravel()), np.sort(img.ravel()))
    np.testing.assert_array_equal(outs[1], np.rot90(img[0], 1, axes=(0, 1)))


def test_streamed_equals_cached(planted_dataset):
    with ImageSource(planted_dataset, ["Star", "Ypar"], cache="none") as a, \
            ImageSource(planted_dataset, ["Star", "Ypar"], cache="memory") as b:
        rows = np.array([5, 2, 2, 9, 0, 7, 8])
        assert b.cache_rows(np.arange(20))
        np.testing.assert_array_equal(a.read(rows), b.read(rows))
        assert a.read(rows).shape == (7, 24, 24, 2)


def test_training_learns_and_is_deterministic(planted_dataset, tmp_path):
    s1 = train(planted_dataset, tmp_path / "a", _cfg(epochs=3, lr=3e-3), progress=False)
    s2 = train(planted_dataset, tmp_path / "b", _cfg(epochs=3, lr=3e-3), progress=False)
    for w1, w2 in zip(_weights(tmp_path / "a"), _weights(tmp_path / "b")):
        np.testing.assert_array_equal(w1, w2)
    assert s1.best_val_loss == s2.best_val_loss
    hist = read_history(tmp_path / "a")
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    # the validation loss falls below that of predicting the training mean
    with ImageSource(planted_dataset, ["Ypar"]) as src:
        y = src.log10_m200
        trivial = np.mean((y[src.rows("validation")] - y[src.rows("train")].mean()) ** 2)
    assert min(h["val_loss"] for h in hist) < 0.5 * trivial
    assert (tmp_path / "a" / "learning_curve.png").stat().st_size > 1000
    # another seed gives other weights
    train(planted_dataset, tmp_path / "c", _cfg(epochs=1, seed=4), progress=False)
    assert not np.array_equal(_weights(tmp_path / "a")[-2], _weights(tmp_path / "c")[-2])


def test_interrupted_run_resumes_to_the_same_weights(planted_dataset, tmp_path):
    cfg = _cfg(epochs=3, augment=True)
    train(planted_dataset, tmp_path / "full", cfg, progress=False)
    # 72 training images, batch 16: 5 batches per epoch; stop in the middle of epoch 2
    with pytest.raises(KeyboardInterrupt):
        train(planted_dataset, tmp_path / "cut", cfg, progress=False, stop_after_batches=7)
    assert len(read_history(tmp_path / "cut")) == 1
    train(planted_dataset, tmp_path / "cut", cfg, progress=False)
    for w1, w2 in zip(_weights(tmp_path / "full"), _weights(tmp_path / "cut")):
        np.testing.assert_array_equal(w1, w2)
    assert read_history(tmp_path / "full")[-1]["val_loss"] == read_history(tmp_path / "cut")[-1]["val_loss"]
    # a finished run is not retrained
    again = train(planted_dataset, tmp_path / "cut", cfg, progress=False)
    assert again.epochs_new == 0


def test_other_settings_are_refused(planted_dataset, tmp_path):
    train(planted_dataset, tmp_path / "r", _cfg(epochs=1), progress=False)
    with pytest.raises(InputError, match="other settings"):
        train(planted_dataset, tmp_path / "r", _cfg(epochs=1, lr=0.5), progress=False)
    with pytest.raises(InputError, match="unknown channel"):
        _cfg(channels=["Xray"])
    with pytest.raises(InputError, match="epochs"):
        _cfg(epochs=0)


def test_multichannel_run_and_predictions(planted_dataset, tmp_path):
    run = tmp_path / "mc"
    train(planted_dataset, run, _cfg(channels="all", epochs=1), progress=False)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["channels"] == ["Star", "Fxs", "Fxb", "Ypar"]
    assert len(cfg["scaling"]["scale"]) == 4
    pred = predict_run(run, split="test")
    model, _ = load_model(run)
    with ImageSource(planted_dataset, cfg["channels"]) as src:
        rows = src.rows("test")
        direct = np.asarray(model(src.read(rows), training=False)).ravel()
        np.testing.assert_array_equal(pred["index"], rows)
        np.testing.assert_allclose(pred["log10_m200_true"], src.log10_m200[rows])
    np.testing.assert_allclose(pred["log10_m200_pred"], direct, rtol=1e-6)
    np.testing.assert_allclose(pred["m200_pred"], 10 ** pred["log10_m200_pred"])
    assert set(pred["split"]) == {"test"}


def test_cosine_schedule_anneals_to_zero_and_weight_decay_spares_biases():
    from cmcnn.train.models import build_model
    from cmcnn.train.recipe import make_optimizer

    cfg = TrainConfig(channels=["Ypar"], lr=2e-3, schedule="cosine", optimizer="adam", weight_decay=0.5)
    opt = make_optimizer(cfg, steps=100)
    sched = opt._learning_rate
    assert float(sched(0)) == pytest.approx(2e-3) and float(sched(50)) == pytest.approx(1e-3, rel=1e-5)
    assert float(sched(100)) == pytest.approx(0.0, abs=1e-12)
    # zero gradients: Adam moves nothing, the decoupled decay shrinks kernels by (1 - lr·wd), never biases
    import keras

    opt = make_optimizer(TrainConfig(channels=["Ypar"], lr=0.1, optimizer="adam", decay=0.0, weight_decay=0.5))
    model = build_model(["Ypar"], npix=16, head="compact", redshift=True, uncertainty=True)
    before = [np.array(v) for v in model.trainable_variables]
    opt.apply_gradients([(keras.ops.zeros_like(v), v) for v in model.trainable_variables])
    for v, b in zip(model.trainable_variables, before):
        if "bias" in v.path:
            np.testing.assert_array_equal(np.array(v), b)
        else:
            np.testing.assert_allclose(np.array(v), b * (1 - 0.1 * 0.5), rtol=1e-6)
    assert any(np.abs(b).max() > 13 for v, b in zip(model.trainable_variables, before) if "log10_m200/bias" in v.path)


def test_survey_recipe_trains_a_redshift_aware_network_with_calibrated_errors(planted_dataset, tmp_path):
    run = tmp_path / "s"
    train(planted_dataset, run, TrainConfig.survey(["Ypar"], epochs=3, batch_size=16, lr=3e-3), progress=False)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["redshift"] and cfg["uncertainty"] and cfg["head"] == "compact" and cfg["augment"]
    lo, hi = cfg["scaling"]["redshift"]["range"]
    assert 0.03 <= lo < hi <= 0.07
    assert cfg["error_scale"] > 0
    model, _ = load_model(run)
    assert [i.name for i in model.inputs] == ["image", "redshift"] and len(model.outputs) == 2
    # the error head was scaled so that ±σ and ±2σ hold at least 68.3 % and 95.4 % of the validation images
    val = predict_run(run, split="validation")
    res = np.abs(val["log10_m200_pred"] - val["log10_m200_true"])
    c1, c2 = np.mean(res <= val["log10_m200_err"]), np.mean(res <= 2 * val["log10_m200_err"])   # at least nominal at 1σ and 2σ, one of them tight
    assert c1 >= 0.6827 - 1.5 / res.size and c2 >= 0.9545 - 1.5 / res.size
    assert min(abs(c1 - 0.6827), abs(c2 - 0.9545)) <= 1.5 / res.size
    # the redshift is an input the prediction depends on
    with ImageSource(planted_dataset, ["Ypar"]) as src:
        x = src.read(src.rows("test")[:4])
    z = np.full((4, 1), 0.03, np.float32)
    a = np.asarray(model({"image": x, "redshift": z}, training=False)[0])
    b = np.asarray(model({"image": x, "redshift": z + 0.04}, training=False)[0])
    assert np.abs(a - b).max() > 1e-4
    # rerunning the finished run keeps it calibrated
    scale = cfg["error_scale"]
    assert train(planted_dataset, run, TrainConfig.survey(["Ypar"], epochs=3, batch_size=16, lr=3e-3),
                 progress=False).epochs_new == 0
    assert json.loads((run / "config.json").read_text())["error_scale"] == pytest.approx(scale)
    # a cosine schedule depends on the epoch count: extending the run is refused
    with pytest.raises(InputError, match="other settings"):
        train(planted_dataset, run, TrainConfig.survey(["Ypar"], epochs=4, batch_size=16, lr=3e-3), progress=False)


def test_error_scale_covers_both_intervals():
    from cmcnn.train.calibration import error_scale

    rng = np.random.default_rng(5)
    assert error_scale(np.abs(rng.normal(size=200_000))) == pytest.approx(1.0, abs=0.01)   # Gaussian: σ as it is
    t = np.abs(rng.standard_t(4, size=200_000))        # heavy tails: the 2σ interval sets the scale
    s = error_scale(t)
    assert np.mean(t <= 2 * s) == pytest.approx(0.9545, abs=0.002) and np.mean(t <= s) > 0.70
    assert error_scale(2.0 * np.abs(rng.normal(size=200_000))) == pytest.approx(2.0, abs=0.02)  # σ half the truth
