// The HTTP API: JSON requests with the API key as a Bearer token; a 401 asks for a key once
// (shared by every request waiting on it) and retries.
import { askForKey } from "./key_prompt.js";
import { rooted } from "./root.js";

const KEY = "tether.apiKey";

export class ApiError extends Error {
  constructor(status, problem) {
    const text = problem && (problem.detail || problem.title);
    super(text ? String(text) : `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }

  /** The problem's message with its field errors, for a user to act on (an error's `loc` is
   * "path.run_id" or ["path", "run_id"]; whatever else a proxy answers is shown as text). */
  get full() {
    const list = Array.isArray(this.problem.errors) ? this.problem.errors : [];
    const errors = list.map((e) => {
      const loc = e && e.loc;
      const where = Array.isArray(loc) ? loc.join(".") : loc ? String(loc) : "";
      const msg = e && typeof e === "object" ? e.msg : e;
      return `• ${where ? `${where}: ` : ""}${msg}`;
    });
    return [this.message, ...errors].join("\n");
  }
}

/** Whether `key` can be sent as a Bearer token: printable ASCII, no space. A key pasted with a
 * "…", a zero-width space or a line break cannot go in an HTTP header (fetch refuses the
 * request before it leaves), so it is refused where it is entered. */
export function isUsableKey(key) {
  return /^[\x21-\x7e]+$/.test(key);
}

/** The saved key; one that cannot be sent counts as none, so the server's 401 asks again. */
export function apiKey() {
  let key = "";
  try {
    key = localStorage.getItem(KEY) || "";
  } catch {
    return "";
  }
  return isUsableKey(key) ? key : "";
}

export const KEY_HELP = "That is not an API key: it holds a space, a line break or a character that is not plain ASCII (a \u2026, a zero-width space); paste the key `tether keys create` printed.";

export function setApiKey(key) {
  try {
    if (key) localStorage.setItem(KEY, key);
    else localStorage.removeItem(KEY);
  } catch {
    /* storage blocked: the key lasts for this page only */
  }
}

export function authHeaders(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

let pendingKey = null;

/** Ask for a key (one prompt however many requests got a 401); resolves when one is saved. */
export function needKey(detail = "") {
  if (!pendingKey) {
    const message = apiKey() ? `That API key was refused. ${detail}`.trim() : detail;
    pendingKey = askForKey(message).finally(() => {
      pendingKey = null;
    });
  }
  return pendingKey;
}

/** A response boot.js requested already for this exact GET, taken once. */
function prefetched(method, path) {
  const pre = window.__prefetch;
  if (method !== "GET" || !pre || !pre[path]) return null;
  const response = pre[path];
  delete pre[path];
  return response;
}

export async function request(method, path, body, { signal } = {}) {
  let early = prefetched(method, path);
  for (;;) {
    const headers = authHeaders({ Accept: "application/json" });
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await (early ||
      fetch(rooted(path), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        cache: "no-store",
      }));
    early = null;
    if (response.status === 401) {
      const problem = await readJson(response);
      await needKey((problem && problem.detail) || "");
      continue;
    }
    const data = await readJson(response);
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }
}

async function readJson(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { detail: text.slice(0, 500) };
  }
}

export const get = (path, opts) => request("GET", path, undefined, opts);
export const post = (path, body, opts) => request("POST", path, body ?? {}, opts);

/** "/v1/runs?status=X": the query string of the defined, non-empty params. */
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "" && v !== false) q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

const enc = encodeURIComponent;

export const api = {
  runs: (params, opts) => get(withQuery("/v1/runs", params), opts),
  run: (id, opts) => get(`/v1/runs/${enc(id)}`, opts),
  history: (id, params) => get(withQuery(`/v1/runs/${enc(id)}/history`, params)),
  state: (id, step) => get(withQuery(`/v1/runs/${enc(id)}/state`, { step })),
  events: (id, params, opts) => get(withQuery(`/v1/runs/${enc(id)}/events`, params), opts),
  cancel: (id, reason) => post(`/v1/runs/${enc(id)}/cancel`, reason ? { reason } : {}),
  resume: (id, value) => post(`/v1/runs/${enc(id)}/resume`, { value }),
  fork: (id, step, patch) => post(`/v1/runs/${enc(id)}/fork`, patch ? { step, patch } : { step }),
  workflows: () => get("/v1/workflows"),
  interrupts: () => get("/v1/interrupts"),
  approvals: (params) => get(withQuery("/v1/approvals", params)),
  approve: (aid, body) => post(`/v1/approvals/${enc(aid)}/approve`, body),
  reject: (aid, body) => post(`/v1/approvals/${enc(aid)}/reject`, body),
  kpis: (params) => get(withQuery("/v1/kpis", params)),
};
