"""Datasets rendered on a dask.distributed cluster from an indexed snapshot equal the serial build."""
from __future__ import annotations

import os
import signal
import threading
import time

import h5py
import numpy as np
import pytest

from cmcnn import cli
from cmcore.dataset import build_dataset
from cmcore.datafile import DatasetConfig
from cmcore.scheduler import parse_scheduler
from cmcore.errors import InputError

distributed = pytest.importorskip("dask.distributed")

SMALL = dict(per_bin=1, projections=("x", "diag"), npix=40, fov_arcmin=8.0)


@pytest.fixture(scope="module")
def indexed(tiny_universe, tmp_path_factory):
    out = tmp_path_factory.mktemp("indexed") / "indexed.hdf5"
    assert cli.main(["index", str(tiny_universe.snapshot), "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def serial(tiny_universe, tmp_path_factory):
    """The serial build from the original (not indexed) snapshot."""
    out = tmp_path_factory.mktemp("serial") / "serial.h5"
    build_dataset(tiny_universe.snapshot, tiny_universe.halos, out, DatasetConfig(**SMALL), progress=False)
    return out


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as c:
        yield c


def assert_same_dataset(a, b):
    """Same images (bit for bit), labels and noise seeds."""
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        assert sorted(fa["images"]) == sorted(fb["images"]) and sorted(fa["labels"]) == sorted(fb["labels"])
        for c in fa["images"]:
            assert np.array_equal(fa[f"images/{c}"][:], fb[f"images/{c}"][:]), c
        for k in fa["labels"]:
            assert np.array_equal(fa[f"labels/{k}"][:], fb[f"labels/{k}"][:]), k
        assert np.array_equal(fa["noise/seed"][:], fb["noise/seed"][:])
        assert fa.attrs["config"] == fb.attrs["config"]


def test_serial_build_from_the_indexed_copy_equals_the_original(tiny_universe, indexed, serial, tmp_path):
    out = tmp_path / "from_indexed.h5"
    build_dataset(indexed, tiny_universe.halos, out, DatasetConfig(**SMALL), progress=False)
    assert_same_dataset(out, serial)


def test_two_workers_equal_the_serial_build(tiny_universe, indexed, serial, cluster, tmp_path):
    out = tmp_path / "dask.h5"
    summary = build_dataset(indexed, tiny_universe.halos, out, DatasetConfig(**SMALL), progress=False,
                            scheduler=cluster.scheduler_address)
    assert summary.n_new > 0 and not (tmp_path / "dask.h5.parts").exists()
    assert_same_dataset(out, serial)


def test_a_serial_build_interrupted_resumes_on_the_cluster(tiny_universe, indexed, serial, cluster, tmp_path,
                                                          monkeypatch):
    import cmcore.dataset as ds

    real, done = ds._render_halo, []

    def stop_after_two(*args):
        if len(done) == 2:
            raise KeyboardInterrupt
        done.append(real(*args))
        return done[-1]

    out = tmp_path / "resumed.h5"
    monkeypatch.setattr(ds, "_render_halo", stop_after_two)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(indexed, tiny_universe.halos, out, DatasetConfig(**SMALL), progress=False)
    monkeypatch.setattr(ds, "_render_halo", real)
    assert len(list((tmp_path / "resumed.h5.parts").glob("halo_*.npz"))) == 2 and not out.exists()
    summary = build_dataset(indexed, tiny_universe.halos, out, DatasetConfig(**SMALL), progress=False,
                            scheduler=cluster.scheduler_address)
    assert summary.n_new == summary.n_images
    assert_same_dataset(out, serial)



def test_the_cluster_releases_each_halo_once_it_is_saved(tiny_universe, indexed, cluster, tmp_path, monkeypatch):
    """When the last halo is written the cluster holds only that halo's images, not every halo
    rendered so far (which made a worker's memory grow with the number of haloes it rendered)."""
    import cmcore.dataset as ds
    from cmcore.halos import read_halos

    config = DatasetConfig(**{**SMALL, "per_bin": 3})
    cat = read_halos(tiny_universe.halos)
    n_halos = ds.select_halos(cat.halo_id, cat.m200, config)[0].size
    assert n_halos >= 4
    real, saved, held = ds._save_part, [], []

    def in_memory(dask_scheduler):
        return sum(ts.state == "memory" for ts in dask_scheduler.tasks.values())

    with distributed.Client(cluster) as observer:
        def save_and_count(part, stacks):
            real(part, stacks)
            saved.append(part)
            if len(saved) == n_halos:  # releases reach the scheduler asynchronously: wait for them
                deadline = time.time() + 10
                while (count := observer.run_on_scheduler(in_memory)) > 1 and time.time() < deadline:
                    time.sleep(0.05)
                held.append(count)

        monkeypatch.setattr(ds, "_save_part", save_and_count)
        build_dataset(indexed, tiny_universe.halos, tmp_path / "d.h5", config, progress=False,
                      scheduler=cluster.scheduler_address)
    assert len(saved) == n_halos and held == [1]

@pytest.mark.slow
def test_a_worker_killed_mid_run_still_gives_the_identical_complete_file(tiny_universe, indexed, tmp_path):
    cfg = DatasetConfig(per_bin=3, projections=("x", "y", "z", "diag"), npix=60, fov_arcmin=10.0)
    want = tmp_path / "serial.h5"
    build_dataset(tiny_universe.snapshot, tiny_universe.halos, want, cfg, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cl, distributed.Client(cl) as client:
        killed = {}

        def kill_a_busy_worker():
            deadline = time.time() + 120
            while time.time() < deadline and not killed:
                busy = [w for w, keys in client.processing().items() if keys]
                if busy:
                    pids = client.run(os.getpid, workers=[busy[0]])
                    killed["pid"] = pids[busy[0]]
                    os.kill(killed["pid"], signal.SIGKILL)
                    return
                time.sleep(0.01)

        killer = threading.Thread(target=kill_a_busy_worker)
        killer.start()
        out = tmp_path / "dask.h5"
        summary = build_dataset(indexed, tiny_universe.halos, out, cfg, progress=False,
                                scheduler=cl.scheduler_address)
        killer.join()
    assert "pid" in killed
    with pytest.raises(ProcessLookupError):
        os.kill(killed["pid"], 0)
    assert summary.n_images == summary.n_new > 0
    assert_same_dataset(out, want)


def test_scheduler_argument():
    assert parse_scheduler("local:3") == ("local", 3)
    assert parse_scheduler("local") == ("local", os.cpu_count() or 1)
    assert parse_scheduler("tcp://10.0.0.1:8786") == ("address", "tcp://10.0.0.1:8786")
    with pytest.raises(InputError, match="positive number of workers"):
        parse_scheduler("local:0")


def test_distributed_build_needs_an_indexed_snapshot(tiny_universe, tmp_path, capsys):
    out = tmp_path / "d.h5"
    code = cli.main(["dataset", str(tiny_universe.snapshot), "--halos", str(tiny_universe.halos), "--out", str(out),
                     "--per-bin", "1", "--scheduler", "local:1", "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not an indexed snapshot" in err[0] and "cmc index" in err[0]
    assert not out.exists() and not (tmp_path / "d.h5.parts").exists()
