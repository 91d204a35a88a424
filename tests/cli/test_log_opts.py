"""``--log-file``, ``--log-max-bytes`` and ``--log-backups`` (and their TETHER_LOG_* variables):
what they accept, and what they refuse with a message that says what was wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.cli.log_opts import FileChoice, file_choice
from tether.cli.main import build_parser
from tether.core.errors import ConfigurationError


def _choice(*flags: str) -> FileChoice | None:
    return file_choice(build_parser().parse_args(["worker", *flags]))


def test_defaults_sizes_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TETHER_LOG_FILE", "TETHER_LOG_MAX_BYTES", "TETHER_LOG_BACKUPS"):
        monkeypatch.delenv(name, raising=False)
    assert _choice() is None
    assert _choice("--log-file", "w.log") == FileChoice(Path("w.log"), 10 * 1024 * 1024, 5)
    assert _choice("--log-file", "w.log", "--log-max-bytes", "512K", "--log-backups", "2") == (
        FileChoice(Path("w.log"), 512 * 1024, 2)
    )
    assert _choice("--log-file", "w.log", "--log-max-bytes", "0").max_bytes == 0  # type: ignore[union-attr]
    monkeypatch.setenv("TETHER_LOG_FILE", "/var/log/w.log")
    monkeypatch.setenv("TETHER_LOG_MAX_BYTES", "1GiB")
    monkeypatch.setenv("TETHER_LOG_BACKUPS", "9")
    assert _choice() == FileChoice(Path("/var/log/w.log"), 1024**3, 9)
    assert _choice("--log-backups", "1") == FileChoice(Path("/var/log/w.log"), 1024**3, 1)


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--log-max-bytes", "100"], "must be 0 (no rotation by tether) or at least 16K"),
        (["--log-max-bytes", "ten megs"], "expected a size such as 10M"),
        (["--log-backups", "0"], "must be from 1 to 1000"),
        (["--log-file", ""], "expected a file path, got an empty one"),
    ],
)
def test_bad_flags_are_usage_errors(
    flags: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["worker", "--log-file", "w.log", *flags])
    assert exc.value.code == 2 and says in capsys.readouterr().err


def test_bad_variables_and_orphan_flags_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TETHER_LOG_FILE", raising=False)
    with pytest.raises(ConfigurationError, match="--log-backups apply to a --log-file"):
        _choice("--log-backups", "3")
    monkeypatch.setenv("TETHER_LOG_FILE", "w.log")
    monkeypatch.setenv("TETHER_LOG_MAX_BYTES", "lots")
    with pytest.raises(ConfigurationError, match="TETHER_LOG_MAX_BYTES: expected a size"):
        _choice()
