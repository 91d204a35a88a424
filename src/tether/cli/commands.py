"""The CLI's async actions. Each opens what it needs, drives the Runtime, and returns a view
(plain data) that ``tether.cli.render`` prints as a table or as JSON."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tether.cli.store_check import check_store_url
from tether.cli.store_check import sqlite_path as sqlite_path  # serve, keys, migrate use it
from tether.core.errors import ConfigurationError, InvalidInputError, TetherError
from tether.core.lifecycle import RunStatus
from tether.core.refs import load_ref
from tether.graph.builder import Workflow
from tether.graph.results import RunHandle, RunResult, StepInfo
from tether.graph.runtime import Runtime
from tether.store.protocol import RunStore
from tether.store.server_clock import store_now
from tether.store.types import RunRecord, Transition

if TYPE_CHECKING:
    from tether.llm.usage import RunUsage
from tether.store.url import open_store

DEFAULT_STORE = "sqlite:///.tether/tether.db"
_APP_HINT = "pass the workflow with --app module:attr or path/to/file.py:attr (or TETHER_APP)"


@dataclass(slots=True)
class Settings:
    """Global options, resolved from flags, then the environment, then defaults."""

    store_url: str
    store_origin: str
    """Where ``store_url`` came from: ``--store``, ``TETHER_STORE`` or ``default``."""
    app: str | None = None
    actor: str = "cli"
    server: str | None = None
    """``--server`` or ``TETHER_SERVER``: act through this ``tether serve`` (tether.cli.backend)."""
    api_key: str | None = None
    """``--api-key`` or ``TETHER_API_KEY``: the server's Bearer key."""


def settings(args: Any, *, app: bool = True) -> Settings:
    """The global options of a parsed command line: ``--store``, else ``TETHER_STORE``, else
    the default store; ``--app`` or ``TETHER_APP`` (only with ``app``)."""
    store = getattr(args, "store", None)
    origin = "--store"
    if not store:
        store, origin = env("TETHER_STORE"), "TETHER_STORE"
    if not store:
        store, origin = DEFAULT_STORE, "default"
    ref = (getattr(args, "app", None) or env("TETHER_APP")) if app else None
    server = getattr(args, "server", None)
    if server and getattr(args, "store", None):
        raise ConfigurationError("pass either --store URL or --server URL, not both")
    if not server and origin != "--store":
        server = env("TETHER_SERVER")
    api_key = getattr(args, "api_key", None) or env("TETHER_API_KEY")
    return Settings(store, origin, ref, default_actor(), server or None, api_key)


def default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


