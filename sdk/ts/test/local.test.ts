// The SDK against one real fedas (the embedded demo config): discovery,
// the native password sign-in, DPoP-bound tokens, typed errors, refresh
// rotation, revocation.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeProtectedHeader, decodeJwt } from 'jose';
import { Client, DPoPKey, FedasError, discover, nativeEndpoint, type NativeResponse, type Metadata, type Params } from '../src/index.js';
import { alice, bob, startFedas, totp, type Server } from '../testsupport/fedas.js';

describe('one fedas (demo config)', () => {
  let as: Server;
  let meta: Metadata;
  before(async () => {
    as = await startFedas();
    meta = await discover(as.issuer);
  });
  after(async () => {
    await as?.stop();
  });

  const passwordUI = (who: { username: string; password: string }) => (r: NativeResponse) => {
    assert.equal(r.error, 'insufficient_authorization');
    assert.equal(r.challenge?.type, 'password');
    return { username: who.username, password: who.password };
  };

  test('discovery: RFC 8414 metadata under both native endpoint names', async () => {
    assert.equal(meta.issuer, as.issuer);
    assert.equal(meta.authorization_challenge_endpoint, `${as.issuer}/native/authorize`);
    assert.equal(meta.native_authorization_endpoint, `${as.issuer}/native/authorize`);
    assert.equal(nativeEndpoint(meta), `${as.issuer}/native/authorize`);
    assert.equal(nativeEndpoint({ issuer: 'x', token_endpoint: 't', native_authorization_endpoint: 'n' }), 'n');
    assert.ok(meta.token_endpoint && meta.revocation_endpoint);
  });

  test('discovery: an issuer mismatch is refused (RFC 8414 §3.3)', async () => {
    await assert.rejects(discover(as.issuer + '/'), (e: unknown) => e instanceof FedasError && e.error === 'invalid_metadata');
  });

  test('DPoP key: non-extractable private key, RFC 7638 thumbprint, proof claims', async () => {
    const key = await DPoPKey.generate();
    assert.equal(key.jwk.kty, 'EC');
    assert.equal((key.jwk as Record<string, unknown>).d, undefined);
    // The private CryptoKey itself refuses export (WebCrypto extractable: false).
    const priv = (key as unknown as { privateKey: CryptoKey }).privateKey;
    assert.equal(priv.extractable, false);
    await assert.rejects(crypto.subtle.exportKey('jwk', priv));
    await assert.rejects(crypto.subtle.exportKey('pkcs8', priv));
    assert.match(key.thumbprint, /^[A-Za-z0-9_-]{43}$/);
    const proof = await key.proof('post', `${as.issuer}/oauth2/token?x=1#f`, 'tok');
    const h = decodeProtectedHeader(proof);
    assert.equal(h.typ, 'dpop+jwt');
    assert.equal(h.alg, 'ES256');
    const c = decodeJwt(proof);
    assert.equal(c.htm, 'POST');
    assert.equal(c.htu, `${as.issuer}/oauth2/token`);
    assert.ok(c.jti && c.iat);
    // ath = base64url(SHA-256("tok")) (RFC 9449 §4.2).
    assert.equal(c.ath, 'GnZ0607njffhrEOak8P6jjyUV4TU3sn9jjARc4svHWI');
  });

  test('password sign-in → code → DPoP-bound tokens', async () => {
    const dpop = await DPoPKey.generate();
    const client = new Client({ clientId: 'demo-app', metadata: meta, dpop });
    const { code, pkce } = await client.authorize({ scope: 'openid profile' }, passwordUI(alice));
    assert.ok(code);
    const tok = await client.exchange(code, pkce);
    assert.equal(tok.token_type, 'DPoP');
    assert.ok(tok.access_token);
    assert.ok(tok.id_token);
    assert.equal(decodeJwt(tok.id_token!).sub, 'alice');
  });

  test('password and OTP challenges in turn (bob has a TOTP secret)', async () => {
    const client = new Client({ clientId: 'demo-app', metadata: meta, dpop: await DPoPKey.generate() });
    const seen: string[] = [];
    const { code, pkce } = await client.authorize({ scope: 'openid' }, (r): Params => {
      seen.push(r.challenge!.type);
      if (r.challenge!.type === 'otp') return { otp: totp(bob.totpSecret) };
      return { username: bob.username, password: bob.password };
    });
    assert.deepEqual(seen, ['password', 'otp']);
    assert.equal((await client.exchange(code, pkce)).token_type, 'DPoP');
  });

  test('wrong passwords: the same challenge again, then access_denied as a typed RFC 6749 error', async () => {
    const client = new Client({ clientId: 'demo-app', metadata: meta });
    let asked = 0;
    const err = await client
      .authorize({ scope: 'openid' }, (r) => {
        asked++;
        assert.equal(r.challenge?.type, 'password');
        return { username: 'nobody-' + process.pid, password: 'wrong' };
      })
      .then(
        () => assert.fail('signed in with a wrong password'),
        (e: unknown) => e,
      );
    assert.ok(err instanceof FedasError, String(err));
    assert.equal(err.error, 'access_denied');
    assert.equal(typeof err.error_description, 'string');
    assert.equal(err.status, 400);
    assert.equal(asked, 5, 'limits.max_failures is 5');
  });

  test('a bad code and a wrong verifier are invalid_grant (RFC 6749 §5.2)', async () => {
    const client = new Client({ clientId: 'demo-app', metadata: meta, dpop: await DPoPKey.generate() });
    const { code, pkce } = await client.authorize({ scope: 'openid' }, passwordUI(alice));
    await assert.rejects(client.exchange(code, { ...pkce, verifier: pkce.verifier.replace(/.$/, pkce.verifier.endsWith('A') ? 'B' : 'A') }), (e: unknown) => {
      assert.ok(e instanceof FedasError);
      assert.equal(e.error, 'invalid_grant');
      assert.equal(e.status, 400);
      return true;
    });
    await assert.rejects(client.exchange('not-a-code', pkce), (e: unknown) => e instanceof FedasError && e.error === 'invalid_grant');
  });

  test('a client unknown to the AS gets invalid_client', async () => {
    const client = new Client({ clientId: 'no-such-client', metadata: meta });
    await assert.rejects(client.authorize({ scope: 'openid' }, passwordUI(alice)), (e: unknown) => {
      assert.ok(e instanceof FedasError);
      assert.equal(e.error, 'invalid_client');
      return true;
    });
  });

  test('refresh: an unbound public client\'s refresh token rotates; the old one is then invalid_grant', async () => {
    const client = new Client({ clientId: 'demo-app', metadata: meta });
    const { code, pkce } = await client.authorize({ scope: 'openid offline_access' }, passwordUI(alice));
    const t1 = await client.exchange(code, pkce);
    assert.equal(t1.token_type.toLowerCase(), 'bearer');
    assert.ok(t1.refresh_token, 'offline_access gives a refresh token');
    const t2 = await client.refresh(t1.refresh_token!);
    assert.ok(t2.refresh_token);
    assert.notEqual(t2.refresh_token, t1.refresh_token);
    assert.notEqual(t2.access_token, t1.access_token);
    await assert.rejects(client.refresh(t1.refresh_token!), (e: unknown) => e instanceof FedasError && e.error === 'invalid_grant');
  });

  test('refresh: a DPoP-bound refresh gives new DPoP tokens (the bound refresh token is not rotated away)', async () => {
    const client = new Client({ clientId: 'demo-app', metadata: meta, dpop: await DPoPKey.generate() });
    const { code, pkce } = await client.authorize({ scope: 'openid offline_access' }, passwordUI(alice));
    const t1 = await client.exchange(code, pkce);
    const t2 = await client.refresh(t1.refresh_token!);
    assert.equal(t2.token_type, 'DPoP');
    assert.notEqual(t2.access_token, t1.access_token);
    // docs/protocol.md "Token endpoint": a DPoP-bound token stays valid until it expires or is revoked.
    assert.equal((await client.refresh(t1.refresh_token!)).token_type, 'DPoP');
  });

  test('a DPoP-bound refresh token is refused with another key', async () => {
    const client = new Client({ clientId: 'demo-app', metadata: meta, dpop: await DPoPKey.generate() });
    const { code, pkce } = await client.authorize({ scope: 'openid offline_access' }, passwordUI(alice));
    const t = await client.exchange(code, pkce);
    const thief = new Client({ clientId: 'demo-app', metadata: meta, dpop: await DPoPKey.generate() });
    await assert.rejects(thief.refresh(t.refresh_token!), (e: unknown) => e instanceof FedasError);
  });

  test('revocation: a revoked refresh token no longer refreshes', async () => {
    const client = new Client({ clientId: 'demo-app', metadata: meta, dpop: await DPoPKey.generate() });
    const { code, pkce } = await client.authorize({ scope: 'openid offline_access' }, passwordUI(alice));
    const t = await client.exchange(code, pkce);
    await client.revoke(t.refresh_token!, 'refresh_token');
    await assert.rejects(client.refresh(t.refresh_token!), (e: unknown) => e instanceof FedasError && e.error === 'invalid_grant');
    // RFC 7009 §2.2: an unknown token is 200 as well.
    await client.revoke('never-issued');
  });
});
