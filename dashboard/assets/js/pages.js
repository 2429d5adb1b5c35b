// The list pages: sources, apps, cells, policy denials, previews,
// services. Each reads the API with the user's token and refreshes itself
// while it is shown.
import { get } from "./api.js";
import { h, table, short, when, state, at, problems, notice, refill } from "./dom.js";
import { show, failed } from "./main.js";

const refresh = 3000;

// page shows a titled page whose body fill fills now and then every few
// seconds; loaded marks it for tests and the benchmark once the first
// answer (or refusal) is shown. A refusal is shown in place of the body
// (a 401 asks for a token again).
function page(ctx, id, title, fill) {
  const body = h("div", { id: id + "-body" });
  const el = h("section", { id: "page-" + id, "aria-labelledby": id + "-title" }, h("h1", { id: id + "-title" }, title), body);
  show(el);
  const p = {
    set(...nodes) {
      refill(body, nodes);
      if (!el.dataset.loaded) performance.mark(id + "-rendered");
      el.dataset.loaded = "1";
    },
  };
  return ctx.every(refresh, async () => {
    try {
      await fill(p);
    } catch (e) {
      if (e.name === "AbortError") return;
      failed(e, body);
      el.dataset.loaded = "1";
    }
  });
}

function commitCell(commit, t) {
  if (!commit) return h("span", { class: "muted" }, "none yet");
  return h("span", {}, h("code", { title: commit }, short(commit)), " ", when(t));
}

// sources: every source with its last commit seen and applied, its fetch
// error and the errors of its last commit at file:line.
export async function sources(ctx) {
  return page(ctx, "sources", "Sources", async (p) => {
    const st = await get("/v1/status", ctx.signal);
    const rows = st.sources.map((s) => h("tr", { dataset: { source: s.name } },
      h("td", {}, h("strong", {}, s.name), s.preview ? h("div", { class: "muted" }, "preview of " + s.preview.source + " #" + s.preview.number) : null),
      h("td", {}, s.space),
      h("td", {}, h("code", {}, s.url), s.branch ? h("div", { class: "muted" }, "branch " + s.branch) : null),
      h("td", {}, commitCell(s.last_applied, s.last_applied_at)),
      h("td", {}, commitCell(s.last_seen, s.last_seen_at), h("div", { class: "muted" }, s.last_fetch ? ["fetched ", when(s.last_fetch)] : null)),
      h("td", {},
        s.fetch_error ? h("div", { class: "problems" }, "fetch: " + s.fetch_error) : null,
        problems(s.errors), problems(s.warnings, "warnings"),
        !s.fetch_error && !s.errors.length && !s.warnings.length ? h("span", { class: "state ok" }, "ok") : null)));
    const pol = st.policies || {};
    p.set(
      table(["Source", "Space", "Repository", "Last applied", "Last seen", "Errors at file:line"], rows, "No sources this token may see.", "Sources"),
      h("h2", {}, "Policies"),
      h("div", { class: "card" }, h("dl", { class: "kv" },
        h("dt", {}, "source"), h("dd", {}, pol.source || "", pol.url ? [" ", h("code", {}, pol.url)] : null),
        h("dt", {}, "files"), h("dd", {}, (pol.files || []).join(", ")),
        h("dt", {}, "last applied"), h("dd", {}, commitCell(pol.last_applied, pol.last_applied_at)),
        h("dt", {}, "errors"), h("dd", {}, problems(pol.errors) || "none"))),
      st.problems.length ? [h("h2", {}, "Apps that need attention"),
        table(["Space", "App", "Problem"], st.problems.map((x) => [x.space, appLink(x.space, x.app), x.message]), "", "Problems")] : null);
  });
}

function appLink(space, name) {
  return h("a", { href: "#/apps/" + encodeURIComponent(space) + "/" + encodeURIComponent(name) }, name);
}

// apps: every app the token may read, with its state and instances.
export async function apps(ctx) {
  return page(ctx, "apps", "Apps", async (p) => {
    const list = await get("/v1/apps", ctx.signal);
    list.sort((a, b) => (a.space + "/" + a.name).localeCompare(b.space + "/" + b.name));
    const rows = list.map((a) => h("tr", { dataset: { app: a.name, space: a.space } },
      h("td", {}, appLink(a.space, a.name)),
      h("td", {}, a.space),
      h("td", {}, state(a.state)),
      h("td", {}, a.running + "/" + a.desired,
        (a.processes || []).filter((x) => x.type !== "web").map((x) => h("div", { class: "muted" }, x.type + " " + x.running + "/" + x.desired))),
      h("td", {}, a.release ? h("code", { title: a.release }, short(a.release)) : h("span", { class: "muted" }, "none")),
      h("td", {}, (a.routes || []).map((r) => h("div", {}, h("code", {}, r)))),
      h("td", {}, problems(a.problems))));
    const t = table(["App", "Space", "State", "Instances", "Release", "Routes", "Problems"], rows, "No apps this token may read.", "Apps");
    t.id = "apps-table";
    p.set(t);
  });
}

