// Client-side routes: /runs (list), /runs/<id> (detail), /approvals, /kpis. The server answers
// index.html for each, so a reload or a shared link opens the same page. Under a root path
// (root.js) the URLs are /<root>/runs...; routes match the app path without it.
import { appPath, rooted } from "./root.js";

const APP_LINK = /^\/(runs|approvals|kpis)?(\/|\?|$)/;

const routes = [];
let current = null; // {cleanup}
let root = null;

export function route(pattern, render) {
  routes.push({ pattern, render });
}

export function start(el) {
  root = el;
  document.addEventListener("click", (e) => {
    const a = e.target.closest && e.target.closest("a[href]");
    if (!a || !(a.hasAttribute("data-link") || APP_LINK.test(appPath(a.getAttribute("href"))))) return;
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    if (a.target && a.target !== "_self") return;
    e.preventDefault();
    navigate(a.getAttribute("href"));
  });
  window.addEventListener("popstate", render);
  render();
}

/** Show ``href`` (an app path, "/runs/x", or the same under the root). */
export function navigate(href, { replace = false } = {}) {
  href = rooted(href);
  if (href === location.pathname + location.search) return;
  history[replace ? "replaceState" : "pushState"](null, "", href);
  render();
}

/** Update the query string of the current page without rendering it again. */
export function setQuery(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  history.replaceState(null, "", location.pathname + (s ? `?${s}` : ""));
}

/** A path segment as the text it encodes; a malformed escape ("/runs/%E0%A4%A", a link cut
 * short) is kept as it is, so the page says that no such run exists instead of staying blank. */
function decode(segment) {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function render() {
  if (current && current.cleanup) current.cleanup();
  current = null;
  const path = appPath(location.pathname).replace(/\/+$/, "") || "/";
  for (const { pattern, render: draw } of routes) {
    const m = path.match(pattern);
    if (m) {
      document.querySelectorAll("[data-nav]").forEach((a) => {
        a.classList.toggle("active", path.startsWith(`/${a.dataset.nav}`) || (path === "/" && a.dataset.nav === "runs"));
      });
      root.replaceChildren();
      root.scrollTop = 0;
      current = { cleanup: draw(root, ...m.slice(1).map(decode), new URLSearchParams(location.search)) };
      return;
    }
  }
  root.replaceChildren(document.createTextNode("Not found"));
}
