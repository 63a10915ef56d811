"""Connecting to a dask.distributed cluster: the ``--scheduler`` argument of cmc commands.

``local`` or ``local:N`` starts a ``LocalCluster`` of N worker processes with one
thread each (N = the CPU count by default); anything else is the address of a
running scheduler (``tcp://host:8786``), e.g. one started by dask-jobqueue on SLURM
(``docs/scale.md``).  Used by ``cmc dataset --scheduler`` (:mod:`cmcore.distributed`)
and ``cmc predict --scheduler`` (:mod:`cmcnn.serve.distributed`).  dask is an optional
dependency (the ``distributed`` extra): it is imported only when a cluster is asked for.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import InputError


def parse_scheduler(text: str) -> tuple[str, int | str]:
    """``("local", n_workers)`` for ``local[:N]``, else ``("address", text)``.

    Raises
    ------
    InputError
        ``local:N`` without a positive integer N, or an empty address.
    """
    text = str(text).strip()
    if text == "local" or text.startswith("local:"):
        n = text.partition(":")[2]
        try:
            workers = int(n) if n else (os.cpu_count() or 1)
        except ValueError:
            workers = 0
        if workers < 1:
            raise InputError(f"--scheduler local:N needs a positive number of workers, got {text!r}")
        return "local", workers
    if not text:
        raise InputError("empty scheduler address")
    return "address", text


@contextmanager
def connect(scheduler: str, *, timeout: float = 30.0) -> Iterator:
    """A ``dask.distributed.Client`` for ``scheduler`` (a fresh LocalCluster for ``local[:N]``).

    Parameters
    ----------
    scheduler : str
        ``local``, ``local:N`` or a scheduler address (:func:`parse_scheduler`).
    timeout : float
        Seconds to keep trying to reach a scheduler address.

    Raises
    ------
    InputError
        dask.distributed is not installed, the argument is neither ``local[:N]``
        nor an address, or the scheduler cannot be reached within ``timeout``.
    """
    kind, value = parse_scheduler(scheduler)
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise InputError("--scheduler needs dask.distributed (pip install 'cmc[distributed]', "
                         "or pip install 'dask[distributed]')") from None
    if kind == "local":
        with LocalCluster(n_workers=int(value), threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            yield client
    else:
        try:
            client = Client(str(value), timeout=f"{timeout}s")
        except OSError as exc:
            raise InputError(f"cannot reach the Dask scheduler at {value}: {exc}") from None
        except ValueError as exc:  # dask's own: no port, unknown scheme ...
            raise InputError(f"--scheduler {value!r} is neither local[:N] nor a Dask scheduler address "
                             f"such as tcp://host:8786 ({exc})") from None
        with client:
            yield client
