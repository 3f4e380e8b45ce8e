// The admin API as a contract (docs/admin-api.md, *The contract*): the OpenAPI 3.1 document in
// src/admin/openapi.json, linted by Redocly's CLI with zero errors, served by the built Worker at
// /admin/v1/openapi.json to admins only, and Schemathesis (PyPI, installed by scripts/setup.sh in
// .venv-schemathesis) fuzzing every operation it describes against a live gateway holding real
// data (a server on a real MCP upstream, a directory, a policy, a virtual server): no 5xx the
// document does not name, every status, content type, header and body as documented, invalid
// input refused, no operation without credentials, undocumented methods 405 with `Allow`.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, freePort, startGateway, startPyServer } from "./harness.mjs";

const DOC = join(ROOT, "src/admin/openapi.json");
const ST = join(ROOT, ".venv-schemathesis/bin/st");
// Reproducible runs: one seed; about 35 generated cases per operation and phase, a few
// thousand in all, within a few minutes on two cores.
const SEED = "20261207";
const MAX_EXAMPLES = "10";
// The three operations that read an upstream answer 502 when it cannot be read: documented,
// and the gateway's report of its upstream (the fuzzer aims some at a closed port), not its own
// failure.
const READS_UPSTREAM = "^(createServer|updateServer|syncServer|applyConfig)$";
// Every check Schemathesis has but four that cannot apply here:
// - positive_data_acceptance: a request valid by the schema may still break a rule no schema
//   states (an id that must exist, a slug that must be free, a tool that must be in the
//   server's catalog, a policy's rule grammar), and is then rightly refused;
// - use_after_free, ensure_resource_availability: they follow OpenAPI links between operations
//   (stateful testing), which the document does not declare;
// - object_level_authorization: it needs a second tenant's credentials (tenant isolation has its
//   own tests: tenancy, isolation, access-control).
// The rest include not_a_server_error, status_code_conformance, content_type_conformance,
// response_headers_conformance, response_schema_conformance, negative_data_rejection,
// ignored_auth, unsupported_method and allow_header_conformance.
const EXCLUDED_CHECKS = [
  "positive_data_acceptance",
  "use_after_free",
  "ensure_resource_availability",
  "object_level_authorization",
].join(",");

test("the document passes redocly lint with zero errors", () => {
  // `redocly` from node_modules/.bin (on PATH in scripts/test.sh); rules in redocly.yaml.
  const r = spawnSync("redocly", ["lint", "--config", join(ROOT, "redocly.yaml"), DOC], {
    cwd: ROOT,
    encoding: "utf8",
  });
  assert.ifError(r.error);
  const out = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, out);
  assert.match(out, /Your API description is valid/, out);
  assert.doesNotMatch(out, /\d+ errors?\b/, out);
});

let gw;
let up;
let seeded;
before(async () => {
  [gw, up] = await Promise.all([
    startGateway({ vars: { VAULT_KEYS: `k1:${Buffer.alloc(32, 7).toString("base64")}`, UPSTREAM_TIMEOUT_MS: "3000" } }),
    startPyServer(),
  ]);
  seeded = await seed();
});
after(() => Promise.all([gw?.stop(), up?.stop()]));

async function created(path, body) {
  const r = await gw.admin("POST", path, body);
  assert.equal(r.status, 201, `${path}: ${r.text}`);
  return r.body;
}

/** One of everything the operations act on, each id keyed by the path prefix it goes in. */
async function seed() {
  const org = (await created("/admin/v1/orgs", { name: "fuzz" })).id;
  const ws = (await created("/admin/v1/workspaces", { name: "w", parent_id: org })).id;
  const team = (await created("/admin/v1/teams", { name: "t", parent_id: ws })).id;
  const user = (await created("/admin/v1/users", { name: "u", parent_id: org })).id;
  const agent = (await created("/admin/v1/agents", { name: "a", parent_id: org })).id;
  await created("/admin/v1/servers", { slug: "py", name: "py", url: up.url, org_id: org });
  await created("/admin/v1/virtual-servers", {
    slug: "v",
    name: "v",
    org_id: org,
    tools: [{ server: "py", tool: "echo" }],
  });
  const policy = (
    await created("/admin/v1/policies", {
      org,
      name: "p",
      rules: [{ kind: "guardrail", on: ["arguments"], detect: ["email"], action: "redact" }],
    })
  ).id;
  const key = (await created("/admin/v1/api-keys", { name: "k", principal_id: agent })).id;
  const grant = (
    await created("/admin/v1/grants", { subject_kind: "user", subject_id: user, resource: "py", effect: "allow" })
  ).id;
  const role = (await created("/admin/v1/roles", { principal_id: user, role: "viewer", scope_id: org })).id;
  const idp = (
    await created("/admin/v1/identity-providers", { org_id: org, issuer: "https://idp.invalid", audiences: ["gw"] })
  ).id;
  const ids = {
    "/orgs": { id: org },
    "/workspaces": { id: ws, principal_id: user },
    "/teams": { id: team, principal_id: user },
    "/users": { id: user },
    "/agents": { id: agent },
    "/servers": { slug: "py", tool: "echo" },
    "/virtual-servers": { slug: "v" },
    "/policies": { id: policy },
    "/api-keys": { id: key },
    "/grants": { id: grant },
    "/roles": { id: role },
    "/identity-providers": { id: idp },
  };
  // Body fields naming other objects, per path prefix.
  const body = {
    "/workspaces": { parent_id: org, principal_id: user },
    "/teams": { parent_id: ws, principal_id: user },
    "/users": { parent_id: org },
    "/agents": { parent_id: org },
    "/servers": { org_id: org },
    "/virtual-servers": { org_id: org },
    "/policies": { org, principal: user, server: "py", tool: "echo" },
    "/api-keys": { principal_id: agent },
    "/grants": { subject_id: user, resource: "py" },
    "/roles": { principal_id: user, scope_id: org },
    "/identity-providers": { org_id: org },
  };
  return { ids, body };
}

