"""Evaluation of trained networks and baselines: Table 2, per-bin bias, Figs 4–7, a comparison.

Inputs are training RUN directories (``config.json``, ``history.csv``, weights),
predictions CSVs (:mod:`cmcnn.evaluate.predictions_csv`), ONNX models from ``cmc export`` or shipped
models by name (:mod:`cmcnn.serve.shipped`; predicted with onnxruntime).  A RUN is predicted with
:func:`cmcnn.train.training.predict_run`, imported only then, so evaluating CSVs and
baselines never loads TensorFlow.  A CSV with a ``history.csv`` beside it gets its
learning curve too.

Report layout (``out``)::

    <name>/predictions.csv      the evaluated rows (one split)
    <name>/metrics.json         Table 2 over 13.25 < log M < 14.5, bias and scatter per 0.25 dex bin
    <name>/learning_curve.png   Fig. 4 (when a history exists)
    <name>/pred_vs_true.png     Fig. 5
    <name>/bias_vs_mass.png     Fig. 6
    <name>/bias_hist.png        Fig. 7
    baseline/                   baseline-<channel>.csv and baseline.json (with ``baseline_channels``)
    metrics.json                every estimator's metrics
    comparison.md, *.png        with two estimators or more: the table and Figs 4–7 of all together

Metric definitions: :mod:`cmcnn.evaluate.metrics`.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cmcore.errors import FileFormatError, InputError
from cmcore.fileio import atomic_write

import cmcnn.evaluate.figures as figs
from cmcnn.train.calibration import calibrated_columns, fit_calibration
from cmcnn.evaluate.metrics import CENTRAL_RANGE, bin_edges, coverage, in_range, per_bin, table2
from cmcnn.evaluate.predictions_csv import (check_predictions, make_predictions, read_predictions, select_split,
                                           write_predictions)
from cmcnn.train.history import learning_curves, read_history

if TYPE_CHECKING:
    from cmcnn.serve.predictor import Predictor

@dataclass
class Estimate:
    """One evaluated estimator: its predictions on one split and where they came from."""

    name: str
    kind: str  # "network" or "baseline"
    source: str
    predictions: dict[str, np.ndarray]
    history: dict[str, np.ndarray] | None = None
    channels: list[str] | None = None
    folder: str | None = None  # report sub-folder; from the name when None
    calibration: dict | None = None  # constants of cmcnn.train.calibration when calibrated
    given: str | None = None  # what the estimator is given: "image only" or "image + z"

    def curve(self) -> figs.Curve:
        return figs.Curve(self.name, self.predictions["m200_true"], self.predictions["m200_pred"],
                          baseline=self.kind == "baseline", history=self.history,
                          log10_err=self.predictions.get("log10_m200_err"))


def estimate_from_run(run: str | os.PathLike, *, data: str | os.PathLike | None = None, split: str = "test",
             batch_size: int = 256) -> Estimate:
    """Predict a training RUN directory on ``split`` of ``data`` (the run's own dataset by default)."""
    run = Path(run)
    config_path = run / "config.json"
    if not config_path.is_file():
        raise FileFormatError(f"{run} is not a training run (no config.json)")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as exc:
        raise FileFormatError(f"{config_path}: {exc}") from None
    from cmcnn.train.training import predict_run

    cols = check_predictions(predict_run(run, data=data, split=split, batch_size=batch_size), str(run))
    history = read_history(run / "history.csv") if (run / "history.csv").is_file() else None
    channels = [str(c) for c in config.get("channels", [])]
    given = "image + z" if config.get("redshift") else "image only"
    return Estimate(run.name, "network", str(run), select_split(cols, split, str(run)), history, channels, given=given)


def estimate_from_csv(path: str | os.PathLike, *, split: str = "test") -> Estimate:
    """Read a predictions CSV and keep ``split``; a ``history.csv`` beside it is read too."""
    path = Path(path)
    cols = select_split(read_predictions(path), split, str(path))
    history_path = path.parent / "history.csv"
    history = read_history(history_path) if history_path.is_file() else None
    name = path.parent.name if path.stem == "predictions" and path.parent.name else path.stem
    kind = "baseline" if path.stem.startswith("baseline-") else "network"
    return Estimate(name, kind, str(path), cols, history)


def estimate_from_onnx(model: str | os.PathLike, *, data, split: str = "test", batch_size: int = 256) -> Estimate:
    """Predict ``split`` of ``data`` with an ONNX model or a shipped model's name (onnxruntime)."""
    from cmcnn.serve.predictor import Predictor

    if data is None:
        raise InputError(f"evaluating the ONNX model {model} needs --data (the dataset to predict)")
    pred = Predictor(model)
    cols = check_predictions(predict_dataset(pred, data, split, batch_size=batch_size), str(pred.path))
    given = "image + z" if pred.info.takes_redshift else "image only"
    return Estimate(pred.path.stem, "network", str(pred.path), cols, None, list(pred.info.channels), given=given)


def predict_dataset(model: str | os.PathLike | Predictor, data: str | os.PathLike, split: str = "test", *,
                    batch_size: int = 256, providers: str | Sequence[str] | None = None,
                    threads: int | None = None) -> dict[str, np.ndarray]:
    """Predictions of an ONNX model on one split of a ``cmc dataset`` file, as a predictions file's columns.

    The same numbers as ``cmc predict MODEL DATA.h5`` for those images, with the labels
    beside them, so that :mod:`cmcnn.evaluate.evaluation` scores shipped or exported models exactly
    as it scores training runs.

    Parameters
    ----------
    model : path-like, str or Predictor
        ONNX file, shipped model's name, or an open :class:`Predictor`.
    data : path-like
        Dataset file; its images must have the model's size and pixel scale (1 %).
    split : {"train", "validation", "test"}
        Which images.
    batch_size, providers, threads
        As for :class:`Predictor`.

    Returns
    -------
    dict
        Columns of :mod:`cmcnn.evaluate.predictions_csv` (``index`` … ``log10_m200_pred``).
    """
    from cmcnn.serve.cutouts import ReadOptions, Refused, _open_h5
    from cmcnn.serve.predictor import Predictor
    from cmcnn.train.data import ImageSource

    pred = model if isinstance(model, Predictor) else Predictor(model, providers=providers, threads=threads)
    try:  # the checks of `cmc predict` on a dataset file: channels, image size, units, pixel scale
        with _open_h5(os.fspath(data), pred.info, ReadOptions()):
            pass
    except Refused as exc:
        raise InputError(f"{data}: {exc} ({pred.path.name})") from None
    with ImageSource(data, pred.info.channels, cache="none") as source:
        rows = source.rows(split)
        if rows.size == 0:
            raise InputError(f"{data} has no images in the {split} split")
        z = source.label("redshift", rows).astype(np.float64)
        parts = [pred.predict(source.read(rows[i:i + batch_size]), batch_size, redshift=z[i:i + batch_size],
                              return_error=pred.info.has_error, extrapolate=True)  # the dataset's own redshifts
                 for i in range(0, rows.size, batch_size)]
        logm = np.concatenate([p[0] if pred.info.has_error else p for p in parts])
        cols = make_predictions(rows, source.label("halo_id", rows), source.label("projection", rows), z,
                                np.array([split] * rows.size), 10.0 ** source.log10_m200[rows],
                                10.0 ** logm.astype(np.float64))
        if pred.info.has_error:
            cols["log10_m200_err"] = np.concatenate([p[1] for p in parts])
        return cols


def estimate_from_input(item: str | os.PathLike, *, data=None, split: str = "test", batch_size: int = 256) -> Estimate:
    """A RUN directory, a predictions CSV, an ONNX model or a shipped model's name, whichever ``item`` is."""
    from cmcnn.serve.shipped import NAMES

    p = Path(item)
    if p.is_dir():
        return estimate_from_run(p, data=data, split=split, batch_size=batch_size)
    if p.suffix == ".onnx" or (not p.exists() and str(item).lower() in {n.lower() for n in NAMES}):
        return estimate_from_onnx(item, data=data, split=split, batch_size=batch_size)
    if p.is_file():
        return estimate_from_csv(p, split=split)
    raise FileFormatError(f"{p} is neither a run directory, a predictions file, an ONNX model nor a shipped model")


def estimate_metrics(est: Estimate, edges: np.ndarray | None = None) -> dict:
    """Table 2 and per-bin numbers of one estimator (the content of its ``metrics.json``)."""
    t, p, h = est.predictions["m200_true"], est.predictions["m200_pred"], est.predictions["halo_id"]
    out = {"name": est.name, "kind": est.kind, "source": est.source,
           "split": str(est.predictions["split"][0]), "n_images": int(t.size),
           "central_range": list(CENTRAL_RANGE),
           "table2": table2(t, p, halo_id=h).to_dict(),
           "all_masses": table2(t, p, (-np.inf, np.inf), halo_id=h).to_dict(),
           "per_bin": per_bin(t, p, edges, halo_id=h)}
    if "log10_m200_err" in est.predictions:
        cols = est.predictions
        sel = in_range(t)
        out["coverage"] = coverage(cols["log10_m200_true"][sel], cols["log10_m200_pred"][sel],
                                   cols["log10_m200_err"][sel], h[sel])
        out["coverage_all_masses"] = coverage(cols["log10_m200_true"], cols["log10_m200_pred"],
                                              cols["log10_m200_err"], h)
    if est.channels:
        out["channels"] = est.channels
    if est.given:
        out["given"] = est.given
    if est.history is not None:
        h = est.history
        best = int(np.nanargmin(h["val_loss"]))
        out["training"] = {"epochs": int(h["epoch"].size), "best_epoch": int(h["epoch"][best]),
                           "best_val_loss": float(h["val_loss"][best]),
                           "seconds": float(np.nansum(h["seconds"]))}
    return out


def _safe_name(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "estimate"
    name, k = base, 2
    while name in taken:
        name, k = f"{base}-{k}", k + 1
    taken.add(name)
    return name


def _write_json(path: Path, obj) -> None:
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, allow_nan=False) + "\n")


