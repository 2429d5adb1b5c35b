// One app: its instances with their usage, releases, timeline and live
// logs.
import { get, query, stream } from "./api.js";
import { h, table, short, when, bytes, state, at, problems, notice, refill } from "./dom.js";
import { show, failed } from "./main.js";
import { follow } from "./logs.js";

const refresh = 3000;
const maxTimeline = 300;

export async function app(ctx, space, name) {
  const head = h("div", { id: "app-head" }, h("p", { class: "muted" }, "Loading…"));
  const insts = h("div", { id: "instances" });
  const rels = h("div", { id: "releases" });
  const timeline = h("ol", { id: "timeline", class: "timeline", "aria-label": "Timeline, newest first" });
  const logs = follow(ctx, space, name);
  const detail = { releases: [] };
  let events = [];
  show(h("section", { id: "page-app", "aria-labelledby": "app-title", dataset: { app: name, space } },
    h("h1", { id: "app-title" }, h("a", { href: "#/apps" }, "Apps"), " / ", space, " / ", name),
    head,
    h("h2", {}, "Instances"), insts,
    h("div", { class: "grid" },
      h("div", {}, h("h2", {}, "Timeline"), h("div", { class: "card" }, timeline)),
      h("div", {}, h("h2", {}, "Releases"), rels)),
    h("h2", {}, "Live logs"), logs.el));

  const draw = () => drawTimeline(timeline, name, space, detail.releases, events);
  const poll = async () => {
    let d;
    try {
      d = await get("/v1/apps/" + encodeURIComponent(name) + query({ space }), ctx.signal);
    } catch (e) {
      failed(e, head);
      const pg = document.getElementById("page-app");
      if (pg) pg.dataset.loaded = "1"; // loaded: with the API's refusal
      return;
    }
    detail.releases = d.releases || [];
    refill(head, [summary(d)]);
    refill(insts, [h("div", {}, instances(d))]);
    refill(rels, [releases(d)]);
    logs.instances(d.instances || []);
    draw();
    const pg = document.getElementById("page-app");
    if (pg && !pg.dataset.loaded) {
      performance.mark("app-rendered");
      pg.dataset.loaded = "1";
    }
  };
  await ctx.every(refresh, poll);
  followEvents(ctx, space, name, (evs) => { events = evs; draw(); }, timeline);
}

function summary(d) {
  return h("div", { class: "card" }, h("dl", { class: "kv" },
    h("dt", {}, "state"), h("dd", {}, state(d.state), " ", d.running + "/" + d.desired + " running",
      (d.processes || []).filter((x) => x.type !== "web").map((x) => ", " + x.type + " " + x.running + "/" + x.desired)),
    h("dt", {}, "release"), h("dd", {}, d.release_id || "none", d.release ? [" from ", h("code", { title: d.release }, short(d.release))] : null,
      d.target_release_id ? " → " + d.target_release_id : null),
    h("dt", {}, "declared at"), h("dd", {}, h("code", {}, at(d)), " in source ", d.source, " at commit ", h("code", { title: d.commit }, short(d.commit))),
    h("dt", {}, "routes"), h("dd", {}, (d.routes || []).map((r) => h("div", {}, h("code", {}, r)))),
    d.problems && d.problems.length ? [h("dt", {}, "problems"), h("dd", {}, h("ul", { class: "problems" }, d.problems.map((p) => h("li", {}, p))))] : null));
}

// usage shows what the cell measured of an instance, when it reports it
// (usage.cpu_percent, memory_bytes, disk_bytes), beside its limits.
function usage(i) {
  const u = i.usage || {};
  const mem = typeof u.memory_bytes === "number" ? bytes(u.memory_bytes) : null;
  const disk = typeof u.disk_bytes === "number" ? bytes(u.disk_bytes) : null;
  return [
    h("td", { class: "cpu" }, typeof u.cpu_percent === "number" ? u.cpu_percent.toFixed(1) + "%" : h("span", { class: "muted" }, "–")),
    h("td", { class: "mem" }, mem || h("span", { class: "muted" }, "–"), i.memory_mb ? h("span", { class: "muted" }, " / " + i.memory_mb + " MB") : null),
    h("td", { class: "disk" }, disk || h("span", { class: "muted" }, "–"), i.disk_mb ? h("span", { class: "muted" }, " / " + i.disk_mb + " MB") : null),
  ];
}

