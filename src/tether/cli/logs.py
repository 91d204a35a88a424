"""Logs of the long-running commands (``tether serve``, ``tether worker``): ``--log-format``
(``text``: one dim line per record, for a terminal; ``json``: one JSON object per line on
stderr, for a log collector) and ``--log-level`` (``warning``; ``info`` adds start-up and
housekeeping lines). ``TETHER_LOG_FORMAT`` / ``TETHER_LOG_LEVEL`` set them from the environment.
``--log-file PATH`` writes the lines to a file instead, rotated by size (``log_opts``,
``log_file``).

A JSON line holds ``time`` (ISO 8601, UTC, milliseconds), ``level``, ``logger``, ``message``,
``process``, and, for a record with an exception, ``error`` (its type and message) and
``traceback``; whatever a record holds, it is one JSON line of at most 16 KiB (``log_lines``).
The server's uvicorn records go the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from rich.text import Text

from tether.cli.log_file import LogFile
from tether.cli.log_lines import (
    MAX_NAME,
    MAX_TRACEBACK,
    fit,
    json_line,
    stamp,
    text_line,
    traceback_of,
)
from tether.cli.log_opts import add_file_options, file_choice
from tether.cli.render import Output
from tether.core.errors import ConfigurationError

FORMATS = ("text", "json")
LEVELS = ("debug", "info", "warning", "error")
LOGGERS = ("tether", "uvicorn")
"""The loggers a command's handler serves (uvicorn's only matter to ``tether serve``)."""


class TextLogHandler(logging.Handler):
    """tether's own log records as one-liners on stderr (``warning: tether.x: ...``; tracebacks
    only when debugging), so a run that fails in this process never dumps a traceback on the
    operator."""

    def __init__(self, out: Output, debug: bool) -> None:
        super().__init__(logging.DEBUG if debug else logging.WARNING)
        self.out = out
        self.debug = debug

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = text_line(record, debug=self.debug)
            if record.levelno >= logging.WARNING:
                self.out.warning(f"{record.name}: {msg}")
            else:
                self.out.err.print(Text(f"{record.levelname.lower()}: {record.name}: {msg}", "dim"))
            trace = traceback_of(record) if self.debug else None
            if trace:
                self.out.traceback(trace)
        except Exception:  # stderr itself failed (closed, a broken pipe): nowhere to say it
            pass


class TextFileHandler(logging.Handler):
    """One text line per record for ``--log-file``: ``TIME LEVEL LOGGER: MESSAGE`` (the
    traceback below it when debugging)."""

    def __init__(self, write: Callable[[str], None], debug: bool, level: int) -> None:
        super().__init__(level)
        self.write = write
        self.debug = debug

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = fit(str(record.levelname).lower(), MAX_NAME)
            line = f"{stamp(record.created)} {level} {fit(str(record.name), MAX_NAME)}: "
            line += text_line(record, debug=self.debug) + "\n"
            trace = traceback_of(record) if self.debug else None
            if trace:
                line += fit(trace, MAX_TRACEBACK, keep_end=True) + "\n"
        except Exception as exc:  # a record no field of which can be read: say so
            line = f"{stamp(time.time())} error tether.cli.logs: a log record could not be "
            line += f"written ({type(exc).__name__})\n"
        self.write(line)


class JsonLogHandler(logging.Handler):
    """One JSON object per record, one per line (``log_lines.json_line``: always JSON, however
    broken the record)."""

    def __init__(self, write: Callable[[str], None] | None = None, level: int = logging.WARNING):
        super().__init__(level)
        self.write = write or _to_stderr

    def emit(self, record: logging.LogRecord) -> None:
        self.write(json_line(record) + "\n")


def _to_stderr(line: str) -> None:
    try:
        sys.stderr.write(line)
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed or gone: nowhere to say it
        pass


def add_log_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--log-format",
        choices=FORMATS,
        metavar="FORMAT",
        help="text (default) or json: one JSON object per line, on stderr or in the --log-file "
        "(env TETHER_LOG_FORMAT)",
    )
    p.add_argument(
        "--log-level",
        choices=LEVELS,
        metavar="LEVEL",
        help="debug, info, warning (default) or error (env TETHER_LOG_LEVEL)",
    )
    add_file_options(p)


def debug_enabled() -> bool:
    """``TETHER_DEBUG=1``: tracebacks with errors, and debug logs."""
    return os.environ.get("TETHER_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


def log_choice(args: argparse.Namespace) -> tuple[str, int]:
    """The format and level ``args`` (or the environment) ask for."""
    fmt = getattr(args, "log_format", None) or os.environ.get("TETHER_LOG_FORMAT") or "text"
    level = (
        getattr(args, "log_level", None)
        or os.environ.get("TETHER_LOG_LEVEL")
        or ("debug" if debug_enabled() else "warning")
    )
    if fmt not in FORMATS:
        raise ConfigurationError(
            f"TETHER_LOG_FORMAT must be one of {', '.join(FORMATS)}, got {fmt!r}"
        )
    if level.lower() not in LEVELS:
        raise ConfigurationError(
            f"TETHER_LOG_LEVEL must be one of {', '.join(LEVELS)}, got {level!r}"
        )
    return fmt, getattr(logging, level.upper())


def note(args: argparse.Namespace, out: Output, message: str) -> None:
    """A line about the command itself on stderr: dim text, or an info record in JSON mode
    (so every stderr line of a JSON-logging process is JSON)."""
    if log_choice(args)[0] == "json":
        logging.getLogger("tether.cli").info(message)
    else:
        out.err.print(Text(message, style="dim"))


def configure(args: argparse.Namespace, out: Output) -> Callable[[], None]:
    """Route the ``LOGGERS`` to one handler as ``args`` ask (text lines through ``out``, or
    JSON lines, on stderr or in the ``--log-file``); returns a function that undoes it. A log
    file that cannot be opened, or that another process rotates, is a ``ConfigurationError``."""
    fmt, level = log_choice(args)
    debug = debug_enabled()
    choice = file_choice(args)
    undo: list[Callable[[], None]] = []
    handler: logging.Handler
    if choice is None:
        handler = JsonLogHandler(level=level) if fmt == "json" else TextLogHandler(out, debug)
    else:
        file = LogFile(choice.path, choice.max_bytes, choice.backups, _complaint(fmt, out))
        undo.append(file.close)
        handler = (
            JsonLogHandler(file.write, level)
            if fmt == "json"
            else TextFileHandler(file.write, debug, level)
        )
    handler.setLevel(level)
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved = (logger.level, logger.propagate, list(logger.handlers))
        for h in saved[2]:
            logger.removeHandler(h)
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False

        def restore(logger: logging.Logger = logger, saved: Any = saved) -> None:
            logger.removeHandler(handler)
            for h in saved[2]:
                logger.addHandler(h)
            logger.setLevel(saved[0])
            logger.propagate = saved[1]

        undo.append(restore)

    def undo_all() -> None:
        for fn in reversed(undo):
            fn()

    return undo_all


def _complaint(fmt: str, out: Output) -> Callable[[str], None]:
    """How the log file says on stderr that it cannot be written (a JSON line in JSON mode)."""

    def complain(message: str) -> None:
        if fmt == "json":
            record = logging.LogRecord(
                "tether.cli.logs", logging.WARNING, __file__, 0, message, None, None
            )
            _to_stderr(json_line(record) + "\n")
        else:
            with contextlib.suppress(Exception):
                out.warning(f"tether.cli.logs: {message}")

    return complain
