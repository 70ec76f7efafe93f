// A real OpenID Provider (node-oidc-provider 9.x) standing in for Dex in the
// mcp-prometheus integration tests. Started by tests/integration/oidc.py;
// driven headlessly by tests/integration/oidc_login.py.
//
// Configuration (environment variables; all optional):
//   OIDC_PORT            port to listen on, on 127.0.0.1 (default 0 = any)
//   OIDC_ISSUER          issuer URL (default http://127.0.0.1:<port>)
//   OIDC_REDIRECT_URIS   comma-separated redirect URIs of both clients
//                        (default http://127.0.0.1:8976/callback)
//   OIDC_RESOURCE        resource indicator (RFC 8707) for which access tokens
//                        are JWTs with aud = that resource; empty: opaque only
//   OIDC_RESOURCE_SCOPE  scopes the resource server offers (default "mcp:read")
//   OIDC_CLIENT_SECRET   secret of the confidential client muster-client
//                        (default muster-secret)
//   OIDC_ID_TOKEN_TTL    ID token lifetime in seconds (default 600)
//   OIDC_SERVER_CLIENT_SECRET  secret of the clients `mcp-prometheus` and
//                        `mcp-prometheus-post` (default mcp-prometheus-secret)
//   OIDC_SERVER_REDIRECT_URIS  their comma-separated redirect URIs (default
//                        http://127.0.0.1/oauth/callback; loopback, any port)
//   OIDC_REGISTRATION    "1": open dynamic client registration (RFC 7591) at
//                        /reg, for self-tests of OAuth clients (default off)
//
// Clients: `mcp-test` (public, PKCE required, no secret) and `muster-client`
// (confidential, client_secret_basic / client_secret_post, PKCE too).
// `mcp-prometheus` (client_secret_basic) and `mcp-prometheus-post`
// (client_secret_post) are mcp-prometheus's own OAuth server acting as a
// client of this provider, the way it is a client of Dex: confidential,
// PKCE optional (as in Dex), and native (RFC 8252 7.3), so a loopback
// redirect URI such as http://127.0.0.1/oauth/callback matches on any port,
// whatever port the server under test listens on.
// Users: any login name; alice (groups team-a) and bob (groups team-b,
// team-c) are known, any other login gets no groups. Passwords are not
// checked (devInteractions).
//
// On start it prints one line of JSON to stdout: {"ready": true, "issuer": …,
// "port": …}, which the Python side waits for.

import { generateKeyPair, exportJWK } from 'jose';
import Provider, { errors } from 'oidc-provider';

const env = process.env;
const requestedPort = Number.parseInt(env.OIDC_PORT ?? '0', 10);

const ACCOUNTS = {
  alice: { groups: ['team-a'], email: 'alice@example.test', name: 'Alice' },
  bob: { groups: ['team-b', 'team-c'], email: 'bob@example.test', name: 'Bob' },
};

async function signingKeys() {
  const keys = [];
  for (const [alg, kid] of [['RS256', 'oidc-rs256'], ['ES256', 'oidc-es256']]) {
    const { privateKey } = await generateKeyPair(alg, { extractable: true });
    keys.push({ ...(await exportJWK(privateKey)), kid, alg, use: 'sig' });
  }
  return keys;
}

async function main() {
  // Listen first when no port was given, so the issuer can name the port.
  const http = await import('node:http');
  const server = http.createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(requestedPort, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  const issuer = env.OIDC_ISSUER || `http://127.0.0.1:${port}`;
  const redirectUris = (env.OIDC_REDIRECT_URIS || 'http://127.0.0.1:8976/callback')
    .split(',').map((s) => s.trim()).filter(Boolean);
  const resource = env.OIDC_RESOURCE || '';
  const resourceScope = env.OIDC_RESOURCE_SCOPE ?? 'mcp:read';
  const idTokenTTL = Number.parseInt(env.OIDC_ID_TOKEN_TTL ?? '600', 10);
  const serverSecret = env.OIDC_SERVER_CLIENT_SECRET || 'mcp-prometheus-secret';
  const serverRedirectUris = (env.OIDC_SERVER_REDIRECT_URIS || 'http://127.0.0.1/oauth/callback')
    .split(',').map((s) => s.trim()).filter(Boolean);
  const serverClient = (clientId, method) => ({
    client_id: clientId,
    client_secret: serverSecret,
    token_endpoint_auth_method: method,
    application_type: 'native',
    redirect_uris: serverRedirectUris,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    id_token_signed_response_alg: 'RS256',
  });

  const configuration = {
    clients: [
      {
        client_id: 'mcp-test',
        token_endpoint_auth_method: 'none',
        redirect_uris: redirectUris,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        id_token_signed_response_alg: 'RS256',
      },
      {
        client_id: 'muster-client',
        client_secret: env.OIDC_CLIENT_SECRET || 'muster-secret',
        token_endpoint_auth_method: 'client_secret_basic',
        redirect_uris: redirectUris,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        id_token_signed_response_alg: 'RS256',
      },
      serverClient('mcp-prometheus', 'client_secret_basic'),
      serverClient('mcp-prometheus-post', 'client_secret_post'),
    ],
    jwks: { keys: await signingKeys() },
    cookies: { keys: ['mcp-prometheus-test-cookie-key'] },
    // Dex-like: groups (and the standard claims) in the ID token itself.
    conformIdTokenClaims: false,
    claims: {
      openid: ['sub'],
      profile: ['name'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
    async findAccount(_ctx, id) {
      const acct = ACCOUNTS[id] || { groups: [], email: `${id}@example.test`, name: id };
      return {
        accountId: id,
        async claims() {
          return {
            sub: id,
            name: acct.name,
            email: acct.email,
            email_verified: true,
            groups: acct.groups,
          };
        },
      };
    },
    // Access tokens for the resource carry the groups too.
    async extraTokenClaims(_ctx, token) {
      if (!token.accountId) return undefined;
      const acct = ACCOUNTS[token.accountId];
      return { groups: acct ? acct.groups : [] };
    },
    // PKCE is required of the test clients; mcp-prometheus's own clients
    // may use it or not (Dex does not require it of confidential clients).
    pkce: { required: (_ctx, client) => !client.clientId.startsWith('mcp-prometheus') },
    ttl: {
      IdToken: idTokenTTL,
      AccessToken: 600,
      AuthorizationCode: 120,
      RefreshToken: 3600,
      Grant: 3600,
      Interaction: 600,
      Session: 3600,
    },
    features: {
      devInteractions: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf || resource || undefined,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, indicator) => {
          if (!resource || indicator !== resource) {
            throw new errors.InvalidTarget(`unknown resource ${indicator}`);
          }
          return {
            scope: resourceScope,
            audience: resource,
            accessTokenFormat: 'jwt',
            accessTokenTTL: 600,
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
      registration: { enabled: env.OIDC_REGISTRATION === '1' },
      revocation: { enabled: true },
      introspection: { enabled: true },
    },
    // Offline access (refresh tokens) whenever the client may refresh and
    // offline_access was granted (the default rule).
  };

  const provider = new Provider(issuer, configuration);
  provider.on('server_error', (_ctx, err) => console.error('server_error', err));
  server.on('request', provider.callback());
  console.log(JSON.stringify({ ready: true, issuer, port, resource: resource || null }));

  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
