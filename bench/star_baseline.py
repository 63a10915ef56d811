"""What limits the classical Star estimator (issue 11): scatter of log M200 against the aperture.

On a cmc dataset (the paper preset's ``paper.h5``) this measures, for the ``Star``
channel, the estimator of :mod:`cmcnn.evaluate.baseline` (stellar mass in an aperture, a power
law fitted on the training split, the aperture chosen on the validation split, the
test split scored over 13.25 < log M200 < 14.5) under three readings of the noise,
all from the same images:

* ``noise-free``: the image minus its recorded noise (:func:`cmcore.datafile.noise_field`
  regenerates it exactly; the ``paper`` Star channel has no beam);
* ``paper``: the dataset as it is (2.14e5 M☉ kpc⁻² per pixel);
* ``paper-literal``: noise-free plus the same Gaussian deviates scaled to 2.14e11 M☉ per
  pixel (÷ the pixel area S), which is what a ``paper-literal`` dataset drawn with the same
  seeds holds (``draw_noise`` is ``normal(0, rms)``).

and, to find where the scatter comes from: the test scatter of every fixed physical
aperture 0.01–0.7 Mpc and of the whole 20′ field (apertures larger than the half-field at
some redshift on the images where they fit, beside 0.35 Mpc on the same images); a
regression on all apertures ≤ 0.35 Mpc at once; apertures f·R200 with the true R200 (an
oracle: it uses the label) and with R200 of the estimator's own mass, iterated to a fixed
point (a legitimate estimator); and, from ``synth.json``, the scatter of log M200 at
fixed 3D stellar quantities of the same haloes (the floor of the universe's relations).

Usage::

    PYTHONPATH=src python bench/star_baseline.py /work/runs/paper.h5 \\
        --synth /work/runs/universe/synth.json --out bench/results

writes ``star_baseline.json`` and ``star_baseline.md`` (≈ 1 min, < 2 GB).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from astropy import units as u

from cmcore.benchmarks import machine_info, record_context
from cmcore.datafile import DatasetConfig, noise_field, open_dataset
from cmcore.fileio import atomic_write
from cmcore.halos import cosmology_from_json
from cmcore.instrument import LITERAL_STAR_NOISE_MSUN, PAPER_STAR_NOISE
from cmcore.observables import pixel_area_kpc2
from cmcnn.evaluate.baseline import Aperture, _choose, candidate_apertures, enclosed_sums, pixel_radii
from cmcnn.evaluate.metrics import CENTRAL_RANGE, table2

RADII_MPC = (0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.5, 0.7)
FRACTIONS_R200 = (0.1, 0.15, 0.2, 0.3, 0.4, 0.5)
CHUNK = 200


def _sigma(pred: np.ndarray, log_m: np.ndarray, sel: np.ndarray) -> float:
    return float(np.std(pred[sel] - log_m[sel]))


def _ols(features: np.ndarray, y: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Least-squares coefficients (intercept first) of y on the columns of ``features``."""
    a = np.column_stack([np.ones(len(y)), features])
    return np.linalg.lstsq(a[train], y[train], rcond=None)[0]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data")
    p.add_argument("--synth", help="synth.json of the dataset's universe (3D stellar floor)")
    p.add_argument("--out", default="bench/results")
    args = p.parse_args()
    t0 = time.perf_counter()
    with open_dataset(args.data) as f:
        config = DatasetConfig.from_json(f.attrs["config"])
        cosmo = cosmology_from_json(f.attrs["cosmology"])
        pix = float(f.attrs["pixel_scale_arcsec"])
        npix = int(f.attrs["npix"])
        lab = {k: f[f"labels/{k}"][:] for k in ("log10_m200", "m200", "redshift", "split", "halo_id",
                                                "theta200_arcmin")}
        seeds = f["noise/seed"][:, list(f["noise/seed"].attrs["channels"]).index("Star")]
        if config.instrument != "paper":
            raise SystemExit(f"{args.data}: made with instrument {config.instrument!r}, this needs 'paper'")
        z, log_m, split = lab["redshift"].astype(float), lab["log10_m200"], lab["split"]
        n = z.size
        d_a = cosmo.angular_diameter_distance(z).to_value(u.Mpc)
        area = np.array([pixel_area_kpc2(zi, pix, cosmo) for zi in z])  # kpc² per pixel
        pixel_arcmin = pix / 60.0
        half = npix * pixel_arcmin / 2.0
        cands = [a for a in candidate_apertures() if a.theta_arcmin(d_a).max() <= half * (1 + 1e-9)]
        fixed = [Aperture("physical", r) for r in RADII_MPC]
        # every pixel radius inside the half-field: the enclosed-mass profile of each image
        prof_r = np.unique(np.round(pixel_radii(npix, pixel_arcmin).ravel(), 9))
        prof_r = prof_r[prof_r <= half + 1e-9]
        theta = np.concatenate([np.stack([a.theta_arcmin(d_a) for a in cands + fixed], 1),
                                np.full((n, 1), np.inf), np.broadcast_to(prof_r, (n, prof_r.size))], 1)
        sums, noise_sums = np.empty(theta.shape), np.empty(theta.shape)
        for s in range(0, n, CHUNK):
            e = min(s + CHUNK, n)
            img = f["images/Star"][s:e].astype(np.float64)
            noise = np.stack([noise_field("Star", int(seeds[k]), float(z[k]), config, cosmo) for k in range(s, e)])
            sums[s:e] = enclosed_sums(img, theta[s:e], pixel_arcmin) * area[s:e, None]   # M☉
            noise_sums[s:e] = enclosed_sums(noise, theta[s:e], pixel_arcmin) * area[s:e, None]
    nc, nf = len(cands), len(fixed)
    literal_scale = (LITERAL_STAR_NOISE_MSUN / area) / PAPER_STAR_NOISE   # per image
    readings = {"noise-free": (sums - noise_sums, np.zeros_like(noise_sums)),
                "paper": (sums, noise_sums),
                "paper-literal": (sums - noise_sums + noise_sums * literal_scale[:, None],
                                  noise_sums * literal_scale[:, None])}
    train, central = split == 0, (log_m > CENTRAL_RANGE[0]) & (log_m < CENTRAL_RANGE[1])
    test = (split == 2) & central
    record: dict = {"benchmark": "star_baseline", "machine": machine_info(), "data": str(args.data),
                    "command": "PYTHONPATH=src python " + " ".join(sys.argv), "central_range": list(CENTRAL_RANGE),
                    "n_test_central": int(test.sum()),
                    "no_information_sigma_dex": float(np.std(log_m[test])), "estimator": {}, "apertures": [], "whole_field": {}}

    # 1. the estimator of cmcnn.evaluate.baseline under the three readings
    for name, (x, xn) in readings.items():
        fit, pred = _choose("Star", cands, x[:, :nc], xn[train][:, :nc], log_m, split)
        t2 = table2(lab["m200"][split == 2], 10.0 ** pred[split == 2]).to_dict()
        rms_noise = np.sqrt(np.mean(xn[:, nc + RADII_MPC.index(0.35)] ** 2))
        record["estimator"][name] = {"aperture": fit.aperture.label, "slope": fit.slope, "intercept": fit.intercept,
                                     "sigma_dex": t2["scatter_dex"], "table2": t2,
                                     "noise_rms_over_median_signal_0.35Mpc": float(
                                         rms_noise / np.median(readings["noise-free"][0][:, nc + RADII_MPC.index(0.35)]))}

    # 2. fixed physical apertures (and the whole field), fitted on train, scored on test
    x_free, x_pap = readings["noise-free"][0], readings["paper"][0]
    k35 = nc + RADII_MPC.index(0.35)
    for j, a in enumerate(fixed + [None]):
        k = nc + j
        fits = (np.ones(n, bool) if a is None else a.theta_arcmin(d_a) <= half * (1 + 1e-9))
        row = {"aperture": "whole field" if a is None else a.label, "fraction_of_images": float(fits.mean())}
        for name in ("noise-free", "paper"):
            lx = np.log10(readings[name][0][:, k])
            c = _ols(lx, log_m, train & fits)
            row[name] = {"slope": float(c[1]), "sigma_dex": _sigma(c[0] + c[1] * lx, log_m, test & fits)}
        if not fits.all():  # 0.35 Mpc on the same images, for a fair comparison
            lx = np.log10(x_pap[:, k35])
            c = _ols(lx, log_m, train & fits)
            row["paper_0.35Mpc_same_images"] = _sigma(c[0] + c[1] * lx, log_m, test & fits)
        row["n_test_central"] = int((test & fits).sum())
        (record["apertures"].append(row) if a is not None else record.__setitem__("whole_field", row))

    # annuli r1 < R < 0.35 Mpc: the stars without the central galaxy
    record["annuli"] = []
    for r1 in (0.02, 0.05, 0.1, 0.15):
        lx = np.log10(x_pap[:, k35] - x_pap[:, nc + RADII_MPC.index(r1)])
        c = _ols(lx, log_m, train)
        record["annuli"].append({"inner_mpc": r1, "outer_mpc": 0.35, "slope": float(c[1]),
                                 "sigma_dex": _sigma(c[0] + c[1] * lx, log_m, test)})

    # 3. every aperture <= 0.35 Mpc at once (a multi-linear "profile" estimator)
    ks = [nc + j for j, r in enumerate(RADII_MPC) if r <= 0.35]
    c = _ols(np.log10(x_pap[:, ks]), log_m, train)
    record["multi_aperture_le_0.35Mpc"] = {"n_apertures": len(ks), "sigma_dex": _sigma(
        np.column_stack([np.ones(n), np.log10(x_pap[:, ks])]) @ c, log_m, test)}

    # 4. apertures f·R200: oracle (true R200) and self-consistent (R200 of the estimate)
    prof = x_pap[:, nc + nf + 1:]
    rho_c = cosmo.critical_density(z).to_value(u.Msun / u.Mpc**3)

    def x_within(theta_arcmin):
        i = np.searchsorted(prof_r, np.minimum(theta_arcmin, half), side="right") - 1
        return prof[np.arange(n), np.maximum(i, 0)]

    def theta_r200(lm, frac):
        r200 = (3.0 * 10.0**lm / (4.0 * math.pi * 200.0 * rho_c)) ** (1.0 / 3.0)
        return np.degrees(frac * r200 / d_a) * 60.0

    record["scaled"] = []
    for frac in FRACTIONS_R200:
        th_true = frac * lab["theta200_arcmin"]
        fits = th_true <= half
        lx = np.log10(x_within(th_true))
        c = _ols(lx, log_m, train & fits)
        oracle = _sigma(c[0] + c[1] * lx, log_m, test & fits)
        # self-consistent: calibrate on train with the true-mass aperture, then iterate
        lx_cal = np.log10(x_within(theta_r200(log_m, frac)))
        c = _ols(lx_cal, log_m, train)
        est = np.full(n, 14.0)
        for _ in range(200):
            new = c[0] + c[1] * np.log10(np.maximum(x_within(theta_r200(est, frac)), 1.0))
            done = np.max(np.abs(new - est)) < 1e-6
            est = 0.5 * (est + new)
            if done:
                break
        record["scaled"].append({"fraction_r200": frac, "oracle_sigma_dex": oracle,
                                 "oracle_fraction_fits": float(fits.mean()),
                                 "self_consistent_sigma_dex": _sigma(est, log_m, test),
                                 "self_consistent_clipped_fraction": float(np.mean(theta_r200(est, frac)[test] > half))})

    # 5. the floor of the universe: log M200 at fixed 3D stellar quantities of the same haloes
    if args.synth:
        t = json.loads(Path(args.synth).read_text())["targets"]
        hid = np.asarray(t["halo_id"])
        used = np.isin(hid, np.unique(lab["halo_id"]))
        lm3 = np.log10(np.asarray(t["m200"]))
        cen3 = used & (lm3 > CENTRAL_RANGE[0]) & (lm3 < CENTRAL_RANGE[1])
        g = {k: np.asarray(t[k], dtype=float) for k in ("m500", "mstar_central", "mstar_bcg", "mstar_icl",
                                                       "mstar_satellites", "mstar_sat500_intended", "n_satellites")}
        bi = g["mstar_bcg"] + g["mstar_icl"]
        quantities = {"M500": g["m500"], "M*(<50 kpc)": g["mstar_central"], "BCG + ICL": bi,
                      "satellites (all, to 2 R200)": g["mstar_satellites"], "N satellites": g["n_satellites"],
                      "BCG + ICL + satellites (all)": bi + g["mstar_satellites"],
                      "BCG + ICL + satellites in R500 (drawn)": bi + g["mstar_sat500_intended"]}
        floor = {}
        for name, q in quantities.items():
            lq = np.log10(q)
            cc = _ols(lq, lm3, cen3)
            floor[name] = {"slope": float(cc[1]), "sigma_dex": _sigma(cc[0] + cc[1] * lq, lm3, cen3)}
        idx = {h: i for i, h in enumerate(hid)}
        j = np.array([idx[h] for h in lab["halo_id"]])
        record["floor_3d"] = {"n_halos": int(cen3.sum()), "fit": "OLS of log M200 on log q over the haloes "
                              "with 13.25 < log M200 < 14.5", "quantities": floor,
                              "median_X0.35Mpc_over_BCG_ICL": float(np.median((x_free[:, k35] / bi[j])[central])),
                              "median_X0.35Mpc_over_all_stars": float(np.median(
                                  (x_free[:, k35] / (bi + g["mstar_satellites"])[j])[central]))}
    record["seconds"] = time.perf_counter() - t0
    record.update(record_context())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "star_baseline.json") as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n")
    with atomic_write(out / "star_baseline.md") as tmp:
        tmp.write_text(_markdown(record))
    print(_markdown(record))
    return 0


