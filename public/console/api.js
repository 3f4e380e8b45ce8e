// The console's client of the admin API: same-origin requests carrying the session cookie, and on
// every write the session's CSRF token (docs/console.md).

let csrf = "";

export function setCsrf(token) {
  csrf = token || "";
}

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function request(method, url, body) {
  const headers = { accept: "application/json" };
  if (method !== "GET") headers["x-csrf-token"] = csrf;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(url, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!res.ok) {
    const detail = (data && (data.detail || data.title || data.reason)) || `HTTP ${res.status}`;
    throw Object.assign(new ApiError(res.status, detail), { data });
  }
  return data;
}

/** A call of /admin/v1{path}. */
export const api = (method, path, body) => request(method, `/admin/v1${path}`, body);
/** A call of the console's own session endpoint. */
export const session = (method, body) => request(method, "/console/api/session", body);

/** A query string from the non-empty entries of an object. */
export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : "";
}
