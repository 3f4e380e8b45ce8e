// Prints the conformance score table: the official suite against each upstream directly and
// through the gateway's /mcp/{slug}, per requirement set, scenario by scenario. Run by
// scripts/conformance.sh (which builds first). Knobs (env): CONFORMANCE_SETS (default
// "2025-11-25,2026-07-28"), CONFORMANCE_UPSTREAMS ("everything,py"), CONFORMANCE_SCENARIO (one
// scenario only), CONFORMANCE_REPEAT (runs per set and upstream, default 1: flakiness shows as
// a changing verdict). Exits 1 when the gateway scores lower than the upstream anywhere.
import { startEverythingServer, startGateway } from "../harness.mjs";
import { passes, regressions, runSuite, scoredScenarios, startAuthProxy, startPyConformanceServer } from "./run.mjs";

const sets = (process.env.CONFORMANCE_SETS ?? "2025-11-25,2026-07-28").split(",");
const slugs = (process.env.CONFORMANCE_UPSTREAMS ?? "everything,py").split(",");
const scenario = process.env.CONFORMANCE_SCENARIO || undefined;
const repeat = Number(process.env.CONFORMANCE_REPEAT ?? 1);
const starters = { everything: startEverythingServer, py: startPyConformanceServer };

const stops = [];
let worse = false;
try {
  const gw = await startGateway();
  stops.push(gw.stop);
  const ups = {};
  for (const slug of slugs) {
    ups[slug] = await starters[slug]();
    stops.push(ups[slug].stop);
    const r = await gw.admin("POST", "/admin/v1/servers", { slug, name: slug, url: ups[slug].url });
    if (r.status !== 201) throw new Error(`registering ${slug}: ${r.text}`);
  }
  const k = await gw.admin("POST", "/admin/v1/api-keys", { name: "conformance" });
  const proxy = await startAuthProxy(gw.url, k.body.key);
  stops.push(proxy.stop);
  const count = (r) => {
    const c = [...r.checks.values()];
    return `${c.filter((x) => x.status === "SUCCESS").length}/${c.length}`;
  };
  for (const set of sets) {
    const scored = scoredScenarios(set);
    for (const slug of slugs) {
      for (let i = 0; i < repeat; i++) {
        const t0 = Date.now();
        const [direct, gateway] = await Promise.all([runSuite(ups[slug].url, set, scenario), runSuite(`${proxy.url}/mcp/${slug}`, set, scenario)]);
        const secs = ((Date.now() - t0) / 1000).toFixed(1);
        console.log(`\n## ${set} — ${slug}${repeat > 1 ? ` (run ${i + 1})` : ""} — ${secs} s\n`);
        console.log("| scenario | scored | direct | gateway | |\n|---|---|---|---|---|");
        for (const name of [...direct.keys()].sort()) {
          const d = direct.get(name);
          const g = gateway.get(name);
          const reg = regressions(new Map([[name, d]]), gateway);
          const mark = reg.length ? "**worse**" : passes(g) && !passes(d) ? "better" : "";
          console.log(`| ${name} | ${scored.has(name) ? "yes" : "no"} | ${passes(d) ? "pass" : "FAIL"} ${count(d)} | ${passes(g) ? "pass" : "FAIL"} ${g ? count(g) : "-"} | ${mark} |`);
        }
        const score = (r) => [...scored].filter((n) => passes(r.get(n))).length;
        console.log(`\nscored scenarios passing: direct ${score(direct)}/${scored.size}, gateway ${score(gateway)}/${scored.size}`);
        const reg = regressions(direct, gateway);
        if (reg.length) {
          worse = true;
          console.log(`\nchecks passing directly but not through the gateway:\n- ${reg.map((r) => r.text).join("\n- ")}`);
        }
      }
    }
  }
} finally {
  await Promise.all(stops.map((s) => s().catch(() => {})));
}
process.exit(worse ? 1 : 0);
