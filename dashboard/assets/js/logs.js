// Live logs of one app: GET /v1/logs/{app}?follow=1 read as NDJSON with
// fetch (EventSource cannot send the token), filtered by source and
// instance both by the API (?source=, ?instance=) and here, so that an API
// that ignores a filter shows the same lines.
import { query, stream } from "./api.js";
import { h, notice } from "./dom.js";

const maxLines = 1000;

export function follow(ctx, space, name) {
  const source = h("select", { id: "log-source" },
    h("option", { value: "" }, "all"), h("option", { value: "APP" }, "APP (the app)"),
    h("option", { value: "STG" }, "STG (staging)"), h("option", { value: "CELL" }, "CELL (its cell)"));
  const instance = h("select", { id: "log-instance" }, h("option", { value: "" }, "all"));
  const pause = h("button", { type: "button", id: "log-pause", "aria-pressed": "false" }, "Pause");
  const clear = h("button", { type: "button", id: "log-clear" }, "Clear");
  const status = h("span", { id: "log-status", class: "muted", role: "status" }, "connecting…");
  const out = h("pre", { id: "logs", class: "logs", tabindex: "0", "aria-label": "Log lines, oldest first" });
  const problem = h("div", { id: "logs-problem" });
  const el = h("div", { class: "card" },
    h("div", { class: "toolbar" },
      h("label", { for: "log-source" }, "Source"), source,
      h("label", { for: "log-instance" }, "Instance"), instance,
      pause, clear, status),
    problem, out);

  let paused = false;
  let conn = null;
  let lastSeq = -1;
  let seen = new Set();

  const wanted = (l) => {
    if (source.value && l.source !== source.value) return false;
    if (instance.value) {
      const [proc, idx] = instance.value.split(":");
      if (l.source !== "APP" && l.source !== "CELL") return false;
      if ((l.process || "web") !== proc || String(l.index) !== idx) return false;
    }
    return true;
  };

  const line = (l) => {
    // A reconnection reads the recent lines again: show each once.
    if (typeof l.seq === "number") {
      if (l.seq <= lastSeq) return;
      lastSeq = l.seq;
    } else {
      const key = l.time + "|" + l.instance_guid + "|" + l.source + "|" + l.text;
      if (seen.has(key)) return;
      seen.add(key);
      if (seen.size > 4 * maxLines) seen = new Set([...seen].slice(-2 * maxLines));
    }
    if (paused || !wanted(l)) return;
    const atBottom = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
    const t = l.time ? new Date(l.time) : null;
    const tag = l.source === "APP" || l.source === "CELL" ? l.source + "/" + (l.process ? l.process + "/" : "") + l.index : l.source;
    out.append(h("div", { class: l.stream === "stderr" ? "err" : null, dataset: { source: l.source, index: String(l.index) } },
      h("span", { class: "ts" }, t ? t.toLocaleTimeString() + " " : ""), h("span", { class: "src" }, "[" + tag + "] "), l.text));
    while (out.childElementCount > maxLines) out.firstElementChild.remove();
    if (atBottom) out.scrollTop = out.scrollHeight;
  };

  const connect = async () => {
    if (conn) conn.abort();
    const ctl = new AbortController();
    conn = ctl;
    ctx.signal.addEventListener("abort", () => ctl.abort(), { once: true });
    const [proc, idx] = instance.value ? instance.value.split(":") : ["", ""];
    const path = "/v1/logs/" + encodeURIComponent(name) + query({ space, follow: 1, source: source.value,
      instance: instance.value ? idx : "", process: proc && proc !== "web" ? proc : "" });
    for (let tries = 0; !ctl.signal.aborted; tries++) {
      try {
        status.textContent = "following";
        problem.replaceChildren();
        await stream(path, ctl.signal, line);
        status.textContent = "the API ended the stream: reconnecting…";
      } catch (e) {
        if (e.name === "AbortError") return;
        status.textContent = "not following";
        const box = notice("error", e.explain ? e.explain() : String(e));
        box.id = "logs-error";
        box.dataset.status = String(e.status || "");
        problem.replaceChildren(box);
        if (e.status === 401 || e.status === 403 || e.status === 404) return;
      }
      await new Promise((r) => setTimeout(r, Math.min(10000, 1000 * (tries + 1))));
    }
  };

  const restart = () => {
    out.replaceChildren();
    lastSeq = -1;
    seen = new Set();
    connect();
  };
  source.addEventListener("change", restart);
  instance.addEventListener("change", restart);
  clear.addEventListener("click", () => out.replaceChildren());
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", String(paused));
  });
  connect();

  return {
    el,
    // instances offers the app's instances in the instance filter.
    instances(list) {
      const keys = [...new Set(list.map((i) => (i.process || "web") + ":" + i.index))].sort();
      const have = [...instance.options].slice(1).map((o) => o.value);
      if (keys.join(",") === have.join(",")) return;
      const chosen = instance.value;
      instance.replaceChildren(h("option", { value: "" }, "all"), ...keys.map((k) => {
        const [p, i] = k.split(":");
        return h("option", { value: k }, (p === "web" ? "" : p + "/") + i);
      }));
      instance.value = keys.includes(chosen) ? chosen : "";
    },
  };
}
