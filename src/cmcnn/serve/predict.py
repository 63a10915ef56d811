"""``cmc predict``: every input through a :class:`~cmcnn.serve.predictor.Predictor`, into one table.

Refusals are printed when met and listed in the summary; the run goes on with the other
inputs.  With a Dask scheduler the inputs go out in shards (:mod:`cmcnn.serve.distributed`).
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cmcnn.serve.cutouts import ReadOptions
from cmcnn.serve.predictor import Predictor


@dataclass
class PredictSummary:
    """What one :func:`predict_to_table` call did."""

    out: Path
    n_inputs: int
    n_predicted: int
    refusals: list[tuple[str, str]]
    seconds: float
    providers: list[str]


def predict_to_table(model: str | os.PathLike, inputs: Sequence[str | os.PathLike], out: str | os.PathLike, *,
                     options: ReadOptions | None = None, batch_size: int = 64, readers: int = 2,
                     providers: str | Sequence[str] | None = None, threads: int | None = None,
                     progress: bool = True, log=None, scheduler: str | None = None,
                     shard_size: int | None = None) -> PredictSummary:
    """``cmc predict``: predict every input, write the table, collect the refusals.

    Each refusal is printed (one line, through ``log``) when met and listed in the
    summary; the run goes on with the other inputs.  With ``scheduler``
    (``local[:N]`` or an address) the inputs are predicted in shards of about
    ``shard_size`` cutouts on a dask.distributed cluster (:mod:`cmcnn.serve.distributed`);
    the table and the refusals are the same, and this process still writes the table.
    """
    from cmcore.progress import progress_bar

    from cmcnn.serve.output_tables import ERROR_COLUMN, REDSHIFT_COLUMN, prediction_table, table_format

    table_format(out)
    if scheduler is not None:
        from cmcore.scheduler import parse_scheduler

        parse_scheduler(scheduler)
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    # with a cluster, the workers predict: here the model is only checked and its contract read
    pred = Predictor(model, providers=providers, threads=threads) if scheduler is None else \
        Predictor(model, providers="cpu", threads=1)
    used = list(pred.providers) if scheduler is None else []
    bars = []
    refusals: list[tuple[str, str]] = []
    n_pred = 0
    meta = {"model": str(pred.path.resolve()), "channels": ",".join(pred.info.channels),
            "dataset_sha256": pred.info.dataset_sha256, "code_version": pred.info.code_version}
    if progress:
        where = f"providers {', '.join(pred.providers)}" if scheduler is None else f"on the Dask cluster {scheduler}"
        log(f"cmc predict: {pred.path.name}: {pred.info.describe()}; {where}")
    t0 = time.perf_counter()

    def on_total(n: int) -> None:
        bars.append(progress_bar(total=n, desc="cmc predict", unit="cutout", disable=not progress))

    stream = None
    try:
        extra = (((REDSHIFT_COLUMN,) if pred.info.takes_redshift else ())
                 + ((ERROR_COLUMN,) if pred.info.has_error else ()))
        with prediction_table(out, meta, extra) as table:
            if scheduler is None:
                stream = pred.stream(inputs, options=options, batch_size=batch_size, readers=readers,
                                     on_total=on_total)
            else:
                from cmcnn.serve.distributed import predict_sharded

                stream = predict_sharded(scheduler, pred.path, inputs, pred.info, options=options,
                                         batch_size=batch_size, readers=readers, providers=providers,
                                         threads=threads, shard_size=shard_size, on_total=on_total,
                                         providers_used=used)
            for batch, logm in stream:
                bar = bars[0]
                for name, reason in batch.refusals:
                    if progress:
                        getattr(bar, "write", log)(f"refused {name}: {reason}")
                refusals.extend(batch.refusals)
                columns = {REDSHIFT_COLUMN: batch.redshift, ERROR_COLUMN: batch.log10_err}
                table.write(batch.names, batch.hdus, batch.indices, logm, batch.filled,
                            **{c: columns[c] for c in extra})
                n_pred += len(batch.names)
                if batch.refusals:
                    bar.set_postfix_str(f"{len(refusals)} refused")
                bar.update(batch.n_inputs)
    finally:
        if stream is not None:
            stream.close()  # a cluster's connection, the reader threads
        for bar in bars:
            bar.close()
    return PredictSummary(Path(out), n_pred + len(refusals), n_pred, refusals, time.perf_counter() - t0, used)
