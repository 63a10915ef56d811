"""The physical floor of a universe and the best a one-image aperture can do, on a dataset's test haloes.

Usage::

    python bench/floor.py --universe models-work/universe --data models-work/paper.h5 [--out bench/results]

On the test split's haloes with 13.25 < log10 M200 < 14.5 (the masses are those the dataset's
labels carry):

- **floor**: log10 M200 regressed on the universe's true log10 Y500 (``synth.json`` targets,
  ``y500_intended``: the 3D quantity, no projection, no noise) — the scatter left by the
  gas physics alone; and the same on Y500, M_gas,500, T_X and the stellar masses together;
- **aperture, one image and four**: the classical Compton-y baseline (image + z) per image,
  and averaged over each halo's projections (in log) — how much of the aperture's scatter
  is projection (interlopers, triaxiality, noise), which a single image cannot average away.

The regressions are fitted on the dataset's training haloes and scored on the test haloes;
errors are bootstrap standard deviations over haloes (:mod:`cmcnn.evaluate.metrics`).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from cmcore.benchmarks import machine_info, write_result

RANGE = (13.25, 14.5)


def _halo_table(universe: Path) -> dict[int, dict]:
    t = json.loads((universe / "synth.json").read_text())["targets"]
    keys = ("y500_intended", "m_gas500_intended", "t_x", "mstar_central", "mstar_satellites", "m200")
    return {int(h): {k: float(t[k][i]) for k in keys} for i, h in enumerate(t["halo_id"])}


def _fit_score(x_train, y_train, x_test, y_test, halo_test) -> dict:
    from cmcnn.evaluate.metrics import table2

    a = np.column_stack([x_train, np.ones(len(y_train))])
    coef = np.linalg.lstsq(a, y_train, rcond=None)[0]
    pred = np.column_stack([x_test, np.ones(len(y_test))]) @ coef
    return table2(10.0 ** y_test, 10.0 ** pred, (-np.inf, np.inf), halo_id=halo_test).to_dict()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python bench/floor.py", description=__doc__.splitlines()[0])
    ap.add_argument("--universe", type=Path, required=True, help="the synth folder (synth.json)")
    ap.add_argument("--data", type=Path, required=True, help="the dataset drawn from it")
    ap.add_argument("--out", default="bench/results")
    args = ap.parse_args(argv)

    from cmcore.datafile import open_dataset, read_labels, split_code
    from cmcnn.evaluate.baseline import fit_baseline
    from cmcnn.evaluate.metrics import table2

    halos = _halo_table(args.universe)
    with open_dataset(args.data) as f:
        lab = read_labels(f, ("halo_id", "log10_m200", "split"))
    per_halo = {}
    for h, m, s in zip(lab["halo_id"].tolist(), lab["log10_m200"].tolist(), lab["split"].tolist()):
        per_halo[h] = (m, s)
    record: dict = {"benchmark": "floor", "machine": machine_info(), "universe": str(args.universe),
                    "data": str(args.data), "central_range": list(RANGE)}

    def split_haloes(code):
        ids = np.array(sorted(h for h, (m, s) in per_halo.items() if s == code and RANGE[0] < m < RANGE[1]))
        return ids, np.array([per_halo[h][0] for h in ids])

    tr_ids, tr_m = split_haloes(split_code("train"))
    te_ids, te_m = split_haloes(split_code("test"))

    def features(ids, names):
        return np.column_stack([np.log10([halos[h][n] for h in ids]) for n in names])

    record["floor_y500"] = _fit_score(features(tr_ids, ["y500_intended"]), tr_m,
                                      features(te_ids, ["y500_intended"]), te_m, te_ids)
    many = ["y500_intended", "m_gas500_intended", "t_x", "mstar_central", "mstar_satellites"]
    record["floor_all"] = _fit_score(features(tr_ids, many), tr_m, features(te_ids, many), te_m, te_ids)
    base = fit_baseline(args.data, ["Ypar"]).predictions["Ypar"]
    test = (base["split"] == "test") & (base["log10_m200_true"] > RANGE[0]) & (base["log10_m200_true"] < RANGE[1])
    record["aperture_one_image"] = table2(base["m200_true"][test], base["m200_pred"][test],
                                          halo_id=base["halo_id"][test]).to_dict()
    ids = base["halo_id"][test]
    uniq, inv = np.unique(ids, return_inverse=True)
    mean_pred = np.bincount(inv, base["log10_m200_pred"][test]) / np.bincount(inv)
    true = np.bincount(inv, base["log10_m200_true"][test]) / np.bincount(inv)
    record["aperture_four_projections"] = table2(10.0 ** true, 10.0 ** mean_pred, (-np.inf, np.inf),
                                                 halo_id=uniq).to_dict()
    record["n_test_halos"] = int(te_ids.size)
    lines = [f"test haloes, {RANGE[0]} < log M200 < {RANGE[1]}: {te_ids.size}"]
    for key, label in (("floor_y500", "floor: log M200 on the true log Y500 (3D)"),
                       ("floor_all", "floor: on Y500, M_gas500, T_X, M*_central, M*_satellites"),
                       ("aperture_one_image", "Compton-y aperture (image + z), one image"),
                       ("aperture_four_projections", "the same, averaged over each halo's projections")):
        t = record[key]
        lines.append(f"{label:58s} σ {t['scatter_dex']:.4f} ± {t['scatter_dex_se']:.4f} dex")
    write_result(args.out, "floor", record, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
