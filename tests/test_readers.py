"""Tests of the snapshot readers (cmcore.readers).

EAGLE- and SWIFT-style files are written here with h = 0.7 and a = 0.5, so a
wrong exponent of h or a changes the values read by factors of 0.7^k or 2^k.
"""
from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

from cmcore.errors import FileFormatError, InputError
from cmcore.readers import read_snapshot
from cmcore.readers.units import MPC_CM, MSUN_G, YEAR_S

H, A = 0.7, 0.5
Z = 1.0 / A - 1.0
BOX = 20.0  # comoving Mpc
G4 = "gadget4_G2-lcdm-gas_snapshot_004.hdf5"
GIZMO_UNITS = {"UnitLength_in_cm": 3.085678e21, "UnitMass_in_g": 1.989e43, "UnitVelocity_in_cm_per_s": 1e5}

# dataset -> (CGS factor, aexp, hexp) in the EAGLE convention
EAGLE_UNITS = {
    "Coordinates": (MPC_CM, 1.0, -1.0),
    "SmoothingLength": (MPC_CM, 1.0, -1.0),
    "Mass": (1e10 * MSUN_G, 0.0, -1.0),
    "Density": (1e10 * MSUN_G / MPC_CM**3, -3.0, 2.0),
    "Temperature": (1.0, 0.0, 0.0),
    "Metallicity": (1.0, 0.0, 0.0),
    "StarFormationRate": (MSUN_G / YEAR_S, 0.0, 0.0),
    "ParticleIDs": (1.0, 0.0, 0.0),
    "XrayLum": (1e40, 0.0, 0.0),
}


def physical_truth(seed: int = 0, n_gas: int = 50, n_dm: int = 60, n_star: int = 10) -> dict:
    """Particle data in cmc's in-memory units (comoving Mpc, Msun, physical Msun/Mpc^3 ...)."""
    rng = np.random.default_rng(seed)
    return {
        "gas": {
            "Coordinates": rng.uniform(0, BOX, (n_gas, 3)),
            "Mass": rng.uniform(1e9, 2e9, n_gas),
            "Density": 10 ** rng.uniform(9, 13, n_gas),
            "Temperature": 10 ** rng.uniform(4, 8, n_gas),
            "SmoothingLength": rng.uniform(0.05, 0.5, n_gas),
            "Metallicity": rng.uniform(0, 0.03, n_gas),
            "StarFormationRate": rng.uniform(0, 1, n_gas),
            "XrayLum": 10 ** rng.uniform(38, 42, n_gas),
        },
        "dm": {"Coordinates": rng.uniform(0, BOX, (n_dm, 3)), "mass": 5e9},
        "stars": {"Coordinates": rng.uniform(0, BOX, (n_star, 3)), "Mass": rng.uniform(1e8, 1e9, n_star)},
    }


def _stored(name: str, value: np.ndarray) -> np.ndarray:
    """Physical/in-memory value -> EAGLE stored value (comoving quantities stay comoving)."""
    cgs, aexp, hexp = EAGLE_UNITS[name]
    in_cgs = {"Coordinates": MPC_CM, "SmoothingLength": MPC_CM, "Mass": MSUN_G,
              "Density": MSUN_G / MPC_CM**3, "StarFormationRate": MSUN_G / YEAR_S}.get(name, 1.0)
    a_factor = 1.0 if name in ("Coordinates", "SmoothingLength") else A**aexp
    return value * in_cgs / (cgs * a_factor * H**hexp)


