// Short notifications at the bottom right.
import { h } from "./dom.js";

export function toast(message, kind = "info", ms = 4500) {
  const el = h(`div.toast.${kind}`, { role: kind === "error" ? "alert" : "status" }, message);
  document.getElementById("toasts").append(el);
  setTimeout(() => el.remove(), ms);
}

export function toastError(err) {
  toast(err && err.full ? err.full : String((err && err.message) || err), "error", 8000);
}