function instances(d) {
  const list = (d.instances || []).slice().sort((a, b) => (a.process || "").localeCompare(b.process || "") || a.index - b.index);
  const rows = list.map((i) => h("tr", { dataset: { guid: i.guid } },
    h("td", {}, (i.process ? i.process + "/" : "") + i.index),
    h("td", {}, state(i.state), i.ready === false ? h("div", { class: "muted" }, "not ready") : null,
      i.reason && i.state !== "RUNNING" ? h("div", { class: "muted" }, i.reason + (i.exit_status ? " (exit " + i.exit_status + ")" : "")) : null),
    h("td", {}, i.release_id),
    h("td", {}, i.cell || ""),
    h("td", {}, i.address ? h("code", {}, i.address) : ""),
    usage(i),
    h("td", {}, when(i.since))));
  const crashes = (d.crashes || []).map((c) => [(c.process ? c.process + "/" : "") + c.index, String(c.count || ""), c.reason || "", when(c.restart_at)]);
  return [
    table(["#", "State", "Release", "Cell", "Address", "CPU", "Memory", "Disk", "Since"], rows, "No instance.", "Instances"),
    (d.unplaced || []).length ? problems(d.unplaced.map((u) => ({ message: "instance " + u.index + " cannot be placed: " + u.reason }))) : null,
    crashes.length ? [h("h2", {}, "Crashes"), table(["#", "Times", "Reason", "Next restart"], crashes, "", "Crashes")] : null,
  ];
}

function releases(d) {
  const list = (d.releases || []).slice().reverse();
  return table(["Release", "Commit", "State", "Built with", "Created"], list.map((r) => [
    h("span", {}, r.id, r.current ? [" ", state("current")] : null),
    h("code", { title: r.commit }, short(r.commit)),
    h("span", {}, state(r.state), r.error ? h("div", { class: "problems" }, r.error) : null),
    r.image ? h("code", {}, r.image) : (r.buildpack || ""),
    when(r.created_at),
  ]), "No release yet.", "Releases");
}

// followEvents reads the app's events: followed as NDJSON when the API
// streams them (?follow=1), else polled as the JSON list it answers today.
// With a stream, the list is read too once the stream is open (whether or
// not the stream starts with past events), so that no event falls between
// the two. Each event is shown once, whichever way it came. It keeps the
// app's own events and its space's commit events.
function followEvents(ctx, space, name, onEvents, where) {
  const keep = (e) => (e.app === name && (!e.space || e.space === space)) || (!e.app && e.space === space && String(e.kind).startsWith("commit-"));
  let all = [];
  const seen = new Set();
  const add = (e) => {
    const key = e.time + "|" + e.kind + "|" + e.app + "|" + e.instance + "|" + e.message;
    if (seen.has(key) || !keep(e)) return false;
    seen.add(key);
    all.push(e);
    if (all.length > maxTimeline) all = all.slice(-maxTimeline);
    return true;
  };
  const path = "/v1/events" + query({ space, follow: 1 });
  const run = async () => {
    for (let tries = 0; !ctx.signal.aborted; tries++) {
      let how;
      try {
        const history = () => get("/v1/events" + query({ space }), ctx.signal).then((evs) => {
          let changed = false;
          for (const e of evs) changed = add(e) || changed;
          if (changed) onEvents(all);
        }, () => { /* the stream reports refusals */ });
        let first = true;
        how = await stream(path, ctx.signal, (e) => { if (add(e)) onEvents(all); }, () => {
          if (first) history();
          first = false;
        });
        onEvents(all);
      } catch (e) {
        if (e.name === "AbortError") return;
        where.replaceChildren(h("li", { class: "plain" }, notice("error", e.explain ? e.explain() : String(e))));
      }
      if (how === "array") break;
      await sleep(Math.min(10000, 1000 * (tries + 1)), ctx.signal);
    }
    // The API answered a list: poll it.
    ctx.every(refresh, async () => {
      const evs = await get("/v1/events" + query({ space }), ctx.signal);
      let changed = false;
      for (const e of evs) changed = add(e) || changed;
      if (changed) onEvents(all);
    });
  };
  run();
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const id = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(id); resolve(); }, { once: true });
  });
}

function drawTimeline(el, name, space, rels, events) {
  const items = [];
  for (const r of rels) {
    items.push({ time: r.created_at, kind: "release", node: ["release " + r.id + " from commit ",
      h("code", { class: "commit", title: r.commit, dataset: { commit: r.commit } }, short(r.commit)), " ", state(r.state)] });
  }
  for (const e of events) {
    items.push({ time: e.time, kind: e.kind, node: [
      e.instance || e.index ? h("span", { class: "muted" }, "#" + (e.process ? e.process + "/" : "") + (e.index || 0) + " ") : null,
      e.message] });
  }
  items.sort((a, b) => Date.parse(b.time) - Date.parse(a.time));
  if (!items.length) {
    el.replaceChildren(h("li", { class: "muted plain" }, "Nothing happened to " + space + "/" + name + " yet."));
    return;
  }
  el.replaceChildren(...items.slice(0, maxTimeline).map((x) => h("li", { dataset: { kind: x.kind } },
    h("span", { class: "at" }, when(x.time)), " ", h("span", { class: "kind" }, x.kind), " ", h("span", { class: "what" }, x.node))));
}
