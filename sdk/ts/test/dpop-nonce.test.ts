// The use_dpop_nonce retry (RFC 9449 §8 for the AS, §9 for a resource
// server): fedas issues no DPoP nonces, so this runs against the scripted
// stub (testsupport/stub.ts), for the SDK's side only: one retry with the
// server's nonce in the proof, and no retry loop.
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { Client, DPoPKey, FedasError, discover } from '../src/index.js';
import { startStub, type Stub, type StubRequest } from '../testsupport/stub.js';

describe('DPoP nonces (stub server)', () => {
  let stub: Stub | undefined;
  afterEach(async () => {
    await stub?.stop();
    stub = undefined;
  });
  const nonceOf = (r: StubRequest) => decodeJwt(String(r.headers.dpop)).nonce;

  test('token endpoint: use_dpop_nonce → one retry whose proof carries the nonce', async () => {
    stub = await startStub((r) =>
      nonceOf(r) === 'n-1'
        ? [200, { access_token: 'at', token_type: 'DPoP', expires_in: 60 }]
        : [400, { error: 'use_dpop_nonce', error_description: 'send the nonce' }, { 'DPoP-Nonce': 'n-1' }],
    );
    const client = new Client({ clientId: 'demo-app', metadata: await discover(stub.issuer), dpop: await DPoPKey.generate() });
    const tok = await client.refresh('rt');
    assert.equal(tok.access_token, 'at');
    assert.deepEqual(stub.requests.map(nonceOf), [undefined, 'n-1']);
    assert.notEqual(stub.requests[0].headers.dpop, stub.requests[1].headers.dpop);
  });

  test('a server that keeps asking gets one retry, not a loop; the error surfaces', async () => {
    let n = 0;
    stub = await startStub(() => [400, { error: 'use_dpop_nonce' }, { 'DPoP-Nonce': `n-${++n}` }]);
    const client = new Client({ clientId: 'demo-app', metadata: await discover(stub.issuer), dpop: await DPoPKey.generate() });
    await assert.rejects(client.refresh('rt'), (e: unknown) => e instanceof FedasError && e.error === 'use_dpop_nonce');
    assert.equal(stub.requests.length, 2);
  });

  test('resource server: 401 with WWW-Authenticate use_dpop_nonce → one retry with the nonce and ath', async () => {
    stub = await startStub((r) =>
      nonceOf(r) === 'rs-1' ? [200, { ok: true }] : [401, { error: 'use_dpop_nonce' }, { 'WWW-Authenticate': 'DPoP error="use_dpop_nonce"', 'DPoP-Nonce': 'rs-1' }],
    );
    const client = new Client({ clientId: 'demo-app', metadata: await discover(stub.issuer), dpop: await DPoPKey.generate() });
    const resp = await client.fetchResource(`${stub.issuer}/api/me`, { access_token: 'at', token_type: 'DPoP' });
    assert.equal(resp.status, 200);
    assert.equal(stub.requests.length, 2);
    // base64url(SHA-256("at")) (RFC 9449 §4.2)
    assert.equal(decodeJwt(String(stub.requests[1].headers.dpop)).ath, 'sda5G2fCr6XjIpiNlGJjjTVN34oe9526mH-BXCK0uu4');
  });
});
