// Modal forms: fork a run from a step with a JSON patch; confirm a cancel.
import { h } from "./dom.js";

/** A <dialog> with a form; resolves with the value of submit(formData) or null when closed. */
function modal(title, fields, { submitLabel = "OK", danger = false, submit }) {
  return new Promise((resolve) => {
    const error = h("div.error", { role: "alert" });
    const ok = h(`button.btn.${danger ? "danger" : "primary"}`, { type: "submit", value: "ok" }, submitLabel);
    const form = h("form", { method: "dialog" }, h("h2", title), fields, error, h("div.buttons", h("button.btn.ghost", { type: "button", onclick: () => dialog.close() }, "Cancel"), ok));
    const dialog = h("dialog", form);
    let result = null;
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      ok.disabled = true;
      error.textContent = "";
      try {
        result = await submit();
        dialog.close();
      } catch (err) {
        error.textContent = err.full || err.message || String(err);
      } finally {
        ok.disabled = false;
      }
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(result);
    });
    document.body.append(dialog);
    dialog.showModal();
    const first = form.querySelector("input, textarea");
    if (first) first.focus();
  });
}

/** forkDialog(step, maxStep, doFork(step, patch)) -> Promise<new run | null> */
export function forkDialog(step, maxStep, doFork) {
  const stepInput = h("input#fork-step", { type: "text", inputmode: "numeric", value: String(step) });
  const patch = h("textarea#fork-patch", { rows: 8, spellcheck: "false", placeholder: '{"field": "new value"}  (optional: merged into the state at that step)' });
  return modal(
    "Fork this run",
    [
      h("p.muted", "Starts a new run from the state after a step, with an optional patch to that state. The new run is linked to this one as its parent."),
      h("label.field", `Step (0–${maxStep})`, stepInput),
      h("label.field", "State patch (JSON object)", patch),
    ],
    {
      submitLabel: "Fork",
      async submit() {
        const n = Number(stepInput.value.trim());
        if (!Number.isInteger(n) || n < 0 || n > maxStep) throw new Error(`The step must be a whole number from 0 to ${maxStep}.`);
        let body = null;
        const text = patch.value.trim();
        if (text) {
          try {
            body = JSON.parse(text);
          } catch (err) {
            throw new Error(`The patch is not valid JSON: ${err.message}`);
          }
          if (!body || typeof body !== "object" || Array.isArray(body)) throw new Error("The patch must be a JSON object: {\"field\": value}.");
        }
        return doFork(n, body);
      },
    },
  );
}

export function confirmDialog(title, text, label, action) {
  const reason = h("input#cancel-reason", { type: "text", placeholder: "reason (optional)" });
  return modal(title, [h("p.muted", text), h("label.field", "Reason", reason)], {
    submitLabel: label,
    danger: true,
    submit: () => action(reason.value.trim()),
  });
}
