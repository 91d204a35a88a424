"""Collect the regular files a sandboxed program left in its scratch directory.

Standalone (standard library only): used by the parent (``_scratch``) and, under gVisor, by the
launcher inside the sandbox (where the files live in gVisor's overlay), so it is copied next to
``launcher.py``. Collection runs over a directory the untrusted code controlled, so it never
follows a symbolic link (``os.fwalk(follow_symlinks=False)``, ``O_NOFOLLOW`` opens relative to
directory descriptors) and returns only regular files with a single link: a hard link or symlink
to ``/etc/shadow`` left in scratch is skipped, not read.

A file name is not necessarily text: the code may write ``b"\\xff.txt"``, which Python lists as
a string holding a lone surrogate, a string no JSON store can hold (a tool returning the files
could not be journaled, a node could not keep them in its state). Each byte that is not UTF-8
is written as ``\\xNN`` instead (``b"\\xff.txt"`` is returned as the 8 characters
``\\xff.txt``), so every returned name is valid text. A name that its escaped form would take
from another file of scratch (one really named ``\\xff.txt``) is left out, and the result then
says files were left out.
"""

from __future__ import annotations

import base64
import os
import posixpath
import stat
from typing import Any

__all__ = ["collect", "encoded", "storable_name"]


def storable_name(name: str) -> str:
    """``name`` (a path as ``os`` lists it, undecodable bytes as lone surrogates) as valid
    text: each byte that is not UTF-8 written as ``\\xNN``."""
    if name.isascii():
        return name
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _read_regular(name: str, dir_fd: int, limit: int) -> bytes | None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_size > limit:
            return None
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return None if size > limit else b"".join(chunks)
    finally:
        os.close(fd)


def collect(scratch: str, max_files: int, max_bytes: int) -> tuple[dict[str, bytes], bool]:
    """Regular files left in scratch (relative POSIX names), capped; True if some were left out."""
    files: dict[str, bytes] = {}
    truncated = False
    budget = max_bytes
    for dirpath, _dirs, names, dir_fd in os.fwalk(scratch, follow_symlinks=False):
        rel_dir = os.path.relpath(dirpath, scratch)
        for name in sorted(names):
            if len(files) >= max_files:
                return files, True
            content = _read_regular(name, dir_fd, budget)
            if content is None:
                try:
                    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
                    truncated = True  # a regular file over the remaining byte budget
                continue
            rel = name if rel_dir == "." else posixpath.join(*rel_dir.split(os.sep), name)
            rel = storable_name(rel)
            if rel in files:  # an escaped name equal to another file's real one
                truncated = True
                continue
            files[rel] = content
            budget -= len(content)
    return files, truncated


def encoded(scratch: str, max_files: int, max_bytes: int) -> dict[str, Any]:
    """:func:`collect` as JSON fields, contents in base64 (the launcher's closing line), or
    ``files_error`` saying why collecting failed."""
    try:
        files, truncated = collect(scratch, max_files, max_bytes)
    except (OSError, ValueError) as exc:
        return {"files_error": f"{type(exc).__name__}: {exc}"}
    return {
        "files": {name: base64.b64encode(data).decode() for name, data in files.items()},
        "files_truncated": truncated,
    }
