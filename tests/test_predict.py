"""cmc predict / cmcnn.Predictor: equality with onnxruntime, input checks and refusals, streaming."""
from __future__ import annotations

import csv
import gzip
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from astropy.io import fits

from cmcnn import cli
from cmcnn.serve.checks import ReadOptions, Refused, pixel_scales_arcsec
from cmcnn.serve.fits import read_fits, write_cube
from cmcnn.serve.metadata import ModelInfo
from cmcnn.serve.predictor import Predictor, resolve_providers

NPIX = 24


def _cutout(path, image, *, scale=10.0, bunit="", channel="Ypar", wcs=True, dtype=np.float64, extra=None):
    """A FITS cutout like `cmc render` writes (celestial TAN WCS, BUNIT, CHANNEL)."""
    from cmcore.render import cutout_wcs

    header = cutout_wcs(image.shape[-1], scale).to_header() if wcs else fits.Header()
    if bunit is not None:
        header["BUNIT"] = bunit
    if channel is not None:
        header["CHANNEL"] = channel
    for k, v in (extra or {}).items():
        header[k] = v
    fits.PrimaryHDU(np.asarray(image, dtype=dtype), header=header).writeto(path, overwrite=True)
    return Path(path)


def _ypar(rng, n=None):
    shape = (NPIX, NPIX) if n is None else (n, NPIX, NPIX)
    yy, xx = np.mgrid[:NPIX, :NPIX] - (NPIX - 1) / 2
    return 2e-6 * np.exp(-(xx**2 + yy**2) / 18.0) + rng.normal(0, 1e-8, shape)


def _ort(model, x):
    import onnxruntime as ort

    s = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return s.run(None, {"image": np.asarray(x, np.float32)})[0].reshape(-1).astype(np.float64)


def _read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------------------- render -> predict
def test_render_cutout_predicted_as_onnxruntime_on_the_same_array(tiny_universe, trained_onnx, tmp_path, capsys):
    from cmcore.halos import read_halos

    cat = read_halos(tiny_universe.halos)
    hid = int(cat.halo_id[np.argmax(cat.m200)])
    fits_path = tmp_path / "ypar.fits"
    # 24 px over 4 arcmin: the planted model's 10" pixels
    assert cli.main(["render", str(tiny_universe.snapshot), "--halos", str(tiny_universe.halos),
                     "--halo-id", str(hid), "--channel", "Ypar", "--npix", str(NPIX), "--fov", "4",
                     "--seed", "2", "--out", str(fits_path)]) == 0
    out = tmp_path / "pred.h5"
    assert cli.main(["predict", str(trained_onnx["model1"]), str(fits_path), "--out", str(out)]) == 0
    data = fits.getdata(fits_path)
    assert data.shape == (NPIX, NPIX) and np.ptp(data) > 0
    want = _ort(trained_onnx["model1"], data.astype(np.float32)[None, :, :, None])
    with h5py.File(out) as f:
        assert f["name"].asstr()[:].tolist() == [str(fits_path)]
        assert f["hdu"][:].tolist() == [0] and f["index"][:].tolist() == [-1]
        # the same float32 network: equal up to onnxruntime's batch-dependent summation order
        np.testing.assert_allclose(f["log10_m200"][:], want, rtol=0, atol=1e-5)
        np.testing.assert_allclose(f["m200"][:], 10 ** f["log10_m200"][:])
    assert "1 of 1 inputs predicted" in capsys.readouterr().err


