// The OAuth server's edges, as an attacker meets them: URLs built from the Host header, redirect
// URIs that are not web or app addresses, a bad ID token at the callback, and the Client ID
// Metadata Document fetch (off by default; bounded in time and size; no redirects; loopback
// decided on the parsed host; cached). The happy paths are in oauth.test.mjs.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { startGateway } from "./harness.mjs";

const REDIRECT = "http://127.0.0.1:9/client-callback";
const challenge = createHash("sha256").update(randomBytes(32).toString("base64url")).digest("base64url");

/** A raw HTTP GET with a chosen Host header (fetch would not let the test choose it). */
function getWithHost(gw, path, host) {
  const { port } = new URL(gw.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path, headers: { host } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** A loopback HTTP server for the test's own documents; counts the requests it got. */
async function serve(handler) {
  const srv = http.createServer((req, res) => {
    srv.hits = (srv.hits ?? 0) + 1;
    handler(req, res, srv);
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  srv.hits = 0;
  srv.base = `http://127.0.0.1:${srv.address().port}`;
  srv.stop = () => {
    srv.closeAllConnections?.();
    return new Promise((r) => srv.close(r));
  };
  return srv;
}

const authorizeUrl = (clientId, redirectUri = REDIRECT) =>
  `/oauth/authorize?${new URLSearchParams({ response_type: "code", client_id: clientId, redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: "S256", state: "st" })}`;

describe("public origin (Host header)", () => {
  let dev, prod;
  before(async () => {
    [dev, prod] = await Promise.all([startGateway(), startGateway({ vars: { PUBLIC_ORIGIN: "https://gateway.example" } })]);
  });
  after(() => Promise.all([dev?.stop(), prod?.stop()]));

  test("without PUBLIC_ORIGIN only loopback hosts are served", async () => {
    const evil = await getWithHost(dev, "/.well-known/oauth-authorization-server", "evil.example");
    assert.equal(evil.status, 421, evil.body);
    assert.ok(!evil.body.includes("evil.example"), "the host is not echoed into anything");
    const prm = await getWithHost(dev, "/.well-known/oauth-protected-resource/mcp", "evil.example");
    assert.equal(prm.status, 421);
    const mine = await getWithHost(dev, "/.well-known/oauth-authorization-server", new URL(dev.url).host);
    assert.equal(mine.status, 200);
    assert.equal(JSON.parse(mine.body).issuer, dev.url);
    assert.equal((await getWithHost(dev, "/healthz", "evil.example")).status, 200, "health checks answer on any host");
  });

  test("with PUBLIC_ORIGIN every URL comes from it and other hosts are refused", async () => {
    const ok = await getWithHost(prod, "/.well-known/oauth-authorization-server", "gateway.example");
    assert.equal(ok.status, 200, ok.body);
    const meta = JSON.parse(ok.body);
    assert.equal(meta.issuer, "https://gateway.example");
    assert.equal(meta.token_endpoint, "https://gateway.example/oauth/token");
    const prm = JSON.parse((await getWithHost(prod, "/.well-known/oauth-protected-resource/mcp", "gateway.example")).body);
    assert.equal(prm.resource, "https://gateway.example/mcp");
    for (const host of ["evil.example", new URL(prod.url).host, "gateway.example:8443", "gateway.example.evil.example"]) {
      const r = await getWithHost(prod, "/.well-known/oauth-authorization-server", host);
      assert.equal(r.status, 421, host);
      const mcp = await getWithHost(prod, "/mcp", host);
      assert.equal(mcp.status, 421, host);
    }
  });
});

describe("redirect URIs", () => {
  let gw;
  before(async () => {
    gw = await startGateway({ vars: { CLIENT_ID_METADATA_DOCUMENTS: "true" } });
  });
  after(() => gw?.stop());

  const registerWith = (uris) =>
    gw.fetch("/oauth/register", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ client_name: "x", redirect_uris: uris }) });

  test("only https, loopback http and reverse-domain private-use schemes are registered", async () => {
    for (const bad of [
      "vbscript:msgbox(1)",
      "javascript:alert(1)",
      "data:text/html,hi",
      "file:///etc/passwd",
      "myapp:/cb",
      "http://evil.example/cb",
      "http://127.0.0.1@evil.example/cb",
      "https://app.example/cb#fragment",
    ]) {
      const r = await registerWith([REDIRECT, bad]);
      assert.equal(r.status, 400, bad);
      assert.equal((await r.json()).error, "invalid_redirect_uri", bad);
    }
    for (const good of ["https://app.example/cb", "http://[::1]:7/cb", "http://localhost:7/cb", "com.example.app:/oauth2redirect"]) {
      assert.equal((await registerWith([good])).status, 201, good);
    }
  });

  test("a metadata document cannot smuggle a bad redirect URI to /oauth/authorize", async () => {
    let id;
    const doc = await serve((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ client_id: id, redirect_uris: ["vbscript:msgbox(1)", REDIRECT] }));
    });
    id = `${doc.base}/client.json`;
    try {
      const r = await gw.fetch(authorizeUrl(id, "vbscript:msgbox(1)"), { redirect: "manual" });
      assert.equal(r.status, 400, "shown, never redirected");
      assert.equal(r.headers.get("location"), null);
      const ok = await gw.fetch(authorizeUrl(id), { redirect: "manual" });
      assert.notEqual(ok.status, 400, "its https/loopback URI is still usable");
    } finally {
      await doc.stop();
    }
  });

  test("a bad ID token at /oauth/callback sends the client access_denied, not a 500", async () => {
    const { generateKeyPair, exportJWK, SignJWT } = await import("jose");
    const published = await generateKeyPair("RS256", { extractable: true });
    const forger = await generateKeyPair("RS256", { extractable: true });
    const jwk = { ...(await exportJWK(published.publicKey)), kid: "k1", alg: "RS256", use: "sig" };
    // A hand-written identity provider that misbehaves on purpose: its token endpoint hands out
    // an ID token signed with a key that is not in its JWKS.
    const idp = await serve(async (req, res, srv) => {
      const url = new URL(req.url, srv.base);
      const json = (v) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(v));
      };
      if (url.pathname === "/.well-known/openid-configuration") {
        return json({ issuer: srv.base, authorization_endpoint: `${srv.base}/authorize`, token_endpoint: `${srv.base}/token`, jwks_uri: `${srv.base}/jwks` });
      }
      if (url.pathname === "/jwks") return json({ keys: [jwk] });
      if (url.pathname === "/token") {
        const now = Math.floor(Date.now() / 1000);
        const idToken = await new SignJWT({ sub: "mallory", nonce: srv.nonce })
          .setProtectedHeader({ alg: "RS256", kid: "k1" })
          .setIssuer(srv.base)
          .setAudience("gateway-login")
          .setIssuedAt(now)
          .setExpirationTime(now + 300)
          .sign(forger.privateKey);
        return json({ access_token: "x", token_type: "Bearer", id_token: idToken });
      }
      res.writeHead(404).end();
    });
    try {
      const org = (await gw.admin("POST", "/admin/v1/orgs", { name: "Forged" })).body.id;
      const made = await gw.admin("POST", "/admin/v1/identity-providers", { org_id: org, issuer: idp.base, audiences: ["https://gateway.test/mcp"], login_client_id: "gateway-login" });
      assert.equal(made.status, 201, made.text);
      const reg = await (await registerWith([REDIRECT])).json();
      const toIdp = await gw.fetch(authorizeUrl(reg.client_id), { redirect: "manual" });
      assert.equal(toIdp.status, 302);
      const sent = new URL(toIdp.headers.get("location"));
      assert.equal(sent.origin, idp.base);
      idp.nonce = sent.searchParams.get("nonce");
      const back = await gw.fetch(`/oauth/callback?code=idp-code&state=${sent.searchParams.get("state")}`, { redirect: "manual" });
      assert.equal(back.status, 302, await back.text());
      const landed = new URL(back.headers.get("location"));
      assert.equal(`${landed.origin}${landed.pathname}`, REDIRECT);
      assert.equal(landed.searchParams.get("error"), "access_denied");
      assert.equal(landed.searchParams.get("state"), "st");
      assert.equal(landed.searchParams.get("code"), null);
    } finally {
      await idp.stop();
    }
  });
});

