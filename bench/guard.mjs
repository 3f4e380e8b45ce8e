// guard.mjs — what the default guardrail set costs a call (issue 12's bench row): the same
// `tools/call` through one gateway to one upstream registered twice, `plain` (no policy) and
// `guarded` (a policy scoped to that server with every detector, redact, on arguments and
// results), with a 4 KB argument and a 16 KB result. Rows interleave in a fresh random order
// each round; the added p50 is the median over rounds of (guarded − plain) in the same round.
// Prints figures; asserts nothing about time. Every answer is checked (the result must be the
// upstream's, redacted where a policy applies).
//
// Usage: node bench/guard.mjs (after scripts/build.sh). Knobs: GUARD_ROUNDS (5), GUARD_N (200),
// GUARD_WARMUP (20), GUARD_PAIRED_N (1000 calls each side, alternating one by one, after the
// rounds) and GUARD_PAIRED_S (its time bound, 120), GUARD_BUILD (the Worker build to run, default build/; e.g. an older
// commit's, built with `scripts/build.sh --out-dir`, for a before/after at the same load).
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { MODERN, ROOT, modernMeta, startGateway, startProcess } from "../tests/harness.mjs";
import { measurePaired, median, pct, post, rpcResult, shuffled } from "./lib/measure.mjs";
import { cpuMs, loadavg, withNewWorkerd } from "./lib/procs.mjs";
import { ms, table } from "./lib/report.mjs";

const ROUNDS = Number(process.env.GUARD_ROUNDS || 5);
const N = Number(process.env.GUARD_N || 200);
const WARMUP = Number(process.env.GUARD_WARMUP || 20);
const PAIRED_N = Number(process.env.GUARD_PAIRED_N || 1000);
const PAIRED_MAX_S = Number(process.env.GUARD_PAIRED_S || 120);
const RESULT_BYTES = 16 * 1024;

// A 4 KB argument of ordinary prose with one e-mail address in it.
const SENTENCE = "Please summarise the attached notes from the planning meeting for the platform team. ";
const ARGUMENT = `${SENTENCE.repeat(Math.ceil(4096 / SENTENCE.length))}`.slice(0, 4096 - 40) + " Reply to ops.lead@example.com.";

const DEFAULT_SET = ["email", "phone", "credit_card", "iban", "us_ssn", "ip_address", "secret", "prompt_injection"];

/** The default guardrail set: every detector, redact, on arguments and results (scope: all). */
export const GUARD_POLICY = {
  name: "default-guardrails",
  scope: {},
  mode: "enforce",
  rules: [{ kind: "guardrail", on: ["arguments", "results"], detect: DEFAULT_SET, action: "redact" }],
};

/**
 * One `tools/call` of `padded` (the 4 KB argument, a 16 KB result) at `url`, checked: the result
 * must be whole, and redacted exactly when `redacted` (default: true).
 */
export function guardedCall(url, key, redacted = true) {
  let id = 1;
  return async () => {
    const n = id++;
    const msg = {
      jsonrpc: "2.0", id: n, method: "tools/call",
      params: { name: "padded", arguments: { message: ARGUMENT, size: RESULT_BYTES }, _meta: modernMeta() },
    };
    const headers = { authorization: `Bearer ${key}`, "mcp-protocol-version": MODERN, "mcp-method": "tools/call", "mcp-name": "padded" };
    const result = rpcResult(await post(url, headers, msg), n);
    const text = result.content?.[0]?.text ?? "";
    if (text.length < RESULT_BYTES) throw new Error(`short result: ${text.length} bytes`);
    const found = text.includes("[EMAIL]") && !text.includes("ops.lead@example.com");
    if (found !== redacted) throw new Error(`${url}: redaction ${found ? "applied" : "missing"}`);
  };
}

async function main() {
  console.log(`guardrail bench — ${process.env.GUARD_BUILD || "build"}/, load ${loadavg()}; ${ROUNDS} rounds × ${N} sequential calls per row`);
  const up = await startProcess(join(ROOT, ".venv/bin/python"), ["bench/upstreams/ten_tools.py", "--port", "0", "--padded"], {
    readyLine: /READY (\d+)/,
  });
  const build = process.env.GUARD_BUILD ? join(ROOT, process.env.GUARD_BUILD) : undefined;
  const [gw, pid] = await withNewWorkerd(() => startGateway(build ? { build } : {}));
  try {
    const url = `http://127.0.0.1:${up.match[1]}/mcp`;
    for (const slug of ["plain", "guarded"]) {
      const r = await gw.admin("POST", "/admin/v1/servers", { slug, name: slug, url });
      if (r.status !== 201) throw new Error(`register ${slug}: ${r.text}`);
    }
    const policy = await gw.admin("POST", "/admin/v1/policies", { ...GUARD_POLICY, scope: { server: "guarded" } });
    if (policy.status !== 201) throw new Error(`policy: ${policy.text}`);
    const key = (await gw.admin("POST", "/admin/v1/api-keys", { name: "bench" })).body.key;
    const caller = (slug) => guardedCall(`${gw.url}/mcp/${slug}`, key, slug === "guarded");
    const rows = { plain: caller("plain"), guarded: caller("guarded") };
    const per = { plain: [], guarded: [] };
    for (let r = 0; r < ROUNDS; r++) {
      for (const name of shuffled(Object.keys(rows))) {
        for (let i = 0; i < WARMUP; i++) await rows[name]();
        const cpu0 = cpuMs(pid);
        const samples = [];
        for (let i = 0; i < N; i++) {
          const t = performance.now();
          await rows[name]();
          samples.push(performance.now() - t);
        }
        samples.sort((a, b) => a - b);
        per[name].push({ p50: pct(samples, 50), p99: pct(samples, 99), cpu: (cpuMs(pid) - cpu0) / N });
      }
    }
    const added = per.guarded.map((g, i) => g.p50 - per.plain[i].p50);
    const cpuAdded = per.guarded.map((g, i) => g.cpu - per.plain[i].cpu);
    console.log(
      table(
        ["row", "p50 ms", "p99 ms", "workerd CPU/req ms"],
        ["plain", "guarded"].map((k) => [k, ms(median(per[k].map((x) => x.p50))), ms(median(per[k].map((x) => x.p99))), ms(median(per[k].map((x) => x.cpu)))]),
      ),
    );
    console.log(`guardrails added p50: ${ms(median(added), 3)} ms (per round: ${added.map((x) => x.toFixed(3)).join(", ")})`);
    console.log(`guardrails added CPU: ${ms(median(cpuAdded), 3)} ms per call`);
    // Paired: the two rows alternate call by call, so load and drift reach both alike (the
    // rounds above compare blocks run seconds apart, which on a loaded machine differ by more
    // than what is measured).
    const paired = await measurePaired(rows.guarded, rows.plain, { warmup: WARMUP, n: PAIRED_N, maxS: PAIRED_MAX_S });
    for (const [m, n] of paired.errors) console.log(`error (paired) x${n}: ${m}`);
    if (paired.errorCount) throw new Error(`${paired.errorCount} paired calls failed`);
    const [g, p] = paired.sides;
    console.log(
      `guardrails added p50, paired (${paired.rounds} calls each, alternating): ${ms(g.p50 - p.p50, 3)} ms ` +
        `(guarded ${ms(g.p50, 3)}, plain ${ms(p.p50, 3)}; p99 ${ms(g.p99)} / ${ms(p.p99)})`,
    );
    console.log(`load at end ${loadavg()}`);
  } finally {
    await gw.stop();
    await up.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
