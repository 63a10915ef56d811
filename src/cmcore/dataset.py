"""Training-set builder: paper-protocol image datasets (Yan et al. 2020, §2.1–2.2), resumable and crash-safe.

Every random number is keyed by what it decides (bin, halo, projection, channel), never by
the order of the work, so serial, threaded, distributed and resumed builds hold the same
images.  The file format is :mod:`cmcore.datafile`; protocol, layout and resumption are in
``docs/dataset.md``.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from ._version import __version__
from .errors import FileFormatError, InputError
from .datafile import (CHANNEL_CODE, FORMAT, FORMAT_VERSION, PROJECTION_CODE, SPLIT_NAMES,
                       DatasetConfig, channel_units, distance_cosmology, instrument_description, open_dataset)
from .fileio import atomic_write, file_sha256, remove_stale_temporaries

_PURPOSE_SELECT, _PURPOSE_IMAGE, _PURPOSE_SPLIT = 0x5E1EC7, 0x1AA6E, 0x5B117


@dataclass(frozen=True)
class ImageTask:
    """One image of the plan: a halo seen along one projection."""

    halo_index: int
    halo_id: int
    projection: str
    azimuth: float
    redshift: float
    noise_seeds: tuple[int, ...]

    @property
    def key(self) -> tuple[int, str]:
        return (self.halo_id, self.projection)


@dataclass
class DatasetSummary:
    """What :func:`build_dataset` did."""

    path: Path
    n_images: int
    n_new: int
    n_halos: int
    per_bin_counts: list[int]
    seconds: float
    warnings: list[str] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        return self.n_new / self.seconds if self.seconds > 0 else float("nan")


# ----------------------------------------------------------------------------------
# Selection and plan (pure functions of the catalogue and the config)
# ----------------------------------------------------------------------------------


def _uniforms(*key: int, n: int) -> np.ndarray:
    """``n`` uniforms in [0, 1) from a seed sequence keyed by integers."""
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key])).random(n)


def select_halos(halo_id: np.ndarray, m200: np.ndarray, config: DatasetConfig) -> tuple[np.ndarray, list[int], list[str]]:
    """Choose up to ``config.per_bin`` haloes per mass bin, as in the paper.

    Parameters
    ----------
    halo_id, m200
        Catalogue columns (M200 in M☉).
    config
        Build settings.

    Returns
    -------
    rows : ndarray of int
        Catalogue rows selected, ordered by bin then by the bin's seeded permutation.
    counts : list of int
        Haloes selected per bin.
    messages : list of str
        One warning per bin that holds no halo.
    """
    halo_id = np.asarray(halo_id, dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        logm = np.log10(np.asarray(m200, dtype=float))
    edges = config.bin_edges
    rows, counts, messages = [], [], []
    for k in range(len(edges) - 1):
        lo, hi = edges[k], edges[k + 1]
        last = k == len(edges) - 2
        inside = (logm >= lo) & ((logm <= hi) if last else (logm < hi))
        members = np.flatnonzero(inside)
        if members.size == 0:
            messages.append(f"mass bin {lo:.2f}-{hi:.2f} holds no halo; continuing without it")
            counts.append(0)
            continue
        members = members[np.argsort(halo_id[members], kind="stable")]
        order = np.argsort(_uniforms(config.seed, _PURPOSE_SELECT, k, n=members.size), kind="stable")
        chosen = members[order[: config.per_bin]]
        rows.append(chosen)
        counts.append(int(chosen.size))
    sel = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    return sel, counts, messages


def plan_images(rows: np.ndarray, halo_id: np.ndarray, config: DatasetConfig) -> list[ImageTask]:
    """Azimuth, redshift and noise seeds of every image, keyed by halo and projection."""
    tasks = []
    z0, z1 = config.z_range
    for row in rows:
        hid = int(halo_id[row])
        for proj in config.projections:
            ss = np.random.SeedSequence([config.seed, _PURPOSE_IMAGE, hid & 0xFFFFFFFFFFFF, PROJECTION_CODE[proj]])
            u = np.random.default_rng(ss).random(2)
            seeds = tuple(
                int(np.random.SeedSequence([config.seed, _PURPOSE_IMAGE, hid & 0xFFFFFFFFFFFF, PROJECTION_CODE[proj], CHANNEL_CODE[c]]).generate_state(1, np.uint64)[0])
                for c in config.channels
            )
            tasks.append(ImageTask(int(row), hid, proj, float(2 * np.pi * u[0]), float(z0 + (z1 - z0) * u[1]), seeds))
    return tasks


def split_of(halo_id: np.ndarray, seed: int, fractions: Sequence[float] = (0.6, 0.2, 0.2)) -> np.ndarray:
    """Train (0) / validation (1) / test (2) split of haloes, stable under appends.

    Each halo's split depends only on the seed and its id, through a uniform number
    drawn from ``SeedSequence([seed, ·, halo_id])``: no halo is ever in two splits,
    the split of a halo never changes when more haloes are added, and the fractions
    hold in expectation (to binomial scatter).
    """
    halo_id = np.asarray(halo_id, dtype=np.int64)
    cuts = np.cumsum(fractions)[:2]
    out = np.empty(halo_id.size, dtype=np.uint8)
    cache: dict[int, int] = {}
    for i, hid in enumerate(halo_id.tolist()):
        if hid not in cache:
            u = _uniforms(seed, _PURPOSE_SPLIT, hid & 0xFFFFFFFFFFFF, n=1)[0]
            cache[hid] = int(np.searchsorted(cuts, u, side="right"))
        out[i] = cache[hid]
    return out


# ----------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------


def _atomic_savez(path: Path, **arrays: np.ndarray) -> None:
    with atomic_write(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def _part_path(parts: Path, halo_id: int) -> Path:
    return parts / f"halo_{halo_id}.npz"


def _existing_keys(path: Path) -> tuple[DatasetConfig, dict, list[tuple[int, str]]]:
    with open_dataset(path) as f:
        config = DatasetConfig.from_json(f.attrs["config"])
        sources = {k: f.attrs[k] for k in ("source_snapshot_sha256", "source_halos_sha256")}
        ids = f["labels/halo_id"][:]
        projs = [p.decode() for p in f["labels/projection"][:]]
    return config, sources, list(zip(ids.tolist(), projs))


# ----------------------------------------------------------------------------------
# Build
# ----------------------------------------------------------------------------------


class _Renderer:
    """Renders the observed channels of one image; shared by the worker threads.

    Per-particle signals (M*, L_soft, L_bol, Υ) do not depend on the placement, so
    they and the cell indexes are computed once per snapshot.
    """

    def __init__(self, snapshot, config: DatasetConfig, cosmology, nthreads: int, workers: int = 1,
                 ncell: dict[str, int] | None = None) -> None:
        from .cellindex import CellIndex
        from .observables import particle_signals

        self.snapshot = snapshot
        self.config = config
        self.cosmology = cosmology
        self.nthreads = nthreads
        self.instrument = config.instrument_model()
        self.signals = particle_signals(snapshot, config.channels, workers=workers)
        # the fields have served: keep only what the projection still needs
        for pdata in snapshot.particles.values():
            keep = ("smoothing_length",) if config.scheme == "sph" else ()
            pdata.fields = {k: v for k, v in pdata.fields.items() if k in keep}
        # ncell: the whole snapshot's grid, for a region of it (cmcore.distributed)
        self.indexes = {
            ptype: CellIndex(snapshot.particles[ptype].positions, snapshot.boxsize,
                             smoothing_lengths=(snapshot.particles[ptype].fields.get("smoothing_length")
                                                if config.scheme == "sph" else None),
                             ncell=(ncell or {}).get(ptype))
            for ptype in self.signals
        }

    def render(self, centre: np.ndarray, task: ImageTask, r200: float | None = None) -> dict[str, np.ndarray]:
        """Observed images of one task; ``r200`` [comoving Mpc] is needed with ``interloper_radius``."""
        from .render import render_observed

        c = self.config
        snapshot, signals, indexes = self.snapshot, self.signals, self.indexes
        if c.interloper_radius is not None:
            if r200 is None or not r200 > 0:
                raise InputError(f"interloper_radius needs the halo's r200, got {r200}")
            snapshot, signals = self.sphere(centre, c.interloper_radius * r200)
            indexes = None
        _, observed = render_observed(
            snapshot, centre, channels=c.channels, redshift=task.redshift, instrument=self.instrument,
            rng=dict(zip(c.channels, task.noise_seeds)), los=task.projection, azimuth=task.azimuth,
            npix=c.npix, fov_arcmin=c.fov_arcmin, scheme=c.scheme, depth=c.depth,
            indexes=indexes, cosmology=self.cosmology, signals=signals, nthreads=self.nthreads,
        )
        return observed

    def sphere(self, centre: np.ndarray, radius: float):
        """The snapshot and signals cut to the particles within ``radius`` [comoving Mpc] of
        ``centre`` (periodic): what :meth:`render` draws when interlopers are removed."""
        from .snapshot import ParticleData

        particles, signals = {}, {}
        for ptype, (weights, names) in self.signals.items():
            rows = self.indexes[ptype].select_sphere(centre, radius)
            p = self.snapshot.particles[ptype]
            particles[ptype] = ParticleData(p.positions[rows], p.masses[rows],
                                            {k: v[rows] for k, v in p.fields.items()}, p.name)
            signals[ptype] = (weights[rows], names)
        return dataclasses.replace(self.snapshot, particles=particles), signals


def make_renderer(snapshot: Path, config: DatasetConfig, *, cosmology=None, nthreads: int = 1,
                  workers: int = 1) -> _Renderer:
    """Read what the channels need from ``snapshot`` and prepare signals (on ``workers``
    threads) and indexes; each image's kernels then run on ``nthreads`` threads."""
    from .observables import snapshot_request
    from .readers import read_snapshot

    ptypes, optional = snapshot_request(config.channels, scheme=config.scheme)
    snap = read_snapshot(snapshot, particle_types=ptypes, fields=[], optional_fields=optional)
    return _Renderer(snap, config, distance_cosmology(cosmology), nthreads, workers)


