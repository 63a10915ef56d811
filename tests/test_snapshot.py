"""Tests of the in-memory snapshot form (cmcore.snapshot)."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.cosmology import FlatLambdaCDM

from cmcore.errors import InputError
from cmcore.snapshot import ParticleData, Snapshot

COSMO = FlatLambdaCDM(H0=70.0, Om0=0.3, Ob0=0.045)


def _snapshot(**particles) -> Snapshot:
    return Snapshot(particles, boxsize=10.0, h=0.7, scale_factor=1.0, redshift=0.0,
                    cosmology=COSMO, flavour="eagle", path="test.hdf5")


def test_particle_data_keeps_positions_dtype_and_makes_masses_float64():
    pd = ParticleData(np.zeros((4, 3), np.float32), np.ones(4, np.float32), {"density": np.ones(4)})
    assert pd.positions.dtype == np.float32
    assert pd.masses.dtype == np.float64
    assert len(pd) == 4 and "density" in pd
    np.testing.assert_array_equal(pd["density"], np.ones(4))


@pytest.mark.parametrize(
    "positions, masses, fields",
    [
        (np.zeros((4, 2)), np.ones(4), {}),
        (np.zeros((4, 3)), np.ones(3), {}),
        (np.zeros((4, 3)), np.ones(4), {"temperature": np.ones(5)}),
    ],
)
def test_particle_data_rejects_inconsistent_shapes(positions, masses, fields):
    with pytest.raises(InputError):
        ParticleData(positions, masses, fields)


def test_missing_field_names_field_type_and_what_exists():
    snap = _snapshot(gas=ParticleData(np.zeros((2, 3)), np.ones(2), {"density": np.ones(2)}))
    with pytest.raises(InputError, match=r"gas particles have no 'temperature' field \(available: density\)"):
        snap.gas["temperature"]


def test_missing_particle_type_names_it():
    snap = _snapshot(gas=ParticleData(np.zeros((2, 3)), np.ones(2)),
                     dm=ParticleData(np.zeros((3, 3)), np.full(3, 2.0)))
    assert len(snap.dm) == 3
    assert snap.total_mass == pytest.approx(8.0)
    with pytest.raises(InputError, match="has no stars particles.*dm, gas"):
        snap.stars


def test_snapshot_rejects_unknown_type_and_bad_box():
    with pytest.raises(InputError, match="unknown particle type"):
        _snapshot(bh=ParticleData(np.zeros((1, 3)), np.ones(1)))
    with pytest.raises(InputError, match="box size"):
        Snapshot({}, boxsize=-1.0, h=0.7, scale_factor=1.0, redshift=0.0, cosmology=COSMO,
                 flavour="eagle", path="")
