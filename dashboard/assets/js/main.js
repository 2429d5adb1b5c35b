// The dashboard's shell: sign-in, hash routes, one page at a time. Each
// page gets a signal that ends (with its polls and streams) when the user
// leaves it.
import { APIError, token, setToken, clearToken, get } from "./api.js";
import { h, notice } from "./dom.js";
import { sources, cells, denials, previews, services, apps } from "./pages.js";
import { app } from "./app.js";

const routes = { sources, apps, cells, denials, previews, services };

let current = null;

function main() { return document.getElementById("main"); }

// show replaces the page's content.
export function show(...nodes) {
  main().replaceChildren(...nodes.filter(Boolean));
}

// failed shows why the API refused or failed; a 401 asks for a token again.
export function failed(err, where) {
  if (err && err.name === "AbortError") return;
  if (err instanceof APIError && err.status === 401) {
    signin(err.explain());
    return;
  }
  const text = err instanceof APIError ? err.explain() : "The dashboard failed: " + (err && err.message || err);
  const box = notice("error", text);
  box.dataset.status = err instanceof APIError ? String(err.status) : "";
  (where || main()).replaceChildren(box);
}

function signin(reason) {
  stop();
  document.getElementById("signout").hidden = true;
  document.getElementById("who").textContent = "";
  for (const a of document.querySelectorAll("#nav a")) a.removeAttribute("aria-current");
  const input = h("input", { id: "token", type: "password", autocomplete: "off", required: true, placeholder: "dlt_…", "aria-describedby": "token-help" });
  const form = h("form", { class: "card signin", id: "signin" },
    h("h1", {}, "Sign in"),
    reason ? notice("error", reason) : null,
    h("label", { for: "token" }, "API token"),
    input,
    h("p", { id: "token-help", class: "muted" },
      "The same token as the CLI's: ", h("code", {}, "driftless dev"), " prints its admin token and writes it into the CLI's configuration; ",
      h("code", {}, "driftless token create"), " makes others. It is kept in this tab only (sessionStorage) and sent to this API only."),
    h("button", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    setToken(input.value);
    if (!location.hash || location.hash === "#/signin") location.hash = "#/apps";
    else route();
  });
  show(form);
  input.focus();
}

function stop() {
  if (current) current.abort();
  current = null;
}

async function whoami(signal) {
  // /v1/can answers for any valid token: it names the token's role.
  try {
    const c = await get("/v1/can?verb=read&resource=status", signal);
    if (c && c.token) {
      const spaces = c.spaces && c.spaces.length ? ", spaces " + c.spaces.join(", ") : "";
      document.getElementById("who").textContent = "token " + c.token + " (" + c.role + spaces + ")";
    }
  } catch (_) { /* the page itself reports refusals */ }
}

function route() {
  stop();
  if (!token()) { signin(""); return; }
  document.getElementById("signout").hidden = false;
  const parts = (location.hash.replace(/^#\/?/, "") || "apps").split("/").map(decodeURIComponent);
  const ctl = new AbortController();
  current = ctl;
  const ctx = {
    signal: ctl.signal,
    // every runs fn now and then every ms until the page is left.
    every(ms, fn) {
      let busy = false;
      const tick = async () => {
        if (busy || ctl.signal.aborted) return;
        busy = true;
        try { await fn(); } catch (e) { failed(e); } finally { busy = false; }
      };
      const id = setInterval(tick, ms);
      ctl.signal.addEventListener("abort", () => clearInterval(id));
      return tick();
    },
  };
  let name = parts[0];
  let page = routes[name];
  if (name === "apps" && parts.length >= 3) page = () => app(ctx, parts[1], parts[2]);
  if (!page) { name = "apps"; page = apps; }
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.route === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  whoami(ctl.signal);
  Promise.resolve(page(ctx)).catch((e) => failed(e));
}

function start() {
  document.getElementById("signout").addEventListener("click", () => {
    clearToken();
    signin("");
  });
  window.addEventListener("hashchange", route);
  route();
}

// Modules run before DOMContentLoaded; start whichever comes first.
if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
