"""Training the paper's networks: resumable, deterministic, streamed from the dataset.

A *run directory* holds everything about one training::

    config.json            every setting, the dataset's path and SHA-256, the fitted
                           preprocessing constants, the code version
    checkpoint.npz         weights and optimizer state after the last finished epoch
                           (one file, written atomically)
    best.weights.h5        the weights with the lowest validation loss so far
    history.csv            epoch, loss, val_loss, learning_rate, seconds
    learning_curve.png     training and validation loss per epoch (the paper's Fig. 4)

Protocol (Yan et al. 2020, §2.4): loss = mean squared error on log10 M200, which is the
paper's eq. (11) "mean squared logarithmic error" ⟨(log M_pred − log M_true)²⟩ exactly
(Keras' ``MeanSquaredLogarithmicError`` is a different function, of log(1 + y), and is
not used).  RMSprop with learning rate 0.01 and inverse-time decay 1e-4 per step,
``lr / (1 + 1e-4 · step)`` (Keras 3 ignores the ``decay=`` argument, so the schedule is
explicit), batches of 50, the weights of the epoch with the lowest validation loss kept.

Determinism and resumption: everything random in epoch ``e`` — the order of the
training images, their symmetry (with ``augment``), the dropout masks — is drawn from
``SeedSequence([seed, purpose, e])``, never from state carried across epochs, and
TensorFlow's ops run deterministically.  So the same command gives the same weights on
the same machine, and a run killed at any moment and rerun continues from its last
finished epoch to exactly the weights of an uninterrupted run.
"""
from __future__ import annotations

import csv
import dataclasses
import datetime
import io
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cmcore import __version__
from cmcore.fileio import file_sha256
from cmcore.errors import InputError
from cmcore.fileio import atomic_write

from cmcnn.train.data import ImageSource, square_symmetry
from cmcnn.train.history import HISTORY_COLUMNS, learning_curves, read_history

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402  (after the log-level default)

from cmcnn.train.calibration import error_scale  # noqa: E402
from cmcnn.train.models import build_model, fit_scaling  # noqa: E402
from cmcnn.train.recipe import DEFAULTS, TrainConfig, compile_model, make_optimizer  # noqa: E402

@dataclass
class TrainSummary:
    """What one call of :func:`train` did."""

    run: Path
    epochs_done: int
    epochs_new: int
    best_epoch: int
    best_val_loss: float
    seconds: float
    images_per_second: float


def model_inputs(model: keras.Model, images: np.ndarray, redshift: np.ndarray):
    """What ``model`` takes: the images, or ``{"image", "redshift"}`` for a redshift-aware network."""
    if len(model.inputs) == 1:
        return images
    return {"image": images, "redshift": np.asarray(redshift, dtype=np.float32).reshape(-1, 1)}


def _distribution_scope():
    """A ``tf.distribute`` scope over every visible GPU (TensorFlow backend), else a no-op."""
    import contextlib

    if keras.backend.backend() != "tensorflow":
        return contextlib.nullcontext(), "cpu" if not _gpus() else f"{keras.backend.backend()} default device"
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy()
        return strategy.scope(), f"MirroredStrategy over {len(gpus)} GPUs"
    if len(gpus) == 1:
        return tf.distribute.get_strategy().scope(), "1 GPU"
    return tf.distribute.get_strategy().scope(), "CPU"


def _gpus() -> list:
    try:
        import jax

        return [d for d in jax.devices() if d.platform == "gpu"]
    except Exception:  # noqa: BLE001 - no jax or no GPU: CPU
        return []


def configure_backend(threads: int | None = None) -> None:
    """Deterministic ops and, optionally, a fixed number of CPU threads (TensorFlow)."""
    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # already initialised in this process: keep its setting
            pass


def _batch(source: ImageSource, rows: np.ndarray, symmetry: np.ndarray | None) -> np.ndarray:
    x = source.read(rows)
    return square_symmetry(x, symmetry) if symmetry is not None else x


def _epoch_rng(seed: int, purpose: int, epoch: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, purpose, epoch]))