# ---------------------------------------------------------------------------- readers
def test_fast_fits_reader_equals_astropy(tmp_path, trained_onnx):
    info = Predictor(trained_onnx["model1"]).info
    rng = np.random.default_rng(1)
    img = _ypar(rng)
    paths = {
        "f64": _cutout(tmp_path / "a.fits", img),
        "f32": _cutout(tmp_path / "b.fits", img, dtype=np.float32),
    }
    # image in an extension, empty primary
    from cmcore.render import cutout_wcs

    hdr = cutout_wcs(NPIX, 10.0).to_header()
    hdr["BUNIT"] = ""
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(img.astype(np.float32), header=hdr)]).writeto(tmp_path / "c.fits")
    paths["ext"] = tmp_path / "c.fits"
    # astropy-only encodings: gzip, tile compression, scaled integers
    with open(paths["f64"], "rb") as a, gzip.open(tmp_path / "d.fits.gz", "wb") as b:
        b.write(a.read())
    paths["gz"] = tmp_path / "d.fits.gz"
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(img.astype(np.float32), header=hdr,
                                                       quantize_level=0.0)]).writeto(tmp_path / "e.fits.fz")
    paths["fz"] = tmp_path / "e.fits.fz"
    hdu = fits.PrimaryHDU(np.round(img / 1e-9).astype(np.int32), header=hdr.copy())
    hdu.header["BSCALE"], hdu.header["BZERO"] = 1e-9, 0.0
    hdu.writeto(tmp_path / "f.fits")
    paths["scaled"] = tmp_path / "f.fits"
    expect_hdu = {"f64": 0, "f32": 0, "ext": 1, "gz": 0, "fz": 1, "scaled": 0}
    for key, path in paths.items():
        ref = next(h.data for h in fits.open(path) if h.data is not None and h.data.ndim == 2)
        for reader in ("fast", "astropy"):
            out = np.empty((NPIX, NPIX, 1), np.float32)
            hdu_read, filled = read_fits(str(path), info, ReadOptions(fits_reader=reader), out)
            assert (hdu_read, filled) == (expect_hdu[key], 0), (key, reader)
            np.testing.assert_array_equal(out[..., 0], np.asarray(ref, np.float32), err_msg=f"{key} {reader}")
    # the fast path and astropy give the same verdicts on refused headers too
    bad = _cutout(tmp_path / "g.fits", img, scale=11.0, bunit="erg s-1 cm-2")
    msgs = set()
    for reader in ("fast", "astropy", "fast"):  # the second fast read comes from the verdict cache
        with pytest.raises(Refused) as exc:
            read_fits(str(bad), info, ReadOptions(fits_reader=reader), np.empty((NPIX, NPIX, 1), np.float32))
        msgs.add(str(exc.value))
    assert msgs == {"HDU 0: BUNIT is 'erg s-1 cm-2', the model takes 'dimensionless'"}


@pytest.mark.parametrize("cards", [
    {"CDELT1": -10 / 3600, "CDELT2": 10 / 3600},
    {"CDELT1": -10 / 3600, "CDELT2": 12 / 3600, "PC1_1": 0.8, "PC1_2": -0.6, "PC2_1": 0.6, "PC2_2": 0.8},
    {"CD1_1": -0.0023, "CD1_2": 0.0011, "CD2_1": 0.0012, "CD2_2": 0.0024},
    {"CDELT1": -10.0, "CDELT2": 10.0, "CUNIT1": "arcsec", "CUNIT2": "arcsec"},
    {"CDELT1": -0.2, "CDELT2": 0.2, "CUNIT1": "arcmin", "CUNIT2": "arcmin", "CROTA2": 30.0},
])
def test_pixel_scale_matches_astropy_wcs(cards):
    from astropy.wcs import WCS

    header = fits.Header({"NAXIS": 2, "NAXIS1": NPIX, "NAXIS2": NPIX, "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN",
                          "CRPIX1": 12.5, "CRPIX2": 12.5, "CRVAL1": 180.0, "CRVAL2": 0.0, **cards})
    want = WCS(header).celestial.proj_plane_pixel_scales()
    got = pixel_scales_arcsec(header)
    np.testing.assert_allclose(got, [w.to_value("arcsec") for w in want], rtol=1e-12)


def test_no_celestial_wcs_gives_none():
    assert pixel_scales_arcsec({"CTYPE1": "PIXEL", "CTYPE2": "PIXEL", "CDELT1": 1.0}) is None
    assert pixel_scales_arcsec({}) is None


