"""App references (``--app``) load from the project directory, as ``python`` and uvicorn do.

``tether worker --app myapp:workflows`` run beside ``myapp.py`` said "No module named 'myapp'":
a console script does not put the current directory on ``sys.path``. The subprocesses below run
the real ``tether`` script, or ``python -P`` (no current directory on the path either).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

APP = """\
from typing import TypedDict

from tether import END, START, Graph
from {helpers} import shout


class S(TypedDict, total=False):
    text: str
    answer: str


g = Graph(S, name="echo")
g.add_node("shout", shout).add_edge(START, "shout").add_edge("shout", END)
workflows = [g.compile()]
"""
HELPERS = 'def shout(s):\n    return {"answer": s.get("text", "").upper()}\n'
LOAD = (
    "import sys; from tether.core.refs import load_ref; "
    "print([w.name for w in load_ref(sys.argv[1])], sys.path.count(sys.argv[2]))"
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "helpers.py").write_text(HELPERS)
    (tmp_path / "pkg" / "app.py").write_text(APP.format(helpers="pkg.helpers"))
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "helpers.py").write_text(HELPERS)
    (tmp_path / "scripts" / "flow.py").write_text(APP.format(helpers="helpers"))
    return tmp_path


@pytest.mark.parametrize(
    "ref",
    [
        "pkg.app:workflows",  # a module of the project
        "pkg/app.py:workflows",  # its file, importing the package from the project
        "scripts/flow.py:workflows",  # a file importing its sibling module
    ],
)
def test_refs_load_from_the_project_directory(project: Path, ref: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-P", "-c", LOAD, ref, str(project)],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["['echo']", "1"]  # on the path once


def test_the_tether_script_finds_the_app_beside_it(project: Path) -> None:
    tether = Path(sys.executable).parent / "tether"
    store = f"sqlite:///{project / 'runs.db'}"
    subprocess.run([str(tether), "migrate", "--store", store], cwd=project, check=True)
    upgrade = ["runs", "upgrade", "--workflow", "echo", "--dry-run"]
    proc = subprocess.run(
        [str(tether), *upgrade, "--app", "pkg.app:workflows", "--store", store],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "no run to upgrade" in proc.stdout


async def test_an_app_file_that_runs_a_program_on_import_says_how_to_fix_it(
    tmp_path: Path,
) -> None:
    """An example saved as a file runs ``asyncio.run(main())`` at import: loaded from inside
    an event loop (the CLI's, a server's) it fails; the error says to guard it, and the
    half-run module is not kept, so a fixed file loads on the next try."""
    from tether.core.errors import ConfigurationError
    from tether.core.refs import load_ref

    app = tmp_path / "example_app.py"
    app.write_text(
        "import asyncio\n\nworkflows = []\n\nasync def main():\n    pass\n\nasyncio.run(main())\n"
    )
    with pytest.raises(ConfigurationError, match=r"if __name__ == \"__main__\""):
        load_ref(f"{app}:workflows")
    app.write_text(
        "import asyncio\n\nworkflows = ['fixed']\n\nasync def main():\n    pass\n\n"
        'if __name__ == "__main__":\n    asyncio.run(main())\n'
    )
    assert load_ref(f"{app}:workflows") == ["fixed"]
