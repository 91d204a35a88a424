// A virtualised list of fixed-height rows: only the rows in view (plus a margin) are in the
// DOM, so 20,000 rows cost what 40 do. Rows are recycled by index.

/**
 * virtualList({viewport, rowHeight, count, renderRow(index, el), onRange(first, last)})
 * -> {setCount(n), refresh(), scrollToIndex(i, align), atEnd(), destroy()}
 */
export function virtualList({ viewport, rowHeight, count = 0, renderRow, onRange = () => {}, overscan = 8 }) {
  const spacer = document.createElement("div");
  spacer.className = "ev-spacer";
  viewport.append(spacer);
  let n = count;
  const live = new Map(); // index -> element
  let frame = 0;

  function setHeight() {
    spacer.style.height = `${n * rowHeight}px`;
  }

  function draw() {
    frame = 0;
    const top = viewport.scrollTop;
    const height = viewport.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / rowHeight) - overscan);
    const last = Math.min(n - 1, Math.ceil((top + height) / rowHeight) + overscan);
    for (const [i, el] of live) {
      if (i < first || i > last) {
        el.remove();
        live.delete(i);
      }
    }
    for (let i = first; i <= last; i++) {
      let el = live.get(i);
      if (!el) {
        el = document.createElement("div");
        el.style.transform = `translateY(${i * rowHeight}px)`;
        el.dataset.index = String(i);
        live.set(i, el);
        spacer.append(el);
        renderRow(i, el);
      }
    }
    if (n) onRange(first, last);
  }

  function schedule() {
    if (!frame) frame = requestAnimationFrame(draw);
  }

  viewport.addEventListener("scroll", schedule, { passive: true });
  const resize = new ResizeObserver(schedule);
  resize.observe(viewport);
  setHeight();
  draw();

  return {
    setCount(next) {
      if (next === n) return;
      n = next;
      for (const [i, el] of live) {
        if (i >= n) {
          el.remove();
          live.delete(i);
        }
      }
      setHeight();
      schedule();
    },
    /** Re-render the rows in view (their data arrived or changed). */
    refresh(indices = null) {
      for (const [i, el] of live) if (!indices || indices.has(i)) renderRow(i, el);
    },
    scrollToIndex(i, align = "nearest") {
      const y = i * rowHeight;
      const h = viewport.clientHeight;
      if (align === "end") viewport.scrollTop = Math.max(0, (i + 1) * rowHeight - h);
      else if (align === "start") viewport.scrollTop = y;
      else if (y < viewport.scrollTop) viewport.scrollTop = y;
      else if (y + rowHeight > viewport.scrollTop + h) viewport.scrollTop = y + rowHeight - h;
      draw();
    },
    atEnd() {
      return viewport.scrollTop + viewport.clientHeight >= n * rowHeight - rowHeight * 2;
    },
    get count() {
      return n;
    },
    destroy() {
      viewport.removeEventListener("scroll", schedule);
      resize.disconnect();
      if (frame) cancelAnimationFrame(frame);
    },
  };
}