def render_stacks(renderer, centre: np.ndarray, r200: float, tasks: list[ImageTask],
                  channels: Sequence[str]) -> dict[str, np.ndarray]:
    """Every image of one halo: ``{channel: float32 (len(tasks), npix, npix)}``, as a part file holds them."""
    stacks: dict[str, list[np.ndarray]] = {c: [] for c in channels}
    for task in tasks:
        images = renderer.render(centre, task, r200)
        for c in channels:
            stacks[c].append(np.asarray(images[c], dtype=np.float32))
    return {c: np.stack(v) for c, v in stacks.items()}


def _region_stacks(snapshot, config: DatasetConfig, cosmology, ncell: dict[str, int], centre: np.ndarray,
                   r200: float, tasks: list[ImageTask]) -> dict[str, np.ndarray]:
    """:func:`render_stacks` from a region of the snapshot, indexed on the whole snapshot's grid
    ``ncell`` (so the images equal those rendered from the whole snapshot)."""
    return render_stacks(_Renderer(snapshot, config, cosmology, nthreads=1, ncell=ncell), centre, r200, tasks,
                         config.channels)


def _save_part(part: Path, stacks: dict[str, np.ndarray]) -> None:
    _atomic_savez(part, **stacks)


def _render_halo(renderer, centre: np.ndarray, r200: float, tasks: list[ImageTask], part: Path,
                 channels: Sequence[str]) -> int:
    """Render every image of one halo and write its part file; returns the image count."""
    _save_part(part, render_stacks(renderer, centre, r200, tasks, channels))
    return len(tasks)


