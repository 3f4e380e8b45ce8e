// floor.mjs — the bench's "workerd floor": a plain JavaScript Worker in Miniflare that passes each
// request to the upstream as it is (method, headers, body; the response streamed back), directly
// or (paths under /do/) through a Durable Object first, as a legacy session's requests go. What it
// costs is what workerd itself costs for one proxied call — the part no gateway code can remove.

import { Log, LogLevel, Miniflare, convertV4MiniflareOptions } from "miniflare";

const SCRIPT = `
function pass(req, url) {
  const headers = new Headers(req.headers);
  headers.delete("host");
  return fetch(url, { method: req.method, headers, body: req.body });
}
export class Hop {
  constructor(state, env) { this.env = env; }
  fetch(req) { return pass(req, this.env.UPSTREAM); }
}
export default {
  async fetch(req, env) {
    // /do/…: through a Durable Object first (one per session id header), as legacy sessions go.
    if (new URL(req.url).pathname.startsWith("/do/")) {
      const id = env.HOP.idFromName(req.headers.get("x-floor-session") || "one");
      return env.HOP.get(id).fetch(req);
    }
    return pass(req, env.UPSTREAM);
  },
};`;

/** Starts the pass-through Worker in front of `upstreamUrl`; `{ url, stop }`. */
export async function startFloor(upstreamUrl) {
  const mf = new Miniflare(
    convertV4MiniflareOptions({
    modules: true,
    script: SCRIPT,
    bindings: { UPSTREAM: upstreamUrl },
    durableObjects: { HOP: "Hop" },
    compatibilityDate: "2026-11-01",
    host: "127.0.0.1",
    port: 0,
    cf: false,
    log: new Log(LogLevel.WARN),
    }),
  );
  const url = (await mf.ready).origin;
  return { url, stop: () => mf.dispose() };
}