// cells: what the controller knows of each cell.
export async function cells(ctx) {
  return page(ctx, "cells", "Cells", async (p) => {
    const st = await get("/v1/status", ctx.signal);
    const rows = st.cells.map((c) => {
      const cap = c.capacity || {};
      const pct = cap.memory_mb ? Math.min(100, Math.round(100 * c.memory_used_mb / cap.memory_mb)) : 0;
      const bar = h("span", { class: "bar", role: "img", "aria-label": pct + "% of memory placed" }, h("span", {}));
      bar.firstChild.style.width = pct + "%";
      return h("tr", { dataset: { cell: c.id } },
        h("td", {}, h("strong", {}, c.id)),
        h("td", {}, h("code", {}, c.address)),
        h("td", {}, c.zone || ""),
        h("td", {}, c.lost ? state("lost") : state("running")),
        h("td", {}, String(c.instances), cap.instances ? " / " + cap.instances : ""),
        h("td", {}, bar, " ", c.memory_used_mb + " / " + (cap.memory_mb || "?") + " MB"),
        h("td", {}, cap.disk_mb ? cap.disk_mb + " MB" : ""),
        h("td", {}, when(c.last_heartbeat)));
    });
    p.set(table(["Cell", "Address", "Zone", "State", "Instances", "Memory placed", "Disk", "Last heartbeat"], rows, "No cell has reported.", "Cells"));
  });
}

// denials: commits (or apps of them) the policies denied, newest first,
// and the policy problems sources have now at file:line.
export async function denials(ctx) {
  return page(ctx, "denials", "Policy denials", async (p) => {
    const evs = await get("/v1/events", ctx.signal);
    let current = [];
    let why = null;
    try {
      const st = await get("/v1/status", ctx.signal);
      for (const s of st.sources) {
        for (const e of s.errors.concat(s.warnings)) if (e.kind === "policy") current.push([s.name, s.space, h("code", {}, at(e)), e.app || "", e.message]);
      }
    } catch (e) {
      if (e.name === "AbortError") throw e;
      why = notice("info", "Sources are not shown: " + e.explain());
    }
    const denied = evs.filter((e) => e.kind === "commit-denied").reverse();
    p.set(
      h("h2", {}, "In force now"),
      why || table(["Source", "Space", "At", "App", "Denial"], current, "No source is held back by a policy.", "Current denials"),
      h("h2", {}, "History"),
      table(["When", "Space", "Denial"], denied.map((e) => [when(e.time), e.space || "", e.message]), "No commit has been denied.", "Denials"));
  });
}

// prLink is the pull request's page on its forge, guessed from the
// source's repository URL (GitHub: /pull/N, GitLab: /-/merge_requests/N,
// Gitea and Forgejo: /pulls/N); null when the URL is not a web one.
function prLink(repo, n) {
  if (!repo || !/^https?:/.test(repo)) return null;
  let base;
  try {
    const u = new URL(repo);
    u.username = ""; u.password = "";
    base = u.toString().replace(/\.git$/, "").replace(/\/$/, "");
  } catch (_) { return null; }
  const host = new URL(base).hostname;
  if (host.includes("github")) return base + "/pull/" + n;
  if (host.includes("gitlab")) return base + "/-/merge_requests/" + n;
  return base + "/pulls/" + n;
}

// previews: the deployed pull-request previews, their links and URLs.
export async function previews(ctx) {
  return page(ctx, "previews", "Previews", async (p) => {
    const list = (await get("/v1/previews", ctx.signal)) || [];
    const repos = {};
    try {
      for (const s of (await get("/v1/status", ctx.signal)).sources) repos[s.name] = s.url;
    } catch (e) {
      if (e.name === "AbortError") throw e;
    }
    const rows = list.map((x) => {
      const link = prLink(repos[x.source], x.number);
      return h("tr", { dataset: { preview: x.name } },
        h("td", {}, link ? h("a", { href: link, rel: "noopener noreferrer", target: "_blank" }, x.source + " #" + x.number) : x.source + " #" + x.number,
          h("div", { class: "muted" }, x.branch + (x.author ? " by " + x.author : ""))),
        h("td", {}, x.space),
        h("td", {}, state(x.state), x.reason ? h("div", { class: "muted" }, x.reason) : null),
        h("td", {}, h("code", { title: x.head }, short(x.head)), x.applied && x.applied !== x.head ? h("div", { class: "muted" }, "applied ", h("code", {}, short(x.applied))) : null),
        h("td", {}, (x.urls || []).map((u) => h("div", {}, h("code", {}, u)))),
        h("td", {}, when(x.since)),
        h("td", {}, when(x.expires)));
    });
    p.set(table(["Pull request", "Space", "State", "Head", "URLs", "Since", "Expires"], rows, "No preview is deployed.", "Previews"));
  });
}

// services: service instances, their brokers and bound apps.
export async function services(ctx) {
  return page(ctx, "services", "Services", async (p) => {
    const list = (await get("/v1/services", ctx.signal)) || [];
    const rows = list.map((s) => h("tr", { dataset: { service: s.name } },
      h("td", {}, h("strong", {}, s.name)),
      h("td", {}, s.space),
      h("td", {}, s.user_provided ? "user-provided" : (s.service || "") + (s.plan ? " / " + s.plan : ""), s.broker ? h("div", { class: "muted" }, "broker " + s.broker) : null),
      h("td", {}, state(s.deleted ? "deleting" : s.state), s.message ? h("div", { class: "muted" }, s.message) : null),
      h("td", {}, (s.bound || []).map((a) => h("div", {}, appLink(s.space, a)))),
      h("td", {}, h("code", {}, at(s)), h("div", { class: "muted" }, s.source ? s.source + " " : "", h("code", {}, short(s.commit))))));
    p.set(table(["Service", "Space", "Offering", "State", "Bound apps", "Declared at"], rows, "No service instance is declared.", "Services"));
  });
}
