// Server-Sent Events over fetch (EventSource cannot send an Authorization header): parses
// text/event-stream, reconnects with Last-Event-ID after a drop, stops at `event: end`.
import { authHeaders, needKey } from "./api.js";
import { rooted } from "./root.js";

/**
 * openStream(url, {onEvent(ev), onState(state), lastId}) -> {close()}
 * ev = {id, event, data} with data parsed as JSON when it is JSON.
 * state: "open" | "retrying" | "ended" | "unsupported" (404/405: the server has no such stream)
 * | "forbidden" (403: the key may not read it; asking again would be refused again).
 */
export function openStream(url, { onEvent, onState = () => {}, lastId = null } = {}) {
  let closed = false;
  let controller = null;
  let retry = 1000;
  let last = lastId;

  async function connect() {
    while (!closed) {
      controller = new AbortController();
      try {
        const headers = authHeaders({ Accept: "text/event-stream" });
        if (last !== null && last !== undefined) headers["Last-Event-ID"] = String(last);
        const response = await fetch(rooted(url), { headers, signal: controller.signal, cache: "no-store" });
        if (response.status === 401) {
          await needKey("");
          continue;
        }
        if (response.status === 403) {
          onState("forbidden");
          return;
        }
        if ([404, 405, 501].includes(response.status)) {
          onState("unsupported");
          return;
        }
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        onState("open");
        retry = 1000;
        const ended = await pump(response.body, (ev) => {
          if (ev.id !== null) last = ev.id;
          if (ev.retry) retry = ev.retry;
          onEvent(ev);
        });
        if (ended) {
          onState("ended");
          return;
        }
      } catch (err) {
        if (closed) return;
      }
      if (closed) return;
      onState("retrying");
      await new Promise((r) => setTimeout(r, retry));
      retry = Math.min(retry * 2, 10000);
    }
  }

  connect();
  return {
    close() {
      closed = true;
      if (controller) controller.abort();
    },
    get lastId() {
      return last;
    },
  };
}

/** Read the stream to its end; true when it ended with an `end` event. */
async function pump(body, emit) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let ev = fresh();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return false;
    buffer += value;
    let nl;
    while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + (buffer[nl] === "\r" && buffer[nl + 1] === "\n" ? 2 : 1));
      if (line === "") {
        if (ev.dataLines.length || ev.event !== "message") {
          const data = ev.dataLines.join("\n");
          const out = { id: ev.id, event: ev.event, data: parse(data), retry: ev.retry };
          emit(out);
          if (out.event === "end") {
            reader.cancel().catch(() => {});
            return true;
          }
        }
        ev = fresh(ev.id);
        continue;
      }
      if (line.startsWith(":")) continue; // heartbeat comment
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let val = colon < 0 ? "" : line.slice(colon + 1);
      if (val.startsWith(" ")) val = val.slice(1);
      if (field === "data") ev.dataLines.push(val);
      else if (field === "event") ev.event = val;
      else if (field === "id") ev.id = val;
      else if (field === "retry" && /^\d+$/.test(val)) ev.retry = Number(val);
    }
  }
}

function fresh(id = null) {
  return { id, event: "message", dataLines: [], retry: 0 };
}

function parse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
