"""The ``cmc`` console script: version, help, and one-line errors."""
from __future__ import annotations

import subprocess
import sys

import cmcore
from cmcnn import cli


def test_version_matches_package(capsys):
    try:
        cli.main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert capsys.readouterr().out.strip() == f"cmc {cmcore.__version__}"


def test_help_lists_every_subcommand(capsys):
    try:
        cli.main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    for mod in cli._command_modules():
        assert mod.NAME in out
        assert callable(mod.run) and callable(mod.add_arguments)


def test_console_script_runs_without_tensorflow():
    code = (
        "import sys; from cmcnn import cli; cli.build_parser(); "
        "assert 'tensorflow' not in sys.modules and 'onnxruntime' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