def sample_star_noise(snapshot: str | os.PathLike, halos: str | os.PathLike,
                      config: DatasetConfig | None = None, *, cosmology=None, workers: int = 1,
                      progress: bool = False) -> float:
    """The paper's stellar noise for the sample ``config`` selects [M☉ kpc⁻² per pixel].

    Renders the noise-free ``Star`` image of every image of the plan (same
    haloes, projections, azimuths and redshifts as :func:`build_dataset`) and
    returns :func:`cmcore.instrument.stellar_noise_from_sample` of them:
    0.1 × the mean pixel, so that the mean pixel has S/N = 10.
    """
    from .progress import progress_bar

    from .halos import read_halos
    from .instrument import stellar_noise_from_sample

    config = config or DatasetConfig()
    cat = read_halos(halos)
    rows, _, _ = select_halos(cat.halo_id, cat.m200, config)
    if rows.size == 0:
        raise InputError(f"no halo of {halos} falls in the mass bins {config.bins}")
    star_config = dataclasses.replace(config, channels=("Star",), instrument="ideal", star_noise=None)
    renderer = make_renderer(Path(snapshot), star_config, cosmology=cosmology, workers=int(workers))
    cat.check_snapshot(renderer.snapshot.boxsize)
    row_of = {int(cat.halo_id[r]): r for r in rows}
    plan = plan_images(rows, cat.halo_id, star_config)
    images = (renderer.render(np.asarray(cat.centre[row_of[t.halo_id]], dtype=float), t,
                              float(cat.r200[row_of[t.halo_id]]))["Star"]
              for t in progress_bar(plan, unit="img", desc="Star noise", disable=not progress))
    return stellar_noise_from_sample(images)