describe("Client ID Metadata Documents", () => {
  let off, on;
  before(async () => {
    [off, on] = await Promise.all([startGateway(), startGateway({ vars: { CLIENT_ID_METADATA_DOCUMENTS: "true" } })]);
  });
  after(() => Promise.all([off?.stop(), on?.stop()]));

  /** A server whose /client.json is a valid document naming itself. */
  const docServer = () =>
    serve((req, res, srv) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ client_id: `${srv.base}${req.url}`, redirect_uris: [REDIRECT] }));
    });

  test("disabled by default: a URL client id is unknown and nothing is fetched", async () => {
    const doc = await docServer();
    try {
      const meta = await (await off.fetch("/.well-known/oauth-authorization-server")).json();
      assert.equal(meta.client_id_metadata_document_supported, false);
      const r = await off.fetch(authorizeUrl(`${doc.base}/client.json`), { redirect: "manual" });
      assert.equal(r.status, 400);
      assert.equal((await r.json()).error, "invalid_client");
      assert.equal(doc.hits, 0, "the gateway fetched nothing");
      // The same document is accepted where the deployment turned the feature on.
      const yes = await on.fetch(authorizeUrl(`${doc.base}/client.json`), { redirect: "manual" });
      assert.notEqual(yes.status, 400);
      assert.equal(doc.hits, 1);
    } finally {
      await doc.stop();
    }
  });

  test("a stalling document URL gets a bounded error", async () => {
    // Hand-written misbehaving server: accepts the request and never answers.
    const stall = await serve(() => {});
    try {
      const r = await on.fetch(authorizeUrl(`${stall.base}/client.json`), { redirect: "manual" });
      assert.equal(r.status, 400);
      assert.equal((await r.json()).error, "invalid_client");
      assert.equal(stall.hits, 1);
    } finally {
      await stall.stop();
    }
  });

  test("redirects are not followed", async () => {
    const target = await docServer();
    const hop = await serve((req, res) => {
      res.writeHead(302, { location: `${target.base}${req.url}` });
      res.end();
    });
    try {
      const r = await on.fetch(authorizeUrl(`${hop.base}/client.json`), { redirect: "manual" });
      assert.equal(r.status, 400);
      assert.equal(hop.hits, 1);
      assert.equal(target.hits, 0, "the redirect target was never fetched");
    } finally {
      await Promise.all([hop.stop(), target.stop()]);
    }
  });

  test("loopback is decided on the parsed host: 127.0.0.1@other is not loopback", async () => {
    const other = await docServer();
    try {
      const { port } = new URL(other.base);
      for (const id of [`http://127.0.0.1@localhost:${port}/client.json`, `http://127.0.0.1:1@localhost:${port}/client.json`, `http://localhost:${port}/client.json`]) {
        const r = await on.fetch(authorizeUrl(id), { redirect: "manual" });
        assert.equal(r.status, 400, id);
      }
      assert.equal(other.hits, 0, "never fetched over plain http from a non-literal host");
    } finally {
      await other.stop();
    }
  });

  test("oversized documents are refused; good ones are cached", async () => {
    const big = await serve((req, res, srv) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ client_id: `${srv.base}${req.url}`, redirect_uris: [REDIRECT], padding: "x".repeat(70 * 1024) }));
    });
    const doc = await docServer();
    try {
      const r = await on.fetch(authorizeUrl(`${big.base}/client.json`), { redirect: "manual" });
      assert.equal(r.status, 400);
      for (let i = 0; i < 3; i++) {
        const ok = await on.fetch(authorizeUrl(`${doc.base}/cached.json`), { redirect: "manual" });
        assert.notEqual(ok.status, 400);
      }
      assert.equal(doc.hits, 1, "fetched once, then served from the cache");
    } finally {
      await Promise.all([big.stop(), doc.stop()]);
    }
  });
});
