"""Where ``tether runs ...`` acts: on a store (the Runtime in this process) or on a server
(``--server URL`` or ``TETHER_SERVER``: the HTTP API of ``tether serve``, through
``tether.client``). Both return the same views, so one renderer prints either."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from tether.cli import commands as cmd
from tether.cli import purge_cmd, requeue
from tether.core.errors import ConfigurationError
from tether.core.lifecycle import RunStatus
from tether.store.types import RunRecord

SERVER_COMMANDS = frozenset({"runs", "approvals", "version"})
"""The commands that can act on a server; the others need the store itself."""


class Backend(Protocol):
    async def list_runs(
        self, statuses: Sequence[RunStatus], workflow: str | None, limit: int, thread: str | None
    ) -> list[RunRecord]: ...

    async def show_run(self, run_id: str, step: int | None) -> cmd.RunView: ...

    async def run_history(self, run_id: str, after: int | None, limit: int) -> cmd.HistoryView: ...

    async def resume_run(
        self,
        run_id: str,
        *,
        value: Any = None,
        has_value: bool = False,
        answers: Mapping[str, Any] | None = None,
        max_steps: int | None = None,
        wait: bool = True,
        allow_version_change: bool = False,
    ) -> cmd.ResumeView: ...

    async def fork_run(
        self,
        run_id: str,
        step: int,
        patch: Mapping[str, Any] | None,
        *,
        max_steps: int | None = None,
        wait: bool = True,
    ) -> cmd.ForkView: ...

    async def cancel_run(self, run_id: str, reason: str) -> cmd.CancelView: ...


class StoreBackend:
    """The runs of a store, driven by a Runtime in this process (``tether.cli.commands``)."""

    def __init__(self, settings: cmd.Settings) -> None:
        self.settings = settings

    async def list_runs(
        self, statuses: Sequence[RunStatus], workflow: str | None, limit: int, thread: str | None
    ) -> list[RunRecord]:
        return await cmd.list_runs(self.settings, statuses, workflow, limit, thread)

    async def show_run(self, run_id: str, step: int | None) -> cmd.RunView:
        return await cmd.show_run(self.settings, run_id, step)

    async def run_history(self, run_id: str, after: int | None, limit: int) -> cmd.HistoryView:
        return await cmd.run_history(self.settings, run_id, after, limit)

    async def resume_run(self, run_id: str, **kw: Any) -> cmd.ResumeView:
        return await cmd.resume_run(self.settings, run_id, **kw)

    async def fork_run(
        self,
        run_id: str,
        step: int,
        patch: Mapping[str, Any] | None,
        *,
        max_steps: int | None = None,
        wait: bool = True,
    ) -> cmd.ForkView:
        return await cmd.fork_run(
            self.settings, run_id, step, patch, max_steps=max_steps, wait=wait
        )

    async def cancel_run(self, run_id: str, reason: str) -> cmd.CancelView:
        return await cmd.cancel_run(self.settings, run_id, reason)


def backend_for(settings: cmd.Settings) -> Backend:
    """The server when one is configured, else the store."""
    if settings.server:
        from tether.cli.server_backend import ServerBackend  # the client only when used

        return ServerBackend(settings)
    return StoreBackend(settings)


def check_server_command(args: Any) -> None:
    """Refuse, with a clear message, ``--server`` on a command that needs the store itself
    (``TETHER_SERVER`` in the environment only applies to the commands that can use it)."""
    if not getattr(args, "server", None):
        return
    command = str(getattr(args, "command", ""))
    action = getattr(args, "action", None)
    what = f"{command} {action}" if command == "runs" else command
    if (
        command not in SERVER_COMMANDS
        or (command == "runs" and action in (*requeue.ACTIONS, *purge_cmd.ACTIONS))
        or getattr(args, "dead_letter", False)
    ):
        raise ConfigurationError(
            f"`tether {what}{' --dead-letter' if getattr(args, 'dead_letter', False) else ''}` "
            "works on a store, not through a server: drop --server and pass --store URL"
        )