test("the Worker serves the document to admins, and only to them", async () => {
  const r = await gw.admin("GET", "/admin/v1/openapi.json");
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get("content-type"), "application/json");
  assert.deepEqual(r.body, JSON.parse(readFileSync(DOC, "utf8")));
  const anon = await gw.fetch("/admin/v1/openapi.json");
  assert.equal(anon.status, 401);
  assert.equal(anon.headers.get("content-type"), "application/problem+json");
  assert.equal((await anon.json()).type, "https://mcp-gateway.dev/problems/unauthorized");
});

test("a method the API does not know is 405 with Allow, never served as a GET", async () => {
  // workers-rs reads methods it does not know (QUERY, PROPFIND, …) as GET; the gateway reads the
  // method as sent (Schemathesis's unsupported_method found QUERY answered 200).
  for (const method of ["QUERY", "PROPFIND", "PUT"]) {
    const r = await gw.fetch("/admin/v1/servers", { method, headers: { authorization: `Bearer ${gw.adminToken}` } });
    assert.equal(r.status, 405, method);
    assert.equal(r.headers.get("allow"), "GET, POST", method);
    assert.equal((await r.json()).type, "https://mcp-gateway.dev/problems/method-not-allowed");
  }
});

/** Runs `st run` and resolves with its exit code and output. */
function schemathesis(dir, filter) {
  const args = [
    "--config-file",
    join(dir, "schemathesis.toml"),
    "run",
    `${gw.url}/admin/v1/openapi.json`,
    "--url",
    `${gw.url}/admin/v1`,
    "--header",
    `Authorization: Bearer ${gw.adminToken}`,
    "--checks",
    "all",
    "--exclude-checks",
    EXCLUDED_CHECKS,
    "--phases",
    "examples,coverage,fuzzing",
    "--max-examples",
    MAX_EXAMPLES,
    "--seed",
    SEED,
    "--workers",
    "1",
    "--generation-database",
    "none",
    "--request-timeout",
    "30",
    "--no-color",
    "--continue-on-failure",
    ...filter,
  ];
  return new Promise((resolve) => {
    const p = spawn(ST, args, {
      cwd: dir,
      env: {
        ...process.env,
        SCHEMATHESIS_HOOKS: join(ROOT, "tests/openapi/st_hooks.py"),
        ST_SEEDED: JSON.stringify(seeded.ids),
        ST_BODY_IDS: JSON.stringify(seeded.body),
        ST_UPSTREAM: up.url,
        ST_CLOSED: closedUrl,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (out += d));
    p.on("close", (code) => resolve({ code, out }));
  });
}

let closedUrl;
test("schemathesis: every operation, as documented, no server errors", { timeout: 15 * 60_000 }, async () => {
  assert.ok(existsSync(ST), `${ST} missing — run scripts/setup.sh`);
  // A port nothing listens on: where fuzzed upstream URLs that are not the real one point.
  closedUrl = `http://127.0.0.1:${await freePort()}/mcp`;
  const dir = mkdtempSync(join(tmpdir(), "st-"));
  try {
    writeFileSync(
      join(dir, "schemathesis.toml"),
      [
        "[[operations]]",
        `include-operation-id-regex = "${READS_UPSTREAM}"`,
        'checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "502"]',
        "",
        // A document over a list's maxItems may also be over the 256 KiB body cap (as YAML it
        // often is): refused with 413 before it is read, which is as much a refusal as 422.
        "[[operations]]",
        'include-operation-id = "applyConfig"',
        'checks.negative_data_rejection.expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]',
        "",
      ].join("\n"),
    );
    // Everything but removals first, then the removals: a seeded object deleted early would
    // leave the operations after it nothing but 404s.
    // Applying a configuration deletes what its document leaves out, so it runs after them.
    const runs = [
      ["everything but DELETE and applyConfig", ["--exclude-method", "DELETE", "--exclude-operation-id", "applyConfig"]],
      ["DELETE", ["--include-method", "DELETE"]],
      ["applyConfig", ["--include-operation-id", "applyConfig"]],
    ];
    let total = 0;
    for (const [name, filter] of runs) {
      const { code, out: raw } = await schemathesis(dir, filter);
      // Long generated bodies (hundreds of KB) are cut, so the summary keeps every failure.
      const out = raw
        .split("\n")
        .map((l) => (l.length > 600 ? `${l.slice(0, 600)}… (${l.length} characters)` : l))
        .join("\n");
      // The summary: the last part of the output (every failure with its reproduction).
      console.log(`--- schemathesis (${name}) ---\n${out.slice(-20_000)}`);
      assert.equal(code, 0, `schemathesis (${name}) failed:\n${out.slice(-20_000)}`);
      const cases = out.match(/Test cases:\s*\n?\s*(\d+) generated/);
      total += cases ? Number(cases[1]) : 0;
    }
    console.log(`schemathesis: ${total} generated test cases in all`);
    assert.ok(total >= 2000, `only ${total} test cases generated`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
