"""Killing what an execution left: a process tree by descent, every process of a uid."""

from __future__ import annotations

import os
import signal
import time

__all__ = ["descendants", "kill_uid"]


def descendants(pid: int) -> list[int]:
    """pidfds of every descendant of ``pid`` (through /proc/PID/task/TID/children)."""
    found: list[int] = []
    todo = [pid]
    seen = {pid}
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{parent}/task/{tid}/children", encoding="ascii") as fh:
                    children = [int(c) for c in fh.read().split()]
            except (OSError, ValueError):
                continue
            for child in children:
                if child in seen:
                    continue
                seen.add(child)
                try:
                    found.append(os.pidfd_open(child))
                except OSError:
                    continue
                todo.append(child)
    return found


def kill_uid(uid: int) -> None:
    """SIGKILL every process whose uid is ``uid`` (a per-execution uid: all of them are ours)."""
    for _ in range(10):
        found = False
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                pidfd = os.pidfd_open(int(entry))
            except OSError:
                continue
            try:
                # Checked after pinning the process with a pidfd: a recycled pid cannot fool us.
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    found = True
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            except OSError:
                pass
            finally:
                os.close(pidfd)
        if not found:
            return
        time.sleep(0.01)
