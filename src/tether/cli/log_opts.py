"""The ``--log-file`` options of the long-running commands, and the ``TETHER_LOG_FILE``,
``TETHER_LOG_MAX_BYTES`` and ``TETHER_LOG_BACKUPS`` variables that set them."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from tether.cli.log_lines import MAX_LINE
from tether.core.errors import ConfigurationError

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_BACKUPS = 5
MIN_MAX_BYTES = MAX_LINE
"""A file holds at least its longest line, so that no file ever passes ``--log-max-bytes``."""
MAX_BACKUPS = 1000
_SIZE = re.compile(r"(\d+)\s*([kmg]?)(i?b)?", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
T = TypeVar("T")


@dataclass(frozen=True)
class FileChoice:
    path: Path
    max_bytes: int
    """0: never rotated by tether (an external logrotate does; the file is reopened when moved)."""
    backups: int


def byte_size(text: str) -> int:
    """``10485760``, ``512K``, ``10M``, ``1G`` (K, M, G: KiB, MiB, GiB; ``10MiB``, ``10MB``
    alike); 0, or from 16 KiB (the longest log line) up."""
    m = _SIZE.fullmatch(text.strip())
    if m is None:
        raise argparse.ArgumentTypeError(
            f"expected a size such as 10M, 512K or 1048576, got {text!r}"
        )
    n = int(m[1]) * _UNITS[m[2].lower()]
    if 0 < n < MIN_MAX_BYTES:
        raise argparse.ArgumentTypeError(
            f"must be 0 (no rotation by tether) or at least {MIN_MAX_BYTES // 1024}K (the "
            f"longest log line), got {text!r}"
        )
    return n


def log_path(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a file path, got an empty one")
    return Path(text)


def backups(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= n <= MAX_BACKUPS:
        raise argparse.ArgumentTypeError(
            f"must be from 1 to {MAX_BACKUPS}, got {n} (a rotated log keeps at least one old "
            "file; for no old files at all, log to stderr)"
        )
    return n


def add_file_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--log-file",
        type=log_path,
        metavar="PATH",
        help="write the log lines to this file instead of stderr, rotated by size; one "
        "process per file (env TETHER_LOG_FILE)",
    )
    p.add_argument(
        "--log-max-bytes",
        type=byte_size,
        metavar="SIZE",
        help="rotate the --log-file before it passes SIZE (10M; K, M, G; 0: never, an external "
        "logrotate does and processes may share the file) (env TETHER_LOG_MAX_BYTES)",
    )
    p.add_argument(
        "--log-backups",
        type=backups,
        metavar="N",
        help=f"rotated files kept, PATH.1 to PATH.N ({DEFAULT_BACKUPS}) (env TETHER_LOG_BACKUPS)",
    )


def _setting(args: argparse.Namespace, attr: str, env: str, parse: Callable[[str], T]) -> T | None:
    value: T | None = getattr(args, attr, None)
    if value is not None:
        return value
    text = os.environ.get(env, "")
    if not text.strip():
        return None
    try:
        return parse(text)
    except argparse.ArgumentTypeError as exc:
        raise ConfigurationError(f"{env}: {exc}") from None


def file_choice(args: argparse.Namespace) -> FileChoice | None:
    """The log file ``args`` (or the environment) ask for; None: stderr."""
    path = _setting(args, "log_file", "TETHER_LOG_FILE", log_path)
    if path is None:
        given = [
            f
            for f, a in (("--log-max-bytes", "log_max_bytes"), ("--log-backups", "log_backups"))
            if getattr(args, a, None) is not None
        ]
        if given:
            raise ConfigurationError(
                f"{' and '.join(given)} apply to a --log-file: pass --log-file PATH (or "
                "TETHER_LOG_FILE), or leave them out to log on stderr"
            )
        return None
    max_bytes = _setting(args, "log_max_bytes", "TETHER_LOG_MAX_BYTES", byte_size)
    kept = _setting(args, "log_backups", "TETHER_LOG_BACKUPS", backups)
    return FileChoice(
        path=path,
        max_bytes=DEFAULT_MAX_BYTES if max_bytes is None else max_bytes,
        backups=DEFAULT_BACKUPS if kept is None else kept,
    )
