"""A command that needs an optional extra the user did not install says which one to install
(``pip install 'tether[server]'``), instead of ``unexpected ModuleNotFoundError: No module named
'fastapi'``. Each check runs the real ``tether`` command in a fresh interpreter in which the
extra's module cannot be found, as on a machine where it was never installed."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from tether.cli.extras import EXTRA_OF_MODULE, missing_extra_message

ROOT = Path(__file__).resolve().parents[2]

WITHOUT = """
import importlib.abc, sys

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] == sys.argv[1]:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
from tether.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


def tether_without(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT, module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "HOME": str(cwd)},
    )


@pytest.mark.parametrize(
    ("module", "extra", "args"),
    [
        ("cryptography", "governance", ["approvals", "keygen", "--out", "lena.pem"]),
        ("fastapi", "server", ["serve", "--store", "sqlite:///t.db", "--port", "0"]),
    ],
)
def test_a_missing_extra_is_named_with_the_command_that_installs_it(
    tmp_path: Path, module: str, extra: str, args: list[str]
) -> None:
    proc = tether_without(module, *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "unexpected" not in proc.stderr
    assert f"No module named '{module}'" in proc.stderr
    assert f"pip install 'tether[{extra}]'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_a_module_tether_does_not_ship_is_left_to_the_generic_message() -> None:
    assert missing_extra_message(ModuleNotFoundError("No module named 'x'", name="x")) is None
    assert missing_extra_message(ValueError("fastapi")) is None
    hint = missing_extra_message(ModuleNotFoundError("No module named 'a.b'", name="usearch.io"))
    assert hint is not None and "tether[memory]" in hint


def test_every_mapped_module_is_installed_by_its_extra() -> None:
    """The table follows pyproject.toml: the distribution that provides each module is a
    requirement of the extra it names."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]

    def names(extra: str) -> set[str]:
        found = set()
        for req in extras[extra]:
            name = re.split(r"[\[<>=!~; ]", req, maxsplit=1)[0].lower().replace("_", "-")
            found |= names(name.split("tether[")[-1].rstrip("]")) if "tether[" in req else {name}
        return found

    dists = packages_distributions()
    for module, extra in EXTRA_OF_MODULE.items():
        assert extra in extras, f"{module}: no extra {extra!r} in pyproject.toml"
        provided_by = {d.lower().replace("_", "-") for d in dists.get(module, [])}
        assert provided_by, f"{module} is not installed here (make setup installs every extra)"
        assert provided_by & names(extra), f"{module} ({provided_by}) is not in tether[{extra}]"
