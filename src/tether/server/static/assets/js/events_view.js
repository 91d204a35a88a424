// The events panel: a virtualised list of a run's events (20,000 open at once: only the rows
// in view exist), paged loading, follow mode for live runs, and the selected event's payload
// as collapsible pretty JSON.
import { h, setChildren } from "./dom.js";
import { EventLog } from "./event_log.js";
import { virtualList } from "./virtual_list.js";
import { jsonView } from "./json_view.js";
import { offset, preview, absTime } from "./format.js";

const ROW = 28;

function kindClass(kind) {
  if (kind === "lifecycle") return "k-lifecycle";
  if (/error|fail|trip|refused/.test(kind)) return "k-error";
  if (/interrupt|approval|escalat/.test(kind)) return "k-interrupt";
  if (/model|token/.test(kind)) return "k-model";
  return "";
}

function summary(ev) {
  const d = ev.data || {};
  if (ev.kind === "lifecycle" && d.to) return `${d.from || "∅"} → ${d.to}${d.reason ? ` · ${d.reason}` : ""}`;
  return preview(d, 240);
}

/** eventsView(run, {onLive(ev), onStream(state), live}) -> {el, tools, destroy(), focus()} */
export function eventsView(run, { onLive = () => {}, onStream = () => {}, live = false } = {}) {
  const viewport = h("div.ev-viewport#events-viewport", { tabindex: "0", role: "listbox", "aria-label": "events" });
  const detail = h("div.ev-detail#event-detail");
  const countLabel = h("span.muted#events-count");
  const followBtn = h("button.btn.small#follow-events", { type: "button", title: "Follow new events" }, "Follow");
  const endBtn = h("button.btn.small", { type: "button", title: "Jump to the last event (End)" }, "End");
  const startBtn = h("button.btn.small", { type: "button", title: "Jump to the first event (Home)" }, "Start");
  let selected = -1;
  let follow = live;
  const start = run.created_at;

  const log = new EventLog(run.run_id, {
    lastSeq: typeof run.event_seq === "number" ? run.event_seq : null,
    onChange: (touched, err) => {
      if (err) countLabel.textContent = `could not load events: ${err.message}`;
      list.setCount(log.count);
      list.refresh(touched);
      paintCount();
      if (follow) list.scrollToIndex(log.total - 1, "end");
    },
    onLive,
    onStreamState: onStream,
  });

  const list = virtualList({
    viewport,
    rowHeight: ROW,
    count: log.count || 1,
    renderRow(i, el) {
      const ev = log.get(i);
      el.className = "ev-row" + (i === selected ? " selected" : "") + (ev ? "" : " loading");
      el.setAttribute("role", "option");
      if (!ev) {
        const waiting = log.pending(i);
        setChildren(el, h("span.seq", i + 1), h("span"), h("span", waiting ? "loading…" : "—"), h("span"), h("span"), h("span.summary", waiting ? "" : "(not in the log)"));
        el.onclick = null;
        return;
      }
      el.dataset.seq = String(ev.seq);
      setChildren(
        el,
        h("span.seq", ev.seq),
        h("span", { title: absTime(ev.created_at) }, offset(ev.created_at, start)),
        h("span", h(`span.chip.kind.${kindClass(ev.kind) || "k"}`, ev.kind)),
        h("span", ev.step ?? ""),
        h("span", { title: ev.node || "" }, ev.node || ""),
        h("span.summary", summary(ev)),
      );
      el.onclick = () => select(i);
    },
    onRange: (first, last) => log.ensure(first, last),
  });

  function select(i) {
    const prev = selected;
    selected = i;
    list.refresh(new Set([prev, i]));
    list.scrollToIndex(i);
    const ev = log.get(i);
    if (!ev) return setChildren(detail, h("div.empty", "Loading…"));
    setChildren(
      detail,
      h(
        "div.head",
        h("b", `#${ev.seq}`),
        h(`span.chip.kind.${kindClass(ev.kind) || "k"}`, ev.kind),
        ev.node ? h("span.chip", ev.node) : null,
        ev.step !== null && ev.step !== undefined ? h("span.muted", `step ${ev.step}`) : null,
        h("span.muted", absTime(ev.created_at)),
        h("span.spacer"),
        h("button.btn.small.ghost", { type: "button", onclick: () => navigator.clipboard && navigator.clipboard.writeText(JSON.stringify(ev, null, 2)) }, "Copy JSON"),
      ),
      jsonView(ev.data, { open: 3 }),
    );
  }

  function paintCount() {
    const n = log.total;
    countLabel.textContent = `${n.toLocaleString()}${log.more ? "+" : ""} event${n === 1 ? "" : "s"}`;
    followBtn.classList.toggle("on", follow);
  }

  function setFollow(on) {
    follow = on;
    paintCount();
    if (on) {
      log.follow();
      list.scrollToIndex(log.count - 1, "end");
    }
  }

  followBtn.addEventListener("click", () => setFollow(!follow));
  // End sticks to the end: without the run's event count the pages load one after the other
  endBtn.addEventListener("click", () => setFollow(true));
  startBtn.addEventListener("click", () => {
    setFollow(false);
    list.scrollToIndex(0, "start");
  });
  viewport.addEventListener("wheel", () => {
    if (follow && !list.atEnd()) setFollow(false);
  }, { passive: true });
  viewport.addEventListener("keydown", (e) => {
    if (e.key === "j" || e.key === "ArrowDown") select(Math.min(log.count - 1, selected + 1));
    else if (e.key === "k" || e.key === "ArrowUp") select(Math.max(0, selected - 1));
    else if (e.key === "End") setFollow(true);
    else if (e.key === "Home") {
      setFollow(false);
      list.scrollToIndex(0, "start");
    }
    else return;
    e.preventDefault();
  });

  if (live) log.follow();
  log.ensure(0, 0);
  paintCount();
  setChildren(detail, h("div.empty", "Select an event to see its payload."));

  const el = h(
    "div.panel-body.split#events-panel",
    h("div.ev-list", h("div.ev-head", h("span.seq", "#"), h("span", "time"), h("span", "kind"), h("span", "step"), h("span", "node"), h("span", "payload")), viewport),
    detail,
  );
  return {
    el,
    tools: [countLabel, startBtn, endBtn, followBtn],
    destroy() {
      log.close();
      list.destroy();
    },
    focus: () => viewport.focus({ preventScroll: true }),
  };
}
