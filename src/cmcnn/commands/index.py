"""``cmc index``: write a spatially sorted, chunked copy of a snapshot for region reads."""
from __future__ import annotations

import argparse

NAME = "index"
HELP = ("write an indexed snapshot (particles sorted by cell, with a cell table) so that a cluster's column "
        "or a halo's sphere is read without loading the snapshot; resumable")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .halos import _unit_system

    p.add_argument("snapshot", help="snapshot (EAGLE/BAHAMAS, GADGET-4 or SWIFT HDF5; any file of a multi-file set)")
    p.add_argument("--out", required=True, help="indexed snapshot to write (HDF5); rerun to resume")
    p.add_argument("--types", default=None, metavar="gas,dm,stars",
                   help="particle types to index (default: every type the snapshot has)")
    p.add_argument("--chunk-rows", type=int, default=1 << 22, metavar="N",
                   help="particles read and sorted at a time; bounds the memory (default 4194304)")
    p.add_argument("--unit-system", type=_unit_system, default=None, metavar="LENGTH_CM:MASS_G:VELOCITY_CM_S",
                   help="code units of a plain GADGET/GIZMO file without unit attributes")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from cmcore.indexed import write_indexed

    types = [t.strip() for t in args.types.split(",") if t.strip()] if args.types else None
    summary = write_indexed(args.snapshot, args.out, particle_types=types, chunk_rows=args.chunk_rows,
                            unit_system=args.unit_system, progress=not args.no_progress)
    counts = ", ".join(f"{n} {t}" for t, n in summary.counts.items())
    fields = "; ".join(f"{t}: {', '.join(f) or 'positions, masses'}" for t, f in summary.fields.items())
    print(f"{summary.path}: {counts} particles indexed in {summary.seconds:.1f} s"
          f"{' (resumed)' if summary.resumed else ''}; fields {fields}")
    return 0
