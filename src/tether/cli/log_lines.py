"""One log record as one line, whatever the record holds, never an exception.

A record whose arguments do not fit its format string (``log.info("%d", "x")``), an argument
whose ``repr`` raises, a message or exception that is megabytes long, text with lone surrogates
(bytes that were not UTF-8, decoded with ``surrogateescape``): each still becomes one line. A
record that cannot be formatted says so in its ``message`` (``log record could not be
formatted (TypeError: ...)``) followed by its format string, with ``format_error`` and ``args``
(each argument's ``repr``, or what its failing ``repr`` raised) beside it.

A JSON line is ASCII (``\\uXXXX`` escapes) and at most ``MAX_LINE`` bytes with its newline:
each text field is cut to its own bound, ending (``message``) or starting (``traceback``, whose
innermost frames matter most) with ``[cut by tether: N characters in all]``.
"""

from __future__ import annotations

import json
import logging
import os
import time
import traceback
from datetime import UTC, datetime
from typing import Any

MAX_MESSAGE = 8000
MAX_ARGS = 1500
MAX_ERROR = 1000
MAX_TRACEBACK = 5000
MAX_NAME = 200
MAX_LINE = 16 * 1024
"""The longest JSON line (bytes, newline included): under the 16 KiB at which Docker and
containerd split a container's log line in two."""


def clean(text: str) -> str:
    """``text`` as valid Unicode: a lone surrogate becomes its escape (``\\udcff``), which any
    JSON parser and UTF-8 file takes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _encoded(text: str) -> int:
    return len(json.dumps(text)) - 2


def fit(text: str, limit: int, *, keep_end: bool = False) -> str:
    """``text`` cut so that its JSON encoding is at most ``limit`` characters, with a marker
    saying how long it was (at the end, or at the start when ``keep_end``)."""
    text = clean(text)
    if len(text) <= limit and _encoded(text) <= limit:
        return text
    marker = f"[cut by tether: {len(text)} characters in all]"
    budget = limit - len(marker) - 3
    n = budget
    while n > 0:
        part = text[-n:] if keep_end else text[:n]
        size = _encoded(part)
        if size <= budget:
            break
        n = min(n - 1, n * budget // size)
    if n <= 0:
        return marker
    return f"{marker}...{text[-n:]}" if keep_end else f"{text[:n]}...{marker}"


def safe_repr(obj: object) -> str:
    """``repr(obj)``, or what its failing ``repr`` raised."""
    try:
        return repr(obj)
    except Exception as exc:
        return f"<{type(obj).__qualname__} object; its repr raised {type(exc).__name__}>"


def _safe_str(obj: object) -> str:
    try:
        return str(obj)
    except Exception as exc:
        return f"<{type(obj).__qualname__} object; its str raised {type(exc).__name__}>"


def message_of(record: logging.LogRecord) -> tuple[str, dict[str, str]]:
    """The record's message, and, when it could not be formatted, what was wrong and its
    arguments (``format_error``, ``args``) with the format string as the message."""
    try:
        return record.getMessage(), {}
    except Exception as exc:
        template = record.msg if isinstance(record.msg, str) else safe_repr(record.msg)
        args = record.args if isinstance(record.args, tuple) else (record.args,)
        problem = f"{type(exc).__name__}: {_safe_str(exc)}"
        shown = ", ".join(safe_repr(a) for a in args) + ("," if len(args) == 1 else "")
        return f"log record could not be formatted ({problem}): {template}", {
            "format_error": fit(problem, MAX_ERROR),
            "args": fit(f"({shown})", MAX_ARGS),
        }


def error_of(record: logging.LogRecord) -> str | None:
    """``Type: message`` of the record's exception, if it has one."""
    exc = record.exc_info[1] if record.exc_info else None
    return None if exc is None else f"{type(exc).__name__}: {_safe_str(exc)}"


def traceback_of(record: logging.LogRecord) -> str | None:
    if not record.exc_info or record.exc_info[1] is None:
        return None
    try:
        return "".join(traceback.format_exception(*record.exc_info))
    except Exception as exc:
        return f"(the traceback could not be formatted: {type(exc).__name__})"


def stamp(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


def json_line(record: logging.LogRecord) -> str:
    """The record as one JSON object (no newline), at most ``MAX_LINE - 1`` characters."""
    try:
        message, failure = message_of(record)
        line: dict[str, Any] = {
            "time": stamp(record.created),
            "level": fit(str(record.levelname).lower(), MAX_NAME),
            "logger": fit(str(record.name), MAX_NAME),
            "message": fit(message, MAX_MESSAGE),
            "process": record.process,
            **failure,
        }
        error = error_of(record)
        if error is not None:
            line["error"] = fit(error, MAX_ERROR)
            line["traceback"] = fit(traceback_of(record) or "", MAX_TRACEBACK, keep_end=True)
        text = json.dumps(line)
        if len(text) < MAX_LINE:
            return text
        problem = f"a line of {len(text)} characters"
    except Exception as exc:  # a record no field of which can be read: say so, still JSON
        problem = type(exc).__name__
    return json.dumps(
        {
            "time": stamp(time.time()),
            "level": "error",
            "logger": "tether.cli.logs",
            "message": f"a log record could not be written as JSON ({problem})",
            "process": os.getpid(),
        }
    )


def text_line(record: logging.LogRecord, *, debug: bool) -> str:
    """The record's message for a text log, its exception's ``Type: message`` after it unless
    ``debug`` (which shows the traceback instead), cut to ``MAX_MESSAGE``."""
    message, failure = message_of(record)
    if failure:
        message = f"{message} {failure['args']}"
    error = error_of(record)
    if error is not None and not debug:
        message = f"{message}: {error}"
    return fit(message, MAX_MESSAGE)
