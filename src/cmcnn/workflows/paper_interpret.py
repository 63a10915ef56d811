"""The paper's interpretation (Yan et al. 2020, §4) for a set of trained single-channel networks.

For four test clusters spanning the mass range, each single-channel network gets its Deep
Dream change after two iterations (eq. 12, :func:`cmcnn.interpret.deepdream.deep_dream`) and its
Gaussian-mask map ΔM(a, b) (eq. 13, σ = 5 px, :func:`cmcnn.interpret.maskscan.mask_scan` on the
network exported to ONNX): one figure per channel, four rows (the clusters) of image, Deep
Dream and mask map, with circles at 0.15 R200 and R200 — the layout of the paper's Figs
8–11.  The mean ΔM of the mask centres inside 0.15 R200 and in the ring 0.15–1 R200
summarises where each network looks.  The F_cent/F_ring correlations with true mass
(:func:`cmcnn.interpret.core_ring.core_ring_analysis`) complete the section; the paper finds Pearson
coefficients of 0.58 for the core and 0.94 for the ring, for both X-ray bands.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from cmcore.datafile import open_dataset, read_labels, split_code
from cmcore.errors import InputError
from cmcore.fileio import atomic_write

from cmcnn.interpret.core_ring import CORE_FRACTION, core_ring_analysis, plot_core_ring, radii_arcmin

#: Deep Dream iterations of the paper's Figs 8–11.
DREAM_ITERATIONS = 2
#: Gaussian mask width [pixels] (§4).
MASK_SIGMA = 5.0


def pick_clusters(data: str | os.PathLike, n: int = 4, split: str = "test") -> list[int]:
    """Image rows of ``n`` distinct haloes of ``split`` whose masses are nearest to ``n`` evenly
    spaced values from the lightest to the heaviest halo of the split (first image of each halo)."""
    with open_dataset(data) as f:
        labels = read_labels(f, ("split", "log10_m200", "halo_id"))
    logm, hid = labels["log10_m200"], labels["halo_id"]
    rows = np.flatnonzero(labels["split"] == split_code(split))
    _, first = np.unique(hid[rows], return_index=True)
    rows = rows[np.sort(first)]
    if rows.size < n:
        raise InputError(f"{data}: the {split} split holds {rows.size} haloes, fewer than {n}")
    chosen: list[int] = []
    for target in np.linspace(logm[rows].min(), logm[rows].max(), n):
        free = [r for r in rows if r not in chosen]
        chosen.append(int(min(free, key=lambda r: (abs(logm[r] - target), r))))
    return sorted(chosen, key=lambda r: logm[r])


def _export(model, path: Path) -> None:
    """The run's network as ONNX, converted as ``cmc export`` converts it (so the scan sees the users' graph)."""
    import onnx

    from cmcnn.serve.export import keras_to_onnx

    with atomic_write(path) as tmp:
        onnx.save(keras_to_onnx(model), str(tmp))


def _figure(channel: str, panels: list[dict], out: Path, dpi: int = 100) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    fig, axes = plt.subplots(len(panels), 3, figsize=(9.6, 3.0 * len(panels)), squeeze=False)
    for row, p in zip(axes, panels):
        img = p["image"]
        s = np.median(np.abs(img)) or 1.0
        row[0].imshow(np.arcsinh(img / s), origin="lower", cmap="magma")
        row[0].set_title(f"{channel}, log M200 = {p['log10_m200_true']:.2f}", fontsize=9)
        for ax, data, title, unit in ((row[1], p["dream"], f"Deep Dream, {DREAM_ITERATIONS} it.", "change of I"),
                                      (row[2], p["mask"], f"mask ΔM (σ = {MASK_SIGMA:g} px)", "dex")):
            v = float(np.max(np.abs(data))) or 1.0
            im = ax.imshow(data, origin="lower", cmap="RdBu_r", vmin=-v, vmax=v)
            ax.set_title(title, fontsize=9)
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04).set_label(unit, fontsize=8)
        c = (img.shape[0] - 1) / 2.0
        for ax in row:
            for r in (CORE_FRACTION * p["theta200_px"], p["theta200_px"]):
                ax.add_patch(Circle((c, c), r, fill=False, color="k", lw=1.0))
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    with atomic_write(out) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return out


def interpret_networks(data: str | os.PathLike, runs: Mapping[str, str | os.PathLike], out: str | os.PathLike, *,
                       stride: int = 1, progress: bool = False) -> dict:
    """Figs 8–11 and the F_cent/F_ring table for single-channel runs trained on ``data``.

    Parameters
    ----------
    data
        The dataset the runs were trained on (its test split supplies the four clusters).
    runs
        Channel → training run directory of that channel's single-channel network.
    out
        Output folder: ``fig_<channel>.png``, ``<channel>.onnx``, ``core_ring.png``, ``interpret.json``.
    stride
        Mask centres every ``stride`` pixels (1: every pixel, as the paper).
    progress
        Print one line per network.

    Returns
    -------
    dict
        The content of ``interpret.json``: the clusters, per channel and cluster the predictions,
        the Deep Dream masses and the mean mask ΔM in the core and the ring, and the F_cent/F_ring rows.
    """
    from cmcnn.interpret.deepdream import deep_dream
    from cmcnn.interpret.maps import read_dataset_image
    from cmcnn.interpret.maskscan import ScanModel, mask_scan
    from cmcnn.train.training import load_model

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = pick_clusters(data)
    result: dict = {"data": str(data), "clusters": rows, "mask_sigma_px": MASK_SIGMA, "stride": int(stride),
                    "dream_iterations": DREAM_ITERATIONS, "networks": {}}
    for channel, run in runs.items():
        model, config = load_model(run)
        if list(config["channels"]) != [channel]:
            raise InputError(f"{run} is not a single-channel {channel} network (channels {config['channels']})")
        onnx_path = out / f"{channel}.onnx"
        _export(model, onnx_path)
        scan_model = ScanModel(onnx_path)
        panels, entries = [], []
        for k in rows:
            inp = read_dataset_image(data, k, [channel])
            dream = deep_dream(model, inp.image, iterations=DREAM_ITERATIONS)
            scan = mask_scan(scan_model, inp.image, sigma=MASK_SIGMA, stride=stride)
            npix = inp.image.shape[0]
            full = np.kron(scan.delta, np.ones((stride, stride)))[:npix, :npix]
            r = radii_arcmin(npix, inp.pixel_arcsec)
            core = r < CORE_FRACTION * inp.theta200_arcmin
            ring = (r >= CORE_FRACTION * inp.theta200_arcmin) & (r < inp.theta200_arcmin)
            theta_px = inp.theta200_arcmin * 60.0 / inp.pixel_arcsec
            panels.append({"image": inp.image[..., 0], "dream": dream.change[..., 0], "mask": full,
                           "log10_m200_true": inp.log10_m200_true, "theta200_px": theta_px})
            entries.append({"index": k, "log10_m200_true": inp.log10_m200_true,
                            "log10_m200_pred": scan.log10_m, "dream_log10_m": dream.log10_m,
                            "mask_mean_core_dex": float(full[core].mean()) if core.any() else None,
                            "mask_mean_ring_dex": float(full[ring].mean()) if ring.any() else None,
                            "mask_min_dex": float(full.min()), "mask_max_dex": float(full.max())})
        _figure(channel, panels, out / f"fig_{channel}.png")
        result["networks"][channel] = {"run": str(run), "figure": f"fig_{channel}.png", "clusters": entries}
        if progress:
            print(f"  interpreted {channel}: {len(rows)} clusters", flush=True)
    cr = core_ring_analysis(data, list(runs))
    plot_core_ring(cr, out / "core_ring.png")
    result["core_ring"] = {"n_images": cr["n_images"], "rows": cr["rows"]}
    with atomic_write(out / "interpret.json") as tmp:
        tmp.write_text(json.dumps(result, indent=1, allow_nan=True) + "\n")
    return result


def interpretation_markdown(folder: str | os.PathLike, rel: str) -> str:
    """The report's section from ``interpret.json`` in ``folder`` (figure paths prefixed by ``rel``)."""
    res = json.loads((Path(folder) / "interpret.json").read_text())

    def f(v, fmt):
        return "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, fmt)

    lines = ["## Interpretation (§4, Figs 8–11)", "",
             f"Four test clusters spanning the mass range; per single-channel network the Deep Dream change "
             f"after {res['dream_iterations']} iterations (eq. 12) and the Gaussian-mask map ΔM (eq. 13, "
             f"σ = {res['mask_sigma_px']:g} px, centres every {res['stride']} px), circles at 0.15 R200 and R200. "
             "Mean ΔM over the mask centres in the core (< 0.15 R200) and in the ring (0.15–1 R200): negative "
             "where masking lowers the mass, i.e. where the network reads mass. The paper: the X-ray networks "
             "lean on the outskirts more than on the core.", "",
             "| network | log M200 true | log M200 pred | mean ΔM core (dex) | mean ΔM ring (dex) |",
             "|---|---:|---:|---:|---:|"]
    for ch, net in res["networks"].items():
        for c in net["clusters"]:
            lines.append(f"| {ch} | {f(c['log10_m200_true'], '.2f')} | {f(c['log10_m200_pred'], '.2f')} | "
                         f"{f(c['mask_mean_core_dex'], '+.4f')} | {f(c['mask_mean_ring_dex'], '+.4f')} |")
    lines += [""] + [f"![{ch}]({rel}/{net['figure']})" for ch, net in res["networks"].items()] + [""]
    lines += [f"F_cent (signal within 0.15 R200) and F_ring (0.15–1 R200) against true mass over "
              f"{res['core_ring']['n_images']} images (the paper: Pearson 0.58 for the core, 0.94 for the ring, "
              "both X-ray bands):", "",
              "| channel | region | n | F ≤ 0 | Pearson r (log F, log M) | Spearman ρ |", "|---|---|---:|---:|---:|---:|"]
    for r in res["core_ring"]["rows"]:
        lines.append(f"| {r['channel']} | {r['region']} | {r['n']} | {r['n_nonpositive']} | "
                     f"{f(r['pearson_log'], '.3f')} | {f(r['spearman'], '.3f')} |")
    lines += ["", f"![core_ring]({rel}/core_ring.png)", ""]
    return "\n".join(lines)
