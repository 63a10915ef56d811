"""Interpretation (paper §4): mask formula, exact fast mask scans, Deep Dream, core/ring."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cmcnn.interpret.maskscan import (ScanModel, brute_force_scan, fast_scan, gaussian_mask, mask_radius,
                                     scan_arithmetic, scan_centres)


# ---------------------------------------------------------------- helpers
def _random_network(channels, npix, path, seed=0):
    """A paper network with random weights, non-zero biases and scaling constants, exported to ONNX."""
    import keras

    from cmcnn.train.models import build_model

    keras.utils.set_random_seed(seed)
    model = build_model(channels, npix=npix)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.name == "scaling":
            c = len(channels)
            layer.set_constants(rng.uniform(0.5, 2.0, c), rng.normal(0.0, 0.3, c), rng.uniform(0.5, 2.0, c))
        elif getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.normal(0.0, 0.05, layer.bias.shape).astype("float32")
                              + (14.0 if layer.name == "log10_m200" else 0.0))
    model(np.zeros((1, npix, npix, len(channels)), np.float32))
    model.export(str(path), format="onnx", verbose=False,
                 input_signature=[keras.InputSpec(shape=(None, npix, npix, len(channels)), dtype="float32")])
    return model, path


def _image(npix, n_ch, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:npix, :npix]
    cy, cx = rng.uniform(0.3, 0.7, 2) * npix
    blob = 5.0 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * (npix / 7) ** 2))
    return (blob[..., None] + rng.normal(0.0, 0.3, (npix, npix, n_ch))).astype(np.float32)


@pytest.fixture(scope="module")
def onnx_models(tmp_path_factory):
    d = tmp_path_factory.mktemp("onnx")
    return {"single": _random_network(["Fxs"], 40, d / "single.onnx", seed=1)[1],
            "multi": _random_network(["Fxs", "Ypar"], 40, d / "multi.onnx", seed=2)[1]}


# ---------------------------------------------------------------- the mask
def test_mask_is_eq13():
    m = gaussian_mask((11, 13), 4, 7, 2.0)
    assert m.dtype == np.float32 and m.shape == (11, 13)
    assert m[4, 7] == 0.0                                         # fully masked at the centre
    assert m[4, 9] == pytest.approx(1 - np.exp(-0.5), rel=1e-6)   # one sigma along a row
    assert m[6, 9] == pytest.approx(1 - np.exp(-8 / 8.0), rel=1e-6)
    assert m[0, 0] == pytest.approx(1 - np.exp(-(16 + 49) / 8.0), rel=1e-6)
    assert np.array_equal(m[4, 7 - 3], m[4, 7 + 3]) and np.array_equal(m[4 - 2, 7], m[4 + 2, 7])


@pytest.mark.parametrize("sigma", [1.0, 1.5, 5.0, 7.3])
def test_mask_radius_bounds_every_changed_pixel(sigma):
    R = mask_radius(sigma)
    assert R == int(np.floor(sigma * np.sqrt(50 * np.log(2)))) or abs(R - sigma * np.sqrt(50 * np.log(2))) < 1
    n = 2 * R + 21
    m = gaussian_mask((n, n), n // 2, n // 2, sigma)
    changed = np.argwhere(m != np.float32(1))
    assert np.abs(changed - n // 2).max() == R                    # R is reached, never exceeded


def test_scan_centres():
    assert scan_centres(10, 3).tolist() == [0, 3, 6, 9]
    with pytest.raises(ValueError):
        scan_centres(10, 0)


# ---------------------------------------------------------------- exact fast scan
@pytest.mark.parametrize("kind", ["single", "multi"])
@pytest.mark.parametrize("sigma,stride", [(1.5, 1), (1.0, 3), (5.0, 4)])
def test_fast_scan_equals_brute_force(onnx_models, kind, sigma, stride):
    model = ScanModel(onnx_models[kind])
    for seed in (0, 1):
        img = _image(model.npix, model.n_channels, seed)
        fast = fast_scan(model, img, sigma, stride)
        brute = brute_force_scan(model, img, sigma, stride)
        assert fast.delta.shape == brute.delta.shape == (len(scan_centres(40, stride)),) * 2
        assert fast.log10_m == pytest.approx(brute.log10_m, abs=1e-5)
        assert np.ptp(brute.delta) > 1e-3                        # the masks do change the prediction
        np.testing.assert_allclose(fast.delta, brute.delta, atol=1e-5, rtol=0)


def test_scan_arithmetic_counts_the_network_and_the_windows(onnx_models, tmp_path):
    """The forward count equals the Keras layers' (2 FLOP per multiply-add, 'same' convolutions);
    per centre the fast scan does less, grows with sigma, and a mask wider than the image
    recomputes more than the whole forward pass."""
    model, path = _random_network(["Fxs"], 40, tmp_path / "n.onnx", seed=3)
    keras_flop = sum(2 * layer.output.shape[1] * layer.output.shape[2] * layer.filters * 9 * layer.input.shape[-1]
                     for layer in model.layers if layer.__class__.__name__ == "Conv2D")
    scan = ScanModel(path)
    small, wide = scan_arithmetic(scan, 0.5), scan_arithmetic(scan, 1.5)
    assert small["conv_flop_forward"] == wide["conv_flop_forward"] == keras_flop
    assert small["conv_flop_per_centre_fast"] < wide["conv_flop_per_centre_fast"] < keras_flop
    assert small["arithmetic_ratio"] == pytest.approx(keras_flop / small["conv_flop_per_centre_fast"])
    # sigma 5 changes a 59-px square, wider than this 40-px image: the windows cost more than a pass
    assert scan_arithmetic(scan, 5.0)["arithmetic_ratio"] < 1.0
    multi = ScanModel(onnx_models["multi"])   # two stacks: twice the single stack's arithmetic
    assert scan_arithmetic(multi, 5.0)["conv_flop_forward"] == 2 * keras_flop


def test_brute_force_is_the_definition(onnx_models):
    """ΔM at a few centres by hand: mask the image (eq. 13), predict, subtract."""
    model = ScanModel(onnx_models["single"])
    img = _image(40, 1, 5)
    res = brute_force_scan(model, img, 2.0, 13)
    m0 = model.predict(img)[0]
    for ia, a in enumerate(res.rows):
        b = res.cols[-1]
        masked = img * gaussian_mask((40, 40), a, b, 2.0)[..., None]
        assert res.delta[ia, -1] == pytest.approx(model.predict(masked)[0] - m0, abs=1e-6)


def test_scan_model_refuses_other_graphs(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 8, 8, 1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 8, 8, 1])
    g = helper.make_graph([helper.make_node("Relu", ["image"], ["y"])], "g", [x], [y])
    path = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    with pytest.raises(OSError, match="no convolution"):
        ScanModel(path)
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(OSError, match="ONNX"):
        ScanModel(tmp_path / "junk.onnx")


# ---------------------------------------------------------------- Deep Dream
def test_deepdream_gradient_matches_finite_differences():
    from cmcnn.interpret.deepdream import deep_dream, gradient
    from cmcnn.train.models import build_model

    import keras

    keras.utils.set_random_seed(3)
    model = build_model(["Fxs"], npix=8, output_bias=0.0)
    model.get_layer("scaling").set_constants([1.0], [0.0], [1.0])
    img = _image(8, 1, 2).astype(np.float64)
    g, m = gradient(model, img)
    h = 1e-2
    rng = np.random.default_rng(0)
    checked = 0
    for i, j in rng.integers(0, 8, (12, 2)):
        up, dn = img.copy(), img.copy()
        up[i, j, 0] += h
        dn[i, j, 0] -= h
        fd = (float(model(up[None].astype(np.float32))[0, 0]) - float(model(dn[None].astype(np.float32))[0, 0])) / (2 * h)
        assert fd == pytest.approx(g[i, j, 0], abs=2e-3 * np.abs(g).max() + 1e-5)
        checked += 1
    assert checked == 12 and np.abs(g).max() > 0
    res = deep_dream(model, img, iterations=2, step=0.5)
    assert len(res.log10_m) == 3 and res.step == 0.5
    # the first step moves the image by alpha * gradient, and ascent raises the prediction
    one = deep_dream(model, img, iterations=1, step=0.5)
    np.testing.assert_allclose(one.change, 0.5 * g, rtol=1e-6, atol=1e-9)
    assert one.log10_m[1] > one.log10_m[0]


# ---------------------------------------------------------------- core / ring
def test_core_ring_sums_count_pixels():
    from cmcnn.interpret.core_ring import core_ring_sums, radii_arcmin

    n, pix = 41, 6.0                        # 0.1 arcmin pixels
    r = radii_arcmin(n, pix)
    assert r[20, 20] == 0 and r[20, 30] == pytest.approx(1.0)
    cent, ring = core_ring_sums(np.ones((1, n, n)), np.array([2.0]), pix)
    assert cent[0] == np.sum(r < 0.3) and ring[0] == np.sum((r >= 0.3) & (r < 2.0))


def test_core_ring_on_planted_dataset(planted_dataset):
    from cmcnn.interpret.core_ring import core_ring_analysis, correlations

    res = core_ring_analysis(planted_dataset, ["Fxs", "Star"])
    rows = {(r["channel"], r["region"][:4]): r for r in res["rows"]}
    assert rows[("Fxs", "ring")]["pearson_log"] > 0.9     # planted: amplitude and width grow with M
    assert rows[("Fxs", "ring")]["n"] == 120
    c = correlations(np.array([1.0, 10.0, 100.0, -1.0]), np.array([13.0, 14.0, 15.0, 14.5]))
    assert c["pearson_log"] == pytest.approx(1.0) and c["n_nonpositive"] == 1


# ---------------------------------------------------------------- command line
def test_cli_mask_and_core_ring(onnx_models, tmp_path):
    from astropy.io import fits

    from cmcnn.cli import main
    from conftest import write_planted_dataset

    data = write_planted_dataset(tmp_path / "d.h5", npix=40, n_halos=10)
    out = tmp_path / "mask"
    assert main(["interpret", "mask", str(onnx_models["single"]), str(data), "--index", "3",
                 "--channels", "Fxs", "--sigma", "2", "--stride", "4", "--out", str(out), "--no-progress"]) == 0
    fits_map = out / "d_3_mask.fits"
    with fits.open(fits_map) as h:
        assert h[0].data.shape == (10, 10) and h[0].header["BUNIT"] == "dex"
        assert h[0].header["CDELT2"] == pytest.approx(4 * 10.0 / 3600)
    assert np.load(out / "d_3_mask.npy").shape == (10, 10) and (out / "d_3_mask.png").stat().st_size > 0
    summary = json.loads((out / "d_3_mask.json").read_text())
    assert summary["method"] == "fast" and summary["mask_radius_px"] == mask_radius(2.0)
    # wrong channel count: one line, exit 2
    assert main(["interpret", "mask", str(onnx_models["single"]), str(data), "--index", "3",
                 "--out", str(out)]) == 2
    assert main(["interpret", "core-ring", str(data), "--out", str(tmp_path / "cr")]) == 0
    assert (tmp_path / "cr" / "core_ring.png").is_file()
    assert len(json.loads((tmp_path / "cr" / "core_ring.json").read_text())["rows"]) == 8


def test_cli_deepdream_on_a_run(planted_dataset, tmp_path):
    from cmcnn.cli import main
    from cmcnn.train.training import train
    from cmcnn.train.recipe import TrainConfig

    run = tmp_path / "run"
    train(planted_dataset, run, TrainConfig(channels="Fxs", epochs=1, batch_size=20), progress=False)
    out = tmp_path / "dd"
    assert main(["interpret", "deepdream", str(run), str(planted_dataset), "--index", "0",
                 "--iterations", "2", "--out", str(out)]) == 0
    assert (out / "planted_0_deepdream.png").is_file()
    assert np.load(out / "planted_0_deepdream_Fxs.npy").shape == (24, 24)
    info = json.loads((out / "planted_0_deepdream.json").read_text())
    assert info["iterations"] == 2 and len(info["log10_m_pred"]) == 3
