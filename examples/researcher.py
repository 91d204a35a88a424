"""The multi-agent researcher: a supervisor sends a researcher back for more findings until it
has two reports or three iterations, then a writer asks a model to turn the reports into the
answer. Runs durably on SQLite, offline: the model is the bundled SmolLM2 (llama.cpp, in process)
unless ``TETHER_MODEL`` names another (``openai:gpt-4o-mini``...). Prints a live step trace from
the run's event stream, including the model call's tokens, latency and cost.

    python examples/researcher.py ["your question"]

Kill it at any point (Ctrl-C, or SIGKILL) and run it again with the same question: it picks up
the same run from its last checkpoint instead of starting over, and a model call that was already
answered is replayed from the effect journal, not paid for again. Inspect it afterwards with
``tether runs history <run id> --store sqlite:///.tether/demo.db``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated, Any, TypedDict

from rich.console import Console
from rich.table import Table

from tether import END, START, Graph, RunContext, Runtime, append
from tether.cli.render_usage import fmt_cost
from tether.core.serde import fingerprint
from tether.llm import model_from_spec

model = model_from_spec()  # local:smollm2 unless TETHER_MODEL says otherwise

STORE = "sqlite:///.tether/demo.db"

CORPUS = {
    "durable": "Checkpointing every step lets a crashed run resume where it stopped.",
    "journal": "An effect journal records intent before a call and its result after.",
    "lease": "Leases with fencing tokens keep two workers from writing the same run.",
    "budget": "A shared budget envelope caps tokens, cost and steps for a whole run tree.",
    "human": "Interrupts park a run until a person answers, holding no thread meanwhile.",
    "agents": "A supervisor coordinates specialist agents over a shared, typed state.",
}


class Research(TypedDict, total=False):
    question: str
    findings: Annotated[list[str], append]
    reports: Annotated[list[str], append]
    iterations: int
    answer: str


def supervisor(state: Research) -> dict[str, Any]:
    """Planner: counts what the team has; the route below decides whether to go on."""
    return {"iterations": state.get("iterations", 0) + 1}


def route(state: Research) -> str:
    if len(state.get("reports", [])) >= 2 or state.get("iterations", 0) > 3:
        return "writer"
    return "researcher"


async def researcher(state: Research, ctx: RunContext) -> dict[str, Any]:
    """Agent: looks up the next unread source relevant to the question (offline corpus)."""
    await asyncio.sleep(0.05)  # stands in for a model or search call
    seen = set(state.get("findings", []))
    words = state["question"].lower()
    ranked = sorted(CORPUS, key=lambda k: (k not in words, k))
    fresh = [CORPUS[k] for k in ranked if CORPUS[k] not in seen]
    if not fresh:
        return {}
    finding = fresh[0]
    ctx.emit("progress", {"finding": finding[:48] + "..."})
    update: dict[str, Any] = {"findings": [finding]}
    if any(k in words and CORPUS[k] == finding for k in CORPUS):
        update["reports"] = [f"Report {len(state.get('reports', [])) + 1}: {finding}"]
    return update


async def writer(state: Research) -> dict[str, Any]:
    """Validator: a model writes the answer from the reports (or the findings); the call is
    journaled, so a resumed run gets the same answer without asking again."""
    basis = [b.split(": ", 1)[-1] for b in state.get("reports") or state.get("findings", [])]
    out = await model.chat(
        [
            {"role": "system", "content": "Answer the question in one sentence from the notes."},
            {"role": "user", "content": f"Question: {state['question']}\nNotes: {' '.join(basis)}"},
        ],
        max_tokens=60,
        temperature=0.0,
        stream=True,
    )
    return {"answer": out.text.strip() or " ".join(basis)}


graph = Graph(Research, name="researcher")
graph.add_node("supervisor", supervisor, phase="planner")
graph.add_node("researcher", researcher)
graph.add_node("writer", writer, phase="validator")
graph.add_edge(START, "supervisor")
graph.add_conditional_edges("supervisor", route, ["researcher", "writer"])
graph.add_edge("researcher", "supervisor")
graph.add_edge("writer", END)
workflow = graph.compile()


async def main(question: str) -> None:
    console = Console()
    async with Runtime(STORE, workflows=[workflow], lease_ttl=2.0) as rt:
        key = f"demo-{fingerprint(question)[:12]}"
        handle = await rt.start(workflow, {"question": question}, idempotency_key=key)
        if handle.created:
            verb = "started"
        else:
            verb = f"found ({(await rt.get_run(handle.run_id)).status.value}), continuing"
        console.print(f"[bold]run {handle.run_id}[/] {verb} on {STORE}: {question!r}\n")
        async for ev in handle.events():
            if ev.type == "lifecycle":
                console.print(
                    f"  [magenta]{ev.data['from'] or '∅'} → {ev.data['to']}[/]"
                    f"  [dim]{ev.data.get('reason', '')}[/]"
                )
            elif ev.type == "node_finished":
                keys = ", ".join(sorted(ev.data.get("writes") or {})) or "-"
                console.print(f"  step {ev.step:>2}  [cyan]{ev.node:<10}[/] wrote {keys}")
            elif ev.type == "progress":
                console.print(f"           [dim]{ev.node}: {ev.data['finding']}[/]")
            elif ev.type == "model_call":
                d = ev.data
                console.print(
                    f"           [dim]{ev.node}: {d['model']} {d['input_tokens']} in / "
                    f"{d['output_tokens']} out tokens, {d['latency']:.2f} s "
                    f"(TTFT {d['ttft'] or 0:.2f} s), {fmt_cost(d['cost'] or 0)}[/]"
                )
        result = await handle.wait()
        table = Table(title=f"history of {result.run_id}", show_lines=False)
        for col in ("step", "tasks", "writes"):
            table.add_column(col)
        for info in await rt.history(result.run_id):
            writes = "; ".join(f"{w['node']}: {', '.join(w['writes'])}" for w in info.writes)
            table.add_row(str(info.step), ", ".join(info.tasks) or "(input)", writes)
        console.print()
        console.print(table)
        console.print(
            f"\n[bold green]{result.status.value}[/] after {result.step} steps, "
            f"{len(result.state.get('reports', []))} reports, "
            f"{result.state.get('iterations')} iterations"
        )
        console.print(f"[bold]answer:[/] {result.state.get('answer')}")
        console.print(f"\ninspect it: tether runs history {result.run_id} --store {STORE}")


if __name__ == "__main__":
    asyncio.run(main(" ".join(sys.argv[1:]) or "How do durable agents survive crashes?"))
