"""Starting ``tether`` loads only what the command needs: the CLI and ``tether worker`` must not
import the model, server, governance or evaluation planes before a command asks for them (they
tripled the start of every command, and of every worker a supervisor restarts: 1.0 -> 0.34 s).
Each check runs in a fresh interpreter, so nothing an earlier test imported counts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("tether.llm", "tether.server", "tether.governance", "tether.evaluation", "tether.demo")
"""Planes a command loads when it runs, never at start-up."""
HEAVY_LIBS = ("fastapi", "starlette", "httpx", "jsonschema", "torch", "argon2")


def loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    modules: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return [
        m
        for m in modules
        if m.startswith(tuple(f"{p}." for p in HEAVY)) or m in HEAVY or m in HEAVY_LIBS
    ]


@pytest.mark.parametrize(
    "code",
    [
        "import tether.cli.main",
        "from tether.cli.main import build_parser; build_parser()",
        "import tether.worker",
    ],
)
def test_start_up_loads_no_heavy_plane(code: str) -> None:
    assert loaded_after(code) == []


def test_a_command_still_loads_its_plane() -> None:
    """The deferred imports are real: the keys command's module reaches the server plane."""
    got = loaded_after(
        "from tether.cli import keys_cmd, drift_opts, shadow_cmd\n"
        "import argparse\n"
        "drift_opts.drift_monitor(argparse.Namespace(drift_threshold=0.5))"
    )
    assert "tether.evaluation" in got
