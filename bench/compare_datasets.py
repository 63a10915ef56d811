"""Are two cmc dataset files the same data?  Every array equal, and which root attributes differ.

    python bench/compare_datasets.py A.h5 B.h5 [--out bench/results/NAME]

A dataset file records when and from which paths it was made, so a regenerated file has
another SHA-256 than the original even when every image and label is the same; this
compares what the networks see.  With ``--out`` the result is recorded as JSON + txt
(SHA-256 of both files, with the command, commit, machine and load average of every record).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def datasets(group, prefix: str = "") -> dict:
    import h5py

    out = {}
    for key, value in group.items():
        if isinstance(value, h5py.Dataset):
            out[prefix + key] = value
        else:
            out.update(datasets(value, prefix + key + "/"))
    return out


def compare(a: Path, b: Path) -> dict:
    import h5py

    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        da, db = datasets(fa), datasets(fb)
        common = sorted(set(da) & set(db))
        differ = [k for k in common if not np.array_equal(da[k][()], db[k][()])]
        attrs = sorted(k for k in set(fa.attrs) | set(fb.attrs)
                       if k not in fa.attrs or k not in fb.attrs
                       or not np.array_equal(np.asarray(fa.attrs[k]), np.asarray(fb.attrs[k])))
        return {"arrays": len(common), "only_in_a": sorted(set(da) - set(db)), "only_in_b": sorted(set(db) - set(da)),
                "arrays_differing": differ, "attributes_differing": attrs,
                "n_images": int(da["labels/log10_m200"].shape[0]) if "labels/log10_m200" in da else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--out", default=None, help="record as OUT.json and OUT.txt")
    args = ap.parse_args(argv)
    result = compare(Path(args.a), Path(args.b))
    same = not (result["arrays_differing"] or result["only_in_a"] or result["only_in_b"])
    text = (f"{args.a} vs {args.b}: {result['arrays']} arrays ({result['n_images']} images), "
            f"{'all equal' if same else 'DIFFERENT: ' + ', '.join(result['arrays_differing'])}; "
            f"root attributes that differ: {', '.join(result['attributes_differing']) or 'none'}")
    print(text)
    if args.out:
        from cmcore.benchmarks import write_result
        from cmcore.fileio import file_sha256

        out = Path(args.out)
        record = {"a": args.a, "b": args.b, "sha256_a": file_sha256(args.a), "sha256_b": file_sha256(args.b),
                  "same_data": same, **result}
        write_result(out.parent, out.name, record, text)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
