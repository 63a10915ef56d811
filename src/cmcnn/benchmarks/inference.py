"""Benchmark of inference (``cmc bench inference``, ``bench/inference.py``).

On the shipped single-channel architecture at full size (120 × 120 × 1, redshift
input, compact head and error head as ``cmc train``'s survey recipe builds it;
random weights, asinh scaling fitted on mock Ypar images: the speed does not
depend on the weights), exported by ``cmc export``'s conversion:

1. **Model throughput**: onnxruntime as users run it (:class:`cmcnn.serve.predictor.Predictor`:
   NumPy preprocessing, onnxruntime for the rest) and the whole graph in one plain
   onnxruntime session, against Keras on the same model called through a compiled
   ``tf.function`` (the fastest way to run a Keras model; ``predict`` adds per-call
   overhead), batch sizes 1–1024, with 1 and 2 threads, each engine and thread count
   in a process of its own (TensorFlow's thread pools slow onnxruntime down when both
   live in one process).  Beside it, the machine's float32 matrix-multiply rate
   (NumPy ``matmul``, 2048², BLAS limited to the same thread counts, own processes)
   and the fraction of it the network reaches (FLOPs per image counted from the
   layers).
2. **Per-file reading**: µs per FITS cutout to read and check it, astropy.io.fits
   against the fast reader of :mod:`cmcnn.serve.fits` (one thread, same files), both
   with the per-header cache of the checks (as ``cmc predict`` runs) and both without
   it, in alternating rounds (median of the rounds).
3. **End to end**: ``cmc predict MODEL DIR --out predictions.csv`` in a subprocess
   over 10^3–10^5 separate FITS cutouts on disk: cutouts/s and peak resident memory
   (``wait4``); variants (FITS reader, reader threads) on the middle count.

The files are written once into ``--workdir`` (and kept for reruns: delete it to
reclaim the space, ~60 kB per float32 cutout); they are read from the page cache
as written.  Every figure is a ratio against its baseline from the same run.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

NPIX = 120
PIXEL_ARCSEC = 10.0
CHANNEL = "Ypar"
BATCHES = (1, 4, 16, 64, 256, 1024)
#: ``ort``: the Predictor (what cmc predict runs); ``ort-whole``: the graph in one plain session.
ENGINES = ("keras", "ort", "ort-whole")
THREADS = (1, 2)


def _env(threads: int | None = None) -> dict:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if threads is not None:
        for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[k] = str(threads)
    return env


def _worker(kind: str, workdir: Path, *args: str, threads: int | None = None) -> dict:
    """Run one measurement in a fresh process; its last stdout line is JSON."""
    cmd = [sys.executable, "-m", "cmcnn.benchmarks.inference", "--worker", kind, "--workdir", str(workdir), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env(threads))
    if out.returncode != 0:
        raise RuntimeError(f"benchmark worker {kind} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def mock_images(n: int, seed: int = 0) -> np.ndarray:
    """(n, 120, 120) Ypar-like images: a β-model-ish blob of random size and amplitude plus noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:NPIX, :NPIX] - (NPIX - 1) / 2
    r2 = xx**2 + yy**2
    amp = 10 ** rng.uniform(-6.5, -4.5, n)
    rc = rng.uniform(2.0, 12.0, n)
    img = amp[:, None, None] * (1 + r2[None] / rc[:, None, None] ** 2) ** -1.0
    return (img + rng.normal(0.0, 1e-8, img.shape)).astype(np.float32)


#: Training redshift range of the benchmark network; images are predicted at its middle.
Z_RANGE = (0.03, 0.07)


def _network():
    """The shipped single-channel architecture (``TrainConfig.survey``), random weights."""
    from cmcnn.train.models import build_model
    from cmcnn.train.recipe import TrainConfig

    c = TrainConfig.survey([CHANNEL])
    return build_model([CHANNEL], npix=NPIX, redshift=c.redshift, head=c.head, uncertainty=c.uncertainty)


