// node-oidc-provider with its own in-memory adapter and one fixed client: the peer that
// `portcullis-bench --peer` measures Portcullis against (issue 15). Nothing is durable.
//
//   PORT=3100 node server.js
//
// Besides the provider's endpoints it answers `POST /bench/mint?kind=code|refresh&n=N` with N
// authorization codes or refresh tokens minted through the provider's own models, each with
// its own grant (as N separate sign-ins would leave them), so that the benchmark measures the
// token endpoint alone, as it does for Portcullis with codes seeded into its database.
import http from 'node:http';

import Provider from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import LRU from 'oidc-provider/lib/helpers/lru.js';

const PORT = Number(process.env.PORT || 3100);
const ISSUER = `http://127.0.0.1:${PORT}`;
const REDIRECT = 'https://bench.example/cb';
const ACCOUNT = 'bench-user';
const SCOPE = 'offline_access read';

// The same client on both sides: confidential, client_secret_basic, these three grants.
const CLIENT = {
  client_id: 'bench',
  client_secret: 'bench-secret',
  redirect_uris: [REDIRECT],
  grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
  response_types: ['code'],
  scope: `openid ${SCOPE}`,
  token_endpoint_auth_method: 'client_secret_basic',
};

// The built-in memory adapter keeps at most 1,000 entries (an LRU), so pre-minted codes would
// be evicted before they are used. This is the same adapter over a store large enough for a
// benchmark run; everything else about it is the provider's own.
const store = new LRU({ maxSize: 10_000_000 });
class RoomyMemoryAdapter extends MemoryAdapter {
  constructor(model) {
    super(model, store, 0);
  }
}

const provider = new Provider(ISSUER, {
  adapter: RoomyMemoryAdapter,
  clients: [CLIENT],
  scopes: ['openid', 'offline_access', 'read'],
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    devInteractions: { enabled: false },
  },
  // Like Portcullis: every refresh rotates the refresh token (RFC 9700 §4.14.2).
  rotateRefreshToken: true,
  pkce: { required: () => false },
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 600,
    ClientCredentials: 3600,
    Grant: 86400,
    RefreshToken: 86400,
  },
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
});

async function mint(kind, n) {
  const client = await provider.Client.find(CLIENT.client_id);
  const authTime = Math.floor(Date.now() / 1000);
  const out = [];
  for (let i = 0; i < n; i += 1) {
    const grant = new provider.Grant({ accountId: ACCOUNT, clientId: CLIENT.client_id });
    grant.addOIDCScope(SCOPE);
    const grantId = await grant.save();
    const fields = { accountId: ACCOUNT, client, grantId, scope: SCOPE, authTime };
    const token = kind === 'code'
      ? new provider.AuthorizationCode({ ...fields, redirectUri: REDIRECT })
      : new provider.RefreshToken({ ...fields, gty: 'authorization_code', rotations: 0 });
    out.push(await token.save());
  }
  return out;
}

const handler = provider.callback();
function reply(res, status, value) {
  // With a length, not chunked: the benchmark's HTTP client reads length-delimited bodies.
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

http.createServer(async (req, res) => {
  const url = new URL(req.url, ISSUER);
  if (req.method !== 'POST' || url.pathname !== '/bench/mint') {
    handler(req, res);
    return;
  }
  const kind = url.searchParams.get('kind');
  const n = Number(url.searchParams.get('n'));
  if (!['code', 'refresh'].includes(kind) || !(n > 0 && n <= 1_000_000)) {
    reply(res, 400, { error: 'kind=code|refresh and 0 < n <= 1000000' });
    return;
  }
  reply(res, 200, await mint(kind, n));
}).listen(PORT, '127.0.0.1', () => {
  console.log(`node-oidc-provider ${ISSUER} (in memory)`);
});
