// Sets the colour theme before the first paint (no flash): saved choice, else the system's.
(function () {
  var saved = null;
  try { saved = localStorage.getItem("tether.theme"); } catch (e) { /* storage blocked */ }
  var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  document.documentElement.dataset.theme = saved === "light" || saved === "dark" ? saved : (dark ? "dark" : "light");
})();
