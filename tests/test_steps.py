"""Resumable steps and their manifests (cmcnn.workflows.steps)."""
from __future__ import annotations

import hashlib
import json

import pytest

from cmcnn.workflows.steps import HashCache, Step, StepRunner, duration
from cmcore.errors import InputError


class Counter:
    """A step action that copies ``src`` upper-cased to ``dst`` and counts its calls."""

    def __init__(self, src, dst, fail_after_write: bool = False):
        self.src, self.dst, self.calls, self.fail = src, dst, 0, fail_after_write

    def __call__(self):
        self.calls += 1
        self.dst.parent.mkdir(parents=True, exist_ok=True)
        self.dst.write_text(self.src.read_text().upper())
        if self.fail:
            raise KeyboardInterrupt


def _step(tmp_path, action, **kw):
    out = tmp_path / "out" / "b.txt"
    return Step("copy", action, inputs=[tmp_path / "a.txt"], outputs=[out], params={"k": 1},
                clean=[out.parent], **kw)


@pytest.fixture
def setup(tmp_path):
    (tmp_path / "a.txt").write_text("hello")
    action = Counter(tmp_path / "a.txt", tmp_path / "out" / "b.txt")
    runner = StepRunner(tmp_path, log=lambda line: None)
    return tmp_path, action, runner


def test_finished_step_is_skipped_and_manifest_records_hashes(setup):
    tmp_path, action, runner = setup
    step = _step(tmp_path, action)
    assert runner.status(step).state == "todo"
    assert runner.run(step) == "ran"
    assert runner.run(step) == "skipped"
    assert action.calls == 1
    m = json.loads((tmp_path / "steps" / "copy.json").read_text())
    assert m["state"] == "done" and m["params"] == {"k": 1}
    assert m["inputs"] == {"a.txt": hashlib.sha256(b"hello").hexdigest()}
    assert m["outputs"] == {"out/b.txt": hashlib.sha256(b"HELLO").hexdigest()}


@pytest.mark.parametrize("change, reason", [
    (lambda p: (p / "a.txt").write_text("other"), "input a.txt changed"),
    (lambda p: (p / "a.txt").unlink(), "input a.txt is missing"),
    (lambda p: (p / "out" / "b.txt").write_text("tampered"), "output out/b.txt changed"),
    (lambda p: (p / "out" / "b.txt").unlink(), "output out/b.txt is missing"),
])
def test_changed_inputs_or_outputs_make_the_step_stale(setup, change, reason):
    tmp_path, action, runner = setup
    step = _step(tmp_path, action)
    runner.run(step)
    (tmp_path / "out" / "extra").write_text("left by the first run")
    change(tmp_path)
    st = runner.status(step)
    assert (st.state, st.reason) == ("stale", reason)
    if (tmp_path / "a.txt").exists():
        runner.run(step)
        assert action.calls == 2
        assert not (tmp_path / "out" / "extra").exists()  # cleaned before the redo
        assert runner.status(step).state == "done"


def test_changed_settings_make_the_step_stale(setup):
    tmp_path, action, runner = setup
    runner.run(_step(tmp_path, action))
    other = _step(tmp_path, action)
    other.params = {"k": 2}
    assert runner.status(other).reason == "settings changed"


def test_an_interrupted_step_resumes_without_cleaning(setup):
    tmp_path, _, runner = setup
    failing = Counter(tmp_path / "a.txt", tmp_path / "out" / "b.txt", fail_after_write=True)
    step = _step(tmp_path, failing)
    with pytest.raises(KeyboardInterrupt):
        runner.run(step)
    assert json.loads((tmp_path / "steps" / "copy.json").read_text())["state"] == "running"
    (tmp_path / "out" / "partial").write_text("kept")
    assert runner.status(step).state == "resume"
    ok = Counter(tmp_path / "a.txt", tmp_path / "out" / "b.txt")
    assert runner.run(_step(tmp_path, ok)) == "ran"
    assert (tmp_path / "out" / "partial").exists()
    assert runner.status(step).state == "done"


def test_missing_output_after_the_action_is_an_error(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    step = Step("noop", lambda: None, inputs=[tmp_path / "a.txt"], outputs=[tmp_path / "never.txt"])
    with pytest.raises(InputError, match="never.txt does not exist"):
        StepRunner(tmp_path, log=lambda line: None).run(step)


def test_hash_cache_sees_rewrites(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"one")
    sha = HashCache()
    assert sha(p) == hashlib.sha256(b"one").hexdigest()
    p.write_bytes(b"two!")
    assert sha(p) == hashlib.sha256(b"two!").hexdigest()


def test_paths_outside_root_are_absolute(tmp_path):
    runner = StepRunner(tmp_path / "root")
    assert runner.key(tmp_path / "root" / "x" / "y") == "x/y"
    assert runner.key(tmp_path / "elsewhere") == str((tmp_path / "elsewhere").resolve())


def test_names_and_durations():
    with pytest.raises(InputError):
        Step("bad name", lambda: None)
    assert duration(12.4) == "12s" and duration(245) == "4m05s" and duration(3720) == "1h02m"
