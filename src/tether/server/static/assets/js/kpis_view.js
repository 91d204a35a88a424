// The KPI figures of a report (GET /v1/kpis): the overall tiles, one table row per workflow
// and the time spent in each lifecycle phase. Every figure carries its raw value in
// data-value (empty when the API says null: a KPI whose denominator is 0).
import { h, setChildren } from "./dom.js";
import { cost, count, duration, statusClass, statusLabel } from "./format.js";

export function percent(x) {
  if (x === null || x === undefined) return "–";
  return `${Math.round(x * 1000) / 10}%`;
}

function times(x) {
  return x === null || x === undefined ? "–" : x.toFixed(2);
}

// [key in the report, label, formatter, what it measures]
export const KPIS = [
  ["runs", "Runs", count, "runs created in the period"],
  ["completed", "Completed", count, "runs that reached COMPLETED"],
  ["failed", "Failed", count, "runs that ended FAILED"],
  ["escalation_rate", "Escalation rate", percent, "runs that escalated at least once, of all runs"],
  ["plan_fidelity", "Plan fidelity", percent, "planned steps that were executed, of the steps planned (record_plan)"],
  ["tool_utility", "Tool utility", percent, "tool calls whose observation was used in a later decision, of all tool calls"],
  ["thought_to_action", "Thought : action", times, "model calls per tool call"],
  ["tokens_per_completed_task", "Tokens / task", count, "tokens of every run per completed run"],
  ["cost_per_completed_task", "Cost / task", cost, "cost of every run per completed run"],
  ["validation_failure_rate", "Validation failures", percent, "validations that sent the run back, escalated or failed it"],
  ["tool_argument_failure_rate", "Tool argument errors", percent, "tool calls refused for invalid arguments"],
  ["latency_p50", "Latency p50", duration, "median seconds from RECEIVED to the final state (finished runs)"],
  ["latency_p95", "Latency p95", duration, "95th percentile of the same"],
];

function raw(value) {
  return value === null || value === undefined ? "" : String(value);
}

/** The overall tiles of a summary. */
export function fillStats(el, summary) {
  setChildren(
    el,
    KPIS.map(([key, label, fmt, help]) =>
      h(
        "div.stat",
        { title: help, dataset: { kpi: key, value: raw(summary[key]) } },
        h("div.label", label),
        h("div.value", fmt(summary[key])),
      ),
    ),
  );
}

export function kpiTable(tbody) {
  return h(
    "table.runs-table.kpi-table#kpi-table",
    h("thead", h("tr", h("th", "Workflow"), KPIS.map(([key, label, , help]) => h("th.num", { title: help, dataset: { kpi: key } }, label)))),
    tbody,
  );
}

/** One row per workflow of the report, by name. */
export function fillTable(tbody, workflows) {
  setChildren(
    tbody,
    Object.values(workflows).map((w) =>
      h(
        "tr",
        { dataset: { workflow: w.workflow } },
        h("td", { title: w.workflow }, h("a", { href: `/runs?workflow=${encodeURIComponent(w.workflow)}`, title: `the runs of ${w.workflow}` }, w.workflow)),
        KPIS.map(([key, , fmt]) => h("td.num", { dataset: { kpi: key, value: raw(w[key]) } }, fmt(w[key]))),
      ),
    ),
  );
}

/** Seconds spent in each lifecycle phase, with each phase's share of the total. */
export function fillPhases(el, phases) {
  const rows = Object.entries(phases || {}).sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((sum, [, s]) => sum + s, 0);
  if (!rows.length) {
    setChildren(el, h("div.empty", "No lifecycle transitions in these runs yet."));
    return;
  }
  setChildren(
    el,
    rows.map(([phase, secs]) => {
      const share = total > 0 ? secs / total : 0;
      const fill = h("span.fill");
      fill.style.width = `${(share * 100).toFixed(1)}%`; // CSSOM: the CSP forbids style attributes
      return h(
        "div.phase-row",
        { dataset: { phase, value: String(secs) } },
        h(`span.status.${statusClass(phase)}`, { title: phase }, statusLabel(phase)),
        h("span.bar", fill),
        h("span.num", duration(secs)),
        h("span.num.muted", percent(share)),
      );
    }),
  );
}
