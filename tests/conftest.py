"""Shared fixtures of the cmc test suite."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

#: ``../shared/data`` beside the repository (override with ``CMC_SHARED_DATA``).
SHARED_DATA = Path(
    os.environ.get("CMC_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


@pytest.fixture
def shared_data() -> Path:
    """Folder of the small real snapshots; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared simulation data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def shared_file(shared_data):
    """Return a function giving the path of one shared file, skipping when it is absent."""

    def get(name: str) -> Path:
        path = shared_data / name
        if not path.is_file():
            pytest.skip(f"shared file {name} not found in {shared_data}")
        return path

    return get


@pytest.fixture(scope="session")
def tiny_universe(tmp_path_factory):
    """The ``tiny`` synthetic universe (seed 1), generated once per test session."""
    from cmcore.synth import generate

    return generate("tiny", seed=1, out=tmp_path_factory.mktemp("tiny_universe"), progress=False)
