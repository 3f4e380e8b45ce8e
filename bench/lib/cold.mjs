// cold.mjs — the first request after a fresh isolate: start a new gateway (a new workerd process
// on state persisted by an earlier one, so nothing is warm), then time its first and second
// `tools/call echo` on /mcp/{slug} (modern).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { startGateway } from "../../tests/harness.mjs";
import { median, modernCall } from "./measure.mjs";

export async function coldStart({ samples, upstreamUrl, slug, track }) {
  const dir = mkdtempSync(join(tmpdir(), "bench-cold-"));
  try {
    let gw = track(await startGateway({ persist: dir }));
    const reg = await gw.admin("POST", "/admin/v1/servers", { slug, name: slug, url: upstreamUrl });
    if (reg.status !== 201) throw new Error(`registering ${slug}: HTTP ${reg.status} ${reg.text.slice(0, 200)}`);
    const k = await gw.admin("POST", "/admin/v1/api-keys", { name: "bench-cold" });
    if (k.status !== 201) throw new Error(`issuing a key: HTTP ${k.status}`);
    await gw.stop();
    const out = { ready: [], first: [], second: [], warm: [] };
    for (let i = 0; i < samples; i++) {
      let t = performance.now();
      gw = track(await startGateway({ persist: dir }));
      out.ready.push(performance.now() - t);
      const call = modernCall(`${gw.url}/mcp/${slug}`, k.body.key);
      for (const phase of ["first", "second"]) {
        t = performance.now();
        await call();
        out[phase].push(performance.now() - t);
      }
      const warm = [];
      for (let j = 0; j < 10; j++) {
        t = performance.now();
        await call();
        warm.push(performance.now() - t);
      }
      out.warm.push(median(warm));
      await gw.stop();
    }
    return { samples, ready: median(out.ready), first: median(out.first), second: median(out.second), warm: median(out.warm), firsts: out.first };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
