"""Where the realised haloes' M500 falls below the NFW M500 the relations are drawn at.

Usage: ``python bench/synth_m500_budget.py [--out bench/results]`` (writes
``synth-m500-budget.txt`` / ``.json``).

For a cool-core and a non-cool-core halo at three masses (median concentration, the
generator's own functions), prints: (1) the spherical M500 of NFW dark matter filling
M200 minus the V06 gas, over the NFW M500 (the gas profile's effect); (2) the share of
M200 inside R500 for the smooth NFW and for the subhaloes (Einasto, Springel et al. 2008),
and the mass inside the NFW R500 once 10 % of M200 is moved from the one to the other.
Triaxiality and the first-crossing rule are not modelled here.
"""
import argparse
import sys

import numpy as np

from cmcore.benchmarks import write_result
from cmcore.synth import relations as rel
from cmcore.synth.cosmo import rho_crit
from cmcore.synth.profiles import cumulative_mass, gas_model, radial_grid


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="bench/results", help="record folder (default bench/results)")
    args = p.parse_args(argv)
    rows, lines = [], []
    x = np.linspace(1e-4, 2.0, 200001)
    sub_cum = np.cumsum(rel.subhalo_number_density(x) * x**2)
    sub_cum /= sub_cum[np.searchsorted(x, 1.0)]
    for m200 in (3e13, 2e14, 8e14):
        c = float(rel.concentration_mean(m200))
        r200 = float(rel.r_delta(m200))
        x500 = float(rel.nfw_r500_over_r200(c)[0])
        r500 = x500 * r200
        m500 = m200 * float(rel.nfw_mu(c * x500) / rel.nfw_mu(c))
        parts, gas_ratio = [], {}
        for cc in (True, False):
            g = gas_model(m500, r500, float(rel.hot_gas_fraction_500(m500)), dict(rel.GAS_SHAPE[cc]),
                          float(rel.temperature_x(m500)), cc)
            r = radial_grid(r200, 1e-4 * r500)
            mg = cumulative_mass(r, g.density(r), g.shape["alpha"] / 2)
            mtot = (m200 - mg[-1]) * rel.nfw_mu(c * r / r200) / rel.nfw_mu(c) + mg
            k = np.flatnonzero(mtot / (4 / 3 * np.pi * r**3) < 500 * rho_crit(0.0))[0]
            gas_ratio["CC" if cc else "NCC"] = float(mtot[k] / m500)
            parts.append(f"{'CC' if cc else 'NCC'} {mtot[k] / m500:.3f}")
        nfw = float(rel.nfw_mu(c * x500) / rel.nfw_mu(c))
        sub = float(sub_cum[np.searchsorted(x, x500)])
        moved = 1 - rel.SHMF_FRACTION * (1 - sub / nfw)
        lines.append(f"M200 {m200:.0e} (c {c:.2f}, R500/R200 {x500:.3f}): NFW DM + gas M500 / NFW M500: "
                     f"{', '.join(parts)}; share of M200 in R500: NFW {nfw:.3f}, subhaloes {sub:.3f}; "
                     f"M(<R500_NFW) with subhaloes / M500_NFW {moved:.3f}")
        rows.append({"m200_msun": m200, "concentration": c, "r500_over_r200": x500,
                     "dm_plus_gas_m500_over_nfw_m500": gas_ratio, "share_in_r500_nfw": nfw,
                     "share_in_r500_subhaloes": sub, "m500_with_subhaloes_over_nfw_m500": float(moved)})
    table = "\n".join(lines)
    print(table)
    write_result(args.out, "synth-m500-budget", {"subhalo_mass_fraction": float(rel.SHMF_FRACTION), "rows": rows},
                 table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
