"""examples/rewoo_research.py runs offline with scripted models and prints the comparison."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_example_prints_the_savings_table() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "rewoo_research.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    lines = out.splitlines()
    assert "rewoo tool calls: 3 in 2 wave(s); react tool calls: 3" in lines
    rows = {r[0]: r for r in (line.split() for line in lines) if r and r[1:2] and r[1].isdigit()}
    react, rewoo, saved = rows["react"], rows["rewoo"], rows["saved"]
    assert (react[1], rewoo[1], saved[1]) == ("4", "2", "2")
    assert int(saved[2]) == int(react[2]) - int(rewoo[2])