# --------------------------------------------------------------------------- workers
def _setup(workdir: Path) -> dict:
    """Build the network, fit its scaling, save weights and the ONNX model; count its FLOPs."""
    import keras

    from cmcnn.serve.export import keras_to_onnx
    from cmcnn.serve.metadata import minimal_metadata
    from cmcnn.train.models import fit_scaling

    keras.utils.set_random_seed(0)
    model = _network()
    model.get_layer("scaling").set_constants(*fit_scaling(mock_images(64)[..., None]))
    model.save_weights(workdir / "model.weights.h5")
    proto = keras_to_onnx(model, opset=17)
    for k, v in minimal_metadata([CHANNEL], NPIX, PIXEL_ARCSEC, {CHANNEL: ""}, redshift_range=Z_RANGE,
                                 error=True).items():
        e = proto.metadata_props.add()
        e.key, e.value = k, v
    (workdir / "model.onnx").write_bytes(proto.SerializeToString())
    flops = 0
    for layer in model.layers:
        cls = layer.__class__.__name__
        if cls == "Conv2D":
            _, h, w, cout = layer.output.shape
            kh, kw = layer.kernel_size
            flops += 2 * h * w * cout * kh * kw * layer.input.shape[-1]
        elif cls == "Dense":
            flops += 2 * layer.input.shape[-1] * layer.units
    return {"mflop_per_image": flops / 1e6, "parameters": int(model.count_params())}


def _time_batches(call, x: np.ndarray, batches: Sequence[int], seconds: float) -> list[dict]:
    """Wall and CPU time (all threads of this process) per batch size."""
    rows = []
    for b in batches:
        n = max(b, 256)
        call(x[:b])  # warm-up (and tracing for Keras)
        done, t0, c0 = 0, time.perf_counter(), time.process_time()
        while True:
            call(x[:n], b)
            done += n
            if time.perf_counter() - t0 >= seconds:
                break
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows.append({"batch": b, "images": done, "seconds": dt, "cpu_seconds": cpu,
                     "images_per_second": done / dt, "images_per_cpu_second": done / cpu})
    return rows


def _engine(kind: str, workdir: Path, threads: int, batches: Sequence[int], seconds: float) -> dict:
    """One engine's throughput: ``ort`` (the Predictor), ``ort-whole`` (one plain session) or ``keras``."""
    x = mock_images(max(max(batches), 256), seed=1)[..., None]
    z = np.full(len(x), 0.5 * sum(Z_RANGE), np.float32)
    ref = slice(0, 16)
    if kind == "ort":
        from cmcnn.serve.predictor import Predictor

        pred = Predictor(workdir / "model.onnx", threads=threads)

        def call(a, b=None):
            b = b or len(a)
            for s in range(0, len(a), b):
                pred.run_with_error(a[s:s + b], z[s:s + b])

        out = pred.run(x[ref], z[ref])
    elif kind == "ort-whole":
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sess = ort.InferenceSession(str(workdir / "model.onnx"), so, providers=["CPUExecutionProvider"])

        def call(a, b=None):
            b = b or len(a)
            for s in range(0, len(a), b):
                sess.run(None, {"image": a[s:s + b], "redshift": z[s:s + b]})

        out = sess.run(["log10_m200"], {"image": x[ref], "redshift": z[ref]})[0]
    else:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        model = _network()
        model.load_weights(workdir / "model.weights.h5")
        forward = tf.function(lambda a, b: model([a, b], training=False))

        def call(a, b=None):
            b = b or len(a)
            for s in range(0, len(a), b):
                forward(a[s:s + b], z[s:s + b, None])

        out = forward(x[ref], z[ref, None])[0].numpy()
    np.save(workdir / f"pred-{kind}-{threads}.npy", np.asarray(out, dtype=np.float64).reshape(-1))
    return {"engine": kind, "threads": threads, "rows": _time_batches(call, x, batches, seconds)}


