// The workflow graph as SVG: nodes, edges (conditional dashed, cycles around the side), the
// current node highlighted by the run's status, visited nodes and taken edges marked.
import { svg } from "./dom.js";
import { layout, edgePath, labelPoint } from "./graph_layout.js";

const PSEUDO = new Set(["__start__", "__end__"]);

/** drawGraph(graph, onNodeClick) -> {el, update({current, status, visited, taken, selected})} */
export function drawGraph(graph, onNodeClick = () => {}) {
  const lay = layout(graph);
  const arrow = svg(
    "marker",
    { id: "g-arrow", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" },
    svg("path", { d: "M0,0 L10,5 L0,10 z", class: "g-arrow" }),
  );
  const edgeEls = new Map();
  const edges = lay.edges.map((e) => {
    const cls = ["g-edge", e.conditional ? "conditional" : "", e.back ? "back" : ""].filter(Boolean).join(" ");
    const path = svg("path", { d: edgePath(e), class: cls, "marker-end": "url(#g-arrow)" });
    edgeEls.set(`${e.source}\u0000${e.target}`, path);
    const parts = [path];
    if (e.label) {
      const at = labelPoint(e);
      parts.push(svg("text", { x: at.x, y: at.y, class: "g-label" }, e.label));
    }
    return svg("g", { class: "g-edge-group", "data-source": e.source, "data-target": e.target }, parts);
  });
  const nodeEls = new Map();
  const nodes = lay.nodes.map((n) => {
    const g = svg(
      "g",
      { class: `g-node${PSEUDO.has(n.id) ? " pseudo" : ""}`, "data-node": n.id, transform: `translate(${n.x},${n.y})`, tabindex: PSEUDO.has(n.id) ? null : "0", role: "button" },
      svg("title", {}, n.phase ? `${n.label} (${n.phase})` : n.label),
      svg("rect", { width: n.w, height: n.h, rx: 7 }),
      svg("text", { x: n.w / 2, y: n.h / 2 + 1 }, n.label),
    );
    g.addEventListener("click", () => onNodeClick(n.id));
    g.addEventListener("keydown", (e) => e.key === "Enter" && onNodeClick(n.id));
    nodeEls.set(n.id, g);
    return g;
  });
  const el = svg(
    "svg",
    { class: "graph", width: lay.width, height: lay.height, viewBox: `0 0 ${lay.width} ${lay.height}`, role: "img", "aria-label": "workflow graph" },
    svg("defs", {}, arrow),
    svg("g", {}, edges),
    svg("g", {}, nodes),
  );

  function update({ current = [], status = "", visited = new Set(), taken = new Set(), selected = new Set() }) {
    const cur = new Set(current);
    const mode = status === "ESCALATED" ? "waiting" : status === "FAILED" ? "failed" : ["COMPLETED", "CANCELLED"].includes(status) ? "" : "running";
    for (const [id, g] of nodeEls) {
      g.classList.toggle("current", cur.has(id));
      g.classList.toggle("running", cur.has(id) && mode === "running");
      g.classList.toggle("waiting", cur.has(id) && mode === "waiting");
      g.classList.toggle("failed", cur.has(id) && mode === "failed");
      g.classList.toggle("visited", visited.has(id));
      g.classList.toggle("selected", selected.has(id) && !cur.has(id));
      g.setAttribute("aria-current", cur.has(id) ? "step" : "false");
    }
    for (const [key, path] of edgeEls) path.classList.toggle("taken", taken.has(key));
  }

  return { el, update, layout: lay };
}

/**
 * What the run went through, from its steps: the nodes that ran, and the edges taken between
 * consecutive steps (start → first nodes; last nodes → end once the run completed).
 */
export function trail(steps, graph, { upTo = Infinity, completed = false } = {}) {
  const edgeSet = new Set(graph.edges.map((e) => `${e.source}\u0000${e.target}`));
  const visited = new Set();
  const taken = new Set();
  let prev = ["__start__"];
  const ran = steps.filter((s) => s.step <= upTo && s.nodes && s.nodes.length);
  for (const s of ran) {
    for (const n of s.nodes) {
      visited.add(n);
      for (const p of prev) if (edgeSet.has(`${p}\u0000${n}`)) taken.add(`${p}\u0000${n}`);
    }
    prev = s.nodes;
  }
  if (ran.length) visited.add("__start__");
  if (completed) {
    for (const p of prev) if (edgeSet.has(`${p}\u0000__end__`)) taken.add(`${p}\u0000__end__`);
    visited.add("__end__");
  }
  return { visited, taken };
}
