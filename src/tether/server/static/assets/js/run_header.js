// A run's header (status, id, workflow, times, lineage, actions) and its usage figures.
import { h, setChildren } from "./dom.js";
import { FINISHED, absTime, cost, count, duration, shortId, statusClass, statusLabel } from "./format.js";
import { toast } from "./toast.js";

export function renderHeader(head, stats, run, { onFork, onCancel }) {
  const end = FINISHED.has(run.status) ? run.updated_at : Date.now() / 1000;
  const actions = h("div.actions");
  actions.append(h("button.btn#fork-button", { type: "button", onclick: onFork }, "Fork…"));
  if (!FINISHED.has(run.status)) actions.append(h("button.btn.danger#cancel-button", { type: "button", onclick: onCancel }, "Cancel"));
  const copy = () => navigator.clipboard && navigator.clipboard.writeText(run.run_id).then(() => toast("Run id copied"));
  actions.append(h("button.btn.ghost", { type: "button", title: "Copy the run id", onclick: copy }, "Copy id"));
  setChildren(
    head,
    h(`span.status.${statusClass(run.status)}#run-status`, { title: run.status, dataset: { status: run.status } }, statusLabel(run.status)),
    h("h1", run.run_id),
    h(
      "div.meta",
      h("span", "workflow ", h("b", run.workflow)),
      h("span", { title: absTime(run.created_at) }, "started ", h("b", absTime(run.created_at))),
      h("span", "duration ", h("b", duration(end - run.created_at))),
      run.parent_run_id ? h("span", "forked from ", h("a.mono", { href: `/runs/${encodeURIComponent(run.parent_run_id)}` }, shortId(run.parent_run_id))) : null,
      run.thread_id ? h("span", "thread ", h("b.mono", run.thread_id)) : null,
      run.queue && run.queue !== "default" ? h("span", "queue ", h("b", run.queue)) : null,
    ),
    actions,
  );
  const u = run.usage || {};
  const stat = (label, value, id) => h("div.stat", h("div.label", label), h("div.value", { id }, value));
  setChildren(
    stats,
    stat("Step", String(run.step), "stat-step"),
    stat("Phase", run.phase || "–", "stat-phase"),
    stat("Input tokens", count(u.input_tokens), "stat-in"),
    stat("Output tokens", count(u.output_tokens), "stat-out"),
    stat("Cost", cost(u.cost), "stat-cost"),
    stat("Model / tool calls", `${count(u.model_calls)} / ${count(u.tool_calls)}`, "stat-calls"),
  );
}