# -- parsing user input -------------------------------------------------------------------------
def parse_json(text: str, what: str, example: str) -> Any:
    """``text`` as JSON, or an InvalidInputError that says how to write it."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"{what} is not valid JSON ({exc.msg} at position {exc.pos}): {text!r}; "
            f"write it as JSON, e.g. {example}"
        ) from None


def parse_answers(items: Sequence[str]) -> dict[str, Any]:
    """``["ID=JSON", ...]`` into ``{ID: value}``."""
    answers: dict[str, Any] = {}
    for item in items:
        iid, sep, raw = item.partition("=")
        if not sep or not iid:
            raise InvalidInputError(
                f"--answer {item!r} must look like INTERRUPT_ID=JSON; "
                "see the pending interrupt ids with `tether runs show RUN_ID`"
            )
        if iid in answers:
            raise InvalidInputError(f"--answer given twice for interrupt {iid!r}")
        answers[iid] = parse_json(raw, f"--answer for {iid!r}", f"--answer '{iid}=\"yes\"'")
    return answers


def parse_statuses(values: Sequence[str]) -> list[RunStatus]:
    out: list[RunStatus] = []
    for value in values:
        for part in value.split(","):
            name = part.strip().upper()
            if not name:
                continue
            try:
                status = RunStatus(name)
            except ValueError:
                known = ", ".join(s.value for s in RunStatus)
                raise InvalidInputError(
                    f"unknown run status {part.strip()!r}; use one of {known}"
                ) from None
            if status not in out:
                out.append(status)
    if values and not out:  # `--status ""` (an unset shell variable) would list every run
        known = ", ".join(s.value for s in RunStatus)
        raise InvalidInputError(f"--status was given no status; use one of {known}")
    return out


# -- opening the store, the app and the runtime ------------------------------------------------
def open_cli_store(settings: Settings) -> RunStore:
    """The store, refusing to create a fresh SQLite file: every command reads existing runs."""
    check_store_url(settings.store_url, settings.store_origin)
    try:
        return open_store(settings.store_url)
    except TetherError:
        raise
    except Exception as exc:
        raise ConfigurationError(f"cannot open store {settings.store_url!r}: {exc}") from exc


def load_workflows(ref: str) -> list[Workflow]:
    """The compiled workflow(s) an ``--app`` reference names."""
    obj = load_ref(ref)
    many = isinstance(obj, list | tuple)
    items: list[Any] = list(obj) if many else [obj]
    bad = sorted({type(x).__name__ for x in items if not isinstance(x, Workflow)})
    if bad or not items:
        got = (
            f"a {type(obj).__name__} of {', '.join(bad) or 'nothing'}"
            if many
            else type(obj).__name__
        )
        raise ConfigurationError(
            f"--app {ref!r} must name a compiled Workflow (graph.compile()) or a list/tuple of "
            f"them, got {got}"
        )
    return items


def load_deps(ref: str) -> dict[str, Any]:
    """The dependencies a ``--deps`` reference names: a mapping of names to objects (nodes read
    them as ``ctx.deps[name]``), or a function of no arguments returning one (called once)."""
    obj = load_ref(ref)
    if callable(obj) and not isinstance(obj, Mapping):
        try:
            obj = obj()
        except Exception as exc:
            raise ConfigurationError(f"--deps {ref!r}: calling it raised {exc!r}") from exc
    if not isinstance(obj, Mapping) or not all(isinstance(k, str) for k in obj):
        raise ConfigurationError(
            f"--deps {ref!r} must name a dict of str keys (or a function returning one), "
            f"got {type(obj).__name__}"
        )
    return dict(obj)


@asynccontextmanager
async def cli_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """A Runtime that never claims other runs (``recover=False``), closed on the way out."""
    workflows = load_workflows(settings.app) if settings.app else []
    store = open_cli_store(settings)
    rt = Runtime(store, workflows=workflows, recover=False)
    try:
        await _open(rt, settings)
        yield rt
    finally:
        await rt.close()


async def _open(rt: Runtime, settings: Settings) -> None:
    try:
        await rt.open()
    except BaseException as exc:
        with contextlib.suppress(Exception):
            await rt.store.close()  # Runtime.close() only closes a store it opened
        if isinstance(exc, TetherError) or not isinstance(exc, Exception):
            raise
        raise ConfigurationError(f"cannot open store {settings.store_url!r}: {exc}") from exc


@asynccontextmanager
async def cli_store(settings: Settings) -> AsyncIterator[RunStore]:
    store = open_cli_store(settings)
    try:
        await store.setup()
    except TetherError:
        await store.close()
        raise
    except Exception as exc:
        await store.close()
        raise ConfigurationError(f"cannot open store {settings.store_url!r}: {exc}") from exc
    try:
        yield store
    finally:
        await store.close()


def _with_app_hint(exc: ConfigurationError) -> ConfigurationError:
    msg = str(exc)
    if "--app" in msg:
        return exc
    return ConfigurationError(f"{msg}; {_APP_HINT}")


# -- views ----------------------------------------------------------------------------------
@dataclass(slots=True)
class RunView:
    run: RunRecord
    step: int
    """The step whose state is shown."""
    state: dict[str, Any] | None
    state_error: str | None = None
    forks: list[RunRecord] = field(default_factory=list)
    usage: RunUsage | None = None
    """What the run spent on models (None when it made no model call)."""
    now: float | None = None
    """The store's time when the run was read (its lease expiry is in that time); None: this
    host's."""


@dataclass(slots=True)
class HistoryView:
    run: RunRecord
    steps: list[StepInfo]
    transitions: list[Transition]
    next_after: int | None = None
    """The ``--after`` of the next page; None on the last page."""


@dataclass(slots=True)
class ResumeView:
    run: RunRecord
    before: RunStatus
    waited: bool
    state: dict[str, Any] | None = None


@dataclass(slots=True)
class ForkView:
    run: RunRecord
    parent_run_id: str
    parent_step: int
    waited: bool
    state: dict[str, Any] | None = None


@dataclass(slots=True)
class CancelView:
    run: RunRecord
    before: RunStatus


