"""Create (or reuse) the anchors' virtual environment, ``bench/.venv-anchors``.

The anchors (LangGraph, DBOS, and procrastinate for the queue bench) are installed in their own
venv so that their dependency trees never touch the project's. The pins below follow DESIGN.md §5
(LangGraph 1.2, DBOS 3.4) and issue 10's queue anchors (procrastinate 3): the newest patch
release of each line is taken. The venv is reused as long as the installed versions still
satisfy the pins; ``--force`` rebuilds it.

    python bench/anchors_env.py          # ensure, print the installed versions as JSON
"""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
VENV_DIR = BENCH_DIR / ".venv-anchors"

# distribution name -> version prefix that must match ("" = any version)
PINS: dict[str, str] = {
    "langgraph": "1.2.",
    "langgraph-checkpoint-sqlite": "",
    "langgraph-checkpoint-postgres": "",
    "psycopg": "",
    "psycopg-binary": "",
    "psycopg-pool": "",
    "dbos": "3.4.",
    "procrastinate": "3.",
}
REQUIREMENTS = [
    "langgraph==1.2.*",
    "langgraph-checkpoint-sqlite",
    "langgraph-checkpoint-postgres",
    "psycopg[binary]",
    "psycopg-pool",
    "dbos==3.4.*",
    "procrastinate==3.*",
]

_VERSIONS_SNIPPET = (
    "import json, importlib.metadata as m\n"
    "out = {}\n"
    "for d in %r:\n"
    "    try: out[d] = m.version(d)\n"
    "    except m.PackageNotFoundError: out[d] = None\n"
    "print(json.dumps(out))\n"
)


def python_path() -> Path:
    """The anchors venv's interpreter."""
    return VENV_DIR / "bin" / "python"


def installed_versions() -> dict[str, str | None]:
    """Versions of the pinned distributions in the anchors venv (None where missing)."""
    if not python_path().exists():
        return dict.fromkeys(PINS)
    proc = subprocess.run(
        [str(python_path()), "-c", _VERSIONS_SNIPPET % (list(PINS),)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return dict.fromkeys(PINS)
    return dict(json.loads(proc.stdout))


def _satisfied(versions: dict[str, str | None]) -> bool:
    return all(
        (v := versions.get(name)) is not None and v.startswith(prefix)
        for name, prefix in PINS.items()
    )


def ensure(force: bool = False, quiet: bool = True) -> dict[str, str | None]:
    """Make sure the anchors venv exists with the pinned versions; return them."""
    if not force and _satisfied(versions := installed_versions()):
        return versions
    if force or not python_path().exists():
        venv.EnvBuilder(with_pip=True, clear=force).create(VENV_DIR)
    cmd = [str(python_path()), "-m", "pip", "install", "--disable-pip-version-check"]
    if quiet:
        cmd.append("-q")
    subprocess.run([*cmd, *REQUIREMENTS], check=True)
    versions = installed_versions()
    if not _satisfied(versions):
        raise RuntimeError(f"anchors venv does not satisfy the pins {PINS}: {versions}")
    return versions


def main() -> None:
    force = "--force" in sys.argv[1:]
    print(json.dumps(ensure(force=force, quiet=False), indent=2))


if __name__ == "__main__":
    main()
