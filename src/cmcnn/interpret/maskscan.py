"""Gaussian-mask scans of a network exported to ONNX (Yan et al. 2020, §4, eq. 13).

``ΔM(a, b) = M_pred(I · Mask_ab) − M_pred(I)`` [dex] for every mask centre, by brute force
(one forward pass per centre) or by the exact windowed reuse of unchanged feature cells
(``fast``, the default; the two agree to float32 rounding).  The method and its proof of
exactness are in ``docs/interpret.md`` ("Fast and exact").
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from collections import defaultdict
from collections.abc import Callable

import numpy as np

from cmcore.errors import FileFormatError, InputError

from cmcnn.serve.split import NumpyGraph, Unsupported, node_attributes

#: Pooling factor of each stage and of a whole feature stack (three stages).
POOL = 2


def gaussian_mask(shape: tuple[int, int], a: float, b: float, sigma: float) -> np.ndarray:
    """The paper's eq. 13: ``1 − exp(−((i − a)² + (j − b)²) / (2σ²))`` as float32.

    Parameters
    ----------
    shape : (int, int)
        Image shape (rows, columns).
    a, b : float
        Mask centre: row ``a``, column ``b`` [pixels, 0-based pixel centres].
    sigma : float
        Gaussian width [pixels] (the paper: 5).

    Returns
    -------
    ndarray, float32
        Evaluated in float64 and rounded once to float32.
    """
    if not sigma > 0:
        raise InputError(f"sigma must be positive, got {sigma}")
    i = np.arange(shape[0], dtype=np.float64)[:, None]
    j = np.arange(shape[1], dtype=np.float64)[None, :]
    return _mask_of_r2((i - a) ** 2 + (j - b) ** 2, sigma)


def _mask_of_r2(r2: np.ndarray, sigma: float) -> np.ndarray:
    return (1.0 - np.exp(-r2 / (2.0 * float(sigma) ** 2))).astype(np.float32)


def mask_radius(sigma: float) -> int:
    """Largest offset d [pixels] at which the float32 mask still differs from 1.

    ``float32(1 − e)`` is 1 exactly when ``e ≤ 2⁻²⁵`` (round to nearest even), i.e.
    beyond ``σ √(50 ln 2) ≈ 5.887 σ``; since ``e(di, dj) ≤ e(di, 0)``, every pixel
    the mask changes lies in the square of half-width ``R`` around the centre.
    """
    if not sigma > 0:
        raise InputError(f"sigma must be positive, got {sigma}")
    d = int(np.ceil(sigma * np.sqrt(50.0 * np.log(2.0)))) + 2
    while d > 0 and _mask_of_r2(np.array(float(d * d)), sigma) == np.float32(1.0):
        d -= 1
    return d


def scan_centres(npix: int, stride: int) -> np.ndarray:
    """Mask centres along one axis: 0, stride, 2·stride, … < npix (pixel indices)."""
    if stride < 1:
        raise InputError(f"stride must be >= 1, got {stride}")
    return np.arange(0, npix, stride)


@dataclasses.dataclass
class _Stage:
    weight: np.ndarray     # (cout, cin, 3, 3)
    bias: np.ndarray       # (cout,)
    session: object        # onnxruntime session: Conv(valid) → Relu → AveragePool


@dataclasses.dataclass
class _Stack:
    conv_input: str        # tensor feeding the first convolution (NCHW)
    pool_output: str       # tensor of the last pooling (NCHW), input of the tail
    stages: list


def _const(name: str, inits: dict, constants: dict) -> np.ndarray:
    if name in inits:
        return inits[name]
    if name in constants:
        return constants[name]
    raise FileFormatError(f"weights {name!r} are not constant in the ONNX graph")


def _stage_graph(weight: np.ndarray, bias: np.ndarray, opset: int = 17) -> bytes:
    """Conv 3×3 (no padding) → Relu → AveragePool 2×2/2, NCHW, dynamic batch and size."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    cout, cin = weight.shape[:2]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", cin, "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", cout, "ph", "pw"])
    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["c"], kernel_shape=[3, 3], pads=[0, 0, 0, 0],
                         strides=[1, 1], dilations=[1, 1], group=1),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("AveragePool", ["r"], ["y"], kernel_shape=[2, 2], strides=[2, 2]),
    ]
    inits = [numpy_helper.from_array(weight.astype(np.float32), "W"),
             numpy_helper.from_array(bias.astype(np.float32), "B")]
    graph = helper.make_graph(nodes, "stage", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _session(model_bytes: bytes | str, threads: int | None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    # several sessions run in turn: idle pools must not spin on the cores the next one needs
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        opts.intra_op_num_threads = int(threads)
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                 if p in ort.get_available_providers()]
    return ort.InferenceSession(model_bytes, opts, providers=providers)


class ScanModel:
    """An exported cmc network, split for exact windowed mask scans.

    Parameters
    ----------
    path : path-like or str
        ONNX file of a network of :func:`cmcnn.train.models.build_model` (input
        ``(batch, npix, npix, C)`` float32 in physical units, output log10 M200), or a
        shipped model's name (:mod:`cmcnn.serve.shipped`).
    threads : int, optional
        onnxruntime intra-op threads (default: one per core).
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        import onnx

        from cmcnn.serve.shipped import resolve_model

        self.path = os.fspath(resolve_model(path))
        try:
            model = onnx.load(self.path)
        except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file
            raise FileFormatError(f"{self.path}: not a readable ONNX model ({exc.__class__.__name__})") from exc
        self.threads = threads
        #: the model's ``metadata_props`` (:mod:`cmcnn.serve.metadata`: channels, units, …)
        self.metadata = {p.key: p.value for p in model.metadata_props}
        self.full = _session(model.SerializeToString(), threads)
        g = model.graph
        inits = {t.name for t in g.initializer}
        inputs = [i for i in g.input if i.name not in inits]
        outputs = [o.name for o in g.output]
        if not 1 <= len(inputs) <= 2 or not 1 <= len(outputs) <= 2:
            raise FileFormatError(f"{self.path}: expected an image input (and a redshift) and one or two outputs")
        self.input_name = inputs[0].name
        #: the redshift input of a redshift-aware network (None otherwise), fed :attr:`redshift`
        self.redshift_input = inputs[1].name if len(inputs) == 2 else None
        #: the redshift the scan predicts at (a redshift-aware network needs one: :func:`mask_scan`)
        self.redshift: float | None = None
        self.output_name = "log10_m200" if "log10_m200" in outputs else outputs[0]
        dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim]
        if len(dims) != 4 or dims[1] != dims[2] or dims[1] <= 0 or dims[3] <= 0:
            raise FileFormatError(f"{self.path}: input {self.input_name!r} is not (batch, npix, npix, C)")
        self.npix, self.n_channels = int(dims[1]), int(dims[3])
        self.stacks = self._find_stacks(model)
        self.n_stages = len(self.stacks[0].stages)
        if self.npix % POOL ** self.n_stages:
            raise FileFormatError(f"{self.path}: npix {self.npix} is not a multiple of {POOL ** self.n_stages}")
        known = {v.name for v in list(g.value_info) + list(g.input) + list(g.output)}
        for name in [s.conv_input for s in self.stacks] + [s.pool_output for s in self.stacks]:
            if name not in known:   # the extractor needs a value_info for each cut
                g.value_info.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
        extractor = onnx.utils.Extractor(model)
        pre = extractor.extract_model([self.input_name], [s.conv_input for s in self.stacks])
        tail = extractor.extract_model([s.pool_output for s in self.stacks]
                                       + ([self.redshift_input] if self.redshift_input else []), [self.output_name])
        self.pre_onnx = _session(pre.SerializeToString(), threads)
        try:
            self.pre = NumpyGraph(pre)
        except Unsupported:
            self.pre = self.pre_onnx
        self.tail = _session(tail.SerializeToString(), threads)
        if self.redshift_input:  # the decomposition is checked at the middle of the training range
            z_range = json.loads(self.metadata.get("redshift_range", "[0.05, 0.05]"))
            self.redshift = float(np.mean(z_range))
        self._check_decomposition()
        if self.redshift_input:
            self.redshift = None

    def _z(self, n: int) -> dict:
        """The redshift feed of a batch of ``n`` (empty for an image-only network)."""
        if self.redshift_input is None:
            return {}
        if self.redshift is None:
            raise InputError(f"{os.path.basename(self.path)} takes image + redshift: scan with redshift=")
        return {self.redshift_input: np.full(n, self.redshift, dtype=np.float32)}

    # -------------------------------------------------------------- structure
    def _find_stacks(self, model) -> list[_Stack]:
        from onnx import numpy_helper

        g = model.graph
        inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        constants = {n.output[0]: numpy_helper.to_array(node_attributes(n)["value"])
                     for n in g.node if n.op_type == "Constant" and "value" in node_attributes(n)}
        producer = {o: n for n in g.node for o in n.output}
        consumers = defaultdict(list)
        for n in g.node:
            for i in n.input:
                consumers[i].append(n)

        def only_consumer(tensor: str, op: str):
            users = consumers.get(tensor, [])
            if len(users) != 1 or users[0].op_type != op:
                raise FileFormatError(f"{self.path}: after {tensor!r} expected one {op} node, found "
                                      f"{[u.op_type for u in users]} (not a cmc network?)")
            return users[0]

        firsts = [n for n in g.node if n.op_type == "Conv"
                  and (n.input[0] not in producer or producer[n.input[0]].op_type != "AveragePool")]
        if not firsts:
            raise FileFormatError(f"{self.path}: no convolution found (not a cmc network?)")
        stacks = []
        for conv in firsts:
            stages = []
            while True:
                a = node_attributes(conv)
                pads = a.get("pads", [0, 0, 0, 0])
                same = a.get("auto_pad", b"NOTSET") in (b"SAME_UPPER", b"SAME_LOWER") or list(pads) == [1, 1, 1, 1]
                if (list(a.get("kernel_shape", [3, 3])) != [3, 3] or list(a.get("strides", [1, 1])) != [1, 1]
                        or list(a.get("dilations", [1, 1])) != [1, 1] or a.get("group", 1) != 1 or not same):
                    raise FileFormatError(f"{self.path}: convolution {conv.name!r} is not 3x3/1 'same'")
                w = _const(conv.input[1], inits, constants).astype(np.float32)
                b = (_const(conv.input[2], inits, constants).astype(np.float32) if len(conv.input) > 2
                     and conv.input[2] else np.zeros(w.shape[0], np.float32))
                nxt = consumers.get(conv.output[0], [])
                if len(nxt) == 1 and nxt[0].op_type == "Add":   # a bias left unfused
                    other = [i for i in nxt[0].input if i != conv.output[0]][0]
                    b = b + _const(other, inits, constants).astype(np.float32).reshape(-1)
                    tensor = nxt[0].output[0]
                else:
                    tensor = conv.output[0]
                relu = only_consumer(tensor, "Relu")
                pool = only_consumer(relu.output[0], "AveragePool")
                pa = node_attributes(pool)
                if (list(pa.get("kernel_shape", [])) != [2, 2] or list(pa.get("strides", [])) != [2, 2]
                        or any(pa.get("pads", [0, 0, 0, 0]))):
                    raise FileFormatError(f"{self.path}: pooling {pool.name!r} is not 2x2/2")
                stages.append(_Stage(w, b, _session(_stage_graph(w, b), self.threads)))
                users = consumers.get(pool.output[0], [])
                # the next stage is a 3x3 convolution; anything else (flatten, the compact head's
                # 1x1 reduction) belongs to the tail
                nxt_conv = [u for u in users if u.op_type == "Conv"
                            and list(node_attributes(u).get("kernel_shape", [3, 3])) == [3, 3]]
                if not nxt_conv:
                    break
                if len(users) != 1:
                    raise FileFormatError(f"{self.path}: pooling {pool.name!r} feeds several nodes")
                conv = nxt_conv[0]
            stacks.append(_Stack(conv_input=firsts[len(stacks)].input[0], pool_output=pool.output[0],
                                 stages=stages))
        if len({len(s.stages) for s in stacks}) != 1:
            raise FileFormatError(f"{self.path}: feature stacks of different depths")
        return stacks

    # -------------------------------------------------------------- pieces
    def predict(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """log10 M200 of (n, npix, npix, C) images through the full model (float64 copy)."""
        images = self._check_images(images)
        out = np.empty(len(images))
        for s in range(0, len(images), batch_size):
            x = images[s:s + batch_size]
            out[s:s + len(x)] = self.full.run([self.output_name], {self.input_name: x, **self._z(len(x))})[0].reshape(-1)
        return out

    def _check_images(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, dtype=np.float32)
        if images.ndim == 3:
            images = images[None]
        if images.ndim != 4 or images.shape[1:] != (self.npix, self.npix, self.n_channels):
            raise InputError(f"{self.path} takes images of shape ({self.npix}, {self.npix}, "
                             f"{self.n_channels}), got {images.shape[1:]}")
        if not np.all(np.isfinite(images)):
            raise InputError("the image contains NaN or inf")
        return np.ascontiguousarray(images)

    def preprocess_pixels(self, pixels: np.ndarray) -> list[np.ndarray]:
        """The preprocessing of (m, C) pixel values, each on its own: one (m, cin) array per stack.

        The pixels are packed into images of the model's size (the preprocessing is a
        per-pixel map, checked on loading), run through the extracted graph, unpacked.
        """
        m = pixels.shape[0]
        per = self.npix * self.npix
        n_img = -(-m // per)
        packed = np.zeros((n_img * per, self.n_channels), np.float32)
        packed[:m] = pixels
        outs = []
        chunk = 64
        for s in range(0, n_img, chunk):
            x = packed[s * per:(s + chunk) * per].reshape(-1, self.npix, self.npix, self.n_channels)
            outs.append(self.pre.run(None, {self.input_name: x}))
        result = []
        for k in range(len(self.stacks)):
            y = np.concatenate([o[k] for o in outs])               # (n_img, cin, npix, npix)
            result.append(y.transpose(0, 2, 3, 1).reshape(-1, y.shape[1])[:m])
        return result

    def features(self, image: np.ndarray) -> list[list[np.ndarray]]:
        """Per stack: the preprocessed input and every stage's pooled output, (C, h, w) each."""
        x = self._check_images(image)
        pre = self.pre.run(None, {self.input_name: x})
        maps = []
        for stack, y in zip(self.stacks, pre):
            levels = [y[0]]
            for stage in stack.stages:
                padded = np.pad(levels[-1], ((0, 0), (1, 1), (1, 1)))[None]
                levels.append(stage.session.run(None, {"x": padded})[0][0])
            maps.append(levels)
        return maps

    def head(self, pooled: list[np.ndarray]) -> np.ndarray:
        """The rest of the network from the last pooled maps, (n, C, h, w) per stack → log10 M."""
        feeds = {s.pool_output: np.ascontiguousarray(p, dtype=np.float32) for s, p in zip(self.stacks, pooled)}
        feeds.update(self._z(len(pooled[0])))
        return self.tail.run(None, feeds)[0].reshape(-1).astype(np.float64)

    def _check_decomposition(self) -> None:
        rng = np.random.default_rng(12345)
        image = rng.standard_normal((self.npix, self.npix, self.n_channels)).astype(np.float32)
        image *= np.float32(1e-3) * (1.0 + 100.0 * rng.random(image.shape)).astype(np.float32)
        whole = self.predict(image)[0]
        pieces = self.head([m[-1][None] for m in self.features(image)])[0]
        if not abs(whole - pieces) <= 1e-4 * max(1.0, abs(whole)):
            raise FileFormatError(f"{self.path}: the split network predicts {pieces} instead of {whole}")
        pre = self.pre_onnx.run(None, {self.input_name: image[None]})
        for ours, theirs in zip(self.pre.run(None, {self.input_name: image[None]}), pre):
            if ours.shape != theirs.shape or not np.allclose(ours, theirs, rtol=1e-6, atol=1e-6):
                raise FileFormatError(f"{self.path}: the preprocessing graph is not evaluated faithfully")
        perm = rng.permutation(self.npix * self.npix)
        packed = self.preprocess_pixels(image.reshape(-1, self.n_channels)[perm])
        for full, p in zip(pre, packed):
            if not np.allclose(full[0].transpose(1, 2, 0).reshape(-1, full.shape[1])[perm], p,
                               rtol=1e-6, atol=1e-6):
                raise FileFormatError(f"{self.path}: the preprocessing is not a per-pixel map")


