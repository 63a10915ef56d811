"""``cmc predict --scheduler``: sharded prediction on dask.distributed equals the serial path."""
from __future__ import annotations

import sys

import h5py
import numpy as np
import pytest
from astropy.io import fits

from cmcnn import cli
from cmcnn.serve.cutouts import ReadOptions, expand_inputs, plan
from cmcnn.serve.distributed import auto_shard_size, shard_plan
from cmcnn.serve.predictor import Predictor
from cmcore.scheduler import connect
from cmcore.errors import InputError

distributed = pytest.importorskip("dask.distributed")

NPIX = 24


def _cutout(path, image, *, scale=10.0):
    """A FITS cutout like `cmc render` writes (celestial TAN WCS, BUNIT, CHANNEL)."""
    from cmcore.render import cutout_wcs

    header = cutout_wcs(NPIX, scale).to_header()
    header["BUNIT"], header["CHANNEL"] = "", "Ypar"
    fits.PrimaryHDU(np.asarray(image, np.float32), header=header).writeto(path)


def _ypar(rng, n=None):
    shape = (NPIX, NPIX) if n is None else (n, NPIX, NPIX)
    yy, xx = np.mgrid[:NPIX, :NPIX] - (NPIX - 1) / 2
    amp = rng.lognormal(0.0, 0.5, () if n is None else (n, 1, 1))
    return 2e-6 * amp * np.exp(-(xx**2 + yy**2) / 18.0) + rng.normal(0, 1e-8, shape)


@pytest.fixture(scope="module")
def inputs(trained_onnx, tmp_path_factory):
    """Relative input paths (run from the returned folder): good and refused FITS files, stacks with
    a refused row and a refused file, a missing file, an empty glob, an unknown suffix, a dataset."""
    d = tmp_path_factory.mktemp("predict_dask")
    rng = np.random.default_rng(11)
    (d / "cut").mkdir()
    for i in range(37):
        img = _ypar(rng)
        if i == 5:
            img[2, 3] = np.nan
        _cutout(d / "cut" / f"c{i:03d}.fits", img, scale=12.0 if i in (9, 30) else 10.0)
    (d / "cut" / "c020.fits").write_bytes(b"SIMPLE  = this is not FITS" + b" " * 3000)
    stack = _ypar(rng, 13)[..., None].astype(np.float32)
    stack[6, 0, 0, 0] = np.inf
    np.save(d / "stack.npy", stack)
    np.save(d / "wrong.npy", np.zeros((3, NPIX, NPIX, 2)))
    (d / "notes.txt").write_text("x")
    names = ["cut", "stack.npy", "missing.fits", "wrong.npy", "cut/c00*.fits", "nomatch*.fits", "notes.txt",
             str(trained_onnx["data"])]
    return d, names


def _predict(model, d, names, out, monkeypatch, capsys, *extra):
    monkeypatch.chdir(d)
    rc = cli.main(["predict", str(model), *names, "--out", out, "--batch-size", "4",
                   "--refusals", out + ".tsv", *extra])
    err = capsys.readouterr().err.splitlines()
    with h5py.File(d / out) as f:
        table = {k: f[k][:] for k in f}
    return rc, table, (d / (out + ".tsv")).read_text(), [line for line in err if line.startswith("refused ")]


