"""The package surface: lazy public names, no heavy imports at ``import cmcore``."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import cmcore


@pytest.mark.parametrize("name", sorted(set(cmcore.__all__) - {"__version__"}))
def test_every_public_name_resolves_and_is_documented(name):
    obj = getattr(cmcore, name)
    assert obj.__doc__ and obj.__doc__.strip()


def test_unknown_name_raises_attribute_error():
    with pytest.raises(AttributeError):
        cmcore.no_such_thing  # noqa: B018


def test_import_is_light_and_never_loads_tensorflow():
    code = (
        "import sys, cmcore; "
        "heavy = {'h5py', 'astropy', 'scipy', 'tensorflow', 'onnxruntime'} & set(sys.modules); "
        "assert not heavy, heavy; "
        "cmcore.build_dataset; cmcore.render_cutout; "
        "assert 'tensorflow' not in sys.modules and 'onnxruntime' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_property_based_tests_are_derandomised_in_ci():
    from hypothesis import settings

    if os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci":
        assert settings.default.derandomize and settings.default.database is None


def test_pyproject_lists_every_package_and_ships_the_models():
    """pyproject.toml lists its packages (for the models/ mapping): the list must match src/."""
    tomllib = pytest.importorskip("tomllib")   # Python 3.11+
    from setuptools import find_packages

    root = Path(__file__).resolve().parents[1]
    tool = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert sorted(tool["packages"]) == sorted(find_packages(root / "src") + ["cmcnn.shipped"])
    assert tool["package-dir"]["cmcnn.shipped"] == "models"
    assert "*.onnx" in tool["package-data"]["cmcnn.shipped"]