def with_sampled_star_noise(snapshot: str | os.PathLike, halos: str | os.PathLike, config: DatasetConfig, *,
                            workers: int = 1, progress: bool = True) -> tuple[DatasetConfig, float]:
    """``config`` with the paper's stellar-noise rule applied to this sample (``--star-noise sample``).

    Returns the new settings and the rms [M☉ kpc⁻² per pixel]: 0.1 × the mean noise-free
    ``Star`` pixel of the selected haloes (:func:`sample_star_noise`).
    """
    rms = sample_star_noise(snapshot, halos, config, workers=workers, progress=progress)
    return dataclasses.replace(config, star_noise=rms), rms


def build_dataset(
    snapshot: str | os.PathLike,
    halos: str | os.PathLike,
    out: str | os.PathLike,
    config: DatasetConfig | None = None,
    *,
    workers: int = 1,
    progress: bool = True,
    cosmology=None,
    scheduler: str | None = None,
    source: str = "auto",
) -> DatasetSummary:
    """Render a paper-protocol image dataset into one HDF5 file.

    Parameters
    ----------
    snapshot, halos
        Snapshot (any flavour :func:`cmcore.readers.read_snapshot` reads) and its halo
        catalogue (any format :func:`cmcore.halos.read_halos` reads).
    out
        Dataset file to create, complete or extend (see the module docstring).
    config
        Build settings; the paper's protocol by default.
    workers
        Haloes rendered concurrently: worker processes reading their haloes' columns
        (``source="index"``), or threads over the snapshot in memory, which first
        compute the per-particle signals in blocks (``source="memory"``).  Each kernel
        runs single-threaded, so the images do not depend on the number of workers.
    progress
        Show a progress bar with images per second.
    cosmology
        astropy cosmology for distances; WMAP9 (the paper's) when None.
    scheduler
        Render on a dask.distributed cluster instead of threads: ``local[:N]`` or a
        scheduler address; ``snapshot`` must then be an indexed snapshot
        (:mod:`cmcore.distributed`).  Same file as without it, bit for bit.
    source
        Where the particles come from (without ``scheduler``):

        ``"index"``
            Each halo reads only the cells its columns reach from an indexed copy
            of the snapshot (the snapshot itself if it is indexed, else one built
            in ``<out>.parts`` by :func:`cmcore.indexed.write_indexed`, in bounded
            memory, and removed with the parts).  Memory holds one halo's columns
            per worker, whatever the size of the snapshot.
        ``"memory"``
            The whole snapshot's rendered species in memory (about
            :data:`BYTES_PER_PARTICLE` bytes per gas or star particle): fastest
            when that fits.
        ``"auto"`` (default)
            ``"memory"`` when the estimate is at most :data:`MEMORY_BUDGET`
            bytes, else ``"index"``.

        The images are the same, bit for bit, whichever is used.

    Returns
    -------
    DatasetSummary

    Examples
    --------
    Two projections of the one cluster of a small synthetic universe, in two
    channels, with a single mass bin that holds it:

    >>> import tempfile
    >>> from pathlib import Path
    >>> from cmcore.datafile import DatasetConfig, open_dataset
    >>> from cmcore.dataset import build_dataset
    >>> from cmcore.synth import generate
    >>> tmp = tempfile.TemporaryDirectory()
    >>> universe = generate("tiny", seed=1, out=tmp.name, box_size_h=30.0, n_bins=1,
    ...                     clusters_per_bin=1, field_min_mass=1e13)
    >>> config = DatasetConfig(bins=(14.0, 14.5, 0.5), projections=("x", "z"),
    ...                        channels=("Fxb", "Ypar"))
    >>> out = Path(tmp.name) / "dataset.h5"
    >>> summary = build_dataset(universe.snapshot, universe.halos, out, config, progress=False)
    >>> summary.n_images, summary.n_halos
    (2, 1)
    >>> with open_dataset(out) as f:
    ...     print(f["images/Ypar"].shape, f["labels/projection"][:].astype(str).tolist())
    (2, 120, 120) ['x', 'z']

    Run again, the build finds every image already in the file and renders nothing:

    >>> build_dataset(universe.snapshot, universe.halos, out, config, progress=False).n_new
    0
    >>> tmp.cleanup()
    """
    from .halos import read_halos

    config = config or DatasetConfig()
    if int(workers) < 1:
        raise InputError(f"workers must be at least 1, got {workers}")
    if source not in ("auto", "memory", "index"):
        raise InputError(f"source must be 'auto', 'memory' or 'index', got {source!r}")
    snapshot, halos, out = Path(snapshot), Path(halos), Path(out)
    for what, p in (("snapshot", snapshot), ("halo catalogue", halos)):
        if not p.is_file():
            raise FileFormatError(f"{what} {p} does not exist")
    # every setting against the snapshot's layout, before any particle is read or file written
    from .observables import check_request
    from .readers import snapshot_contents

    check_request(snapshot_contents(snapshot), config.channels, scheme=config.scheme,
                  where=f"snapshot {snapshot}")
    t_start = time.perf_counter()
    cat = read_halos(halos)
    if len(cat.halo_id) == 0:
        raise InputError(f"halo catalogue {halos} is empty")
    sources = {"source_snapshot_sha256": file_sha256(snapshot), "source_halos_sha256": file_sha256(halos)}

    old_keys: list[tuple[int, str]] = []
    if out.exists():
        old_config, old_sources, old_keys = _existing_keys(out)
        problems = config.differences(old_config)
        problems += [f"{k.replace('_sha256', '').replace('source_', '')} file differs from the one {out} was built from"
                     for k in sources if sources[k] != old_sources[k]]
        if problems:
            raise InputError(f"{out} was built with other settings; refusing to append ({'; '.join(problems)})")

    rows, counts, messages = select_halos(cat.halo_id, cat.m200, config)
    for m in messages:
        warnings.warn(m, stacklevel=2)
    if rows.size == 0:
        raise InputError(f"no halo of {halos} falls in the mass bins {config.bins}")
    plan = plan_images(rows, cat.halo_id, config)
    have = set(old_keys)
    todo = [t for t in plan if t.key not in have]
    if not todo:
        return DatasetSummary(out, len(old_keys), 0, len({k[0] for k in old_keys}), counts,
                              time.perf_counter() - t_start, messages)

    parts = out.with_name(out.name + ".parts")
    manifest = parts / "manifest.json"
    remove_stale_temporaries(out)  # a file assembly killed by SIGKILL left its temporary behind
    stamp = {"config": json.loads(config.to_json()), **sources}
    stamp["config"].pop("per_bin")
    if manifest.exists() and json.loads(manifest.read_text()) != stamp:
        if any(parts.glob("halo_*.npz")):
            raise InputError(f"{parts} holds rendered haloes of a build with other settings; "
                             "rerun that build to finish it, or remove the folder")
        manifest.unlink()  # a build that failed before rendering anything: nothing to keep

    by_halo: dict[int, list[ImageTask]] = {}
    for t in todo:
        by_halo.setdefault(t.halo_id, []).append(t)
    pending = [hid for hid in by_halo if not _part_path(parts, hid).exists()]
    if pending:
        # read the snapshot before leaving anything on disk: a bad snapshot leaves no trace
        if scheduler is None and source == "auto":
            source = "memory" if in_memory_bytes(snapshot, config) <= MEMORY_BUDGET else "index"
        if scheduler is None and source == "memory":
            renderer = make_renderer(snapshot, config, cosmology=cosmology, nthreads=1, workers=int(workers))
            cat.check_snapshot(renderer.snapshot.boxsize)
        elif scheduler is None:
            from .observables import snapshot_request
            from .readers import read_snapshot

            first = snapshot_request(config.channels, scheme=config.scheme)[0][:1]
            cat.check_snapshot(read_snapshot(snapshot, particle_types=first, fields=[], rows=(0, 1)).boxsize)
        else:
            from .distributed import check_indexed, render_parts

            check_indexed(snapshot)
        parts.mkdir(parents=True, exist_ok=True)
        if not manifest.exists():
            with atomic_write(manifest) as tmp:
                tmp.write_text(json.dumps(stamp, indent=1))
        row_of = {int(cat.halo_id[r]): r for r in rows}
        jobs = [(h, np.asarray(cat.centre[row_of[h]], dtype=float), float(cat.r200[row_of[h]]), by_halo[h],
                 _part_path(parts, h)) for h in pending]
        if scheduler is None and source == "memory":
            _render_on_threads(renderer, jobs, config.channels, int(workers), progress)
        elif scheduler is None:
            indexed = _indexed_copy(snapshot, parts, config, progress)
            _render_on_processes(indexed, config, distance_cosmology(cosmology), jobs, int(workers), progress)
        else:
            render_parts(scheduler, snapshot, config, distance_cosmology(cosmology), jobs,
                         stacks=_region_stacks, save=_save_part, progress=progress)
    t_render = time.perf_counter() - t_start

    _assemble(out, config, cat, old_keys, todo, parts, sources, snapshot, halos, cosmology)
    for hid in by_halo:
        _part_path(parts, hid).unlink(missing_ok=True)
    manifest.unlink(missing_ok=True)
    (parts / _INDEX_NAME).unlink(missing_ok=True)
    for stale in parts.glob(".*.tmp"):  # left by a run killed while writing a part
        stale.unlink(missing_ok=True)
    try:
        parts.rmdir()
    except OSError:
        pass
    n_halos = len({k[0] for k in old_keys} | set(by_halo))
    return DatasetSummary(out, len(old_keys) + len(todo), len(todo), n_halos, counts, t_render, messages)