def test_sharded_prediction_equals_serial(trained_onnx, inputs, monkeypatch, capsys):
    d, names = inputs
    model = trained_onnx["model1"]
    rc0, serial, ref0, lines0 = _predict(model, d, names, "serial.h5", monkeypatch, capsys)
    assert rc0 == 1 and len(serial["name"]) > 100
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        # a scheduler address, shards of 8 cutouts (two batches): many more shards than workers
        rc1, sharded, ref1, lines1 = _predict(model, d, names, "sharded.h5", monkeypatch, capsys,
                                              "--scheduler", cluster.scheduler_address, "--shard-size", "8")
        with distributed.Client(cluster) as client:
            sessions = client.run(lambda: len(sys.modules["cmcnn.serve.distributed"]._predictors))
    # one onnxruntime session per worker, reused by every shard (17 shards on 2 workers)
    assert max(sessions.values()) == 1 and len(serial["name"]) + len(ref0.splitlines()) > 16 * 8
    assert rc1 == rc0
    assert sorted(serial) == sorted(sharded)
    for k in serial:
        assert np.array_equal(serial[k], sharded[k]), k     # names as given, same order, same bits
    assert ref1 == ref0 and lines1 == lines0                # same refusals, same reasons, same order
    refused = dict(line.split("\t") for line in ref0.splitlines())
    assert set(refused) == {"cut/c005.fits", "cut/c009.fits", "cut/c020.fits", "cut/c030.fits", "stack.npy[6]",
                            "missing.fits", "wrong.npy", "cut/c005.fits", "cut/c009.fits", "nomatch*.fits",
                            "notes.txt"}
    assert ref0.count("cut/c005.fits\t") == 2 and ref0.count("cut/c009.fits\t") == 2
    assert serial["name"].astype(str)[:3].tolist() == ["cut/c000.fits", "cut/c001.fits", "cut/c002.fits"]


def test_local_cluster_equals_serial(trained_onnx, inputs, monkeypatch, capsys):
    d, names = inputs
    model = trained_onnx["model1"]
    _, serial, ref0, _ = _predict(model, d, names[:3], "serial3.h5", monkeypatch, capsys)
    _, sharded, ref1, _ = _predict(model, d, names[:3], "local3.h5", monkeypatch, capsys, "--scheduler", "local:2")
    for k in serial:
        assert np.array_equal(serial[k], sharded[k]), k
    assert ref1 == ref0


def test_shards_are_whole_batches_in_order(trained_onnx, inputs):
    d, names = inputs
    info = Predictor(trained_onnx["model1"]).info
    sources = expand_inputs([d / n for n in names[:4]], info, ReadOptions())
    tasks = list(plan(sources, 4))
    shards = shard_plan(sources, 4, 10, "/")
    flat = [entry for shard in shards for entry in shard]
    assert len(flat) == len(tasks)
    assert all(sum(t[2] - t[1] for t, _ in s) >= 10 for s in shards[:-1])
    for (src, start, stop), ((wsrc, wstart, wstop), given) in zip(tasks, flat):
        assert wstop - wstart == stop - start
        if src.kind == "fits":     # a worker gets its batch's files only
            assert wsrc.paths == given == src.paths[start:stop]
        else:
            assert (wstart, wstop, wsrc.paths) == (start, stop, src.paths)
    assert auto_shard_size(10**6, 2, 64) == 4096
    assert auto_shard_size(1000, 2, 64) == 128
    assert auto_shard_size(10, 8, 64) == 64


@pytest.mark.parametrize("spec, message", [
    ("local:0", "positive number of workers"),
    ("local:two", "positive number of workers"),
    ("localhost", "neither local[:N] nor a Dask scheduler address"),
    ("foo://x:1", "neither local[:N] nor a Dask scheduler address"),
])
def test_bad_scheduler_is_a_clear_error(trained_onnx, tmp_path, capsys, spec, message):
    _cutout(tmp_path / "a.fits", _ypar(np.random.default_rng(0)))
    out = tmp_path / "p.csv"
    assert cli.main(["predict", str(trained_onnx["model1"]), str(tmp_path / "a.fits"), "--out", str(out),
                     "--scheduler", spec]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_unreachable_scheduler_and_missing_dask(monkeypatch):
    with pytest.raises(InputError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:1"):
        with connect("tcp://127.0.0.1:1", timeout=1.0):
            pass
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(InputError, match=r"needs dask.distributed \(pip install 'cmc\[distributed\]'"):
        with connect("local:1"):
            pass


def test_shard_size_needs_a_scheduler(trained_onnx, tmp_path, capsys):
    assert cli.main(["predict", str(trained_onnx["model1"]), str(tmp_path), "--out", str(tmp_path / "p.csv"),
                     "--shard-size", "8"]) == 2
    assert "--shard-size needs --scheduler" in capsys.readouterr().err