# ------------------------------------------------------------------ scans
@dataclasses.dataclass
class ScanResult:
    """A Gaussian-mask scan of one image."""

    delta: np.ndarray        # (len(rows), len(cols)) ΔM [dex]
    rows: np.ndarray         # mask-centre rows a
    cols: np.ndarray         # mask-centre columns b
    log10_m: float           # prediction for the unmasked image
    sigma: float
    method: str
    seconds: float


def brute_force_scan(model: ScanModel, image: np.ndarray, sigma: float = 5.0, stride: int = 1,
                     batch_size: int = 256, progress: Callable[[int, int], None] | None = None) -> ScanResult:
    """ΔM map by one full forward pass per mask centre (the reference)."""
    t0 = time.perf_counter()
    image = model._check_images(image)[0]
    n = model.npix
    rows = cols = scan_centres(n, stride)
    centres = [(a, b) for a in rows for b in cols]
    m0 = model.predict(image)[0]
    out = np.empty(len(centres))
    i = np.arange(n, dtype=np.float64)
    for s in range(0, len(centres), batch_size):
        cs = np.array(centres[s:s + batch_size], dtype=np.float64)
        r2 = (i[None, :, None] - cs[:, 0, None, None]) ** 2 + (i[None, None, :] - cs[:, 1, None, None]) ** 2
        masked = image[None] * _mask_of_r2(r2, sigma)[..., None]
        out[s:s + len(cs)] = model.full.run([model.output_name], {model.input_name: masked,
                                                                  **model._z(len(cs))})[0].reshape(-1)
        if progress:
            progress(s + len(cs), len(centres))
    delta = (out - m0).reshape(len(rows), len(cols))
    return ScanResult(delta, rows, cols, float(m0), float(sigma), "brute", time.perf_counter() - t0)


