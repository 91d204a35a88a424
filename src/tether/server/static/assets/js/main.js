// Boot: routes, theme toggle, key button, global shortcuts.
import { route, start, navigate } from "./router.js";
import { renderRunsPage } from "./runs_page.js";
import { renderRunPage } from "./run_page.js";
import { renderApprovalsPage } from "./approvals_page.js";
import { renderKpisPage } from "./kpis_page.js";
import { editKey } from "./key_prompt.js";
import { h, isTyping } from "./dom.js";

route(/^\/(?:runs)?$/, renderRunsPage);
route(/^\/runs\/([^/]+)$/, renderRunPage);
route(/^\/approvals$/, renderApprovalsPage);
route(/^\/kpis$/, renderKpisPage);

function toggleTheme() {
  const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
  document.documentElement.dataset.theme = next;
  try {
    localStorage.setItem("tether.theme", next);
  } catch {
    /* not saved */
  }
}

function showShortcuts() {
  const rows = [
    ["/", "search runs"],
    ["j / k", "next / previous run, step or event"],
    ["Enter", "open the selected run"],
    ["f", "failures only (runs list)"],
    ["g r / g a / g k", "go to runs / approvals / KPIs"],
    ["[ / ]", "previous / next step (run page; j / k too outside the events)"],
    ["1 2 3 4", "state, diff, events, input & result tabs"],
    ["t", "toggle the theme"],
    ["Esc", "close a dialog"],
  ];
  const dialog = h(
    "dialog",
    h(
      "form",
      { method: "dialog" },
      h("h2", "Keyboard shortcuts"),
      h("div.shortcuts", rows.map(([k, v]) => [h("kbd", k), h("span", v)])),
      h("div.buttons", h("button.btn", { type: "submit" }, "Close")),
    ),
  );
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}

document.getElementById("theme-button").addEventListener("click", toggleTheme);
document.getElementById("key-button").addEventListener("click", editKey);
document.getElementById("help-button").addEventListener("click", showShortcuts);

let lastG = 0;
document.addEventListener("keydown", (e) => {
  if (e.metaKey || e.ctrlKey || e.altKey || isTyping(e) || document.querySelector("dialog[open]")) return;
  if (e.key === "t") toggleTheme();
  else if (e.key === "?") showShortcuts();
  else if (e.key === "g") lastG = Date.now();
  else if (lastG && Date.now() - lastG < 1000 && (e.key === "r" || e.key === "a" || e.key === "k")) {
    navigate({ r: "/runs", a: "/approvals", k: "/kpis" }[e.key]);
    lastG = 0;
  }
});

start(document.getElementById("app"));
