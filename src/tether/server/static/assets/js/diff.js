// A structural diff of two JSON values: the paths that were added, removed or changed.
// Lists that only grew (an append reducer) show the new items as additions.

/** diff(a, b) -> [{op: "add"|"del"|"chg", path: "a.b[2]", old, new}] (at most `limit`). */
export function diff(a, b, limit = 1000) {
  const out = [];
  walk(a, b, "", out, limit);
  return out;
}

function isObj(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function same(a, b) {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) return a.length === b.length && a.every((x, i) => same(x, b[i]));
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && same(a[k], b[k]));
}

function key(path, k) {
  return /^[A-Za-z_$][\w$]*$/.test(k) ? (path ? `${path}.${k}` : k) : `${path}[${JSON.stringify(k)}]`;
}

function walk(a, b, path, out, limit) {
  if (out.length >= limit || same(a, b)) return;
  if (isObj(a) && isObj(b)) {
    for (const k of Object.keys(a)) {
      if (!(k in b)) out.push({ op: "del", path: key(path, k), old: a[k] });
      else walk(a[k], b[k], key(path, k), out, limit);
    }
    for (const k of Object.keys(b)) if (!(k in a) && out.length < limit) out.push({ op: "add", path: key(path, k), new: b[k] });
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    const common = Math.min(a.length, b.length);
    const prefix = a.slice(0, common).every((x, i) => same(x, b[i]));
    if (prefix || Math.abs(a.length - b.length) > 0 && common === 0) {
      for (let i = common; i < b.length && out.length < limit; i++) out.push({ op: "add", path: `${path}[${i}]`, new: b[i] });
      for (let i = common; i < a.length && out.length < limit; i++) out.push({ op: "del", path: `${path}[${i}]`, old: a[i] });
      return;
    }
    if (a.length === b.length) {
      for (let i = 0; i < a.length; i++) walk(a[i], b[i], `${path}[${i}]`, out, limit);
      return;
    }
  }
  if (a === undefined) out.push({ op: "add", path: path || "(state)", new: b });
  else if (b === undefined) out.push({ op: "del", path: path || "(state)", old: a });
  else out.push({ op: "chg", path: path || "(state)", old: a, new: b });
}
