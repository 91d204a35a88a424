// The runs list: filters (status, failures only, workflow, id search), newest first, live.
import { api, ApiError } from "./api.js";
import { h, setChildren, isTyping } from "./dom.js";
import { STATUSES, statusLabel } from "./format.js";
import { runsTable, fillRunRow } from "./runs_table.js";
import { navigate, setQuery } from "./router.js";
import { followRuns } from "./runs_live.js";
import { toast, toastError } from "./toast.js";

const PAGE = 50;
const ACTIVE = "PLANNED,EXECUTING,WAITING_FOR_TOOL,VALIDATING";

export function renderRunsPage(root, params) {
  const filters = {
    status: params.get("status") || "",
    failed: params.get("failed") === "1",
    workflow: params.get("workflow") || "",
    q: params.get("q") || "",
  };
  const runs = new Map(); // run_id -> summary
  const rows = new Map(); // run_id -> <tr>
  let order = []; // run ids, newest first
  let cursor = null;
  let selected = -1;
  let loadToken = 0;
  let workflowsLoaded = false;

  // -- controls ------------------------------------------------------------------------
  const statusSelect = h(
    "select#status-filter",
    { title: "Status", onchange: () => setFilter({ status: statusSelect.value }) },
    h("option", { value: "" }, "All statuses"),
    h("option", { value: ACTIVE }, "Running (any active status)"),
    STATUSES.map((s) => h("option", { value: s }, `${statusLabel(s)}${statusLabel(s) !== s ? ` (${s})` : ""}`)),
  );
  statusSelect.value = filters.status;
  const failedButton = h(
    "button.btn#failures-only",
    { type: "button", title: "Failures only (f)", "aria-pressed": String(filters.failed), onclick: () => setFilter({ failed: !filters.failed }) },
    "Failures only",
  );
  const workflowSelect = h(
    "select#workflow-filter",
    {
      title: "Workflow",
      onchange: () => setFilter({ workflow: workflowSelect.value }),
      onfocus: loadWorkflowNames,
      onmousedown: loadWorkflowNames,
    },
    h("option", { value: "" }, "All workflows"),
  );
  const search = h("input.search#run-search", {
    type: "search",
    placeholder: "Search run id…  /",
    value: filters.q,
    spellcheck: "false",
    oninput: () => {
      filters.q = search.value.trim();
      syncUrl();
      paint();
    },
    onkeydown: (e) => {
      if (e.key === "Enter") openSearched();
      if (e.key === "Escape") {
        search.value = "";
        filters.q = "";
        syncUrl();
        paint();
        search.blur();
      }
    },
  });
  const countLabel = h("span.muted#runs-count");
  const tbody = h("tbody");
  const emptyRow = h("div.empty#runs-empty", { hidden: true });
  const more = h("button.btn#load-more", { type: "button", hidden: true, onclick: () => load(true) }, "Load more");
  const table = runsTable(tbody);
  root.append(
    h(
      "div.page",
      h("div.page-title", h("h1", "Runs"), countLabel),
      h("div.filters", statusSelect, failedButton, workflowSelect, search, h("span.spacer"), h("span.faint", "j/k move · Enter open · f failures · / search")),
      h("div.card", h("div.table-wrap", table, emptyRow), h("div.list-foot", more)),
    ),
  );
  paintFilters();

  // -- data ----------------------------------------------------------------------------
  function query(extra = {}) {
    return {
      status: filters.status,
      workflow: filters.workflow,
      failed_only: filters.failed ? "true" : "",
      limit: PAGE,
      ...extra,
    };
  }

  async function load(next = false) {
    const token = ++loadToken;
    more.disabled = true;
    try {
      const page = await api.runs(query(next && cursor ? { cursor } : {}));
      if (token !== loadToken) return;
      if (!next) {
        runs.clear();
        order = [];
      }
      for (const run of page.items || []) {
        if (!runs.has(run.run_id)) order.push(run.run_id);
        runs.set(run.run_id, run);
      }
      cursor = page.next_cursor || null;
      for (const run of page.items || []) horizon = Math.max(horizon, run.updated_at || 0);
      addWorkflowOptions(order.map((id) => runs.get(id).workflow));
      paint();
      if (!loaded) {
        loaded = true;
        const early = backlog;
        backlog = [];
        early.forEach(onChange);
      }
    } catch (err) {
      if (token === loadToken) showError(err);
    } finally {
      more.disabled = false;
    }
  }

  function matches(run) {
    if (filters.status && !filters.status.split(",").includes(run.status)) return false;
    if (filters.failed && run.status !== "FAILED") return false;
    if (filters.workflow && run.workflow !== filters.workflow) return false;
    return true;
  }

  // The newest change the loaded page already reflects, on the server's clock: a change no
  // newer than this, of a run not in the list, belongs to an older page (the stream starts
  // with the 200 newest runs).
  let horizon = 0;
  let refetch = null;

  let loaded = false;
  let backlog = []; // changes streamed before the first page arrived

  function onChange(change) {
    if (!loaded) {
      backlog.push(change);
      return;
    }
    const known = runs.get(change.run_id);
    if (known) {
      const merged = { ...known, ...change };
      runs.set(change.run_id, merged);
      if (!matches(merged) && (filters.status || filters.failed)) {
        order = order.filter((id) => id !== change.run_id);
        paint();
      } else updateRow(merged);
      return;
    }
    if (change.status && !matches(change)) return;
    if ((change.updated_at || 0) <= horizon) return;
    if (change.created_at !== undefined && change.status && change.workflow) return insert(change);
    // A run this page has not seen: read the first page again (one request for a burst).
    if (!refetch) refetch = setTimeout(refreshFirstPage, 30);
  }

  async function refreshFirstPage() {
    try {
      const page = await api.runs(query());
      for (const run of page.items || []) {
        if (runs.has(run.run_id)) onChange(run);
        else if (!order.length || (run.created_at || 0) >= (runs.get(order[order.length - 1]).created_at || 0) || !cursor) insert(run);
      }
    } catch {
      /* the next change tries again */
    } finally {
      refetch = null;
    }
  }

  function insert(run) {
    if (runs.has(run.run_id)) return onChange(run);
    runs.set(run.run_id, run);
    const created = run.created_at || 0;
    let at = order.findIndex((id) => (runs.get(id).created_at || 0) < created);
    if (at < 0) at = order.length;
    order.splice(at, 0, run.run_id);
    addWorkflowOptions([run.workflow]);
    paint(new Set([run.run_id]));
  }

  // -- rendering -----------------------------------------------------------------------
  function visible() {
    const q = filters.q.toLowerCase();
    return q ? order.filter((id) => id.toLowerCase().includes(q) || (runs.get(id).thread_id || "").toLowerCase().includes(q)) : order;
  }

  function paint(fresh = new Set()) {
    const ids = visible();
    const trs = ids.map((id) => {
      let tr = rows.get(id);
      if (!tr) {
        tr = h("tr", { dataset: { runId: id }, onclick: (e) => open(id, e) });
        rows.set(id, tr);
        fill(tr, runs.get(id));
      }
      tr.classList.toggle("fresh", fresh.has(id));
      return tr;
    });
    for (const id of rows.keys()) if (!runs.has(id)) rows.delete(id);
    setChildren(tbody, trs);
    selected = Math.min(selected, ids.length - 1);
    markSelected();
    const n = ids.length;
    countLabel.textContent = `${n}${cursor ? "+" : ""} run${n === 1 ? "" : "s"}`;
    emptyRow.hidden = n > 0;
    emptyRow.textContent = filters.q
      ? `No loaded run matches “${filters.q}”. Press Enter to open it by id.`
      : filters.failed || filters.status || filters.workflow
        ? "No runs match these filters."
        : "No runs yet. Submit one with POST /v1/runs or `tether runs submit`.";
    more.hidden = !cursor;
  }

  function updateRow(run) {
    const tr = rows.get(run.run_id);
    if (tr) fill(tr, run);
  }

  function fill(tr, run) {
    fillRunRow(tr, run);
  }

  function markSelected() {
    const trs = tbody.children;
    for (let i = 0; i < trs.length; i++) trs[i].classList.toggle("selected", i === selected);
    if (selected >= 0 && trs[selected]) trs[selected].scrollIntoView({ block: "nearest" });
  }

  function open(id, e) {
    if (e && (e.metaKey || e.ctrlKey)) return;
    if (e) e.preventDefault();
    navigate(`/runs/${encodeURIComponent(id)}`);
  }

  async function openSearched() {
    const ids = visible();
    if (ids.length === 1) return open(ids[0]);
    if (!filters.q) return;
    try {
      const run = await api.run(filters.q);
      open(run.run_id);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) toast(`No run with id ${filters.q}`, "error");
      else toastError(err);
    }
  }

  function showError(err) {
    emptyRow.hidden = false;
    emptyRow.textContent = `Could not load runs: ${err.full || err.message}`;
  }

  function setFilter(change) {
    Object.assign(filters, change);
    horizon = 0;
    loaded = false;
    paintFilters();
    syncUrl();
    cursor = null;
    selected = -1;
    // at once, the rows shown match the new filters (the page read next adds the others)
    order = order.filter((id) => matches(runs.get(id)));
    paint();
    load();
  }

  function paintFilters() {
    statusSelect.value = filters.status;
    failedButton.classList.toggle("danger", filters.failed);
    failedButton.classList.toggle("on", filters.failed);
    failedButton.setAttribute("aria-pressed", String(filters.failed));
    if (filters.workflow) addWorkflowOptions([filters.workflow]);
    workflowSelect.value = filters.workflow;
  }

  function syncUrl() {
    setQuery({ status: filters.status, failed: filters.failed ? "1" : "", workflow: filters.workflow, q: filters.q });
  }

  function addWorkflowOptions(names) {
    const have = new Set([...workflowSelect.options].map((o) => o.value));
    for (const name of names) {
      if (name && !have.has(name)) {
        have.add(name);
        workflowSelect.append(h("option", { value: name }, name));
      }
    }
  }

  async function loadWorkflowNames() {
    if (workflowsLoaded) return;
    workflowsLoaded = true;
    try {
      const res = await api.workflows();
      addWorkflowOptions((res.items || []).map((w) => w.name));
    } catch {
      workflowsLoaded = false;
    }
  }

  // -- keyboard ------------------------------------------------------------------------
  function onKey(e) {
    if (e.metaKey || e.ctrlKey || e.altKey || document.querySelector("dialog[open]")) return;
    if (e.key === "/" && !isTyping(e)) {
      e.preventDefault();
      search.focus();
      search.select();
      return;
    }
    if (isTyping(e)) return;
    const n = tbody.children.length;
    if ((e.key === "j" || e.key === "ArrowDown") && n) {
      e.preventDefault();
      selected = Math.min(n - 1, selected + 1);
      markSelected();
    } else if ((e.key === "k" || e.key === "ArrowUp") && n) {
      e.preventDefault();
      selected = Math.max(0, selected - 1);
      markSelected();
    } else if (e.key === "Enter" && selected >= 0 && tbody.children[selected]) {
      open(tbody.children[selected].dataset.runId);
    } else if (e.key === "f") setFilter({ failed: !filters.failed });
  }
  document.addEventListener("keydown", onKey);

  // -- live ----------------------------------------------------------------------------
  const indicator = document.getElementById("live-indicator");
  load();
  const stop = followRuns({
    onChange,
    poll: async () => (await api.runs(query())).items || [],
    onMode(mode) {
      indicator.hidden = false;
      indicator.classList.toggle("polling", mode === "polling");
      indicator.classList.toggle("offline", mode === "offline");
      indicator.classList.toggle("forbidden", mode === "forbidden");
      indicator.title = {
        live: "live (server-sent events)",
        polling: "live (polling every second)",
        offline: "the server does not answer; retrying",
        forbidden: "no live updates: this API key may not read runs",
      }[mode];
    },
  });
  const clock = setInterval(() => {
    for (const id of visible()) updateRow(runs.get(id));
  }, 5000);

  return () => {
    stop();
    clearInterval(clock);
    indicator.hidden = true;
    document.removeEventListener("keydown", onKey);
  };
}
