"""Resumable pipeline steps, each verified by a manifest of its inputs' SHA-256.

A :class:`Step` is one unit of a long pipeline (a dataset build, a training, an
evaluation): a name, the files it reads (``inputs``), the settings that decide its
result (``params``, JSON), the files it leaves (``outputs``) and the function that
makes them.  :class:`StepRunner` keeps one manifest per step in ``<root>/steps/<name>.json``::

    {"step": ..., "state": "running" | "done", "params": {...},
     "inputs": {path: sha256}, "outputs": {path: sha256}, "seconds": ..., "finished": ...}

and decides, before running a step, from the manifest and the files on disk:

``done``
    the manifest says done, its settings and every input's SHA-256 equal today's, and every
    output exists with the recorded SHA-256: the step is skipped.
``resume``
    the manifest says running (an earlier run was stopped inside it) with today's settings
    and inputs: the step runs again without removing anything, so steps that resume on
    their own (the dataset builder, training) continue where they stopped.
``todo``
    no manifest.
``stale``
    the settings or an input changed, or an output is missing or changed since the step
    finished: the step's own files (``clean``) are removed and the step runs from scratch.

The manifest is written (atomically) as ``running`` before the action and ``done`` with the
outputs' hashes after it, so a step killed at any moment is found as ``resume``.
Paths inside ``root`` are recorded relative to it (the folder may be moved); others absolutely.
"""
from __future__ import annotations

import datetime
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cmcore import __version__
from cmcore.fileio import file_sha256
from cmcore.errors import InputError
from cmcore.fileio import atomic_write

STATES = ("done", "resume", "todo", "stale")


@dataclass
class Step:
    """One step of a pipeline.

    Attributes
    ----------
    name
        Unique name (letters, digits, ``-`` and ``_``): the manifest is ``steps/<name>.json``.
    action
        Makes the outputs; called with no argument.
    inputs
        Files read, verified by SHA-256 on every rerun (they must exist when the step starts).
    outputs
        Files the step leaves; all must exist after ``action``.
    params
        JSON-serialisable settings that decide the result.
    clean
        Files or folders removed before the step is redone from scratch (its own products).
    estimate
        Expected duration [s], for the plan's time estimate.
    label
        Human-readable description for progress lines.
    """

    name: str
    action: Callable[[], object]
    inputs: Sequence[Path] = ()
    outputs: Sequence[Path] = ()
    params: dict = field(default_factory=dict)
    clean: Sequence[Path] = ()
    estimate: float = 0.0
    label: str = ""

    def __post_init__(self) -> None:
        if not self.name or not all(ch.isalnum() or ch in "-_" for ch in self.name):
            raise InputError(f"step name must be letters, digits, '-' or '_', got {self.name!r}")


@dataclass
class StepStatus:
    """What :meth:`StepRunner.status` found for one step."""

    state: str
    reason: str = ""


class HashCache:
    """SHA-256 of files, computed once per (path, size, modification time)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int, int], str] = {}

    def __call__(self, path: Path) -> str:
        st = os.stat(path)
        key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
        if key not in self._cache:
            self._cache[key] = file_sha256(path)
        return self._cache[key]


def duration(seconds: float) -> str:
    """``1h02m``, ``4m05s`` or ``12s``."""
    s = int(round(max(seconds, 0.0)))
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


class StepRunner:
    """Runs :class:`Step` objects under ``root``, skipping those already done (see the module docstring).

    Parameters
    ----------
    root
        Folder of the pipeline; manifests go to ``root/steps``.
    log
        Called with each progress line (default: print to standard output).
    """

    def __init__(self, root: str | os.PathLike, log: Callable[[str], None] | None = None) -> None:
        self.root = Path(root)
        self.folder = self.root / "steps"
        self.sha = HashCache()
        self.log = log or (lambda line: print(line, flush=True))
        self.ran: list[tuple[str, str, float]] = []  # (name, "ran"/"skipped", seconds)

    # ------------------------------------------------------------------ paths and manifests
    def key(self, path: Path) -> str:
        """How ``path`` is recorded: relative to ``root`` when inside it, else absolute."""
        p = Path(path).resolve()
        try:
            return p.relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return str(p)

    def manifest_path(self, step: Step) -> Path:
        return self.folder / f"{step.name}.json"

    def read_manifest(self, step: Step) -> dict | None:
        path = self.manifest_path(step)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            return {}  # unreadable: treated as stale

    def _write(self, step: Step, record: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.manifest_path(step)) as tmp:
            tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")

    def _hashes(self, paths: Sequence[Path], what: str, step: Step) -> dict[str, str]:
        out = {}
        for p in paths:
            if not Path(p).is_file():
                raise InputError(f"step {step.name}: {what} {p} does not exist")
            out[self.key(p)] = self.sha(Path(p))
        return out

    @staticmethod
    def _params(step: Step) -> dict:
        return json.loads(json.dumps(step.params, sort_keys=True))

    # ------------------------------------------------------------------ decisions
    def status(self, step: Step) -> StepStatus:
        """``done``, ``resume``, ``todo`` or ``stale`` (with the reason), from the manifest and the files."""
        m = self.read_manifest(step)
        if m is None:
            return StepStatus("todo")
        if m.get("params") != self._params(step):
            return StepStatus("stale", "settings changed")
        recorded = m.get("inputs", {})
        wanted = [self.key(p) for p in step.inputs]
        if sorted(recorded) != sorted(wanted):
            return StepStatus("stale", "other input files")
        for p in step.inputs:
            if not Path(p).is_file():
                return StepStatus("stale", f"input {self.key(p)} is missing")
            if self.sha(Path(p)) != recorded[self.key(p)]:
                return StepStatus("stale", f"input {self.key(p)} changed")
        if m.get("state") != "done":
            return StepStatus("resume")
        outs = m.get("outputs", {})
        for p in step.outputs:
            k = self.key(p)
            if k not in outs or not Path(p).is_file():
                return StepStatus("stale", f"output {k} is missing")
            if self.sha(Path(p)) != outs[k]:
                return StepStatus("stale", f"output {k} changed")
        return StepStatus("done")

    # ------------------------------------------------------------------ running
    def run(self, step: Step, prefix: str = "") -> str:
        """Run ``step`` unless done; returns ``"skipped"`` or ``"ran"``."""
        st = self.status(step)
        head = f"{prefix}{step.label or step.name}"
        if st.state == "done":
            self.log(f"{head}: finished earlier, inputs verified; skipped")
            self.ran.append((step.name, "skipped", 0.0))
            return "skipped"
        if st.state == "stale":
            self.log(f"{head}: {st.reason}; redoing it from scratch")
            for p in step.clean:
                p = Path(p)
                if p.is_dir():
                    shutil.rmtree(p)
                elif p.exists():
                    p.unlink()
        elif st.state == "resume":
            self.log(f"{head}: resuming (stopped earlier)")
        else:
            self.log(f"{head}: running" + (f" (estimate {duration(step.estimate)})" if step.estimate else ""))
        record = {"step": step.name, "state": "running", "params": self._params(step),
                  "inputs": self._hashes(step.inputs, "input", step), "code_version": __version__}
        self._write(step, record)
        t0 = time.perf_counter()
        step.action()
        seconds = time.perf_counter() - t0
        record.update(state="done", outputs=self._hashes(step.outputs, "output", step), seconds=seconds,
                      finished=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
        self._write(step, record)
        self.log(f"{head}: done in {duration(seconds)}")
        self.ran.append((step.name, "ran", seconds))
        return "ran"