def split_brute_force_scan(model: ScanModel, image: np.ndarray, sigma: float = 5.0, stride: int = 1,
                           batch_size: int = 128) -> ScanResult:
    """Brute force through the pieces :func:`fast_scan` uses (NumPy preprocessing, stage
    graphs on whole images, the extracted tail): isolates the gain of the windows."""
    t0 = time.perf_counter()
    image = model._check_images(image)[0]
    n = model.npix
    rows = cols = scan_centres(n, stride)
    centres = np.array([(a, b) for a in rows for b in cols], dtype=np.float64)
    m0 = model.head([m[-1][None] for m in model.features(image)])[0]
    out = np.empty(len(centres))
    i = np.arange(n, dtype=np.float64)
    for s in range(0, len(centres), batch_size):
        cs = centres[s:s + batch_size]
        r2 = (i[None, :, None] - cs[:, 0, None, None]) ** 2 + (i[None, None, :] - cs[:, 1, None, None]) ** 2
        masked = image[None] * _mask_of_r2(r2, sigma)[..., None]
        pooled = []
        for stack, y in zip(model.stacks, model.pre.run(None, {model.input_name: masked})):
            for stage in stack.stages:
                y = stage.session.run(None, {"x": np.pad(y, ((0, 0), (0, 0), (1, 1), (1, 1)))})[0]
            pooled.append(y)
        out[s:s + len(cs)] = model.head(pooled)
    delta = (out - m0).reshape(len(rows), len(cols))
    return ScanResult(delta, rows, cols, float(m0), float(sigma), "brute-split", time.perf_counter() - t0)


