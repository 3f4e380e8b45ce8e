// Test identity provider: a real OpenID provider (npm `oidc-provider`) on loopback.
//
// Usage: node tests/idp/oidc_server.mjs   (env OIDC_JWKS = private JWK set JSON, OIDC_PORT = port,
//        OIDC_LOGIN_REDIRECT = the gateway's /oauth/callback, optional)
// Prints "READY <port>" once listening. Issues JWT access tokens by client credentials for the
// resource (audience) asked for, with `email` and `groups` claims, signed with OIDC_JWKS; and,
// for user login, ID tokens to the public client `gateway-login` (dev login form: any account id).
import Provider from "oidc-provider";

const port = Number(process.env.OIDC_PORT);
const issuer = `http://127.0.0.1:${port}`;
const login = process.env.OIDC_LOGIN_REDIRECT
  ? [
      {
        client_id: "gateway-login",
        token_endpoint_auth_method: "none",
        grant_types: ["authorization_code"],
        response_types: ["code"],
        redirect_uris: [process.env.OIDC_LOGIN_REDIRECT],
      },
    ]
  : [];
const provider = new Provider(issuer, {
  jwks: JSON.parse(process.env.OIDC_JWKS),
  conformIdTokenClaims: false,
  claims: { openid: ["sub"], email: ["email"], profile: ["name", "groups"] },
  findAccount: (_ctx, id) => ({
    accountId: id,
    claims: () => ({ sub: id, email: `${id}@acme.test`, name: id, groups: ["platform"] }),
  }),
  clients: [
    ...login,
    {
      client_id: "agent-a",
      client_secret: "secret-a-secret-a-secret-a-secret-a",
      grant_types: ["client_credentials"],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: "client_secret_post",
    },
  ],
  // Refresh tokens for every code grant of a client allowed to refresh (per-user upstream tokens).
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed("refresh_token"),
  ttl: { AccessToken: Number(process.env.OIDC_AT_TTL ?? 300) },
  features: {
    registration: { enabled: true },
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => "https://gateway.test/mcp",
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => ({
        audience: resource,
        scope: "mcp",
        accessTokenFormat: "jwt",
        accessTokenTTL: Number(process.env.OIDC_AT_TTL ?? 300),
        jwt: { sign: { alg: "RS256" } },
      }),
    },
  },
  extraTokenClaims: (_ctx, token) => ({ email: `${token.clientId}@acme.test`, groups: ["platform", "everyone"] }),
});
provider.listen(port, "127.0.0.1", () => console.log(`READY ${port}`));
