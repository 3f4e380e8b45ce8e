// The one shared setup file for the integration tests (node:test).
//
// startGateway() runs the *built* Worker (build/, from scripts/build.sh) in Miniflare
// with the bindings of wrangler.toml, fresh storage and every migrations/*.sql applied
// to D1. The other helpers start real MCP upstreams as child processes.
//
//   import { startGateway, startEverythingServer } from "./harness.mjs";
//   const gw = await startGateway({ vars: { UPSTREAM_TIMEOUT_MS: "5000" } });
//   const up = await startEverythingServer();
//   after(() => Promise.all([gw.stop(), up.stop()]));
//   const r = await gw.admin("POST", "/admin/servers", { name: "everything", url: up.url });
//   assert.equal(r.status, 201, r.text);
//
// Set HARNESS_LOG=1 to see all of the Worker's console output and the upstreams' output
// (Worker errors and warnings are always shown).

import { spawn, spawnSync } from "node:child_process";
import { readdirSync, readFileSync, existsSync, statSync } from "node:fs";
import net from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Log, LogLevel, Miniflare, convertV4MiniflareOptions } from "miniflare";
import { unstable_getMiniflareWorkerOptions, unstable_splitSqlQuery } from "wrangler";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const BUILD = join(ROOT, "build");
export const ADMIN_TOKEN = "test-admin-token";
const LOG = !!process.env.HARNESS_LOG;

/**
 * Start the gateway in Miniflare on a random loopback port.
 * @param {{ vars?: Record<string, string>, d1Database?: string, build?: string }} [opts]
 *   vars: extra/overriding plain-text bindings (ADMIN_TOKEN defaults to "test-admin-token");
 *   build: the directory of the built Worker (default build/; a feature build lives apart);
 *   inspectorPort: open the V8 inspector on that port (CPU profiles, bench/profile.mjs);
 *   onLog: called with (level, message) for every line of the Worker's console and runtime
 *   output, whatever HARNESS_LOG says (tests that assert on warnings).
 * @returns {Promise<{ url: string, mf: Miniflare, adminToken: string,
 *   fetch: (path: string, init?: RequestInit) => Promise<Response>,
 *   admin: (method: string, path: string, body?: unknown) =>
 *     Promise<{ status: number, headers: Headers, body: any, text: string }>,
 *   stop: () => Promise<void> }>}
 */
export async function startGateway({ vars = {}, d1Database = "DB", persist, build = BUILD, inspectorPort, onLog } = {}) {
  for (const f of ["index.js", "index_bg.wasm"]) {
    if (!existsSync(join(build, f))) throw new Error(`${build}/${f} missing — run scripts/build.sh`);
  }
  const { workerOptions } = unstable_getMiniflareWorkerOptions(join(ROOT, "wrangler.toml"));
  const adminToken = vars.ADMIN_TOKEN ?? ADMIN_TOKEN;
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      ...workerOptions,
      modulesRoot: build,
      modules: [
        { type: "ESModule", path: join(build, "index.js") },
        { type: "CompiledWasm", path: join(build, "index_bg.wasm") },
      ],
      // Fixed secrets, whatever a local .dev.vars (read by wrangler) holds: tests are hermetic.
      // Upstreams in the tests run on loopback, which only ALLOW_PRIVATE_UPSTREAMS permits.
      bindings: {
        ...workerOptions.bindings,
        ADMIN_TOKEN: adminToken,
        GATEWAY_SECRET: "test-gateway-secret",
        ALLOW_PRIVATE_UPSTREAMS: "true",
        ...vars,
      },
      host: "127.0.0.1",
      port: 0, // random free port, read back from mf.ready
      cf: false, // offline: don't fetch the Request.cf object
      log: new Log(LOG ? LogLevel.DEBUG : LogLevel.WARN),
      // The Worker's console output: errors/warnings (e.g. Rust panics) always, the rest with HARNESS_LOG=1.
      handleStructuredLogs: ({ level, message }) => {
        onLog?.(level, message);
        if (LOG || level === "error" || level === "warn") process.stderr.write(`[worker:${level}] ${message}\n`);
      },
      // Without `persist`, D1 / KV / Durable Objects live in a temp dir that dispose() removes,
      // so every startGateway() starts empty; with it, state survives a restart of the gateway.
      ...(persist ? { resourcePersistencePath: persist } : {}),
      // The V8 inspector (DevTools protocol), for bench/profile.mjs only.
      ...(inspectorPort !== undefined ? { inspectorPort } : {}),
    }),
  );
  let url;
  try {
    url = (await mf.ready).origin;
    await applyMigrations(await mf.getD1Database(d1Database));
  } catch (e) {
    await mf.dispose().catch(() => {});
    throw e;
  }
  const gwFetch = (path, init) => fetch(url + path, init);
  return {
    url,
    mf,
    adminToken,
    fetch: gwFetch,
    async admin(method, path, body) {
      const headers = { authorization: `Bearer ${adminToken}` };
      if (body !== undefined) headers["content-type"] = "application/json";
      const res = await gwFetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      let parsed = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {}
      return { status: res.status, headers: res.headers, body: parsed, text };
    },
    stop: () => mf.dispose(),
  };
}