def _stage_geometry(lo: int, hi: int) -> tuple[int, int, int, int]:
    """For a changed input interval [lo, hi] of a stage: pooled cells [plo, phi] that can
    change and the input window [wlo, whi] that determines them."""
    plo, phi = (lo - 1) // POOL, (hi + 1) // POOL
    return plo, phi, POOL * plo - 1, POOL * phi + POOL


def scan_arithmetic(model: ScanModel, sigma: float = 5.0) -> dict:
    """Convolution arithmetic [FLOP, 2 per multiply-add] of a forward pass and of one mask centre
    in :func:`fast_scan`, averaged over the ``step²`` classes of centres (``step`` = 2³ px).

    The fast scan recomputes, per stage, only the window of cells the changed square can
    reach (``_stage_geometry``), a 'valid' convolution over it; the dense head runs in full
    for every centre in both, and is left out of both counts.  Centres near the edge do
    the same arithmetic as interior ones (the window is gathered from a zero-padded canvas).
    """
    n, depth = model.npix, model.n_stages
    step = POOL ** depth
    R = mask_radius(sigma)
    full = 0
    for stack in model.stacks:
        for lev, stage in enumerate(stack.stages):
            cout, cin, kh, kw = stage.weight.shape
            m = n // POOL ** lev
            full += 2 * m * m * cin * cout * kh * kw
    window = 0
    for ta in range(step):
        for tb in range(step):
            for stack in model.stacks:
                lo_a, hi_a, lo_b, hi_b = ta - R, ta + R, tb - R, tb + R
                for stage in stack.stages:
                    cout, cin, kh, kw = stage.weight.shape
                    pa_lo, pa_hi, wa_lo, wa_hi = _stage_geometry(lo_a, hi_a)
                    pb_lo, pb_hi, wb_lo, wb_hi = _stage_geometry(lo_b, hi_b)
                    h, w = wa_hi - wa_lo + 1 - (kh - 1), wb_hi - wb_lo + 1 - (kw - 1)
                    window += 2 * h * w * cin * cout * kh * kw
                    lo_a, hi_a, lo_b, hi_b = pa_lo, pa_hi, pb_lo, pb_hi
    window_mean = window / step ** 2
    return {"conv_flop_forward": int(full), "conv_flop_per_centre_fast": float(window_mean),
            "arithmetic_ratio": full / window_mean}