# ---------------------------------------------------------------------------- refusals
def test_every_refusal_path_and_the_good_inputs_predicted(trained_onnx, tmp_path, capsys):
    rng = np.random.default_rng(2)
    d = tmp_path / "in"
    d.mkdir()
    good = [_cutout(d / f"good{i}.fits", _ypar(rng)) for i in range(3)]
    nan_img = _ypar(rng)
    nan_img[3, 4] = np.nan
    bad = {
        "shape.fits": (_cutout(d / "shape.fits", np.zeros((NPIX + 8, NPIX + 8))), "image of shape 32x32"),
        "scale.fits": (_cutout(d / "scale.fits", _ypar(rng), scale=12.0), "pixel scale 12, 12 arcsec"),
        "bunit.fits": (_cutout(d / "bunit.fits", _ypar(rng), bunit="erg s-1 cm-2"), "BUNIT is 'erg s-1 cm-2'"),
        "badunit.fits": (_cutout(d / "badunit.fits", _ypar(rng), bunit="furlongs!"), "not a unit astropy"),
        "channel.fits": (_cutout(d / "channel.fits", _ypar(rng), channel="Fxs"), "CHANNEL card is 'Fxs'"),
        "nan.fits": (_cutout(d / "nan.fits", nan_img), "1 NaN/inf pixel"),
        "nowcs.fits": (_cutout(d / "nowcs.fits", _ypar(rng), wcs=False), "no celestial WCS"),
    }
    (d / "garbage.fits").write_bytes(b"SIMPLE  = this is not FITS" + b" " * 3000)
    bad["garbage.fits"] = (d / "garbage.fits", "unreadable FITS file")
    stack = _ypar(rng, 4)[..., None]
    stack[2, 0, 0, 0] = np.inf
    np.save(tmp_path / "stack.npy", stack)
    np.save(tmp_path / "wrong.npy", np.zeros((3, NPIX, NPIX, 2)))
    (tmp_path / "notes.txt").write_text("x")
    inputs = [str(good[0]), str(d), str(tmp_path / "stack.npy"), str(tmp_path / "wrong.npy"),
              str(tmp_path / "missing.fits"), str(tmp_path / "nomatch*.fits"), str(tmp_path / "notes.txt"),
              str(trained_onnx["data"])]
    out = tmp_path / "p.csv"
    rc = cli.main(["predict", str(trained_onnx["model1"]), *inputs, "--out", str(out), "--batch-size", "4",
                   "--refusals", str(tmp_path / "ref.tsv")])
    err = capsys.readouterr().err
    assert rc == 1
    rows = _read_csv(out)
    names = [(Path(r["name"]).name, int(r["index"])) for r in rows]
    n_data = h5py.File(trained_onnx["data"])["images/Ypar"].shape[0]
    assert names == ([("good0.fits", -1)] + [(f"good{i}.fits", -1) for i in range(3)]
                     + [("stack.npy", i) for i in (0, 1, 3)] + [("planted.h5", i) for i in range(n_data)])
    # the stack's and the dataset's rows equal onnxruntime on the arrays
    with h5py.File(trained_onnx["data"]) as f:
        want = _ort(trained_onnx["model1"], f["images/Ypar"][:][..., None])
    np.testing.assert_allclose([float(r["log10_m200"]) for r in rows[7:]], want, atol=1e-6)
    np.testing.assert_allclose([float(r["log10_m200"]) for r in rows[4:7]],
                               _ort(trained_onnx["model1"], stack[[0, 1, 3]]), atol=1e-6)
    refused = dict(line.split("\t") for line in (tmp_path / "ref.tsv").read_text().splitlines())
    for name, (path, reason) in bad.items():
        assert reason in refused[str(path)], (name, refused[str(path)])
        assert f"  {path}: " in err  # listed at the end
    assert "inf" in refused[f"{tmp_path / 'stack.npy'}[2]"]
    assert "array of shape (3, 24, 24, 2)" in refused[str(tmp_path / "wrong.npy")]
    assert refused[str(tmp_path / "missing.fits")] == "no such file or directory"
    assert refused[str(tmp_path / "nomatch*.fits")] == "no file matches this pattern"
    assert "unknown suffix" in refused[str(tmp_path / "notes.txt")]
    assert len(refused) == len(bad) + 5
    assert f"{len(refused)} input(s) refused" in err