#: Memory per gas or star particle when the whole snapshot is rendered in memory [bytes]
#: (positions, masses, fields, signals and the cell index; the paper universe's
#: 234 M particles peaked at 13.5 GB).
BYTES_PER_PARTICLE = 64
#: Largest estimated footprint for which ``source="auto"`` renders from memory [bytes].
MEMORY_BUDGET = 2 * 1024**3
_INDEX_NAME = "snapshot.indexed.h5"


def in_memory_bytes(snapshot: str | os.PathLike, config: DatasetConfig) -> int:
    """Estimated memory [bytes] of rendering ``snapshot``'s channels from memory (``source="memory"``)."""
    from .observables import snapshot_request
    from .readers import particle_counts

    ptypes, _ = snapshot_request(config.channels, scheme=config.scheme)
    counts = particle_counts(snapshot)
    return BYTES_PER_PARTICLE * sum(int(counts.get(t, 0)) for t in ptypes)


def _indexed_copy(snapshot: Path, parts: Path, config: DatasetConfig, progress: bool) -> Path:
    """``snapshot`` if it is indexed, else its indexed copy in ``parts`` (built, or resumed, now)."""
    from .indexed import write_indexed
    from .observables import snapshot_request
    from .readers.indexed import IndexedSnapshot, is_indexed

    if is_indexed(snapshot):
        return snapshot
    ptypes, optional = snapshot_request(config.channels, scheme=config.scheme)
    path = parts / _INDEX_NAME
    if path.exists():
        try:
            have = IndexedSnapshot(path)
            if have.source == str(snapshot.resolve()) and set(ptypes) <= set(have.types):
                return path
        except (OSError, FileFormatError):
            pass
        path.unlink()  # of another snapshot or other types, or damaged: build it again
    write_indexed(snapshot, path, particle_types=ptypes, fields=optional, chunk_rows=INDEX_CHUNK_ROWS,
                  progress=progress)
    return path


