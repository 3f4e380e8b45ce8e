//! Test client: a real MCP client built on the official TypeScript SDK.
//!
//! Usage: node tests/clients/ts_client.mjs --url URL --token TOKEN [--era legacy|modern|auto] [--sdk v1|v2]
//!
//! `--sdk v1` forces `@modelcontextprotocol/sdk` 1.x (the most deployed client; legacy era only).
//!
//! Uses `@modelcontextprotocol/client` (TS SDK v2, speaks 2025-era *and* 2026-07-28) when it
//! is installed, else `@modelcontextprotocol/sdk` 1.x (2025-era only: `--era modern` fails,
//! `--era auto` is plain legacy). Era selection in v2 is `versionNegotiation.mode`:
//! legacy -> 'legacy' (initialize), modern -> { pin: '2026-07-28' }, auto -> 'auto'
//! (server/discover probe, falls back to initialize).
//!
//! Sends `Authorization: Bearer TOKEN` on every request, lists tools, calls `echo`, then the
//! long tool (`slow`, else server-everything's `trigger-long-running-operation`) with a
//! progress callback. Prints ONE JSON line:
//!   {"era","protocolVersion","tools","echo","progress","progressBeforeResult","result","sdk"}
//! On failure prints {"error": "..."} and exits 1.

import { parseArgs } from 'node:util';

const MODERN = '2026-07-28';

async function loadSdk(prefer) {
  try {
    if (prefer === 'v1') throw Object.assign(new Error('v1 requested'), { code: 'ERR_MODULE_NOT_FOUND' });
    const m = await import('@modelcontextprotocol/client');
    return { v2: true, name: '@modelcontextprotocol/client', Client: m.Client, Transport: m.StreamableHTTPClientTransport };
  } catch (e) {
    if (e?.code !== 'ERR_MODULE_NOT_FOUND') throw e;
    const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
    const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
    return { v2: false, name: '@modelcontextprotocol/sdk', Client, Transport: StreamableHTTPClientTransport };
  }
}

const textOf = (r) => (r.content ?? []).map((c) => c.text ?? '').join('');

async function run({ url, token, era, sdk: prefer, 'tool-prefix': prefix = '' }) {
  const sdk = await loadSdk(prefer);
  if (!sdk.v2 && era === 'modern') throw new Error(`${sdk.name} 1.x cannot speak ${MODERN}; install @modelcontextprotocol/client`);
  const mode = era === 'modern' ? { pin: MODERN } : era;
  const client = new sdk.Client(
    { name: 'ts-test-client', version: '1.0.0' },
    sdk.v2 ? { versionNegotiation: { mode } } : {},
  );
  const transport = new sdk.Transport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  // v1: callTool(params, resultSchema?, options?); v2: callTool(params, options?)
  const callTool = (params, options) =>
    sdk.v2 ? client.callTool(params, options) : client.callTool(params, undefined, options);

  await client.connect(transport);
  try {
    const version = sdk.v2 ? client.getNegotiatedProtocolVersion() : transport.protocolVersion;
    const tools = (await client.listTools()).tools.map((t) => t.name);
    const echo = textOf(await callTool({ name: `${prefix}echo`, arguments: { message: 'hi' } }));

    let name, args;
    if (tools.includes(`${prefix}slow`)) [name, args] = [`${prefix}slow`, { steps: 3, delay_ms: 200 }];
    else if (tools.includes(`${prefix}trigger-long-running-operation`))
      [name, args] = [`${prefix}trigger-long-running-operation`, { duration: 1, steps: 3 }];
    else throw new Error(`no long-running tool in ${JSON.stringify(tools)}`);

    const progress = [];
    const result = await callTool({ name, arguments: args }, { onprogress: (p) => progress.push(p.progress) });
    const seenAtResult = progress.length;
    await new Promise((r) => setTimeout(r, 200)); // anything arriving now came after the result
    if (result.isError) throw new Error(`${name} failed: ${textOf(result)}`);
    return {
      era: sdk.v2 ? client.getProtocolEra() : 'legacy',
      protocolVersion: version,
      tools,
      echo,
      progress,
      progressBeforeResult: seenAtResult > 0 && seenAtResult === progress.length,
      result: textOf(result),
      sdk: sdk.name,
    };
  } finally {
    await client.close().catch(() => {});
  }
}

const { values } = parseArgs({
  options: { url: { type: 'string' }, token: { type: 'string' }, era: { type: 'string', default: 'auto' }, sdk: { type: 'string', default: 'v2' }, 'tool-prefix': { type: 'string', default: '' } },
});
try {
  if (!values.url || !values.token) throw new Error('usage: ts_client.mjs --url URL --token TOKEN [--era legacy|modern|auto]');
  if (!['legacy', 'modern', 'auto'].includes(values.era)) throw new Error(`bad --era ${values.era}`);
  console.log(JSON.stringify(await run(values)));
  process.exit(0);
} catch (e) {
  console.log(JSON.stringify({ error: String(e?.message ?? e) }));
  process.exit(1);
}
