// One run: header and actions, usage, what it waits for, the graph, the steps, the state at
// each step (and its diff), the events, the input and result. Live while the run is not done.
import { api } from "./api.js";
import { h, setChildren, isTyping } from "./dom.js";
import { FINISHED, shortId } from "./format.js";
import { drawGraph, trail } from "./graph_view.js";
import { stateView } from "./state_view.js";
import { eventsView } from "./events_view.js";
import { jsonView } from "./json_view.js";
import { approvalCard, interruptCard } from "./approvals.js";
import { forkDialog, confirmDialog } from "./dialogs.js";
import { renderHeader } from "./run_header.js";
import { renderSteps, markSelectedStep } from "./steps_view.js";
import { navigate, setQuery } from "./router.js";
import { toast, toastError } from "./toast.js";

let workflowsOnce = null;

/** The registered workflows by name (read once per page load). */
export function workflowsByName() {
  if (!workflowsOnce) {
    workflowsOnce = api.workflows().then((r) => new Map((r.items || []).map((w) => [w.name, w])));
    workflowsOnce.catch(() => (workflowsOnce = null));
  }
  return workflowsOnce;
}

const TABS = ["state", "diff", "events", "io"];
const TAB_LABELS = { state: "State", diff: "Diff", events: "Events", io: "Input & result" };

