// Test identity provider: a real OpenID provider (npm `oidc-provider`) on loopback.
//
// Usage: node tests/idp/oidc_server.mjs   (env OIDC_JWKS = private JWK set JSON, OIDC_PORT = port)
// Prints "READY <port>" once listening. Issues JWT access tokens by client credentials for the
// resource (audience) asked for, with `email` and `groups` claims, signed with OIDC_JWKS.
import Provider from "oidc-provider";

const port = Number(process.env.OIDC_PORT);
const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  jwks: JSON.parse(process.env.OIDC_JWKS),
  clients: [
    {
      client_id: "agent-a",
      client_secret: "secret-a-secret-a-secret-a-secret-a",
      grant_types: ["client_credentials"],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: "client_secret_post",
    },
  ],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => "https://gateway.test/mcp",
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => ({
        audience: resource,
        scope: "mcp",
        accessTokenFormat: "jwt",
        accessTokenTTL: 300,
        jwt: { sign: { alg: "RS256" } },
      }),
    },
  },
  extraTokenClaims: (_ctx, token) => ({ email: `${token.clientId}@acme.test`, groups: ["platform", "everyone"] }),
});
provider.listen(port, "127.0.0.1", () => console.log(`READY ${port}`));