def _figures(curves: list[figs.Curve], folder: Path, edges) -> list[Path]:
    written = []
    if any(c.history is not None for c in curves):
        written.append(learning_curves([(c.name, c.history) for c in curves], folder / "learning_curve.png"))
    written.append(figs.predicted_vs_true(curves, folder / "pred_vs_true.png"))
    written.append(figs.bias_vs_mass(curves, folder / "bias_vs_mass.png", edges=edges))
    written.append(figs.bias_histograms(curves, folder / "bias_hist.png"))
    if any(c.log10_err is not None for c in curves):
        written.append(figs.reliability(curves, folder / "reliability.png"))
    return written


def comparison_table(metrics: Sequence[dict]) -> str:
    """Markdown table, one row per estimator: Table 2's columns, the dex scatters and the worst bin."""
    lines = [
        f"Test images with {CENTRAL_RANGE[0]} < log10 M200,true < {CENTRAL_RANGE[1]} "
        "(RMS: root mean square of M_pred/M_true − 1; σ: standard deviation of "
        "log10(M_pred/M_true); robust σ: 1.4826 × its median absolute deviation; "
        "worst bin: largest |⟨M_pred/M_true⟩ − 1| over the 0.25 dex bins of the whole range).",
        "",
        "| estimator | kind | n | ⟨log(M_pred/M_true)⟩ | ⟨M_pred/M_true⟩ − 1 (%) | RMS (%) | σ (dex) | robust σ (dex) | worst bin (%) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def num(v, fmt):
        return "–" if v is None else format(v, fmt)

    for m in metrics:
        t = m["table2"]
        biases = [abs(b["frac_bias_pct"]) for b in m["per_bin"] if b["frac_bias_pct"] is not None]
        worst = max(biases) if biases else None
        lines.append(
            f"| {m['name']} | {m['kind']} | {t['n']} | {num(t['log_bias'], '+.4f')} ± {num(t['log_bias_se'], '.4f')} "
            f"| {num(t['frac_bias_pct'], '+.2f')} ± {num(t['frac_bias_pct_se'], '.2f')} | {num(t['rms_pct'], '.2f')} "
            f"| {num(t['scatter_dex'], '.4f')} | {num(t['robust_scatter_dex'], '.4f')} | {num(worst, '.1f')} |")
    return "\n".join(lines) + "\n"


def evaluate(inputs: Sequence[str | os.PathLike], out: str | os.PathLike, *, data: str | os.PathLike | None = None,
             split: str = "test", baseline_channels: Sequence[str] | None = None, batch_size: int = 256,
             calibrate: bool = False, progress: bool = False) -> dict:
    """Evaluate runs, predictions files and (optionally) the classical baseline; write the report.

    Parameters
    ----------
    inputs
        Training RUN directories, predictions CSVs, ONNX models and/or shipped models' names.
    out
        Report folder (created).
    data
        Dataset to predict the runs on (default: each run's own) and to fit the baseline on.
    split
        Split to evaluate (``test`` by default).
    baseline_channels
        Channels for which to fit and add :mod:`cmcnn.evaluate.baseline` (needs ``data``).
    batch_size
        Prediction batch size for runs.
    calibrate
        Also evaluate each estimator after the linear calibration of
        :mod:`cmcnn.train.calibration`, fitted on its validation-split predictions (a second
        row, ``<name> calibrated``, whose ``metrics.json`` records the constants).
    progress
        Print a line per estimator.

    Returns
    -------
    dict
        The content of the report's ``metrics.json``.

    Examples
    --------
    A predictions file of 100 haloes seen in 4 projections, scattered by 0.1 dex:

    >>> import pathlib, tempfile
    >>> import numpy as np
    >>> from cmcnn.evaluate.predictions_csv import make_predictions, write_predictions
    >>> rng = np.random.default_rng(0)
    >>> true = np.repeat(10 ** rng.uniform(13.3, 14.4, 100), 4)
    >>> pred = true * 10 ** rng.normal(0.0, 0.1, true.size)
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> cols = make_predictions(np.arange(400), np.repeat(np.arange(100), 4), ["x", "y", "z", "diag"] * 100,
    ...                         np.full(400, 0.05), ["test"] * 400, true, pred)
    >>> _ = write_predictions(folder / "net.csv", cols)
    >>> t2 = evaluate([folder / "net.csv"], folder / "report")["estimators"][0]["table2"]
    >>> t2["n"], t2["n_halos"], round(t2["scatter_dex"], 2)
    (400, 100, 0.1)
    """
    if not inputs and not baseline_channels:
        raise InputError("nothing to evaluate: give runs, predictions files or --baseline")
    if baseline_channels and data is None:
        raise InputError("--baseline needs --data (the dataset to fit it on)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    estimates = [estimate_from_input(i, data=data, split=split, batch_size=batch_size) for i in inputs]
    validation = [estimate_from_input(i, data=data, split="validation", batch_size=batch_size) if calibrate else None
                  for i in inputs]
    if baseline_channels:
        from cmcnn.evaluate.baseline import fit_baseline, write_baseline

        # both forms: given the redshift (as a survey is) and image only (as a z-blind network)
        for redshift, sub, tag in ((True, "baseline", ""), (False, "baseline-image-only", "-image-only")):
            result = fit_baseline(data, list(baseline_channels), progress=progress, redshift=redshift)
            write_baseline(result, out / sub, split=split)
            for c, fit in result.fits.items():
                cols = select_split(result.predictions[c], split, f"{data}")
                estimates.append(Estimate(f"baseline {c} ({fit.aperture.label}, {fit.given})", "baseline",
                                          str(out / sub / f"baseline-{c}.csv"), cols, None, [c],
                                          folder=f"baseline-{c}{tag}", given=fit.given))
                validation.append(Estimate(c, "baseline", "", select_split(result.predictions[c], "validation",
                                                                           f"{data}")) if calibrate else None)
    if calibrate:
        for est, val in list(zip(estimates, validation)):
            cal = fit_calibration(val.predictions["log10_m200_true"], val.predictions["log10_m200_pred"])
            estimates.append(Estimate(f"{est.name} calibrated", est.kind, est.source,
                                      calibrated_columns(est.predictions, cal), est.history, est.channels,
                                      folder=f"{est.folder or est.name}-calibrated", calibration=cal.to_dict(),
                                      given=est.given))
    edges = bin_edges(np.log10(np.concatenate([e.predictions["m200_true"] for e in estimates])))
    taken: set[str] = {"baseline", "baseline-image-only"}
    all_metrics = []
    for est in estimates:
        folder = out / _safe_name(est.folder or est.name, taken)
        write_predictions(folder / "predictions.csv", est.predictions)
        m = estimate_metrics(est, edges)
        m["folder"] = folder.name
        if est.calibration is not None:
            m["calibration"] = {**est.calibration, "fitted_on": "validation"}
        _write_json(folder / "metrics.json", m)
        _figures([est.curve()], folder, edges)
        all_metrics.append(m)
        if progress:
            t = m["table2"]
            print(f"  {est.name}: n = {t['n']}, RMS {t['rms_pct']:.1f} %, σ {t['scatter_dex']:.3f} dex", flush=True)
    report = {"split": split, "central_range": list(CENTRAL_RANGE), "bin_edges": edges.tolist(),
              "estimators": all_metrics}
    if len(estimates) > 1:
        with atomic_write(out / "comparison.md") as tmp:
            tmp.write_text(comparison_table(all_metrics))
        _figures([e.curve() for e in estimates], out, edges)
    _write_json(out / "metrics.json", report)
    return report
