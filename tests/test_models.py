"""The paper's networks (§2.4): layer structure, parameter counts, preprocessing."""
from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from cmcnn.train.models import AsinhScaling, build_model, fit_scaling  # noqa: E402


def _kinds(model):
    return [type(layer).__name__ for layer in model.layers]


def test_single_channel_layer_list_matches_the_paper():
    m = build_model(["Ypar"])
    kinds = _kinds(m)
    assert kinds == ["InputLayer", "AsinhScaling",
                     "Conv2D", "AveragePooling2D", "Conv2D", "AveragePooling2D", "Conv2D", "AveragePooling2D",
                     "Flatten", "Dense", "Dropout", "Dense", "Dropout", "Dense", "Dropout", "Dense", "Dense"]
    convs = [layer for layer in m.layers if type(layer).__name__ == "Conv2D"]
    assert [c.filters for c in convs] == [16, 32, 64]
    assert all(c.kernel_size == (3, 3) and c.padding == "same" for c in convs)
    pools = [layer for layer in m.layers if type(layer).__name__ == "AveragePooling2D"]
    assert [p.output.shape[1] for p in pools] == [60, 30, 15]
    dense = [layer for layer in m.layers if type(layer).__name__ == "Dense"]
    assert [d.units for d in dense] == [200, 100, 100, 20, 1]
    assert [d.activation.__name__ for d in dense] == ["relu"] * 4 + ["linear"]
    assert [layer.rate for layer in m.layers if type(layer).__name__ == "Dropout"] == [0.1] * 3


def test_parameter_counts():
    # conv: 160 + 4640 + 18496; dense: 14400*200+200, 20100, 10100, 2020, 21
    single = build_model(["Fxs"])
    assert sum(int(np.prod(w.shape)) for w in single.trainable_weights) == 2_935_737
    multi = build_model(["Star", "Fxs", "Fxb", "Ypar"])
    # four feature stacks (4 x 23 296) + a 57 600-feature dense head
    assert sum(int(np.prod(w.shape)) for w in multi.trainable_weights) == 4 * 23_296 + 57_600 * 200 + 200 + 32_241
    assert multi.input.shape[1:] == (120, 120, 4)


def test_multichannel_stacks_each_see_one_channel():
    m = build_model(["Star", "Fxs", "Fxb", "Ypar"], npix=16)
    x = np.random.default_rng(0).normal(size=(1, 16, 16, 4)).astype("float32")
    feats = keras.Model(m.input, [m.get_layer(f"{c}_flatten").output for c in ("Star", "Fxs", "Fxb", "Ypar")])
    f0 = [np.asarray(t) for t in feats(x)]
    x2 = x.copy()
    x2[..., 2] += 1.0  # change only the Fxb channel
    f1 = [np.asarray(t) for t in feats(x2)]
    changed = [not np.allclose(a, b) for a, b in zip(f0, f1)]
    assert changed == [False, False, True, False]


def test_asinh_scaling_formula_and_fit():
    layer = AsinhScaling(2)
    layer.set_constants([2.0, 1e-8], [0.5, -1.0], [3.0, 2.0])
    x = np.array([[[[1.0, 3e-8], [-4.0, 0.0]]]], dtype="float32")
    want = np.stack([(np.arcsinh(x[..., 0] / 2.0) - 0.5) / 3.0,
                     (np.arcsinh(x[..., 1] / 1e-8) + 1.0) / 2.0], axis=-1)
    np.testing.assert_allclose(np.asarray(layer(x)), want, rtol=1e-5)
    with pytest.raises(ValueError):
        layer.set_constants([0.0, 1.0], [0, 0], [1, 1])
    # noise-dominated images: the fitted scale is the noise rms
    rng = np.random.default_rng(1)
    imgs = rng.normal(0.0, 9e-16, size=(40, 24, 24, 1))
    imgs[:, 10:14, 10:14] += 1e-13
    s, m, sd = fit_scaling(imgs)
    assert s[0] == pytest.approx(9e-16, rel=0.05)
    assert sd[0] > 0
    with pytest.raises(ValueError, match="NaN"):
        fit_scaling(np.full((2, 8, 8, 1), np.nan))


def test_bad_arguments():
    with pytest.raises(ValueError):
        build_model([])
    with pytest.raises(ValueError):
        build_model(["Ypar"], npix=100)
