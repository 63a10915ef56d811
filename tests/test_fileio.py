"""Atomic writes: complete under the real name or absent; ordinary permissions."""
from __future__ import annotations

import os
import stat

import pytest

from cmcore.fileio import atomic_write


def test_success_publishes_with_umask_permissions(tmp_path):
    target = tmp_path / "out.txt"
    old = os.umask(0o022)
    try:
        with atomic_write(target) as tmp:
            assert tmp.parent == tmp_path and tmp != target
            tmp.write_text("done")
            assert not target.exists()
    finally:
        os.umask(old)
    assert target.read_text() == "done"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_failure_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("previous")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_stale_temporaries_of_one_output_are_removed(tmp_path):
    from cmcore.fileio import remove_stale_temporaries, temporary_path

    stale = [temporary_path(tmp_path / "data.h5") for _ in range(2)]
    other = temporary_path(tmp_path / "other.h5")
    (tmp_path / "data.h5").write_text("keep")
    removed = remove_stale_temporaries(tmp_path / "data.h5")
    assert sorted(removed) == sorted(stale)
    assert not any(p.exists() for p in stale)
    assert other.exists() and (tmp_path / "data.h5").read_text() == "keep"