def _matmul(n: int = 2048, repeat: int = 5) -> dict:
    """float32 matmul rate: per wall second and per CPU second (one core's share)."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    a @ b
    wall, cpu = [], []
    for _ in range(repeat):
        c0 = time.process_time()
        wall.append(_timed(lambda: a @ b))
        cpu.append(time.process_time() - c0)
    return {"n": n, "gflops": 2 * n**3 / min(wall) / 1e9, "gflops_per_cpu_second": 2 * n**3 / min(cpu) / 1e9}


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- cutouts on disk
def write_cutouts(folder: Path, n: int, *, dtype: str = "float32", log=print) -> Path:
    """``n`` FITS cutouts like ``cmc render``'s (TAN WCS, BUNIT, CHANNEL) in ``folder`` (kept if complete)."""
    from astropy.io import fits

    from cmcore.render import cutout_wcs

    folder.mkdir(parents=True, exist_ok=True)
    done = folder / ".complete"
    if done.is_file() and done.read_text() == f"{n} {dtype}":
        return folder
    log(f"writing {n} FITS cutouts ({dtype}) to {folder}")
    header = cutout_wcs(NPIX, PIXEL_ARCSEC).to_header()
    header["BUNIT"] = ("", "pixel unit")
    header["CHANNEL"] = (CHANNEL, "observable (Yan et al. 2020)")
    pool = mock_images(256, seed=2).astype(dtype)
    hdu = fits.PrimaryHDU(pool[0], header=header)
    head = hdu.header.tostring().encode("ascii")
    big = ">f4" if dtype == "float32" else ">f8"
    pad = (-pool[0].nbytes) % 2880
    for i in range(n):
        with open(folder / f"cutout{i:06d}.fits", "wb") as fh:
            fh.write(head)
            fh.write(pool[i % len(pool)].astype(big).tobytes())
            fh.write(b"\0" * pad)
    done.write_text(f"{n} {dtype}")
    return folder


def _read_per_file(folder: Path, n: int, info, rounds: int = 3) -> dict:
    """µs per file to read and check FITS cutouts in one thread: astropy against the fast reader,
    each with the per-header cache of the checks and without it, in rotating rounds (median)."""
    from cmcnn.serve import fits
    from cmcnn.serve.checks import ReadOptions

    files = sorted(str(p) for p in folder.glob("cutout*.fits"))[:n]
    out = np.empty((NPIX, NPIX, 1), np.float32)
    z = 0.5 * sum(Z_RANGE)
    methods = [(reader, cache) for cache in (True, False) for reader in ("astropy", "fast")]
    times: dict = {m: [] for m in methods}
    for reader, cache in methods:  # warm-up: imports, the page cache, the verdict cache
        for f in files[:50]:
            fits.read_fits(f, info, ReadOptions(fits_reader=reader, redshift=z), out, cache=cache)
    for r in range(rounds):
        for reader, cache in methods[r % len(methods):] + methods[:r % len(methods)]:
            opts = ReadOptions(fits_reader=reader, redshift=z)
            t0 = time.perf_counter()
            for f in files:
                fits.read_fits(f, info, opts, out, cache=cache)
            times[(reader, cache)].append((time.perf_counter() - t0) / len(files) * 1e6)
    med = {m: float(np.median(v)) for m, v in times.items()}
    return {"files": len(files), "rounds": rounds,
            "us_per_file": {"astropy": med[("astropy", True)], "fast": med[("fast", True)],
                            "astropy_no_cache": med[("astropy", False)], "fast_no_cache": med[("fast", False)]},
            "us_per_file_rounds": {f"{r}{'' if c else '_no_cache'}": v for (r, c), v in times.items()},
            "speedup": med[("astropy", True)] / med[("fast", True)],
            "speedup_no_cache": med[("astropy", False)] / med[("fast", False)]}


#: ``cmc predict``'s redshift for the benchmark cutouts (they carry no REDSHIFT card).
ZFLAG = ["--redshift", str(0.5 * sum(Z_RANGE))]


