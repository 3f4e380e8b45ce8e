// The MCP authorization flow end to end: the official TypeScript SDK client discovers the
// gateway's protected-resource and authorization-server metadata from a 401, registers itself
// dynamically, and authorizes with PKCE; the gateway federates the login to a real OpenID
// provider (npm oidc-provider), provisions the user, and issues its own tokens. Then every
// token check: replayed code, PKCE and redirect mismatches, refresh rotation and replay, the
// resource (audience) binding.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, before, test } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { browse, final, mcpPost, startGateway, startOidcProvider, startPyServer } from "./harness.mjs";

const REDIRECT = "http://127.0.0.1:9/client-callback";
let gw, op, py, team;
before(async () => {
  [gw, py] = await Promise.all([startGateway({ vars: { CLIENT_ID_METADATA_DOCUMENTS: "true" } }), startPyServer()]);
  op = await startOidcProvider({ loginRedirect: `${gw.url}/oauth/callback` });
  assert.equal((await gw.admin("POST", "/admin/v1/servers", { slug: "py", name: "py", url: py.url })).status, 201);
  const org = (await gw.admin("POST", "/admin/v1/orgs", { name: "Acme" })).body.id;
  const ws = (await gw.admin("POST", "/admin/v1/workspaces", { name: "Eng", parent_id: org })).body.id;
  team = (await gw.admin("POST", "/admin/v1/teams", { name: "Platform", parent_id: ws })).body.id;
  const idp = await gw.admin("POST", "/admin/v1/identity-providers", {
    org_id: org,
    issuer: op.issuer,
    audiences: ["https://gateway.test/mcp"],
    group_teams: { platform: team },
    login_client_id: "gateway-login",
  });
  assert.equal(idp.status, 201, idp.text);
  await gw.admin("POST", "/admin/v1/grants", { subject_kind: "team", subject_id: team, resource: "py", effect: "allow" });
});
after(async () => {
  await Promise.all([gw?.stop(), op?.stop(), py?.stop()]);
});

/** The SDK's OAuthClientProvider, backed by memory; "redirecting" records the URL. */
class MemoryProvider {
  constructor() {
    this.store = {};
  }
  get redirectUrl() {
    return REDIRECT;
  }
  get clientMetadata() {
    return { client_name: "sdk-test", redirect_uris: [REDIRECT], grant_types: ["authorization_code", "refresh_token"], response_types: ["code"], token_endpoint_auth_method: "none" };
  }
  clientInformation() {
    return this.store.client;
  }
  saveClientInformation(c) {
    this.store.client = c;
  }
  tokens() {
    return this.store.tokens;
  }
  saveTokens(t) {
    this.store.tokens = t;
  }
  redirectToAuthorization(url) {
    this.store.authUrl = url.toString();
  }
  saveCodeVerifier(v) {
    this.store.verifier = v;
  }
  codeVerifier() {
    return this.store.verifier;
  }
}

test("the official TypeScript SDK client authorizes end to end and uses the gateway's token", async () => {
  const provider = new MemoryProvider();
  const first = new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp`), { authProvider: provider });
  await assert.rejects(new Client({ name: "sdk-test", version: "1" }).connect(first), UnauthorizedError);
  assert.ok(provider.store.client?.client_id, "registered dynamically");
  assert.match(provider.store.authUrl, /\/oauth\/authorize\?/);
  assert.match(provider.store.authUrl, /code_challenge_method=S256/);
  const landed = new URL(await browse(provider.store.authUrl, REDIRECT));
  assert.equal(landed.searchParams.get("iss"), gw.url, "RFC 9207 iss in the response");
  await first.finishAuth(landed.searchParams.get("code"));
  assert.match(provider.store.tokens.access_token, /^mcpat_/);

  const client = new Client({ name: "sdk-test", version: "1" });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp`), { authProvider: provider }));
  const tools = (await client.listTools()).tools.map((t) => t.name);
  assert.ok(tools.includes("py__echo"), `the provisioned user's team grant applies: ${tools}`);
  const r = await client.callTool({ name: "py__whoami", arguments: {} });
  const seen = r.content[0].text;
  assert.ok(!seen.includes(provider.store.tokens.access_token), "the gateway token never goes upstream");
  await client.close();
});

test("metadata and the 401 challenge", async () => {
  const r = await mcpPost(gw, "/mcp/py", { jsonrpc: "2.0", id: 1, method: "tools/list", params: {} }, { modern: true });
  assert.equal(r.status, 401);
  assert.match(r.headers.get("www-authenticate"), new RegExp(`resource_metadata="${gw.url}/.well-known/oauth-protected-resource/mcp/py"`));
  const prm = await (await gw.fetch("/.well-known/oauth-protected-resource/mcp/py")).json();
  assert.equal(prm.resource, `${gw.url}/mcp/py`);
  assert.deepEqual(prm.authorization_servers, [gw.url]);
  for (const path of ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]) {
    const as = await (await gw.fetch(path)).json();
    assert.equal(as.issuer, gw.url);
    assert.deepEqual(as.code_challenge_methods_supported, ["S256"]);
    assert.equal(as.authorization_response_iss_parameter_supported, true);
  }
});

// ---- raw protocol checks -------------------------------------------------------------------

async function registerClient() {
  const res = await gw.fetch("/oauth/register", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ client_name: "raw", redirect_uris: [REDIRECT] }) });
  assert.equal(res.status, 201);
  return (await res.json()).client_id;
}

