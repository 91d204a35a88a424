"""``tether runs upgrade``: move unfinished runs to the version of their workflow in ``--app``.

After a deploy that changed a workflow's shape, the runs it had in flight wait for a worker of
the old code (workers of the new code refuse them). Once none is left, this moves them to the
new version, each checked first (``tether.graph.upgrade``): one run by id, or every run of a
workflow with ``--workflow``; ``--dry-run`` checks without writing. Workers of the new code then
continue them from their last checkpoint. With ``--server URL`` the server moves them (to the
version it runs; a key with the admin scope): the runs named, or those of ``--workflow`` its
tenant sees.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from tether.cli.commands import Settings, cli_runtime
from tether.cli.render import Output
from tether.core.errors import (
    ConfigurationError,
    InvalidInputError,
    RunNotFoundError,
    RunStateError,
)
from tether.core.lifecycle import RunStatus
from tether.graph.upgrade import UNFINISHED, Upgrade

ACTIONS = ("upgrade",)


@dataclass(slots=True)
class UpgradeView:
    moved: list[Upgrade]
    refused: list[tuple[str, str]]
    dry_run: bool


def add_parsers(rsub: argparse._SubParsersAction[Any], common: argparse.ArgumentParser) -> None:
    p = rsub.add_parser(
        "upgrade",
        parents=[common],
        help="move unfinished runs to the version of their workflow in --app (after a deploy "
        "that changed its shape)",
    )
    p.add_argument("run_ids", nargs="*", metavar="RUN_ID", help="the runs to move")
    p.add_argument(
        "--workflow",
        metavar="W",
        help="every unfinished run of workflow W recorded with another version",
    )
    p.add_argument("--dry-run", action="store_true", help="check each run; change nothing")


async def upgrade_runs(
    settings: Settings, run_ids: list[str], workflow: str | None, dry_run: bool
) -> UpgradeView:
    if bool(run_ids) == bool(workflow):
        raise InvalidInputError(
            "name the runs to upgrade (tether runs upgrade RUN_ID...) or a workflow "
            "(--workflow W), not both and not neither"
        )
    if settings.server:
        return await _through_server(settings, run_ids, workflow, dry_run)
    if not settings.app:
        raise ConfigurationError(
            "tether runs upgrade moves runs to the workflow version of the new code: pass it "
            "with --app module:workflows (or TETHER_APP)"
        )
    async with cli_runtime(settings) as rt:
        if workflow:
            moved, refused = await rt.upgrade_all(workflow, actor=settings.actor, dry_run=dry_run)
            return UpgradeView(moved, refused, dry_run)
        view = UpgradeView([], [], dry_run)
        for run_id in run_ids:
            try:
                view.moved.append(await rt.upgrade(run_id, actor=settings.actor, dry_run=dry_run))
            except (RunStateError, RunNotFoundError) as exc:  # the others go on
                view.refused.append((run_id, str(exc)))
        return view


async def _through_server(
    settings: Settings, run_ids: list[str], workflow: str | None, dry_run: bool
) -> UpgradeView:
    """``--server URL``: each run moved by the server, to the workflow version it runs (a key
    with the admin scope). ``--workflow W``: the unfinished runs of W the key's tenant sees,
    listed page by page, each moved in turn; the ones at the server's version already are
    left out, as a store's ``upgrade_all`` leaves them."""
    from tether.client import AsyncClient

    assert settings.server is not None
    view = UpgradeView([], [], dry_run)
    async with AsyncClient(settings.server, settings.api_key) as client:
        if workflow:
            if workflow not in {w.name for w in await client.workflows()}:
                raise ConfigurationError(
                    f"the server at {settings.server} runs no workflow {workflow!r}: upgrading "
                    "moves runs to the version a server runs (deploy the new code there first)"
                )
            statuses: list[str | RunStatus] = list(UNFINISHED)
            run_ids = [r.run_id async for r in client.list_runs(workflow=workflow, status=statuses)]
        for run_id in run_ids:
            try:
                u = await client.upgrade(run_id, dry_run=dry_run)
            except (RunStateError, RunNotFoundError) as exc:
                view.refused.append((run_id, str(exc)))
                continue
            if workflow and u.from_version == u.to_version:
                continue  # nothing to move
            status = RunStatus(u.status)
            view.moved.append(
                Upgrade(u.run_id, u.workflow, status, u.from_version, u.to_version, u.changed)
            )
    return view


async def dispatch(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    """Returns the exit code: 1 when a run could not be moved."""
    view = await upgrade_runs(settings, args.run_ids, args.workflow, args.dry_run)
    show(out, view)
    return 1 if view.refused else 0


def show(out: Output, view: UpgradeView) -> None:
    if out.json_mode:
        out.emit_json(
            {
                "dry_run": view.dry_run,
                "upgraded": [
                    {
                        "run_id": u.run_id,
                        "workflow": u.workflow,
                        "status": u.status.value,
                        "from_version": u.from_version,
                        "to_version": u.to_version,
                        "changed": u.changed,
                    }
                    for u in view.moved
                ],
                "refused": [{"run_id": r, "error": why} for r, why in view.refused],
            }
        )
        return
    for u in view.moved:
        if u.changed:
            verb = "upgraded"
        elif view.dry_run and u.from_version != u.to_version:
            verb = "can upgrade"
        else:
            verb = "already on"
        out.print(
            Text.assemble(
                (f"{verb} ", "bold"),
                u.run_id,
                f"  {u.workflow} {u.from_version or '(no version)'} {out.arrow} {u.to_version}"
                if verb != "already on"
                else f"  {u.workflow} {u.to_version}",
            )
        )
    for run_id, why in view.refused:
        out.error(f"{run_id}: {why}")
    if not view.moved and not view.refused:
        out.print(Text("no run to upgrade", "dim"))
