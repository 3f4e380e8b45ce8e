// The official MCP conformance suite (npm @modelcontextprotocol/conformance) against each real
// upstream directly and through the gateway's /mcp/{slug} for the same upstream, for both
// requirement sets (2025-11-25: initialize + sessions; 2026-07-28: stateless). Upstreams: npm
// server-everything (legacy era) and the suite's fixture server on the Python SDK (both eras,
// tests/upstreams/py_conformance_server.py). The gateway must never score lower: every check
// that passes directly passes through the gateway. Scenarios that fail on both paths are not
// the gateway's doing; docs/conformance.md lists them with reasons and the score table
// (scripts/conformance.sh prints it).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startEverythingServer, startGateway } from "./harness.mjs";
import { passes, regressions, runSuite, startAuthProxy, startPyConformanceServer } from "./conformance/run.mjs";

const SETS = ["2025-11-25", "2026-07-28"];
const UPSTREAMS = ["everything", "py"];

/**
 * Known gaps: `set/upstream/scenario:check` → why that check passes directly but not through
 * the gateway yet. Every entry must still be such a gap — passing directly and failing (or
 * missing) through the gateway — or the test fails, so the list can only shrink and never
 * hides a new regression. `flaky: true` marks a gap that only sometimes shows: it must still
 * pass directly, but may pass through the gateway.
 */
const GATEWAY_GAPS = {
};

/**
 * Checks that pass directly only because the upstream lacks the scenario's tool and answers an
 * unknown tool with an `isError` tool result, which the scenario happens to accept; the gateway
 * answers a tool outside the approved catalog with JSON-RPC -32602 "unknown tool" (deny by
 * default, and the specification's protocol error for unknown tools). `upstream/scenario` →
 * the tool. The test checks that the direct result really is that "not found" answer.
 */
const FALSE_DIRECT_PASSES = {
  "everything/tools-call-simple-text": "test_simple_text",
  "everything/tools-call-error": "test_error_handling",
  // server-everything has no `test_reconnection`: directly, its SSE answer to the unknown tool
  // happens to start with a priming event; the gateway answers the unknown tool with a JSON
  // error, so the scenario stops before its checks. Priming through the gateway is tested in
  // relaying.test.mjs ("a request stream starts with a priming event").
  "everything/server-sse-polling": "test_reconnection",
  // The fixture has no input-required (MRTR) tools yet.
  "py/input-required-result-ignore-extra-params": "test_input_required_result_elicitation",
};

const stops = [];
let upstreams;
let proxy;
before(async () => {
  const [gw, everything, py] = await Promise.all([startGateway(), startEverythingServer(), startPyConformanceServer()]);
  stops.push(gw.stop, everything.stop, py.stop);
  upstreams = { everything, py };
  for (const [slug, up] of Object.entries(upstreams)) {
    const r = await gw.admin("POST", "/admin/v1/servers", { slug, name: slug, url: up.url });
    assert.equal(r.status, 201, r.text);
  }
  const k = await gw.admin("POST", "/admin/v1/api-keys", { name: "conformance" });
  assert.equal(k.status, 201, k.text);
  proxy = await startAuthProxy(gw.url, k.body.key);
  stops.push(proxy.stop);
});
after(() => Promise.all(stops.map((s) => s())));

describe("conformance: the gateway scores at least as well as the upstream", () => {
  for (const set of SETS) {
    for (const slug of UPSTREAMS) {
      test(`${set} ${slug}: direct vs /mcp/${slug}`, async () => {
        const urls = [upstreams[slug].url, `${proxy.url}/mcp/${slug}`];
        const [direct, gateway] = await Promise.all(urls.map((u) => runSuite(u, set)));
        // A scenario that threw leaves no result file. Run it once more alone on the path that
        // lacks it, so a fluke of a loaded machine is told apart from a real difference.
        for (const name of new Set([...direct.keys(), ...gateway.keys()])) {
          for (const [i, results] of [direct, gateway].entries()) {
            if (!results.has(name)) {
              const again = await runSuite(urls[i], set, name).catch(() => new Map());
              if (again.has(name)) results.set(name, again.get(name));
            }
          }
        }
        if (process.env.CONFORMANCE_LOG) {
          for (const [name, d] of direct) {
            console.log(`${set} ${slug} ${name}: direct ${passes(d) ? "pass" : "FAIL"}, gateway ${passes(gateway.get(name)) ? "pass" : "FAIL"}`);
          }
        }
        const falsePass = (name) => FALSE_DIRECT_PASSES[`${slug}/${name}`];
        for (const [name, d] of direct) {
          const tool = falsePass(name);
          if (!tool || !passes(d)) continue;
          const said = JSON.stringify([...d.checks.values()].map((c) => c.details));
          // The TypeScript SDK says "Tool x not found", the Python SDK "Unknown tool: x".
          const notFound = new RegExp(`Tool ${tool} not found|Unknown tool: ${tool}`);
          assert.match(said, notFound, `${name} on ${slug} is no longer a false pass — remove it`);
        }

        const gap = (r) => GATEWAY_GAPS[`${set}/${slug}/${r.scenario}:${r.id}`];
        const found = regressions(direct, gateway, (name) => !falsePass(name)).filter((r) => !gap(r));
        assert.deepEqual(
          found.map((r) => r.text),
          [],
          `checks that pass directly but fail through the gateway:\n  ${found.map((r) => r.text).join("\n  ")}`,
        );

        for (const [key, { why, flaky }] of Object.entries(GATEWAY_GAPS)) {
          const [s, u, rest] = key.split("/");
          if (s !== set || u !== slug) continue;
          const [scenario, id] = rest.split(":");
          const d = direct.get(scenario)?.checks.get(id);
          assert.equal(d?.status, "SUCCESS", `gap ${key} (${why}) no longer passes directly — remove it`);
          if (flaky) continue;
          const g = gateway.get(scenario)?.checks.get(id);
          assert.notEqual(g?.status, "SUCCESS", `gap ${key} (${why}) passes through the gateway now — remove it`);
        }
      });
    }
  }
});
