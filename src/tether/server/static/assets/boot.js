// Runs before anything else, as a classic script in <head>:
// 1. the colour theme before the first paint (no flash): the saved choice, else the system's;
// 2. the API requests the page opened at will make first, started now, while the modules
//    load (their responses wait in window.__prefetch; api.js takes each one once).
(function () {
  var store = null;
  try { store = window.localStorage; } catch (e) { /* storage blocked */ }
  var saved = store && store.getItem("tether.theme");
  var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  document.documentElement.dataset.theme = saved === "light" || saved === "dark" ? saved : (dark ? "dark" : "light");

  var key = store && store.getItem("tether.apiKey");
  var headers = { Accept: "application/json" };
  if (key && /^[\x21-\x7e]+$/.test(key)) headers.Authorization = "Bearer " + key; // api.js isUsableKey
  var pre = (window.__prefetch = {});
  // the root path the dashboard is served under (root.js): requests go below it, and the
  // prefetched responses are filed under the app path api.js asks for
  var meta = document.querySelector('meta[name="tether-root"]');
  var root = (meta && meta.getAttribute("content")) || "";
  function get(url) {
    pre[url] = fetch(root + url, { headers: headers, cache: "no-store" });
    pre[url].catch(function () { delete pre[url]; });
  }
  var path = location.pathname;
  if (root && (path === root || path.indexOf(root + "/") === 0)) path = path.slice(root.length);
  path = path.replace(/\/+$/, "") || "/";
  var m = path.match(/^\/runs\/([^/]+)$/);
  if (path === "/" || path === "/runs") {
    // the same query, in the same order, as runs_page.js asks for
    var q = new URLSearchParams(location.search);
    var out = new URLSearchParams();
    if (q.get("status")) out.set("status", q.get("status"));
    if (q.get("workflow")) out.set("workflow", q.get("workflow"));
    if (q.get("failed") === "1") out.set("failed_only", "true");
    out.set("limit", "50");
    get("/v1/runs?" + out.toString());
  } else if (m) {
    var id;
    try { id = encodeURIComponent(decodeURIComponent(m[1])); } catch (e) { return; }
    get("/v1/runs/" + id);
    get("/v1/runs/" + id + "/history?limit=500");
    get("/v1/workflows");
    get("/v1/approvals?status=pending&run_id=" + id);
    get("/v1/runs/" + id + "/events?after=0&limit=200");
  }
})();
