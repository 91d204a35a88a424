"""Printing: rich tables and colour for people, JSON for machines, one red line for errors.

Everything that comes from a run (ids, payloads, state, messages) is printed as ``Text``, never
as rich markup, so brackets in user data are shown as they are.
"""

from __future__ import annotations

import codecs
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import Enum
from typing import Any

from rich import box
from rich.console import Console, RenderableType
from rich.json import JSON
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from tether.cli.commands import CancelView, ForkView, HistoryView, ResumeView, RunView
from tether.cli.fit_table import Column, fitted_table
from tether.cli.render_usage import latency_text, usage_json, usage_text
from tether.core.lifecycle import RunStatus
from tether.graph.results import StepInfo
from tether.store.types import RunRecord

STATUS_STYLES: dict[RunStatus, str] = {
    RunStatus.RECEIVED: "bright_black",
    RunStatus.PLANNED: "blue",
    RunStatus.EXECUTING: "cyan",
    RunStatus.WAITING_FOR_TOOL: "cyan",
    RunStatus.VALIDATING: "cyan",
    RunStatus.COMPLETED: "green",
    RunStatus.ESCALATED: "bold yellow",
    RunStatus.FAILED: "bold red",
    RunStatus.CANCELLED: "magenta",
}

_WIDE = 200
"""Console width when stdout is not a terminal and COLUMNS is unset: never wrap run ids."""


