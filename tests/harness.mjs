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
// Set HARNESS_LOG=1 to see the Worker's console output and the upstreams' output.

import { spawn } from "node:child_process";
import { readdirSync, readFileSync, existsSync } from "node:fs";
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
 * @param {{ vars?: Record<string, string>, d1Database?: string }} [opts]
 *   vars: extra/overriding plain-text bindings (ADMIN_TOKEN defaults to "test-admin-token").
 * @returns {Promise<{ url: string, mf: Miniflare, adminToken: string,
 *   fetch: (path: string, init?: RequestInit) => Promise<Response>,
 *   admin: (method: string, path: string, body?: unknown) =>
 *     Promise<{ status: number, headers: Headers, body: any, text: string }>,
 *   stop: () => Promise<void> }>}
 */
export async function startGateway({ vars = {}, d1Database = "DB" } = {}) {
  for (const f of ["index.js", "index_bg.wasm"]) {
    if (!existsSync(join(BUILD, f))) throw new Error(`build/${f} missing — run scripts/build.sh`);
  }
  const { workerOptions } = unstable_getMiniflareWorkerOptions(join(ROOT, "wrangler.toml"));
  const adminToken = vars.ADMIN_TOKEN ?? ADMIN_TOKEN;
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      ...workerOptions,
      modulesRoot: BUILD,
      modules: [
        { type: "ESModule", path: join(BUILD, "index.js") },
        { type: "CompiledWasm", path: join(BUILD, "index_bg.wasm") },
      ],
      bindings: { ...workerOptions.bindings, ADMIN_TOKEN: adminToken, ...vars },
      host: "127.0.0.1",
      port: 0, // random free port, read back from mf.ready
      cf: false, // offline: don't fetch the Request.cf object
      log: new Log(LOG ? LogLevel.DEBUG : LogLevel.WARN),
      ...(LOG ? {} : { handleStructuredLogs: () => {} }),
      // No resourcePersistencePath: D1 / KV / Durable Objects live in a temp dir that
      // dispose() removes, so every startGateway() starts empty.
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
  for (const name of readdirSync(dir).filter((f) => f.endsWith(".sql")).sort()) {
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
export async function startProcess(cmd, args = [], { readyLine, port, env, cwd = ROOT, timeoutMs = 20_000 } = {}) {
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
export async function startEverythingServer() {
  const port = await freePort();
  const script = join(ROOT, "node_modules/@modelcontextprotocol/server-everything/dist/index.js");
  const p = await startProcess(process.execPath, [script, "streamableHttp"], { env: { PORT: String(port) }, port });
  return { url: `http://127.0.0.1:${port}/mcp`, port, stop: p.stop, output: p.output };
}

/** The Python SDK test upstream (tests/upstreams/py_server.py, mcp==2.3.0 in .venv), at /mcp. */
export async function startPyServer() {
  const p = await startProcess(join(ROOT, ".venv/bin/python"), ["tests/upstreams/py_server.py", "--port", "0"], {
    readyLine: /READY (\d+)/,
  });
  const port = Number(p.match[1]);
  return { url: `http://127.0.0.1:${port}/mcp`, port, stop: p.stop, output: p.output };
}
