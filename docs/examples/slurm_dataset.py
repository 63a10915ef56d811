"""Render a paper-protocol dataset on a SLURM cluster with dask-jobqueue.

Workers are SLURM jobs of ``--cores`` single-threaded Dask worker processes each;
every halo is one task that reads only its ±50 Mpc column from the indexed
snapshot, and this process (the client, on the login node or in its own small
job) is the single writer of the dataset file.  Rerun the same command after an
interruption: finished haloes are kept (``OUT.parts/``), the rest are rendered.

    pip install "dask-jobqueue>=0.9"        # beside cmc, in the environment the jobs use
    cmc index snap_032.0.hdf5 --out snap_032.indexed.hdf5
    python slurm_dataset.py snap_032.indexed.hdf5 --halos eagle_subfind_tab_032.0.hdf5 \
        --out bahamas.h5 --jobs 8 --cores 16 --memory 32GB --queue compute --account myproject \
        --venv ~/venvs/cmc
    python slurm_dataset.py ... --dry-run   # print the SLURM job script and stop

The images are identical to ``cmc dataset`` without a cluster, whatever the
number of jobs or workers.
"""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("indexed", help="indexed snapshot (cmc index)")
    p.add_argument("--halos", required=True, help="halo catalogue (cmc-halos, SUBFIND/FoF HDF5)")
    p.add_argument("--out", required=True, help="dataset file to create, complete or extend")
    p.add_argument("--per-bin", type=int, default=200, help="haloes per mass bin (default 200)")
    p.add_argument("--jobs", type=int, default=4, help="SLURM jobs of workers (default 4)")
    p.add_argument("--cores", type=int, default=8, help="cores per job = worker processes per job (default 8)")
    p.add_argument("--memory", default="16GB", help="memory per job (default 16GB; ~2 GB per worker is ample)")
    p.add_argument("--walltime", default="02:00:00", help="job time limit (default 02:00:00)")
    p.add_argument("--queue", default=None, help="SLURM partition")
    p.add_argument("--account", default=None, help="SLURM account")
    p.add_argument("--venv", default=None, help="virtual environment with cmc, activated in each job")
    p.add_argument("--dry-run", action="store_true", help="print the job script and stop")
    args = p.parse_args(argv)

    from dask.distributed import Client
    from dask_jobqueue import SLURMCluster

    prologue = ["export OMP_NUM_THREADS=1"]          # one thread per worker: images do not depend on it
    if args.venv:
        prologue.insert(0, f"source {args.venv}/bin/activate")
    cluster = SLURMCluster(
        queue=args.queue, account=args.account,
        cores=args.cores, processes=args.cores,       # single-threaded worker processes
        memory=args.memory, walltime=args.walltime,
        job_script_prologue=prologue,
        python=f"{args.venv}/bin/python" if args.venv else None,   # the jobs' Python, not this one's
        local_directory="$TMPDIR",                    # Dask's spill space on the node's local disk
    )
    if args.dry_run:
        print(cluster.job_script())
        cluster.close()
        return 0

    from cmcore.dataset import DatasetConfig, build_dataset

    with cluster, Client(cluster) as client:
        cluster.scale(jobs=args.jobs)
        client.wait_for_workers(1)                    # start as soon as the first job runs
        summary = build_dataset(args.indexed, args.halos, args.out, DatasetConfig(per_bin=args.per_bin),
                                scheduler=cluster.scheduler_address)
    print(f"{summary.path}: {summary.n_new} new images ({summary.n_images} in all) in {summary.seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
