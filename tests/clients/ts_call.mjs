//! Test client: one tool call through a real TypeScript SDK client.
//!
//! Usage: node tests/clients/ts_call.mjs --url URL --token TOKEN --tool NAME [--args JSON]
//!        [--sdk v1|v2] [--era legacy|modern]
//!
//! `--sdk v1` is `@modelcontextprotocol/sdk` 1.x (legacy era only); `v2` is
//! `@modelcontextprotocol/client` with the era pinned. Prints ONE JSON line: `{"text", "result"}`
//! for a result, `{"rpcError": {code, message, data}}` for a JSON-RPC error, `{"error"}` otherwise.
import { parseArgs } from 'node:util';

const MODERN = '2026-07-28';

async function sdkOf(which) {
  if (which === 'v1') {
    const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
    const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
    return { v2: false, Client, Transport: StreamableHTTPClientTransport };
  }
  const m = await import('@modelcontextprotocol/client');
  return { v2: true, Client: m.Client, Transport: m.StreamableHTTPClientTransport };
}

const { values: o } = parseArgs({
  options: {
    url: { type: 'string' },
    token: { type: 'string' },
    tool: { type: 'string' },
    args: { type: 'string', default: '{}' },
    sdk: { type: 'string', default: 'v2' },
    era: { type: 'string', default: 'modern' },
  },
});

try {
  const sdk = await sdkOf(o.sdk);
  const mode = o.era === 'modern' ? { pin: MODERN } : 'legacy';
  const client = new sdk.Client({ name: 'ts-call', version: '1.0.0' }, sdk.v2 ? { versionNegotiation: { mode } } : {});
  const transport = new sdk.Transport(new URL(o.url), { requestInit: { headers: { Authorization: `Bearer ${o.token}` } } });
  await client.connect(transport);
  try {
    const result = await client.callTool({ name: o.tool, arguments: JSON.parse(o.args) });
    const text = (result.content ?? []).map((c) => c.text ?? '').join('');
    console.log(JSON.stringify({ text, result }));
  } catch (e) {
    if (typeof e?.code === 'number') console.log(JSON.stringify({ rpcError: { code: e.code, message: e.message, data: e.data } }));
    else throw e;
  } finally {
    await client.close();
  }
} catch (e) {
  console.log(JSON.stringify({ error: String(e?.stack ?? e) }));
  process.exit(1);
}