def _assemble(canvas: np.ndarray, r0: np.ndarray, c0: np.ndarray, h: int, w: int,
              new: np.ndarray, oa: int, ob: int) -> np.ndarray:
    """(B, C, h, w) stage inputs: ``new`` (B, C, hn, wn) at offset (oa, ob) inside windows of
    the (C, H, W) canvas whose top-left corners are (r0, c0); only the ring is gathered."""
    B, C, hn, wn = new.shape
    win = np.empty((B, C, h, w), np.float32)
    win[:, :, oa:oa + hn, ob:ob + wn] = new
    for (dr, dc, sh, sw) in ((0, 0, oa, w), (oa + hn, 0, h - oa - hn, w),
                             (oa, 0, hn, ob), (oa, ob + wn, hn, w - ob - wn)):
        if sh > 0 and sw > 0:
            view = np.lib.stride_tricks.sliding_window_view(canvas, (sh, sw), axis=(1, 2))
            win[:, :, dr:dr + sh, dc:dc + sw] = view[:, r0 + dr, c0 + dc].transpose(1, 0, 2, 3)
    return win


def fast_scan(model: ScanModel, image: np.ndarray, sigma: float = 5.0, stride: int = 1,
              max_batch: int = 64, progress: Callable[[int, int], None] | None = None) -> ScanResult:
    """ΔM map by exact reuse of the unchanged feature-map cells (see the module docstring)."""
    t0 = time.perf_counter()
    image = model._check_images(image)[0]
    n, depth = model.npix, model.n_stages
    step = POOL ** depth                      # one cell of the last pooled map, in pixels
    R = mask_radius(sigma)
    rows = cols = scan_centres(n, stride)
    maps = model.features(image)
    m0 = model.head([m[-1][None] for m in maps])[0]
    # canvases (C, H, W) with zeros outside the image, per stack and level; a level-l
    # window reaches at most R / 2**l + 3 cells beyond the image
    margins = [(R >> lev) + 4 for lev in range(depth + 1)]
    canvases = [[np.pad(lv, ((0, 0), (mg, mg), (mg, mg)))
                 for lv, mg in zip(levels, margins)] for levels in maps]
    d = np.arange(-R, R + 1, dtype=np.float64)
    patch = _mask_of_r2(d[:, None] ** 2 + d[None, :] ** 2, sigma)          # (2R+1, 2R+1)
    image_canvas = np.pad(image, ((R, R), (R, R), (0, 0)))
    delta = np.empty((len(rows), len(cols)))
    done, total = 0, len(rows) * len(cols)
    for ta in range(step):
        ra = rows[rows % step == ta]
        if ra.size == 0:
            continue
        for tb in range(step):
            cb = cols[cols % step == tb]
            if cb.size == 0:
                continue
            A, Bc = np.meshgrid(ra, cb, indexing="ij")
            A, Bc = A.ravel(), Bc.ravel()
            for s in range(0, A.size, max_batch):
                a, b = A[s:s + max_batch], Bc[s:s + max_batch]
                out = _scan_class(model, image_canvas, maps, canvases, margins, patch, R, ta, tb, a, b)
                delta[np.searchsorted(rows, a), np.searchsorted(cols, b)] = out - m0
                done += a.size
                if progress:
                    progress(done, total)
    return ScanResult(delta, rows, cols, float(m0), float(sigma), "fast", time.perf_counter() - t0)


