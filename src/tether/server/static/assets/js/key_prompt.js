// The API key dialog: shown when the server answers 401; the key is kept in localStorage.
import { h } from "./dom.js";
import { KEY_HELP, apiKey, isUsableKey, setApiKey } from "./api.js";

export function askForKey(message = "") {
  return new Promise((resolve) => {
    const input = h("input#api-key-input", {
      type: "password",
      autocomplete: "off",
      spellcheck: "false",
      placeholder: "tk_…",
      value: apiKey(),
    });
    const error = h("div.error", message);
    const dialog = h(
      "dialog#key-dialog",
      h(
        "form",
        { method: "dialog" },
        h("h2", "API key"),
        h(
          "p.muted",
          "This server needs an API key (tether keys create). It is kept in this browser's local storage and sent as a Bearer token.",
        ),
        h("label.field", "Key", input),
        error,
        h("div.buttons", h("button.btn.primary", { type: "submit", value: "save" }, "Save key")),
      ),
    );
    dialog.addEventListener("cancel", (e) => e.preventDefault()); // nothing works without a key
    dialog.querySelector("form").addEventListener("submit", (e) => {
      const key = input.value.trim();
      if (!key || !isUsableKey(key)) {
        e.preventDefault();
        error.textContent = key ? KEY_HELP : "Enter a key.";
        return;
      }
      setApiKey(key);
      dialog.remove();
      resolve(key);
    });
    document.body.append(dialog);
    dialog.showModal();
    input.focus();
  });
}

/** The key button: change or forget the key. */
export function editKey() {
  const input = h("input#edit-key-input", { type: "password", autocomplete: "off", value: apiKey(), placeholder: "no key (local mode)" });
  const error = h("div.error", { role: "alert" });
  const form = h(
    "form",
    { method: "dialog" },
    h("h2", "API key"),
    h("p.muted", "Sent as a Bearer token with every request. Leave empty for a server in local mode."),
    h("label.field", "Key", input),
    error,
    h(
      "div.buttons",
      h("button.btn.ghost", { type: "submit", value: "cancel" }, "Cancel"),
      h("button.btn.primary", { type: "submit", value: "save" }, "Save"),
    ),
  );
  const dialog = h("dialog#edit-key-dialog", form);
  form.addEventListener("submit", (e) => {
    const key = input.value.trim();
    if (e.submitter && e.submitter.value === "save" && key && !isUsableKey(key)) {
      e.preventDefault();
      error.textContent = KEY_HELP;
    }
  });
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "save") {
      setApiKey(input.value.trim());
      location.reload();
    }
    dialog.remove();
  });
  document.body.append(dialog);
  dialog.showModal();
}
