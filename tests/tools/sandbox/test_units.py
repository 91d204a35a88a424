"""Pure parts of the sandbox: limits validation and exit classification (no processes)."""

from __future__ import annotations

import signal

import pytest

from tether.core.errors import ConfigurationError
from tether.tools.sandbox import SandboxLimits
from tether.tools.sandbox._classify import classify, gvisor_exit_code


def test_defaults_are_valid_and_frozen() -> None:
    limits = SandboxLimits()
    assert limits.cpu_seconds == 10 and limits.wall_seconds == 30
    with pytest.raises(AttributeError):
        limits.cpu_seconds = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("cpu_seconds", 0, "between 1 and"),
        ("cpu_seconds", 1.5, "must be an int"),
        ("cpu_seconds", True, "must be an int"),
        ("memory_bytes", 1024, "15 MiB"),
        ("max_open_files", 3, "between 16"),
        ("max_processes", 0, "between 1"),
        ("max_output_bytes", -1, "between 1"),
        ("max_file_bytes", -1, "between 0"),
        ("max_disk_bytes", 0, "size 0 would mean no limit"),
        ("max_disk_files", 0, "between 1"),
        ("wall_seconds", 0, "> 0"),
        ("wall_seconds", float("inf"), "> 0"),
        ("wall_seconds", "10", "number of seconds"),
    ],
)
def test_bad_limits_are_actionable(field: str, value: object, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match) as info:
        SandboxLimits(**{field: value})  # type: ignore[arg-type]
    assert f"SandboxLimits.{field}" in str(info.value)


def test_replace_validates() -> None:
    limits = SandboxLimits().replace(cpu_seconds=2, wall_seconds=0.5)
    assert (limits.cpu_seconds, limits.wall_seconds) == (2, 0.5)
    with pytest.raises(ConfigurationError, match="unknown SandboxLimits field"):
        SandboxLimits().replace(cpu=2)
    with pytest.raises(ConfigurationError):
        SandboxLimits().replace(cpu_seconds=-1)


def _classify(**kw: object) -> object:
    base: dict[str, object] = {
        "killed_by_parent": None,
        "exit_code": 0,
        "signum": None,
        "cpu_s": 0.1,
        "cpu_limit": 5,
        "stderr_tail": "",
    }
    base.update(kw)
    return classify(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({}, None),
        ({"killed_by_parent": "timeout", "exit_code": -9, "signum": 9}, "timeout"),
        ({"killed_by_parent": "output", "exit_code": -9, "signum": 9}, "output"),
        ({"exit_code": -24, "signum": signal.SIGXCPU}, "cpu"),
        ({"exit_code": -9, "signum": 9, "cpu_s": 5.0}, "cpu"),
        ({"exit_code": -9, "signum": 9, "cpu_s": 0.2}, "killed"),
        ({"exit_code": -9, "signum": 9, "cpu_s": 3.9}, "cpu"),  # usage reads low under load
        ({"exit_code": -9, "signum": 9, "cpu_s": 2.4}, "killed"),
        ({"exit_code": -25, "signum": signal.SIGXFSZ}, "file_size"),
        ({"exit_code": -11, "signum": 11, "stderr_tail": "MemoryError\n"}, "memory"),
        ({"exit_code": -11, "signum": 11}, "killed"),
        ({"exit_code": 1, "stderr_tail": "Traceback...\n  x\nMemoryError\n"}, "memory"),
        ({"exit_code": 1, "stderr_tail": "OSError: [Errno 27] File too large\n"}, "file_size"),
        (
            {
                "exit_code": 1,
                "stderr_tail": "BlockingIOError: [Errno 11] Resource temporarily unavailable\n",
            },
            "processes",
        ),
        ({"exit_code": 1, "stderr_tail": "RuntimeError: can't start new thread\n"}, "processes"),
        ({"exit_code": 1, "stderr_tail": "ValueError: MemoryError mentioned\n"}, None),
        ({"exit_code": 3, "stderr_tail": ""}, None),
        ({"exit_code": 1, "stderr_tail": "OSError: [Errno 28] No space left on device\n"}, "disk"),
        ({"exit_code": 1, "stderr_tail": "ValueError: x\n", "disk_full": True}, "disk"),
        ({"exit_code": 0, "disk_full": True}, None),  # it filled scratch and coped
        ({"exit_code": -7, "signum": signal.SIGBUS, "disk_full": True}, "disk"),
        ({"exit_code": -7, "signum": signal.SIGBUS}, "killed"),
        ({"killed_by_parent": "disk", "exit_code": -9, "signum": 9}, "disk"),
    ],
)
def test_classify(kw: dict[str, object], expected: object) -> None:
    assert _classify(**kw) == expected


@pytest.mark.parametrize(
    ("closing", "runsc_exit", "expected"),
    [
        ({"exit": -9}, 137, -9),  # the launcher's own report wins
        ({"exit": 3}, 0, 3),
        ({}, 137, -signal.SIGKILL),  # killed before the launcher reported: 128 + 9
        ({}, 143, -signal.SIGTERM),
        ({}, 1, 1),  # a plain exit status stays what it is
        ({}, 0, 0),
        ({}, 255, 255),  # not a signal number
    ],
)
def test_gvisor_exit_code(closing: dict[str, object], runsc_exit: int, expected: int) -> None:
    assert gvisor_exit_code(closing, runsc_exit) == expected
