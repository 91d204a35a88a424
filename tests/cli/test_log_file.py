"""``--log-file`` of ``tether serve`` and ``tether worker``: real processes writing real files,
rotated by size, one rotating process per file, shared files rotated by someone else, a file
that stops taking writes, and files that cannot be opened."""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 120.0
WORKER_APP = "tests.worker.worker_app:workflows"
ACCESS = re.compile(r'"GET /no-page-(\d+) HTTP')


def _tether(tmp_path: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    return subprocess.Popen(
        [sys.executable, "-m", "tether.cli.main", *args],
        cwd=tmp_path,
        env={**clean, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _serve(tmp_path: Path, *log_args: str) -> tuple[subprocess.Popen[str], str]:
    """A ``tether serve`` logging JSON at info (one access line per request), and its URL."""
    proc = _tether(
        tmp_path,
        "--json",
        "serve",
        "--port",
        "0",
        "--store",
        "memory://",
        "--log-format",
        "json",
        "--log-level",
        "info",
        *log_args,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first, proc.communicate(timeout=DEADLINE)
    return proc, json.loads(first)["url"]


def _worker(tmp_path: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    """A ``tether worker``, once it has said it started."""
    proc = _tether(
        tmp_path,
        "--json",
        "worker",
        "--app",
        WORKER_APP,
        "--store",
        f"sqlite:///{tmp_path / 'runs.db'}",
        *args,
        **env,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline(), proc.communicate(timeout=DEADLINE)
    return proc


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0, err
    return err


def _hits(url: str, numbers: range) -> None:
    with httpx.Client(base_url=url, timeout=DEADLINE) as http:
        for n in numbers:
            assert http.get(f"/no-page-{n}").status_code == 404  # answered, and logged


def _json_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_serve_rotates_its_log_file_and_keeps_it_bounded(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "serve.log"
    log.parent.mkdir()
    args = ("--log-file", str(log), "--log-max-bytes", "16K", "--log-backups", "2")
    proc, url = _serve(tmp_path, *args)
    try:
        _hits(url, range(400))  # ~80 KB of access lines: five files' worth
    finally:
        err = _stop(proc)
    assert err == ""  # every line went to the file
    names = sorted(p.name for p in log.parent.iterdir())
    assert names == ["serve.log", "serve.log.1", "serve.log.2", "serve.log.lock"]
    seen: list[int] = []
    for path in (log.with_name("serve.log.2"), log.with_name("serve.log.1"), log):
        assert 0 < path.stat().st_size <= 16 * 1024, path
        for line in _json_lines(path):  # every line of every file is JSON
            m = ACCESS.search(str(line["message"]))
            if m:
                seen.append(int(m[1]))
    # oldest to newest, none lost between the files kept, the oldest rotated away
    assert seen == list(range(seen[0], 400)) and seen[0] > 0, seen


def test_a_second_process_is_refused_until_the_rotating_one_dies(tmp_path: Path) -> None:
    log = tmp_path / "shared.log"
    server, _ = _serve(tmp_path, "--log-file", str(log))
    refused = _tether(
        tmp_path,
        "worker",
        "--app",
        WORKER_APP,
        "--store",
        f"sqlite:///{tmp_path / 'r.db'}",
        TETHER_LOG_FILE=str(log),
    )
    _, err = refused.communicate(timeout=DEADLINE)
    assert refused.returncode == 2, err
    assert f"tether process {server.pid} rotates it" in err and "--log-max-bytes 0" in err, err
    assert "Traceback" not in err
    server.kill()  # however it dies, the system releases its lock
    server.communicate(timeout=DEADLINE)
    worker = _worker(tmp_path, TETHER_LOG_FILE=str(log), TETHER_WORKER_ID="w-1")
    assert _stop(worker).strip() == "worker w-1 stopped"  # its log lines went to the file
    text = log.read_text(encoding="utf-8").splitlines()
    draining = [line for line in text if "SIGTERM, draining" in line]
    assert len(draining) == 1 and " warning tether.worker: worker w-1" in draining[0], text


def test_processes_share_a_file_that_logrotate_rotates(tmp_path: Path) -> None:
    log = tmp_path / "workers.log"
    shared = ("--log-file", str(log), "--log-max-bytes", "0", "--log-format", "json")
    one = _worker(tmp_path, *shared, TETHER_WORKER_ID="w-1")
    two = _worker(tmp_path, *shared, TETHER_WORKER_ID="w-2")
    try:
        rotating = _tether(tmp_path, "worker", "--app", WORKER_APP, "--log-file", str(log))
        _, err = rotating.communicate(timeout=DEADLINE)
        assert rotating.returncode == 2, err
        assert "other tether processes append to it (--log-max-bytes 0)" in err, err
        os.rename(log, f"{log}.1")  # what logrotate does; the workers reopen the path
    finally:
        _stop(one)
        _stop(two)
    lines = _json_lines(log)
    drained = sorted(str(x["message"]).split(":")[0] for x in lines if "draining" in x["message"])
    assert drained == ["worker w-1", "worker w-2"], lines


def test_a_file_that_stops_taking_writes_drops_lines_says_so_and_recovers(
    tmp_path: Path,
) -> None:
    log = tmp_path / "serve.log"
    proc, url = _serve(tmp_path, "--log-file", str(log), "--log-max-bytes", "0")
    try:
        _hits(url, range(5))
        limit = log.stat().st_size + 2048  # the disk is full after about 10 more lines
        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (limit, limit))
        _hits(url, range(5, 40))  # still served, though its lines cannot be written
        os.rename(log, f"{log}.1")  # space again: a fresh file
        _hits(url, range(40, 45))
    finally:
        err = _stop(proc)
    said = [str(x["message"]) for x in (json.loads(line) for line in err.splitlines())]
    assert len(said) == 2, err
    assert said[0].startswith(f"cannot write the log file {log}: File too large"), said
    dropped = re.fullmatch(r"the log file .* is written again; (\d+) lines were dropped", said[1])
    assert dropped and 10 < int(dropped[1]) < 40, said
    assert Path(f"{log}.1").stat().st_size == limit  # it was full...
    numbers = [int(m[1]) for x in _json_lines(log) if (m := ACCESS.search(str(x["message"])))]
    assert numbers == list(range(40, 45))  # ...and the lines after are whole JSON lines


def test_log_files_that_cannot_be_used_are_refused_before_starting(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    (tmp_path / "a-dir").mkdir()
    cases = {
        str(tmp_path / "missing" / "w.log"): "the directory",
        str(tmp_path / "a-dir"): "it is not a regular file",
        str(tmp_path / "a-file" / "w.log"): "is not a directory",
    }
    for path, says in cases.items():
        proc = _tether(tmp_path, "worker", "--app", WORKER_APP, "--log-file", path)
        _, err = proc.communicate(timeout=DEADLINE)
        assert proc.returncode == 2 and says in err and "Traceback" not in err, (path, err)
        assert len(err.strip().splitlines()) == 1, err


def test_a_file_system_that_cannot_lock_is_refused_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a file system without locks (NFS without lockd: flock fails with ENOLCK) the log
    file is refused as a ConfigurationError saying what to do, not a raw OSError. The kernel
    here locks, so flock is made to fail as such a mount's does."""
    import errno
    import fcntl

    from tether.cli.log_file import LogFile
    from tether.core.errors import ConfigurationError

    def no_locks(fd: int, op: int) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.raises(ConfigurationError, match=r"cannot lock .*--log-max-bytes 0"):
        LogFile(tmp_path / "serve.log", 16 * 1024, 2, lambda _said: None)