/** Apply dir/*.sql in name order, recording them like `wrangler d1 migrations apply` does. */
export async function applyMigrations(db, dir = join(ROOT, "migrations")) {
  await db.exec(
    "CREATE TABLE IF NOT EXISTS d1_migrations(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL);",
  );
  const applied = new Set((await db.prepare("SELECT name FROM d1_migrations").all()).results.map((r) => r.name));
  for (const name of readdirSync(dir).filter((f) => f.endsWith(".sql") && !applied.has(f)).sort()) {
    const stmts = unstable_splitSqlQuery(readFileSync(join(dir, name), "utf8"))
      .map((s) => s.trim())
      .filter((s) => s && !/^(--[^\n]*\s*)+$/.test(s));
    try {
      await db.batch([
        ...stmts.map((s) => db.prepare(s)),
        db.prepare("INSERT INTO d1_migrations (name) VALUES (?)").bind(name),
      ]);
    } catch (e) {
      throw new Error(`migration ${name} failed: ${e.message}`, { cause: e });
    }
  }
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const children = new Set();
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

function portOpen(port, host = "127.0.0.1") {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    s.once("connect", () => (s.destroy(), resolve(true)));
    s.once("error", () => resolve(false));
  });
}

/**
 * Spawn a child process and wait until it is ready: `readyLine` (string or RegExp) seen on
 * stdout/stderr, and/or `port` accepting TCP connections on 127.0.0.1.
 * Rejects (with the child's output) on early exit or after `timeoutMs`.
 * @returns {Promise<{ proc: import("node:child_process").ChildProcess, match: RegExpMatchArray | null,
 *   output: () => string, stop: () => Promise<void> }>}
 */
