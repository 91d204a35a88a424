"""Control-flow provenance: a plan committed before untrusted content entered the run.

Value provenance (``provenance_index``) asks where an argument's *value* came from. It cannot
tell a legitimate write whose values come from a tool's output (pay the IBAN written in the
bill) from an injected one (the same file says "pay my IBAN instead"). What tells them apart is
*which content decided the call*. An agent that plans before it reads (plan-and-execute,
ReWOO, CaMeL) fixes its control flow from trusted content only: ``await commit_plan([...])``
records the calls it will make, each argument either fixed by the plan (a value the user's
request or the operator gave) or ``OPEN`` (to be filled from what the run reads).

The injection guard then reads a write or destructive call this way:

- the plan counts (is *trusted*) only when it was committed before any untrusted content
  entered the run; a plan made after reading (a re-plan) is itself derived from what was read;
- a call that matches a step of the trusted plan not yet used (same tool, each fixed argument
  equal, each ``Template`` argument of the planned shape) runs: its ``OPEN`` arguments may
  carry values from untrusted content (values flow, control does not); one the plan says
  comes from a step's result (``OPEN.from_step(i)``) must come from it; one without a source
  may not carry an identifier (a URL, an account) untrusted content gave; the arguments the
  step does not name are still checked by value provenance;
- once untrusted content entered the run, a call that matches no remaining step is
  *off-plan*: it escalates, whatever its values (untrusted content may have decided it).

Each step is used once (list a call twice to make it twice); a step is used when its call
completes, so a failed call can be retried. The plan is journaled, so it holds across resumes,
crashes and workers, and the used steps are read back from the run's effect journal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

from tether.core.errors import ConfigurationError
from tether.core.governor import governor_of
from tether.core.journal import current_journal

PLAN_KIND: Final = "plan"
"""The journal kind of a committed plan."""


@dataclass(frozen=True, slots=True)
class Open:
    """An argument the plan leaves open: filled from what the run reads. ``source`` names the
    plan step (its index) whose result fills it: then each string and number in it must come
    from that result (or from trusted content): a link read from the page the plan fetched
    may not go where the plan said the channel's link goes."""

    source: int | None = None

    def from_step(self, index: int) -> Open:
        """This open argument, filled from the result of plan step ``index`` only."""
        return Open(_step_index(index))

    def __repr__(self) -> str:
        return "OPEN" if self.source is None else f"OPEN.from_step({self.source})"


OPEN: Final = Open()
"""A plan argument left open (``PlannedCall("pay", {"iban": OPEN, "amount": 12})``)."""


@dataclass(frozen=True, slots=True)
class Template:
    """A string argument whose text the plan fixes around open slots: ``{}`` stands for one
    line of text, without any line break (``\r``, U+2028... as well as ``\n``):
    ``Template("Dinner at {}")``. ``source`` as for ``Open``."""

    pattern: str
    source: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.pattern, str):
            raise ConfigurationError(f"Template takes a string pattern, got {self.pattern!r}")
        if self.source is not None:
            _step_index(self.source)

    def matches(self, value: Any) -> bool:
        return isinstance(value, str) and _regex(self.pattern).fullmatch(value) is not None

    def slots(self, value: str) -> list[str]:
        """What fills each ``{}`` in ``value`` (which ``matches``)."""
        found = _regex(self.pattern).fullmatch(value)
        return list(found.groups()) if found is not None else []


_LINE = "([^\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]*)"
"""One slot: one line of text, ended by any line break a reader sees (``str.splitlines``)."""


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(_LINE.join(re.escape(part) for part in pattern.split("{}")))


def _step_index(index: Any) -> int:
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise ConfigurationError(f"a plan step index is an int >= 0, got {index!r}")
    return index


def _to_json(value: Any) -> Any:
    if isinstance(value, Open):
        return {"$open": True, "source": value.source}
    if isinstance(value, Template):
        return {"$template": value.pattern, "source": value.source}
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, Mapping) and value.get("$open") is True:
        return Open(value.get("source"))
    if isinstance(value, Mapping) and isinstance(value.get("$template"), str):
        return Template(value["$template"], value.get("source"))
    return value


