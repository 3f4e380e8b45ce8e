//! Test client for server→client requests: a real TypeScript SDK client (v1
//! `@modelcontextprotocol/sdk` or v2 `@modelcontextprotocol/client`) that declares sampling,
//! elicitation and roots and answers them from fixed handlers.
//!
//! Usage: node tests/clients/ts_s2c_client.mjs --url URL --token TOKEN [--sdk v1|v2]
//!        [--era legacy|modern|auto] [--no-caps] --call NAME=JSON_ARGS ...
//! Prints ONE JSON line: {"results": {NAME: text | "ERROR: ..."}, "asked": [methods served]}.
//! Fixed answers: elicitation accepts {"name": "Ada"}; sampling answers "sunny" from model
//! "test-model"; roots are file:///work/alpha and file:///work/beta.

import { parseArgs } from 'node:util';

const MODERN = '2026-07-28';
const textOf = (r) => (r.content ?? []).map((c) => c.text ?? '').join('');

async function run({ url, token, sdk, era, 'no-caps': noCaps, call: calls = [] }) {
  const v2 = sdk !== 'v1';
  const m = v2
    ? await import('@modelcontextprotocol/client')
    : {
        ...(await import('@modelcontextprotocol/sdk/client/index.js')),
        ...(await import('@modelcontextprotocol/sdk/client/streamableHttp.js')),
        ...(await import('@modelcontextprotocol/sdk/types.js')),
      };
  const capabilities = noCaps ? {} : { sampling: {}, elicitation: { form: {} }, roots: { listChanged: true } };
  const mode = era === 'modern' ? { pin: MODERN } : era;
  const client = new m.Client(
    { name: 'ts-s2c-client', version: '1.0.0' },
    v2 ? { capabilities, versionNegotiation: { mode } } : { capabilities },
  );
  const asked = [];
  const answers = {
    'sampling/createMessage': () => ({ role: 'assistant', content: { type: 'text', text: 'sunny' }, model: 'test-model' }),
    'elicitation/create': () => ({ action: 'accept', content: { name: 'Ada' } }),
    'roots/list': () => ({ roots: [{ uri: 'file:///work/alpha', name: 'alpha' }, { uri: 'file:///work/beta' }] }),
  };
  const schemas = { 'sampling/createMessage': 'CreateMessageRequestSchema', 'elicitation/create': 'ElicitRequestSchema', 'roots/list': 'ListRootsRequestSchema' };
  if (!noCaps) {
    for (const [method, answer] of Object.entries(answers)) {
      const handler = async () => (asked.push(method), answer());
      if (v2) client.setRequestHandler(method, handler);
      else client.setRequestHandler(m[schemas[method]], handler);
    }
  }
  const transport = new m.StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  await client.connect(transport);
  try {
    const results = {};
    for (const c of calls) {
      const i = c.indexOf('=');
      const [name, args] = i < 0 ? [c, {}] : [c.slice(0, i), JSON.parse(c.slice(i + 1) || '{}')];
      try {
        const r = await client.callTool({ name, arguments: args }, ...(v2 ? [{ timeout: 20_000 }] : [undefined, { timeout: 20_000 }]));
        results[name] = r.isError ? `ERROR: ${textOf(r)}` : textOf(r);
      } catch (e) {
        results[name] = `ERROR: ${e?.message ?? e}`;
      }
    }
    return { results, asked };
  } finally {
    await client.close().catch(() => {});
  }
}

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    token: { type: 'string' },
    sdk: { type: 'string', default: 'v2' },
    era: { type: 'string', default: 'legacy' },
    'no-caps': { type: 'boolean', default: false },
    call: { type: 'string', multiple: true },
  },
});
try {
  console.log(JSON.stringify(await run(values)));
  process.exit(0);
} catch (e) {
  console.log(JSON.stringify({ error: String(e?.message ?? e) }));
  process.exit(1);
}
