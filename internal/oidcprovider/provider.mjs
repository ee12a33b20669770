// A real oidc-provider (panva/node-oidc-provider) for fedas's tools and
// tests: internal/oidcprovider writes this file next to its npm-installed
// node_modules and runs it with node. fedasbench's oidc-provider peer and
// the conformance kit's test use it.
//
// One oidc-provider on a free loopback port with the clients of
// OIDC_PROVIDER_CONFIG ({"clients": [...], "code_ttl": seconds,
// "mint_token": optional}), PAR enabled, PKCE required, ES256 ID tokens,
// oidc-provider's own MemoryAdapter over an unbounded Map with expiry (its
// default store is an LRU of 1000 entries, which would evict the grants
// of codes minted ahead, and entries that a real store keeps). It prints
// one JSON line {"issuer": ...} once listening.
//
// With a mint_token, POST /__bench/mint (Authorization: Bearer <mint_token>) mints
// authorization codes for the token scenario in bulk — a Grant and an
// AuthorizationCode per code, as the authorization endpoint would after
// an interaction — before fedasbench's measured window — for the first
// client.
import crypto from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';

// MapStore is the LRU's interface (get, set with maxAge in ms, delete)
// without a size bound; expired entries go on read and in a sweep.
class MapStore {
  #m = new Map();

  get(key) {
    const e = this.#m.get(key);
    if (e === undefined) return undefined;
    if (e.expiry !== undefined && e.expiry <= Date.now()) {
      this.#m.delete(key);
      return undefined;
    }
    return e.value;
  }

  set(key, value, { maxAge } = {}) {
    const expiry = typeof maxAge === 'number' && Number.isFinite(maxAge) ? Date.now() + maxAge : undefined;
    this.#m.set(key, { value, expiry });
    return this;
  }

  has(key) { return this.get(key) !== undefined; }

  delete(key) { return this.#m.delete(key); }

  sweep() {
    const now = Date.now();
    for (const [k, e] of this.#m) {
      if (e.expiry !== undefined && e.expiry <= now) this.#m.delete(k);
    }
  }
}
const store = new MapStore();
setInterval(() => store.sweep(), 10_000).unref();

const cfg = JSON.parse(process.env.OIDC_PROVIDER_CONFIG);

const server = http.createServer();
await new Promise((resolve) => { server.listen(0, '127.0.0.1', resolve); });
const issuer = `http://127.0.0.1:${server.address().port}`;

const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const idKey = { ...privateKey.export({ format: 'jwk' }), kid: 'oidc-provider-bench', alg: 'ES256', use: 'sig' };

const provider = new Provider(issuer, {
  adapter: (model) => new MemoryAdapter(model, store),
  clients: cfg.clients,
  jwks: { keys: [idKey] },
  findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  scopes: ['openid', 'profile', 'email'],
  features: {
    pushedAuthorizationRequests: { enabled: true },
    devInteractions: { enabled: false },
  },
  pkce: { required: () => true },
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: cfg.code_ttl || 60,
    Grant: 3600,
    IdToken: 3600,
    PushedAuthorizationRequest: 90,
  },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  enabledJWA: {
    clientAuthSigningAlgValues: ['ES256'],
    idTokenSigningAlgValues: ['ES256'],
  },
});
// Errors are answered to the client; the bench reads them there.
provider.on('server_error', (ctx, err) => { console.error('server_error', err); });
if (process.env.OIDC_PROVIDER_DEBUG) {
  provider.on('grant.error', (ctx, err) => { console.error('grant.error', err.error_detail || err.message); });
  provider.on('pushed_authorization_request.error', (ctx, err) => { console.error('par.error', err.error_detail || err.message); });
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function mint(req, res) {
  const want = Buffer.from(`Bearer ${cfg.mint_token}`);
  const got = Buffer.from(req.headers.authorization || '');
  if (got.length !== want.length || !crypto.timingSafeEqual(got, want)) {
    res.writeHead(401).end();
    return;
  }
  const body = JSON.parse(await readBody(req));
  const client = await provider.Client.find(cfg.clients[0].client_id);
  const codes = [];
  const authTime = Math.floor(Date.now() / 1000);
  for (const [i, challenge] of body.challenges.entries()) {
    const accountId = body.subs[i];
    const grant = new provider.Grant({ accountId, clientId: client.clientId });
    grant.addOIDCScope(body.scope);
    const grantId = await grant.save();
    const code = new provider.AuthorizationCode({
      accountId,
      grantId,
      client,
      scope: body.scope,
      redirectUri: cfg.clients[0].redirect_uris[0],
      codeChallenge: challenge,
      codeChallengeMethod: 'S256',
      authTime,
    });
    codes.push(await code.save());
  }
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ codes }));
}

const callback = provider.callback();
server.on('request', (req, res) => {
  if (cfg.mint_token && req.method === 'POST' && req.url === '/__bench/mint') {
    mint(req, res).catch((err) => {
      console.error('mint', err);
      res.writeHead(500).end();
    });
    return;
  }
  callback(req, res);
});

process.on('SIGTERM', () => { server.close(() => process.exit(0)); setTimeout(() => process.exit(0), 1000).unref(); });
process.stdout.write(`${JSON.stringify({ issuer })}\n`);
