// A layered (Sugiyama-style) layout of a workflow graph, top to bottom: back edges of cycles
// found by DFS, layers by longest path, long edges broken by virtual points, order within
// layers by barycentre sweeps, x by packing each layer around the centre. Pure: no DOM.

const NODE_H = 34;
const GAP_X = 28;
const GAP_Y = 58;
const VIRTUAL_W = 12;
const CHAR_W = 7.3;

export function nodeWidth(label) {
  return Math.max(84, Math.round(label.length * CHAR_W + 30));
}

/**
 * layout({nodes: [{id, label}], edges: [{source, target, conditional, label}], entry})
 * -> {width, height, nodes: [{id, label, x, y, w, h}], edges: [{source, target, points, back, self, conditional, label}]}
 * x, y: the node's top-left corner.
 */
export function layout(graph) {
  const ids = graph.nodes.map((n) => n.id);
  const known = new Set(ids);
  const edges = graph.edges.filter((e) => known.has(e.source) && known.has(e.target));
  const out = new Map(ids.map((id) => [id, []]));
  edges.forEach((e, i) => out.get(e.source).push(i));

  // 1. back edges: DFS from the start node, the entries, then everything else.
  const back = new Set();
  const state = new Map(); // 1 on stack, 2 done
  const roots = [...ids.filter((id) => id === "__start__"), ...(graph.entry || []), ...ids];
  for (const root of roots) {
    if (state.has(root)) continue;
    const stack = [[root, 0]];
    state.set(root, 1);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const list = out.get(top[0]);
      if (top[1] >= list.length) {
        state.set(top[0], 2);
        stack.pop();
        continue;
      }
      const ei = list[top[1]++];
      const t = edges[ei].target;
      if (state.get(t) === 1) back.add(ei);
      else if (!state.has(t)) {
        state.set(t, 1);
        stack.push([t, 0]);
      }
    }
  }

  // 2. layers: longest path over the forward edges (Kahn's order).
  const fwd = edges.map((e, i) => i).filter((i) => !back.has(i) && edges[i].source !== edges[i].target);
  const indeg = new Map(ids.map((id) => [id, 0]));
  fwd.forEach((i) => indeg.set(edges[i].target, indeg.get(edges[i].target) + 1));
  const layer = new Map(ids.map((id) => [id, 0]));
  const queue = ids.filter((id) => indeg.get(id) === 0);
  const fwdOut = new Map(ids.map((id) => [id, []]));
  fwd.forEach((i) => fwdOut.get(edges[i].source).push(i));
  while (queue.length) {
    const u = queue.shift();
    for (const i of fwdOut.get(u)) {
      const v = edges[i].target;
      layer.set(v, Math.max(layer.get(v), layer.get(u) + 1));
      indeg.set(v, indeg.get(v) - 1);
      if (indeg.get(v) === 0) queue.push(v);
    }
  }
  if (known.has("__end__")) layer.set("__end__", Math.max(...layer.values(), 1));

  // 3. virtual points for edges that span several layers.
  const width = new Map(graph.nodes.map((n) => [n.id, nodeWidth(n.label || n.id)]));
  const layers = [];
  const put = (id, l) => (layers[l] ||= []).push(id);
  ids.forEach((id) => put(id, layer.get(id)));
  const chains = new Map(); // edge index -> [virtual ids]
  for (const i of fwd) {
    const { source, target } = edges[i];
    const chain = [];
    for (let l = layer.get(source) + 1; l < layer.get(target); l++) {
      const v = `\u0000v${i}:${l}`;
      width.set(v, VIRTUAL_W);
      layer.set(v, l);
      put(v, l);
      chain.push(v);
    }
    chains.set(i, chain);
  }
  for (let l = 0; l < layers.length; l++) layers[l] ||= [];

  // 4. order: barycentre sweeps down and up.
  const ups = new Map();
  const downs = new Map();
  const link = (a, b) => {
    (downs.get(a) || downs.set(a, []).get(a)).push(b);
    (ups.get(b) || ups.set(b, []).get(b)).push(a);
  };
  for (const i of fwd) {
    const path = [edges[i].source, ...chains.get(i), edges[i].target];
    for (let k = 0; k + 1 < path.length; k++) link(path[k], path[k + 1]);
  }
  const pos = new Map();
  const index = () => layers.forEach((ls) => ls.forEach((id, k) => pos.set(id, k)));
  index();
  const sweep = (from, neighbours) => {
    for (const l of from) {
      const bary = new Map(
        layers[l].map((id) => {
          const ns = neighbours.get(id) || [];
          return [id, ns.length ? ns.reduce((s, n) => s + pos.get(n), 0) / ns.length : pos.get(id)];
        }),
      );
      layers[l].sort((a, b) => bary.get(a) - bary.get(b) || pos.get(a) - pos.get(b));
      layers[l].forEach((id, k) => pos.set(id, k));
    }
  };
  const down = layers.map((_, l) => l).slice(1);
  const up = layers.map((_, l) => l).reverse().slice(1);
  for (let it = 0; it < 4; it++) {
    sweep(down, ups);
    sweep(up, downs);
  }

  // 5. coordinates: each layer packed and centred.
  const rowWidth = (ls) => ls.reduce((s, id) => s + width.get(id), 0) + GAP_X * Math.max(0, ls.length - 1);
  const maxRow = Math.max(...layers.map(rowWidth), 0);
  const hasBack = back.size > 0 || edges.some((e) => e.source === e.target);
  const margin = 16;
  const rightPad = hasBack ? 70 + 14 * back.size : 16;
  const xy = new Map();
  layers.forEach((ls, l) => {
    let x = margin + (maxRow - rowWidth(ls)) / 2;
    for (const id of ls) {
      xy.set(id, { x, y: margin + l * (NODE_H + GAP_Y) });
      x += width.get(id) + GAP_X;
    }
  });
  const totalW = margin + maxRow + rightPad;
  const totalH = margin * 2 + layers.length * NODE_H + Math.max(0, layers.length - 1) * GAP_Y;

  const centre = (id) => ({ x: xy.get(id).x + width.get(id) / 2, y: xy.get(id).y + NODE_H / 2 });
  let backLane = 0;
  const outEdges = edges.map((e, i) => {
    const base = { source: e.source, target: e.target, conditional: !!e.conditional, label: e.label || null };
    if (e.source === e.target) {
      const p = xy.get(e.source);
      const right = p.x + width.get(e.source);
      return { ...base, self: true, back: true, points: [{ x: right, y: p.y + 8 }, { x: right, y: p.y + NODE_H - 8 }] };
    }
    if (back.has(i)) {
      const s = xy.get(e.source);
      const t = xy.get(e.target);
      const lane = margin + maxRow + 30 + 14 * backLane++;
      return {
        ...base,
        back: true,
        lane,
        points: [
          { x: s.x + width.get(e.source), y: s.y + NODE_H / 2 },
          { x: t.x + width.get(e.target), y: t.y + NODE_H / 2 },
        ],
      };
    }
    const s = centre(e.source);
    const t = centre(e.target);
    const points = [{ x: s.x, y: s.y + NODE_H / 2 }];
    for (const v of chains.get(i)) points.push(centre(v));
    points.push({ x: t.x, y: t.y - NODE_H / 2 });
    return { ...base, back: false, points };
  });

  const nodes = graph.nodes.map((n) => ({ id: n.id, label: n.label || n.id, phase: n.phase || null, ...xy.get(n.id), w: width.get(n.id), h: NODE_H }));
  return { width: totalW, height: totalH, nodes, edges: outEdges };
}

