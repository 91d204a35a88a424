// Agent KPIs per workflow and period (GET /v1/kpis): a period and a workflow to pick (kept in
// the URL), the overall figures, one row per workflow, and the time in each lifecycle phase.
// KPIs aggregate every tenant's runs, so the API needs the admin scope: a key without it gets
// a 403, shown as what to do about it.
import { api, ApiError } from "./api.js";
import { h, setChildren } from "./dom.js";
import { absTime, count } from "./format.js";
import { setQuery } from "./router.js";
import { fillPhases, fillStats, fillTable, kpiTable } from "./kpis_view.js";

export const PERIODS = [
  ["1h", "Last hour", 3600],
  ["24h", "24 hours", 86400],
  ["7d", "7 days", 7 * 86400],
  ["30d", "30 days", 30 * 86400],
  ["all", "All time", null],
];
const MAX_RUNS = 10000; // the most runs one GET /v1/kpis aggregates (newest first)

export function renderKpisPage(root, params) {
  const filters = {
    period: PERIODS.some(([p]) => p === params.get("period")) ? params.get("period") : "24h",
    workflow: params.get("workflow") || "",
  };
  let loadToken = 0;
  let closed = false;

  const seg = h(
    "div.seg#kpi-period",
    { role: "group", "aria-label": "Period" },
    PERIODS.map(([p, label]) => h("button", { type: "button", dataset: { period: p }, onclick: () => setFilter({ period: p }) }, label)),
  );
  const workflowSelect = h("select#kpi-workflow", { title: "Workflow", onchange: () => setFilter({ workflow: workflowSelect.value }) }, h("option", { value: "" }, "All workflows"));
  const refresh = h("button.btn#kpi-refresh", { type: "button", title: "Compute again", onclick: () => load() }, "Refresh");
  const summary = h("span.muted#kpis-count");
  const message = h("div#kpis-message");
  const stats = h("div.stats.kpi-stats#kpi-overall");
  const tbody = h("tbody");
  const phases = h("div.card-body#kpi-phases");
  const body = h(
    "div#kpis-body",
    { hidden: true },
    stats,
    h("div.card", h("div.card-head", "Per workflow"), h("div.table-wrap", kpiTable(tbody))),
    h("div.card.kpi-phases-card", h("div.card-head", "Time in each lifecycle phase", h("span.right.faint", "summed over the runs")), phases),
  );
  const page = h("div.page#kpis-page", h("div.page-title", h("h1", "KPIs"), summary), h("div.filters", seg, workflowSelect, refresh, h("span.spacer"), h("span.faint", "ratios pooled over the runs · – : nothing to divide by")), message, body);
  root.append(page);
  paintFilters();
  loadWorkflowNames();

  function since() {
    const secs = PERIODS.find(([p]) => p === filters.period)[2];
    return secs === null ? undefined : Math.floor(Date.now() / 1000 - secs);
  }

  async function load() {
    const token = ++loadToken;
    refresh.disabled = true;
    if (body.hidden) setChildren(message, h("div.empty", "Computing KPIs…"));
    try {
      const report = await api.kpis({ workflow: filters.workflow, since: since() });
      if (closed || token !== loadToken) return;
      show(report);
    } catch (err) {
      if (!closed && token === loadToken) showError(err);
    } finally {
      if (token === loadToken) refresh.disabled = false;
    }
  }

  function show(report) {
    const overall = report.overall || {};
    const workflows = report.workflows || {};
    page.dataset.since = report.since ?? "";
    addWorkflowOptions(Object.keys(workflows));
    const n = overall.runs || 0;
    const when = report.since ? `created since ${absTime(report.since)}` : "created so far";
    summary.textContent = `${count(n)} run${n === 1 ? "" : "s"} ${when}${n >= MAX_RUNS ? ` (the newest ${count(MAX_RUNS)})` : ""}`;
    if (!n) {
      body.hidden = true;
      const scope = filters.workflow ? ` of ${filters.workflow}` : "";
      setChildren(message, h("div.empty#kpis-empty", `No runs${scope} were created in this period. Pick a longer period, or submit runs first.`));
      return;
    }
    setChildren(message);
    fillStats(stats, overall);
    fillTable(tbody, workflows);
    fillPhases(phases, overall.phase_seconds);
    body.hidden = false;
  }

  function showError(err) {
    body.hidden = true;
    summary.textContent = "";
    if (err instanceof ApiError && err.status === 403) {
      setChildren(
        message,
        h(
          "div.notice.fail#kpis-forbidden",
          h("div.title", "KPIs need an admin key"),
          h("div", "KPIs aggregate the runs of every tenant, so GET /v1/kpis needs an API key with the admin scope; the key in use has not got it."),
          h("div.muted", "Enter an admin key with the key button in the top bar (make one with ", h("code", "tether keys create --tenant NAME --scopes read,admin"), ")."),
        ),
      );
      return;
    }
    setChildren(message, h("div.notice.fail#kpis-error", h("div.title", "Could not load KPIs"), h("div", err.full || err.message), h("div.row", h("button.btn", { type: "button", onclick: () => load() }, "Try again"))));
  }

  function setFilter(change) {
    Object.assign(filters, change);
    paintFilters();
    setQuery({ period: filters.period === "24h" ? "" : filters.period, workflow: filters.workflow });
    load();
  }

  function paintFilters() {
    for (const b of seg.children) {
      b.classList.toggle("on", b.dataset.period === filters.period);
      b.setAttribute("aria-pressed", String(b.dataset.period === filters.period));
    }
    if (filters.workflow) addWorkflowOptions([filters.workflow]);
    workflowSelect.value = filters.workflow;
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
    try {
      const res = await api.workflows();
      if (!closed) addWorkflowOptions((res.items || []).map((w) => w.name));
    } catch {
      /* the names in the report still fill the filter */
    }
  }

  load();
  return () => {
    closed = true;
  };
}
