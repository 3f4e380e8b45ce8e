// Keyset pagination of the lists the gateway builds (/mcp): registering servers in the middle of
// a walk repeats nothing and skips nothing that existed when the walk began; cursors stay
// tamper-proof. Real Python SDK servers, tiny pages.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { final, mcpPost, setupGateway, startPyServer } from "./harness.mjs";

let env;
const extra = [];
before(async () => {
  env = await setupGateway({ py: true, vars: { LIST_PAGE_SIZE: "2" } });
});
after(async () => {
  for (const s of extra) await s.stop();
  await env?.stop();
});

async function page(method, cursor) {
  const params = cursor ? { cursor } : {};
  const r = await mcpPost(env.gw, "/mcp", { jsonrpc: "2.0", id: 1, method, params }, { key: env.key, modern: true });
  const body = final(r);
  assert.ok(body.result, r.text);
  return body.result;
}

async function register(slug) {
  const up = await startPyServer();
  extra.push(up);
  const r = await env.gw.admin("POST", "/admin/v1/servers", { slug, name: slug, url: up.url });
  assert.equal(r.status, 201, r.text);
}

test("servers registered mid-walk: no duplicates, nothing that existed at the start skipped", async () => {
  const all = async () => {
    const names = [];
    let cursor;
    do {
      const p = await page("tools/list", cursor);
      names.push(...p.tools.map((t) => t.name));
      cursor = p.nextCursor;
    } while (cursor);
    return names;
  };
  const atStart = await all();
  assert.ok(atStart.length > 4, "several pages");
  const seen = [];
  let p = await page("tools/list");
  seen.push(...p.tools.map((t) => t.name));
  p = await page("tools/list", p.nextCursor);
  seen.push(...p.tools.map((t) => t.name));
  // Two servers join: one sorting before everything walked so far, one after.
  await register("aaa");
  await register("zzz");
  let cursor = p.nextCursor;
  while (cursor) {
    const next = await page("tools/list", cursor);
    seen.push(...next.tools.map((t) => t.name));
    cursor = next.nextCursor;
  }
  assert.equal(new Set(seen).size, seen.length, `duplicates in ${JSON.stringify(seen)}`);
  for (const n of atStart) assert.ok(seen.includes(n), `${n} skipped`);
  assert.ok(seen.some((n) => n.startsWith("zzz__")), "a server joining ahead of the position is reached");
});

test("a fanned-out list pages by key too, and a cursor of another list is refused", async () => {
  const p = await page("prompts/list");
  const tools = await page("tools/list");
  const r = await mcpPost(env.gw, "/mcp", { jsonrpc: "2.0", id: 2, method: "prompts/list", params: { cursor: tools.nextCursor } }, { key: env.key, modern: true });
  assert.equal(final(r).error?.code, -32602, r.text);
  assert.ok(Array.isArray(p.prompts));
});