def test_opt_ins_accept_what_is_refused_by_default(trained_onnx, tmp_path, capsys):
    rng = np.random.default_rng(3)
    img = _ypar(rng)
    holes = img.copy()
    holes[0, :3] = np.nan
    _cutout(tmp_path / "a_nowcs.fits", img, wcs=False)
    _cutout(tmp_path / "b_holes.fits", holes)
    many = img.copy()
    many[:5] = np.nan  # 5 of 24 rows: more than 10 %
    _cutout(tmp_path / "c_many.fits", many)
    _cutout(tmp_path / "d_close.fits", img, scale=10.05)
    p = Predictor(trained_onnx["model1"])
    base = str(tmp_path / "*.fits")
    res = {Path(r.name).name: r for r in p.predict_files([base])}
    assert [k for k, r in res.items() if r.reason is None] == ["d_close.fits"]  # within 1 %
    opts = ReadOptions(require_wcs=False, nonfinite="median")
    res = {Path(r.name).name: r for r in p.predict_files([base], options=opts)}
    assert res["a_nowcs.fits"].reason is None
    assert res["b_holes.fits"].reason is None and res["b_holes.fits"].filled_pixels == 3
    assert "more than --max-fill-fraction 0.1" in res["c_many.fits"].reason
    filled = img.astype(np.float32).copy()
    filled[0, :3] = np.median(filled[np.isfinite(holes)])
    assert res["b_holes.fits"].log10_m200 == pytest.approx(_ort(trained_onnx["model1"], filled[None, ..., None])[0],
                                                          abs=1e-6)
    res = {Path(r.name).name: r for r in p.predict_files([base], options=ReadOptions(nonfinite="zero",
                                                                                      max_fill_fraction=0.5))}
    zeroed = np.nan_to_num(many.astype(np.float32), nan=0.0)
    assert res["c_many.fits"].filled_pixels == 5 * NPIX
    assert res["c_many.fits"].log10_m200 == pytest.approx(_ort(trained_onnx["model1"], zeroed[None, ..., None])[0],
                                                         abs=1e-6)
    res = {Path(r.name).name: r for r in p.predict_files([base], options=ReadOptions(pixel_scale_rtol=1e-3))}
    assert "pixel scale 10.05" in res["d_close.fits"].reason


def test_units_compared_as_units(trained_onnx, tmp_path):
    p = Predictor(trained_onnx["model4"])
    data = h5py.File(trained_onnx["data"])
    planes = [data[f"images/{c}"][0] for c in p.info.channels]
    units = ["Msun / kpc2", "erg / (s cm2)", "erg s-1 cm-2", ""]  # spelled differently, same units
    paths = [_cutout(tmp_path / f"{c}.fits", im, bunit=u, channel=c)
             for c, im, u in zip(p.info.channels, planes, units)]
    write_cube(tmp_path / "cube.fits", paths)
    [r] = list(p.predict_files([tmp_path / "cube.fits"]))
    assert r.reason is None
    x = np.stack(planes, -1)[None].astype(np.float32)
    assert r.log10_m200 == pytest.approx(_ort(trained_onnx["model4"], x)[0], abs=1e-6)
    hdr = fits.getheader(tmp_path / "cube.fits")
    assert [hdr[f"CHANNEL{k}"] for k in (1, 2, 3, 4)] == ["Star", "Fxs", "Fxb", "Ypar"]


def test_cube_refusals(trained_onnx, tmp_path):
    p = Predictor(trained_onnx["model4"])
    rng = np.random.default_rng(4)
    paths = [_cutout(tmp_path / f"{c}.fits", rng.normal(0, 1e-8, (NPIX, NPIX)), bunit=u, channel=c)
             for c, u in p.info.units.items()]
    write_cube(tmp_path / "swapped.fits", [paths[1], paths[0], paths[2], paths[3]])
    write_cube(tmp_path / "ok.fits", paths)
    hdul = fits.open(tmp_path / "ok.fits")
    del hdul[0].header["CHANNEL2"]
    hdul.writeto(tmp_path / "unnamed.fits")
    hdul[0].header["CHANNEL2"] = "Fxs"
    hdul[0].header["BUNIT1"] = "Msun / pc2"
    hdul.writeto(tmp_path / "unit.fits")
    _cutout(tmp_path / "flat.fits", np.zeros((NPIX, NPIX)), channel=None)
    res = {Path(r.name).name: r.reason for r in p.predict_files([tmp_path / "*.fits"])}
    assert res["ok.fits"] is None
    assert "cube planes are Fxs, Star, Fxb, Ypar" in res["swapped.fits"]
    assert "cube planes are not named" in res["unnamed.fits"]
    assert "BUNIT1 is 'Msun / pc2'" in res["unit.fits"]
    assert "the model takes a cube of 4 planes" in res["flat.fits"]


def test_dataset_without_the_channel_is_refused(trained_onnx, tmp_path):
    from conftest import write_planted_dataset

    other = write_planted_dataset(tmp_path / "star_only.h5", n_halos=5, channels=("Star",))
    res = list(Predictor(trained_onnx["model1"]).predict_files([other]))
    assert len(res) == 1 and "has no image channel(s) Ypar" in res[0].reason


