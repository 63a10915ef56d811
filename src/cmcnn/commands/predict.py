"""``cmc predict``: log10 M200 of survey cutouts through onnxruntime (never TensorFlow)."""
from __future__ import annotations

import argparse

NAME = "predict"
HELP = "predict M200 for FITS cutouts, .npy stacks or datasets with an exported ONNX model"

#: Refusals listed in full at the end; beyond this, a count (all go to --refusals FILE).
_SHOW = 200


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="ONNX model from `cmc export`, or a shipped model: Star, Fxs, Fxb, Ypar, multi")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="FITS cutouts (files, directories, quoted globs), .npy stacks, cmc dataset .h5 files")
    p.add_argument("--out", required=True, help="predictions table: .csv, .parquet (needs pyarrow) or .h5")
    p.add_argument("--batch-size", type=int, default=64, help="cutouts per inference call (default 64)")
    p.add_argument("--readers", type=int, default=2, help="threads reading and checking inputs (default 2)")
    p.add_argument("--threads", type=int, default=None, help="onnxruntime threads (default: one per core)")
    p.add_argument("--providers", default=None,
                   help="execution providers in order, e.g. cuda,cpu or cpu (default: CUDA when available, else CPU)")
    p.add_argument("--hdu", type=int, default=None, help="FITS HDU to read (default: the first holding an image)")
    p.add_argument("--pixel-scale-rtol", type=float, default=0.01,
                   help="relative tolerance on the WCS pixel scale (default 0.01)")
    p.add_argument("--no-wcs-check", action="store_true",
                   help="accept cutouts without a celestial WCS (their pixel scale is not checked)")
    p.add_argument("--fill-nonfinite", default="refuse", choices=("refuse", "zero", "median"),
                   help="NaN/inf pixels: refuse the cutout (default), or set them to 0 or to the "
                        "median of the channel's finite pixels")
    p.add_argument("--max-fill-fraction", type=float, default=0.1,
                   help="with --fill-nonfinite: refuse a channel with more NaN/inf pixels than this (default 0.1)")
    p.add_argument("--fits-reader", default="fast", choices=("fast", "astropy"),
                   help="fast: parse plain float FITS directly, astropy for the rest (default); "
                        "astropy: every file through astropy.io.fits")
    p.add_argument("--redshift", type=float, default=None, metavar="Z",
                   help="redshift-aware models: one redshift for every cutout (a catalogue row comes first; "
                        "without either, each cutout's REDSHIFT or Z header card, or a dataset's labels)")
    p.add_argument("--catalog", default=None, metavar="FILE",
                   help="redshift-aware models: a table (CSV, ECSV, FITS, ...) of cutout redshifts")
    p.add_argument("--catalog-columns", default="file,redshift", metavar="KEY,Z",
                   help="the catalogue's columns: the cutout's file path or base name (name[row] for a row of a "
                        "stack), and its redshift (default file,redshift)")
    p.add_argument("--extrapolate", action="store_true",
                   help="predict cutouts whose redshift lies outside the model's training range (refused otherwise)")
    p.add_argument("--scheduler", default=None, metavar="local[:N]|ADDRESS",
                   help="predict in shards on a dask.distributed cluster (a LocalCluster of N processes, or a "
                        "scheduler address); same table and refusals as without it")
    p.add_argument("--shard-size", type=int, default=None, metavar="N",
                   help="with --scheduler: cutouts per task, whole batches (default: about 4 tasks per "
                        "worker thread, at most 4096)")
    p.add_argument("--refusals", default=None, metavar="FILE",
                   help="also write every refusal (name<TAB>reason) to FILE")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or lines")


def run(args: argparse.Namespace) -> int:
    import sys

    from cmcnn.serve.cutouts import ReadOptions
    from cmcnn.serve.predict import predict_to_table

    if args.shard_size is not None and args.scheduler is None:
        from cmcore.errors import InputError

        raise InputError("--shard-size needs --scheduler")
    catalog = None
    if args.catalog is not None:
        from cmcnn.serve.redshift import read_catalog

        key, _, column = args.catalog_columns.partition(",")
        catalog = read_catalog(args.catalog, key=key.strip(), column=column.strip() or "redshift")
    options = ReadOptions(pixel_scale_rtol=args.pixel_scale_rtol, require_wcs=not args.no_wcs_check,
                          nonfinite=args.fill_nonfinite, max_fill_fraction=args.max_fill_fraction, hdu=args.hdu,
                          fits_reader=args.fits_reader, redshift=args.redshift, catalog=catalog,
                          extrapolate=args.extrapolate)
    s = predict_to_table(args.model, args.inputs, args.out, options=options, batch_size=args.batch_size,
                         readers=args.readers, providers=args.providers, threads=args.threads,
                         progress=not args.no_progress, scheduler=args.scheduler, shard_size=args.shard_size)
    if args.refusals:
        from cmcore.fileio import atomic_write

        with atomic_write(args.refusals) as tmp:
            tmp.write_text("".join(f"{n}\t{r}\n" for n, r in s.refusals))
    rate = s.n_inputs / s.seconds if s.seconds > 0 else 0.0
    print(f"cmc predict: {s.n_predicted} of {s.n_inputs} inputs predicted in {s.seconds:.1f} s "
          f"({rate:.0f}/s) -> {s.out}", file=sys.stderr)
    if s.refusals:
        print(f"cmc predict: {len(s.refusals)} input(s) refused:", file=sys.stderr)
        for name, reason in s.refusals[:_SHOW]:
            print(f"  {name}: {reason}", file=sys.stderr)
        if len(s.refusals) > _SHOW:
            print(f"  ... and {len(s.refusals) - _SHOW} more" + (f" (all in {args.refusals})" if args.refusals
                                                                 else " (--refusals FILE lists all)"),
                  file=sys.stderr)
        return 1
    return 0
