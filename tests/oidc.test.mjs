// Enterprise identity: bearer JWTs from a real OpenID provider (npm oidc-provider) accepted by
// the gateway — discovery and JWKS fetched, user provisioned just in time into the teams its
// groups map to, grants applied — and every check on the token enforced.
import assert from "node:assert/strict";
import { SignJWT, generateKeyPair, importJWK } from "jose";
import { after, before, test } from "node:test";
import { final, mcpPost, setupGateway, startOidcProvider } from "./harness.mjs";

const AUD = "https://gateway.test/mcp";
let env, op, org, team, key;
before(async () => {
  [env, op] = await Promise.all([setupGateway({ py: true }), startOidcProvider()]);
  org = (await env.gw.admin("POST", "/admin/v1/orgs", { name: "Acme" })).body.id;
  const ws = (await env.gw.admin("POST", "/admin/v1/workspaces", { name: "Eng", parent_id: org })).body.id;
  team = (await env.gw.admin("POST", "/admin/v1/teams", { name: "Platform", parent_id: ws })).body.id;
  const idp = await env.gw.admin("POST", "/admin/v1/identity-providers", {
    org_id: org,
    issuer: op.issuer,
    audiences: [AUD],
    group_teams: { platform: team },
  });
  assert.equal(idp.status, 201, idp.text);
  const g = await env.gw.admin("POST", "/admin/v1/grants", { subject_kind: "team", subject_id: team, resource: "py", tool: "echo", effect: "allow" });
  assert.equal(g.status, 201, g.text);
  key = await importJWK(op.privateJwk, "RS256");
});
after(async () => {
  await op?.stop();
  await env?.stop();
});

const listTools = (token) => mcpPost(env.gw, "/mcp", { jsonrpc: "2.0", id: 1, method: "tools/list", params: {} }, { key: token, modern: true });
const now = () => Math.floor(Date.now() / 1000);

function craft(claims, { header = { alg: "RS256", kid: op.kid }, signWith = key } = {}) {
  return new SignJWT({ email: "x@acme.test", groups: ["platform"], ...claims })
    .setProtectedHeader(header)
    .setIssuer(claims.iss ?? op.issuer)
    .setAudience(claims.aud ?? AUD)
    .setSubject(claims.sub ?? "crafted-user")
    .setIssuedAt()
    .setExpirationTime(claims.exp ?? now() + 300)
    .sign(signWith);
}

test("a token from the OpenID provider is accepted; the user is provisioned into its mapped team", async () => {
  const token = await op.token();
  const r = await listTools(token);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(final(r).result.tools.map((t) => t.name), ["py__echo"], "the team's grant applies");
  const users = await env.gw.admin("GET", `/admin/v1/users?parent_id=${org}`);
  const u = users.body.users.find((x) => x.external_subject === `${org}|${op.issuer}|agent-a`);
  assert.ok(u, users.text);
  assert.equal(u.email, "agent-a@acme.test");
  const members = await env.gw.admin("GET", `/admin/v1/teams/${team}/members`);
  assert.ok(members.body.members.includes(u.id));
  const again = await listTools(await op.token());
  assert.equal(again.status, 200);
  const after = await env.gw.admin("GET", `/admin/v1/users?parent_id=${org}`);
  assert.equal(after.body.users.length, users.body.users.length, "provisioned once");
});

test("every token check: expired, wrong audience, wrong issuer, forged, alg none, unknown kid, HS/RS confusion, nbf", async () => {
  assert.equal((await listTools(await craft({}))).status, 200, "a well-formed crafted token passes (control)");
  const otherKey = (await generateKeyPair("RS256")).privateKey;
  const real = await op.token();
  const [h, p, s] = real.split(".");
  const forged = `${h}.${p}.${s.slice(0, -4)}${s.endsWith("AAAA") ? "BBBB" : "AAAA"}`;
  const none = `${Buffer.from(JSON.stringify({ alg: "none", kid: op.kid })).toString("base64url")}.${p}.`;
  const hs = await new SignJWT({ groups: ["platform"] })
    .setProtectedHeader({ alg: "HS256", kid: op.kid })
    .setIssuer(op.issuer)
    .setAudience(AUD)
    .setSubject("hs")
    .setExpirationTime(now() + 300)
    .sign(new TextEncoder().encode(JSON.stringify(op.privateJwk)));
  const cases = {
    expired: await craft({ exp: now() - 3600 }),
    "wrong audience": await craft({ aud: "https://elsewhere.test" }),
    "wrong issuer": await craft({ iss: "http://127.0.0.1:1" }),
    forged,
    "alg none": none,
    "unknown kid": await craft({}, { header: { alg: "RS256", kid: "rotated-away" }, signWith: otherKey }),
    "other key, known kid": await craft({}, { signWith: otherKey }),
    "HS256 (RS/HS confusion)": hs,
    "not yet valid": await new SignJWT({ groups: ["platform"] })
      .setProtectedHeader({ alg: "RS256", kid: op.kid })
      .setIssuer(op.issuer)
      .setAudience(AUD)
      .setSubject("early")
      .setNotBefore(now() + 3600)
      .setExpirationTime(now() + 7200)
      .sign(key),
  };
  for (const [name, token] of Object.entries(cases)) {
    const r = await listTools(token);
    assert.equal(r.status, 401, `${name}: ${r.text}`);
    assert.match(r.headers.get("www-authenticate"), /Bearer/, name);
  }
});

test("the agent's token never reaches the upstream", async () => {
  const token = await op.token();
  const g = await env.gw.admin("POST", "/admin/v1/grants", { subject_kind: "team", subject_id: team, resource: "py", tool: "whoami", effect: "allow" });
  const r = final(await mcpPost(env.gw, "/mcp", { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "py__whoami", arguments: {} } }, { key: token, modern: true }));
  const seen = r.result.content[0].text;
  assert.ok(!seen.includes(token.split(".")[2]), seen);
  assert.equal(JSON.parse(seen).authorization, undefined);
  await env.gw.admin("DELETE", `/admin/v1/grants/${g.body.id}`);
});
