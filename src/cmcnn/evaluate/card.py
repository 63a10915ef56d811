"""Model cards of exported networks: what a model is, how it was made, how well it does.

A card (Markdown, written next to the model as ``<model>.md``) is built from two sources
only, so that it can always be rebuilt and checked:

- the ONNX file's metadata (:mod:`cmcnn.serve.metadata`, written by ``cmc export``): channels,
  units, image size, instrument, the training dataset's SHA-256, the training run
  (epochs, best epoch, learning rate, wall time), weight storage, code version;
- the ``metrics.json`` of ``cmc evaluate MODEL.onnx --data DATA --baseline CHANNELS``: the
  network's Table 2 numbers on the test split, computed through onnxruntime from the ONNX
  file itself, and those of the classical baseline of the same channels on the same images.

Running the card's "Check" command on the regenerated dataset reproduces its table.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from cmcore.errors import FileFormatError, InputError
from cmcore.fileio import atomic_write

from cmcnn.evaluate.report import PAPER, PAPER_TABLE2, TABLE2_HEADER, _f, _pm, table


def _metadata(model: Path) -> dict[str, str]:
    import onnx

    try:
        proto = onnx.load(os.fspath(model), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file
        raise FileFormatError(f"{model}: not a readable ONNX model ({exc.__class__.__name__})") from None
    return {p.key: p.value for p in proto.metadata_props}


def _instrument(meta: dict[str, str], channels: list[str]) -> str:
    """Noise rms and beam of the model's channels, from the export's ``instrument_detail``."""
    try:
        detail = json.loads(meta.get("instrument_detail") or "{}").get("channels", {})
    except (TypeError, ValueError, AttributeError):
        detail = {}
    units = json.loads(meta.get("units") or "{}")

    def unit(c: str) -> str:
        text = str(detail[c].get("noise_unit", ""))
        return text.replace("channel unit", units.get(c) or "dimensionless")

    parts = [f"{c}: noise {detail[c]['noise_rms']:.3g} {unit(c)}, beam FWHM "
             f"{60.0 * float(detail[c].get('beam_fwhm_arcmin', 0.0)):.3g}″" for c in channels if c in detail]
    return "; ".join(parts) or "noise and beam not recorded"


def _recipe(training: dict) -> str:
    """The optimiser and schedule of a training, in words."""
    opt = {"rmsprop": "RMSprop", "adam": "Adam", "sgd": "SGD"}.get(str(training.get("optimizer")), "?")
    if training.get("schedule") == "cosine":
        sched = f"lr {training.get('lr')} annealed to 0 by a cosine"
    else:
        sched = f"lr {training.get('lr')} with inverse-time decay {training.get('decay')}"
    wd = training.get("weight_decay") or 0.0
    return f"{opt}, {sched}" + (f", weight decay {wd:g} (biases spared)" if wd else "")


def _coverage_lines(net: dict) -> list[str]:
    cov = net.get("coverage")
    if not cov:
        return []
    c68, c95 = cov["68"], cov["95"]
    return [f"Predicted errors on these test images: ±1σ holds {100 * c68['observed']:.1f} ± {100 * c68['se']:.1f} % "
            f"(nominal 68.3 %), ±2σ {100 * c95['observed']:.1f} ± {100 * c95['se']:.1f} % (nominal 95.4 %); median "
            f"error {cov['median_err_dex']:.3f} dex.", ""]


def card_rows(model: Path, metrics: dict) -> tuple[dict, list[dict]]:
    """The network's estimator and the baselines of its channels from an evaluation's ``metrics.json``."""
    from cmcore.fileio import file_sha256

    ests = metrics.get("estimators") or []
    digest = file_sha256(model)
    nets = [e for e in ests if e.get("kind") == "network" and str(e.get("source", "")).endswith(".onnx")
            and Path(e["source"]).is_file() and file_sha256(e["source"]) == digest]
    if len(nets) != 1:
        raise InputError(f"the evaluation holds no network evaluated from {model.name} (its ONNX file, compared "
                         f"by SHA-256; run `cmc evaluate {model} --data DATA --baseline CHANNELS --out REPORT`)")
    net = nets[0]
    base = [e for e in ests if e.get("kind") == "baseline" and set(e.get("channels") or []) <= set(net["channels"])
            and not e["name"].endswith("calibrated")]
    return net, base


def write_card(model: str | os.PathLike, report: str | os.PathLike, out: str | os.PathLike | None = None, *,
               regenerate: str = "", check: str = "") -> Path:
    """Write the model card of ``model`` from its metadata and an evaluation ``report`` folder.

    Parameters
    ----------
    model : path-like
        ONNX file from ``cmc export``.
    report : path-like
        Folder of ``cmc evaluate MODEL --data DATA --baseline CHANNELS`` (its ``metrics.json``).
    out : path-like, optional
        Card to write (default: the model's path with ``.md``).
    regenerate, check : str
        Shell commands shown in the card: how to regenerate the model, and how to check
        the card's numbers.

    Returns
    -------
    Path
        The card.
    """
    model = Path(model)
    out = Path(out) if out is not None else model.with_suffix(".md")
    meta = _metadata(model)
    if "channels" not in meta or "training" not in meta:
        raise FileFormatError(f"{model} has no cmc metadata (was it written by `cmc export`?)")
    path = Path(report) / "metrics.json"
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise FileFormatError(f"{path}: not an evaluation metrics.json ({exc})") from None
    net, baselines = card_rows(model, metrics)
    channels = json.loads(meta["channels"])
    units = json.loads(meta["units"])
    training = json.loads(meta["training"])
    name = model.stem
    paper = PAPER_TABLE2.get(name)
    lo, hi = metrics.get("central_range", (13.25, 14.5))

    def row(label: str, t: dict, p: dict | None) -> list[str]:
        quoted = ([_pm(p["log_bias"], p["log_bias_se"], "+.3f"), _pm(p["frac_bias_pct"], p["frac_bias_pct_se"], "+.2f"),
                   _f(p["rms_pct"], ".1f")] if p else ["–", "–", "–"])
        return [label, *quoted, str(t["n"]), _pm(t["log_bias"], t["log_bias_se"], "+.4f"),
                _pm(t["frac_bias_pct"], t["frac_bias_pct_se"], "+.2f"), _f(t["rms_pct"], ".2f"),
                _pm(t["scatter_dex"], t.get("scatter_dex_se"), ".4f")]

    inputs = json.loads(meta.get("inputs", '["image"]'))
    outputs = json.loads(meta.get("outputs", '["log10_m200"]'))
    given = "image + z" if "redshift" in inputs else "image only"
    rows = [row(f"{name} network (this model, {given})", net["table2"], paper)]
    rows += [row(b["name"], b["table2"], None) for b in baselines]
    wall = training.get("wall_seconds")
    if training.get("weights", "best") == "last":
        weights_text = f"the weights of the last epoch, {training.get('epochs_run')}"
    else:
        weights_text = (f"weights of epoch {training.get('best_epoch')}, the lowest validation loss "
                        f"{_f(training.get('best_val_loss'), '.5f')}")
    unit_list = "; ".join(f"{c}: {units[c] or 'dimensionless'}" for c in channels)
    fusion = json.loads(meta["fusion"]) if "fusion" in meta else None
    what = (f"The multi-channel network on {', '.join(channels)}: the single-channel CNNs of {PAPER}, one per "
            "channel, their masses combined linearly" if fusion else
            f"The {'multi-channel' if len(channels) > 1 else 'single-channel'} CNN of {PAPER} on {', '.join(channels)}")
    lines = [
        f"# Model card: `{model.name}`",
        "",
        f"{what}: log10(M200c/M☉) of a galaxy cluster from its mock image.",
        "",
        "## Inputs and output",
        "",
        f"- input `{meta.get('input_name', 'image')}`: float32 (batch, {meta['npix']}, {meta['npix']}, {len(channels)}), "
        f"NHWC, channels in the order {', '.join(channels)}, in physical units "
        f"({unit_list}); the asinh scaling is inside the graph",
        f"- pixels of {float(meta['pixel_scale_arcsec']):g}″ ({float(meta['fov_arcmin']):g}′ field); instrument "
        f"`{meta.get('instrument', 'unknown')}` ({_instrument(meta, channels)})",
        *([f"- input `redshift`: float32 (batch,), each cluster's redshift; trained on "
           f"{json.loads(meta['redshift_range'])[0]:g} <= z <= {json.loads(meta['redshift_range'])[1]:g} "
           "(`cmc predict` refuses other redshifts unless `--extrapolate`)"] if "redshift" in inputs else
          ["- no redshift input: the network infers the distance from the image (the paper's networks)"]),
        f"- output `{meta.get('output_name', 'log10_m200')}`: {meta.get('output_units', 'log10(M200c/Msun)')}",
        *([f"- output `log10_m200_err`: the 1σ error of log10 M200 [dex] from the error head, scaled by "
           f"{json.loads(meta['error_calibration'])['error_scale']:.3f} so that ±1σ and ±2σ cover at least 68.3 % "
           "and 95.4 % of the validation images"] if "log10_m200_err" in outputs and "error_calibration" in meta else []),
        *([f"- calibrated against regression to the mean inside the graph: log10_m200 = (network − "
           f"{json.loads(meta['mass_calibration'])['intercept']:.4f}) / "
           f"{json.loads(meta['mass_calibration'])['slope']:.4f}, the linear fit of the network's log M on the "
           "true one over the validation split (`cmc export --calibrate`; docs/evaluation.md)"]
          if "mass_calibration" in meta else []),
        f"- weights: {meta.get('weights_storage', 'float32')}; onnxruntime matches TensorFlow on "
        f"{meta.get('parity_images', '?')} validation images to {meta.get('parity_max_abs_diff', '?')} dex",
        "",
        "## Training",
        "",
        f"- data: `{meta.get('dataset_name', '?')}` (SHA-256 `{meta.get('dataset_sha256', '?')}`), "
        f"{training.get('n_train')} training and {training.get('n_validation')} validation images, split by halo",
        *([f"- `cmc fuse`: log10 M = {fusion['intercept']:+.4f} "
           + " ".join(f"{w:+.4f} μ({c})" for w, c in zip(fusion["weights"], fusion["members"]))
           + ", μ(c) the single-channel networks' masses (each trained as its own card says), the weights the "
           "least-squares fit over the validation split; errors the members' combined and rescaled on validation"]
          if fusion else
          [f"- `cmc train`: {training.get('epochs_run') or training.get('epochs')} epochs ({weights_text}), "
           f"{_recipe(training)}, batch {training.get('batch_size')}, seed {training.get('seed')}, augmentation "
           f"{'by the 8 symmetries of the square' if training.get('augment') else 'off'}, "
           f"{'compact' if training.get('head') == 'compact' else 'the paper'}'s dense head"]),
        f"- wall time: {_f(None if wall is None else wall / 60.0, '.1f')} min (sum of the epochs' times in "
        f"`history.csv`, on the training machine); trained with cmc {meta.get('trained_with') or '?'}, exported with cmc "
        f"{meta.get('code_version', '?')} on {meta.get('exported', '?')[:10]}",
        "",
        "## Test metrics (Table 2 form)",
        "",
        f"Test split ({net['n_images']} images, haloes never seen in training), "
        f"{lo} < log10 M200,true < {hi}; the network predicted through onnxruntime from this file; the "
        "classical baseline (aperture sum and power law per channel) fitted on the same training split. "
        f"Paper columns: {PAPER}, Table 2 (BAHAMAS + MACSIS, 1000 epochs).",
        "",
        table(TABLE2_HEADER, rows),
        "",
        "RMS: root mean square of M_pred/M_true − 1; σ: standard deviation of log10(M_pred/M_true); ± one "
        "standard error, by bootstrap over haloes. Each row says what the estimator is given: compare the "
        "network with the baseline that knows what it knows.",
        "",
        *_coverage_lines(net),
    ]
    if regenerate:
        lines += ["## Regenerate", "", "```bash", regenerate.strip(), "```", ""]
    if check:
        lines += ["## Check this card", "", "```bash", check.strip(), "```", ""]
    with atomic_write(out) as tmp:
        tmp.write_text("\n".join(lines))
    return out
