// Live run changes for the runs list: the SSE stream /v1/stream/runs, or polling the first
// page once a second when the server has no stream or it keeps failing.
import { openStream } from "./sse.js";

const POLL_MS = 1000;

/**
 * followRuns({onChange(change), poll(): Promise<items>, onMode(mode)}) -> stop()
 * change: the run as the list shows it ({run_id, status, workflow, step, usage, created_at,
 * updated_at, ...}: a stream item is a GET /v1/runs item), merged over the row's run.
 * mode: "live" | "polling" | "offline" (the server does not answer) | "forbidden" (the API key
 * may not read runs: nothing is asked again until the key changes).
 */
export function followRuns({ onChange, poll, onMode = () => {} }) {
  let stopped = false;
  let timer = null;
  let failures = 0;
  const stream = openStream("/v1/stream/runs", {
    onEvent(ev) {
      if (ev.event === "ping" || !ev.data || typeof ev.data !== "object") return;
      const change = ev.data.run || ev.data;
      if (change.run_id) onChange(change);
    },
    onState(state) {
      if (state === "forbidden") {
        stopPolling();
        onMode("forbidden");
      } else if (state === "open") {
        failures = 0;
        stopPolling();
        onMode("live");
      } else if (state === "unsupported" || (state === "retrying" && ++failures >= 2)) {
        if (state === "unsupported") stream.close();
        startPolling();
      }
    },
  });

  function startPolling() {
    if (timer || stopped) return;
    onMode("polling");
    const tick = async () => {
      try {
        for (const run of await poll()) onChange(run);
        onMode("polling");
      } catch (err) {
        if (err && err.status === 403) {
          stream.close();
          stopPolling();
          onMode("forbidden");
          return;
        }
        onMode("offline"); // the server is unreachable: the next tick tries again
      }
      if (!stopped && timer) timer = setTimeout(tick, POLL_MS);
    };
    timer = setTimeout(tick, 0);
  }

  function stopPolling() {
    if (timer) clearTimeout(timer);
    timer = null;
  }

  return () => {
    stopped = true;
    stream.close();
    stopPolling();
  };
}
