"""Sharded prediction on a dask.distributed cluster (``cmc predict --scheduler``).

The client expands the inputs (:func:`cmcnn.serve.cutouts.expand_inputs`), cuts the
batches of the serial plan (:func:`cmcnn.serve.cutouts.plan`) into shards of about
``shard_size`` cutouts — consecutive batches, never splitting one — and submits
one Dask task per shard.  A task reads and checks its shard's inputs with
``readers`` threads and runs every batch through the worker's onnxruntime
session, created once per worker process (:func:`worker_predictor`, keyed by the
model file and the session options) and reused by every later task; it returns
each batch's names, HDUs, indices, filled pixels, refusals and log10 M200, never
the images.  The client takes the shards in input order as they complete and
hands their batches to the one writer, so the table, the refusals and their
order are those of the serial path: the same batches go through the same
network (``tests/test_predict_distributed.py`` checks equality to the bit).

Paths are made absolute against the client's working directory before they are
sent, and the names in the results are mapped back to the inputs as given: a
remote worker need not share the client's working directory, only the file
system (the model and the inputs at the same absolute paths).
"""
from __future__ import annotations

import math
import os
import socket
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

from cmcore.scheduler import connect, parse_scheduler
from cmcore.errors import InputError

from cmcnn.serve.cutouts import Batch, ReadOptions, Source, Task, expand_inputs, plan, read_ahead
from cmcnn.serve.metadata import ModelInfo

#: Upper bound of the automatic shard size [cutouts].
MAX_AUTO_SHARD = 4096
#: Shards per worker thread the automatic shard size aims at (load balance vs. task overhead).
SHARDS_PER_SLOT = 4

_predictors: dict = {}
_predictors_lock = threading.Lock()


def worker_predictor(model: str, providers: str | Sequence[str] | None, threads: int | None):
    """The :class:`~cmcnn.serve.predictor.Predictor` of this process for a model file, created on first use.

    Keyed by the model's absolute path, size and modification time and the session
    options, so a worker opens each model once however many shards it runs, and a
    model file rewritten in place is opened again.
    """
    from cmcnn.serve.predictor import Predictor

    st = os.stat(model)
    key = (model, st.st_size, st.st_mtime_ns, providers if isinstance(providers, (str, type(None)))
           else tuple(providers), threads)
    with _predictors_lock:
        pred = _predictors.get(key)
        if pred is None:
            pred = _predictors[key] = Predictor(model, providers=providers, threads=threads)
    return pred


def predict_shard(model: str, providers, threads: int | None, tasks: Sequence[Task], info: ModelInfo,
                  options: ReadOptions, readers: int) -> tuple[list[tuple[Batch, np.ndarray]], list[str]]:
    """One shard on a worker: read, check and predict ``tasks`` in order.

    Returns
    -------
    batches : list of (Batch, ndarray)
        Each task's batch without its images, and its log10 M200.
    providers : list of str
        The execution providers of the worker's session.
    """
    pred = worker_predictor(model, providers, threads)
    if pred.info.key != info.key:
        raise InputError(f"{model} on worker {socket.gethostname()} takes other images than the client checked "
                         f"the inputs for ({pred.info.describe()})")
    out = []
    with ThreadPoolExecutor(readers, thread_name_prefix="cmc-reader") as pool:
        for batch in read_ahead(tasks, info, options, pool.submit, readers + 1):
            logm, err = pred.run_with_error(batch.images, batch.redshift)
            out.append((replace(batch, images=batch.images[:0], log10_err=err), logm))
    return out, list(pred.providers)


def shard_plan(sources: Sequence[Source], batch_size: int, shard_size: int,
               root: str) -> list[list[tuple[Task, list[str]]]]:
    """The serial plan's batches in shards of at least ``shard_size`` cutouts (the last one smaller).

    Each entry is ``(task, names)``: the task as a worker reads it (its own FITS
    paths only, made absolute against ``root``) and the paths as given, to map the
    results back (:func:`_as_given`).
    """
    shards, current, n = [], [], 0
    for src, start, stop in plan(sources, batch_size):
        if src.kind == "refused":
            entry = ((src, start, stop), src.paths)
        elif src.kind == "fits":
            given = src.paths[start:stop]
            entry = ((Source("fits", [os.path.join(root, p) for p in given], stop - start), 0, stop - start), given)
        else:
            entry = ((replace(src, paths=[os.path.join(root, src.paths[0])]), start, stop), src.paths)
        current.append(entry)
        n += stop - start
        if n >= shard_size:
            shards.append(current)
            current, n = [], 0
    if current:
        shards.append(current)
    return shards