def _predict_e2e(model: Path, folder: Path, out: Path, extra: Sequence[str]) -> dict:
    """``cmc predict`` in a subprocess: wall time, cutouts/s, peak RSS [MiB]."""
    cmd = [sys.executable, "-m", "cmcnn.cli", "predict", str(model), str(folder), "--out", str(out),
           "--no-progress", *extra]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode()
    proc.stdout.close()
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"cmc predict failed ({proc.returncode}):\n{err[-3000:]}")
    with open(out) as fh:
        rows = sum(1 for _ in fh) - 1
    cpu = usage.ru_utime + usage.ru_stime
    return {"seconds": wall, "cpu_seconds": cpu, "cutouts": rows, "cutouts_per_second": rows / wall,
            "cpu_ms_per_cutout": cpu / rows * 1e3, "peak_rss_mib": usage.ru_maxrss / 1024.0}


# --------------------------------------------------------------------------- driver
def run(workdir: Path, *, batches: Sequence[int] = BATCHES, threads: Sequence[int] = THREADS,
        files: Sequence[int] = (1000, 10000, 100000), seconds: float = 2.0, log=print) -> dict:
    """All three parts; returns the result dictionary (see :func:`format_table`)."""
    from cmcore.benchmarks import machine_info

    from cmcnn.serve.predictor import Predictor

    workdir.mkdir(parents=True, exist_ok=True)
    log("building and exporting the 120x120 single-channel network")
    setup = _worker("setup", workdir)
    load_start = os.getloadavg()
    matmul = {t: _worker("matmul", workdir, threads=t) for t in threads}
    engines = []
    for t in threads:
        for kind in ENGINES:
            log(f"{kind} with {t} thread(s), batches {list(batches)}")
            engines.append(_worker(kind, workdir, "--threads", str(t), "--batches", *map(str, batches),
                                   "--seconds", str(seconds), threads=t))
    preds = [np.load(workdir / f"pred-{e['engine']}-{e['threads']}.npy") for e in engines]
    agree = float(max(np.max(np.abs(p - preds[0])) for p in preds))
    info = Predictor(workdir / "model.onnx").info
    e2e, variants, reading = [], [], None
    for n in sorted(files):
        folder = write_cutouts(workdir / f"cutouts-{n}", n, log=log)
        if reading is None:
            reading = _read_per_file(folder, min(n, 2000), info)
        log(f"cmc predict over {n} cutouts")
        e2e.append({"files": n, **_predict_e2e(workdir / "model.onnx", folder, workdir / "pred.csv", ZFLAG)})
    mid = sorted(files)[len(files) // 2]
    for name, extra in (("astropy reader, 2 reader threads", ["--fits-reader", "astropy"]),
                        ("fast reader, 1 reader thread", ["--readers", "1"]),
                        ("fast reader, 2 reader threads (default)", []),
                        ("fast reader, 4 reader threads", ["--readers", "4"]),
                        ("fast reader, batch 256", ["--batch-size", "256"])):
        log(f"variant: {name}")
        variants.append({"variant": name, "files": mid,
                         **_predict_e2e(workdir / "model.onnx", workdir / f"cutouts-{mid}", workdir / "pred.csv",
                                        [*ZFLAG, *extra])})
    (workdir / "pred.csv").unlink(missing_ok=True)
    machine = machine_info()
    for pkg in ("onnxruntime", "onnxruntime-gpu", "tensorflow", "keras", "tf2onnx", "onnx"):
        try:
            machine[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            pass
    return {"benchmark": "inference", "machine": machine, "network": {**setup, "npix": NPIX,
            "channels": [CHANNEL]}, "matmul": {str(t): g for t, g in matmul.items()},
            "load_average_start": load_start, "load_average_end": os.getloadavg(),
            "engines": engines, "max_abs_diff_between_engines": agree, "read_per_file": reading,
            "end_to_end": e2e, "variants": variants, "seconds_per_point": seconds}


def format_table(r: dict) -> str:
    m, net = r["machine"], r["network"]
    mf = net["mflop_per_image"]
    cores = m["usable_cores"] or 1
    lines = [f"inference benchmark: shipped single-channel architecture {net['npix']}x{net['npix']}x1 + redshift, "
             f"{net['parameters']:,} parameters, {mf:.1f} MFLOP per image",
             f"machine: {m['cpu_model']}, {cores} usable cores; {m['date_utc']}; load average "
             f"{r['load_average_start'][0]:.1f} at the start, {r['load_average_end'][0]:.1f} at the end",
             "float32 matmul (NumPy, 2048^2, BLAS at the thread count): " + ", ".join(
                 f"{t} thread(s) {v['gflops']:.1f} GFLOP/s ({v['gflops_per_cpu_second']:.1f} per CPU-second)"
                 for t, v in r["matmul"].items()),
             "", "1. model throughput (each engine and thread count in its own process)",
             "   Keras: the same model through a compiled tf.function (the fastest Keras path); ORT: the Predictor",
             "   (NumPy preprocessing + onnxruntime), as cmc predict runs it; ORT whole: the graph in one session",
             "   per CPU-s: images per second of CPU time the process got (all its threads); of matmul: ORT's",
             "   FLOP rate per CPU-second over matmul's at the same thread count"]
    by = {(e["engine"], e["threads"]): {row["batch"]: row for row in e["rows"]} for e in r["engines"]}
    threads = sorted({t for _, t in by})
    batches = sorted(next(iter(by.values())))
    lines.append(f"{'threads':>7} {'batch':>6} {'Keras/s':>8} {'ORT/s':>8} {'whole/s':>8} {'Keras/CPU-s':>11} "
                 f"{'ORT/CPU-s':>9} {'ORT/Keras':>9} {'ORT GFLOP/CPU-s':>15} {'of matmul':>9}")
    for t in threads:
        per_core = r["matmul"][str(t)]["gflops_per_cpu_second"]
        for b in batches:
            k, o, w = by[("keras", t)][b], by[("ort", t)][b], by[("ort-whole", t)][b]
            g = o["images_per_cpu_second"] * mf / 1e3
            lines.append(f"{t:>7} {b:>6} {k['images_per_second']:>8.1f} {o['images_per_second']:>8.1f} "
                         f"{w['images_per_second']:>8.1f} {k['images_per_cpu_second']:>11.1f} "
                         f"{o['images_per_cpu_second']:>9.1f} "
                         f"{o['images_per_cpu_second'] / k['images_per_cpu_second']:>8.2f}x {g:>15.1f} "
                         f"{g / per_core:>8.0%}")
    if len(threads) > 1:
        t1, tn = threads[0], threads[-1]
        lines.append(f"parallel efficiency of ORT, {tn} threads vs {t1} (images/s / ({tn}/{t1} x images/s)): " + ", ".join(
            f"batch {b} {by[('ort', tn)][b]['images_per_second'] / (tn / t1 * by[('ort', t1)][b]['images_per_second']):.0%}"
            for b in batches))
    lines.append(f"max |Keras - ORT| over engines on 16 images: {r['max_abs_diff_between_engines']:.2g} dex")
    rd = r["read_per_file"]
    us = rd["us_per_file"]
    lines += ["", f"2. reading + checking one FITS cutout (one thread, {rd['files']} files, median of "
              f"{rd.get('rounds', 1)} alternating rounds):",
              f"   with the per-header cache of the checks (as cmc predict runs): astropy {us['astropy']:.0f} us, "
              f"fast reader {us['fast']:.0f} us ({rd['speedup']:.1f}x)",
              f"   without it, every header checked again: astropy {us['astropy_no_cache']:.0f} us, "
              f"fast reader {us['fast_no_cache']:.0f} us ({rd['speedup_no_cache']:.1f}x)", "",
              "3. end to end: cmc predict MODEL DIR --redshift Z --out predictions.csv (defaults: batch 64, "
              "2 reader threads)",
              f"   projected = {cores} cores / CPU time per cutout: the rate if the process had the "
              f"{cores} cores to itself",
              f"{'files':>7} {'seconds':>8} {'cutouts/s':>9} {'CPU ms/cutout':>13} {'projected/s':>11} "
              f"{'peak RSS MiB':>12}"]
    for e in r["end_to_end"]:
        lines.append(f"{e['files']:>7} {e['seconds']:>8.1f} {e['cutouts_per_second']:>9.0f} "
                     f"{e['cpu_ms_per_cutout']:>13.2f} {cores / e['cpu_ms_per_cutout'] * 1e3:>11.0f} "
                     f"{e['peak_rss_mib']:>12.0f}")
    if r["variants"]:
        base = next(v for v in r["variants"] if "default" in v["variant"])
        lines.append(f"variants on {r['variants'][0]['files']} files (ratios of CPU time per cutout: "
                     "default / variant):")
        for v in r["variants"]:
            lines.append(f"  {v['variant']:<42} {v['cutouts_per_second']:>6.0f} cutouts/s, "
                         f"{v['cpu_ms_per_cutout']:.2f} CPU ms/cutout "
                         f"({base['cpu_ms_per_cutout'] / v['cpu_ms_per_cutout']:.2f}x), peak {v['peak_rss_mib']:.0f} MiB")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the inference benchmark (shared by ``cmc bench inference`` and the script)."""
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "cmc-bench-inference",
                        help="model and FITS cutouts (kept for reruns; default $TMPDIR/cmc-bench-inference)")
    parser.add_argument("--batches", type=int, nargs="+", default=list(BATCHES), help="batch sizes")
    parser.add_argument("--threads", type=int, nargs="+", default=list(THREADS), help="thread counts")
    parser.add_argument("--files", type=float, nargs="+", default=[1e3, 1e4, 1e5],
                        help="numbers of FITS cutouts for the end-to-end runs (default 1e3 1e4 1e5)")
    parser.add_argument("--seconds", type=float, default=2.0, help="time per throughput point (default 2)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"),
                        help="folder for inference.json and inference.txt (default bench/results)")


def run_from_args(args: argparse.Namespace) -> int:
    """Run with parsed options: table on stdout, JSON and text in ``args.out``."""
    from cmcore.benchmarks import write_result

    files = [int(f) for f in args.files]
    if min(files) < 1 or min(args.batches) < 1 or min(args.threads) < 1 or args.seconds <= 0:
        raise ValueError("--files, --batches, --threads and --seconds must be positive")
    t0 = time.perf_counter()
    result = run(args.workdir, batches=args.batches, threads=args.threads, files=files, seconds=args.seconds,
                 log=lambda s: print(s, file=sys.stderr, flush=True))
    result["wall_seconds"] = time.perf_counter() - t0
    table = format_table(result)
    print(table)
    path = write_result(args.out, "inference", result, table)
    print(f"\nwritten {path} and inference.txt")
    return 0


def _worker_main(argv: Sequence[str]) -> int:
    """A measuring worker process (``--worker setup|matmul|ENGINE``): prints its result as JSON."""
    p = argparse.ArgumentParser()
    p.add_argument("--worker")
    p.add_argument("--workdir", type=Path)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batches", type=int, nargs="+", default=list(BATCHES))
    p.add_argument("--seconds", type=float, default=2.0)
    a = p.parse_args(argv)
    if a.worker == "setup":
        res = _setup(a.workdir)
    elif a.worker == "matmul":
        res = _matmul()
    else:
        res = _engine(a.worker, a.workdir, a.threads, a.batches, a.seconds)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        sys.exit(_worker_main(sys.argv[1:]))
    from cmcore.benchmarks import run_module

    sys.exit(run_module(sys.modules[__name__]))