def _seed_dropout(model: keras.Model, seed: int, epoch: int) -> None:
    """Reset every dropout layer's random state from (seed, epoch)."""
    rng = _epoch_rng(seed, 3, epoch)
    for layer in model.layers:
        gen = getattr(layer, "seed_generator", None)
        if gen is not None:
            gen.state.assign(np.array([rng.integers(0, 2**31 - 1), 0], dtype=gen.state.dtype))


def _config_dict(config: TrainConfig, data: Path, sha: str) -> dict:
    return {**dataclasses.asdict(config), "data": str(data.resolve()), "data_sha256": sha}


def _write_json(path: Path, obj: dict) -> None:
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")


def _write_history(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{r[k]:.9g}" if isinstance(r[k], float) else r[k]) for k in HISTORY_COLUMNS})
    with atomic_write(path) as tmp:
        tmp.write_text(buf.getvalue())


def _history_rows(run: Path) -> list[dict]:
    """The rows of a run's ``history.csv`` as dicts (empty when there is none)."""
    path = run / "history.csv"
    if not path.is_file():
        return []
    cols = read_history(path)
    return [{c: (int(cols[c][i]) if c == "epoch" else float(cols[c][i])) for c in HISTORY_COLUMNS}
            for i in range(len(cols["epoch"]))]


def _save_checkpoint(path: Path, model: keras.Model, optimizer, state: dict) -> None:
    arrays = {f"w{i}": w for i, w in enumerate(model.get_weights())}
    arrays.update({f"o{i}": np.asarray(v.numpy()) for i, v in enumerate(optimizer.variables)})
    arrays["state"] = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)
    with atomic_write(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def _load_checkpoint(path: Path, model: keras.Model, optimizer) -> dict:
    with np.load(path) as z:
        n_w = len(model.get_weights())
        model.set_weights([z[f"w{i}"] for i in range(n_w)])
        optimizer.build(model.trainable_variables)
        for i, v in enumerate(optimizer.variables):
            v.assign(z[f"o{i}"])
        return json.loads(z["state"].tobytes().decode())


def plot_learning_curve(run: str | os.PathLike) -> Path:
    """Training and validation loss against epoch (the paper's Fig. 4), as ``RUN/learning_curve.png``."""
    run = Path(run)
    return learning_curves([(run.name, read_history(run / "history.csv"))], run / "learning_curve.png")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def train(data: str | os.PathLike, out: str | os.PathLike, config: TrainConfig, *,
          cache: str = "auto", threads: int | None = None, progress: bool = True,
          stop_after_batches: int | None = None) -> TrainSummary:
    """Train (or resume training) one network on a cmc dataset.

    Parameters
    ----------
    data : path-like
        Dataset file (``cmc dataset``); its ``split`` labels choose training and
        validation images (by halo).
    out : path-like
        Run directory.  If it holds a run of the same settings, training continues
        from its last finished epoch (a finished run is not retrained; a larger
        ``config.epochs`` extends it); other settings or another dataset are refused.
    config : TrainConfig
        Network and optimisation settings.
    cache : {"auto", "memory", "none"}
        Hold the training and validation images in memory, or stream them (see
        :class:`cmcnn.train.data.ImageSource`).
    threads : int, optional
        CPU threads for TensorFlow (set before TensorFlow starts; default: all).
    progress : bool
        Progress within each epoch (on a terminal) and one line per epoch.
    stop_after_batches : int, optional
        Raise ``KeyboardInterrupt`` after this many training batches of this call
        (to test resumption the way an interrupted run behaves).

    Returns
    -------
    TrainSummary

    Examples
    --------
    Two epochs of the survey recipe on a small dataset of Compton-y images (ten
    clusters, two projections each, 40-pixel images), then the same call again,
    which finds the run finished and trains nothing:

    >>> import tempfile
    >>> from pathlib import Path
    >>> from cmcore.datafile import DatasetConfig
    >>> from cmcore.dataset import build_dataset
    >>> from cmcore.synth import generate
    >>> from cmcnn.train.recipe import TrainConfig
    >>> from cmcnn.train.training import train
    >>> tmp = tempfile.TemporaryDirectory()
    >>> universe = generate("tiny", seed=1, out=tmp.name, box_size_h=40.0, n_bins=1,
    ...                     clusters_per_bin=10, field_min_mass=1e13)
    >>> data = Path(tmp.name) / "data.h5"
    >>> config = DatasetConfig(bins=(13.0, 15.0, 2.0), per_bin=10, projections=("x", "y"),
    ...                        channels=("Ypar",), npix=40, fov_arcmin=8.0)
    >>> build_dataset(universe.snapshot, universe.halos, data, config, progress=False).n_images
    20
    >>> recipe = TrainConfig.survey(["Ypar"], epochs=2, batch_size=8)
    >>> summary = train(data, Path(tmp.name) / "run", recipe, progress=False)
    >>> summary.epochs_done, summary.epochs_new
    (2, 2)
    >>> train(data, Path(tmp.name) / "run", recipe, progress=False).epochs_new
    0
    >>> tmp.cleanup()
    """
    data, run = Path(data), Path(out)
    configure_backend(threads)
    source = ImageSource(data, config.channels, cache=cache)
    try:
        return _train(source, data, run, config, progress, stop_after_batches)
    finally:
        source.close()


def _train(source: ImageSource, data: Path, run: Path, config: TrainConfig, progress: bool,
           stop_after_batches: int | None) -> TrainSummary:
    sha = file_sha256(data)
    wanted = _config_dict(config, data, sha)
    cfg_path = run / "config.json"
    if cfg_path.is_file():
        old = json.loads(cfg_path.read_text())
        diff = [k for k in wanted if k not in config.resumable and old.get(k, DEFAULTS.get(k)) != wanted[k]]
        if diff:
            raise InputError(f"{run} holds a run with other settings ({', '.join(diff)}); "
                             "choose another --out or the same settings")
    run.mkdir(parents=True, exist_ok=True)

    train_rows = source.rows("train")
    val_rows = source.rows("validation")
    if train_rows.size == 0 or val_rows.size == 0:
        raise InputError(f"{data} needs images in both the train and validation splits "
                         f"(has {train_rows.size} and {val_rows.size})")
    if config.max_train is not None and config.max_train < train_rows.size:
        pick = np.random.default_rng(np.random.SeedSequence([config.seed, 0])).permutation(train_rows.size)
        train_rows = np.sort(train_rows[pick[:config.max_train]])
    y_all = source.log10_m200
    if not np.all(np.isfinite(y_all[train_rows])) or not np.all(np.isfinite(y_all[val_rows])):
        raise InputError(f"{data}: non-finite log10_m200 labels")

    keras.utils.set_random_seed(config.seed)
    scope, where = _distribution_scope()
    with scope:
        model = build_model(config.channels, npix=source.npix, dropout=config.dropout,
                            output_bias=float(np.mean(y_all[train_rows])), redshift=config.redshift,
                            head=config.head, uncertainty=config.uncertainty)
        n_batches = -(-train_rows.size // config.batch_size)
        optimizer = make_optimizer(config, steps=config.epochs * n_batches)
        compile_model(model, optimizer)
    z_all = source.label("redshift").astype(np.float64)

    ckpt = run / "checkpoint.npz"
    if ckpt.is_file() and cfg_path.is_file():
        state = _load_checkpoint(ckpt, model, optimizer)
        scaling = json.loads(cfg_path.read_text())["scaling"]
    else:
        sample_rng = np.random.default_rng(np.random.SeedSequence([config.seed, 4]))
        sample = np.sort(sample_rng.choice(train_rows, size=min(256, train_rows.size), replace=False))
        s, m, sd = fit_scaling(source.read(sample))
        scaling = {"scale": s.tolist(), "mean": m.tolist(), "std": sd.tolist(), "n_images": int(sample.size)}
        if config.redshift:
            lz = np.log10(z_all[train_rows])
            scaling["redshift"] = {"mean": float(lz.mean()), "std": float(max(lz.std(), 1e-3)),
                                   "range": _redshift_range(source, z_all[train_rows])}
        state = {"epochs_done": 0, "best_epoch": 0, "best_val_loss": float("inf"), "seconds": 0.0}
    set_scaling(model, scaling)

    attrs = source.attrs()
    record = {**wanted, "scaling": scaling, "npix": source.npix, "n_train": int(train_rows.size),
              "n_validation": int(val_rows.size), "backend": keras.backend.backend(),
              "code_version": __version__,
              "dataset_attrs": {k: attrs.get(k) for k in ("channels", "units", "pixel_scale_arcsec",
                                                          "npix", "fov_arcmin", "instrument", "config")},
              "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    if cfg_path.is_file():
        record["created"] = json.loads(cfg_path.read_text()).get("created", record["created"])
    _write_json(cfg_path, record)

    history = _history_rows(run)[: state["epochs_done"]]
    done0 = state["epochs_done"]
    if done0 >= config.epochs:
        _log(f"{run}: already trained for {done0} epochs (best validation loss "
             f"{state['best_val_loss']:.5f} at epoch {state['best_epoch']}); nothing to do")
        if config.uncertainty:  # config.json was written afresh: the error scale of the best weights again
            _calibrate_errors(run, source, val_rows)
        return TrainSummary(run, done0, 0, state["best_epoch"], state["best_val_loss"], 0.0, 0.0)

    cached = source.cache_rows(np.concatenate([train_rows, val_rows]))
    _log(f"training {model.name} ({model.count_params():,} parameters) on {where}: "
         f"{train_rows.size} training / {val_rows.size} validation images, "
         f"epochs {done0 + 1}-{config.epochs}, batch {config.batch_size}, "
         f"{'cached in memory' if cached else 'streamed from disk'}")
    bar = _EpochBar(progress)
    t_start = time.perf_counter()
    n_seen = 0
    n_steps = 0
    try:
        for epoch in range(done0, config.epochs):
            t0 = time.perf_counter()
            order = _epoch_rng(config.seed, 1, epoch).permutation(train_rows)
            sym = _epoch_rng(config.seed, 2, epoch).integers(0, 8, order.size) if config.augment else None
            _seed_dropout(model, config.seed, epoch)
            bar.start(epoch + 1, config.epochs, n_batches)
            loss_sum = 0.0
            for b in range(n_batches):
                sl = slice(b * config.batch_size, (b + 1) * config.batch_size)
                x = _batch(source, order[sl], None if sym is None else sym[sl])
                y = y_all[order[sl]].astype(np.float32)
                if config.uncertainty:
                    logs = model.train_on_batch(model_inputs(model, x, z_all[order[sl]]),
                                                {"log10_m200": y, "error": y[:, None]}, return_dict=True)
                    batch_loss = logs["log10_m200_loss"]
                else:
                    batch_loss = model.train_on_batch(model_inputs(model, x, z_all[order[sl]]), y)
                loss_sum += float(np.asarray(batch_loss).reshape(-1)[0]) * x.shape[0]
                bar.update()
                n_steps += 1
                if stop_after_batches is not None and n_steps >= stop_after_batches:
                    raise KeyboardInterrupt
            loss = loss_sum / order.size
            val_pred = predict_images(model, source, val_rows)[0]
            val_loss = float(np.mean((val_pred - y_all[val_rows]) ** 2))
            seconds = time.perf_counter() - t0
            n_seen += order.size
            lr = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
            history.append({"epoch": epoch + 1, "loss": loss, "val_loss": val_loss,
                            "learning_rate": lr, "seconds": seconds})
            if not np.isfinite(loss):
                raise InputError(f"training diverged at epoch {epoch + 1} (loss {loss}); try a lower --lr")
            improved = val_loss < state["best_val_loss"]
            if improved:
                with atomic_write(run / "best.weights.h5") as tmp:
                    model.save_weights(_h5_name(tmp))
                    os.replace(_h5_name(tmp), tmp)
                state.update(best_epoch=epoch + 1, best_val_loss=val_loss)
            state["epochs_done"] = epoch + 1
            state["seconds"] += seconds
            _save_checkpoint(run / "checkpoint.npz", model, optimizer, state)
            _write_history(run / "history.csv", history)
            per_epoch = (time.perf_counter() - t_start) / (epoch + 1 - done0)
            eta = per_epoch * (config.epochs - epoch - 1)
            if progress:
                _log(f"epoch {epoch + 1}/{config.epochs}  loss {loss:.5f}  val_loss {val_loss:.5f}"
                     f"{' *' if improved else '  '} (best {state['best_val_loss']:.5f} @ {state['best_epoch']})"
                     f"  {seconds:.1f} s  ETA {_duration(eta)}")
    finally:
        bar.close()
        if history:
            plot_learning_curve(run)
    elapsed = time.perf_counter() - t_start
    if config.uncertainty and "error_scale" not in json.loads(cfg_path.read_text()):
        _calibrate_errors(run, source, val_rows)
    return TrainSummary(run, state["epochs_done"], state["epochs_done"] - done0, state["best_epoch"],
                        state["best_val_loss"], elapsed, n_seen / elapsed if elapsed > 0 else 0.0)


def _redshift_range(source: ImageSource, z_train: np.ndarray) -> list[float]:
    """The redshifts the network was trained for: the dataset's placement range (its build
    settings), or the training images' extremes when the file does not record it."""
    try:
        z_range = json.loads(source.attrs()["config"])["z_range"]
        lo, hi = float(z_range[0]), float(z_range[1])
        if lo <= z_train.min() and z_train.max() <= hi:
            return [lo, hi]
    except (KeyError, TypeError, ValueError, IndexError):
        pass
    return [float(z_train.min()), float(z_train.max())]


def set_scaling(model: keras.Model, scaling: dict) -> None:
    """Store a run's fitted preprocessing constants (``config.json``'s ``scaling``) in ``model``."""
    model.get_layer("scaling").set_constants(scaling["scale"], scaling["mean"], scaling["std"])
    if "redshift" in scaling:
        model.get_layer("redshift_scaling").set_constants(scaling["redshift"]["mean"], scaling["redshift"]["std"])


def _calibrate_errors(run: Path, source: ImageSource, val_rows: np.ndarray) -> None:
    """Scale the error head so that ±σ and ±2σ cover at least 68.3 % and 95.4 % of the validation
    images (best weights; :func:`error_scale`).

    The factor is stored as ``error_scale`` in ``config.json`` and applied by
    :func:`predict_images` callers and the ONNX export.
    """
    model, config = load_model(run)
    mu, sigma = predict_images(model, source, val_rows, error_scale=1.0)
    r = np.abs(mu - source.log10_m200[val_rows]) / sigma
    config["error_scale"] = error_scale(r)
    config["error_coverage_validation"] = {"68": float(np.mean(r <= config["error_scale"])),
                                           "95": float(np.mean(r <= 2.0 * config["error_scale"]))}
    _write_json(run / "config.json", config)


def _h5_name(tmp: Path) -> str:
    # Keras insists on the .weights.h5 suffix; the temporary name gets it for the write
    return str(tmp) + ".weights.h5"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class _EpochBar:
    """A tqdm bar over the batches of an epoch, only on a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.bar = None

    def start(self, epoch: int, epochs: int, n_batches: int) -> None:
        if self.enabled:
            from tqdm.auto import tqdm

            self.close()
            self.bar = tqdm(total=n_batches, desc=f"epoch {epoch}/{epochs}", unit="batch", leave=False)

    def update(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# ---------------------------------------------------------------------------- loading
def load_model(run: str | os.PathLike, weights: str = "best") -> tuple[keras.Model, dict]:
    """Rebuild a trained network from its run directory.

    Parameters
    ----------
    run : path-like
        Run directory of :func:`train`.
    weights : {"best", "last"}
        The lowest-validation-loss weights, or those after the last finished epoch.

    Returns
    -------
    model, config : keras.Model, dict
    """
    run = Path(run)
    cfg_path = run / "config.json"
    if not cfg_path.is_file():
        raise InputError(f"{run} is not a training run (no config.json)")
    config = json.loads(cfg_path.read_text())
    if "fusion" in config:  # a fusion of single-channel runs (cmcnn.train.fusion): rebuilt from its members
        from cmcnn.train.fusion import build_fused

        return build_fused(config, load_model), config
    model = build_model(config["channels"], npix=config["npix"], dropout=config["dropout"],
                        redshift=config.get("redshift", False), head=config.get("head", "paper"),
                        uncertainty=config.get("uncertainty", False))
    if weights == "best":
        path = run / "best.weights.h5"
        if not path.is_file():
            raise InputError(f"{run} has no best.weights.h5 (no epoch finished yet)")
        model.load_weights(path)
    elif weights == "last":
        names = [f.name for f in dataclasses.fields(TrainConfig)]
        cfg = TrainConfig(**{k: config[k] for k in names if k in config})
        opt = make_optimizer(cfg, steps=cfg.epochs * -(-config["n_train"] // cfg.batch_size))
        _load_checkpoint(run / "checkpoint.npz", model, opt)
    else:
        raise InputError(f"weights must be best or last, got {weights!r}")
    return model, config


def predict_images(model: keras.Model, source: ImageSource, rows: np.ndarray, batch_size: int = 256,
                   error_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray | None]:
    """log10 M200 predicted by ``model`` for dataset rows ``rows`` (in that order), and its error.

    Returns
    -------
    log10_m200, error : ndarray, ndarray or None
        The error (dex, ``error_scale`` × σ of the error head) is None for a network without one.
    """
    out = np.empty(len(rows))
    err = np.empty(len(rows)) if len(model.outputs) == 2 else None
    redshift = source.label("redshift")
    for start in range(0, len(rows), batch_size):
        r = rows[start:start + batch_size]
        y = model(model_inputs(model, source.read(r), redshift[r]), training=False)
        if err is None:
            out[start:start + len(r)] = np.asarray(y).reshape(-1)
        else:
            out[start:start + len(r)] = np.asarray(y[0]).reshape(-1)
            err[start:start + len(r)] = error_scale * np.exp(np.asarray(y[1])[:, 1])
    return out, err


def predict_run(run: str | os.PathLike, data: str | os.PathLike | None = None, split: str = "test",
                batch_size: int = 256) -> dict[str, np.ndarray]:
    """Predictions of a trained run on one split of a dataset (its own by default).

    Returns
    -------
    dict
        The columns of a predictions CSV: ``index``, ``halo_id``, ``projection``,
        ``redshift``, ``split``, ``m200_true``, ``m200_pred``, ``log10_m200_true``,
        ``log10_m200_pred`` (masses in M☉).
    """
    model, config = load_model(run)
    data = Path(data) if data is not None else Path(config["data"])
    with ImageSource(data, config["channels"], cache="none") as source:
        if source.npix != config["npix"]:
            raise InputError(f"{data} has {source.npix}-pixel images; {run} was trained on {config['npix']}")
        rows = source.rows(split)
        if rows.size == 0:
            raise InputError(f"{data} has no images in the {split} split")
        log_pred, log_err = predict_images(model, source, rows, batch_size, config.get("error_scale", 1.0))
        log_true = source.log10_m200[rows]
        proj = source.label("projection", rows)
        return {
            "index": rows,
            "halo_id": source.label("halo_id", rows),
            "projection": np.array([p.decode() if isinstance(p, bytes) else str(p) for p in proj]),
            "redshift": source.label("redshift", rows),
            "split": np.array([split] * rows.size),
            "m200_true": 10.0 ** log_true,
            "m200_pred": 10.0 ** log_pred,
            "log10_m200_true": log_true,
            "log10_m200_pred": log_pred,
            **({} if log_err is None else {"log10_m200_err": log_err}),
        }
