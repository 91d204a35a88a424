// A run's events, paged: rows are indexed by seq - 1 (a run's seqs are 1, 2, 3, …), pages of
// 200 are fetched only for the rows in view, and live events from the SSE stream are put at
// their seq. With the run's `event_seq` the list is sized up front; without it, when the first
// page is full, the last seq is found by a search of one-event probes (8 at a time: about 5
// rounds for 20,000 events) while the first rows are already on screen; until then the list
// grows a page at a time (one "loading" row past the last known event).
import { api } from "./api.js";
import { openStream } from "./sse.js";

export const PAGE = 200;

export class EventLog {
  constructor(runId, { lastSeq = null, onChange = () => {}, onLive = () => {}, onStreamState = () => {} } = {}) {
    this.runId = runId;
    this.rows = new Map(); // index -> event
    this.pages = new Map(); // page -> "loading" | "done"
    this.known = lastSeq !== null && lastSeq !== undefined; // the total is known
    this.total = this.known ? lastSeq : 0;
    this.more = !this.known; // the server may have rows past `total`
    this.onChange = onChange;
    this.onLive = onLive;
    this.onStreamState = onStreamState;
    this.stream = null;
    this.wantStream = false;
    this.closed = false;
  }

  /** Rows shown: the events, plus one "loading" row while more may follow. */
  get count() {
    return this.total + (this.more ? 1 : 0);
  }

  get(index) {
    return this.rows.get(index);
  }

  pending(index) {
    const state = this.pages.get(Math.floor(index / PAGE));
    return state !== "done";
  }

  /** Fetch the pages covering rows first..last that are not here yet. */
  ensure(first, last) {
    for (let p = Math.floor(first / PAGE); p <= Math.floor(last / PAGE); p++) {
      if (!this.pages.has(p) && (p * PAGE < this.count || p === 0)) this.load(p);
    }
  }

  async load(page) {
    this.pages.set(page, "loading");
    try {
      const res = await api.events(this.runId, { after: page * PAGE, limit: PAGE });
      if (this.closed) return;
      const items = res.items || [];
      const touched = new Set();
      for (const ev of items) {
        this.rows.set(ev.seq - 1, ev);
        touched.add(ev.seq - 1);
        if (ev.seq > this.total) this.total = ev.seq;
      }
      for (let i = page * PAGE; i < (page + 1) * PAGE; i++) touched.add(i);
      this.pages.set(page, "done");
      if (!this.known) {
        const last = items.length ? items[items.length - 1].seq : page * PAGE;
        this.more = items.length >= PAGE && Boolean(res.next_cursor ?? true);
        if (!this.more) this.total = Math.max(this.total, last);
        if (this.more && page === 0) this.findEnd(last);
      }
      if (!this.more && this.wantStream) this.openStream();
      this.onChange(touched);
    } catch (err) {
      this.pages.delete(page);
      this.onChange(new Set(), err);
    }
  }

  /** The last seq, searched with 8 parallel one-event probes a round ("is there an event
   * after K?"), from `after` (the last seq seen). */
  async findEnd(after) {
    const exists = async (k) => ((await api.events(this.runId, { after: k, limit: 1 })).items || []).length > 0;
    try {
      // exists(lo) is true and exists(hi) false: the last seq is in (lo, hi]
      let lo = after - 1;
      let hi = after * 2;
      while (await exists(hi)) {
        lo = hi;
        hi *= 4;
        if (this.closed || this.known) return;
      }
      while (hi - lo > 1) {
        const step = Math.max(1, Math.ceil((hi - lo) / 9));
        const points = [];
        for (let k = lo + step; k < hi; k += step) points.push(k);
        const found = await Promise.all(points.map(exists));
        if (this.closed || this.known) return;
        let next = hi;
        for (let i = 0; i < points.length; i++) {
          if (found[i]) lo = points[i];
          else {
            next = points[i];
            break;
          }
        }
        hi = next;
      }
      if (this.known) return;
      this.known = true;
      this.more = false;
      this.total = Math.max(this.total, hi);
      if (this.wantStream) this.openStream();
      this.onChange(new Set());
    } catch {
      /* the list keeps growing a page at a time */
    }
  }

  /** Follow the run live once the end of the log is known (a finished run needs no stream). */
  follow() {
    this.wantStream = true;
    if (!this.more) this.openStream();
  }

  openStream() {
    if (this.stream || this.closed) return;
    const url = `/v1/runs/${encodeURIComponent(this.runId)}/events/stream?after=${this.total}`;
    this.stream = openStream(url, {
      lastId: null,
      onEvent: (ev) => {
        if (ev.event === "end") return;
        const data = ev.data && typeof ev.data === "object" ? ev.data : null;
        if (!data || typeof data.seq !== "number") return;
        const index = data.seq - 1;
        const fresh = !this.rows.has(index);
        this.rows.set(index, data);
        this.pages.set(Math.floor(index / PAGE), this.pages.get(Math.floor(index / PAGE)) || "done");
        if (data.seq > this.total) this.total = data.seq;
        this.onChange(new Set([index]));
        if (fresh) this.onLive(data);
      },
      onState: (state) => this.onStreamState(state),
    });
  }

  close() {
    this.closed = true;
    if (this.stream) this.stream.close();
  }
}