def _as_given(batch: Batch, task: Task, given: list[str]) -> Batch:
    """``batch`` with the names of ``task``'s absolute paths replaced by the paths as given."""
    src = task[0]
    if src.kind == "refused" or src.paths == given:
        return batch
    if src.kind == "fits":
        names = dict(zip(src.paths, given))
        return replace(batch, names=[names[n] for n in batch.names],
                       refusals=[(names[n], r) for n, r in batch.refusals])
    path, as_given = src.paths[0], given[0]   # a stack: "path" and "path[row]"
    return replace(batch, names=[as_given] * len(batch.names),
                   refusals=[(as_given + n[len(path):], r) for n, r in batch.refusals])


def auto_shard_size(n_inputs: int, slots: int, batch_size: int) -> int:
    """About :data:`SHARDS_PER_SLOT` shards per worker thread, whole batches, at most
    :data:`MAX_AUTO_SHARD` cutouts (or one batch, if larger)."""
    per = math.ceil(n_inputs / max(1, SHARDS_PER_SLOT * slots))
    return max(batch_size, min(MAX_AUTO_SHARD, math.ceil(per / batch_size) * batch_size))


def predict_sharded(scheduler: str, model: str | os.PathLike, inputs: Iterable[str | os.PathLike],
                    info: ModelInfo, *, options: ReadOptions | None = None, batch_size: int = 64,
                    readers: int = 2, providers: str | Sequence[str] | None = None, threads: int | None = None,
                    shard_size: int | None = None, on_total=None,
                    providers_used: list[str] | None = None) -> Iterator[tuple[Batch, np.ndarray]]:
    """Like :meth:`cmcnn.serve.predictor.Predictor.stream`, on the workers of ``scheduler``.

    Parameters
    ----------
    scheduler : str
        ``local[:N]`` or a scheduler address (:func:`cmcore.scheduler.connect`).
    model : path-like
        The ONNX model; every worker opens it at its absolute path.
    inputs : iterable of path-like
        As for the serial path (expanded here, on the client).
    info : ModelInfo
        The model's contract, read by the client.
    options, batch_size, readers
        As for :meth:`~cmcnn.serve.predictor.Predictor.stream`; ``readers`` threads per task.
    providers, threads
        Each worker's session options.  ``threads=None`` on a ``local:N`` cluster
        gives each worker's session ``cpu_count // N`` threads.
    shard_size : int, optional
        Cutouts per task (whole batches); default :func:`auto_shard_size`.
    on_total : callable, optional
        Called once with the number of inputs, before the first batch.
    providers_used : list, optional
        Filled with the providers the workers' sessions use.

    Yields
    ------
    (Batch, ndarray)
        The serial path's batches (without their images) and their log10 M200, in input order.
    """
    options = options or ReadOptions()
    if batch_size < 1 or readers < 1:
        raise InputError(f"--batch-size and --readers must be >= 1, got {batch_size} and {readers}")
    if shard_size is not None and shard_size < 1:
        raise InputError(f"--shard-size must be >= 1, got {shard_size}")
    kind, value = parse_scheduler(scheduler)
    if kind == "local" and threads is None:
        threads = max(1, (os.cpu_count() or 1) // int(value))
    model = str(Path(model).resolve())
    sources = expand_inputs(inputs, info, options)
    total = sum(s.n for s in sources)
    with connect(scheduler) as client:
        from dask.distributed import as_completed

        if shard_size is None:
            shard_size = auto_shard_size(total, sum(client.nthreads().values()), batch_size)
        shards = shard_plan(sources, batch_size, shard_size, os.getcwd())
        if on_total is not None:
            on_total(total)
        run = uuid.uuid4().hex[:12]
        futures = {client.submit(predict_shard, model, providers, threads, [t for t, _ in shard], info, options,
                                 readers, pure=False, key=f"cmc-predict-{run}-{i}"): i
                   for i, shard in enumerate(shards)}
        done: dict[int, list] = {}
        following = 0
        try:
            for fut in as_completed(list(futures)):
                i = futures.pop(fut)
                done[i], seen = fut.result()
                if providers_used is not None:
                    providers_used.extend(p for p in seen if p not in providers_used)
                while following in done:
                    shard, shards[following] = shards[following], None
                    for (batch, logm), (task, given) in zip(done.pop(following), shard):
                        yield _as_given(batch, task, given), logm
                    following += 1
        finally:
            if futures:
                client.cancel(list(futures))
