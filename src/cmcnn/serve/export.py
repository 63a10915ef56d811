"""``cmc export``: a trained network as an ONNX model with its preprocessing inside.

The Keras model of a run (:func:`cmcnn.train.training.load_model`) already contains the asinh
preprocessing (:class:`cmcnn.train.models.AsinhScaling`), so the exported graph takes images
in the dataset's physical units: input ``image`` (batch, npix, npix, C) float32, NHWC,
batch dimension dynamic; output ``log10_m200`` (batch, 1), log10(M200c/M☉).  A
redshift-aware network also takes ``redshift`` (batch,) float32, and a network with an
error head also gives ``log10_m200_err`` (batch, 1): its calibrated 1σ error [dex], the
run's ``error_scale`` × σ of the head (computed inside the graph).

Conversion goes through ``tf2onnx.convert.from_function`` on a ``tf.function`` with an
input signature (``tf2onnx.convert.from_keras`` fails on Keras 3 models), opset 17 by
default (tf2onnx 1.17 rejects 19 and above).  The model's ``metadata_props`` are those
of :mod:`cmcnn.serve.metadata`.  Before the file is written, onnxruntime and Keras predict the
same validation images; if they differ by more than ``tolerance`` (1e-5 dex) the export
fails and nothing is written.  The file appears complete or not at all.

With ``half_weights`` (``cmc export --half-weights``) the large weight matrices (at least
:data:`HALF_MIN_SIZE` values: the first dense layer, 98 % of the network's weights) are
stored as float16 with a ``Cast`` to float32 in front of their use, which halves the
file; compute stays float32.  The export keeps the float16 copy only when it predicts
the parity images within ``half_tolerance`` (1e-4 dex) of the float32 graph, and records
the measured difference in the metadata (``weights_storage``).
"""
from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cmcore import __version__
from cmcore.errors import CmcError, FileFormatError, InputError
from cmcore.fileio import atomic_write

import cmcnn.serve.metadata as mi

#: Opsets tf2onnx 1.17 accepts for this network (19 and above are rejected).
OPSETS = (17, 18)
#: Smallest weight tensor stored as float16 by ``half_weights`` [values].
HALF_MIN_SIZE = 100_000


class ParityError(CmcError):
    """onnxruntime's output differs from TensorFlow's beyond the tolerance."""


@dataclass
class ExportSummary:
    """What :func:`export_run` wrote and checked."""

    path: Path
    opset: int
    n_parity_images: int
    max_abs_diff: float
    metadata: dict[str, str]