def write_eagle(path: Path, truth: dict, nfiles: int = 1, drop: tuple[str, ...] = ()) -> list[Path]:
    """Write ``truth`` as an EAGLE-style snapshot over ``nfiles`` files; return the paths."""
    counts = {k: len(v["Coordinates"]) for k, v in truth.items()}
    ptype = {"gas": 0, "dm": 1, "stars": 4}
    total = np.zeros(6, np.int64)
    for k, n in counts.items():
        total[ptype[k]] = n
    paths = []
    for i in range(nfiles):
        name = path.with_name(f"{path.name}.{i}.hdf5") if nfiles > 1 else path
        paths.append(name)
        this = np.zeros(6, np.int64)
        with h5py.File(name, "w") as f:
            for kind, data in truth.items():
                n = counts[kind]
                sl = slice(i * n // nfiles, (i + 1) * n // nfiles)
                this[ptype[kind]] = sl.stop - sl.start
                g = f.create_group(f"PartType{ptype[kind]}")
                for dname, value in data.items():
                    if dname == "mass" or dname in drop:
                        continue
                    d = g.create_dataset(dname, data=_stored(dname, np.asarray(value))[sl])
                    cgs, aexp, hexp = EAGLE_UNITS[dname]
                    d.attrs.update({"CGSConversionFactor": cgs, "aexp-scale-exponent": aexp,
                                    "h-scale-exponent": hexp})
            mass_table = np.zeros(6)
            mass_table[1] = truth["dm"]["mass"] * H / 1e10
            f.create_group("Header").attrs.update({
                "BoxSize": BOX * H, "HubbleParam": H, "ExpansionFactor": A, "Time": A, "Redshift": Z,
                "Omega0": 0.3, "OmegaLambda": 0.7, "OmegaBaryon": 0.045, "MassTable": mass_table,
                "NumPart_ThisFile": this, "NumPart_Total": total,
                "NumPart_Total_HighWord": np.zeros(6, np.int64), "NumFilesPerSnapshot": nfiles,
            })
            f.create_group("Cosmology").attrs.update(
                {"HubbleParam": H, "Omega0": 0.3, "OmegaLambda": 0.7, "OmegaBaryon": 0.045})
    return paths


def _check_against_truth(snap, truth):
    assert snap.flavour == "eagle"
    assert snap.boxsize == pytest.approx(BOX)
    assert (snap.h, snap.scale_factor, snap.redshift) == pytest.approx((H, A, Z))
    assert snap.cosmology.H0.value == pytest.approx(100 * H) and snap.cosmology.Om0 == pytest.approx(0.3)
    gas = truth["gas"]
    np.testing.assert_allclose(snap.gas.positions, gas["Coordinates"], rtol=1e-12)
    np.testing.assert_allclose(snap.gas.masses, gas["Mass"], rtol=1e-12)
    np.testing.assert_allclose(snap.gas["density"], gas["Density"], rtol=1e-12)
    np.testing.assert_allclose(snap.gas["temperature"], gas["Temperature"], rtol=1e-12)
    np.testing.assert_allclose(snap.gas["smoothing_length"], gas["SmoothingLength"], rtol=1e-12)
    np.testing.assert_allclose(snap.gas["metallicity"], gas["Metallicity"], rtol=1e-12)
    np.testing.assert_allclose(snap.gas["star_formation_rate"], gas["StarFormationRate"], rtol=1e-12)
    np.testing.assert_allclose(snap.dm.positions, truth["dm"]["Coordinates"], rtol=1e-12)
    np.testing.assert_allclose(snap.dm.masses, truth["dm"]["mass"], rtol=1e-12)
    np.testing.assert_allclose(snap.stars.masses, truth["stars"]["Mass"], rtol=1e-12)


def test_eagle_round_trip_with_h_and_a(tmp_path):
    truth = physical_truth()
    write_eagle(tmp_path / "snap.hdf5", truth)
    _check_against_truth(read_snapshot(tmp_path / "snap.hdf5"), truth)


@pytest.mark.parametrize("which", ["snap_028.0.hdf5", "snap_028.2.hdf5", "snap_028"])
def test_eagle_multi_file_round_trip(tmp_path, which):
    truth = physical_truth(seed=1)
    write_eagle(tmp_path / "snap_028", truth, nfiles=3)
    _check_against_truth(read_snapshot(tmp_path / which), truth)


def test_multi_file_with_a_missing_file_is_refused(tmp_path):
    paths = write_eagle(tmp_path / "snap_028", physical_truth(), nfiles=3)
    paths[1].unlink()
    with pytest.raises(FileFormatError, match=r"missing: snap_028\.1\.hdf5"):
        read_snapshot(paths[0])


def test_reads_only_requested_types_and_fields(tmp_path):
    truth = physical_truth()
    truth["gas"]["Temperature"][3] = np.nan  # only harmful if Temperature is read
    write_eagle(tmp_path / "s.hdf5", truth)
    snap = read_snapshot(tmp_path / "s.hdf5", particle_types=["gas"], fields=["density"])
    assert set(snap.particles) == {"gas"} and set(snap.gas.fields) == {"density"}
    with pytest.raises(InputError, match=r"1 non-finite .* PartType0/Temperature.*drop_nonfinite"):
        read_snapshot(tmp_path / "s.hdf5", fields=["temperature"])


def test_nonfinite_values_can_be_dropped_on_request(tmp_path):
    truth = physical_truth()
    truth["gas"]["Density"][[2, 7]] = [np.inf, np.nan]
    write_eagle(tmp_path / "s.hdf5", truth)
    with pytest.raises(InputError, match=r"2 non-finite .* PartType0/Density"):
        read_snapshot(tmp_path / "s.hdf5")
    with pytest.warns(UserWarning, match="dropping 2 gas particle"):
        snap = read_snapshot(tmp_path / "s.hdf5", drop_nonfinite=True)
    assert len(snap.gas) == len(truth["gas"]["Mass"]) - 2
    assert np.isfinite(snap.gas["density"]).all()
    np.testing.assert_allclose(snap.gas.masses, np.delete(truth["gas"]["Mass"], [2, 7]), rtol=1e-12)


def test_luminosity_datasets(tmp_path):
    truth = physical_truth()
    write_eagle(tmp_path / "s.hdf5", truth)
    snap = read_snapshot(tmp_path / "s.hdf5", fields=[], luminosity_datasets={"luminosity_soft": "XrayLum"})
    np.testing.assert_allclose(snap.gas["luminosity_soft"], truth["gas"]["XrayLum"], rtol=1e-12)
    with pytest.raises(InputError, match="Nope not found"):
        read_snapshot(tmp_path / "s.hdf5", luminosity_datasets={"luminosity_bol": "Nope"})


def test_missing_particles_or_fields_are_named(tmp_path):
    truth = physical_truth()
    del truth["stars"]
    write_eagle(tmp_path / "s.hdf5", truth)
    with pytest.raises(InputError, match="has no stars particles"):
        read_snapshot(tmp_path / "s.hdf5", particle_types=["gas", "stars"])
    with pytest.raises(InputError, match="gas particles .* no 'electron_abundance'"):
        read_snapshot(tmp_path / "s.hdf5", fields=["electron_abundance"])
    with pytest.raises(InputError, match="unknown field"):
        read_snapshot(tmp_path / "s.hdf5", fields=["colour"])
    snap = read_snapshot(tmp_path / "s.hdf5")
    with pytest.raises(InputError, match="no stars particles"):
        snap.stars


def test_missing_unit_attribute_is_refused(tmp_path):
    write_eagle(tmp_path / "s.hdf5", physical_truth())
    with h5py.File(tmp_path / "s.hdf5", "r+") as f:
        del f["PartType0/Density"].attrs["h-scale-exponent"]
    with pytest.raises(FileFormatError, match="Density has no unit attribute h-scale-exponent"):
        read_snapshot(tmp_path / "s.hdf5")


def test_bad_files(tmp_path):
    with pytest.raises(FileFormatError, match="no such file"):
        read_snapshot(tmp_path / "absent.hdf5")
    text = tmp_path / "notes.hdf5"
    text.write_text("not HDF5 at all\n" * 100)
    with pytest.raises(FileFormatError, match="not an HDF5 file"):
        read_snapshot(text)
    good = write_eagle(tmp_path / "good.hdf5", physical_truth())[0]
    cut = tmp_path / "cut.hdf5"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(FileFormatError, match="truncated"):
        read_snapshot(cut)
    bare = tmp_path / "bare.hdf5"
    with h5py.File(bare, "w") as f:
        f.create_group("Header").attrs["NumPart_ThisFile"] = [1, 0, 0, 0, 0, 0]
        f.create_dataset("PartType0/Coordinates", data=np.zeros((1, 3)))
    with pytest.raises(FileFormatError, match="unknown snapshot flavour"):
        read_snapshot(bare)


# ---------------------------------------------------------------- GADGET-4
def test_gadget4_units_on_the_real_file(shared_file):
    with pytest.warns(UserWarning, match="fully ionised"):
        snap = read_snapshot(shared_file(G4))
    assert snap.flavour == "gadget4"
    assert snap.boxsize == pytest.approx(50.0 / 0.7, rel=1e-6)
    assert (snap.h, snap.scale_factor, snap.redshift) == (0.7, 1.0, 0.0)
    for p in snap.particles.values():  # comoving Mpc: the particles fill the box
        assert p.positions.min() >= 0 and 0.99 * snap.boxsize < p.positions.max() <= snap.boxsize
    volume = snap.boxsize**3
    rho_crit = snap.cosmology.critical_density0.to("Msun / Mpc3").value
    # Mean matter density of the box is Omega_m rho_crit (GADGET's Msun is 1.989e33 g: 3e-4)
    assert snap.total_mass / (0.3 * rho_crit * volume) == pytest.approx(1.0, abs=1e-3)
    assert snap.gas.masses.sum() / (0.04 * rho_crit * volume) == pytest.approx(1.0, abs=1e-3)
    # Gas density is physical Msun/Mpc^3: its median sits a few times above the mean baryon density
    assert 1.0 < np.median(snap.gas["density"]) / (0.04 * rho_crit) < 30.0
    # SPH volumes sum to about the box volume (0.67 measured; a wrong h^2 gives 0.33 or 1.4)
    assert 0.5 < np.sum(snap.gas.masses / snap.gas["density"]) / volume < 0.9
    t_max = snap.gas["temperature"].max()
    assert 1e7 < t_max < 1e8, t_max
    assert np.all(snap.gas["smoothing_length"] > 0)


def test_gadget4_internal_energy_gives_temperature_with_mu(shared_file):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snap = read_snapshot(shared_file(G4), particle_types=["gas"], fields=["temperature"])
    with h5py.File(shared_file(G4)) as f:
        u = f["PartType0/InternalEnergy"][()].astype(float) * 1e10  # (km/s)^2 -> erg/g
    mu = 4.0 / (3.0 + 5.0 * 0.76)
    np.testing.assert_allclose(snap.gas["temperature"], (2 / 3) * u * mu * 1.67262192369e-24 / 1.380649e-16, rtol=1e-6)


# ---------------------------------------------------------------- GIZMO
def test_gizmo_file_without_unit_attributes_needs_a_unit_system(shared_file):
    path = shared_file("gizmo_tiny_snapshot_600.hdf5")
    with pytest.raises(FileFormatError, match="unknown snapshot flavour"):
        read_snapshot(path)
    with pytest.warns(UserWarning, match="PartType2"):
        snap = read_snapshot(path, unit_system=GIZMO_UNITS)
    assert snap.flavour == "gadget"
    assert snap.boxsize == pytest.approx(60.0 / 0.702, rel=1e-6)
    assert set(snap.particles) == {"gas", "dm", "stars"} and len(snap.gas) == 3
    assert snap.gas["metallicity"].shape == (3,)
    t = snap.gas["temperature"]
    assert np.all((t > 1e3) & (t < 1e9))


def test_gizmo_multi_file_part_without_its_partner(shared_file, tmp_path):
    path = shared_file("gizmo_tiny_snapshot_500.0.hdf5")
    with pytest.raises(FileFormatError, match=r"needs 2 files; missing: .*500\.1\.hdf5"):
        read_snapshot(path, unit_system=GIZMO_UNITS)
    shutil.copy(path, tmp_path / "g.hdf5")  # the same file alone: header totals disagree
    with pytest.raises(FileFormatError, match="NumPart_Total"):
        read_snapshot(tmp_path / "g.hdf5", unit_system=GIZMO_UNITS)


# ---------------------------------------------------------------- SWIFT
def write_swift(path: Path, truth: dict, kernel_gamma: float | None = 1.825742) -> None:
    """SWIFT-style file: snapshot units Mpc, 1e10 Msun, no h; a-scale exponents."""
    u_l, u_m = MPC_CM, 1e10 * MSUN_G
    spec = {  # name -> (in-memory key, CGS of the snapshot unit, a-scale exponent, stored = f(phys))
        "Coordinates": (u_l, 1.0), "Masses": (u_m, 0.0), "Densities": (u_m / u_l**3, -3.0),
        "Temperatures": (1.0, 0.0), "SmoothingLengths": (u_l, 1.0),
    }
    src = {"Coordinates": "Coordinates", "Masses": "Mass", "Densities": "Density",
           "Temperatures": "Temperature", "SmoothingLengths": "SmoothingLength"}
    with h5py.File(path, "w") as f:
        gas, dm = truth["gas"], truth["dm"]
        for group, data in (("PartType0", gas), ("PartType1", dm)):
            g = f.create_group(group)
            for name, (cgs, aexp) in spec.items():
                key = src[name]
                if group == "PartType1" and key not in ("Coordinates", "Mass"):
                    continue
                value = np.full(len(dm["Coordinates"]), dm["mass"]) if (group == "PartType1" and key == "Mass") else data[key]
                in_cgs = {"Coordinates": MPC_CM, "Mass": MSUN_G, "Density": MSUN_G / MPC_CM**3,
                          "SmoothingLength": MPC_CM}.get(key, 1.0)
                a_factor = 1.0 if key in ("Coordinates", "SmoothingLength") else A**aexp
                stored = value * in_cgs / (cgs * a_factor)
                if key == "SmoothingLength":
                    stored = stored / 1.825742
                d = g.create_dataset(name, data=stored)
                d.attrs["Conversion factor to CGS (not including cosmological corrections)"] = [cgs]
                d.attrs["a-scale exponent"] = [aexp]
                d.attrs["h-scale exponent"] = [0.0]
        n = [len(gas["Coordinates"]), len(dm["Coordinates"]), 0, 0, 0, 0, 0]
        f.create_group("Header").attrs.update({
            "BoxSize": [BOX] * 3, "Scale-factor": [A], "Redshift": [Z], "NumPart_ThisFile": n,
            "NumPart_Total": n, "NumPart_Total_HighWord": [0] * 7, "NumFilesPerSnapshot": [1],
        })
        f.create_group("Cosmology").attrs.update({"h": [H], "Omega_m": [0.3], "Omega_lambda": [0.7],
                                                  "Omega_b": [0.045]})
        f.create_group("Units").attrs.update({"Unit length in cgs (U_L)": [u_l], "Unit mass in cgs (U_M)": [u_m]})
        f.create_group("Code").attrs["Code"] = "SWIFT"
        if kernel_gamma is not None:
            f.create_group("HydroScheme").attrs["Kernel gamma"] = [kernel_gamma]


def test_swift_round_trip(tmp_path):
    truth = physical_truth(seed=2)
    write_swift(tmp_path / "swift.hdf5", truth)
    snap = read_snapshot(tmp_path / "swift.hdf5")
    assert snap.flavour == "swift" and snap.boxsize == pytest.approx(BOX)
    assert (snap.h, snap.scale_factor) == pytest.approx((H, A))
    gas = truth["gas"]
    np.testing.assert_allclose(snap.gas.positions, gas["Coordinates"], rtol=1e-12)
    np.testing.assert_allclose(snap.gas.masses, gas["Mass"], rtol=1e-12)
    np.testing.assert_allclose(snap.gas["density"], gas["Density"], rtol=1e-12)
    np.testing.assert_allclose(snap.gas["temperature"], gas["Temperature"], rtol=1e-12)
    np.testing.assert_allclose(snap.gas["smoothing_length"], gas["SmoothingLength"], rtol=1e-12)
    np.testing.assert_allclose(snap.dm.masses, truth["dm"]["mass"], rtol=1e-12)


def test_swift_hubble_from_internal_units(tmp_path):
    write_swift(tmp_path / "swift.hdf5", physical_truth())
    u_t = MPC_CM / 1e5  # Mpc / (km/s)
    with h5py.File(tmp_path / "swift.hdf5", "r+") as f:
        del f["Cosmology"].attrs["h"]
        f["Cosmology"].attrs["H0 [internal units]"] = [100 * H]  # km/s/Mpc in units of 1/U_t
        f["Units"].attrs["Unit time in cgs (U_t)"] = [u_t]
    assert read_snapshot(tmp_path / "swift.hdf5").h == pytest.approx(H, rel=1e-12)


def test_swift_smoothing_length_needs_kernel_gamma(tmp_path):
    write_swift(tmp_path / "swift.hdf5", physical_truth(), kernel_gamma=None)
    with pytest.raises(FileFormatError, match="Kernel gamma"):
        read_snapshot(tmp_path / "swift.hdf5", fields=["smoothing_length"])
    assert "smoothing_length" not in read_snapshot(tmp_path / "swift.hdf5").gas


# ---------------------------------------------------------------- region reads
def _in_region(pos, centre, half, box):
    d = pos - centre
    d -= box * np.round(d / box)
    return np.all(np.abs(d) <= half, axis=1)


@pytest.mark.parametrize("centre", [(10.0, 10.0, 10.0), (19.5, 0.5, 10.0)])  # the second wraps
def test_region_read_equals_full_read_then_mask(tmp_path, monkeypatch, centre):
    import cmcore.readers.common as common

    monkeypatch.setattr(common, "CHUNK_ROWS", 7)  # many chunks per file
    truth = physical_truth(seed=5, n_gas=200, n_dm=300, n_star=40)
    write_eagle(tmp_path / "snap", truth, nfiles=3)
    full = read_snapshot(tmp_path / "snap")
    part = read_snapshot(tmp_path / "snap", region=(centre, 4.0))
    for kind, p in full.particles.items():
        sel = _in_region(p.positions, np.array(centre), 4.0, BOX)
        assert 0 < sel.sum() < len(p)
        np.testing.assert_array_equal(part.particles[kind].positions, p.positions[sel])
        np.testing.assert_array_equal(part.particles[kind].masses, p.masses[sel])
        for key in p.fields:
            np.testing.assert_array_equal(part.particles[kind][key], p[key][sel])


def test_region_read_of_the_real_gadget4_file(shared_file):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = read_snapshot(shared_file(G4), fields=["temperature"])
        part = read_snapshot(shared_file(G4), fields=["temperature"], region=([70.0, 1.0, 35.0], [5.0, 5.0, 10.0]))
    sel = _in_region(full.gas.positions.astype(float), np.array([70.0, 1.0, 35.0]), np.array([5.0, 5.0, 10.0]), full.boxsize)
    np.testing.assert_array_equal(part.gas["temperature"], full.gas["temperature"][sel])
    assert len(part.dm) == _in_region(full.dm.positions.astype(float), np.array([70.0, 1.0, 35.0]),
                                      np.array([5.0, 5.0, 10.0]), full.boxsize).sum()


def test_region_must_be_well_formed(tmp_path):
    write_eagle(tmp_path / "s.hdf5", physical_truth())
    with pytest.raises(InputError, match="region"):
        read_snapshot(tmp_path / "s.hdf5", region=((1.0, 2.0), 3.0))
    with pytest.raises(InputError, match="region"):
        read_snapshot(tmp_path / "s.hdf5", region=((1.0, 2.0, 3.0), -1.0))