export function renderRunPage(root, runId, params) {
  const page = h("div.page.run-page");
  root.append(page);
  let run = null;
  let steps = [];
  let stepsCursor = null;
  let selectedStep = null;
  let graph = null;
  let graphSpec = null;
  let tab = TABS.includes(params.get("tab")) ? params.get("tab") : "state";
  let events = null;
  let state = null;
  let refreshTimer = null;
  let pollTimer = null;
  let closed = false;
  let fitGraph = null;
  let preloaded = null; // the pending approvals read with the run
  let streaming = false; // the run's event stream is up (it drives the refreshes)

  setChildren(page, h("div.run-head", h("h1", runId), h("span.muted", "loading…")));

  // -- loading -------------------------------------------------------------------------
  // One round of requests, all at once; the pending approvals come with them so the page is
  // drawn whole (nothing pushed down when they arrive).
  const pendingApprovals = api.approvals({ status: "pending", run_id: runId }).catch(() => null);
  Promise.all([api.run(runId), api.history(runId, { limit: 500 }), workflowsByName().catch(() => new Map()), pendingApprovals])
    .then(([r, hist, wfs, approvals]) => {
      if (closed) return;
      run = r;
      preloaded = approvals;
      steps = hist.items || [];
      stepsCursor = hist.next_cursor || null;
      graphSpec = (wfs.get(run.workflow) || {}).graph || null;
      build();
    })
    .catch((err) => {
      if (closed) return;
      setChildren(page, h("div.run-head", h("h1", runId)), h("div.notice.fail", h("div.title", err.status === 404 ? "No such run" : "Could not load the run"), h("div", err.full || err.message)));
    });

  async function refresh() {
    refreshTimer = null;
    try {
      const [r, hist] = await Promise.all([api.run(runId), moreSteps()]);
      if (closed) return;
      const statusChanged = !run || r.status !== run.status || r.step !== run.step;
      const followLatest = selectedStep === null || selectedStep === lastStep();
      run = r;
      if (hist) mergeSteps(hist);
      paintHead();
      paintAttention();
      paintTimeline();
      paintIo();
      if (statusChanged && followLatest) selectStep(lastStep(), { quiet: true });
      paintGraph();
      if (FINISHED.has(run.status)) stopPolling();
    } catch {
      /* the next change tries again */
    }
  }

  function soon() {
    if (!refreshTimer && !closed) refreshTimer = setTimeout(refresh, 120);
  }

  async function moreSteps() {
    const after = steps.length ? steps[steps.length - 1].step : -1;
    const res = await api.history(runId, { limit: 500 });
    const fresh = (res.items || []).filter((s) => s.step > after);
    return fresh.length || !steps.length ? res : null;
  }

  function mergeSteps(hist) {
    const have = new Set(steps.map((s) => s.step));
    for (const s of hist.items || []) if (!have.has(s.step)) steps.push(s);
    steps.sort((a, b) => a.step - b.step);
  }

  const lastStep = () => (steps.length ? steps[steps.length - 1].step : run ? run.step : 0);

  // -- layout --------------------------------------------------------------------------
  const head = h("div.run-head#run-head");
  const stats = h("div.stats#run-stats");
  const attention = h("div.attention#attention");
  const graphBox = h("div.graph-box#graph");
  const timeline = h("div.timeline#timeline", { tabindex: "0", "aria-label": "steps" });
  const tabBar = h("div.tabs", { role: "tablist" });
  const tabTools = h("div.right");
  const panels = h("div.panels");
  const io = h("div.panel-body#io-panel");

  function build() {
    state = stateView(run, { onFork: fork });
    events = eventsView(run, {
      live: !FINISHED.has(run.status),
      onLive: soon,
      onStream: (state) => {
        streaming = state === "open";
        if (state === "ended") soon();
      },
    });
    for (const t of TABS) {
      tabBar.append(h("button", { type: "button", role: "tab", dataset: { tab: t }, onclick: () => setTab(t) }, TAB_LABELS[t]));
    }
    tabBar.append(tabTools);
    setChildren(panels, state.stateEl, state.diffEl, events.el, io);
    setChildren(
      page,
      head,
      stats,
      attention,
      h(
        "div.detail-grid",
        h(
          "div.col",
          h("div.card", h("div.card-head", "Graph", h("span.right.muted", legend())), graphBox),
          h("div.card", h("div.card-head", "Steps", h("span.right.muted#steps-count")), timeline),
        ),
        h("div.col", h("div.card", tabBar, panels)),
      ),
    );
    if (graphSpec) {
      graph = drawGraph(graphSpec, (node) => {
        const s = [...steps].reverse().find((x) => (x.nodes || []).includes(node));
        if (s) selectStep(s.step);
      });
      graphBox.append(graph.el);
      fitGraph = new ResizeObserver(() => {
        const { width, height } = graph.layout;
        const scale = Math.max(0.45, Math.min(1, (graphBox.clientWidth - 16) / width, (graphBox.clientHeight - 16) / height));
        graph.el.setAttribute("width", String(Math.round(width * scale)));
        graph.el.setAttribute("height", String(Math.round(height * scale)));
      });
      fitGraph.observe(graphBox);
    } else graphBox.append(h("div.empty", `The workflow ${run.workflow} is not registered in this server, so its graph is unknown.`));
    paintHead();
    paintAttention();
    paintTimeline();
    paintIo();
    selectStep(lastStep(), { quiet: true });
    setTab(tab);
    if (!FINISHED.has(run.status)) startPolling();
  }

  function legend() {
    return [h("span.lg.lg-run", "running"), h("span.lg.lg-wait", "waiting"), h("span.lg.lg-fail", "failed"), h("span.lg.lg-ok", "ran"), h("span.lg.lg-cond", "conditional")];
  }

  function paintHead() {
    renderHeader(head, stats, run, { onFork: () => fork(selectedStep ?? lastStep()), onCancel: cancel });
  }


  let attentionKey = "";
  function paintAttention() {
    drawAttention().catch(() => {});
  }

  async function drawAttention() {
    const esc = run.escalation || {};
    const key = `${run.status}:${run.step}:${run.updated_at}`;
    if (key === attentionKey) return;
    attentionKey = key;
    const items = [];
    if (run.status === "FAILED" && run.error) {
      items.push(h("div.notice.fail#run-error", h("div.title", h("span.status.s-fail", "FAILED"), run.error.message || run.error.type || "The run failed"), jsonView(run.error, { open: 1 })));
    }
    if (run.status === "ESCALATED") {
      if (esc.kind === "approval") {
        try {
          const res = preloaded || (await api.approvals({ status: "pending", run_id: run.run_id }));
          preloaded = null;
          if (closed || key !== attentionKey) return;
          for (const a of (res.items || []).filter((x) => x.run_id === run.run_id)) items.push(approvalCard(a, { onDone: soon }));
        } catch (err) {
          items.push(h("div.notice", `Could not read the approvals: ${err.full || err.message}`));
        }
      }
      for (const intr of esc.interrupts || []) items.push(interruptCard(run, intr, { onDone: soon }));
      if (esc.kind && esc.kind !== "approval" && esc.kind !== "interrupt" && !(esc.interrupts || []).length) {
        items.push(
          h("div.notice", h("div.title", h("span.status.s-wait", "ESCALATED"), `${esc.kind}: ${esc.reason || ""}`), jsonView(esc, { open: 1 })),
          interruptCard(run, { value: esc.reason || esc.kind }, { onDone: soon }),
        );
      }
    }
    setChildren(attention, items);
  }

  function paintTimeline() {
    renderSteps(timeline, steps, run, { more: Boolean(stepsCursor), onSelect: selectStep, onMore: loadMoreSteps });
    const label = document.getElementById("steps-count");
    if (label) label.textContent = `${steps.length}${stepsCursor ? "+" : ""}`;
    markStep();
  }

  async function loadMoreSteps() {
    try {
      const res = await api.history(runId, { limit: 500, cursor: stepsCursor });
      stepsCursor = res.next_cursor || null;
      mergeSteps(res);
      paintTimeline();
    } catch (err) {
      toastError(err);
    }
  }

  function markStep() {
    markSelectedStep(timeline, selectedStep);
  }

  function selectStep(step, { quiet = false } = {}) {
    selectedStep = step;
    markStep();
    const s = steps.find((x) => x.step === step);
    const writes = s ? (s.writes || []).flatMap((w) => Object.keys((w && w.writes) || {})) : [];
    state.show(step, writes);
    paintGraph();
    if (!quiet && tab !== "state" && tab !== "diff") setTab("state");
  }

  function paintGraph() {
    if (!graph) return;
    const finished = FINISHED.has(run.status);
    const { visited, taken } = trail(steps, graphSpec, { completed: run.status === "COMPLETED" });
    const sel = steps.find((x) => x.step === selectedStep);
    const current = finished ? [] : run.current_nodes || [];
    const failedAt = run.status === "FAILED" ? failedNodes() : [];
    graph.update({ current: failedAt.length ? failedAt : current, status: run.status, visited, taken, selected: new Set(sel ? sel.nodes : []) });
  }

  /** Where a failed run stopped: the error's node, else the nodes after its last step. */
  function failedNodes() {
    const err = run.error || {};
    if (err.node) return [err.node];
    if (run.current_nodes && run.current_nodes.length) return run.current_nodes;
    const edges = graphSpec ? graphSpec.edges : [];
    const last = steps.length ? steps[steps.length - 1].nodes || [] : [];
    const from = last.length ? last : ["__start__"];
    return [...new Set(edges.filter((e) => from.includes(e.source) && e.target !== "__end__").map((e) => e.target))];
  }

  function paintIo() {
    setChildren(
      io,
      h("div.state-bar", h("b", "Input")),
      jsonView(run.input, { open: 2 }),
      h("div.state-bar", h("b", "Result")),
      run.result === null || run.result === undefined ? h("div.empty", FINISHED.has(run.status) ? "No result." : "Not finished yet.") : jsonView(run.result, { open: 2 }),
      run.metadata && Object.keys(run.metadata).length ? [h("div.state-bar", h("b", "Metadata")), jsonView(run.metadata, { open: 1 })] : null,
    );
  }

  function setTab(t) {
    tab = t;
    for (const b of tabBar.querySelectorAll("button[data-tab]")) {
      b.classList.toggle("on", b.dataset.tab === t);
      b.setAttribute("aria-selected", String(b.dataset.tab === t));
    }
    state.stateEl.hidden = t !== "state";
    state.diffEl.hidden = t !== "diff";
    events.el.hidden = t !== "events";
    io.hidden = t !== "io";
    setChildren(tabTools, t === "events" ? events.tools : null);
    setQuery({ tab: t === "state" ? "" : t });
    if (t === "events") events.focus();
  }

  // -- actions -------------------------------------------------------------------------
  async function fork(step) {
    const created = await forkDialog(step, lastStep(), (n, patch) => api.fork(runId, n, patch));
    if (created) {
      toast(`Forked as ${shortId(created.run_id)}`, "ok");
      navigate(`/runs/${encodeURIComponent(created.run_id)}`);
    }
  }

  async function cancel() {
    const done = await confirmDialog("Cancel this run?", "The run stops where it is; its state, history and events are kept.", "Cancel run", (reason) => api.cancel(runId, reason));
    if (done) {
      toast("Run cancelled", "ok");
      soon();
    }
  }

  // -- live ----------------------------------------------------------------------------
  function startPolling() {
    // The events stream drives refreshes; this slow poll only covers a stream that is down
    // (and a run parked on a person, whose stream stays quiet until it is answered elsewhere).
    let ticks = 0;
    pollTimer = setInterval(() => {
      ticks += 1;
      if (!document.hidden && (!streaming || ticks % 5 === 0)) soon();
    }, 2000);
  }

  function stopPolling() {
    if (pollTimer) clearInterval(pollTimer);
    pollTimer = null;
  }

  function onKey(e) {
    if (e.metaKey || e.ctrlKey || e.altKey || isTyping(e) || !run || document.querySelector("dialog[open]")) return;
    const i = steps.findIndex((s) => s.step === selectedStep);
    const inEvents = e.target instanceof Element && e.target.closest("#events-panel");
    if ((e.key === "[" || (e.key === "k" && !inEvents)) && i > 0) selectStep(steps[i - 1].step);
    else if ((e.key === "]" || (e.key === "j" && !inEvents)) && i >= 0 && i < steps.length - 1) selectStep(steps[i + 1].step);
    else if (["1", "2", "3", "4"].includes(e.key)) setTab(TABS[Number(e.key) - 1]);
    else if (e.key === "Escape") navigate("/runs");
  }
  document.addEventListener("keydown", onKey);

  return () => {
    closed = true;
    stopPolling();
    if (refreshTimer) clearTimeout(refreshTimer);
    if (events) events.destroy();
    if (fitGraph) fitGraph.disconnect();
    document.removeEventListener("keydown", onKey);
  };
}
