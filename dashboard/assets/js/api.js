// The API, called with the user's token: the dashboard may do exactly
// what the CLI may with it. The token lives in sessionStorage (this tab
// only, gone when it closes).

const tokenKey = "driftless.token";

export function token() { return sessionStorage.getItem(tokenKey) || ""; }
export function setToken(t) { sessionStorage.setItem(tokenKey, t.trim()); }
export function clearToken() { sessionStorage.removeItem(tokenKey); }

// APIError is a refusal or failure of the API: status is the HTTP status
// (0 when the API could not be reached), message the API's own reason.
export class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
  // explain says what the refusal means to the user.
  explain() {
    switch (this.status) {
      case 0: return "The API could not be reached: " + this.message;
      case 401: return "The API refused the token (401): " + this.message;
      case 403: return "This token may not see this (403): " + this.message;
      case 404: return "Not found (404): " + this.message;
      case 429: return "Too many failed sign-ins from this address (429): " + this.message;
      case 503: return "This controller cannot answer (503): " + this.message;
      default: return "The API answered " + this.status + ": " + this.message;
    }
  }
}

function headers() {
  const h = { "Accept": "application/json, application/x-ndjson" };
  const t = token();
  if (t) h["Authorization"] = "Bearer " + t;
  return h;
}

async function refusal(resp) {
  let msg = resp.statusText || "error";
  try {
    const body = await resp.json();
    if (body && body.error) msg = body.error;
  } catch (_) { /* not JSON: keep the status text */ }
  return new APIError(resp.status, msg);
}

// call fetches path; a request that fails without an answer (the network
// changed under it, the API restarting) is tried once more.
async function call(path, signal) {
  let resp;
  for (let attempt = 0; ; attempt++) {
    try {
      resp = await fetch(path, { headers: headers(), signal, cache: "no-store" });
      break;
    } catch (e) {
      if (e.name === "AbortError") throw e;
      if (attempt >= 1) throw new APIError(0, String(e.message || e));
      await new Promise((r) => setTimeout(r, 300));
    }
  }
  if (!resp.ok) throw await refusal(resp);
  return resp;
}

// get fetches path and decodes its JSON answer; it throws an APIError.
export async function get(path, signal) {
  const resp = await call(path, signal);
  return resp.json();
}

// query builds "?k=v&…" from the non-empty values of params.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? "?" + s : "";
}

// stream reads path as it arrives. An NDJSON answer (logs, and events when
// the API follows them) calls onItem per line until the API or signal ends
// it; a JSON array answer (an API that does not follow) calls onItem per
// element and resolves with "array", so that the caller may poll instead.
// onOpen, if given, is called once a stream is open.
export async function stream(path, signal, onItem, onOpen) {
  const resp = await call(path, signal);
  const type = resp.headers.get("Content-Type") || "";
  if (!type.includes("ndjson")) {
    const all = await resp.json();
    for (const item of (Array.isArray(all) ? all : [])) onItem(item);
    return "array";
  }
  if (onOpen) onOpen();
  const reader = resp.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (!line) continue;
      let item;
      try { item = JSON.parse(line); } catch (_) { continue; }
      onItem(item);
    }
  }
  return "ended";
}