async function authorizeCode(clientId, { resource = `${gw.url}/mcp` } = {}) {
  const verifier = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  const q = new URLSearchParams({ response_type: "code", client_id: clientId, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: "S256", state: "s1", resource });
  const landed = new URL(await browse(`${gw.url}/oauth/authorize?${q}`, REDIRECT, "bob"));
  return { code: landed.searchParams.get("code"), verifier };
}

const tokenCall = async (params) => {
  const res = await gw.fetch("/oauth/token", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(params) });
  return { status: res.status, body: await res.json() };
};
const listWith = async (token, path = "/mcp") => (await mcpPost(gw, path, { jsonrpc: "2.0", id: 1, method: "tools/list", params: {} }, { key: token, modern: true })).status;

test("a replayed code is refused and revokes what it granted; PKCE and redirect_uri must match", async () => {
  const clientId = await registerClient();
  const { code, verifier } = await authorizeCode(clientId);
  const ok = await tokenCall({ grant_type: "authorization_code", code, code_verifier: verifier, redirect_uri: REDIRECT, client_id: clientId });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.equal(await listWith(ok.body.access_token), 200);
  const replay = await tokenCall({ grant_type: "authorization_code", code, code_verifier: verifier, redirect_uri: REDIRECT, client_id: clientId });
  assert.equal(replay.body.error, "invalid_grant");
  assert.equal(await listWith(ok.body.access_token), 401, "the replay revoked the grant");

  const second = await authorizeCode(clientId);
  const badPkce = await tokenCall({ grant_type: "authorization_code", code: second.code, code_verifier: "x".repeat(43), redirect_uri: REDIRECT, client_id: clientId });
  assert.equal(badPkce.body.error, "invalid_grant");
  const third = await authorizeCode(clientId);
  const badRedirect = await tokenCall({ grant_type: "authorization_code", code: third.code, code_verifier: third.verifier, redirect_uri: "http://127.0.0.1:9/other", client_id: clientId });
  assert.equal(badRedirect.body.error, "invalid_grant");

  const q = new URLSearchParams({ response_type: "code", client_id: clientId, redirect_uri: "https://evil.example/cb", code_challenge: "a".repeat(43), code_challenge_method: "S256" });
  const res = await gw.fetch(`/oauth/authorize?${q}`, { redirect: "manual" });
  assert.equal(res.status, 400, "an unregistered redirect_uri is refused, not followed");
  const plain = new URLSearchParams({ response_type: "code", client_id: clientId, redirect_uri: REDIRECT, code_challenge: "a".repeat(43), code_challenge_method: "plain", state: "p" });
  const noS256 = await gw.fetch(`/oauth/authorize?${plain}`, { redirect: "manual" });
  assert.match(noS256.headers.get("location"), /error=invalid_request/);
});

test("refresh tokens rotate; a replayed refresh token revokes the grant", async () => {
  const clientId = await registerClient();
  const { code, verifier } = await authorizeCode(clientId);
  const t1 = (await tokenCall({ grant_type: "authorization_code", code, code_verifier: verifier, redirect_uri: REDIRECT, client_id: clientId })).body;
  const t2 = await tokenCall({ grant_type: "refresh_token", refresh_token: t1.refresh_token, client_id: clientId });
  assert.equal(t2.status, 200);
  assert.notEqual(t2.body.refresh_token, t1.refresh_token);
  assert.equal(await listWith(t2.body.access_token), 200);
  const replay = await tokenCall({ grant_type: "refresh_token", refresh_token: t1.refresh_token, client_id: clientId });
  assert.equal(replay.body.error, "invalid_grant");
  assert.equal(await listWith(t2.body.access_token), 401, "the whole grant is revoked");
  const t3 = await tokenCall({ grant_type: "refresh_token", refresh_token: t2.body.refresh_token, client_id: clientId });
  assert.equal(t3.body.error, "invalid_grant");
});

test("a token is bound to its resource (RFC 8707)", async () => {
  const clientId = await registerClient();
  const { code, verifier } = await authorizeCode(clientId, { resource: `${gw.url}/mcp/py` });
  const t = (await tokenCall({ grant_type: "authorization_code", code, code_verifier: verifier, redirect_uri: REDIRECT, client_id: clientId })).body;
  assert.equal(await listWith(t.access_token, "/mcp/py"), 200);
  assert.equal(await listWith(t.access_token, "/mcp"), 401, "not valid for another resource");
  const q = new URLSearchParams({ response_type: "code", client_id: clientId, redirect_uri: REDIRECT, code_challenge: "a".repeat(43), code_challenge_method: "S256", state: "r", resource: "https://elsewhere.example/mcp" });
  const res = await gw.fetch(`/oauth/authorize?${q}`, { redirect: "manual" });
  assert.match(res.headers.get("location"), /error=invalid_target/);
});

test("a client identified by its Client ID Metadata Document", async () => {
  const http = await import("node:http");
  let url;
  const srv = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ client_id: url, client_name: "cimd-client", redirect_uris: [REDIRECT], token_endpoint_auth_method: "none" }));
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${srv.address().port}/client.json`;
  try {
    const { code, verifier } = await authorizeCode(url);
    const t = await tokenCall({ grant_type: "authorization_code", code, code_verifier: verifier, redirect_uri: REDIRECT, client_id: url });
    assert.equal(t.status, 200, JSON.stringify(t.body));
    assert.equal(await listWith(t.body.access_token), 200);
  } finally {
    srv.close();
  }
});
