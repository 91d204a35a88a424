"""What a node sees of its run: ids, ``interrupt()``, journaled effects and custom events."""

from __future__ import annotations

import inspect
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

from tether.core import serde
from tether.core.capabilities import has_capability
from tether.core.errors import (
    EscalationSignal,
    IdempotencyConflictError,
    ModelTimeoutError,
    PolicyViolationError,
    ToolTimeoutError,
    UnstorableValueError,
)
from tether.core.governor import Governor
from tether.core.ids import KEY_FORMAT, KEY_FORMAT_KEY, effect_key, legacy_effect_key
from tether.core.journal import CURRENT_RUN, IN_FLIGHT, MANUAL_RETRY, OUTCOME_UNKNOWN
from tether.core.json_copy import error_text, journal_copy, record_copy, scrub_text
from tether.core.lifecycle import RunStatus
from tether.graph.interrupt_timeout import (
    NO_DEFAULT,
    is_timeout_answer,
    make_interrupt,
    timed_out,
)
from tether.graph.sleep import check_deadline, check_time, wait_until
from tether.graph.state import check_kept
from tether.store.usage import MODEL_CALL

if TYPE_CHECKING:
    from collections.abc import Iterable

    from tether.graph.host import RunHost
    from tether.store.protocol import RunStore
    from tether.store.types import EffectRecord, Event

_current = CURRENT_RUN
REFUSED_EVENT = "call_refused"
"""A model or tool call governance refused before it was journaled (``RunContext._refused``)."""


@runtime_checkable
class TaskEffects(Protocol):
    """A store that lists the keys of a task's journaled calls in one read (``effect_keys``):
    a governed call asks the journal whether it was made before it is gated (a replay is not
    charged), and a task reads its keys once instead of once per call."""

    async def effect_keys(self, run_id: str, prefix: str) -> set[str]:
        """The keys of ``run_id``'s journal entries that begin with ``prefix``."""
        ...


class TaskSink(Protocol):
    """Where a running task's events go (the run loop executing its step)."""

    def task_event(self, type: str, data: dict[str, Any], node: str | None, step: int) -> Event:
        """Record the task's event ``type`` (persisted with the step, published at once);
        returns it as recorded."""
        ...

    def publish_live(self, type: str, data: dict[str, Any], node: str | None, step: int) -> None:
        """A live-only event for subscribers (a streamed model's tokens): never persisted."""
        ...


def current_context() -> RunContext:
    ctx = _current.get()
    if not isinstance(ctx, RunContext):
        raise RuntimeError("no tether run context: this can only be called inside a running node")
    return ctx


def interrupt(
    payload: Any = None,
    *,
    timeout: float | None = None,
    on_timeout: str | None = None,
    default: Any = NO_DEFAULT,
) -> Any:
    """Pause the run for a human: the first time, park the run (ESCALATED) with ``payload``;
    when the run is resumed with an answer, the node re-runs and this call returns the answer.

    With ``timeout`` (seconds), nobody answering in time lets the run go on by itself (a
    durable timer, see ``tether.graph.timers``): to the node ``on_timeout`` (instead of this
    node's edges), or with ``interrupt`` returning ``default``.

    Work the node did before calling ``interrupt`` re-runs on resume, so put side effects behind
    ``await ctx.effect(...)`` (journaled: performed once, replayed after).
    """
    return current_context().interrupt(
        payload, timeout=timeout, on_timeout=on_timeout, default=default
    )


