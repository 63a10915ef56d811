"""Bulk prediction with onnxruntime: :class:`Predictor`.

This path never imports TensorFlow: a user who only predicts needs onnxruntime (or
onnxruntime-gpu), NumPy, astropy and h5py.  The model is an ONNX file written by
``cmc export`` (:mod:`cmcnn.serve.export`); its metadata (:mod:`cmcnn.serve.metadata`) says what
every input must look like, and :mod:`cmcnn.serve.cutouts` checks each one.

Streaming: inputs are cut into batches of ``batch_size``; ``readers`` threads read
and check batches (at most ``readers + 1`` ahead, so memory does not grow with the
number of inputs) while the main thread runs the network (onnxruntime releases the
GIL); results come out in input order.

The example of :class:`Predictor` runs as a doctest.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from cmcore.errors import FileFormatError, InputError

from cmcnn.serve.cutouts import Batch, ReadOptions, expand_inputs, iter_batches
from cmcnn.serve.metadata import ERROR_NAME, INPUT_NAME, OUTPUT_NAME, REDSHIFT_NAME, ModelInfo

#: Short names accepted by ``--providers``.
PROVIDER_ALIASES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
                    "tensorrt": "TensorrtExecutionProvider", "rocm": "ROCMExecutionProvider",
                    "migraphx": "MIGraphXExecutionProvider", "coreml": "CoreMLExecutionProvider",
                    "dml": "DmlExecutionProvider", "openvino": "OpenVINOExecutionProvider"}


def resolve_providers(spec: str | Sequence[str] | None) -> list[str]:
    """Execution providers in priority order: CUDA then CPU when CUDA is available, else CPU.

    Parameters
    ----------
    spec : str or sequence of str, optional
        Comma-separated or listed names (``cuda``, ``cpu``, … or onnxruntime's full
        names).  A provider this onnxruntime build lacks is refused.
    """
    import onnxruntime as ort

    available = ort.get_available_providers()
    if spec is None:
        cuda = "CUDAExecutionProvider"
        return [cuda, "CPUExecutionProvider"] if cuda in available else ["CPUExecutionProvider"]
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    full = [PROVIDER_ALIASES.get(n.lower(), n) for n in names]
    missing = [n for n, f in zip(names, full) if f not in available]
    if missing or not full:
        raise InputError(f"execution provider(s) {', '.join(missing) or '(none)'} not available in this "
                         f"onnxruntime (available: {', '.join(available)})")
    return full


@dataclass(frozen=True)
class Result:
    """One input's outcome: a prediction, or the reason it was refused."""

    name: str
    hdu: int
    index: int
    log10_m200: float
    filled_pixels: int = 0
    reason: str | None = None
    redshift: float = float("nan")
    log10_m200_err: float = float("nan")


#: Images per onnxruntime call on CPU, whatever the batch given: the activations of 16
#: images of 120 × 120 stay in cache (bench/results/inference.txt: 14-19 % more images per
#: CPU-second than 64 at once).
CPU_BLOCK = 16


