// Cards for what a human must answer: an approval request (approve / reject, signed with the
// approver's key) and an interrupt (resume with a value).
import { api, post, ApiError } from "./api.js";
import { h } from "./dom.js";
import { jsonView } from "./json_view.js";
import { relTime, absTime, shortId } from "./format.js";
import { hasKey, loadKey, signDecision } from "./signing.js";
import { toast, toastError } from "./toast.js";

const APPROVER = "tether.approver";

function savedApprover() {
  try {
    return localStorage.getItem(APPROVER) || "";
  } catch {
    return "";
  }
}

/** approvalCard(approval, {onDone(approval), showRun}) -> element */
export function approvalCard(a, { onDone = () => {}, showRun = false } = {}) {
  const approver = h("input.approver", { type: "text", placeholder: "approver id", value: savedApprover(), "aria-label": "approver", autocomplete: "username" });
  const keyFile = h("input.key-file", { type: "file", accept: ".pem,.key,application/x-pem-file,text/plain", "aria-label": "approver key file" });
  const keyState = h("span.muted.key-state");
  const token = h("input.sig", { type: "text", placeholder: "or paste a signature token (ed25519:…)", "aria-label": "signature token", spellcheck: "false" });
  const reason = h("input.reason", { type: "text", placeholder: "reason (for a rejection)", "aria-label": "reason" });
  const error = h("div.error.approval-error", { role: "alert" });
  const approveBtn = h("button.btn.ok.approve", { type: "button" }, "Approve");
  const rejectBtn = h("button.btn.danger.reject", { type: "button" }, "Reject");
  const votes = a.votes || [];
  const open = a.status === "pending";

  const paintKey = () => {
    keyState.textContent = hasKey(approver.value.trim()) ? "key loaded ✓" : "";
  };
  approver.addEventListener("input", paintKey);
  keyFile.addEventListener("change", async () => {
    error.textContent = "";
    const file = keyFile.files && keyFile.files[0];
    const who = approver.value.trim();
    if (!file) return;
    if (!who) {
      error.textContent = "Enter the approver id first, then choose the key file.";
      keyFile.value = "";
      return;
    }
    try {
      await loadKey(who, await file.text());
      paintKey();
    } catch (err) {
      error.textContent = err.message;
    }
    keyFile.value = "";
  });

  async function decide(decision) {
    error.textContent = "";
    const who = approver.value.trim();
    if (!who) {
      error.textContent = "Enter your approver id (as registered with `tether approvals approver add`).";
      approver.focus();
      return;
    }
    approveBtn.disabled = rejectBtn.disabled = true;
    try {
      const signature = token.value.trim() || (await signDecision(a.approval_id, who, decision));
      try {
        localStorage.setItem(APPROVER, who);
      } catch {
        /* not remembered */
      }
      const body = decision === "approve" ? { approver: who, signature } : { approver: who, signature, reason: reason.value.trim() };
      const res = await (decision === "approve" ? api.approve(a.approval_id, body) : api.reject(a.approval_id, body));
      toast(`${decision === "approve" ? "Approved" : "Rejected"} ${res.tool || a.approval_id} (${res.status})`, "ok");
      onDone(res);
    } catch (err) {
      error.textContent = err instanceof ApiError ? err.full : err.message || String(err);
    } finally {
      approveBtn.disabled = rejectBtn.disabled = false;
    }
  }
  approveBtn.addEventListener("click", () => decide("approve"));
  rejectBtn.addEventListener("click", () => decide("reject"));
  paintKey();

  return h(
    "div.approval",
    { dataset: { approvalId: a.approval_id } },
    h(
      "div.head",
      h("span.status.s-wait", a.status),
      h("span.tool", a.tool || "(call)"),
      showRun ? h("a.mono", { href: `/runs/${encodeURIComponent(a.run_id)}` }, shortId(a.run_id)) : null,
      h("span.muted", `${votes.length}/${a.required_approvers} approval${a.required_approvers === 1 ? "" : "s"}`),
      a.deadline ? h("span.muted", { title: absTime(a.deadline) }, `deadline ${absTime(a.deadline)}`) : null,
      h("span.faint", { title: absTime(a.created_at) }, relTime(a.created_at)),
    ),
    a.reason ? h("div", a.reason) : null,
    h("div.args", jsonView(a.arguments, { open: 2 })),
    votes.length ? h("div.muted", "Votes: ", votes.map((v) => `${v.approver} (${v.role || "?"}) ${v.decision}`).join(", ")) : null,
    open
      ? h(
          "div.form",
          h("label.field", "Approver", approver),
          h("label.field", "Key file", keyFile),
          keyState,
          h("label.field", "Signature", token),
          h("label.field", "Reason", reason),
          approveBtn,
          rejectBtn,
        )
      : null,
    error,
  );
}

/** interruptCard(run, interrupt, {onDone}) -> element: the question and a value to resume with. */
export function interruptCard(run, interrupt, { onDone = () => {} } = {}) {
  const isObj = interrupt && typeof interrupt === "object";
  const payload = isObj && "payload" in interrupt ? interrupt.payload : isObj && "value" in interrupt ? interrupt.value : interrupt;
  const value = h("textarea.resume-value", { rows: 3, placeholder: 'the answer: JSON ("yes", {"ok": true}) or plain text', "aria-label": "resume value", spellcheck: "false" });
  const error = h("div.error", { role: "alert" });
  const button = h("button.btn.primary.resume", { type: "button" }, "Resume");
  button.addEventListener("click", async () => {
    error.textContent = "";
    const text = value.value.trim();
    let answer = text;
    try {
      answer = text === "" ? null : JSON.parse(text);
    } catch {
      /* plain text is sent as a string */
    }
    button.disabled = true;
    try {
      const body = { value: answer };
      if (interrupt && interrupt.id) body.interrupt_id = interrupt.id;
      const res = await post(`/v1/runs/${encodeURIComponent(run.run_id)}/resume`, body);
      toast(`Resumed ${shortId(run.run_id)} (${res.status})`, "ok");
      onDone(res);
    } catch (err) {
      error.textContent = err.full || err.message;
    } finally {
      button.disabled = false;
    }
  });
  value.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.metaKey || e.ctrlKey)) button.click();
  });
  return h(
    "div.notice.interrupt",
    h(
      "div.title",
      h("span.status.s-wait", "INTERRUPT"),
      isObj && interrupt.node ? h("span.chip", interrupt.node) : null,
      "The run asks:",
      isObj && interrupt.id ? h("span.faint.mono", interrupt.id) : null,
    ),
    h("div.args", jsonView(payload, { open: 3 })),
    h("div.row", value),
    h("div.row", button, h("span.faint", "Ctrl+Enter")),
    error,
  );
}