export async function startProcess(cmd, args = [], { readyLine, port, env, cwd = ROOT, timeoutMs = 60_000 } = {}) {
  if (readyLine === undefined && port === undefined) throw new Error("startProcess: need readyLine or port");
  const proc = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  children.add(proc);
  let out = "";
  let exited = null;
  const exitedP = new Promise((r) => proc.once("exit", (code, sig) => r((exited = { code, sig }))));
  proc.once("error", (e) => (out += `spawn error: ${e.message}\n`));
  for (const s of [proc.stdout, proc.stderr]) {
    s.setEncoding("utf8");
    s.on("data", (d) => {
      out += d;
      if (LOG) process.stderr.write(`[${cmd.split("/").pop()}] ${d}`);
    });
  }
  const stop = async () => {
    children.delete(proc);
    if (exited || proc.exitCode !== null) return;
    proc.kill("SIGTERM");
    const t = setTimeout(() => proc.kill("SIGKILL"), 3000);
    await exitedP;
    clearTimeout(t);
  };
  const name = [cmd, ...args].join(" ");
  const deadline = Date.now() + timeoutMs;
  let match = null;
  while (true) {
    if (exited) throw new Error(`${name} exited (${exited.code ?? exited.sig}) before ready:\n${out}`);
    if (readyLine !== undefined && !match) {
      match = typeof readyLine === "string" ? (out.includes(readyLine) ? [readyLine] : null) : out.match(readyLine);
    }
    if ((readyLine === undefined || match) && (port === undefined || (await portOpen(port)))) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${name} not ready after ${timeoutMs} ms:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { proc, match, output: () => out, stop };
}

/** The reference MCP server (npm @modelcontextprotocol/server-everything), streamable HTTP at /mcp. */
export async function startEverythingServer({ port: wanted } = {}) {
  const port = wanted ?? (await freePort());
  const script = join(ROOT, "node_modules/@modelcontextprotocol/server-everything/dist/index.js");
  const p = await startProcess(process.execPath, [script, "streamableHttp"], { env: { PORT: String(port) }, port });
  return { url: `http://127.0.0.1:${port}/mcp`, port, stop: p.stop, output: p.output };
}

/**
 * The Python SDK test upstream (tests/upstreams/py_server.py, mcp==2.3.0 in .venv), at /mcp.
 * `port` 0 picks a free one; pass the old port to restart "the same" server; `variants` as in py_server.py.
 */
export async function startPyServer({ port = 0, variants = [], args: extra = [] } = {}) {
  const args = ["tests/upstreams/py_server.py", "--port", String(port), ...variants.flatMap((v) => ["--variant", v]), ...extra];
  const p = await startProcess(join(ROOT, ".venv/bin/python"), args, {
    readyLine: /READY (\d+)/,
  });
  const bound = Number(p.match[1]);
  return { url: `http://127.0.0.1:${bound}/mcp`, port: bound, stop: p.stop, output: p.output };
}

// ---------------------------------------------------------------------------------------------
// Shared scenario helpers used by the test files.

/**
 * A gateway with real upstreams registered and an API key issued.
 * @param {{ everything?: boolean, py?: boolean, vars?: Record<string,string> }} opts
 * @returns {Promise<{ gw, key: string, keyId: string, upstreams: Record<string, {url,stop}>, stop: () => Promise<void> }>}
 */
export async function setupGateway({ everything = false, py = false, vars = {} } = {}) {
  // If one part fails to start, stop the others before failing: a test file whose setup threw
  // must still exit (live child processes and Miniflare would keep it, and `node --test`, alive).
  const started = await Promise.allSettled([
    startGateway({ vars }),
    everything ? startEverythingServer() : null,
    py ? startPyServer() : null,
  ]);
  const failed = started.find((r) => r.status === "rejected");
  if (failed) {
    await Promise.allSettled(started.filter((r) => r.status === "fulfilled" && r.value).map((r) => r.value.stop()));
    throw failed.reason;
  }
  const [gw, ev, pys] = started.map((r) => r.value);
  const upstreams = {};
  if (ev) upstreams.everything = ev;
  if (pys) upstreams.py = pys;
  for (const [slug, up] of Object.entries(upstreams)) {
    const r = await gw.admin("POST", "/admin/v1/servers", { slug, name: slug, url: up.url });
    if (r.status !== 201) throw new Error(`registering ${slug}: ${r.status} ${r.text}`);
  }
  const k = await gw.admin("POST", "/admin/v1/api-keys", { name: "tests" });
  if (k.status !== 201) throw new Error(`issuing a key: ${k.status} ${k.text}`);
  return {
    gw,
    key: k.body.key,
    keyId: k.body.id,
    upstreams,
    stop: async () => {
      await Promise.all([gw.stop(), ...Object.values(upstreams).map((u) => u.stop())]);
    },
  };
}

/**
 * Runs one of the real-client scripts (tests/clients) and returns its JSON line.
 * client: "py" (Python SDK), "ts-v1" (@modelcontextprotocol/sdk 1.x), "ts-v2" (@modelcontextprotocol/client).
 */
export async function runClient(client, { url, token, era = "auto", toolPrefix = "" }) {
  const [cmd, args] =
    client === "py"
      ? [join(ROOT, ".venv/bin/python"), ["tests/clients/py_client.py"]]
      : [process.execPath, ["tests/clients/ts_client.mjs", "--sdk", client === "ts-v1" ? "v1" : "v2"]];
  const argv = [...args, "--url", url, "--token", token, "--era", era, ...(toolPrefix ? ["--tool-prefix", toolPrefix] : [])];
  const proc = spawn(cmd, argv, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  proc.stdout.on("data", (d) => (out += d));
  proc.stderr.on("data", (d) => (err += d));
  const timer = setTimeout(() => proc.kill("SIGKILL"), 60_000);
  await new Promise((r) => proc.once("exit", r));
  clearTimeout(timer);
  const line = out.trim().split("\n").pop() || "";
  try {
    return JSON.parse(line);
  } catch {
    return { error: `no JSON from ${client}: ${out}\n${err}` };
  }
}

/**
 * Runs a client script of tests/clients (`.py` with the venv's Python, else Node) with `args`
 * and returns its last stdout line parsed as JSON ({ error } if it printed none).
 */
export async function runClientScript(script, args, { timeoutMs = 90_000 } = {}) {
  const path = join("tests/clients", script);
  const [cmd, argv] = script.endsWith(".py") ? [join(ROOT, ".venv/bin/python"), [path, ...args]] : [process.execPath, [path, ...args]];
  const proc = spawn(cmd, argv, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  proc.stdout.on("data", (d) => (out += d));
  proc.stderr.on("data", (d) => (err += d));
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  await new Promise((r) => proc.once("exit", r));
  clearTimeout(timer);
  const line = out.trim().split("\n").pop() || "";
  try {
    return JSON.parse(line);
  } catch {
    return { error: `no JSON from ${script}: ${out}\n${err}` };
  }
}

/**
 * A request to the gateway with a bearer `token` (none if empty) and an optional JSON `body`.
 * Returns { status, headers, text, body (parsed JSON, or null) }.
 */
export async function requestAs(gw, token, method, path, body, headers = {}) {
  const res = await gw.fetch(path, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { "content-type": "application/json" } : {}), ...headers },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let parsed = null;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, text, body: parsed };
}

/** Asserts a reply's status (default 201) and returns its parsed body. */
export function expectStatus(r, status = 201) {
  if (r.status !== status) throw new Error(`expected HTTP ${status}, got ${r.status}: ${r.text}`);
  return r.body;
}

export const MODERN = "2026-07-28";

/** `_meta` every 2026-07-28 request carries. */
export function modernMeta(extra = {}) {
  return {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": { name: "raw-test", version: "1" },
    ...extra,
  };
}

/**
 * A raw POST to an MCP endpoint. `modern` fills headers and `_meta` for 2026-07-28.
 * Returns { status, headers, body (parsed JSON or SSE messages array), text }.
 */
export async function mcpPost(gw, path, message, { key, headers = {}, modern = false, raw } = {}) {
  const h = {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    ...(key ? { authorization: `Bearer ${key}` } : {}),
  };
  let msg = message;
  if (modern && message?.method) {
    msg = { ...message, params: { ...(message.params ?? {}), _meta: { ...modernMeta(), ...(message.params?._meta ?? {}) } } };
    h["mcp-protocol-version"] = MODERN;
    h["mcp-method"] = message.method;
    const name = message.params?.name ?? message.params?.uri;
    if (name && ["tools/call", "resources/read", "prompts/get"].includes(message.method)) h["mcp-name"] = name;
  }
  const res = await gw.fetch(path, { method: "POST", headers: { ...h, ...headers }, body: raw ?? JSON.stringify(msg) });
  const text = await res.text();
  let body = null;
  if ((res.headers.get("content-type") || "").startsWith("text/event-stream")) {
    body = text
      .split(/\r?\n\r?\n/)
      .map((ev) => ev.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n"))
      .filter((d) => d)
      .map((d) => JSON.parse(d));
  } else if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  return { status: res.status, headers: res.headers, body, text };
}

/** The final JSON-RPC response in a reply (the last SSE message, or the JSON body). */
export function final(reply) {
  return Array.isArray(reply.body) ? reply.body[reply.body.length - 1] : reply.body;
}

/**
 * Opens a long-lived SSE response (a legacy GET stream or a `subscriptions/listen`) and reads
 * events as they come. `next(pred, ms)` resolves with the first event whose parsed JSON
 * satisfies `pred` ({ id, data }), or rejects after `ms`.
 */
export async function openStream(gw, path, init) {
  const ctrl = new AbortController();
  const res = await gw.fetch(path, { ...init, signal: ctrl.signal });
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  const queue = [];
  const pump = (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += decoder.decode(value, { stream: true });
        let i;
        while ((i = buf.search(/\r?\n\r?\n/)) >= 0) {
          const raw = buf.slice(0, i);
          buf = buf.slice(buf.slice(i).match(/^\r?\n\r?\n/)[0].length + i);
          const lines = raw.split(/\r?\n/);
          const data = lines.filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
          const id = lines.find((l) => l.startsWith("id:"))?.slice(3).trim();
          if (data) queue.push({ id, data: JSON.parse(data) });
        }
      }
    } catch {}
  })();
  return {
    status: res.status,
    headers: res.headers,
    async next(pred = () => true, ms = 10_000) {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline) {
        const i = queue.findIndex((e) => pred(e.data));
        if (i >= 0) return queue.splice(i, 1)[0];
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error(`no matching event within ${ms} ms; got ${JSON.stringify(queue.map((e) => e.data))}`);
    },
    close() {
      ctrl.abort();
      return pump;
    },
  };
}

