// Formatting of times, numbers, money and statuses.

const STATUS_CLASS = {
  COMPLETED: "s-ok",
  FAILED: "s-fail",
  ESCALATED: "s-wait",
  CANCELLED: "s-off",
  RECEIVED: "s-queued",
  PLANNED: "s-run",
  EXECUTING: "s-run",
  WAITING_FOR_TOOL: "s-run",
  VALIDATING: "s-run",
};

export const STATUSES = Object.keys(STATUS_CLASS);
export const FINISHED = new Set(["COMPLETED", "FAILED", "CANCELLED"]);
export const RUNNING = new Set(["PLANNED", "EXECUTING", "WAITING_FOR_TOOL", "VALIDATING"]);

export function statusClass(status) {
  return STATUS_CLASS[status] || "s-off";
}

export function statusLabel(status) {
  if (status === "ESCALATED") return "WAITING";
  if (status === "WAITING_FOR_TOOL") return "TOOL";
  if (status === "RECEIVED") return "QUEUED";
  return status || "?";
}

export function relTime(ts, now = Date.now() / 1000) {
  if (!ts) return "–";
  const d = Math.max(0, now - ts);
  if (d < 5) return "just now";
  if (d < 60) return `${Math.floor(d)}s ago`;
  if (d < 3600) return `${Math.floor(d / 60)}m ago`;
  if (d < 86400) return `${Math.floor(d / 3600)}h ago`;
  return `${Math.floor(d / 86400)}d ago`;
}

export function absTime(ts) {
  if (!ts) return "";
  const d = new Date(ts * 1000);
  return d.toLocaleString(undefined, { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m}m ${Math.floor(seconds % 60)}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

/** "+1.234s" relative to the run's start: event times in the events list. */
export function offset(ts, start) {
  if (!ts || !start) return "";
  const d = Math.max(0, ts - start);
  if (d < 100) return `+${d.toFixed(3)}s`;
  return `+${duration(d)}`;
}

const INT = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

export function count(n) {
  return n === null || n === undefined ? "–" : INT.format(n);
}

export function cost(c) {
  if (c === null || c === undefined) return "–";
  if (c === 0) return "$0";
  if (c < 0.01) return `$${c.toPrecision(2)}`;
  return `$${c.toFixed(c < 10 ? 3 : 2)}`;
}

export function shortId(id) {
  return id && id.length > 18 ? `${id.slice(0, 8)}…${id.slice(-6)}` : id || "";
}

// Characters that change how the text around them is shown without showing themselves: bidi
// embeddings, overrides, isolates and marks (U+202E shows "txt.exe" as "exe.txt" and turns
// the rest of a line around), line and paragraph separators (U+2028 breaks a line that JSON
// keeps whole), zero-width and other format characters, C1 controls. JSON.stringify leaves
// them as they are.
const HIDDEN = /[\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]/g;

/** `text` with every character that would hide or reorder the text around it written as its
 * \uXXXX escape: what a value shows is what it holds (a run's data, an approval's arguments). */
export function visible(text) {
  return text.replace(HIDDEN, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** A one-line preview of any JSON value, cut at `max` characters. */
export function preview(value, max = 160) {
  let text;
  try {
    text = typeof value === "string" ? value : JSON.stringify(value);
  } catch {
    text = String(value);
  }
  if (text === undefined) text = "";
  text = visible(text).replace(/\s+/g, " ");
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}