@dataclass(frozen=True, slots=True)
class PlannedCall:
    """One call of a plan: the tool, and the arguments the plan fixes (a value), leaves
    ``OPEN`` or shapes (``Template``). Arguments the step does not name are checked by value
    provenance as without a plan."""

    tool: str
    args: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.tool, str) or not self.tool:
            raise ConfigurationError(f"PlannedCall needs a tool name, got {self.tool!r}")
        if not isinstance(self.args, Mapping) or not all(isinstance(k, str) for k in self.args):
            raise ConfigurationError(
                f"PlannedCall({self.tool!r}) args must be a mapping of argument names to "
                f"values, OPEN or Template(...), got {self.args!r}"
            )

    def fits(self, args: Mapping[str, Any]) -> bool:
        """Whether ``args`` fill this step: each fixed argument equal, each template matched."""
        for k, v in self.args.items():
            if isinstance(v, Open):
                continue
            if k not in args:
                return False
            if isinstance(v, Template):
                if not v.matches(args[k]):
                    return False
            elif canonical(args[k]) != canonical(v):
                return False
        return True

    def to_json(self) -> dict[str, Any]:
        return {"tool": self.tool, "args": {k: _to_json(v) for k, v in self.args.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlannedCall:
        args = data.get("args") or {}
        return cls(str(data["tool"]), {k: _from_json(v) for k, v in args.items()})


def canonical(value: Any) -> str:
    """A value as canonical JSON: key order does not matter, nor ``2200`` against ``2200.0``
    (a validated argument may come back as a float)."""
    return json.dumps(_numbers(value), sort_keys=True, default=str, separators=(",", ":"))


def _numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): _numbers(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_numbers(v) for v in value]
    return value


@dataclass(slots=True)
class PlanState:
    """A committed plan in one run: its steps, which are used (with their results)."""

    steps: list[PlannedCall]
    used: list[bool] = field(default_factory=list)
    results: dict[int, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.used = [False] * len(self.steps)

    def match(self, tool: str, args: Mapping[str, Any]) -> int | None:
        """The first unused step ``tool(args)`` fills, or None."""
        for i, step in enumerate(self.steps):
            if not self.used[i] and step.tool == tool and step.fits(args):
                return i
        return None

    def use(self, tool: str, args: Mapping[str, Any], result: Any) -> None:
        i = self.match(tool, args)
        if i is not None:
            self.used[i] = True
            self.results[i] = result

    def remaining(self) -> list[str]:
        return [s.tool for s, u in zip(self.steps, self.used, strict=True) if not u]


def _steps(calls: Iterable[PlannedCall | Mapping[str, Any]]) -> list[PlannedCall]:
    out = _items(calls)
    for i, step in enumerate(out):
        for name, slot in step.args.items():
            source = getattr(slot, "source", None)
            if source is not None and source >= i:
                raise ConfigurationError(
                    f"plan step {i} ({step.tool}): argument {name!r} comes from step {source}, "
                    "which does not run before it; a value comes from an earlier step"
                )
    return out


def _items(calls: Iterable[PlannedCall | Mapping[str, Any]]) -> list[PlannedCall]:
    out: list[PlannedCall] = []
    for c in calls:
        if isinstance(c, PlannedCall):
            out.append(c)
        elif isinstance(c, Mapping) and "tool" in c:
            out.append(PlannedCall(str(c["tool"]), dict(c.get("args") or {})))
        else:
            raise ConfigurationError(
                f"commit_plan takes PlannedCall(tool, args) or {{'tool': ..., 'args': ...}} "
                f"items, got {c!r}"
            )
    return out


async def commit_plan(calls: Sequence[PlannedCall | Mapping[str, Any]], *, ctx: Any = None) -> None:
    """Commit the calls this run will make (see the module). Journaled: a resumed run keeps its
    plan and does not commit it twice; a ``plan_committed`` event lists the steps' tools.
    Outside a run it only validates the plan."""
    steps = _steps(calls)
    ctx = ctx if ctx is not None else current_journal()
    if ctx is None:
        return
    request = {"steps": [s.to_json() for s in steps]}
    live: list[bool] = []

    async def give() -> dict[str, Any]:
        live.append(True)
        return request

    await ctx.journaled(PLAN_KIND, request, give)
    if not live:  # a replay: the guard reads the plan from the journal, in order
        return
    emit = getattr(ctx, "emit", None)
    if emit is not None:
        emit("plan_committed", {"steps": [s.tool for s in steps]})
    for part in getattr(governor_of(ctx), "parts", ()):
        guard = getattr(part, "guard", None)
        note = getattr(guard, "note_plan", None)
        if note is not None:
            note(ctx.run_id, steps)


def plan_steps(request: Any) -> list[PlannedCall]:
    """The steps of a journaled plan's request."""
    steps = request.get("steps") if isinstance(request, Mapping) else None
    return [PlannedCall.from_json(s) for s in steps or () if isinstance(s, Mapping)]
