"""Log records that cannot be formatted, or are huge, through the real handlers of
``tether serve``/``tether worker``: each is still one line (JSON in JSON mode), saying what went
wrong with what could be recovered, never a traceback on stderr between the lines."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tether.cli.log_file import LogFile
from tether.cli.log_lines import MAX_LINE
from tether.cli.logs import JsonLogHandler, TextFileHandler, TextLogHandler
from tether.cli.render import Output


class Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __str__(self) -> str:
        raise RuntimeError("no str")


class Unsayable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str")


@pytest.fixture
def logged(capsys: pytest.CaptureFixture[str]) -> Iterator[tuple[logging.Logger, list[str]]]:
    """A logger whose records go through the JSON handler; stderr must stay empty."""
    lines: list[str] = []
    logger = logging.Logger("tests.log_lines")  # outside the hierarchy pytest captures
    logger.addHandler(JsonLogHandler(lines.append, logging.DEBUG))
    logger.propagate = False
    yield logger, lines
    assert capsys.readouterr().err == ""  # no "--- Logging error ---" traceback


def _one(lines: list[str]) -> dict[str, object]:
    assert len(lines) == 1 and lines[0].endswith("\n") and lines[0].count("\n") == 1, lines
    assert len(lines[0].encode("utf-8")) <= MAX_LINE
    line: dict[str, object] = json.loads(lines[0])
    return line


def test_arguments_that_do_not_fit_the_format(logged: tuple[logging.Logger, list[str]]) -> None:
    log, lines = logged
    log.warning("%d runs waiting on %s", "many", "queue-a")
    line = _one(lines)
    assert line["level"] == "warning" and line["logger"] == "tests.log_lines"
    assert line["message"] == (
        "log record could not be formatted (TypeError: %d format: a real number is required, "
        "not str): %d runs waiting on %s"
    )
    assert line["args"] == "('many', 'queue-a')"
    assert str(line["format_error"]).startswith("TypeError: %d format")


def test_an_argument_whose_repr_raises(logged: tuple[logging.Logger, list[str]]) -> None:
    log, lines = logged
    log.error("state %r", Unprintable())
    line = _one(lines)
    assert line["message"] == "log record could not be formatted (RuntimeError: no repr): state %r"
    assert line["args"] == "(<Unprintable object; its repr raised RuntimeError>,)"


def test_a_message_that_is_no_text(logged: tuple[logging.Logger, list[str]]) -> None:
    log, lines = logged
    log.error(Unprintable())
    line = _one(lines)
    assert line["message"] == (
        "log record could not be formatted (RuntimeError: no str): "
        "<Unprintable object; its repr raised RuntimeError>"
    )


def test_text_that_was_not_utf8(logged: tuple[logging.Logger, list[str]]) -> None:
    log, lines = logged
    name = b"caf\xe9-\xff".decode("utf-8", "surrogateescape")  # a Latin-1 file name
    log.warning("cannot read %s", name)
    log.warning("got %s", b"\xff\xfe")
    lines[0].encode("utf-8", "strict")  # no lone surrogate: any UTF-8 parser takes it
    assert json.loads(lines[0])["message"] == "cannot read caf\\udce9-\\udcff"
    assert json.loads(lines[1])["message"] == "got b'\\xff\\xfe'"


def test_a_huge_message_is_cut_with_a_marker(logged: tuple[logging.Logger, list[str]]) -> None:
    log, lines = logged
    log.warning("x" * 5_000_000)
    message = str(_one(lines)["message"])
    assert message.startswith("x" * 7000)
    assert message.endswith("x...[cut by tether: 5000000 characters in all]")
    lines.clear()
    log.warning("\U0001f600" * 100_000)  # 12 characters each once escaped
    assert str(_one(lines)["message"]).endswith("[cut by tether: 100000 characters in all]")


def test_a_huge_or_unsayable_exception(logged: tuple[logging.Logger, list[str]]) -> None:
    log, lines = logged
    try:
        raise ValueError("y" * 1_000_000)
    except ValueError:
        log.exception("step failed")
    line = _one(lines)
    assert line["message"] == "step failed"
    assert str(line["error"]).endswith("[cut by tether: 1000012 characters in all]")
    trace = str(line["traceback"])  # its end kept: the innermost frames and the error
    assert trace.startswith("[cut by tether: ") and trace.endswith("yyy\n")
    lines.clear()
    try:
        raise Unsayable
    except Unsayable:
        log.exception("step failed")
    line = _one(lines)
    assert line["error"] == "Unsayable: <Unsayable object; its str raised RuntimeError>"
    assert "Unsayable: <exception str() failed>" in str(line["traceback"])


def test_every_field_huge_at_once_still_fits_a_line(
    logged: tuple[logging.Logger, list[str]],
) -> None:
    log, lines = logged
    huge = logging.Logger("n" * 100_000)
    huge.addHandler(log.handlers[0])
    huge.propagate = False
    try:
        raise KeyError("k" * 100_000)
    except KeyError:
        huge.error("%s %d" + "m" * 100_000, "a" * 100_000, "no number", exc_info=True)
    line = _one(lines)
    assert {"message", "args", "format_error", "error", "traceback"} <= set(line)


def test_the_text_log_file_gets_one_line_too(tmp_path: Path) -> None:
    complaints: list[str] = []
    file = LogFile(tmp_path / "t.log", 0, 1, complaints.append)
    logger = logging.Logger("tests.log_lines.text")
    logger.addHandler(TextFileHandler(file.write, False, logging.DEBUG))
    logger.propagate = False
    try:
        logger.warning("%d runs", "many")
        logger.warning("z" * 1_000_000)
    finally:
        file.close()
    first, second = (tmp_path / "t.log").read_text(encoding="utf-8").splitlines()
    assert first.endswith(
        " warning tests.log_lines.text: log record could not be formatted (TypeError: %d "
        "format: a real number is required, not str): %d runs ('many',)"
    )
    assert second.endswith("z...[cut by tether: 1000000 characters in all]")
    assert complaints == []


def test_the_terminal_gets_one_warning_line(capsys: pytest.CaptureFixture[str]) -> None:
    logger = logging.Logger("tests.log_lines.terminal")
    logger.addHandler(TextLogHandler(Output(color=False), debug=False))
    logger.propagate = False
    logger.warning("%d runs", "many")
    err = capsys.readouterr().err
    assert "Logging error" not in err and "Traceback" not in err, err
    assert err.startswith(
        "warning: tests.log_lines.terminal: log record could not be formatted (TypeError"
    ), err
