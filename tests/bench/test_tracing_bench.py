"""The tracing bench's baseline, so that it cannot rot: the run loop's hooks are found and taken
out of the current files (a baseline built from an old commit stopped importing once the files
around it moved on), and the stripped tree traces nothing while the current one does."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import tracing  # noqa: E402  (bench/ is not a package)


def test_strip_hooks_keeps_the_untraced_branch() -> None:
    source = (
        "def f(self):\n"
        "    if self.trace is not None:\n"
        "        self.trace.event(1)\n"
        "    if self.trace is None:\n"
        "        out = 1\n"
        "    else:\n"
        "        out = 2\n"
        "    self.trace = start_run_trace(self)\n"
        "    if self.other is None:\n"
        "        out = 3\n"
        "    return out\n"
    )
    new, checks, calls = tracing.strip_hooks(source)
    assert (checks, calls) == (2, 1)
    assert "trace.event" not in new and "out = 2" not in new and "start_run_trace" not in new
    assert "out = 1" in new and "self.other is None" in new and "self.trace = None" in new


def test_every_hooked_file_has_hooks_to_strip() -> None:
    for path in tracing.HOOKED:
        _new, checks, calls = tracing.strip_hooks((tracing.ROOT / path).read_text())
        assert checks + calls > 0, path


def test_the_baseline_tree_runs_and_traces_nothing(tmp_path: Path) -> None:
    base, how = tracing.baseline_tree(tmp_path)
    assert "loop.py" in how
    trees = {"in-memory": base}  # the stripped code, with an in-memory exporter configured
    stripped = tracing.run_mode("in-memory", "memory", 1, tmp_path, trees, "", steps=30)
    traced = tracing.run_mode("in-memory", "memory", 1, tmp_path, {}, "", steps=30)
    assert stripped["tether"].startswith(str(base))
    assert stripped["spans"] == 0  # the hooks are gone: an exporter sees no span
    assert traced["spans"] > 30  # the current tree: a span per step and per node at least