/** The SVG path of a laid-out edge: smooth vertical curves, back edges around the right side. */
export function edgePath(edge) {
  const p = edge.points;
  if (edge.self) {
    const [a, b] = p;
    return `M${a.x},${a.y} C${a.x + 36},${a.y - 14} ${b.x + 36},${b.y + 14} ${b.x + 2},${b.y}`;
  }
  if (edge.back) {
    const [a, b] = p;
    return `M${a.x},${a.y} C${edge.lane},${a.y} ${edge.lane},${b.y} ${b.x + 2},${b.y}`;
  }
  let d = `M${p[0].x},${p[0].y}`;
  for (let k = 1; k < p.length; k++) {
    const a = p[k - 1];
    const b = p[k];
    const my = (a.y + b.y) / 2;
    d += ` C${a.x},${my} ${b.x},${my} ${b.x},${b.y - (k === p.length - 1 ? 2 : 0)}`;
  }
  return d;
}

/** Where an edge's label goes. */
export function labelPoint(edge) {
  const p = edge.points;
  if (edge.back && !edge.self) return { x: edge.lane - 4, y: (p[0].y + p[1].y) / 2 };
  if (edge.self) return { x: p[0].x + 34, y: (p[0].y + p[1].y) / 2 + 4 };
  const a = p[Math.floor((p.length - 1) / 2)];
  const b = p[Math.floor((p.length - 1) / 2) + 1] || a;
  return { x: (a.x + b.x) / 2 + 4, y: (a.y + b.y) / 2 + 4 };
}
