"""Signal-to-noise of the central galaxy in the Star images of a dataset (issue 11's target).

The noise-free image is the stored image minus its regenerated noise
(:func:`cmcore.datafile.noise_field`); the S/N is the brightest of the four central
pixels over the per-pixel noise rms (the standard deviation of an independent noise
field of the same image).  Usage::

    python docs/examples/star_central_snr.py DATA.h5 [--min-log-m200 13.5]
"""
import argparse

import h5py
import numpy as np

from cmcore.dataset import DatasetConfig, noise_field


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data")
    p.add_argument("--min-log-m200", type=float, default=13.5)
    args = p.parse_args()
    with h5py.File(args.data) as f:
        cfg = DatasetConfig.from_json(f.attrs["config"])
        k = list(cfg.channels).index("Star")
        logm, z, seeds = f["labels/log10_m200"][:], f["labels/redshift"][:], f["noise/seed"][:, k]
        rows = np.flatnonzero(logm >= args.min_log_m200)
        c = cfg.npix // 2
        snr = np.empty(rows.size)
        for n, i in enumerate(rows):
            clean = f["images/Star"][i].astype(np.float64) - noise_field("Star", int(seeds[i]), float(z[i]), cfg)
            sigma = np.std(noise_field("Star", int(seeds[i]) + 1, float(z[i]), cfg))
            snr[n] = clean[c - 1:c + 1, c - 1:c + 1].max() / sigma
    print(f"{args.data}: {rows.size} images with log M200 >= {args.min_log_m200}; central galaxy >= 5 sigma "
          f"in {100 * np.mean(snr >= 5):.1f} %; median S/N {np.median(snr):.3g}; "
          f"5th percentile {np.percentile(snr, 5):.3g}")


if __name__ == "__main__":
    main()
