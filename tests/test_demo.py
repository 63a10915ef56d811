"""``cmc demo``, the main job, end to end on the tiny preset; a rerun resumes."""
from __future__ import annotations

from cmcnn import cli
from cmcore.dataset import open_dataset


def test_demo_runs_end_to_end_and_resumes(tmp_path, capsys):
    args = ["demo", "--out", str(tmp_path), "--preset", "tiny", "--no-progress", "--workers", "1"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "universe" / "synth.json").is_file()
    assert (tmp_path / "dataset_montage.png").stat().st_size > 10_000
    with open_dataset(tmp_path / "dataset.h5") as f:
        n = f["images/Ypar"].shape[0]
    assert n > 0 and f"{n} images of" in out
    rows = [line for line in out.splitlines() if line.strip()[:5].replace(".", "").isdigit()]
    assert sum(int(r.split()[1]) for r in rows) == n  # the per-bin table covers every image
    assert cli.main(args) == 0
    again = capsys.readouterr().out
    assert "already complete" in again and f"already complete: {n} images" in again