def _markdown(r: dict) -> str:
    m = r["machine"]
    lines = [f"# The Star baseline: what limits it — {m.get('cpu_model')}, {m.get('usable_cores')} cores, "
             f"{m.get('date_utc')}", "", f"`{r['command']}` ({r['seconds']:.0f} s). Test images with "
             f"{r['central_range'][0]} < log M200 < {r['central_range'][1]} (n = {r['n_test_central']}); σ: standard "
             "deviation of log10(M_pred/M_true); an estimator without information (the mean) has σ = "
             f"{r['no_information_sigma_dex']:.3f} there.", "", "## The estimator (`cmcnn.evaluate.baseline`) under three noise readings",
             "", "| reading | aperture (chosen on validation) | slope β | σ (dex) | noise rms / median signal in 0.35 Mpc |",
             "|---|---|---:|---:|---:|"]
    for name, e in r["estimator"].items():
        lines.append(f"| {name} | {e['aperture']} | {e['slope']:.2f} | {e['sigma_dex']:.3f} | "
                     f"{e['noise_rms_over_median_signal_0.35Mpc']:.2g} |")
    lines += ["", "## Fixed physical apertures (fitted on train, scored on test)", "",
              "| aperture | images where it fits | σ noise-free | σ paper | slope (paper) | σ of 0.35 Mpc on the same images |",
              "|---|---:|---:|---:|---:|---:|"]
    for a in r["apertures"] + [r["whole_field"]]:
        same = a.get("paper_0.35Mpc_same_images")
        lines.append(f"| {a['aperture']} | {a['fraction_of_images']:.0%} | {a['noise-free']['sigma_dex']:.3f} | "
                     f"{a['paper']['sigma_dex']:.3f} | {a['paper']['slope']:.2f} | "
                     f"{'' if same is None else f'{same:.3f}'} |")
    lines += ["", "Annuli to 0.35 Mpc (paper): " + "; ".join(
        f"{a['inner_mpc']:g}–{a['outer_mpc']:g} Mpc σ = {a['sigma_dex']:.3f}" for a in r["annuli"]) + "."]
    lines += ["", f"All {r['multi_aperture_le_0.35Mpc']['n_apertures']} apertures ≤ 0.35 Mpc in one linear regression: "
              f"σ = {r['multi_aperture_le_0.35Mpc']['sigma_dex']:.3f} dex.", "",
              "## Apertures scaled with R200", "",
              "| f | oracle f·R200,true: σ (images where it fits) | self-consistent f·R200(M_est): σ (clipped to the field) |",
              "|---:|---:|---:|"]
    for s in r["scaled"]:
        lines.append(f"| {s['fraction_r200']:g} | {s['oracle_sigma_dex']:.3f} ({s['oracle_fraction_fits']:.0%}) | "
                     f"{s['self_consistent_sigma_dex']:.3f} ({s['self_consistent_clipped_fraction']:.0%}) |")
    if "floor_3d" in r:
        fl = r["floor_3d"]
        lines += ["", f"## The universe's floor: log M200 at fixed 3D stellar quantities ({fl['n_halos']} haloes)", "",
                  "| quantity q | slope of log M200 on log q | σ (dex) |", "|---|---:|---:|"]
        for name, q in fl["quantities"].items():
            lines.append(f"| {name} | {q['slope']:.2f} | {q['sigma_dex']:.3f} |")
        lines += ["", f"Median X(<0.35 Mpc) / (BCG + ICL) = {fl['median_X0.35Mpc_over_BCG_ICL']:.2f}; "
                  f"X(<0.35 Mpc) / all stars of the halo = {fl['median_X0.35Mpc_over_all_stars']:.2f}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
