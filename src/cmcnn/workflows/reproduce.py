"""The paper's experiment grid in one resumable command (``cmc reproduce``).

Yan et al. (2020) train five networks (``Star``, ``Fxs``, ``Fxb``, ``Ypar`` and the
multi-channel one) on mock images of ~2000 BAHAMAS clusters and report their bias and
scatter (Table 2, Figs 4–7), and vary three things on the way: the line of sight (§3,
networks retrained on images without fore- and background), the Compton-y instrument
(§2.2, ACT-like against Planck-like) and, in this project, the reading of their stellar
noise (docs/dataset.md).  :func:`reproduce` runs all of it on the synthetic universe (or
any snapshot and halo catalogue) and writes one report:

- ``universe``: ``cmc synth`` of the scale's preset (not with ``--snapshot``);
- ``dataset-fiducial``: the paper's images, ``paper`` instrument, four channels;
- ``dataset-nointerl``: the same haloes and geometry, only the particles within 2 r200;
- ``dataset-planck``: ``Ypar`` with the Planck-like instrument (rms 1e-6, FWHM 9.66′);
- ``dataset-literal``: ``Star`` with the literal per-pixel stellar noise (``paper-literal``);
- ``train-<dataset>-<net>``: the five networks on the fiducial and on the no-interloper
  images, ``Ypar`` on Planck-like and ``Star`` on literal-noise images (12 trainings);
- ``evaluate-<experiment>``: predictions, Table 2, Figs 4–7 (:func:`cmcnn.evaluate.evaluation.evaluate`)
  for ``fiducial`` (with the classical baseline), ``nointerl``, ``instrument``, ``starnoise``;
- ``interpret``: Deep Dream and mask maps of four test clusters for the fiducial
  single-channel networks (Figs 8–11) and the F_cent/F_ring table (:mod:`cmcnn.workflows.paper_interpret`);
- ``report``: ``report.md`` and ``report.json``, recomputed from the prediction files
  (:mod:`cmcnn.evaluate.report`).

Every step is a :class:`cmcnn.workflows.steps.Step`: a rerun skips the finished ones after checking
their inputs' SHA-256, resumes an interrupted one (dataset builds and trainings continue
where they stopped) and redoes one whose inputs changed.

Output folder::

    reproduce.json                the scale, source and seed (a rerun must match)
    steps/<step>.json             one manifest per step (cmcnn.workflows.steps)
    universe/                     snapshot.hdf5, halos.h5, synth.json
    data/<dataset>.h5             the four datasets
    runs/<dataset>-<net>/         the twelve training runs
    experiments/<exp>/            evaluate's report per experiment (predictions CSVs, figures)
    report.md, report.json        the report
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from cmcore import __version__
from cmcore.datafile import CHANNELS, PROJECTIONS, DatasetConfig
from cmcore.errors import InputError
from cmcore.fileio import atomic_write

from cmcnn.evaluate.report import Comparison, Estimator, write_report
from cmcnn.workflows.steps import Step, StepRunner, duration

#: The five networks of the paper: name → channels.
NETWORKS: dict[str, tuple[str, ...]] = {"Star": ("Star",), "Fxs": ("Fxs",), "Fxb": ("Fxb",), "Ypar": ("Ypar",),
                                        "multi": CHANNELS}


@dataclass(frozen=True)
class Variant:
    """One dataset of the grid: instrument, channels and interloper removal."""

    instrument: str
    channels: tuple[str, ...]
    interloper_radius: float | None
    networks: tuple[str, ...]
    title: str


#: The datasets of the grid and the networks trained on each.
VARIANTS: dict[str, Variant] = {
    "fiducial": Variant("paper", CHANNELS, None, tuple(NETWORKS), "fiducial (paper instrument, ±50 Mpc slab)"),
    "nointerl": Variant("paper", CHANNELS, 2.0, tuple(NETWORKS), "no interlopers (particles within 2 r200)"),
    "planck": Variant("planck", ("Ypar",), None, ("Ypar",), "Compton-y, Planck-like instrument"),
    "literal": Variant("paper-literal", ("Star",), None, ("Star",), "Star, literal per-pixel noise"),
}


@dataclass(frozen=True)
class Scale:
    """Size of a reproduction.

    Attributes
    ----------
    name
        ``quick``, ``full`` (or ``test``, the reduced setting of the test suite).
    preset
        ``cmc synth`` preset of the built-in universe.
    per_bin
        Haloes per 0.25 dex bin (``cmc dataset --per-bin``).
    projections
        Lines of sight per halo.
    npix, fov_arcmin
        Image size and field of view.
    epochs, epochs_multi
        Training epochs of the single-channel and of the multi-channel networks.
    text
        One sentence for the report.
    mask_stride
        Mask-scan centres every this many pixels in the interpretation (the paper: 1).
    lr
        Initial learning rate (the paper's 0.01; the test setting's single step of a few
        dozen images needs a smaller one, or the untrained network's output can overflow).
    """

    name: str
    preset: str
    per_bin: int
    projections: tuple[str, ...]
    npix: int
    fov_arcmin: float
    epochs: int
    epochs_multi: int
    text: str
    mask_stride: int = 1
    lr: float = 0.01


SCALES: dict[str, Scale] = {
    "full": Scale("full", "paper", 200, PROJECTIONS, 120, 20.0, 1000, 1000,
                  "the paper's size: the `paper` universe (2000 clusters in 400 cMpc/h), up to 200 "
                  "haloes per 0.25 dex bin, four projections, 120 × 120 images of 10″, 1000 epochs "
                  "for every network (the GPU is used when TensorFlow sees one), mask maps at every pixel"),
    "quick": Scale("quick", "small", 200, PROJECTIONS, 120, 20.0, 10, 5,
                   "reduced to run in minutes on two CPU cores (docs/reproduce.md): the `small` universe "
                   "(150 clusters in 100 cMpc/h, so every bin holds fewer than 20 haloes), four "
                   "projections, 120 × 120 images, 10 epochs for the single-channel networks and 5 "
                   "for the multi-channel ones (the paper: ~2000 haloes, 1000 epochs), mask maps every "
                   "2nd pixel. Expect larger scatter and biases than the paper's, and noisy differences "
                   "between experiments", mask_stride=2),
    "test": Scale("test", "tiny", 200, ("x", "y"), 24, 20.0, 1, 1,
                  "the test suite's setting: the `tiny` universe (30 clusters), two projections, "
                  "24 × 24 images, one epoch at learning rate 0.001, mask maps every 4th pixel; the "
                  "numbers mean nothing", mask_stride=4, lr=1e-3),
}

# ----------------------------------------------------------------------------- cost model
#: Seconds on the otherwise idle 2-core development machine (docs/reproduce.md), from records:
#: ``cmc synth`` per preset, one process (small: the universe step of
#: bench/results/reproduce_quick.json, 96 s; paper: the serial run of synth-paper.json, 639 s);
#: the snapshot's size per preset when it does not exist yet (synth-paper.json, reproduce_quick's
#: universe); snapshot reading and per-particle signals per GB of snapshot and rendering per
#: image at 120² (reproduce_quick's dataset steps, 4-12 s on a 1.45 GB snapshot, and the
#: in-memory paper build of dataset.json, 131 s for 6400 images from 17.7 GB); one training
#: epoch per image of the dataset (training and validation) at 120², single- and
#: multi-channel networks (median epoch times of the paper-preset runs recorded in
#: bench/results/paper_training.json, 0.0022-0.0027 and 0.0105 s, rounded up); prediction
#: per image and network; per-network setup of a training and of the interpretation (export,
#: Deep Dream); mask-scan centres per second (the fast single-channel scan of
#: bench/results/interpret.txt, 2,282, rounded down).
SYNTH_SECONDS = {"tiny": 30.0, "small": 100.0, "paper": 640.0}
SNAPSHOT_GB = {"tiny": 0.1, "small": 1.45, "paper": 17.7}
DATASET_SETUP_S_PER_GB = 5.0
RENDER_S_PER_IMAGE = 0.01
TRAIN_S_PER_IMAGE = {"single": 0.0028, "multi": 0.011}
PREDICT_S_PER_IMAGE = 0.003
TRAIN_SETUP_S = 5.0
INTERPRET_SETUP_S = 5.0
MASK_CENTRES_PER_S = 2000.0


def _estimate_images(scale: Scale, halos: Path | None) -> int:
    """Images per dataset: from the catalogue when it exists, else from the preset's targets."""
    config = DatasetConfig(per_bin=scale.per_bin, projections=scale.projections)
    if halos is not None and halos.is_file():
        from cmcore.dataset import select_halos
        from cmcore.halos import read_halos

        cat = read_halos(halos)
        rows, _, _ = select_halos(cat.halo_id, cat.m200, config)
        return int(rows.size) * len(scale.projections)
    from cmcore.synth.presets import get_preset

    p = get_preset(scale.preset)
    per_025 = p.clusters_per_bin * (p.n_bins / ((p.log_m_max - p.log_m_min) / 0.25))
    return int(len(config.bin_edges) - 1) * int(min(scale.per_bin, per_025)) * len(scale.projections)


def _snapshot_gb(scale: Scale, snapshot: Path | None) -> float:
    if snapshot is not None and snapshot.is_file():
        return snapshot.stat().st_size / 1e9
    return SNAPSHOT_GB.get(scale.preset, 1.0)


# ----------------------------------------------------------------------------- the grid
@dataclass
class Grid:
    """Paths of one reproduction folder."""

    out: Path

    @property
    def universe(self) -> Path:
        return self.out / "universe"

    def data(self, variant: str) -> Path:
        return self.out / "data" / f"{variant}.h5"

    def run(self, variant: str, net: str) -> Path:
        return self.out / "runs" / f"{variant}-{net}"

    def experiment(self, name: str) -> Path:
        return self.out / "experiments" / name

    def predictions(self, experiment: str, estimator: str) -> Path:
        """Where :func:`cmcnn.evaluate.evaluation.evaluate` writes an estimator's predictions: its folder is the
        run's name (``<dataset>-<net>``) or ``baseline-<channel>``."""
        return self.experiment(experiment) / estimator / "predictions.csv"


#: Evaluations: name → (runs as (dataset, net), the dataset to evaluate them on (None: each run's
#: own), the channels of the classical baseline fitted beside them).
EXPERIMENTS: dict[str, tuple[list[tuple[str, str]], str | None, tuple[str, ...]]] = {
    "fiducial": ([("fiducial", n) for n in NETWORKS], "fiducial", CHANNELS),
    "nointerl": ([("nointerl", n) for n in NETWORKS], "nointerl", ()),
    "instrument": ([("fiducial", "Ypar"), ("planck", "Ypar")], None, ()),
    "starnoise": ([("fiducial", "Star"), ("literal", "Star")], None, ()),
}


def dataset_config(scale: Scale, variant: str, seed: int) -> DatasetConfig:
    """The :class:`cmcore.datafile.DatasetConfig` of one dataset of the grid."""
    v = VARIANTS[variant]
    return DatasetConfig(per_bin=scale.per_bin, projections=scale.projections, channels=v.channels,
                         instrument=v.instrument, seed=seed, npix=scale.npix, fov_arcmin=scale.fov_arcmin,
                         interloper_radius=v.interloper_radius)


def train_config(scale: Scale, net: str, seed: int):
    """The :class:`cmcnn.train.recipe.TrainConfig` of one network of the grid."""
    from cmcnn.train.recipe import TrainConfig

    return TrainConfig(channels=list(NETWORKS[net]), epochs=scale.epochs_multi if net == "multi" else scale.epochs,
                       lr=scale.lr, seed=seed)


def device_description() -> str:
    """The Keras backend and the GPUs it sees (training runs there), with the CPU count."""
    import keras

    backend = keras.backend.backend()
    gpus: list = []
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
    elif backend == "jax":
        import jax

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
    where = f"{len(gpus)} GPU(s)" if gpus else "CPU only"
    return f"Keras {keras.__version__} ({backend}), {where}; {os.cpu_count()} CPU cores"


def plan(out: str | os.PathLike, scale: Scale, *, snapshot: str | os.PathLike | None = None,
         halos: str | os.PathLike | None = None, seed: int = 0, workers: int = 1, threads: int | None = None,
         progress: bool = True) -> list[Step]:
    """Every step of the grid, in order (nothing is run)."""
    g = Grid(Path(out))
    own = snapshot is None
    snap = g.universe / "snapshot.hdf5" if own else Path(snapshot)
    cat = g.universe / "halos.h5" if own else Path(halos)
    n_img = _estimate_images(scale, cat)
    pix = (scale.npix / 120.0) ** 2
    steps: list[Step] = []
    if own:
        def make_universe() -> None:
            from cmcore.synth import generate

            generate(scale.preset, seed=seed, out=g.universe, progress=progress)

        steps.append(Step("universe", make_universe, outputs=[snap, cat, g.universe / "synth.json"],
                          params={"preset": scale.preset, "seed": seed}, clean=[g.universe],
                          estimate=SYNTH_SECONDS.get(scale.preset, 300.0),
                          label=f"synthetic universe ({scale.preset} preset)"))
    for variant in VARIANTS:
        cfg = dataset_config(scale, variant, seed)
        path = g.data(variant)

        def build(cfg=cfg, path=path) -> None:
            import warnings

            from cmcore.dataset import build_dataset

            path.parent.mkdir(parents=True, exist_ok=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # empty mass bins: expected in reduced universes
                build_dataset(snap, cat, path, cfg, workers=workers, progress=progress)

        steps.append(Step(f"dataset-{variant}", build, inputs=[snap, cat], outputs=[path],
                          params={"config": json.loads(cfg.to_json())},
                          clean=[path, path.with_name(path.name + ".parts")],
                          estimate=DATASET_SETUP_S_PER_GB * _snapshot_gb(scale, snap) + RENDER_S_PER_IMAGE * n_img * pix,
                          label=f"dataset {variant}: {VARIANTS[variant].title}"))
    for variant, v in VARIANTS.items():
        for net in v.networks:
            tc = train_config(scale, net, seed)
            run, data = g.run(variant, net), g.data(variant)

            def fit(tc=tc, run=run, data=data) -> None:
                from cmcnn.train.training import train

                train(data, run, tc, threads=threads, progress=progress)

            per_img = TRAIN_S_PER_IMAGE["multi" if net == "multi" else "single"] * pix
            steps.append(Step(f"train-{variant}-{net}", fit, inputs=[data],
                              outputs=[run / "best.weights.h5", run / "history.csv", run / "config.json"],
                              params={"train": asdict(tc)}, clean=[run],
                              estimate=TRAIN_SETUP_S + tc.epochs * 0.8 * n_img * per_img,
                              label=f"train {net} on {variant} ({tc.epochs} epoch{'s' if tc.epochs != 1 else ''})"))
    for name, (runs, on, baseline) in EXPERIMENTS.items():
        run_dirs = [g.run(d, n) for d, n in runs]
        data = g.data(on) if on else None
        folder = g.experiment(name)

        def assess(run_dirs=run_dirs, data=data, folder=folder, baseline=baseline) -> None:
            from cmcnn.evaluate.evaluation import evaluate

            evaluate([str(r) for r in run_dirs], folder, data=data, baseline_channels=list(baseline) or None,
                     progress=progress)

        inputs = [r / "best.weights.h5" for r in run_dirs] + sorted({g.data(d) for d, _ in runs})
        outputs = [g.predictions(name, r.name) for r in run_dirs] + [g.predictions(name, f"baseline-{c}") for c in baseline]
        steps.append(Step(f"evaluate-{name}", assess, inputs=inputs, outputs=outputs + [folder / "metrics.json"],
                          params={"runs": [r.name for r in run_dirs], "data": on, "baseline": list(baseline)},
                          clean=[folder], estimate=10.0 + PREDICT_S_PER_IMAGE * pix * n_img * len(runs),
                          label=f"evaluate {name}"))
    folder = g.experiment("interpret")
    single = {c: g.run("fiducial", c) for c in CHANNELS}

    def explain() -> None:
        from cmcnn.workflows.paper_interpret import interpret_networks

        interpret_networks(g.data("fiducial"), single, folder, stride=scale.mask_stride, progress=progress)

    n_centres = (scale.npix // scale.mask_stride) ** 2
    steps.append(Step("interpret", explain, inputs=[g.data("fiducial")] + [r / "best.weights.h5" for r in single.values()],
                      outputs=[folder / "interpret.json", folder / "core_ring.png"] + [folder / f"fig_{c}.png" for c in CHANNELS],
                      params={"stride": scale.mask_stride, "networks": list(single)}, clean=[folder],
                      estimate=len(CHANNELS) * (INTERPRET_SETUP_S + 4 * n_centres / MASK_CENTRES_PER_S),
                      label="interpret: Deep Dream and mask maps of four clusters, F_cent/F_ring"))
    sections = report_sections(g)
    csvs = sorted({e.path for s in sections for e in s.rows})

    def make_report() -> None:
        from cmcnn.workflows.paper_interpret import interpretation_markdown

        write_report(g.out, sections, preamble=_preamble(g.out, scale),
                     appendix=[interpretation_markdown(folder, "experiments/interpret")],
                     extra={"scale": asdict(scale), "code_version": __version__})

    steps.append(Step("report", make_report, inputs=csvs + [folder / "interpret.json"],
                      outputs=[g.out / "report.md", g.out / "report.json"],
                      params={"scale": asdict(scale)}, estimate=2.0, label="report"))
    return steps


def report_sections(g: Grid) -> list[Comparison]:
    """The report's sections, each row pointing at the predictions file it is recomputed from."""
    fid = g.experiment("fiducial")
    return [
        Comparison(
            "table2", "Table 2: the five networks and the classical baseline",
            "The networks of §2.4 trained on the fiducial images, set beside the paper's Table 2, and the "
            "classical estimator (an aperture sum through a power law fitted on the training split, "
            "`cmc baseline`) on the same test images.",
            [Estimator(n, g.predictions("fiducial", f"fiducial-{n}"), n) for n in NETWORKS]
            + [Estimator(f"baseline {c}", g.predictions("fiducial", f"baseline-{c}")) for c in CHANNELS],
            figures=[fid / f for f in ("learning_curve.png", "pred_vs_true.png", "bias_vs_mass.png", "bias_hist.png")]),
        Comparison(
            "interlopers", "Line-of-sight ablation (§3)",
            "The same haloes, projections and noise rendered from the particles within 2 r200 of each "
            "cluster only (`cmc dataset --no-interlopers`), the networks retrained, each evaluated on its own "
            "test images. The paper: without fore- and background \"the scatter of mass bias is lower than "
            "our fiducial results by ∼2%\".",
            [Estimator(f"{n} fiducial", g.predictions("fiducial", f"fiducial-{n}")) for n in NETWORKS]
            + [Estimator(f"{n} no interlopers", g.predictions("nointerl", f"nointerl-{n}")) for n in NETWORKS],
            figures=[g.experiment("nointerl") / "bias_vs_mass.png"],
            pairs=[(n, f"{n} fiducial", f"{n} no interlopers") for n in NETWORKS],
            pair_names=("fiducial", "no interlopers")),
        Comparison(
            "instrument", "Compton-y instrument (§2.2)",
            "The `Ypar` network trained and tested on ACT-like images (`paper` preset: rms 1e-8, FWHM 1.4′) "
            "and on Planck-like ones (`planck`: rms 1e-6, FWHM 9.66′). The paper: with the Planck-like "
            "experiment \"the CNN performed quite poorly\".",
            [Estimator("Ypar ACT-like", g.predictions("instrument", "fiducial-Ypar")),
             Estimator("Ypar Planck-like", g.predictions("instrument", "planck-Ypar"))],
            figures=[g.experiment("instrument") / "pred_vs_true.png"],
            pairs=[("Ypar", "Ypar ACT-like", "Ypar Planck-like")], pair_names=("ACT-like", "Planck-like")),
        Comparison(
            "starnoise", "Stellar noise: the two readings of Table 1",
            "The `Star` network with the `paper` instrument (noise 2.14e11 M☉ Mpc⁻², a surface density, "
            "docs/dataset.md) and with `paper-literal` (2.14e11 M☉ per pixel, which hides all but the "
            "largest galaxies).",
            [Estimator("Star paper", g.predictions("starnoise", "fiducial-Star")),
             Estimator("Star paper-literal", g.predictions("starnoise", "literal-Star"))],
            figures=[g.experiment("starnoise") / "pred_vs_true.png"],
            pairs=[("Star", "Star paper", "Star paper-literal")], pair_names=("paper", "paper-literal")),
    ]


def _preamble(out: Path, scale: Scale) -> str:
    meta = json.loads((out / "reproduce.json").read_text())
    src = ("the built-in synthetic universe, `cmc synth --preset "
           f"{scale.preset} --seed {meta['seed']}`" if meta["snapshot"] is None
           else f"snapshot `{meta['snapshot']}`, haloes `{meta['halos']}`")
    return (f"Scale **{scale.name}**: {scale.text}.\n\n"
            f"Source: {src}. Every dataset: `cmc dataset --per-bin {scale.per_bin} --projections "
            f"{','.join(scale.projections)} --npix {scale.npix} --fov {scale.fov_arcmin:g} --seed {meta['seed']}`.\n\n"
            f"Machine: {meta['device']}; {platform.platform()}. cmc {__version__}; started {meta['started']}.")


def _check_meta(out: Path, meta: dict) -> dict:
    path = out / "reproduce.json"
    if path.is_file():
        old = json.loads(path.read_text())
        diff = [k for k in ("scale", "snapshot", "halos", "seed") if old.get(k) != meta[k]]
        if diff:
            raise InputError(f"{out} holds a reproduction with other settings ({', '.join(f'{k}: {old.get(k)!r}' for k in diff)}); "
                             "choose another --out or the same settings")
        return old
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(meta, indent=1) + "\n")
    return meta


@dataclass
class ReproduceSummary:
    """What :func:`reproduce` did."""

    out: Path
    ran: list[tuple[str, str, float]]
    seconds: float
    report: dict


def reproduce(out: str | os.PathLike, scale: str | Scale = "quick", *, snapshot: str | os.PathLike | None = None,
              halos: str | os.PathLike | None = None, seed: int = 0, workers: int | None = None,
              threads: int | None = None, progress: bool = True, log: Callable[[str], None] | None = None,
              plan_only: bool = False) -> ReproduceSummary | None:
    """Run the experiment grid (module docstring) into ``out``, resuming a previous run there.

    Parameters
    ----------
    out
        Output folder.
    scale
        ``quick``, ``full`` (:data:`SCALES`) or a :class:`Scale`.
    snapshot, halos
        A snapshot and its halo catalogue instead of the built-in universe (both or neither).
    seed
        Seed of the universe, the datasets and the trainings.
    workers
        Dataset rendering threads (default: the CPU count, at most 8).
    threads
        TensorFlow CPU threads (default: all).
    progress
        Progress bars of the long steps (the step lines are always printed).
    log
        Receives every progress line (default: standard output).
    plan_only
        Print the plan and the time estimate, run nothing, return None.

    Returns
    -------
    ReproduceSummary or None
    """
    log = log or (lambda line: print(line, flush=True))
    if isinstance(scale, str):
        if scale not in SCALES:
            raise InputError(f"unknown scale {scale!r}; choose quick or full")
        scale = SCALES[scale]
    if (snapshot is None) != (halos is None):
        raise InputError("--snapshot and --halos go together")
    for what, p in (("snapshot", snapshot), ("halo catalogue", halos)):
        if p is not None and not Path(p).is_file():
            raise InputError(f"{what} {p} does not exist")
    if int(seed) < 0:
        raise InputError(f"seed must be non-negative, got {seed}")
    out = Path(out)
    workers = int(workers or min(os.cpu_count() or 1, 8))
    meta = {"scale": scale.name, "snapshot": None if snapshot is None else str(Path(snapshot).resolve()),
            "halos": None if halos is None else str(Path(halos).resolve()), "seed": int(seed)}
    steps = plan(out, scale, snapshot=snapshot, halos=halos, seed=int(seed), workers=workers, threads=threads,
                 progress=progress)
    runner = StepRunner(out, log=log)
    states = [runner.status(s).state if out.is_dir() else "todo" for s in steps]
    left = sum(s.estimate for s, st in zip(steps, states) if st != "done")
    device = device_description()
    log(f"cmc reproduce --scale {scale.name}: {len(steps)} steps, {states.count('done')} finished earlier; "
        f"estimate {duration(left)} for the rest (two CPU cores' rates; {device})")
    if plan_only:
        for s, st in zip(steps, states):
            log(f"  {s.name:<26} {st:<7} ~{duration(s.estimate)}")
        return None
    _check_meta(out, {**meta, "device": device,
                      "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})
    t0 = time.perf_counter()
    done_estimate = 0.0
    for k, (step, st) in enumerate(zip(steps, states), 1):
        runner.run(step, prefix=f"[{k}/{len(steps)}] ")
        if st != "done":
            done_estimate += step.estimate
            elapsed = time.perf_counter() - t0
            rest = left - done_estimate
            pace = elapsed / done_estimate if done_estimate > 0 else 1.0
            log(f"    {duration(elapsed)} elapsed; about {duration(rest * pace)} left")
    seconds = time.perf_counter() - t0
    report = json.loads((out / "report.json").read_text())
    ran = runner.ran
    n_ran = sum(1 for r in ran if r[1] == "ran")
    log(f"finished in {duration(seconds)}: {n_ran} steps run, {len(ran) - n_ran} skipped; report: {out / 'report.md'}")
    for label, row in report["sections"]["table2"]["rows"].items():
        t = row["table2"]
        if t["rms_pct"] is not None:
            log(f"  {label:<14} RMS {t['rms_pct']:6.2f} %  bias {t['frac_bias_pct']:+6.2f} %  (n = {t['n']})")
    return ReproduceSummary(out, ran, seconds, report)