# -- actions --------------------------------------------------------------------------------
async def list_runs(
    settings: Settings,
    statuses: Sequence[RunStatus],
    workflow: str | None,
    limit: int,
    thread: str | None = None,
) -> list[RunRecord]:
    async with cli_store(settings) as store:
        status = list(statuses) or None
        if thread is not None:
            from tether.graph.threads import list_thread_runs

            return await list_thread_runs(
                store, thread, limit=limit, status=status, workflow=workflow
            )
        return await store.list_runs(status=status, workflow=workflow, limit=limit)


async def show_run(settings: Settings, run_id: str, step: int | None) -> RunView:
    async with cli_runtime(settings) as rt:
        run = await rt.get_run(run_id)
        at = run.step if step is None else step
        state: dict[str, Any] | None = None
        state_error: str | None = None
        try:
            state = await rt.get_state(run_id, at, run=run)
        except ConfigurationError as exc:
            state_error = str(_with_app_hint(exc))
        forks = await rt.list_runs(parent_run_id=run_id, limit=100)
        # lazily: the model plane is not needed elsewhere
        from tether.cli.usage_totals import usage_from_totals

        usage = usage_from_totals(await rt.store.model_usage(run_id))
        return RunView(
            run, at, state, state_error, forks, usage if usage.calls else None, store_now(rt.store)
        )


HISTORY_PAGE = 100
"""Steps ``tether runs history`` shows at once (``--limit``); ``--after`` pages on."""


async def run_history(
    settings: Settings, run_id: str, after: int | None = None, limit: int = HISTORY_PAGE
) -> HistoryView:
    async with cli_runtime(settings) as rt:
        run = await rt.get_run(run_id)
        steps = await rt.history(run_id, after_step=after, limit=limit + 1)
        more = len(steps) > limit
        steps = steps[:limit]
        transitions = await rt.store.list_transitions(run_id)
        return HistoryView(run, steps, transitions, steps[-1].step if more else None)


async def resume_run(
    settings: Settings,
    run_id: str,
    *,
    value: Any = None,
    has_value: bool = False,
    answers: Mapping[str, Any] | None = None,
    max_steps: int | None = None,
    wait: bool = True,
    allow_version_change: bool = False,
) -> ResumeView:
    """Answer a parked run (or retry a failed one) and, by default, execute it here until it
    settles again. With ``wait=False`` the resume is recorded and the run is left, unowned and
    ACTIVE, for any worker that knows its workflow."""
    kwargs: dict[str, Any] = {
        "answers": answers,
        "max_steps": max_steps,
        "actor": settings.actor,
        "allow_version_change": allow_version_change,
    }
    if has_value:
        kwargs["value"] = value
    async with cli_runtime(settings) as rt:
        before = (await rt.get_run(run_id)).status
        try:
            out = await rt.resume(run_id, wait=wait, **kwargs)
        except ConfigurationError as exc:
            raise _with_app_hint(exc) from None
        if isinstance(out, RunResult):
            run = out.record if out.record is not None else await rt.get_run(run_id)
            return ResumeView(run, before, True, out.state)
        # Not waiting: stop the run task before it starts (close() cancels it synchronously,
        # then releases the lease) so a worker can claim the run.
        await rt.close()
    async with cli_store(settings) as store:
        return ResumeView(await store.get_run(run_id), before, False)


async def fork_run(
    settings: Settings,
    run_id: str,
    step: int,
    patch: Mapping[str, Any] | None,
    *,
    max_steps: int | None = None,
    wait: bool = True,
) -> ForkView:
    async with cli_runtime(settings) as rt:
        try:
            handle: RunHandle = await rt.fork(
                run_id, step, patch, max_steps=max_steps, execute=wait, actor=settings.actor
            )
        except ConfigurationError as exc:
            raise _with_app_hint(exc) from None
        if not wait:
            return ForkView(await rt.get_run(handle.run_id), run_id, step, False)
        res = await handle.wait()
        run = res.record if res.record is not None else await rt.get_run(handle.run_id)
        return ForkView(run, run_id, step, True, res.state)


async def cancel_run(settings: Settings, run_id: str, reason: str) -> CancelView:
    # the approvals' cancel hook (voids the run's pending requests at once): only here, the
    # governance plane is too heavy for every command's start-up
    import tether.governance.approvals_api  # noqa: F401

    async with cli_runtime(settings) as rt:
        before = (await rt.get_run(run_id)).status
        run = await rt.cancel(run_id, reason=reason, actor=settings.actor)
        return CancelView(run, before)


def env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None
