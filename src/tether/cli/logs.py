"""Logs of the long-running commands (``tether serve``, ``tether worker``): ``--log-format``
(``text``: one dim line per record, for a terminal; ``json``: one JSON object per line on
stderr, for a log collector) and ``--log-level`` (``warning``; ``info`` adds start-up and
housekeeping lines). ``TETHER_LOG_FORMAT`` / ``TETHER_LOG_LEVEL`` set them from the environment.

A JSON line holds ``time`` (ISO 8601, UTC, milliseconds), ``level``, ``logger``, ``message``,
``process``, and, for a record with an exception, ``error`` (its type and message) and
``traceback``. The server's uvicorn records go the same way.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from rich.text import Text

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
            msg = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None and not self.debug:
                exc = record.exc_info[1]
                msg = f"{msg}: {type(exc).__name__}: {exc}"
            if record.levelno >= logging.WARNING:
                self.out.warning(f"{record.name}: {msg}")
            else:
                self.out.err.print(Text(f"{record.levelname.lower()}: {record.name}: {msg}", "dim"))
            if self.debug and record.exc_info:
                self.out.traceback("".join(traceback.format_exception(*record.exc_info)))
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


class JsonLogHandler(logging.Handler):
    """One JSON object per record, one per line."""

    def __init__(self, stream: TextIO | None = None, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self.stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line: dict[str, Any] = {
                "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                    timespec="milliseconds"
                ),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": record.getMessage(),
                "process": record.process,
            }
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                line["error"] = f"{type(exc).__name__}: {exc}"
                line["traceback"] = "".join(traceback.format_exception(*record.exc_info))
            stream = self.stream or sys.stderr
            stream.write(json.dumps(line, default=str) + "\n")
            stream.flush()
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def add_log_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--log-format",
        choices=FORMATS,
        metavar="FORMAT",
        help="text (default) or json: one JSON object per line on stderr (env TETHER_LOG_FORMAT)",
    )
    p.add_argument(
        "--log-level",
        choices=LEVELS,
        metavar="LEVEL",
        help="debug, info, warning (default) or error (env TETHER_LOG_LEVEL)",
    )


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
    JSON lines); returns a function that undoes it."""
    fmt, level = log_choice(args)
    handler: logging.Handler = (
        JsonLogHandler(level=level) if fmt == "json" else TextLogHandler(out, debug_enabled())
    )
    handler.setLevel(level)
    undo: list[Callable[[], None]] = []
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
