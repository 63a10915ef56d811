"""The dataset builder end to end on the tiny synthetic universe: file layout, labels,
determinism, kill-and-resume, appending, refusals and bad input."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

import cmcore
from cmcnn import cli
from cmcore.dataset import build_dataset
from cmcore.datafile import DatasetConfig, noise_field, open_dataset, redraw_noise, split_indices
from cmcore.errors import FileFormatError, InputError
from cmcore.halos import HaloCatalogue, read_halos, write_halos

SMALL = dict(per_bin=1, projections=("x", "diag"), npix=40, fov_arcmin=8.0)


def _build(u, out, workers=1, **kw):
    cfg = DatasetConfig(**{**SMALL, **kw})
    return build_dataset(u.snapshot, u.halos, out, cfg, workers=workers, progress=False)


@pytest.fixture(scope="module")
def built(tiny_universe, tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "data.h5"
    summary = _build(tiny_universe, out)
    return out, summary


def _images(path):
    with h5py.File(path, "r") as f:
        return {c: f[f"images/{c}"][:] for c in f["images"]}, {k: f[f"labels/{k}"][:] for k in f["labels"]}


def _assert_same_dataset(a, b):
    """Same images (bit for bit), labels and noise seeds in two dataset files."""
    images_a, labels_a = _images(a)
    images_b, labels_b = _images(b)
    assert images_a.keys() == images_b.keys() and labels_a.keys() == labels_b.keys()
    for c in images_a:
        assert np.array_equal(images_a[c], images_b[c])
    for k in labels_a:
        assert np.array_equal(labels_a[k], labels_b[k])
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        assert np.array_equal(fa["noise/seed"][:], fb["noise/seed"][:])


def test_layout_attributes_and_labels(built, tiny_universe):
    out, summary = built
    cat = read_halos(tiny_universe.halos)
    with open_dataset(out) as f:
        assert list(f.attrs["channels"]) == ["Star", "Fxs", "Fxb", "Ypar"]
        n = summary.n_images
        assert n == 2 * summary.n_halos and n > 0
        for c in f.attrs["channels"]:
            d = f[f"images/{c}"]
            assert d.shape == (n, 40, 40) and d.dtype == np.float32 and d.chunks == (1, 40, 40)
            assert d.compression == "gzip"
            assert np.isfinite(d[:]).all()
        units = json.loads(f.attrs["units"])
        assert units["Fxs"] == "erg s-1 cm-2" and units["Ypar"] == ""
        assert f.attrs["pixel_scale_arcsec"] == pytest.approx(12.0)
        assert f.attrs["code_version"] == cmcore.__version__
        assert len(f.attrs["source_snapshot_sha256"]) == 64
        assert json.loads(f.attrs["instrument"])["name"] == "paper"
        assert f["noise/seed"].shape == (n, 4)
        labels = {k: f[f"labels/{k}"][:] for k in f["labels"]}
    # labels equal the catalogue
    for k, hid in enumerate(labels["halo_id"]):
        row = cat.index(int(hid))
        assert labels["m200"][k] == cat.m200[row] and labels["r200"][k] == cat.r200[row]
    assert np.allclose(labels["log10_m200"], np.log10(labels["m200"]))
    assert ((labels["redshift"] >= 0.03) & (labels["redshift"] <= 0.07)).all()
    # theta200 = r200 / d_A(z) with the dataset's (WMAP9) cosmology
    from astropy.cosmology import WMAP9

    d_a = WMAP9.angular_diameter_distance(labels["redshift"]).value
    assert np.allclose(labels["theta200_arcmin"], np.degrees(labels["r200"] / d_a) * 60)
    # each halo: both projections, one split
    ids, counts = np.unique(labels["halo_id"], return_counts=True)
    assert (counts == 2).all()
    for hid in ids:
        sel = labels["halo_id"] == hid
        assert sorted(labels["projection"][sel].tolist()) == [b"diag", b"x"]
        assert len(set(labels["split"][sel].tolist())) == 1
    parts = [split_indices(out, s) for s in ("train", "validation", "test")]
    assert sum(len(p) for p in parts) == len(labels["halo_id"])
    assert not set(labels["halo_id"][parts[0]]) & set(labels["halo_id"][parts[2]])


def test_images_carry_cluster_signal(built):
    out, _ = built
    images, labels = _images(out)
    # the noise-free signal of the massive haloes is far above the noise: central Ypar
    # grows with mass, and the centre outshines the field edge in X-rays
    c = slice(17, 23)
    centre_y = images["Ypar"][:, c, c].mean(axis=(1, 2))
    rho = np.corrcoef(labels["log10_m200"], np.log10(np.clip(centre_y, 1e-12, None)))[0, 1]
    assert rho > 0.7
    assert (images["Fxb"][:, c, c].mean(axis=(1, 2)) > images["Fxb"][:, :3, :3].mean(axis=(1, 2))).mean() > 0.8


def test_workers_do_not_change_images(built, tiny_universe, tmp_path):
    out, _ = built
    par = tmp_path / "par.h5"
    _build(tiny_universe, par, workers=2)
    _assert_same_dataset(out, par)


@pytest.mark.parametrize("workers", [1, 2])
def test_reading_each_halos_columns_gives_the_same_images(built, tiny_universe, tmp_path, workers, monkeypatch):
    """source="index": each halo reads only its columns from an indexed copy built on demand; the
    file equals the build from the whole snapshot in memory, bit for bit, and the copy is removed."""
    from cmcore import dataset, indexed

    out, _ = built
    calls = []
    real = indexed.write_indexed
    monkeypatch.setattr(indexed, "write_indexed", lambda *a, **k: calls.append(k) or real(*a, **k))
    monkeypatch.setattr(dataset, "MEMORY_BUDGET", 0)  # "auto" must choose the index for this snapshot
    cols = tmp_path / "columns.h5"
    cfg = DatasetConfig(**SMALL)
    build_dataset(tiny_universe.snapshot, tiny_universe.halos, cols, cfg, workers=workers, progress=False)
    assert len(calls) == 1 and set(calls[0]["particle_types"]) == {"gas", "stars"}  # only what is rendered
    assert not (tmp_path / "columns.h5.parts").exists()
    _assert_same_dataset(out, cols)


def test_memory_estimate_and_source_choice(tiny_universe, tmp_path):
    from cmcore.dataset import BYTES_PER_PARTICLE, in_memory_bytes
    from cmcore.readers import particle_counts

    n = particle_counts(tiny_universe.snapshot)
    assert in_memory_bytes(tiny_universe.snapshot, DatasetConfig(**SMALL)) == BYTES_PER_PARTICLE * (
        n["gas"] + n["stars"])
    assert in_memory_bytes(tiny_universe.snapshot, DatasetConfig(**{**SMALL, "channels": ("Star",)})) == (
        BYTES_PER_PARTICLE * n["stars"])
    with pytest.raises(InputError, match="source"):
        build_dataset(tiny_universe.snapshot, tiny_universe.halos, tmp_path / "x.h5", source="disk")


def test_complete_file_is_left_alone_and_per_bin_appends(built, tiny_universe, tmp_path):
    out, first = built
    again = _build(tiny_universe, out)
    assert again.n_new == 0 and again.n_images == first.n_images
    grown = tmp_path / "grown.h5"
    _build(tiny_universe, grown)
    before, lb = _images(grown)
    more = _build(tiny_universe, grown, per_bin=2)
    assert more.n_new > 0 and more.n_images == first.n_images + more.n_new
    after, la = _images(grown)
    n0 = first.n_images
    for c in before:
        assert np.array_equal(after[c][:n0], before[c])
    assert np.array_equal(la["halo_id"][:n0], lb["halo_id"])
    assert len(np.unique(la["halo_id"])) == more.n_halos
    with open_dataset(grown) as f:
        assert DatasetConfig.from_json(f.attrs["config"]).per_bin == 2


@pytest.mark.parametrize("change", [{"channels": ("Ypar",)}, {"instrument": "ideal"},
                                    {"z_range": (0.03, 0.05)}, {"seed": 5}, {"interloper_radius": 2.0}])
def test_appending_with_other_settings_is_refused(built, tiny_universe, change):
    out, _ = built
    mtime = os.path.getmtime(out)
    with pytest.raises(InputError, match="other settings"):
        _build(tiny_universe, out, **change)
    assert os.path.getmtime(out) == mtime


def test_redraw_noise(built):
    out, _ = built
    images, labels = _images(out)
    with open_dataset(out) as f:
        cfg = DatasetConfig.from_json(f.attrs["config"])
        seeds = f["noise/seed"][:]
    k = 0
    same = redraw_noise(out, k, "Ypar", int(seeds[k, 3]))
    assert np.allclose(same, images["Ypar"][k], rtol=1e-5, atol=1e-12)
    new = redraw_noise(out, k, "Ypar", 12345)
    diff = new - images["Ypar"][k]
    # difference of two independent beamed-noise fields of the same rms
    expect = np.std(noise_field("Ypar", 1, labels["redshift"][k], cfg)) * np.sqrt(2)
    assert 0.5 * expect < diff.std() < 2 * expect and diff.std() > 0


def _cli_args(u, out, **kw):
    args = ["dataset", str(u.snapshot), "--halos", str(u.halos), "--out", str(out),
            "--per-bin", str(kw.get("per_bin", 3)), "--projections", "x,y,z,diag", "--npix", "40", "--fov", "8",
            "--no-progress"]
    return args


@pytest.mark.parametrize("source", ["memory", "index"])
def test_kill_and_resume_equals_uninterrupted_run(tiny_universe, tmp_path, source):
    ref = tmp_path / "ref.h5"
    assert cli.main(_cli_args(tiny_universe, ref)) == 0
    out = tmp_path / "killed.h5"
    parts = tmp_path / "killed.h5.parts"
    cmd = [sys.executable, "-m", "cmcnn.cli"] + _cli_args(tiny_universe, out) + ["--source", source]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if parts.is_dir() and len(list(parts.glob("halo_*.npz"))) >= 2:
            break
        time.sleep(0.005)
    assert proc.poll() is None, "the build ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()  # never a half-written dataset
    n_parts = len(list(parts.glob("halo_*.npz")))
    assert n_parts >= 2
    assert (parts / "snapshot.indexed.h5").exists() == (source == "index")
    assert cli.main(_cli_args(tiny_universe, out) + ["--source", source]) == 0
    assert not parts.exists()
    _assert_same_dataset(ref, out)


def test_bad_inputs(tiny_universe, tmp_path, capsys):
    with pytest.raises(FileFormatError, match="does not exist"):
        build_dataset(tmp_path / "nope.hdf5", tiny_universe.halos, tmp_path / "x.h5", progress=False)
    cat = read_halos(tiny_universe.halos)
    empty = HaloCatalogue(halo_id=cat.halo_id[:0], centre=cat.centre[:0], m200=cat.m200[:0], r200=cat.r200[:0],
                          n_particles=cat.n_particles[:0], boxsize=cat.boxsize, redshift=cat.redshift,
                          cosmology=cat.cosmology)
    write_halos(tmp_path / "empty.h5", empty)
    with pytest.raises(InputError, match="empty"):
        build_dataset(tiny_universe.snapshot, tmp_path / "empty.h5", tmp_path / "x.h5", progress=False)
    # a file that is not a dataset is never overwritten
    (tmp_path / "other.h5").write_bytes(b"not hdf5")
    with pytest.raises(FileFormatError):
        _build(tiny_universe, tmp_path / "other.h5")
    assert (tmp_path / "other.h5").read_bytes() == b"not hdf5"
    # CLI: one line, non-zero exit
    code = cli.main(["dataset", str(tmp_path / "nope.hdf5"), "--halos", str(tiny_universe.halos),
                     "--out", str(tmp_path / "x.h5")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "does not exist" in err


def test_bins_without_haloes_warn_and_continue(tiny_universe, tmp_path):
    with pytest.warns(UserWarning, match="holds no halo"):
        s = _build(tiny_universe, tmp_path / "w.h5", bins=(12.0, 13.5, 0.25), projections=("z",))
    assert s.per_bin_counts[:4] == [0, 0, 0, 0] and s.n_images == sum(s.per_bin_counts) > 0


def test_a_failed_start_leaves_nothing_that_blocks_the_next_run(tiny_universe, tmp_path):
    bad = tmp_path / "bad.hdf5"
    bad.write_bytes(b"not an HDF5 file")
    out = tmp_path / "d.h5"
    with pytest.raises(FileFormatError):
        build_dataset(bad, tiny_universe.halos, out, DatasetConfig(**SMALL), progress=False)
    assert not out.exists() and not (tmp_path / "d.h5.parts").exists()
    assert _build(tiny_universe, out).n_images > 0


def test_parts_of_another_build_are_refused(tiny_universe, tmp_path):
    out = tmp_path / "d.h5"
    parts = tmp_path / "d.h5.parts"
    parts.mkdir()
    (parts / "manifest.json").write_text(json.dumps({"config": {"seed": 99}}))
    (parts / "halo_1.npz").write_bytes(b"x")
    with pytest.raises(InputError, match="other settings"):
        _build(tiny_universe, out)
    (parts / "halo_1.npz").unlink()  # only a stale manifest: replaced, not refused
    assert _build(tiny_universe, out).n_images > 0


@pytest.mark.parametrize("args, message", [
    (["--scheme", "sph"], "smoothing lengths of the stars"),
    (["--instrument", "hubble"], "hubble"),
    (["--channels", "Fxs", "--scheme", "sph", "--instrument", "nope"], "nope"),
])
def test_settings_are_refused_before_any_particle_is_read(tiny_universe, tmp_path, capsys,
                                                          monkeypatch, args, message):
    from cmcore import dataset, readers

    def no_read(*a, **k):
        raise AssertionError("particles were read before the settings were checked")

    monkeypatch.setattr(readers, "read_snapshot", no_read)
    monkeypatch.setattr(dataset, "make_renderer", no_read)
    out = tmp_path / "d.h5"
    code = cli.main(["dataset", str(tiny_universe.snapshot), "--halos", str(tiny_universe.halos),
                     "--out", str(out), "--no-progress", *args])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err
    assert list(tmp_path.iterdir()) == []  # no <out>.parts/manifest.json, no dataset file


def test_sph_without_star_channel_passes_the_check(tiny_universe):
    from cmcore.observables import check_request
    from cmcore.readers import snapshot_contents

    contents = snapshot_contents(tiny_universe.snapshot)
    assert {"smoothing_length", "density", "temperature"} <= contents["gas"]
    assert "smoothing_length" not in contents["stars"]
    check_request(contents, ("Fxs", "Fxb", "Ypar"), scheme="sph")
    check_request(contents, ("Star", "Fxs"), scheme="cic")
    with pytest.raises(InputError, match="needs gas field"):
        check_request({"gas": frozenset({"temperature"}), "stars": frozenset()}, ("Fxb",))


def test_stale_temporary_of_a_killed_assembly_is_removed(tiny_universe, tmp_path):
    from cmcore.fileio import temporary_path

    stale = temporary_path(tmp_path / "data.h5")  # what a SIGKILL during assembly leaves
    other = temporary_path(tmp_path / "other.h5")
    _build(tiny_universe, tmp_path / "data.h5")
    assert not stale.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["data.h5", other.name])


def test_sph_dataset_builds_and_conserves_the_gas_signal(tiny_universe, tmp_path):
    """--scheme sph renders through a cell index built with the smoothing lengths."""
    kw = dict(channels=("Fxb", "Ypar"), instrument="ideal")
    _build(tiny_universe, tmp_path / "sph.h5", scheme="sph", **kw)
    _build(tiny_universe, tmp_path / "ngp.h5", scheme="ngp", **kw)
    with h5py.File(tmp_path / "sph.h5") as a, h5py.File(tmp_path / "ngp.h5") as b:
        for c in kw["channels"]:
            sph, ngp = a[f"images/{c}"][:].astype(float), b[f"images/{c}"][:].astype(float)
            assert np.all(np.isfinite(sph)) and not np.array_equal(sph, ngp)
            # same particles, kernels spread over pixels: totals agree up to what crosses the field edge
            np.testing.assert_allclose(sph.sum(axis=(1, 2)), ngp.sum(axis=(1, 2)), rtol=0.1)


# ---------------------------------------------------------------------------------- interlopers
def _cut_snapshot(snap, centre, radius, inside: bool):
    """``snap`` with only the particles inside (or outside) a periodic sphere, by plain NumPy."""
    import dataclasses

    from cmcore.snapshot import ParticleData

    parts = {}
    for ptype, p in snap.particles.items():
        d = p.positions.astype(float) - centre
        d -= snap.boxsize * np.round(d / snap.boxsize)
        keep = (np.einsum("ij,ij->i", d, d) <= radius**2) == inside
        parts[ptype] = ParticleData(p.positions[keep], p.masses[keep], {k: v[keep] for k, v in p.fields.items()}, p.name)
    return dataclasses.replace(snap, particles=parts)


def test_no_interlopers_renders_only_the_sphere(tiny_universe, tmp_path):
    """Without interlopers an image is the rendering of the particles within k r200 alone, and
    the interlopers it lost (fiducial − ablated) are the rendering of the particles outside."""
    from cmcore.observables import snapshot_request
    from cmcore.readers import read_snapshot
    from cmcore.render import render_maps

    kw = dict(instrument="ideal", projections=("z", "diag"), channels=("Star", "Fxb", "Ypar"))
    _build(tiny_universe, tmp_path / "fid.h5", **kw)
    _build(tiny_universe, tmp_path / "abl.h5", interloper_radius=1.5, **kw)
    images_f, labels = _images(tmp_path / "fid.h5")
    images_a, labels_a = _images(tmp_path / "abl.h5")
    assert np.array_equal(labels["halo_id"], labels_a["halo_id"])
    with h5py.File(tmp_path / "abl.h5") as f:
        assert DatasetConfig.from_json(f.attrs["config"]).interloper_radius == 1.5
    cat = read_halos(tiny_universe.halos)
    ptypes, optional = snapshot_request(kw["channels"], scheme="ngp")
    snap = read_snapshot(tiny_universe.snapshot, particle_types=ptypes, fields=[], optional_fields=optional)
    lost_somewhere = False
    for k in range(labels["halo_id"].size):
        row = int(np.flatnonzero(cat.halo_id == labels["halo_id"][k])[0])
        centre, radius = np.asarray(cat.centre[row], float), 1.5 * float(cat.r200[row])
        geo = dict(channels=kw["channels"], redshift=float(labels["redshift"][k]),
                   los=labels["projection"][k].decode(), azimuth=float(labels["azimuth"][k]),
                   npix=SMALL["npix"], fov_arcmin=SMALL["fov_arcmin"])
        inside = render_maps(_cut_snapshot(snap, centre, radius, True), centre, **geo)
        outside = render_maps(_cut_snapshot(snap, centre, radius, False), centre, **geo)
        for c in kw["channels"]:
            scale = np.abs(images_f[c][k]).max()
            np.testing.assert_allclose(images_a[c][k], inside[c], rtol=1e-5, atol=1e-6 * scale)
            np.testing.assert_allclose(images_f[c][k] - images_a[c][k], outside[c], rtol=1e-4, atol=1e-5 * scale)
            lost_somewhere |= outside[c].sum() > 1e-3 * images_f[c][k].sum()
    assert lost_somewhere  # the fiducial images do hold fore/background that the ablation removed


def test_no_interlopers_cli(tiny_universe, tmp_path, capsys):
    base = [str(tiny_universe.snapshot), "--halos", str(tiny_universe.halos), "--per-bin", "1",
            "--projections", "z", "--npix", "16", "--channels", "Ypar", "--no-progress"]
    assert cli.main(["dataset", *base, "--out", str(tmp_path / "a.h5"), "--no-interlopers"]) == 0
    with h5py.File(tmp_path / "a.h5") as f:
        assert DatasetConfig.from_json(f.attrs["config"]).interloper_radius == 2.0
    assert cli.main(["dataset", *base, "--out", str(tmp_path / "b.h5"), "--interloper-radius", "3"]) == 2
    assert "needs --no-interlopers" in capsys.readouterr().err
    with pytest.raises(InputError, match="positive multiple"):
        DatasetConfig(interloper_radius=0.0)
