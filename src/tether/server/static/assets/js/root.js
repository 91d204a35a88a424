// The path the dashboard is served under: "" at the root of a host name, "/tether" behind a
// proxy that mounts it there (tether serve --root-path /tether). The server writes it into
// <meta name="tether-root">; every URL the dashboard builds goes through rooted().
const meta = document.querySelector('meta[name="tether-root"]');
export const ROOT = (meta && meta.getAttribute("content")) || "";

/** An app path ("/runs/x", "/v1/runs?limit=5") as a URL path under ROOT; a path already under
 * ROOT, or anything that is not an absolute path, is returned as it is. */
export function rooted(path) {
  if (!ROOT || typeof path !== "string" || !path.startsWith("/") || path.startsWith("//")) return path;
  if (path === ROOT || path.startsWith(ROOT + "/") || path.startsWith(ROOT + "?")) return path;
  return ROOT + path;
}

/** A URL path under ROOT as the app path ("/tether/runs" -> "/runs"). */
export function appPath(path) {
  if (!ROOT || !(path === ROOT || path.startsWith(ROOT + "/") || path.startsWith(ROOT + "?"))) return path;
  return path.slice(ROOT.length) || "/";
}
