// Pretty JSON, collapsible: objects and lists fold (<details>, children built only when opened),
// multi-line strings shown as lines, long lists cut with a "N more" line. Strings and keys
// show bidi overrides, line separators and other invisible format characters as escapes.
import { h } from "./dom.js";
import { visible } from "./format.js";

const MAX_ITEMS = 200;

/** jsonView(value, {open: depth opened at first}) -> <pre class="json"> */
export function jsonView(value, { open = 2 } = {}) {
  return h("pre.json", node(value, open, 0));
}

function node(value, open, depth) {
  if (value === null) return h("span.l", "null");
  if (typeof value === "boolean") return h("span.l", String(value));
  if (typeof value === "number") return h("span.n", String(value));
  if (typeof value === "string") return str(value);
  if (typeof value !== "object") return h("span", String(value));
  const isList = Array.isArray(value);
  const entries = isList ? value.map((v, i) => [i, v]) : Object.entries(value);
  const [lb, rb] = isList ? ["[", "]"] : ["{", "}"];
  if (!entries.length) return h("span", lb + rb);
  const summary = h(
    "summary",
    lb,
    h("span.preview", ` ${entries.length} ${isList ? (entries.length === 1 ? "item" : "items") : entries.length === 1 ? "key" : "keys"} ${rb}`),
  );
  const details = h("details", summary);
  let built = false;
  const build = () => {
    if (built) return;
    built = true;
    const items = h("div.items");
    const shown = entries.slice(0, MAX_ITEMS);
    shown.forEach(([k, v], i) => {
      const comma = i < shown.length - 1 || entries.length > MAX_ITEMS ? "," : null;
      items.append(h("span.ln", isList ? null : [h("span.k", quote(k)), ": "], node(v, open, depth + 1), comma));
    });
    if (entries.length > MAX_ITEMS) items.append(h("span.ln.more", `… ${entries.length - MAX_ITEMS} more`));
    details.append(items, rb);
  };
  details.addEventListener("toggle", build);
  if (depth < open) {
    details.open = true;
    build();
  }
  return details;
}

/** A string as JSON writes it, with the characters that hide or reorder text escaped too. */
function quote(s) {
  return visible(JSON.stringify(s));
}

function str(s) {
  if (!s.includes("\n")) return h("span.s", quote(s));
  // A multi-line string reads as its lines (quoted, with the escapes of each line).
  const lines = s.split("\n").map((line) => quote(line).slice(1, -1));
  return h("span.s", `"${lines.join("\n ")}"`);
}