def jsonable(obj: Any) -> Any:
    """Records (dataclasses), enums and containers as plain JSON values; a float JSON cannot
    write (NaN, an infinity) is null, so ``--json`` output is always strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Enum):
        return obj.value
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [jsonable(v) for v in obj]
    return obj


def compact(value: Any, limit: int = 0) -> str:
    """One-line JSON of a value (``limit`` > 0 truncates with an ellipsis)."""
    try:
        text = json.dumps(jsonable(value), ensure_ascii=False, separators=(", ", ": "), default=str)
    except (TypeError, ValueError):
        text = repr(value)
    if limit and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def fmt_time(ts: float | None, *, ms: bool = False) -> str:
    """Local time; ``ms`` adds milliseconds (steps often land within one second)."""
    if not ts:
        return "-"
    text = datetime.fromtimestamp(ts).strftime(
        "%Y-%m-%d %H:%M:%S.%f" if ms else "%Y-%m-%d %H:%M:%S"
    )
    return text[:-3] if ms else text


def status_text(status: RunStatus | str | None) -> Text:
    if status is None:
        return Text("-", style="dim")
    st = RunStatus(status)
    return Text(st.value, style=STATUS_STYLES.get(st, ""))


def one_line(message: str) -> str:
    return " ".join(message.split())


def is_utf8(stream: Any) -> bool:
    """Whether ``stream`` writes UTF-8 (a stream without an encoding, such as a test's capture,
    takes any text)."""
    encoding = getattr(stream, "encoding", None)
    return not encoding or codecs.lookup(encoding).name == "utf-8"


def tolerate_encoding(*streams: Any) -> None:
    """Text a stream's encoding cannot hold (a state value with '…' or '✓' on a Latin-1
    terminal, PYTHONIOENCODING=ascii) is written as '?' instead of failing the command with
    UnicodeEncodeError after part of its output."""
    for stream in streams:
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and not is_utf8(stream) and stream.errors == "strict":
            reconfigure(errors="replace")


class Output:
    """Where and how a command prints: ``json_mode`` writes JSON to stdout instead of tables."""

    def __init__(self, *, json_mode: bool = False, color: bool = True) -> None:
        self.json_mode = json_mode
        # NO_COLOR (https://no-color.org) is --no-color: rich alone keeps bold and dim for it
        color = color and not os.environ.get("NO_COLOR")
        width = None
        if not sys.stdout.isatty() and not os.environ.get("COLUMNS"):
            width = _WIDE
        self.out = Console(
            color_system="auto" if color else None, highlight=False, width=width, soft_wrap=False
        )
        self.err = Console(
            stderr=True, color_system="auto" if color else None, highlight=False, soft_wrap=True
        )
        utf = (self.out.encoding or "").lower().startswith("utf")
        self.arrow = "→" if utf else "->"

    # -- primitives -------------------------------------------------------------------------
    def emit_json(self, data: Any) -> None:
        # on a stdout that is not UTF-8 (a Latin-1 terminal, PYTHONIOENCODING=ascii) every
        # non-ASCII character is a \u escape: the JSON stays exact, never replaced by '?'
        ascii_only = not is_utf8(sys.stdout)
        text = json.dumps(
            jsonable(data), indent=2, ensure_ascii=ascii_only, default=str, allow_nan=False
        )
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def print(self, *renderables: RenderableType | str) -> None:
        """Print to stdout without the trailing blanks rich pads table cells with."""
        with self.out.capture() as cap:
            self.out.print(*renderables)
        lines = cap.get().splitlines()
        self.out.file.write("".join(line.rstrip(" ") + "\n" for line in lines))
        self.out.file.flush()

    def error(self, message: str) -> None:
        self.err.print(Text(f"error: {one_line(message)}", style="bold red"))

    def warning(self, message: str) -> None:
        self.err.print(Text(f"warning: {one_line(message)}", style="yellow"))

    def traceback(self, text: str) -> None:
        self.err.print(Text(text.rstrip("\n"), style="dim"))

    # -- version ----------------------------------------------------------------------------
    def version(
        self,
        version: str,
        *,
        server: tuple[str, str | None] | None = None,
        server_error: str | None = None,
    ) -> None:
        """This tether's version; with ``server`` (its URL and the version it reported, None
        when it reported none) the server's too."""
        if self.json_mode:
            data: dict[str, Any] = {"name": "tether", "version": version}
            if server is not None:
                data["server"] = {"url": server[0], "version": server[1]}
                if server_error is not None:
                    data["server"]["error"] = server_error
            self.emit_json(data)
            return
        self.print(Text(f"tether {version}"))
        if server is None or server_error is not None:
            return
        url, theirs = server
        if theirs is None:
            self.print(Text(f"server {url}: version unknown (it does not report one)"))
        else:
            self.print(Text(f"server {theirs} ({url})"))

    # -- runs list --------------------------------------------------------------------------
    def runs(self, runs: list[RunRecord]) -> None:
        if self.json_mode:
            self.emit_json(runs)
            return
        if not runs:
            self.err.print(Text("no runs match", style="dim"))
            return
        parents = [
            Text(r.parent_run_id or "-", style="" if r.parent_run_id else "dim") for r in runs
        ]
        columns = [
            Column("RUN ID", [Text(r.run_id) for r in runs]),
            Column("WORKFLOW", [Text(r.workflow) for r in runs], drop=5),
            Column("STATUS", [status_text(r.status) for r in runs]),
            Column("STEP", [str(r.step) for r in runs], drop=3, options={"justify": "right"}),
            Column("CREATED", [fmt_time(r.created_at) for r in runs], drop=4),
            Column("UPDATED", [fmt_time(r.updated_at) for r in runs], drop=2),
            Column("PARENT", parents, drop=1),
        ]
        self.print(fitted_table(columns, self.out.width))

    # -- runs show --------------------------------------------------------------------------
    def run(self, view: RunView) -> None:
        if self.json_mode:
            self.emit_json(
                {
                    "run": view.run,
                    "step": view.step,
                    "state": view.state,
                    "state_error": view.state_error,
                    "forks": [
                        {"run_id": f.run_id, "status": f.status, "parent_step": f.parent_step}
                        for f in view.forks
                    ],
                    "model_usage": None if view.usage is None else usage_json(view.usage, jsonable),
                }
            )
            return
        r = view.run
        self.print(Text.assemble(("run ", "bold"), (r.run_id, "bold"), "  ", status_text(r.status)))
        rows = self._run_fields(r, view.forks, view.now)
        if view.usage is not None:
            rows.append(("models", usage_text(view.usage)))
            rows.append(("model time", latency_text(view.usage)))
        self.print(self._fields(rows))
        esc = r.escalation
        if esc and r.status is RunStatus.ESCALATED:
            interrupts = list(esc.get("interrupts") or [])
            if interrupts:
                table = Table(
                    box=box.SIMPLE_HEAD,
                    show_edge=False,
                    pad_edge=False,
                    title="pending interrupts",
                    title_justify="left",
                    title_style="bold yellow",
                )
                table.add_column("ID", no_wrap=True)
                table.add_column("NODE")
                table.add_column("PAYLOAD", overflow="fold")
                for item in interrupts:
                    table.add_row(
                        Text(str(item.get("id", "?"))),
                        Text(str(item.get("node", "?"))),
                        Text(compact(item.get("payload"))),
                    )
                self.print("")
                self.print(table)
                hint = (
                    f"go on with: tether runs resume {r.run_id}"
                    if esc.get("kind") == "breakpoint"
                    else f"answer with: tether runs resume {r.run_id} --value JSON"
                    + ("" if len(interrupts) == 1 else " (or --answer ID=JSON for each)")
                )
                self.print(Text(hint, style="dim"))
        if r.error and r.error.get("traceback"):
            self.print("")
            self.print(Text("node traceback", style="bold"))
            self.print(
                Padding(
                    Text(str(r.error["traceback"]).rstrip(), style="dim"),
                    (0, 0, 0, 2),
                    expand=False,
                )
            )
        self.print("")
        self.print(Text(f"state after step {view.step}", style="bold"))
        if view.state is not None:
            self.print(Padding(self._json(view.state), (0, 0, 0, 2), expand=False))
        else:
            self.print(
                Padding(
                    Text(f"unavailable: {view.state_error}", style="yellow"),
                    (0, 0, 0, 2),
                    expand=False,
                )
            )

    def _run_fields(
        self, r: RunRecord, forks: list[RunRecord], now: float | None
    ) -> list[tuple[str, Text]]:
        rows: list[tuple[str, Text]] = []
        ref = r.metadata.get("workflow_ref")
        wf = Text(r.workflow)
        if ref:
            wf.append(f"  ({ref})", style="dim")
        rows.append(("workflow", wf))
        rows.append(("status", status_text(r.status)))
        limit = r.metadata.get("step_limit")
        rows.append(("step", Text(f"{r.step}" + (f"  (limit {limit})" if limit else ""))))
        rows.append(("created", Text(fmt_time(r.created_at))))
        rows.append(("updated", Text(fmt_time(r.updated_at))))
        if r.parent_run_id:
            rows.append(("parent", Text(f"{r.parent_run_id} at step {r.parent_step}")))
            patch = (r.metadata.get("fork") or {}).get("patch")
            if patch:
                rows.append(("fork patch", Text(compact(patch, 200))))
        if forks:
            t = Text()
            for i, f in enumerate(forks):
                if i:
                    t.append(", ")
                t.append(f"{f.run_id} ")
                t.append_text(status_text(f.status))
                t.append(f" @{f.parent_step}", style="dim")
            rows.append(("forks", t))
        rows.append(("lease", self._lease(r, time.time() if now is None else now)))
        if r.idempotency_key:
            rows.append(("idempotency", Text(r.idempotency_key)))
        rows.append(("input", Text(compact(r.input, 300))))
        if r.escalation:
            esc = r.escalation
            t = Text(str(esc.get("reason") or "-"), style="yellow")
            extra = [f"kind {esc.get('kind')}"] if esc.get("kind") else []
            if esc.get("step") is not None:
                extra.append(f"step {esc['step']}")
            if extra:
                t.append(f"  ({', '.join(extra)})", style="dim")
            rows.append(("escalation", t))
        if r.error:
            err = r.error
            t = Text(f"{err.get('type', 'Error')}: {err.get('message', '')}", style="red")
            where = [f"{k} {err[k]}" for k in ("node", "step", "attempts") if err.get(k)]
            if where:
                t.append(f"  ({', '.join(where)})", style="dim")
            rows.append(("error", t))
        if r.result is not None:
            rows.append(("result", Text(compact(r.result, 300))))
        return rows

    def _lease(self, r: RunRecord, now: float) -> Text:
        """The lease, its expiry compared with ``now`` in the store's time (the database
        server's on PostgreSQL, which wrote it), not this host's."""
        if not r.owner:
            return Text("none", style="dim")
        t = Text(f"{r.owner} (token {r.lease_token})")
        if r.lease_expires_at:
            left = r.lease_expires_at - now
            if left > 0:
                t.append(f", expires {fmt_time(r.lease_expires_at)} (in {left:.0f}s)")
            else:
                t.append(f", expired {fmt_time(r.lease_expires_at)}", style="yellow")
        return t

    def _fields(self, rows: Iterable[tuple[str, Text]]) -> Table:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(overflow="fold")
        for key, value in rows:
            grid.add_row(Text(f"  {key}"), value)
        return grid

    def _json(self, data: Any) -> RenderableType:
        text = json.dumps(jsonable(data), indent=2, ensure_ascii=False, default=str)
        if self.out.no_color or self.out.color_system is None:
            return Text(text)
        return JSON(text)

    # -- runs history -----------------------------------------------------------------------
    def history(self, view: HistoryView) -> None:
        names = _task_names(view.steps)
        if self.json_mode:
            self.emit_json(
                {
                    "run_id": view.run.run_id,
                    "status": view.run.status,
                    "steps": [self._step_json(s, names) for s in view.steps],
                    "next_after": view.next_after,
                    "transitions": view.transitions,
                }
            )
            return
        r = view.run
        self.print(Text.assemble(("run ", "bold"), (r.run_id, "bold"), "  ", status_text(r.status)))
        steps = Table(
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
            title="steps",
            title_justify="left",
            title_style="bold",
        )
        steps.add_column("STEP", justify="right")
        steps.add_column("TIME", no_wrap=True)
        steps.add_column("TASKS")
        steps.add_column("WROTE")
        steps.add_column("NEXT")
        steps.add_column("SNAP")
        steps.add_column("NOTE", overflow="fold")
        for s in view.steps:
            steps.add_row(
                str(s.step),
                fmt_time(s.created_at, ms=True),
                Text(", ".join(_counted(_nodes(s, names))) or "-"),
                Text(", ".join(_written(s)) or "-"),
                Text(", ".join(_counted([t.get("node", "?") for t in s.next_tasks])) or "-"),
                Text("yes" if s.snapshot else "", style="cyan"),
                Text(_note(s), style="dim"),
            )
        self.print(steps)
        if view.next_after is not None:
            self.print(
                Text(
                    f"more steps: tether runs history {r.run_id} --after {view.next_after}",
                    style="dim",
                )
            )
        trs = Table(
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
            title="lifecycle",
            title_justify="left",
            title_style="bold",
        )
        trs.add_column("#", justify="right")
        trs.add_column("TIME", no_wrap=True)
        trs.add_column("FROM", no_wrap=True)
        trs.add_column("")
        trs.add_column("TO", no_wrap=True)
        trs.add_column("ACTOR")
        trs.add_column("REASON", overflow="fold")
        for t in view.transitions:
            trs.add_row(
                str(t.seq),
                fmt_time(t.ts, ms=True),
                status_text(t.src),
                self.arrow,
                status_text(t.dst),
                Text(t.actor),
                Text(t.reason),
            )
        self.print("")
        self.print(trs)

    @staticmethod
    def _step_json(s: StepInfo, names: Mapping[str, str]) -> dict[str, Any]:
        data: dict[str, Any] = jsonable(s)
        data["nodes"] = _nodes(s, names)
        data["written_keys"] = _written(s)
        data["next_nodes"] = [t.get("node") for t in s.next_tasks]
        return data

    # -- resume / fork / cancel -------------------------------------------------------------
    def resumed(self, view: ResumeView) -> None:
        r = view.run
        if self.json_mode:
            self.emit_json(
                {
                    "run_id": r.run_id,
                    "previous_status": view.before,
                    "status": r.status,
                    "waited": view.waited,
                    "run": r,
                    "state": view.state,
                }
            )
            return
        t = Text.assemble(
            ("resumed ", "bold"),
            r.run_id,
            "  ",
            status_text(view.before),
            f" {self.arrow} ",
            status_text(r.status),
            f"  (step {r.step})",
        )
        self.print(t)
        if not view.waited:
            self._left_for_workers(r)
        self._outcome(r)

    def _left_for_workers(self, r: RunRecord) -> None:
        self.print(
            Text(
                "left for workers: any runtime with recover=True that knows the "
                f"workflow {r.workflow!r} will execute it",
                style="dim",
            )
        )

    def forked(self, view: ForkView) -> None:
        r = view.run
        if self.json_mode:
            self.emit_json(
                {
                    "run_id": r.run_id,
                    "parent_run_id": view.parent_run_id,
                    "parent_step": view.parent_step,
                    "status": r.status,
                    "waited": view.waited,
                    "run": r,
                    "state": view.state,
                }
            )
            return
        self.print(Text(r.run_id))
        self.print(
            Text.assemble(
                ("forked ", "dim"),
                (view.parent_run_id, "dim"),
                (f" at step {view.parent_step}; ", "dim"),
                status_text(r.status),
                (f"  (step {r.step})", "dim"),
            )
        )
        if not view.waited:
            self._left_for_workers(r)
        self._outcome(r)

    def cancelled(self, view: CancelView) -> None:
        r = view.run
        if self.json_mode:
            self.emit_json(
                {"run_id": r.run_id, "previous_status": view.before, "status": r.status, "run": r}
            )
            return
        self.print(
            Text.assemble(
                ("cancelled ", "bold"),
                r.run_id,
                "  ",
                status_text(view.before),
                f" {self.arrow} ",
                status_text(r.status),
            )
        )

    def _outcome(self, r: RunRecord) -> None:
        if r.status is RunStatus.ESCALATED and r.escalation:
            self.print(Text(f"  {r.escalation.get('reason', '')}", style="yellow"))
            for item in r.escalation.get("interrupts") or []:
                self.print(
                    Text.assemble(
                        f"  interrupt {item.get('id')}: ",
                        (compact(item.get("payload"), 200), "dim"),
                    )
                )
        elif r.status is RunStatus.FAILED and r.error:
            err = r.error
            self.print(Text(f"  {err.get('type', 'Error')}: {err.get('message', '')}", style="red"))


