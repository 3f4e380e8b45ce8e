// Real MCP clients (official TypeScript and Python SDKs) through the gateway to real upstream
// MCP servers (npm server-everything: legacy era; a PyPI `mcp` server: both eras, detected as
// modern), in both client eras, so every client/upstream era pairing is exercised.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { runClient, setupGateway } from "./harness.mjs";

let env;
before(async () => {
  env = await setupGateway({ everything: true, py: true });
});
after(() => env?.stop());

const cases = [
  // [client, sdk/era, upstream slug, expected era, echo prefix]
  ["py", "legacy", "py", "legacy", "echo: "],
  ["py", "modern", "py", "modern", "echo: "],
  ["py", "modern", "everything", "modern", "Echo: "],
  ["py", "legacy", "everything", "legacy", "Echo: "],
  ["ts-v1", "legacy", "everything", "legacy", "Echo: "],
  ["ts-v1", "legacy", "py", "legacy", "echo: "],
  ["ts-v2", "modern", "everything", "modern", "Echo: "],
  ["ts-v2", "auto", "py", "modern", "echo: "],
];

describe("real clients through /mcp/{slug}", () => {
  for (const [client, era, slug, expectEra, echoPrefix] of cases) {
    test(`${client} (${era}) → ${slug}: list, echo, progress before result`, async () => {
      const out = await runClient(client, { url: `${env.gw.url}/mcp/${slug}`, token: env.key, era });
      assert.equal(out.error, undefined, out.error);
      assert.equal(out.era, expectEra);
      assert.ok(out.tools.includes("echo"), `tools: ${out.tools}`);
      assert.equal(out.echo, `${echoPrefix}hi`);
      assert.deepEqual(out.progress.map(Number), [1, 2, 3]);
      assert.equal(out.progressBeforeResult, true);
      assert.match(out.result, slug === "py" ? /done after 3 steps/ : /Long running operation completed/);
    });
  }
});
