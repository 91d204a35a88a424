"""Pure pieces of one execution's outcome: runsc's command line, the isolation labels, the files
of the launcher's closing line, signal names."""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import signal
from typing import Any

from ._identity import Identity
from ._workdir import LaunchSpec
from .result import FilesystemIsolation, NetworkIsolation

__all__ = ["decode_files", "labels", "runsc_argv", "signal_name"]

_log = logging.getLogger("tether.tools.sandbox")


def runsc_argv(runsc: str) -> list[str]:
    """gVisor: ``runsc --rootless --network=none --overlay2=root:memory do -quiet -cwd / --``.

    ``--network=none``: no network device but gVisor's own loopback. ``runsc do`` shows the
    host filesystem read-only under a writable in-memory overlay (its default, kept: disabling
    it would let the code write to the host), so what the code writes stays inside gVisor and
    is not collected; ``--overlay2=root:memory`` keeps that overlay in memory (newer runsc
    versions back it with a file on the host's disk by default). ``--rootless`` whoever we are:
    no cgroup or host network setup needed. The launcher still applies the process-level
    layers inside gVisor.
    """
    return [
        runsc,
        "--rootless",
        "--network=none",
        "--overlay2=root:memory",
        "do",
        "-quiet",
        "-cwd",
        "/",
        "--",
    ]


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"SIG{signum}"


def labels(
    spec: LaunchSpec, fields: dict[str, Any], who: Identity
) -> tuple[NetworkIsolation, FilesystemIsolation]:
    hook = bool(fields.get("audit_hook", spec.audit_hook))
    if spec.runsc is not None:
        return "gvisor", "gvisor"
    network: NetworkIsolation = (
        "namespace" if fields.get("network_ns") else "audit-hook" if hook else "none"
    )
    filesystem: FilesystemIsolation
    if fields.get("filesystem") == "mount-namespace":
        filesystem = "mount-namespace"
    elif who.uid != 0 and who.uid != os.getuid():
        filesystem = "permissions"
    else:
        filesystem = "audit-hook" if hook else "none"
    return network, filesystem


def decode_files(end: dict[str, Any]) -> tuple[dict[str, bytes], bool]:
    files: dict[str, bytes] = {}
    raw = end.get("files")
    if isinstance(raw, dict):
        for name, data in raw.items():
            with contextlib.suppress(ValueError, TypeError):
                files[str(name)] = base64.b64decode(data, validate=True)
    if "files_error" in end:
        _log.warning("sandbox: collecting files inside gVisor failed: %s", end["files_error"])
    return files, bool(end.get("files_truncated")) or not isinstance(raw, dict)
