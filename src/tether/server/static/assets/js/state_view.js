// Time travel: the state after a chosen step (read from the server, cached per step) as a
// tree, or the diff against the step before it.
import { api } from "./api.js";
import { h, setChildren } from "./dom.js";
import { jsonView } from "./json_view.js";
import { diff } from "./diff.js";
import { preview, visible } from "./format.js";

/** stateView(run, {onFork(step)}) -> {el, diffEl, show(step, steps)} */
export function stateView(run, { onFork = () => {} } = {}) {
  const cache = new Map(); // step -> Promise<state>
  if (run.state && typeof run.step === "number") cache.set(run.step, Promise.resolve(run.state));
  const stateBody = h("div.state-tree#state-tree");
  const diffBody = h("div.diff#state-diff");
  const stateBar = h("div.state-bar");
  const diffBar = h("div.state-bar");
  let token = 0;

  const at = (step) => {
    if (step < 0) return Promise.resolve({});
    if (!cache.has(step)) {
      const p = api.state(run.run_id, step).then((r) => r.state);
      p.catch(() => cache.delete(step));
      cache.set(step, p);
    }
    return cache.get(step);
  };

  async function show(step, writes = []) {
    const mine = ++token;
    const fork = h("button.btn.small#fork-from-step", { type: "button", title: "Fork a new run from this step" }, `Fork from step ${step}`);
    fork.addEventListener("click", () => onFork(step));
    setChildren(stateBar, h("b", `State after step ${step}`), h("span.spacer"), fork);
    setChildren(diffBar, h("b", `Step ${step - 1 < 0 ? "input" : step - 1} → ${step}`), h("span.muted", writes.length ? `written: ${[...new Set(writes)].join(", ")}` : ""));
    try {
      const [before, after] = await Promise.all([at(step - 1), at(step)]);
      if (mine !== token) return;
      setChildren(stateBody, jsonView(after, { open: 2 }));
      const changes = diff(before, after);
      setChildren(
        diffBody,
        changes.length
          ? changes.map((c) =>
              h(
                `div.d-row.${c.op}`,
                h("span", c.op === "add" ? "+" : c.op === "del" ? "−" : "~"),
                h("span.path", visible(c.path)),
                h(
                  "span.val",
                  c.op === "chg" ? [h("span.old", preview(c.old, 400)), h("span.arrow", " → "), preview(c.new, 400)] : c.op === "add" ? preview(c.new, 800) : h("span.old", preview(c.old, 800)),
                ),
              ),
            )
          : h("div.empty", "This step changed nothing in the state."),
      );
    } catch (err) {
      if (mine !== token) return;
      const msg = h("div.empty", `Could not read the state at step ${step}: ${err.full || err.message}`);
      setChildren(stateBody, msg);
      setChildren(diffBody, msg.cloneNode(true));
    }
  }

  return {
    stateEl: h("div.panel-body#state-panel", stateBar, stateBody),
    diffEl: h("div.panel-body#diff-panel", diffBar, diffBody),
    show,
  };
}
