"""Shared fixtures of the cmc test suite."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

#: Property-based tests run the same examples on every machine: derandomised (the
#: examples follow from each test's code, not from a random seed), no example
#: database and no deadline, so a CI run is reproducible and never flaky on timing.
#: ``ci`` is the profile used when CI is set (and by default); ``HYPOTHESIS_PROFILE=dev``
#: explores new random examples locally.
settings.register_profile("ci", derandomize=True, database=None, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: ``../shared/data`` beside the repository (override with ``CMC_SHARED_DATA``).
SHARED_DATA = Path(
    os.environ.get("CMC_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


@pytest.fixture
def shared_data() -> Path:
    """Folder of the small real snapshots; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared simulation data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def shared_file(shared_data):
    """Return a function giving the path of one shared file, skipping when it is absent."""

    def get(name: str) -> Path:
        path = shared_data / name
        if not path.is_file():
            pytest.skip(f"shared file {name} not found in {shared_data}")
        return path

    return get


@pytest.fixture(scope="session")
def tiny_universe(tmp_path_factory):
    """The ``tiny`` synthetic universe (seed 1), generated once per test session."""
    from cmcore.synth import generate

    return generate("tiny", seed=1, out=tmp_path_factory.mktemp("tiny_universe"), progress=False)


def write_planted_dataset(path, *, n_halos: int = 60, projections: int = 2, npix: int = 24,
                          seed: int = 0, channels=("Star", "Fxs", "Fxb", "Ypar")):
    """Write a small file in the cmc dataset layout whose images encode the mass.

    Each image is a Gaussian blob whose amplitude and width grow with M200 (amplitude
    ∝ M^0.8 on top of a channel-typical level in physical units, width ∝ M^(1/3)),
    plus Gaussian noise; splits are by halo (60/20/20).  Returns the path.
    """
    import h5py
    import numpy as np

    from cmcore.datafile import FORMAT, FORMAT_VERSION

    level = {"Star": 3e5, "Fxs": 2e-14, "Fxb": 5e-14, "Ypar": 2e-6}
    noise = {"Star": 2e4, "Fxs": 9e-16, "Fxb": 9e-16, "Ypar": 1e-8}
    rng = np.random.default_rng(seed)
    logm_halo = rng.uniform(13.0, 15.0, n_halos)
    split_halo = rng.permutation(np.repeat([0, 1, 2], [int(0.6 * n_halos), int(0.2 * n_halos),
                                                      n_halos - int(0.6 * n_halos) - int(0.2 * n_halos)]))
    n = n_halos * projections
    logm = np.repeat(logm_halo, projections)
    yy, xx = np.mgrid[:npix, :npix] - (npix - 1) / 2
    r2 = xx**2 + yy**2
    with h5py.File(path, "w") as f:
        f.attrs.update({"format": FORMAT, "format_version": FORMAT_VERSION, "channels": list(channels),
                        "npix": npix, "pixel_scale_arcsec": 10.0, "fov_arcmin": npix * 10.0 / 60})
        for c in channels:
            width = 2.0 * 10 ** ((logm - 14.0) / 3.0)
            amp = level[c] * 10 ** (0.8 * (logm - 14.0))
            img = amp[:, None, None] * np.exp(-r2[None] / (2 * width[:, None, None] ** 2))
            img += rng.normal(0.0, noise[c], img.shape)
            f.create_dataset(f"images/{c}", data=img.astype(np.float32), chunks=(1, npix, npix))
        f["labels/log10_m200"] = logm
        f["labels/m200"] = 10**logm
        f["labels/halo_id"] = np.repeat(np.arange(n_halos), projections)
        f["labels/split"] = np.repeat(split_halo, projections).astype(np.uint8)
        f["labels/redshift"] = rng.uniform(0.03, 0.07, n)
        f["labels/projection"] = np.tile(np.array([b"x", b"y", b"z", b"diag"])[:projections], n_halos)
        f["labels/theta200_arcmin"] = 3.0 * 10 ** ((logm - 14.0) / 3.0)
    return path


@pytest.fixture
def planted_dataset(tmp_path):
    """A small planted dataset (see :func:`write_planted_dataset`)."""
    return write_planted_dataset(tmp_path / "planted.h5")


@pytest.fixture(scope="session")
def trained_onnx(tmp_path_factory):
    """Planted dataset, two 1-epoch runs (``Ypar`` and all channels) and their ONNX exports.

    Returns a dict with ``data``, ``run1``, ``run4``, ``model1``, ``model4`` (paths), and
    ``runz``/``modelz``: a ``Ypar`` run by the survey recipe (redshift input, error head).
    """
    from cmcnn.serve.export import export_run
    from cmcnn.train.training import train
    from cmcnn.train.recipe import TrainConfig

    d = tmp_path_factory.mktemp("trained_onnx")
    data = write_planted_dataset(d / "planted.h5")
    out = {"data": data}
    for key, channels in (("1", ["Ypar"]), ("4", "all")):
        train(data, d / f"run{key}", TrainConfig(channels=channels, epochs=1), progress=False)
        export_run(d / f"run{key}", d / f"model{key}.onnx")
        out[f"run{key}"], out[f"model{key}"] = d / f"run{key}", d / f"model{key}.onnx"
    train(data, d / "runz", TrainConfig.survey(["Ypar"], epochs=2, batch_size=16, lr=3e-3), progress=False)
    export_run(d / "runz", d / "modelz.onnx")
    out["runz"], out["modelz"] = d / "runz", d / "modelz.onnx"
    return out
