// Everything waiting for a person: pending approval requests and runs parked on an interrupt.
import { api } from "./api.js";
import { h, setChildren } from "./dom.js";
import { approvalCard, interruptCard } from "./approvals.js";
import { shortId, relTime, absTime } from "./format.js";

export function renderApprovalsPage(root) {
  const approvals = h("div.approvals-list#approvals-list");
  const interrupts = h("div.approvals-list#interrupts-list");
  const decided = h("div.approvals-list#decided-list");
  let closed = false;
  let shown = ""; // what the cards show: redrawn only when it changes (typing is never wiped)
  root.append(
    h(
      "div.page",
      h("div.page-title", h("h1", "Approvals"), h("span.muted", "requests and questions waiting for a person")),
      h("div.section-title", "Pending approvals"),
      approvals,
      h("div.section-title", "Runs waiting for an answer"),
      interrupts,
      h("div.section-title", "Recently decided"),
      decided,
    ),
  );

  async function load() {
    try {
      const [pending, waiting, done] = await Promise.all([
        api.approvals({ status: "pending" }),
        api.interrupts(),
        Promise.all(["approved", "rejected"].map((s) => api.approvals({ status: s }).catch(() => ({ items: [] })))),
      ]);
      if (closed) return;
      const items = pending.items || [];
      const ints = waiting.items || [];
      const past = done.flatMap((r) => r.items || []).sort((a, b) => b.updated_at - a.updated_at).slice(0, 20);
      const key = JSON.stringify([items.map((a) => [a.approval_id, a.votes.length]), ints.map((i) => [i.run_id, i.step]), past.map((a) => a.approval_id)]);
      if (key === shown) return;
      shown = key;
      setChildren(approvals, items.length ? items.map((a) => approvalCard(a, { showRun: true, onDone: load })) : h("div.empty", "No approval request is pending."));
      setChildren(
        interrupts,
        ints.length
          ? ints.map((it) =>
              h(
                "div.approval",
                h("div.head", h("a.mono", { href: `/runs/${encodeURIComponent(it.run_id)}` }, shortId(it.run_id)), h("span.chip", it.workflow), h("span.muted", `step ${it.step}`), h("span.faint", { title: absTime(it.created_at) }, relTime(it.created_at))),
                interruptCard({ run_id: it.run_id }, it.interrupt, { onDone: load }),
              ),
            )
          : h("div.empty", "No run is waiting for an answer."),
      );
      setChildren(
        decided,
        past.length
          ? past.map((a) =>
              h(
                "div.approval",
                h(
                  "div.head",
                  h(`span.status.${a.status === "approved" ? "s-ok" : "s-fail"}`, a.status),
                  h("span.tool", a.tool || ""),
                  h("a.mono", { href: `/runs/${encodeURIComponent(a.run_id)}` }, shortId(a.run_id)),
                  h("span.muted", (a.votes || []).map((v) => `${v.approver}: ${v.decision}`).join(", ")),
                  h("span.faint", { title: absTime(a.updated_at) }, relTime(a.updated_at)),
                ),
              ),
            )
          : h("div.empty", "Nothing decided yet."),
      );
    } catch (err) {
      if (!closed) setChildren(approvals, h("div.empty", `Could not load approvals: ${err.full || err.message}`));
    }
  }

  load();
  const timer = setInterval(() => !document.hidden && load(), 5000);
  return () => {
    closed = true;
    clearInterval(timer);
  };
}