def _task_names(steps: Iterable[StepInfo]) -> dict[str, str]:
    """Task id -> node name, from what the steps planned and wrote."""
    names: dict[str, str] = {}
    for s in steps:
        for t in s.next_tasks:
            if "id" in t and "node" in t:
                names[str(t["id"])] = str(t["node"])
        for w in s.writes:
            if "task_id" in w and "node" in w:
                names[str(w["task_id"])] = str(w["node"])
    return names


def _nodes(s: StepInfo, names: Mapping[str, str]) -> list[str]:
    """The nodes a step ran (``StepInfo.tasks`` holds task ids; a task may write nothing)."""
    return [names.get(t, t) for t in s.tasks]


def _written(s: StepInfo) -> list[str]:
    keys: list[str] = []
    for w in s.writes:
        for k in w.get("writes") or {}:
            if k not in keys:
                keys.append(str(k))
    return keys


def _counted(names: list[str]) -> list[str]:
    """``["a", "b", "b"]`` -> ``["a", "b x2"]`` (fan-out shown once with a count)."""
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    return [n if c == 1 else f"{n} x{c}" for n, c in counts.items()]


def _note(s: StepInfo) -> str:
    return ", ".join(
        f"{k}={compact(v, 60) if not isinstance(v, str) else v}" for k, v in s.meta.items()
    )
