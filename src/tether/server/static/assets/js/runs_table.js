// The runs table: its columns and one row per run.
import { h, setChildren } from "./dom.js";
import { FINISHED, absTime, cost, count, duration, relTime, statusClass, statusLabel } from "./format.js";

const COLUMNS = [
  ["status", "Status", ""],
  ["run", "Run", ""],
  ["workflow", "Workflow", ""],
  ["step", "Step", "num"],
  ["tokens", "Tokens", "num"],
  ["cost", "Cost", "num"],
  ["created", "Created", ""],
  ["duration", "Duration", "num"],
];

export function runsTable(tbody) {
  return h(
    "table.runs-table#runs-table",
    h("colgroup", COLUMNS.map(([c]) => h(`col.c-${c}`))),
    h("thead", h("tr", COLUMNS.map(([, label, cls]) => h(cls ? `th.${cls}` : "th", label)))),
    tbody,
  );
}

export function fillRunRow(tr, run) {
  const usage = run.usage || {};
  const tokens = usage.input_tokens !== undefined ? (usage.input_tokens || 0) + (usage.output_tokens || 0) : null;
  const end = FINISHED.has(run.status) ? run.updated_at : Date.now() / 1000;
  setChildren(
    tr,
    h("td", h(`span.status.${statusClass(run.status)}`, { title: run.status }, statusLabel(run.status))),
    h(
      "td.id",
      { title: run.parent_run_id ? `${run.run_id}, from ${run.parent_run_id}` : run.run_id },
      run.parent_run_id ? h("span.lineage", { title: `forked from or a child of ${run.parent_run_id}` }, "↳ ") : null,
      h("a", { href: `/runs/${encodeURIComponent(run.run_id)}`, tabindex: "-1" }, run.run_id),
    ),
    h("td", { title: run.workflow }, run.workflow),
    h("td.num", run.step ?? "–"),
    h("td.num", count(tokens)),
    h("td.num", usage.cost !== undefined ? cost(usage.cost) : "–"),
    h("td", { title: absTime(run.created_at), dataset: { ts: run.created_at || "" } }, relTime(run.created_at)),
    h("td.num", run.created_at ? duration(end - run.created_at) : "–"),
  );
  tr.dataset.status = run.status;
}