class Predictor:
    """A cmc ONNX model in an onnxruntime session.

    Parameters
    ----------
    model : path-like or str
        ONNX file from ``cmc export``, or a shipped model's name (``Star``, ``Fxs``,
        ``Fxb``, ``Ypar``, ``multi``; :mod:`cmcnn.serve.shipped`).
    providers : str or sequence of str, optional
        Execution providers (:func:`resolve_providers`); default CUDA when available, else CPU.
    threads : int, optional
        onnxruntime intra-op threads (default: one per core).
    spinning : bool
        Let onnxruntime's idle threads spin-wait for work (its default).  Off here:
        between batches the cores are better spent by the reader threads.

    Attributes
    ----------
    info : ModelInfo
        Channels, units, image size, pixel scale … from the model's metadata.
    providers : list of str
        The providers the session actually uses.

    Examples
    --------
    The shipped Compton-y network on one 20′ cutout at z = 0.05 (here a smooth blob in the
    model's units, Compton-y):

    >>> import numpy as np
    >>> from cmcnn import Predictor
    >>> p = Predictor("Ypar")
    >>> p.info.channels, p.info.takes_redshift, p.info.redshift_range
    (('Ypar',), True, (0.03, 0.07))
    >>> yy, xx = np.mgrid[:120, :120] - 59.5
    >>> image = (3e-6 * np.exp(-(xx**2 + yy**2) / 200.0)).astype(np.float32)
    >>> logm, err = p.predict(image, redshift=0.05, return_error=True)
    >>> bool(13.0 < logm[0] < 15.5), bool(0.0 < err[0] < 0.5)
    (True, True)
    >>> p.predict(image, redshift=0.2)
    Traceback (most recent call last):
    ...
    cmcore.errors.InputError: 1 redshift(s) outside the training range 0.03-0.07 (first: index 0, z = 0.2)
    """

    def __init__(self, model: str | os.PathLike, *, providers: str | Sequence[str] | None = None,
                 threads: int | None = None, spinning: bool = False) -> None:
        import onnxruntime as ort

        from cmcnn.serve.shipped import resolve_model

        self.path = resolve_model(model)
        wanted = resolve_providers(providers)
        if "CUDAExecutionProvider" in wanted and hasattr(ort, "preload_dlls"):
            try:  # CUDA/cuDNN from the nvidia-* wheels of onnxruntime-gpu[cuda,cudnn], if present
                ort.preload_dlls()
            except Exception:  # noqa: BLE001 - system libraries may serve instead
                pass
        opts = ort.SessionOptions()
        if threads is not None:
            if threads < 0:
                raise InputError(f"--threads must be >= 0, got {threads}")
            opts.intra_op_num_threads = threads
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=wanted)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types
            raise FileFormatError(f"{self.path} is not a loadable ONNX model ({exc})") from None
        self.info = ModelInfo.from_metadata(self.session.get_modelmeta().custom_metadata_map, str(self.path))
        inputs = self.session.get_inputs()
        inp = inputs[0]
        if inp.name != INPUT_NAME or len(inp.shape) != 4 or tuple(inp.shape[1:]) != self.info.input_shape:
            raise FileFormatError(f"{self.path}: input {inp.name} {inp.shape} does not match its metadata "
                                  f"(image (batch, {', '.join(map(str, self.info.input_shape))}))")
        names = [i.name for i in inputs]
        if names != [INPUT_NAME] + ([REDSHIFT_NAME] if self.info.takes_redshift else []):
            raise FileFormatError(f"{self.path}: inputs {names} do not match its metadata "
                                  f"({'image and redshift' if self.info.takes_redshift else 'image only'})")
        outputs = [o.name for o in self.session.get_outputs()]
        self._outputs = [OUTPUT_NAME] + ([ERROR_NAME] if self.info.has_error else [])
        if sorted(outputs) != sorted(self._outputs):
            raise FileFormatError(f"{self.path}: outputs {outputs} do not match its metadata ({self._outputs})")
        self.providers = self.session.get_providers()
        self._split = self._split_preprocessing(opts, wanted) if self.providers[0] == "CPUExecutionProvider" else None

    def _split_preprocessing(self, opts, providers):
        """On CPU, the asinh preprocessing in NumPy and the rest in onnxruntime, when that is exact.

        onnxruntime's CPU ``Asinh`` is scalar code (tens of ns a value, about as long as
        the rest of the network per image); NumPy's is vectorised.  The split is used
        only when it reproduces the whole graph to 1e-5 dex (as the export is checked) on a
        probe batch.
        """
        import onnx
        import onnxruntime as ort

        from cmcnn.serve.split import SplitNetwork

        try:
            split = SplitNetwork(onnx.load(str(self.path)),
                                 lambda b: ort.InferenceSession(b, opts, providers=providers))
        except Exception:  # noqa: BLE001 - unsupported or unsplittable graph: keep it whole
            return None
        rng = np.random.default_rng(0)
        probe = rng.lognormal(0.0, 3.0, (4, *self.info.input_shape)).astype(np.float32)
        probe *= rng.choice([-1e-3, 1.0], probe.shape).astype(np.float32)
        feeds = {INPUT_NAME: probe}
        if self.info.takes_redshift:
            feeds[REDSHIFT_NAME] = np.linspace(*self.info.redshift_range, 4).astype(np.float32)
        whole = self.session.run(self._outputs, feeds)
        ok = all(np.allclose(a, b, rtol=0.0, atol=1e-5)  # the export parity criterion
                 for a, b in zip(split.run(probe, feeds.get(REDSHIFT_NAME), self._outputs), whole))
        return split if ok else None

    # ---------------------------------------------------------------- arrays
    def run(self, images: np.ndarray, redshift: np.ndarray | None = None) -> np.ndarray:
        """The network on one batch (k, npix, npix, C) float32, unchecked; returns (k,) float64 log10 M200."""
        return self.run_with_error(images, redshift)[0]

    def run_with_error(self, images: np.ndarray,
                       redshift: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """The network on one batch, unchecked: log10 M200 and its 1σ error (None without an error output).

        ``redshift`` (k,) is required by a redshift-aware model and ignored otherwise.
        """
        if len(images) == 0:
            return np.zeros(0), (np.zeros(0) if self.info.has_error else None)
        x = np.ascontiguousarray(images, dtype=np.float32)
        z = None
        if self.info.takes_redshift:
            if redshift is None:
                raise InputError(f"{self.path.name} takes each image's redshift: give redshift=")
            z = np.ascontiguousarray(np.asarray(redshift, dtype=np.float32).reshape(-1))
        step = CPU_BLOCK if self.providers[0] == "CPUExecutionProvider" else len(x)
        parts = [self._forward(x[s:s + step], None if z is None else z[s:s + step]) for s in range(0, len(x), step)]
        out = [np.concatenate([p[k] for p in parts]) if len(parts) > 1 else parts[0][k] for k in range(len(parts[0]))]
        logm = out[0].reshape(-1).astype(np.float64)
        return logm, (out[1].reshape(-1).astype(np.float64) if self.info.has_error else None)

    def _forward(self, x: np.ndarray, z: np.ndarray | None) -> list[np.ndarray]:
        if self._split is not None:
            return self._split.run(x, z, self._outputs)
        feeds = {INPUT_NAME: x} if z is None else {INPUT_NAME: x, REDSHIFT_NAME: z}
        return self.session.run(self._outputs, feeds)

    def predict(self, images: np.ndarray, batch_size: int = 256, redshift=None,
                return_error: bool = False, extrapolate: bool = False):
        """log10(M200c/M☉) of images in the model's physical units (and its error).

        Parameters
        ----------
        images : array_like
            (n, npix, npix, C) (NHWC, channels in ``info.channels`` order), or
            (n, npix, npix) for a single-channel model, or one image without the
            leading axis.  Must be finite.
        batch_size : int
            Images per onnxruntime call.
        redshift : float or array_like, optional
            The images' redshifts (one for all, or one each), needed by a redshift-aware
            model (``info.takes_redshift``); each must lie in ``info.redshift_range``.
        return_error : bool
            Also return the calibrated 1σ error of log10 M200 [dex] (models with an error output).
        extrapolate : bool
            Accept redshifts outside the training range.

        Returns
        -------
        ndarray, (n,), or (ndarray, ndarray) with ``return_error``
        """
        x = np.asarray(images)
        npix, c = self.info.npix, self.info.n_channels
        if x.shape == (npix, npix, c) or (c == 1 and x.shape == (npix, npix)):
            x = x.reshape(1, npix, npix, c)
        elif c == 1 and x.ndim == 3 and x.shape[1:] == (npix, npix):
            x = x[..., None]
        if x.ndim != 4 or x.shape[1:] != (npix, npix, c):
            raise InputError(f"images of shape {x.shape}: the model takes (n, {npix}, {npix}, {c}) "
                             f"(channels {', '.join(self.info.channels)})")
        x = x.astype(np.float32, copy=False)
        bad = ~np.isfinite(x).reshape(len(x), -1).all(axis=1)
        if bad.any():
            raise InputError(f"{int(bad.sum())} image(s) contain NaN or inf (first: index {int(np.argmax(bad))})")
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        z = self._check_redshift(redshift, len(x), extrapolate)
        if return_error and not self.info.has_error:
            raise InputError(f"{self.path.name} has no error output (train with the error head)")
        parts = [self.run_with_error(x[s:s + batch_size], None if z is None else z[s:s + batch_size])
                 for s in range(0, len(x), batch_size)]
        logm = np.concatenate([p[0] for p in parts] or [np.zeros(0)])
        if not return_error:
            return logm
        return logm, np.concatenate([p[1] for p in parts] or [np.zeros(0)])

    def _check_redshift(self, redshift, n: int, extrapolate: bool = False) -> np.ndarray | None:
        if not self.info.takes_redshift:
            return None
        lo, hi = self.info.redshift_range
        if redshift is None:
            raise InputError(f"{self.path.name} takes image + redshift (trained on {lo:g} <= z <= {hi:g}): "
                             "give redshift=")
        z = np.broadcast_to(np.asarray(redshift, dtype=np.float64).reshape(-1), (n,)) if np.ndim(redshift) == 0 \
            else np.asarray(redshift, dtype=np.float64).reshape(-1)
        if z.shape != (n,):
            raise InputError(f"{z.size} redshifts for {n} images")
        bad = ~np.isfinite(z) | (z <= 0) | (((z < lo) | (z > hi)) & (not extrapolate))
        if bad.any():
            k = int(np.argmax(bad))
            raise InputError(f"{int(bad.sum())} redshift(s) outside the training range {lo:g}-{hi:g} "
                             f"(first: index {k}, z = {z[k]})")
        return z

    # ---------------------------------------------------------------- files
    def stream(self, inputs: Iterable[str | os.PathLike], *, options: ReadOptions | None = None,
               batch_size: int = 64, readers: int = 2, on_total=None) -> Iterator[tuple[Batch, np.ndarray]]:
        """Read, check and predict inputs batch by batch, in input order.

        Parameters
        ----------
        inputs : iterable of path-like
            FITS files, directories, glob patterns, ``.npy`` stacks, cmc dataset files.
        options : ReadOptions, optional
            Checks and the non-finite policy (:mod:`cmcnn.serve.cutouts`).
        batch_size : int
            Inputs per batch.
        readers : int
            Reader threads (≥ 1).
        on_total : callable, optional
            Called once with the number of inputs found, before the first batch.

        Yields
        ------
        (Batch, ndarray)
            The batch (names, HDUs, indices, refusals) and its log10 M200.
        """
        options = options or ReadOptions()
        if batch_size < 1 or readers < 1:
            raise InputError(f"--batch-size and --readers must be >= 1, got {batch_size} and {readers}")
        sources = expand_inputs(inputs, self.info, options)
        if on_total is not None:
            on_total(sum(s.n for s in sources))
        with ThreadPoolExecutor(readers, thread_name_prefix="cmc-reader") as pool:
            for batch in iter_batches(sources, self.info, options, batch_size, pool.submit, readers + 1):
                logm, batch.log10_err = self.run_with_error(batch.images, batch.redshift)
                yield batch, logm

    def predict_files(self, inputs: Iterable[str | os.PathLike], **kwargs) -> Iterator[Result]:
        """:meth:`stream` one :class:`Result` at a time (refusals included, with their reason)."""
        for batch, logm in self.stream(inputs, **kwargs):
            for name, reason in batch.refusals:
                yield Result(name, -1, -1, float("nan"), 0, reason)
            for i, name in enumerate(batch.names):
                yield Result(name, int(batch.hdus[i]), int(batch.indices[i]), float(logm[i]),
                             int(batch.filled[i]), None, float(batch.redshift[i]),
                             float("nan") if batch.log10_err is None else float(batch.log10_err[i]))
