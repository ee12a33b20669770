// Two real fedas instances: AS1 (the app's AS) routes @bank.example to
// AS2 (the bank, where bob has password + TOTP), as `fedas demo` does
// (cmd/fedas/demo.go), with config files written here.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { Client, DPoPKey, FedasError, discover, type Exchange, type Params } from '../src/index.js';
import { bob, startPair, totp, type Pair, type Server } from '../testsupport/fedas.js';


describe('federation: AS1 → AS2', () => {
  let as1: Server;
  let as2: Server;
  let pair: Pair;
  before(async () => {
    pair = await startPair({ challenges: true });
    ({ as1, as2 } = pair);
  });
  after(async () => {
    await pair?.stop();
  });

  test('prompt → federate → AS2 password + OTP → AS2 code to AS1 response_uri → AS1 code → DPoP tokens', async () => {
    const meta = await discover(as1.issuer);
    const log: Exchange[] = [];
    const proofs: { url: string; dpop: boolean }[] = [];
    const dpop = await DPoPKey.generate();
    const fetchSpy: typeof fetch = async (input, init) => {
      const headers = new Headers(init?.headers);
      proofs.push({ url: String(input), dpop: headers.has('DPoP') });
      return fetch(input, init);
    };
    const client = new Client({ clientId: 'demo-app', metadata: meta, dpop, fetch: fetchSpy, onExchange: (e) => log.push(e) });
    const asked: string[] = [];
    const { code, pkce } = await client.authorize({ scope: 'openid email', native_callback_uri: 'https://app.example/cb' }, (r): Params => {
      if (r.error === 'insufficient_information') {
        asked.push('prompt');
        return { email: 'bob@bank.example' };
      }
      asked.push(r.challenge!.type);
      if (r.challenge!.type === 'otp') return { otp: totp(bob.totpSecret) };
      return { username: bob.username, password: bob.password };
    });
    assert.deepEqual(asked, ['prompt', 'password', 'otp']);
    const tok = await client.exchange(code, pkce);
    assert.equal(tok.token_type, 'DPoP');
    assert.equal(decodeJwt(tok.id_token!).iss, as1.issuer);

    // The downstream leg: requests to AS2 carried no DPoP proof and none
    // of AS1's auth_sessions.
    const as1Sessions = new Set<string>();
    for (const e of log) {
      if (e.url.startsWith(as1.issuer + '/')) {
        const s = (JSON.parse(e.body) as { auth_session?: string }).auth_session;
        if (s) as1Sessions.add(s);
      }
    }
    const toAS2 = log.filter((e) => e.url.startsWith(as2.issuer + '/'));
    assert.ok(toAS2.length >= 3, 'federate request, password, otp at AS2');
    for (const e of toAS2) {
      for (const v of e.form?.values() ?? []) assert.ok(!as1Sessions.has(v), `AS1 auth_session sent to AS2: ${e.url}`);
    }
    for (const p of proofs) assert.equal(p.dpop, p.url.startsWith(as1.issuer + '/'), `DPoP proof presence for ${p.url}`);
    // The AS2 code went to AS1's response_uri, not to a token endpoint.
    assert.ok(log.some((e) => e.url.startsWith(as1.issuer + '/') && e.form?.has('authorization_code')));
    assert.ok(!log.some((e) => e.url.startsWith(as2.issuer + '/oauth2/token')));
  });

  test('a downstream failure (AS2 access_denied after wrong passwords) is reported to AS1, whose answer ends the sign-in', async () => {
    const meta = await discover(as1.issuer);
    const log: Exchange[] = [];
    const client = new Client({ clientId: 'demo-app', metadata: meta, dpop: await DPoPKey.generate(), onExchange: (e) => log.push(e) });
    const err = await client
      .authorize({ scope: 'openid email', native_callback_uri: 'https://app.example/cb' }, (r): Params =>
        r.error === 'insufficient_information' ? { email: 'nobody@bank.example' } : { username: 'nobody-' + process.pid, password: 'wrong' },
      )
      .then(
        () => assert.fail('signed in with a wrong password'),
        (e: unknown) => e,
      );
    assert.ok(err instanceof FedasError, String(err));
    // The last answer is AS1's, at its response_uri, to our report of AS2's error.
    assert.ok(err.response.from?.startsWith(as1.issuer + '/'), `final answer from ${err.response.from}`);
    const report = log.find((e) => e.url === err.response.from && e.form?.get('error'));
    assert.equal(report?.form?.get('error'), 'access_denied');
    assert.equal(err.error, 'access_denied');
  });
});
