"""The scratch directory: input files in, left-over files out (:func:`.collect.collect`, which
never follows links)."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping

from tether.core.errors import ConfigurationError

from .collect import collect
from .limits import SandboxLimits
from .scratchfs import PAGE

__all__ = ["check_fits", "collect", "normalize_files", "write_files"]


def check_fits(files: Mapping[str, bytes], limits: SandboxLimits) -> None:
    """Refuse input files the scratch directory's disk limit could not hold."""
    used = sum(-(-len(content) // PAGE) * PAGE for content in files.values())
    dirs = {d for name in files for d in _parents(name)}
    if used > limits.max_disk_bytes:
        raise ConfigurationError(
            f"the input files take {used} bytes of scratch (whole {PAGE}-byte pages), over "
            f"SandboxLimits.max_disk_bytes={limits.max_disk_bytes}: raise max_disk_bytes or "
            "pass smaller files"
        )
    if len(files) + len(dirs) > limits.max_disk_files:
        raise ConfigurationError(
            f"the input files make {len(files) + len(dirs)} entries (files and directories) in "
            f"scratch, over SandboxLimits.max_disk_files={limits.max_disk_files}: raise "
            "max_disk_files or pass fewer files"
        )


def _parents(name: str) -> list[str]:
    parts = name.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def normalize_files(files: Mapping[str, str | bytes] | None) -> dict[str, bytes]:
    """Validate names (relative, inside scratch) and encode contents (str → UTF-8)."""
    out: dict[str, bytes] = {}
    if files is None:
        return out
    if not isinstance(files, Mapping):
        raise ConfigurationError(
            f"files must be a mapping of relative path -> str | bytes, got {type(files).__name__}"
        )
    for name, content in files.items():
        if not isinstance(name, str):
            raise ConfigurationError(
                f"file name {name!r} must be a str (a relative path), got {type(name).__name__}"
            )
        if not name:
            raise ConfigurationError("a file name must be a non-empty string, got ''")
        if "\0" in name:
            raise ConfigurationError(
                f"file name {name!r} holds a NUL character (\\x00), which no file name can "
                "contain: remove it"
            )
        norm = posixpath.normpath(name)
        if norm.startswith(("/", "../")) or norm in ("..", "."):
            raise ConfigurationError(
                f"file name {name!r} must be a relative path inside the scratch directory, "
                "e.g. 'data/input.csv'"
            )
        if isinstance(content, str):
            out[norm] = content.encode("utf-8")
        elif isinstance(content, bytes | bytearray | memoryview):
            out[norm] = bytes(content)
        else:
            raise ConfigurationError(
                f"content of file {name!r} must be str or bytes, got {type(content).__name__}"
            )
    return out


def write_files(scratch: str, files: Mapping[str, bytes], uid: int, gid: int) -> None:
    """Create the input files in scratch, owned by the sandbox uid (when we may chown)."""
    chown = os.geteuid() == 0
    for name, content in files.items():
        path = os.path.join(scratch, name)
        parent = os.path.dirname(path)
        rel_parts = os.path.relpath(parent, scratch).split(os.sep)
        current = scratch
        for part in rel_parts:
            if part == ".":
                continue
            current = os.path.join(current, part)
            if not os.path.isdir(current):
                os.mkdir(current, 0o700)
                if chown:
                    os.chown(current, uid, gid)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            if chown:
                os.fchown(fd, uid, gid)
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
