"""Threads: a conversation made of runs, ``runtime.start(wf, input, thread_id="t")``.

A new run on a thread starts from the final state of the thread's last COMPLETED run, with its
input applied through the reducers (an ``append`` field such as ``messages`` accumulates turn
after turn); the first run of a thread starts like any run. Fields marked ``per_run``
(``Annotated[int, add, per_run]``: a loop counter, a turn's scratch results) start from their
initial value instead of the thread's last one. A FAILED or CANCELLED run leaves no
mark on the thread: the next one starts from the last completed run before it (and resuming a
failed run once the thread has moved on does not bring it back: the thread follows its newest
completed run).

A thread belongs to its tenant: ``start(..., tenant="acme", thread_id="t1")`` continues acme's
thread ``t1`` only; another tenant's (or an untenanted) ``t1`` is another thread, whose runs and
state it never reads.

One run at a time per thread: starting a run while another run of the thread has not finished
(it is queued, executing or parked ESCALATED) raises RunStateError; finish, resume or cancel that
run first. Two processes starting a run on one thread at the same moment cannot both succeed:
each new run carries an idempotency key naming the thread's newest run it follows, and the store
keeps that key unique, so the loser gets RunStateError too.

A turn can be sent again safely: ``start(..., thread_id=t, idempotency_key=k)`` (over HTTP, the
submit's ``idempotency_key``) returns the run an earlier start with ``k`` made on the thread,
among its newest ``REQUEST_WINDOW`` runs, instead of starting the turn twice (a client that
retried after a timeout would otherwise add its message to the conversation a second time);
with another input it raises IdempotencyConflictError. The key is kept in the run's metadata
(``thread_request``); the run's own idempotency key stays the thread's.

A fork of a thread's run does not belong to the thread. The thread id is the run's
``RunRecord.thread_id`` (a column with its own index; also kept in the run's metadata as
``thread_id``); ``runtime.list_runs(thread_id=t)`` and ``tether runs list --thread t`` list a
thread's runs, newest first. Finding a thread's newest runs reads a few entries of that index,
however many other runs were started since.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tether.core.errors import (
    IdempotencyConflictError,
    InvalidInputError,
    InvalidUpdateError,
    RunStateError,
)
from tether.core.lifecycle import FINISHED, RunStatus
from tether.graph.breakpoints import PASSED_KEY
from tether.graph.state_fields import MISSING
from tether.store.types import RunRecord

if TYPE_CHECKING:
    from tether.graph.builder import Workflow
    from tether.graph.host import RunHost
    from tether.store.protocol import RunStore

THREAD_KEY = "thread_id"
"""Run metadata: the thread the run belongs to."""
NOT_FORKED = frozenset({THREAD_KEY, "thread_base", PASSED_KEY})
"""Run metadata a fork does not inherit: a fork is a branch, not a turn of its parent's thread
(starting it could not wait for the thread's other runs), and it stops at its breakpoints anew."""
REQUEST_KEY = "thread_request"
"""Run metadata: the idempotency key a thread's run was started with."""
REQUEST_WINDOW = 50
"""How many of a thread's newest runs a repeated turn (the same idempotency key) is looked
for in: a retry comes while its turn is among the newest."""
_FIRST_PAGE, _PAGE = 4, 200


@dataclass(slots=True)
class ThreadStart:
    state: dict[str, Any]
    """The state the new run starts from."""
    idempotency_key: str
    base_run_id: str | None
    """The completed run whose final state it continues (None: the thread's first run)."""


def check_thread_id(thread_id: Any) -> str:
    """A thread id names a conversation: ``"t1 "`` or ``"t1\\n"`` (a pasted id, a line read with
    its newline) silently started a second conversation beside ``"t1"``, so ids with spaces
    around them or control characters in them are refused rather than stored."""
    if not isinstance(thread_id, str) or not thread_id.strip() or len(thread_id) > 200:
        raise InvalidInputError(
            f"thread_id must be a non-empty string of at most 200 characters, got {thread_id!r}"
        )
    if thread_id != thread_id.strip() or any(_is_control(ch) for ch in thread_id):
        raise InvalidInputError(
            f"thread_id {thread_id!r} has spaces around it or a control character in it: a "
            f"near copy of another id would start a new conversation; use {_clean(thread_id)!r}"
        )
    return thread_id


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")


def _clean(thread_id: str) -> str:
    return "".join(ch for ch in thread_id if not _is_control(ch)).strip()


async def thread_start(
    rt: RunHost,
    wf: Workflow,
    thread_id: str,
    input: Mapping[str, Any] | None,
    tenant: str | None = None,
) -> ThreadStart:
    """Where a new run of ``tenant``'s ``thread_id`` starts; refuses while another run of it is
    unfinished."""
    newest: RunRecord | None = None
    base: RunRecord | None = None
    async for run in _thread_runs(rt.store, thread_id, tenant):
        if run.workflow != wf.name:
            raise RunStateError(
                f"thread {thread_id!r} belongs to workflow {run.workflow!r} (run {run.run_id}), "
                f"not {wf.name!r}; use another thread_id for this workflow"
            )
        if run.status not in FINISHED:
            raise RunStateError(
                f"thread {thread_id!r} already has an unfinished run {run.run_id} "
                f"({run.status.value}); a thread runs one run at a time: wait for it, resume "
                "it, or cancel it before starting the next"
            )
        newest = newest or run
        if run.status is RunStatus.COMPLETED:
            base = run
            break
    key = f"{thread_key(thread_id, tenant)}:after:{newest.run_id if newest else '-'}"
    if base is None:
        return ThreadStart(wf.schema.initial_state(input), key, None)
    state = fresh_per_run(wf, await rt.get_state(base.run_id, run=base))
    if input is not None and not isinstance(input, Mapping):
        raise InvalidInputError(
            f"run input must be a mapping of state fields, got {type(input).__name__}"
        )
    given = dict(input or {})
    schema = wf.schema
    pydantic = schema.kind == "pydantic"
    if not pydantic:  # a pydantic state is validated whole below
        carried(wf, thread_id, base.run_id, state)
    try:
        schema.check_update(given, "", source="run input", check_types=not pydantic)
        schema.apply(state, [("input", given)])
    except InvalidUpdateError as exc:
        raise InvalidInputError(str(exc)) from None
    missing = [n for n, f in schema.fields.items() if f.per_run and f.required and n not in state]
    if missing:  # a run's own required field: each run of the thread gives it, as the first did
        raise InvalidInputError(
            f"run input is missing required state field(s) {missing}: they are per_run, so "
            f"each run of thread {thread_id!r} must give them in its input"
        )
    if pydantic:  # the model coerces and validates the continued state, as it does a new one
        state = schema._validated(state)
    return ThreadStart(state, key, base.run_id)


def fresh_per_run(wf: Workflow, state: dict[str, Any]) -> dict[str, Any]:
    """The thread's last state with the fields marked ``per_run`` back at their initial value
    (or unset where they have none): the run's own counters and scratch start afresh."""
    for name, field in wf.schema.fields.items():
        if field.per_run:
            state.pop(name, None)
            initial = field.initial()
            if initial is not MISSING:
                state[name] = initial
    return state


def carried(wf: Workflow, thread_id: str, base_run_id: str, state: dict[str, Any]) -> None:
    """The thread's state as the workflow's state is now (a deploy may have changed it since
    the thread's last run): fields the workflow no longer has are left behind, and a value
    that no longer fits its field's type refuses the run up front (InvalidInputError), before
    a node trips on it. Values are checked as stored, as JSON (a tuple field holds a list, a
    dataclass field an object)."""
    schema = wf.schema
    if schema.schema is None:
        return
    for name in [n for n in state if n not in schema.fields]:
        del state[name]
    for name, value in state.items():
        problem = schema.stored_value_problem(name, value)
        if problem is not None:
            raise InvalidInputError(
                f"thread {thread_id!r} cannot go on with workflow {wf.name!r} as it is now: "
                f"its last run ({base_run_id}) left {name!r} = {problem}; start a new thread, "
                "or let the field's type accept what the thread holds"
            )


async def earlier_turn(
    store: RunStore, thread_id: str, tenant: str | None, key: str, workflow: str, input_hash: str
) -> RunRecord | None:
    """The run of the thread an earlier start with idempotency ``key`` made (among its newest
    ``REQUEST_WINDOW`` runs), or None. IdempotencyConflictError when it had another input or
    workflow."""
    seen = 0
    async for run in _thread_runs(store, thread_id, tenant):
        if run.metadata.get(REQUEST_KEY) == key:
            if run.workflow != workflow or run.input_hash != input_hash:
                raise IdempotencyConflictError(
                    f"idempotency key {key!r} was already used by run {run.run_id} of thread "
                    f"{thread_id!r} with a different input or workflow; use a new key for a new "
                    "turn"
                )
            return run
        seen += 1
        if seen >= REQUEST_WINDOW:
            break
    return None


def refused(thread_id: str, existing: str | None) -> RunStateError:
    """``existing``: the id of the run that took the thread's turn, when the store said."""
    which = f"another run ({existing})" if existing else "another run"
    return RunStateError(
        f"thread {thread_id!r}: {which} was started on it at the same moment; "
        "a thread runs one run at a time: wait for that run, then start the next"
    )


async def list_thread_runs(
    store: RunStore, thread_id: str, limit: int = 50, offset: int = 0, **filters: Any
) -> list[RunRecord]:
    """The runs of a thread, newest first (``filters`` as for ``RunStore.list_runs``)."""
    check_thread_id(thread_id)
    return await store.list_runs(thread_id=thread_id, limit=limit, offset=offset, **filters)


def thread_key(thread_id: str, tenant: str | None) -> str:
    """The prefix of the idempotency keys of a thread's runs (unique per tenant and thread)."""
    if tenant is None:
        return f"tether:thread:{thread_id}"
    return f"tether:thread:{json.dumps([tenant, thread_id])}"


async def _thread_runs(
    store: RunStore, thread_id: str, tenant: str | None
) -> AsyncIterator[RunRecord]:
    """The tenant's runs of the thread, newest first, read page by page (keyset) from the
    thread index: the first page is small, since a thread start usually needs only the newest
    run or two. Runs of the thread id under another tenant are not this thread's."""
    size, cursor = _FIRST_PAGE, None
    while True:
        page = await store.list_runs(thread_id=thread_id, tenant=tenant, limit=size, before=cursor)
        for run in page:
            if run.tenant == tenant:  # tenant None lists every tenant's: keep the untenanted
                yield run
        if len(page) < size:
            return
        cursor, size = page[-1].run_id, _PAGE