def _scan_class(model: ScanModel, image_canvas, maps, canvases, margins, patch, R, ta, tb, a, b) -> np.ndarray:
    """Predictions for mask centres (a, b) that share (a mod step, b mod step) = (ta, tb)."""
    n, depth = model.npix, model.n_stages
    step = POOL ** depth
    qa, qb = (a - ta) // step, (b - tb) // step
    B = a.size
    # level 0: masked pixels of the square [a-R, a+R] x [b-R, b+R]; `image_canvas` is the
    # image with R zeros around it, and preprocessed pixels outside the image are zeroed
    S = 2 * R + 1
    view = np.lib.stride_tricks.sliding_window_view(image_canvas, (S, S), axis=(0, 1))
    pix = view[a, b].transpose(0, 2, 3, 1) * patch[None, :, :, None]                # (B, S, S, C)
    scaled = model.preprocess_pixels(pix.reshape(-1, model.n_channels))
    k = np.arange(-R, R + 1)
    ii, jj = a[:, None] + k[None, :], b[:, None] + k[None, :]
    inside = ((ii >= 0) & (ii < n))[:, :, None] & ((jj >= 0) & (jj < n))[:, None, :]
    edge0 = np.flatnonzero(~inside.all(axis=(1, 2)))
    new_pooled = []
    for st, stack in enumerate(model.stacks):
        new = scaled[st].reshape(B, S, S, -1).transpose(0, 3, 1, 2)                 # (B, cin, S, S)
        if edge0.size:
            new = new.copy()
            new[edge0] *= inside[edge0][:, None]
        lo_a, hi_a, lo_b, hi_b = ta - R, ta + R, tb - R, tb + R                     # relative to step*q
        for lev, stage in enumerate(stack.stages):
            scale = step // POOL ** lev            # pixels of this level per unit of q
            pa_lo, pa_hi, wa_lo, wa_hi = _stage_geometry(lo_a, hi_a)
            pb_lo, pb_hi, wb_lo, wb_hi = _stage_geometry(lo_b, hi_b)
            base_a, base_b = qa * scale, qb * scale
            win = _assemble(canvases[st][lev], base_a + wa_lo + margins[lev], base_b + wb_lo + margins[lev],
                            wa_hi - wa_lo + 1, wb_hi - wb_lo + 1, new, lo_a - wa_lo, lo_b - wb_lo)
            new = stage.session.run(None, {"x": win})[0]                          # (B, cout, ph, pw)
            n_out = n // POOL ** (lev + 1)
            base_a, base_b = qa * (scale // POOL), qb * (scale // POOL)
            ra = base_a[:, None] + np.arange(pa_lo, pa_hi + 1)[None, :]
            rb = base_b[:, None] + np.arange(pb_lo, pb_hi + 1)[None, :]
            keep = ((ra >= 0) & (ra < n_out))[:, :, None] & ((rb >= 0) & (rb < n_out))[:, None, :]
            edge = np.flatnonzero(~keep.all(axis=(1, 2)))
            if edge.size:       # cells outside the image are the next convolution's zero padding
                new[edge] *= keep[edge][:, None]
            lo_a, hi_a, lo_b, hi_b = pa_lo, pa_hi, pb_lo, pb_hi
        # the original last map with the recomputed cells (those inside the image) pasted in
        last = maps[st][-1]                                                     # (C, n3, n3)
        full = np.broadcast_to(last, (B,) + last.shape).copy()
        bb, rr, cc = np.nonzero(keep)
        full[bb, :, ra[bb, rr], rb[bb, cc]] = new[bb, :, rr, cc]
        new_pooled.append(full)
    return model.head(new_pooled)


def mask_scan(model: ScanModel, image: np.ndarray, sigma: float = 5.0, stride: int = 1,
              method: str = "fast", progress: Callable[[int, int], None] | None = None,
              redshift: float | None = None) -> ScanResult:
    """Gaussian-mask scan (eq. 13) of one (npix, npix, C) image; ``method`` fast or brute.

    ``redshift`` is the image's redshift, required by a redshift-aware network (and
    ignored otherwise): every masked image is predicted at it.
    """
    if model.redshift_input is not None:
        if redshift is None or not (np.isfinite(redshift) and redshift > 0):
            raise InputError(f"{os.path.basename(model.path)} takes image + redshift: give the image's redshift "
                             f"(got {redshift})")
        model.redshift = float(redshift)
    if method == "fast":
        return fast_scan(model, image, sigma, stride, progress=progress)
    if method == "brute":
        return brute_force_scan(model, image, sigma, stride, progress=progress)
    raise InputError(f"method must be fast or brute, got {method!r}")
