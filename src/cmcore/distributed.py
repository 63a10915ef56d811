"""Dataset rendering on a dask.distributed cluster, from an indexed snapshot.

``build_dataset(..., scheduler=...)`` (``cmc dataset --scheduler``) renders each
halo of the plan as one Dask task.  A task reads from the indexed snapshot
(:mod:`cmcore.indexed`) only the cells its images can reach — the union over
its projections of the boxes that cover the ±depth slab times the enlarged
field, grown by one cell — computes the per-particle signals of those particles,
and renders the images with a :class:`~cmcore.cellindex.CellIndex` on the
whole snapshot's grid.  That index visits the same particles in the same order
as the serial builder's index over the whole snapshot, so the images are
bit-identical to the serial build's.  The client is the single writer: it
stores each finished halo as a part file exactly as the serial builder does, so
a build interrupted either way resumes either way, and assembles the HDF5 file
at the end.  A worker that dies loses only its tasks: the scheduler runs them
again elsewhere.

Schedulers: ``local[:N]`` or an address, as :mod:`cmcore.scheduler` connects to them.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .scheduler import connect
from .errors import InputError


def check_indexed(snapshot: str | os.PathLike) -> None:
    """Refuse a snapshot that is not indexed (what the channels need is checked by the
    dataset builder for every snapshot, :func:`cmcore.observables.check_request`).

    Raises
    ------
    InputError
        The file is not an indexed snapshot.
    """
    from .readers.indexed import is_indexed

    if not is_indexed(snapshot):
        raise InputError(f"{snapshot} is not an indexed snapshot: a distributed build reads regions from one; "
                         f"run 'cmc index {snapshot} --out INDEXED' and build from INDEXED")


def halo_boxes(centre: np.ndarray, tasks: Sequence, config, cosmology, scale_factor: float,
               boxsize: float) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned boxes whose union covers every particle the images of one halo can use.

    For each image: the slab ``|d·n| <= depth`` times the field enlarged by the
    beam margin (:func:`cmcore.render.render_observed`), plus a pixel for CIC;
    along an oblique line of sight the slab is cut into segments about as long
    as the field is wide, one box each.  Centres are left unwrapped.
    """
    from .instrument import beam_margin_pixels, get_instrument
    from .observables import pixel_size_mpc
    from .projection import los_basis
    from .render import slab_depth

    inst = get_instrument(config.instrument)
    pix_arcsec = config.pixel_scale_arcsec
    big = config.npix + 2 * max(beam_margin_pixels(inst, ch, pix_arcsec) for ch in config.channels)
    depth = slab_depth(config.depth, boxsize)
    centres, halves = [], []
    for task in tasks:
        pixel = pixel_size_mpc(task.redshift, pix_arcsec, cosmology) / scale_factor
        reach = 0.5 * big * pixel + pixel
        u, v, n = los_basis(task.projection, task.azimuth)
        nseg = 1 if np.count_nonzero(n) == 1 else max(1, math.ceil(depth / reach))
        t = -depth + (np.arange(nseg) + 0.5) * (2.0 * depth / nseg)
        half = (depth / nseg) * np.abs(n) + reach * (np.abs(u) + np.abs(v))
        centres.append(centre + t[:, None] * n[None, :])
        halves.append(np.broadcast_to(half * (1.0 + 1e-6), (nseg, 3)))
    return np.concatenate(centres), np.concatenate(halves)


def render_halo(path: str, config, cosmology, centre: np.ndarray, r200: float, tasks: Sequence,
                stacks) -> dict[str, np.ndarray]:
    """Images of one halo's tasks, reading only their region of the indexed snapshot (a Dask task).

    ``stacks(snapshot, config, cosmology, ncell, centre, r200, tasks)`` renders them
    from the region read (the dataset builder's renderer, given by the caller)
    and returns ``{channel: float32 (len(tasks), npix, npix)}``, as the serial
    builder's part files hold them.
    """
    from .readers.indexed import open_indexed
    from .observables import snapshot_request

    src = open_indexed(path)
    ptypes, optional = snapshot_request(config.channels, scheme=config.scheme)
    centres, halves = halo_boxes(np.asarray(centre, dtype=np.float64), tasks, config, cosmology,
                                 src.scale_factor, src.boxsize)
    snap = src.read_boxes(centres, halves, particle_types=ptypes, fields=[], optional_fields=optional, grow=1)
    return stacks(snap, config, cosmology, src.ncell, np.asarray(centre, dtype=np.float64), r200, tasks)


def render_parts(scheduler: str, snapshot: Path, config, cosmology, jobs: Sequence, *, stacks, save,
                 progress: bool = True) -> None:
    """Render ``jobs`` = [(halo_id, centre, r200, tasks, part_path)] on ``scheduler``.

    Each job is a :func:`render_halo` task with the renderer ``stacks``; the
    caller's ``save(part_path, images)`` writes each result as it arrives, in
    this process only (one writer), and the result is then released on the
    cluster.
    """
    from dask.distributed import as_completed

    from .progress import progress_bar

    path = str(Path(snapshot).resolve())
    bar = progress_bar(total=sum(len(j[3]) for j in jobs), unit="img", desc="rendering", disable=not progress)
    with connect(scheduler) as client:
        futures = {}
        for hid, centre, r200, tasks, part in jobs:
            fut = client.submit(render_halo, path, config, cosmology, centre, r200, tasks, stacks, pure=False,
                                key=f"cmc-halo-{hid}-{os.getpid()}-{id(jobs)}")
            futures[fut] = (part, len(tasks))
        try:
            for fut in as_completed(futures):
                # forget the future once saved: the worker then drops its images, so that a
                # worker holds the halo it renders, not every halo it has rendered
                part, n = futures.pop(fut)
                save(part, fut.result())
                bar.update(n)
        except BaseException:
            client.cancel(list(futures))
            raise
        finally:
            bar.close()