class RunContext:
    """Handed to nodes that take a second argument: ``def node(state, ctx)``.

    A node sees its run's ids (``run_id``, ``workflow``, ``step``, ``node``, ``task_id``,
    ``attempt``), whose run it is (``tenant``), the run's ``metadata`` (read-only), the
    runtime's ``deps``, and the journal: ``emit``, ``effect``, ``journaled``, ``call_key``,
    ``interrupt``. It does not see the runtime, the store or the fencing token: every write a
    node makes goes through the journal, which fences it with the run's lease.
    """

    __slots__ = (
        "_calls",
        "_committed_calls",
        "_events",
        "_failed",
        "_host",
        "_interrupts",
        "_known",
        "_resume",
        "_sink",
        "_store",
        "_token",
        "attempt",
        "deps",
        "governor",
        "metadata",
        "node",
        "run_id",
        "step",
        "task_id",
        "tenant",
        "workflow",
    )

    def __init__(  # positional too: the run loop makes one per task it runs, by position
        self,
        run_id: str,
        workflow: str,
        step: int,
        node: str,
        task_id: str,
        store: RunStore,
        token: int | None,
        sink: TaskSink,
        resume: Sequence[Any],
        metadata: Mapping[str, Any],
        host: RunHost,
        deps: Mapping[str, Any] | None = None,
        attempt: int = 1,
        governor: Governor | None = None,
        tenant: str | None = None,
        events: list[Event] | None = None,
    ) -> None:
        self.run_id = run_id
        self.workflow = workflow
        self.step = step
        self.node = node
        self.task_id = task_id
        self._store = store
        self._token = token
        self._host = host
        self.attempt = attempt
        self.tenant = tenant
        """The run's tenant (a child run's is its parent's); None: the run has none. Tools
        called with this context act for it (``ToolContext.tenant``, kill switches, per-tenant
        rate limits) and a ``CachedModel`` keeps its answers apart."""
        self.metadata: Mapping[str, Any] = (
            metadata if type(metadata) is MappingProxyType else MappingProxyType(metadata)
        )
        """The run's metadata, read-only."""
        self.deps: Mapping[str, Any] = deps if deps is not None else {}
        """What the Runtime was given as ``deps`` (a ToolExecutor, clients...), for nodes."""
        self.governor = governor
        """The run's governor (``compile(governance=...)``), asked around each live model and
        tool call; None: the run is not governed."""
        self._sink = sink
        """Where this task's events go (the run loop): persisted with the step, or live only."""
        self._events: list[Event] = events if events is not None else []
        """This task's events not committed yet (those ``emit`` put, and those its node
        write carried from an earlier execution of the step)."""
        self._committed_calls: list[Event] | None = None
        """The ``model_call`` events the store holds for this step, once read."""
        self._resume = resume
        self._interrupts = 0
        self._calls: dict[str, int] = {}
        self._failed: set[str] = set()  # keys whose call failed in this run of the task
        self._known: set[str] | None = None
        """The journal's keys of this task's own calls (``_seen``): read at its first gated
        call, then each key it records added."""

    # -- human in the loop ---------------------------------------------------------------
    def interrupt(
        self,
        payload: Any = None,
        *,
        timeout: float | None = None,
        on_timeout: str | None = None,
        default: Any = NO_DEFAULT,
    ) -> Any:
        idx = self._interrupts
        self._interrupts += 1
        if idx < len(self._resume):
            answer = self._resume[idx]
            if is_timeout_answer(answer):
                return timed_out(on_timeout, default)
            return answer
        who = f"node {self.node!r}"
        check_kept(payload, "interrupt payload", who)
        if default is not NO_DEFAULT:
            check_kept(default, "interrupt default", who)
        raise make_interrupt(payload, idx, timeout, on_timeout, default)

    # -- durable sleep (tether.graph.sleep) ------------------------------------------------
    async def sleep(self, seconds: float) -> None:
        """Sleep durably: the run parks holding no worker slot (a sleep over ``INLINE_SLEEP``
        seconds) and any worker continues it when due, across restarts. The node re-runs from
        its start then, so put side effects before the sleep behind ``ctx.effect``."""
        seconds = check_time(seconds, "sleep(seconds)")
        until = self._host.clock.now() + max(seconds, 0.0)
        await self._sleep_until(
            check_deadline(until, "now + sleep(seconds)", seconds), {"seconds": seconds}
        )

    async def sleep_until(self, ts: float) -> None:
        """Sleep durably until the time ``ts`` (seconds since the epoch); see ``sleep``."""
        until = check_deadline(check_time(ts, "sleep_until(ts)"), "sleep_until(ts)", ts)
        await self._sleep_until(until, {"until": ts})

    async def _sleep_until(self, until: float, request: dict[str, Any]) -> None:
        async def deadline() -> float:
            return until

        fixed = await self.journaled("sleep", request, deadline, idempotent=True)
        await wait_until(self._host.clock, float(fixed))

    @property
    def resume_values(self) -> list[Any]:
        return list(self._resume)

    @property
    def host(self) -> RunHost:
        """The runtime executing this run, by its narrow ``RunHost`` face: for nodes that start
        and join child runs themselves (``tether.agents.fork_join``), as subgraph nodes do."""
        return self._host

    # -- events --------------------------------------------------------------------------
    def emit(self, type: str, data: dict[str, Any] | None = None) -> None:
        """Publish a custom event on the run's stream (persisted with the step). The event is a
        record, kept as JSON whatever it holds (``json_copy.record_copy``: NaN as None, a
        ``Decimal`` as text, text that is not UTF-8 with U+FFFD); live subscribers get the same
        copy the store keeps."""
        if not isinstance(type, str) or not type:
            raise ValueError("event type must be a non-empty string")
        kept = dict(data or {})
        if serde.unstorable(kept) is not None:  # a walk, no copy: most events hold plain JSON
            kept = record_copy(kept)
        self._emit(scrub_text(type), kept, self.node)

    def emit_live(self, type: str, data: dict[str, Any] | None = None) -> None:
        """Publish an event to this process's live subscribers only (``Runtime.stream``, the
        server's SSE), never persisted: progress nobody needs in the history, such as a
        streamed model's tokens (``model_token``; the answer is in its ``model_call`` event)."""
        if not isinstance(type, str) or not type:
            raise ValueError("event type must be a non-empty string")
        self._sink.publish_live(type, dict(data or {}), self.node, self.step)

    def _emit(self, type: str, data: dict[str, Any], node: str | None) -> None:
        """Record one of this task's events: persisted with its step (journaled with its node
        write, ``_events``) and shown to live subscribers at once."""
        self._events.append(self._sink.task_event(type, data, node, self.step))

    def explain(self, text: str, **data: Any) -> None:
        """Say why the node is about to act: a ``rationale`` event the mind log
        (``tether.evaluation``) pairs with the tool calls and effects this task makes after
        it, until its next ``explain``."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("explain(text) needs a non-empty rationale string")
        info = {"text": text[:8000], "task_id": self.task_id, "calls": dict(self._calls)}
        kept = {**data, **info}
        self._emit("rationale", record_copy(kept) if serde.unstorable(kept) else kept, self.node)

    def _refused(self, key: str, kind: str, request: Any, exc: BaseException) -> None:
        """A ``call_refused`` event for a call governance stopped before its intent was
        recorded: its key and request (what the journal would have kept), why, and this task's
        call counts, so the mind log can place it among the journaled calls."""
        error = {"type": type(exc).__name__, "message": error_text(exc)}
        if isinstance(exc, EscalationSignal):
            error["kind"] = exc.kind
        data = {"key": key, "kind": kind, "request": request}
        data |= {"error": error, "task_id": self.task_id, "calls": dict(self._calls)}
        self._emit(REFUSED_EVENT, data, self.node)

    async def model_call_counted(self, key: str) -> bool:
        """Whether the run holds the ``model_call`` event of the journaled model call under
        ``key``: among this task's events waiting for the step's commit, else among those the
        store holds for this step (read once per run of the task, and only by a task that
        replays a model call: a resume, a retry, a run continued after a crash)."""
        if _counts_call(self._events, key, self.node):
            return True
        if self._committed_calls is None:
            self._committed_calls = await self._store.step_model_calls(self.run_id, self.step)
        return _counts_call(self._committed_calls, key, self.node)

    def calls_made(self) -> dict[str, int]:
        """How many journaled calls of each kind (``tool:search``...) this task made so far."""
        return dict(self._calls)

    # -- effect journal ------------------------------------------------------------------
    def call_key(self, kind: str) -> str:
        """Next deterministic key for a journaled call of ``kind`` made by this task.

        Keys are (run, step, task, kind, call index): a re-run of the task after a crash or a
        resume makes the same calls with the same keys, so journaled results are found again,
        and no two runs (forks and subgraph child runs included) share a key, so a service
        that dedupes on it (the default idempotency key) never drops another run's call.
        """
        i = self._calls.get(kind, 0)
        self._calls[kind] = i + 1
        return effect_key(self.run_id, self.task_id, i, kind)

    async def journaled(
        self,
        kind: str,
        request: Any,
        call: Callable[[], Awaitable[Any]],
        *,
        key: str | None = None,
        idempotent: bool = True,
        gate: Callable[[], Awaitable[None]] | None = None,
        replay_error: Callable[[dict[str, Any]], BaseException] | None = None,
    ) -> Any:
        """Run ``call`` at most once per key: intent before, result after.

        A recorded result is returned without calling again (no double billing). An intent with
        no result (the process died mid-call) is retried when ``idempotent``; otherwise the run
        escalates, because nobody knows whether the effect happened. A record of another kind
        of call (or of another tool) under the same key is refused (``IdempotencyConflictError``)
        rather than handed over as this call's result.

        A recorded failure (see ``_failure``) is raised again through ``replay_error`` (which
        rebuilds the error from its record) when the task runs again after a resume or a crash;
        a new attempt (the node's retry policy, a run retried after it failed) makes the call
        again, except a call that is not idempotent and may have taken effect before it failed
        (it timed out): the run escalates then, as for an intent without a result.

        Two tasks of this process reaching one key at once (keys derived from the arguments)
        make one call: the second waits for the first and gets its recorded outcome.

        ``gate`` (governance: a budget reservation, a policy, a loop guard) is awaited before
        a live call, before its intent is recorded, so a gate that stops the call (raises)
        leaves no intent behind; a replayed call is not gated. A call governance refused (a
        denial, a trip) leaves a ``call_refused`` event instead (``_refused``).
        """
        check_kept(kind, "journaled call kind", f"node {self.node!r}")
        if not key:
            key = self.call_key(kind)
        elif not isinstance(key, str):
            raise ValueError(f"journaled({kind!r}, key={key!r}): a key is a string")
        else:
            check_kept(key, "journal key", f"node {self.node!r}")
        if serde.unstorable(request) is not None:  # only then a copy: the store encodes it anyway
            request = self._journal_copy(key, kind, "request", request)
        # another task of this run making this very call (a key derived from the arguments)
        shared = await IN_FLIGHT.join(self.run_id, key)
        mine = IN_FLIGHT.claim(self.run_id, key)
        try:
            call_ = _Call(kind, key, request, idempotent, replay_error, shared)
            return await self._journaled(call_, call, gate)
        finally:
            IN_FLIGHT.release(self.run_id, key, mine)

    async def _journaled(
        self,
        c: _Call,
        call: Callable[[], Awaitable[Any]],
        gate: Callable[[], Awaitable[None]] | None,
    ) -> Any:
        key, kind, request = c.key, c.kind, c.request
        if gate is not None:
            seen = await self._seen(c)
            if seen is not None and (out := await self._recorded(seen, c)) is not _LIVE:
                return out
            try:
                await gate()
            except (EscalationSignal, PolicyViolationError) as exc:
                self._refused(key, kind, request, exc)
                raise
        if self._known is not None:  # before the write: a write that fails may have landed
            self._known.add(key)
        rec, created = await self._store.record_intent(self.run_id, key, kind, request, self._token)
        key_format = self.metadata.get(KEY_FORMAT_KEY)
        if (
            created
            and key_format != KEY_FORMAT
            and (legacy := legacy_effect_key(self.run_id, key, key_format)) is not None
        ):
            # a run started by an older tether recorded this call under the key it gave it
            # (without the run id, or a rule's key without its tool): the same call only
            old = await self._store.get_effect(self.run_id, legacy)
            if old is not None and old.kind == kind and _tool_of(old.request) == _tool_of(request):
                if old.status == "done":
                    await self._store.record_result(
                        self.run_id, key, result=old.result, token=self._token
                    )
                rec, created = old, False
        if not created and (out := await self._recorded(rec, c)) is not _LIVE:
            return out
        try:
            result = await call()
        except Exception as exc:
            unknown = {OUTCOME_UNKNOWN: True} if isinstance(exc, _UNKNOWN_OUTCOME) else {}
            await self._store.record_result(
                self.run_id, key, error=error_dict(exc, **unknown), token=self._token
            )
            self._failed.add(key)
            raise
        result = self._journal_copy(key, kind, "result", result)
        await self._store.record_result(self.run_id, key, result=result, token=self._token)
        return result

    async def _seen(self, c: _Call) -> EffectRecord | None:
        """The journal's record of ``c.key`` before a gated call. A key of this task's own
        calls (``call_key``: ``{run}:{task}:...``) is looked up only when the task's keys, read
        once at its first gated call (``TaskEffects``) plus those it recorded since, hold it: no
        other writer records under them while this task runs (the run's lease fences another
        process; a task shares a key only through ``IN_FLIGHT``, and then reads it)."""
        key = c.key
        if not c.shared and key.startswith(f"{self.run_id}:{self.task_id}:"):
            known = self._known
            if known is None and has_capability(self._store, TaskEffects):
                prefix = f"{self.run_id}:{self.task_id}:"
                known = await cast(TaskEffects, self._store).effect_keys(self.run_id, prefix)
                self._known = known = set(known)
            if known is not None and key not in known:
                return None
        return await self._store.get_effect(self.run_id, key)

    async def _recorded(self, rec: EffectRecord, c: _Call) -> Any:
        """What an existing record of ``c.key`` gives: its result (replayed), its failure
        (raised again), an escalation, or ``_LIVE``: make the call."""
        if rec.kind != c.kind or _tool_of(rec.request) != _tool_of(c.request):
            raise IdempotencyConflictError(
                f"journal key {c.key!r} of run {self.run_id} holds a {_what(rec.kind, rec.request)}"
                f" call, and a {_what(c.kind, c.request)} call asked for it: one key is one "
                "effect, so it would get the other call's result; give each effect a key of its "
                "own (an idempotency_key rule that names what it does, e.g. f'charge-{order}')"
            )
        if rec.status == "done":
            self._emit("effect_replayed", {"key": c.key, "kind": c.kind}, self.node)
            return rec.result
        if rec.status == "pending":
            if c.idempotent:
                return _LIVE
            raise EscalationSignal(
                f"effect {c.key!r} ({c.kind}) started and has no recorded result (its process "
                "stopped during the call, it was cancelled, or what it returned could not be "
                "journaled); it is not idempotent, so a human must say whether it happened: "
                "resume the run with {'result': <what it returned>} or {'retry': True}",
                kind="unknown_effect_outcome",
                key=c.key,
                effect_kind=c.kind,
            )
        return await self._failure(rec, c)

    async def _failure(self, rec: EffectRecord, c: _Call) -> Any:
        """A recorded failure. The same attempt of the task (re-run after an interrupt, a sleep,
        an escalation or a crash; or a call that shared another task's) gets it again; a new
        attempt (this node's retry policy, or the run retried after it failed) calls again,
        unless the call is not idempotent and may have taken effect (it escalates)."""
        error = rec.error or {}
        if error.get("type") == MANUAL_RETRY:  # resume(..., {"retry": True})
            return _LIVE
        same_attempt = c.shared or (c.key not in self._failed and not await self._failed_since(rec))
        if same_attempt and c.replay_error is not None:
            self._emit("effect_replayed", {"key": c.key, "kind": c.kind, "failed": True}, self.node)
            raise c.replay_error(error)
        if not c.idempotent and error.get(OUTCOME_UNKNOWN):
            raise EscalationSignal(
                f"effect {c.key!r} ({c.kind}) failed with {error.get('type')} "
                f"({error.get('message', '')}) after it may have taken effect; it is not "
                "idempotent, so it is not made again unasked: resume the run with "
                "{'result': <what it returned>} or {'retry': True}",
                kind="unknown_effect_outcome",
                key=c.key,
                effect_kind=c.kind,
            )
        return _LIVE

    async def _failed_since(self, rec: EffectRecord) -> bool:
        """Whether the run failed after ``rec`` was recorded (it was retried since)."""
        transitions = await self._store.list_transitions(self.run_id)
        return any(t.dst == RunStatus.FAILED and t.ts >= rec.updated_at for t in transitions)

    def _journal_copy(self, key: str, kind: str, part: str, value: Any) -> Any:
        """``value`` as the journal keeps it (``json_copy.journal_copy``): the node gets that
        copy back, live and on replay. What the journal cannot keep at all is refused; a
        result's intent then stays open, so the call is not made again unnoticed."""
        try:
            return journal_copy(value)
        except TypeError as exc:
            ran = (
                "; the call ran, and its intent stays open: a retry of this run makes the call "
                "again when it is idempotent and otherwise parks the run for a human to say "
                "what it returned"
                if part == "result"
                else "; the call was not made"
            )
            raise UnstorableValueError(
                f"{kind} call {key!r}: its {part} cannot be journaled ({exc}); return JSON-like "
                f"values (dict, list, str, numbers, bool, None; an integer beyond 64 bits as a "
                f"string){ran}",
                where=f"{kind} {part}",
            ) from None

    async def effect(
        self,
        name: str,
        fn: Callable[..., Any],
        *args: Any,
        idempotent: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Perform a side effect once, journaled under ``name``; calls with the same name in
        one node run are numbered in call order (a loop sending three emails sends three).

        ``fn`` may be sync or async. On a re-run (resume after an interrupt, crash recovery,
        retry) the recorded result comes back and ``fn`` is not called again.
        """
        key = self.call_key(f"effect:{name}")

        async def call() -> Any:
            out = fn(*args, **kwargs)
            if inspect.isawaitable(out):
                out = await out
            return out

        return await self.journaled("effect", {"name": name}, call, key=key, idempotent=idempotent)


_LIVE: Any = object()
"""``RunContext._recorded``: no record to give back, make the call."""

_UNKNOWN_OUTCOME = (TimeoutError, ToolTimeoutError, ModelTimeoutError)
"""Failures after which the call may have taken effect: it ran past its deadline."""


@dataclass(frozen=True, slots=True)
class _Call:
    kind: str
    key: str
    request: Any
    idempotent: bool
    replay_error: Callable[[dict[str, Any]], BaseException] | None
    shared: bool
    """It waited for another task's call under its key: that call's outcome is its own."""


def _counts_call(events: Iterable[Event], key: str, node: str) -> bool:
    """Whether ``events`` hold the ``model_call`` event of the answer of the journaled call
    ``key``: one carrying ``key`` and no error (a failed attempt's event does not stand for the
    answer a later attempt got). An event of a journaled call of ``node`` with no key at all
    was put by a tether that kept none: it stands for the node's replayed calls, as it did."""
    for e in events:
        if e.type != MODEL_CALL or "error" in e.data:
            continue
        got = e.data.get("key")
        if got == key or (got is None and e.node == node and e.data.get("journaled") is not False):
            return True
    return False


def _tool_of(request: Any) -> Any:
    return request.get("tool") if isinstance(request, Mapping) else None


def _what(kind: str, request: Any) -> str:
    tool = _tool_of(request)
    return f"{kind} {tool!r}" if tool is not None else kind


def error_dict(exc: BaseException, **extra: Any) -> dict[str, Any]:
    """What a run keeps of an error: always storable (text that is not UTF-8 scrubbed), so a
    failure is recorded whatever its message holds."""
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return {
        "type": type(exc).__name__,
        "message": error_text(exc),
        "traceback": scrub_text("".join(tb[-6:])[-4000:]),
        **(record_copy(extra) if extra else {}),
    }
