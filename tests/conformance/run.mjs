// Runs the official MCP conformance suite (npm @modelcontextprotocol/conformance, its `server`
// command) against one MCP endpoint for one requirement set, and reads back the per-check
// results it writes (results/server-<scenario>-<timestamp>/checks.json).
//
// The suite has no option for request headers, and the gateway needs `Authorization: Bearer
// <api key>`: startAuthProxy() is a transparent loopback forwarder that adds that one header and
// otherwise passes bytes, status, headers (Host and Origin included, so DNS-rebinding checks
// reach the gateway unchanged) and stream ends through in both directions.

import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, startProcess } from "../harness.mjs";

const CLI = join(ROOT, "node_modules/@modelcontextprotocol/conformance/dist/index.js");
/** Per-scenario timeout given to the suite: a scenario that hangs costs this, not the default 30 s. */
export const SCENARIO_TIMEOUT_MS = 15_000;
/** Bound on one whole suite run (about 50 scenarios). */
const RUN_TIMEOUT_MS = 10 * 60_000;
const SEVERITY = { FAILURE: 3, WARNING: 2, SUCCESS: 1, INFO: 0, SKIPPED: 0 };

/**
 * Runs one requirement set against `url` (or only `scenario`, at that set's wire version).
 * @returns {Promise<Map<string, { checks: Map<string, {status: string, error?: string}> }>>}
 *   scenario → check id → the most severe status of that id (ids repeat within a scenario).
 */
export async function runSuite(url, requirements, scenario) {
  const out = mkdtempSync(join(tmpdir(), "conformance-"));
  try {
    // Node 22 (the suite needs it): the node running this test, from node_modules/.bin.
    const which = scenario ? ["--scenario", scenario, "--spec-version", requirements] : ["--requirements", requirements];
    const args = [CLI, "server", "--url", url, ...which, "-o", out, "--timeout", String(SCENARIO_TIMEOUT_MS)];
    const proc = spawn(process.execPath, args, { cwd: out, stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    proc.stdout.on("data", (d) => (log += d));
    proc.stderr.on("data", (d) => (log += d));
    const timer = setTimeout(() => proc.kill("SIGKILL"), RUN_TIMEOUT_MS);
    const code = await new Promise((r) => proc.once("exit", r));
    clearTimeout(timer);
    const results = readResults(out);
    if (results.size === 0) throw new Error(`conformance run against ${url} produced no results (exit ${code}):\n${log}`);
    return results;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

function readResults(dir) {
  const results = new Map();
  for (const d of readdirSync(dir)) {
    const m = d.match(/^server-(.+)-\d{4}-\d\d-\d\dT[\d-]+Z$/);
    if (!m) continue;
    let checks;
    try {
      checks = JSON.parse(readFileSync(join(dir, d, "checks.json"), "utf8"));
    } catch {
      continue;
    }
    const byId = new Map();
    for (const c of checks) {
      const prev = byId.get(c.id);
      if (!prev || (SEVERITY[c.status] ?? 0) > (SEVERITY[prev.status] ?? 0)) {
        byId.set(c.id, { status: c.status, error: c.errorMessage, details: c.details });
      }
    }
    results.set(m[1], { checks: byId });
  }
  return results;
}

/**
 * The suite's fixture server on the Python SDK (tests/upstreams/py_conformance_server.py), at /mcp.
 * @returns {Promise<{ url: string, stop: () => Promise<void> }>}
 */
export async function startPyConformanceServer() {
  const p = await startProcess(join(ROOT, ".venv/bin/python"), ["tests/upstreams/py_conformance_server.py", "--port", "0"], {
    readyLine: /READY (\d+)/,
  });
  return { url: `http://127.0.0.1:${p.match[1]}/mcp`, stop: p.stop };
}

/** The server scenarios a requirement set scores (requirements/<set>.yaml, list `server:`). */
export function scoredScenarios(set) {
  const yaml = readFileSync(join(ROOT, "node_modules/@modelcontextprotocol/conformance/requirements", `${set}.yaml`), "utf8");
  const block = yaml.split(/^server:\s*$/m)[1]?.split(/^\S/m)[0] ?? "";
  return new Set([...block.matchAll(/^\s+-\s+(\S+)\s*$/gm)].map((m) => m[1]));
}

/** A scenario passes when none of its checks failed. */
export const passes = (scenario) => scenario && [...scenario.checks.values()].every((c) => c.status !== "FAILURE");

/**
 * Checks that passed directly but not through the gateway (failed, missing, or a warning
 * there): `{ scenario, id, text }`, for the
 * scenarios `only` accepts (all when omitted).
 */
export function regressions(direct, gateway, only) {
  const found = [];
  for (const [scenario, d] of direct) {
    if (only && !only(scenario)) continue;
    const g = gateway.get(scenario);
    for (const [id, c] of d.checks) {
      if (c.status !== "SUCCESS") continue;
      const gc = g?.checks.get(id);
      if (!gc) found.push({ scenario, id, text: `${scenario}: ${id}: passes directly, missing through the gateway` });
      // INFO marks an optional behaviour the server chose not to use (e.g. JSON instead of SSE).
      else if (gc.status === "FAILURE" || gc.status === "WARNING") {
        const what = gc.status === "FAILURE" ? "fails" : `is ${gc.status}`;
        found.push({ scenario, id, text: `${scenario}: ${id}: passes directly, ${what} through the gateway: ${gc.error ?? ""}` });
      }
    }
  }
  return found;
}

/**
 * A loopback forwarder to `target` (an origin) that adds `Authorization: Bearer <token>`.
 * @returns {Promise<{ url: string, stop: () => Promise<void> }>}
 */
export async function startAuthProxy(target, token) {
  const t = new URL(target);
  const server = http.createServer((req, res) => {
    const headers = { ...req.headers, authorization: `Bearer ${token}` };
    const up = http.request(
      { host: t.hostname, port: t.port, method: req.method, path: req.url, headers, agent: false },
      (upRes) => {
        res.writeHead(upRes.statusCode, upRes.rawHeaders);
        upRes.pipe(res);
      },
    );
    up.on("error", () => res.destroy());
    // The client going away ends the upstream exchange too (it is how a stream is cancelled).
    res.on("close", () => up.destroy());
    req.pipe(up);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    stop: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