# ---------------------------------------------------------------------------- API, formats, providers
def test_predictor_array_api(trained_onnx):
    p = Predictor(trained_onnx["model1"])
    assert p.info.channels == ("Ypar",) and p.info.npix == NPIX and p.providers[-1] == "CPUExecutionProvider"
    x = _ypar(np.random.default_rng(6), 5).astype(np.float32)
    want = _ort(trained_onnx["model1"], x[..., None])
    np.testing.assert_allclose(p.predict(x, batch_size=2), want, atol=1e-6)
    np.testing.assert_allclose(p.predict(x[..., None]), want, atol=1e-6)
    np.testing.assert_allclose(p.predict(x[0]), want[:1], atol=1e-6)
    x[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match=r"1 image\(s\) contain NaN or inf \(first: index 1\)"):
        p.predict(x)
    with pytest.raises(ValueError, match=r"the model takes \(n, 24, 24, 1\)"):
        p.predict(np.zeros((2, 30, 30)))


def test_cmcnn_import_is_light():
    code = ("import sys, cmcnn; assert 'cmcnn.serve.predictor' not in sys.modules and 'onnxruntime' not in sys.modules; "
            "cmcnn.Predictor; print('cmcnn.serve.predictor' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")})
    assert out.returncode == 0 and out.stdout.strip() == "True", out.stderr


def test_output_formats_agree(trained_onnx, tmp_path):
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    args = ["predict", str(trained_onnx["model1"]), str(trained_onnx["data"]), "--no-progress"]
    for suffix in ("csv", "parquet", "h5"):
        assert cli.main([*args, "--out", str(tmp_path / f"p.{suffix}")]) == 0
    rows = _read_csv(tmp_path / "p.csv")
    table = pq.read_table(tmp_path / "p.parquet").to_pydict()
    with h5py.File(tmp_path / "p.h5") as f:
        h5 = {k: f[k][:] for k in ("index", "log10_m200")}
        assert f.attrs["channels"] == "Ypar"
    assert table["index"] == [int(r["index"]) for r in rows] == h5["index"].tolist()
    np.testing.assert_array_equal(table["log10_m200"], h5["log10_m200"])
    np.testing.assert_allclose([float(r["log10_m200"]) for r in rows], h5["log10_m200"], atol=1e-7)