/**
 * A real OpenID provider (tests/idp/oidc_server.mjs, npm oidc-provider) on loopback, signing
 * with an RSA key this process holds too (so tests can also craft tokens with it).
 * Returns { issuer, privateJwk, kid, token(resource?), stop }.
 */
export async function startOidcProvider({ loginRedirect, accessTokenTtl } = {}) {
  const { generateKeyPair, exportJWK } = await import("jose");
  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  const privateJwk = { ...(await exportJWK(privateKey)), kid: "test-key-1", alg: "RS256", use: "sig" };
  const port = await freePort();
  const p = await startProcess(process.execPath, ["tests/idp/oidc_server.mjs"], {
    readyLine: "READY",
    env: {
      OIDC_PORT: String(port),
      OIDC_JWKS: JSON.stringify({ keys: [privateJwk] }),
      ...(loginRedirect ? { OIDC_LOGIN_REDIRECT: loginRedirect } : {}),
      ...(accessTokenTtl ? { OIDC_AT_TTL: String(accessTokenTtl) } : {}),
    },
  });
  const issuer = `http://127.0.0.1:${port}`;
  return {
    issuer,
    privateJwk,
    kid: privateJwk.kid,
    async token(resource = "https://gateway.test/mcp") {
      const res = await fetch(`${issuer}/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          grant_type: "client_credentials",
          client_id: "agent-a",
          client_secret: "secret-a-secret-a-secret-a-secret-a",
          resource,
          scope: "mcp",
        }),
      });
      const body = await res.json();
      if (!body.access_token) throw new Error(`no token: ${JSON.stringify(body)}`);
      return body.access_token;
    },
    stop: p.stop,
  };
}

/**
 * A minimal browser for OAuth redirects: follows `location` headers with a cookie jar per
 * origin and, at the OpenID provider's dev login and consent pages, submits the form as
 * `account`. Stops at the first URL starting with `stopAt` and returns it.
 */
export async function browse(startUrl, stopAt, account = "alice") {
  const jar = new Map();
  const cookieHeader = (u) => [...(jar.get(new URL(u).origin) ?? new Map())].map(([k, v]) => `${k}=${v}`).join("; ");
  const keep = (u, res) => {
    const m = jar.get(new URL(u).origin) ?? new Map();
    for (const c of res.headers.getSetCookie?.() ?? []) {
      const [pair] = c.split(";");
      const i = pair.indexOf("=");
      m.set(pair.slice(0, i), pair.slice(i + 1));
    }
    jar.set(new URL(u).origin, m);
  };
  let url = startUrl;
  let method = "GET";
  let body;
  for (let hop = 0; hop < 30; hop++) {
    if (url.startsWith(stopAt)) return url;
    const res = await fetch(url, {
      method,
      redirect: "manual",
      headers: { cookie: cookieHeader(url), ...(body ? { "content-type": "application/x-www-form-urlencoded" } : {}) },
      body,
    });
    keep(url, res);
    const loc = res.headers.get("location");
    if (loc) {
      url = new URL(loc, url).toString();
      method = "GET";
      body = undefined;
      continue;
    }
    const html = await res.text();
    const m = url.match(/\/interaction\/([^/?#]+)/);
    if (res.status === 200 && m) {
      const prompt = /name="prompt" value="consent"/.test(html) || /consent/i.test(html) && !/name="login"/.test(html) ? "consent" : "login";
      method = "POST";
      body = new URLSearchParams(prompt === "login" ? { prompt, login: account, password: "x" } : { prompt }).toString();
      url = new URL(`/interaction/${m[1]}`, url).toString();
      continue;
    }
    throw new Error(`browse stuck at ${url}: HTTP ${res.status} ${html.slice(0, 300)}`);
  }
  throw new Error("too many redirects");
}

// ---------------------------------------------------------------------------------------------
// The test-only `store-conformance` build (docs/storage.md, *Store conformance*).

export const CONFORMANCE_BUILD = join(ROOT, "build-conformance");

/** Newest modification time of the files a build is made from. */
function newestSource() {
  let newest = 0;
  const visit = (p) => {
    const st = statSync(p);
    if (st.isDirectory()) for (const f of readdirSync(p)) visit(join(p, f));
    else newest = Math.max(newest, st.mtimeMs);
  };
  for (const p of ["src", "Cargo.toml", "Cargo.lock"]) visit(join(ROOT, p));
  return newest;
}

/**
 * Builds the `store-conformance` Worker into build-conformance/ (never build/) when it is
 * missing or older than the sources; scripts/test.sh builds it before the integration tests.
 */
export function ensureConformanceBuild() {
  const wasm = join(CONFORMANCE_BUILD, "index_bg.wasm");
  if (existsSync(wasm) && statSync(wasm).mtimeMs >= newestSource()) return;
  const r = spawnSync(
    "bash",
    ["scripts/build.sh", "--out-dir", "build-conformance", "--features", "store-conformance"],
    { cwd: ROOT, stdio: ["ignore", "inherit", "inherit"] },
  );
  if (r.status !== 0) throw new Error(`building the store-conformance Worker failed (${r.status ?? r.signal})`);
}