#: Particles per read while indexing the snapshot for ``source="index"`` (bounds that step's memory).
INDEX_CHUNK_ROWS = 1 << 21


def _render_region_job(indexed: str, config: DatasetConfig, cosmology, centre: np.ndarray, r200: float,
                       tasks: list[ImageTask], part: Path) -> int:
    """Render one halo from its region of the indexed snapshot and write its part file (a worker's task)."""
    from .distributed import render_halo

    _save_part(part, render_halo(indexed, config, cosmology, centre, r200, tasks, _region_stacks))
    return len(tasks)


def _render_on_processes(indexed: Path, config: DatasetConfig, cosmology, jobs: list, workers: int,
                         progress: bool) -> None:
    """Render ``jobs`` = [(halo_id, centre, r200, tasks, part_path)] from the indexed snapshot, each halo
    reading only its columns, on ``workers`` processes (in this one for 1)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from .progress import progress_bar

    path = str(Path(indexed).resolve())
    bar = progress_bar(total=sum(len(j[3]) for j in jobs), unit="img", desc="rendering", disable=not progress)
    try:
        if workers == 1:
            for _, centre, r200, tasks, part in jobs:
                bar.update(_render_region_job(path, config, cosmology, centre, r200, tasks, part))
            return
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            _drain(pool, [(_render_region_job, (path, config, cosmology, centre, r200, tasks, part))
                          for _, centre, r200, tasks, part in jobs], bar)
    finally:
        bar.close()


def _drain(pool, calls: list, bar) -> None:
    """Submit ``calls`` = [(function, args)] to ``pool``, advance ``bar`` by each result as it comes;
    on an error (or an interruption) cancel what has not started and re-raise."""
    from concurrent.futures import as_completed

    futures = [pool.submit(fn, *args) for fn, args in calls]
    try:
        for fut in as_completed(futures):
            bar.update(fut.result())
    except BaseException:
        for fut in futures:
            fut.cancel()
        raise


def _render_on_threads(renderer, jobs: list, channels: Sequence[str], workers: int, progress: bool) -> None:
    """Render ``jobs`` = [(halo_id, centre, r200, tasks, part_path)] on ``workers`` threads, one part file each."""
    from concurrent.futures import ThreadPoolExecutor

    from .progress import progress_bar

    bar = progress_bar(total=sum(len(j[3]) for j in jobs), unit="img", desc="rendering", disable=not progress)
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            _drain(pool, [(_render_halo, (renderer, centre, r200, tasks, part, channels))
                          for _, centre, r200, tasks, part in jobs], bar)
    finally:
        bar.close()


def _assemble(out: Path, config: DatasetConfig, cat, old_keys: list, todo: list[ImageTask], parts: Path,
              sources: dict, snapshot: Path, halos: Path, cosmology) -> None:
    """Write old images + new parts into ``<out>`` through a temporary file and a rename."""
    from astropy import units as u

    from .cosmology import cosmology_to_json

    cosmo = distance_cosmology(cosmology)
    a_snap = 1.0 / (1.0 + float(cat.redshift))
    n_old, n_new = len(old_keys), len(todo)
    n = n_old + n_new
    npix = config.npix
    with atomic_write(out) as tmp:
        with h5py.File(tmp, "w") as f:
            old = h5py.File(out, "r") if n_old else None
            try:
                f.attrs.update({
                    "format": FORMAT, "format_version": FORMAT_VERSION,
                    "channels": list(config.channels),
                    "units": json.dumps({c: channel_units(c) for c in config.channels}),
                    "pixel_scale_arcsec": config.pixel_scale_arcsec, "npix": npix,
                    "fov_arcmin": config.fov_arcmin, "seed": config.seed,
                    "cosmology": cosmology_to_json(cosmo),
                    "instrument": json.dumps(instrument_description(config)),
                    "source_snapshot": str(snapshot.resolve()), "source_halos": str(halos.resolve()),
                    "code_version": __version__,
                    "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                    "split_fractions": list(config.split_fractions),
                    "split_names": list(SPLIT_NAMES),
                    **sources,
                })
                cfg = config
                if old is not None:
                    cfg = dataclasses.replace(config, per_bin=max(config.per_bin, DatasetConfig.from_json(old.attrs["config"]).per_bin))
                f.attrs["config"] = cfg.to_json()
                for c in config.channels:
                    d = f.create_dataset(f"images/{c}", shape=(n, npix, npix), dtype=np.float32,
                                         chunks=(1, npix, npix), compression="gzip", compression_opts=4, shuffle=True)
                    d.attrs["units"] = channel_units(c)
                    if old is not None:
                        for s in range(0, n_old, 256):
                            d[s:min(s + 256, n_old)] = old[f"images/{c}"][s:min(s + 256, n_old)]
                # new images, halo by halo, from the parts
                pos = n_old
                halo_order: list[int] = []
                for t in todo:
                    if not halo_order or halo_order[-1] != t.halo_id:
                        halo_order.append(t.halo_id)
                for hid in halo_order:
                    try:
                        with np.load(_part_path(parts, hid)) as z:
                            block = {c: z[c] for c in config.channels}
                    except (OSError, KeyError, ValueError) as exc:
                        _part_path(parts, hid).unlink(missing_ok=True)
                        raise FileFormatError(f"part file of halo {hid} is unreadable ({exc}); removed it, rerun to render it again") from None
                    k = block[config.channels[0]].shape[0]
                    for c in config.channels:
                        if block[c].shape != (k, npix, npix):
                            raise FileFormatError(f"part file of halo {hid} has images of shape {block[c].shape}")
                        f[f"images/{c}"][pos:pos + k] = block[c]
                    pos += k
                if pos != n:
                    raise FileFormatError(f"parts hold {pos - n_old} images, the plan {n_new}")

                rows = np.array([t.halo_index for t in todo], dtype=np.int64)
                z = np.array([t.redshift for t in todo])
                r200 = np.asarray(cat.r200, dtype=float)[rows]
                d_a = cosmo.angular_diameter_distance(z).to_value(u.Mpc)
                new = {
                    "m200": np.asarray(cat.m200, dtype=float)[rows],
                    "r200": r200,
                    "theta200_arcmin": np.degrees(r200 * a_snap / d_a) * 60.0,
                    "halo_id": np.array([t.halo_id for t in todo], dtype=np.int64),
                    "projection": np.array([t.projection.encode() for t in todo], dtype="S4"),
                    "azimuth": np.array([t.azimuth for t in todo]),
                    "redshift": z,
                }
                new["log10_m200"] = np.log10(new["m200"])
                new["split"] = split_of(new["halo_id"], config.seed, config.split_fractions)
                units = {"m200": "Msun", "log10_m200": "log10(Msun)", "r200": "Mpc (comoving)",
                         "theta200_arcmin": "arcmin", "halo_id": "", "projection": "", "azimuth": "rad",
                         "redshift": "", "split": "0 train, 1 validation, 2 test"}
                for name, values in new.items():
                    if old is not None:
                        values = np.concatenate([old[f"labels/{name}"][:], values])
                    ds = f.create_dataset(f"labels/{name}", data=values)
                    ds.attrs["units"] = units[name]
                seeds = np.array([t.noise_seeds for t in todo], dtype=np.uint64).reshape(n_new, len(config.channels))
                if old is not None:
                    seeds = np.concatenate([old["noise/seed"][:], seeds])
                ds = f.create_dataset("noise/seed", data=seeds)
                ds.attrs["channels"] = list(config.channels)
            finally:
                if old is not None:
                    old.close()