def test_parquet_without_pyarrow_is_a_clear_error(trained_onnx, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    assert cli.main(["predict", str(trained_onnx["model1"]), str(trained_onnx["data"]),
                     "--out", str(tmp_path / "p.parquet")]) == 2
    assert "Parquet output needs pyarrow" in capsys.readouterr().err
    assert cli.main(["predict", str(trained_onnx["model1"]), str(trained_onnx["data"]),
                     "--out", str(tmp_path / "p.txt")]) == 2
    assert "choose a .csv, .parquet or .h5 file" in capsys.readouterr().err


def test_providers(trained_onnx, tmp_path, capsys):
    import onnxruntime as ort

    assert resolve_providers("cpu") == ["CPUExecutionProvider"]
    default = resolve_providers(None)
    assert default[-1] == "CPUExecutionProvider"
    assert ("CUDAExecutionProvider" in default) == ("CUDAExecutionProvider" in ort.get_available_providers())
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert cli.main(["predict", str(trained_onnx["model1"]), str(trained_onnx["data"]), "--providers", "cuda",
                         "--out", str(tmp_path / "p.csv")]) == 2
        assert "execution provider(s) cuda not available" in capsys.readouterr().err


def test_not_a_cmc_model(tmp_path, trained_onnx, capsys):
    import onnx

    m = onnx.load(str(trained_onnx["model1"]))
    del m.metadata_props[:]
    onnx.save(m, str(tmp_path / "bare.onnx"))
    assert cli.main(["predict", str(tmp_path / "bare.onnx"), str(trained_onnx["data"]),
                     "--out", str(tmp_path / "p.csv")]) == 2
    assert "is not a cmc model" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()


# ---------------------------------------------------------------------------- streaming
def test_streaming_reads_a_bounded_window_ahead(trained_onnx, tmp_path, monkeypatch):
    import cmcnn.serve.cutouts as cu

    rng = np.random.default_rng(7)
    for i in range(120):
        _cutout(tmp_path / f"c{i:04d}.fits", _ypar(rng), dtype=np.float32)
    read = []
    real = cu.read_fits_cutout

    def counting(path, *a, **k):
        read.append(path)
        return real(path, *a, **k)

    monkeypatch.setattr(cu, "read_fits_cutout", counting)
    p = Predictor(trained_onnx["model1"])
    gaps, n = [], 0
    for batch, logm in p.stream([tmp_path], batch_size=8, readers=2):
        n += len(batch.names)
        gaps.append(len(read) - n)
        assert len(logm) == len(batch.names)
    assert n == 120 and sorted(read) == sorted(str(p) for p in tmp_path.glob("*.fits"))
    # at most (readers + 1) batches read ahead of what has been handed out, however many files
    assert max(gaps) <= 3 * 8


def test_progress_and_refusal_lines_when_not_a_terminal(trained_onnx, tmp_path, capsys):
    _cutout(tmp_path / "a.fits", _ypar(np.random.default_rng(9)), scale=20.0)
    assert cli.main(["predict", str(trained_onnx["model1"]), str(tmp_path / "a.fits"), str(trained_onnx["data"]),
                     "--out", str(tmp_path / "p.csv")]) == 1
    err = capsys.readouterr().err.splitlines()
    n = 1 + h5py.File(trained_onnx["data"])["images/Ypar"].shape[0]
    assert err[0].startswith("cmc predict: model1.onnx: Ypar [dimensionless]; 24x24 px of 10 arcsec")
    assert err[1] == f"refused {tmp_path / 'a.fits'}: HDU 0: pixel scale 20, 20 arcsec from the WCS, " \
                     "the model takes 10 arcsec (tolerance 0.01)"
    assert any(line.startswith(f"cmc predict [1 refused]: {n}/{n} cutout") for line in err)
    assert err[-2:] == ["cmc predict: 1 input(s) refused:", f"  {tmp_path / 'a.fits'}: " + err[1].split(": ", 1)[1]]


def test_prediction_never_imports_tensorflow(trained_onnx, tmp_path):
    """The whole `cmc predict` path runs with TensorFlow, Keras and tf2onnx made unimportable."""
    rng = np.random.default_rng(8)
    _cutout(tmp_path / "a.fits", _ypar(rng))
    np.save(tmp_path / "s.npy", _ypar(rng, 3))
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('tensorflow', 'keras', 'tf2onnx', 'tf_keras'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
from cmcnn import cli
rc = cli.main(['predict', {str(trained_onnx['model1'])!r}, {str(tmp_path / 'a.fits')!r}, {str(tmp_path / 's.npy')!r},
               {str(trained_onnx['data'])!r}, '--out', {str(tmp_path / 'p.csv')!r}])
import cmcnn
cmcnn.Predictor({str(trained_onnx['model1'])!r}).predict(__import__('numpy').zeros((1, 24, 24, 1)))
assert not any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules)
sys.exit(rc)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")})
    assert out.returncode == 0, out.stderr
    assert len(_read_csv(tmp_path / "p.csv")) == 1 + 3 + h5py.File(trained_onnx["data"])["images/Ypar"].shape[0]


def test_model_info_refuses_inconsistent_metadata():
    with pytest.raises(OSError, match="not a cmc model"):
        ModelInfo.from_metadata({}, "m.onnx")
    base = {"cmc_format": "cmc-onnx-model", "channels": '["Ypar"]', "units": '{"Ypar": ""}', "npix": "24",
            "pixel_scale_arcsec": "10"}
    assert ModelInfo.from_metadata(base).input_shape == (24, 24, 1)
    with pytest.raises(OSError, match="inconsistent"):
        ModelInfo.from_metadata({**base, "units": '{"Fxs": ""}'})


@pytest.mark.parametrize("key", ["1", "4"])
def test_cpu_predictor_runs_the_preprocessing_in_numpy_to_the_same_answer(trained_onnx, key):
    import onnxruntime as ort

    from cmcnn import Predictor
    from cmcnn.train.data import ImageSource

    p = Predictor(trained_onnx[f"model{key}"], providers="cpu")
    assert p._split is not None  # the asinh scaling runs in NumPy on CPU
    whole = ort.InferenceSession(str(trained_onnx[f"model{key}"]), providers=["CPUExecutionProvider"])
    with ImageSource(trained_onnx["data"], p.info.channels) as src:
        x = src.read(np.arange(40))
    want = whole.run(None, {"image": x})[0].ravel()
    np.testing.assert_allclose(p.predict(x), want, rtol=0, atol=1e-5)
