// Small DOM and formatting helpers. Text from the API is only ever put in
// with textContent (never as HTML).

// h makes an element: h("td", {class: "x"}, "text", child, [more]).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// table makes a table of rows (arrays of cells) under headers, scrolled
// sideways when narrow, or says empty when there are none.
export function table(headers, rows, empty, label) {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h("div", { class: "scroll" }, h("table", { "aria-label": label || null },
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.map((r) => r instanceof Node ? r : h("tr", {}, r.map((c) => h("td", {}, c)))))));
}

// short abbreviates a commit as the CLI does (10 digits).
export function short(commit) { return commit ? String(commit).slice(0, 10) : ""; }

// ago says how long ago an RFC 3339 time was ("" for none).
export function ago(t) {
  if (!t || t.startsWith("0001-")) return "";
  const s = Math.round((Date.now() - Date.parse(t)) / 1000);
  if (Number.isNaN(s)) return "";
  if (s < 0) return "in " + span(-s);
  return span(s) + " ago";
}

function span(s) {
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m";
  if (s < 86400) return Math.floor(s / 3600) + "h" + String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  return Math.floor(s / 86400) + "d";
}

// when is a time element: local time, with how long ago.
export function when(t) {
  const a = ago(t);
  if (!a) return "";
  return h("time", { datetime: t, title: new Date(t).toLocaleString() }, a);
}

// bytes formats a byte count.
export function bytes(n) {
  if (typeof n !== "number") return "";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + " " + u[i];
}

// state is a coloured badge for an app, instance, preview or service state.
export function state(s) {
  const v = String(s || "").toLowerCase();
  let cls = "warn";
  if (["running", "serving", "ready", "succeeded", "staged", "current"].includes(v)) cls = "ok";
  else if (/fail|crash|lost|refused|degraded|denied/.test(v)) cls = "bad";
  return h("span", { class: "state " + cls }, s || "?");
}

// at is "file:line[:col]" of a problem or declaration.
export function at(p) {
  if (!p || !p.file) return "";
  let s = p.file;
  if (p.line) s += ":" + p.line + (p.column ? ":" + p.column : "");
  return s;
}

// problems lists problems as "file:line: message".
export function problems(list, cls) {
  if (!list || !list.length) return null;
  return h("ul", { class: "problems " + (cls || "") }, list.map((p) => {
    const where = at(p);
    return h("li", {}, where ? h("code", {}, where) : null, where ? ": " : null, p.message || String(p));
  }));
}

// refill replaces el's children with nodes, keeping the keyboard focus on
// the same link or control when it was inside (pages refresh themselves).
export function refill(el, nodes) {
  const a = document.activeElement;
  const key = a && el.contains(a) ? (a.id ? "#" + CSS.escape(a.id) : a.getAttribute("href") ? '[href="' + CSS.escape(a.getAttribute("href")) + '"]' : "") : "";
  el.replaceChildren(...nodes.flat(Infinity).filter(Boolean));
  if (key) {
    const again = el.querySelector(key);
    if (again) again.focus();
  }
}

// notice is an error or information box.
export function notice(kind, text) { return h("div", { class: "notice " + kind, role: kind === "error" ? "alert" : "status" }, text); }
