// The step timeline: each committed step, the nodes that ran, the fields they wrote, how long
// it took.
import { h, setChildren } from "./dom.js";
import { absTime, duration } from "./format.js";

export function renderSteps(box, steps, run, { more = false, onSelect, onMore }) {
  const rows = steps.map((s, i) => {
    const written = [...new Set((s.writes || []).flatMap((w) => Object.keys((w && w.writes) || {})))];
    const prev = i > 0 ? steps[i - 1].created_at : run.created_at;
    return h(
      "div.step-row",
      { dataset: { step: String(s.step) }, onclick: () => onSelect(s.step), title: absTime(s.created_at) },
      h("span.n", `#${s.step}`),
      h(
        "span.nodes",
        s.nodes && s.nodes.length ? s.nodes.map((n) => h("span.chip", n)) : h("span.muted", "input"),
        written.length ? h("span.faint", ` → ${written.join(", ")}`) : null,
      ),
      h("span.faint", s.created_at && prev ? duration(s.created_at - prev) : ""),
    );
  });
  if (more) rows.push(h("div.list-foot", h("button.btn.small", { type: "button", onclick: onMore }, "More steps")));
  setChildren(box, rows.length ? rows : h("div.empty", "No step committed yet."));
}

/** Mark the selected step and scroll it into view inside the box (never the page). */
export function markSelectedStep(box, step) {
  for (const row of box.querySelectorAll(".step-row")) {
    const on = Number(row.dataset.step) === step;
    row.classList.toggle("selected", on);
    if (on) {
      const top = row.offsetTop - box.offsetTop;
      if (top < box.scrollTop) box.scrollTop = top;
      else if (top + row.offsetHeight > box.scrollTop + box.clientHeight) box.scrollTop = top + row.offsetHeight - box.clientHeight;
    }
  }
}