def keras_to_onnx(model, *, opset: int = 17, error_scale: float = 1.0,
                  calibration: tuple[float, float] | None = None):
    """Convert a built Keras model to an ONNX ``ModelProto`` (input ``image``, output ``log10_m200``).

    This is the one conversion path of cmc: ``cmc export``, ``cmc reproduce``'s scans and
    the benchmarks all go through it.

    Parameters
    ----------
    model : keras.Model
        Input ``image`` (None, npix, npix, C) [and ``redshift`` (None, 1)]; output (None, 1)
        [and the error head's (None, 2) ``[log10 M, ln σ]``] (:func:`cmcnn.train.models.build_model`).
    opset : int
        ONNX opset, 17 or 18.
    error_scale : float
        Calibration factor of the error head: ``log10_m200_err = error_scale · exp(ln σ)``.
    calibration : (intercept, slope), optional
        The mass calibration against regression to the mean (:mod:`cmcnn.train.calibration`)
        applied inside the graph: ``log10_m200 = (y − intercept)/slope``, the error divided by slope.

    Returns
    -------
    onnx.ModelProto
        Inputs ``image`` [and ``redshift`` (batch,)], outputs ``log10_m200`` [and
        ``log10_m200_err``], the batch dimension named ``batch``.
    """
    if opset not in OPSETS:
        raise InputError(f"opset must be one of {OPSETS} (tf2onnx 1.17 rejects 19+), got {opset}")
    import tensorflow as tf
    import tf2onnx

    shape = tuple(model.inputs[0].shape)
    spec = [tf.TensorSpec((None, *shape[1:]), tf.float32, name=mi.INPUT_NAME)]
    with_z = len(model.inputs) == 2
    with_err = len(model.outputs) == 2
    if with_z:
        spec.append(tf.TensorSpec((None,), tf.float32, name=mi.REDSHIFT_NAME))
    # Python numbers: constants of the graph, not captured inputs
    c0, c1 = (0.0, 1.0) if calibration is None else (float(calibration[0]), float(calibration[1]))
    scale = float(error_scale) / c1

    def mass(y):
        return y if calibration is None else (y - c0) * (1.0 / c1)

    def outputs(y):
        if not with_err:
            return {mi.OUTPUT_NAME: mass(y)}
        return {mi.OUTPUT_NAME: mass(y[0]), mi.ERROR_NAME: scale * tf.exp(y[1][:, 1:2])}

    if with_z:
        @tf.function(input_signature=spec)
        def forward(image, redshift):
            return outputs(model({"image": image, "redshift": redshift[:, None]}, training=False))
    else:
        @tf.function(input_signature=spec)
        def forward(image):
            return outputs(model(image, training=False))

    proto, _ = tf2onnx.convert.from_function(forward, input_signature=spec, opset=opset)
    for value in (*proto.graph.input, *proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if not dims:  # tf2onnx may leave an output's shape unknown: it is (batch, 1)
            dims.add()
            dims.add().dim_value = 1
        dims[0].ClearField("dim_value")
        dims[0].dim_param = "batch"
    names = ([i.name for i in proto.graph.input], sorted(o.name for o in proto.graph.output))
    want = ([mi.INPUT_NAME] + ([mi.REDSHIFT_NAME] if with_z else []),
            sorted([mi.OUTPUT_NAME] + ([mi.ERROR_NAME] if with_err else [])))
    if names != want:
        raise CmcError(f"unexpected graph inputs/outputs after conversion: {names}")
    return proto


def onnx_predict(model_bytes: bytes, images: np.ndarray, redshift: np.ndarray | None = None,
                 batch_size: int = 256, output: str = mi.OUTPUT_NAME) -> np.ndarray:
    """One output (log10 M200 by default) of an ONNX model's bytes, on onnxruntime's CPU provider (for checks)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    takes_z = len(sess.get_inputs()) == 2
    out = []
    for s in range(0, len(images), batch_size):
        feeds = {mi.INPUT_NAME: images[s:s + batch_size]}
        if takes_z:
            feeds[mi.REDSHIFT_NAME] = np.asarray(redshift[s:s + batch_size], dtype=np.float32)
        out.append(sess.run([output], feeds)[0])
    return np.concatenate(out).reshape(-1).astype(np.float64)


def _keras_predict(model, images: np.ndarray, redshift: np.ndarray | None, error_scale: float,
                   calibration: tuple[float, float] | None = None):
    """log10 M200 (and the scaled error, or None) of the Keras network, calibrated as the export is."""
    from cmcnn.train.training import model_inputs

    c0, c1 = (0.0, 1.0) if calibration is None else calibration
    y = model(model_inputs(model, images, redshift), training=False)
    if len(model.outputs) == 1:
        return (np.asarray(y, dtype=np.float64).reshape(-1) - c0) / c1, None
    return ((np.asarray(y[0], dtype=np.float64).reshape(-1) - c0) / c1,
            error_scale / c1 * np.exp(np.asarray(y[1], dtype=np.float64)[:, 1]))


def parity(model, model_bytes: bytes, images: np.ndarray, tolerance: float = 1e-5,
           redshift: np.ndarray | None = None, error_scale: float = 1.0,
           calibration: tuple[float, float] | None = None) -> float:
    """Max |onnxruntime − Keras| on ``images`` (masses, and errors where the model has them);
    :class:`ParityError` when above ``tolerance``."""
    keras_out, keras_err = _keras_predict(model, images, redshift, error_scale, calibration)
    ort_out = onnx_predict(model_bytes, images, redshift)
    if keras_err is not None:
        ort_err = onnx_predict(model_bytes, images, redshift, output=mi.ERROR_NAME)
        keras_out = np.concatenate([keras_out, keras_err])
        ort_out = np.concatenate([ort_out, ort_err])
    diff = np.abs(ort_out - keras_out)
    worst = float(np.max(diff)) if diff.size else 0.0
    if not np.all(np.isfinite(ort_out)) or not worst <= tolerance:
        i = int(np.nanargmax(diff)) if np.any(np.isfinite(diff)) else 0
        raise ParityError(
            f"onnxruntime and TensorFlow disagree on {int(np.sum(~(diff <= tolerance)))} of {diff.size} "
            f"validation images (max |difference| {worst:.3g} dex > tolerance {tolerance:g}; "
            f"image {i}: onnxruntime {ort_out[i]:.7f}, TensorFlow {keras_out[i]:.7f}); nothing written")
    return worst


def half_weights(proto, min_size: int = HALF_MIN_SIZE) -> list[str]:
    """Store the float32 initializers of at least ``min_size`` values as float16, in place.

    Each such initializer ``w`` becomes ``w__float16`` plus a ``Cast(to=FLOAT)`` node,
    placed first in the graph, whose output is named ``w``: every consumer still reads a
    float32 tensor, so the graph computes in float32 with weights rounded to float16
    (onnxruntime folds the cast once, when the session is created).

    Returns
    -------
    list of str
        The names of the initializers converted.
    """
    import onnx
    from onnx import helper, numpy_helper

    converted, casts = [], []
    for init in proto.graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        values = numpy_helper.to_array(init)
        if values.size < min_size:
            continue
        name = init.name
        init.CopyFrom(numpy_helper.from_array(values.astype(np.float16), f"{name}__float16"))
        casts.append(helper.make_node("Cast", [f"{name}__float16"], [name], to=onnx.TensorProto.FLOAT,
                                      name=f"{name}__to_float32"))
        converted.append(name)
    for node in reversed(casts):
        proto.graph.node.insert(0, node)
    return converted


def read_metrics(path: str | os.PathLike, run_name: str) -> dict:
    """The test metrics of one network from an evaluation's ``metrics.json``.

    Accepts an estimator's own file (with ``table2``) or a report's (``estimators``
    list: the one named after the run, or the only network in it).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise FileFormatError(f"metrics file {path} is unreadable ({exc})") from None
    if isinstance(data, dict) and "table2" in data:
        return data
    ests = data.get("estimators") if isinstance(data, dict) else None
    if not isinstance(ests, list):
        raise FileFormatError(f"{path} is not an evaluation metrics.json (no table2 or estimators)")
    named = [e for e in ests if e.get("name") == run_name]
    nets = [e for e in ests if e.get("kind") == "network"]
    pick = named or (nets if len(nets) == 1 else [])
    if len(pick) != 1:
        raise InputError(f"{path} holds {len(ests)} estimators and none is named {run_name!r}; "
                         "give the run's own metrics.json (REPORT/<name>/metrics.json)")
    return pick[0]


def model_metadata(config: dict, run: Path, *, metrics: dict | None, max_abs_diff: float,
                   n_parity: int, weights: str = "best") -> dict[str, str]:
    """The ``metadata_props`` of a run's exported model (keys of :mod:`cmcnn.serve.metadata`)."""
    from cmcore.observables import CHANNEL_UNITS

    attrs = config.get("dataset_attrs") or {}
    channels = list(config["channels"])
    try:
        units = json.loads(attrs["units"]) if attrs.get("units") else {}
    except (TypeError, ValueError):
        units = {}
    units = {c: units.get(c, CHANNEL_UNITS[c]) for c in channels}
    npix = int(config["npix"])
    scale = attrs.get("pixel_scale_arcsec")
    if scale is None:
        raise InputError(f"{run}: config.json records no pixel scale of the training dataset")
    try:
        ds_config = json.loads(attrs["config"]) if attrs.get("config") else {}
    except (TypeError, ValueError):
        ds_config = {}
    history = _best(run)
    training = {"run": run.name, "epochs": config.get("epochs"), "best_epoch": history.get("epoch"),
                "best_val_loss": history.get("val_loss"), "epochs_run": history.get("epochs_run"),
                "wall_seconds": history.get("wall_seconds"), "lr": config.get("lr"), "weights": weights,
                "batch_size": config.get("batch_size"), "decay": config.get("decay"), "seed": config.get("seed"),
                "n_train": config.get("n_train"), "n_validation": config.get("n_validation"),
                "optimizer": config.get("optimizer"), "augment": config.get("augment"),
                "schedule": config.get("schedule", "inverse-time"), "weight_decay": config.get("weight_decay", 0.0),
                "head": config.get("head", "paper"), "dropout": config.get("dropout"),
                "created": config.get("created")}
    z_scaling = (config.get("scaling") or {}).get("redshift")
    z_range = tuple(z_scaling["range"]) if config.get("redshift") and z_scaling else None
    if config.get("redshift") and z_range is None:
        raise InputError(f"{run}: a redshift-aware run without its training redshift range in config.json")
    return {
        "cmc_format": mi.FORMAT, "cmc_format_version": mi.FORMAT_VERSION,
        "channels": json.dumps(channels), "units": json.dumps(units),
        "npix": str(npix), "pixel_scale_arcsec": repr(float(scale)),
        "fov_arcmin": repr(float(attrs.get("fov_arcmin") or npix * float(scale) / 60.0)),
        "input_name": mi.INPUT_NAME, "input_layout": "NHWC", "input_dtype": "float32",
        "output_name": mi.OUTPUT_NAME, "output_units": mi.OUTPUT_UNITS,
        "instrument": str(ds_config.get("instrument", "unknown")),
        "instrument_detail": attrs.get("instrument") or "{}",
        "dataset_sha256": str(config.get("data_sha256", "")),
        "dataset_name": Path(str(config.get("data", ""))).name,
        "test_metrics": mi.NO_METRICS if metrics is None else json.dumps(metrics, allow_nan=False),
        "code_version": __version__, "trained_with": str(config.get("code_version", "")),
        "training": json.dumps(training), "scaling": json.dumps(config.get("scaling", {})),
        "parity_max_abs_diff": f"{max_abs_diff:.3g}", "parity_images": str(n_parity),
        **mi.io_metadata(z_range, bool(config.get("uncertainty"))),
        **({"fusion": json.dumps({"members": [m["channel"] for m in config["fusion"]["members"]],
                                  "weights": config["fusion"]["weights"], "intercept": config["fusion"]["intercept"],
                                  "fitted_on": config["fusion"]["fitted_on"]})} if "fusion" in config else {}),
        **({"error_calibration": json.dumps({"error_scale": config["error_scale"],
                                              "rule": "+-1 and +-2 sigma cover at least 68.3 and 95.4 % of the validation images",
                                              "coverage_validation": config.get("error_coverage_validation")})}
           if config.get("uncertainty") else {}),
        "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _best(run: Path) -> dict:
    from cmcnn.train.history import read_history

    path = run / "history.csv"
    if not path.is_file():
        return {}
    h = read_history(path)
    if h["epoch"].size == 0:
        return {}
    best = int(np.nanargmin(h["val_loss"]))
    return {"epoch": int(h["epoch"][best]), "val_loss": float(h["val_loss"][best]),
            "wall_seconds": float(np.nansum(h["seconds"])), "epochs_run": int(h["epoch"][-1])}


def validation_images(config: dict, data: str | os.PathLike | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``n`` validation images (n, npix, npix, C) of the run's dataset (or ``data``), and their redshifts."""
    from cmcnn.train.data import ImageSource

    path = Path(data) if data is not None else Path(str(config.get("data", "")))
    if not path.is_file():
        raise InputError(f"the parity check needs the training dataset's validation images: {path} "
                         "not found (pass --data)")
    source = ImageSource(path, config["channels"], cache="none")
    try:
        if source.npix != int(config["npix"]):
            raise InputError(f"{path} has {source.npix}-pixel images, the run {config['npix']}")
        rows = source.rows("validation")
        if rows.size == 0:
            rows = np.arange(source.n_images)
        rows = np.unique(rows[np.linspace(0, rows.size - 1, min(n, rows.size)).astype(np.int64)])
        return source.read(rows), source.label("redshift", rows).astype(np.float64)
    finally:
        source.close()


def validation_calibration(run: Path, data, config: dict, weights: str = "best"):
    """The mass calibration fitted on the run's validation predictions, and the error scale for the
    calibrated mass (:func:`cmcnn.train.calibration.error_scale` on the validation images)."""
    from cmcnn.train.calibration import fit_calibration
    from cmcnn.train.training import predict_run
    from cmcnn.train.calibration import error_scale

    if weights != "best":
        raise InputError("--calibrate uses the best weights (the validation predictions of the run)")
    cols = predict_run(run, data=data, split="validation")
    cal = fit_calibration(cols["log10_m200_true"], cols["log10_m200_pred"])
    scale = float(config.get("error_scale", 1.0))
    if "log10_m200_err" in cols:
        sigma = cols["log10_m200_err"] / scale   # the error head's raw σ
        r = np.abs(cal.apply(cols["log10_m200_pred"]) - cols["log10_m200_true"]) / (sigma / cal.slope)
        scale = error_scale(r)
    return cal, scale


def _halve(proto, full: bytes, images: np.ndarray, tolerance: float, redshift: np.ndarray | None = None) -> str:
    """Apply :func:`half_weights` to ``proto`` if it keeps predictions within ``tolerance``; describe it."""
    import copy

    trial = copy.deepcopy(proto)
    names = half_weights(trial)
    if not names:
        return "float32"
    diff = float(np.max(np.abs(onnx_predict(trial.SerializeToString(), images, redshift)
                               - onnx_predict(full, images, redshift))))
    if not diff <= tolerance:
        raise ParityError(f"float16 weights change the predictions of {len(images)} validation images by up to "
                          f"{diff:.3g} dex (> {tolerance:g}); export without --half-weights")
    proto.CopyFrom(trial)
    n = sum(int(np.prod(i.dims)) for i in proto.graph.initializer if i.name.endswith("__float16"))
    return (f"float16 for {n:,} weights in {len(names)} tensor(s) of >= {HALF_MIN_SIZE:,} values, float32 "
            f"elsewhere; compute float32; max |float16 - float32| on {len(images)} validation images "
            f"{diff:.2g} dex")


def export_run(run: str | os.PathLike, out: str | os.PathLike, *, weights: str = "best",
               data: str | os.PathLike | None = None, metrics: str | os.PathLike | None = None,
               opset: int = 17, n_check: int = 64, tolerance: float = 1e-5,
               half: bool = False, half_tolerance: float = 1e-4, calibrate: bool = False) -> ExportSummary:
    """Export a training run's network to ONNX, after checking onnxruntime against Keras.

    Parameters
    ----------
    run : path-like
        Run directory of ``cmc train``.
    out : path-like
        ONNX file to write (atomically; left untouched when the export fails).
    weights : {"best", "last"}
        Lowest-validation-loss weights (default) or those of the last epoch.
    data : path-like, optional
        Dataset for the parity images (default: the run's training dataset).
    metrics : path-like, optional
        An evaluation's ``metrics.json`` recorded as the test metrics; without it the
        metadata says ``none measured``.
    opset : int
        17 or 18.
    n_check : int
        Validation images in the parity check.
    tolerance : float
        Largest |onnxruntime − Keras| allowed [dex].
    half : bool
        Store the large weight matrices as float16 (:func:`half_weights`) when that
        changes the parity images' predictions by at most ``half_tolerance``.
    half_tolerance : float
        Largest |float16-stored − float32| prediction difference accepted [dex].
    calibrate : bool
        Undo regression to the mean inside the graph: the linear calibration of
        :mod:`cmcnn.train.calibration` fitted on the run's validation split (the error
        head's scale refitted on the calibrated residuals).

    Returns
    -------
    ExportSummary
    """
    from cmcnn.train.training import load_model

    run, out = Path(run), Path(out)
    if opset not in OPSETS:
        raise InputError(f"opset must be one of {OPSETS} (tf2onnx 1.17 rejects 19+), got {opset}")
    if n_check < 1:
        raise InputError(f"--check-images must be >= 1, got {n_check}")
    if out.suffix != ".onnx":
        raise InputError(f"output file must end in .onnx, got {out}")
    model, config = load_model(run, weights=weights)
    metrics_obj = read_metrics(metrics, run.name) if metrics is not None else None
    images, redshift = validation_images(config, data, n_check)
    error_scale = float(config.get("error_scale", 1.0))
    calibration = None
    if calibrate:
        calibration, error_scale = validation_calibration(run, data, config, weights)
    proto = keras_to_onnx(model, opset=opset, error_scale=error_scale,
                          calibration=None if calibration is None else (calibration.intercept, calibration.slope))
    full = proto.SerializeToString()
    cal = None if calibration is None else (calibration.intercept, calibration.slope)
    worst = parity(model, full, images, tolerance, redshift, error_scale, cal)
    meta = model_metadata(config, run, metrics=metrics_obj, max_abs_diff=worst, n_parity=len(images),
                          weights=weights)
    if calibration is not None:
        meta["mass_calibration"] = json.dumps({**calibration.to_dict(), "fitted_on": "validation",
                                               "rule": "log10_m200 = (network - intercept) / slope"})
        if "error_calibration" in meta:
            meta["error_calibration"] = json.dumps({**json.loads(meta["error_calibration"]),
                                                    "error_scale": error_scale / calibration.slope,
                                                    "after_mass_calibration": True})
    meta["weights_storage"] = "float32"
    if half:
        meta["weights_storage"] = _halve(proto, full, images, half_tolerance, redshift)
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "cmc"
    proto.producer_version = __version__
    proto.doc_string = (f"cmc network {run.name}: log10(M200c/Msun) from {mi.INPUT_NAME} "
                        f"(batch, {config['npix']}, {config['npix']}, {len(config['channels'])}) "
                        f"in physical units, channels {', '.join(config['channels'])}"
                        + (f", and {mi.REDSHIFT_NAME} (batch,)" if config.get("redshift") else "")
                        + (f"; also {mi.ERROR_NAME}, its 1-sigma error [dex]" if config.get("uncertainty") else ""))
    blob = proto.SerializeToString()
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as tmp:
        tmp.write_bytes(blob)
    return ExportSummary(out, opset, len(images), worst, meta)
