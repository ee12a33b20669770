// App-to-app across two real fedas instances (federation draft §4.3.2;
// docs/protocol.md "App-to-app"), configured as `fedas demo app` and
// fedasbench's app2app scenario do: AS1 federates @bank.example to AS2,
// which serves no credential challenge to AS1's users but has a bank app
// in the downstream role; the bank app (a first-party client of AS2,
// signed in there as bob) completes the deep link at AS2's app
// completion API and invokes the client's native_callback_uri.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { Client, DPoPKey, FedasError, discover, type AppLinkAdapter, type Exchange, type NativeResponse, type Params, type TokenResponse } from '../src/index.js';
import { bob, startPair, totp, type Pair } from '../testsupport/fedas.js';

const callbackUri = 'https://app.example/cb';

describe('app-to-app: AS1 → AS2 redirect_to_app → bank app', () => {
  let pair: Pair;
  let bankApp: Client;
  let bankTokens: TokenResponse;
  before(async () => {
    pair = await startPair({
      challenges: false,
      as2Clients: `  - id: bank-app
    name: Bank app
    first_party: true
    token_endpoint_auth_method: none
    scopes: [openid]
    grant_types: [authorization_code, refresh_token]
`,
      as2Extra: `apps:
  - id: bank
    client_id: bank-app
    deep_link: https://bank.example/app
    downstream_role: true
`,
    });
    // The bank app signs bob in at AS2 with its own DPoP key, as the real
    // app did once when the user installed it.
    bankApp = new Client({ clientId: 'bank-app', metadata: await discover(pair.as2.issuer), dpop: await DPoPKey.generate() });
    const { code, pkce } = await bankApp.authorize({ scope: 'openid' }, (r: NativeResponse): Params =>
      r.challenge?.type === 'otp' ? { otp: totp(bob.totpSecret) } : { username: bob.username, password: bob.password },
    );
    bankTokens = await bankApp.exchange(code, pkce);
    assert.equal(bankTokens.token_type, 'DPoP');
  });
  after(async () => {
    await pair?.stop();
  });

  /** The OS opening the bank app: it completes the link for its user, then the OS delivers the callback (edited by tamper). */
  const bankAppAdapter = (opened: string[], tamper: (cb: string) => string = (cb) => cb): AppLinkAdapter => ({
    async open(deepLink, nativeCallbackUri) {
      opened.push(deepLink);
      assert.equal(nativeCallbackUri, callbackUri);
      const { callback } = await bankApp.completeApp(deepLink, bankTokens);
      return tamper(callback);
    },
  });

  const deviceClient = async (log: Exchange[], appLinks: AppLinkAdapter) =>
    new Client({ clientId: 'demo-app', metadata: await discover(pair.as1.issuer), dpop: await DPoPKey.generate(), nativeCallbackUri: callbackUri, appLinks, onExchange: (e) => log.push(e) });

  const promptOnly = (r: NativeResponse): Params => {
    assert.equal(r.error, 'insufficient_information', `only AS1's prompt is expected, got ${r.error} ${JSON.stringify(r.challenge)}`);
    return { email: 'bob@bank.example' };
  };

  test('the bank app completes the deep link; the callback code goes to AS1 response_uri; AS1 issues tokens for bob at AS2', async () => {
    const log: Exchange[] = [];
    const opened: string[] = [];
    const client = await deviceClient(log, bankAppAdapter(opened));
    const { code, pkce } = await client.authorize({ scope: 'openid email' }, promptOnly);
    assert.equal(opened.length, 1);
    const link = new URL(opened[0]);
    assert.equal(link.origin + link.pathname, 'https://bank.example/app');
    assert.equal(link.searchParams.get('client_id'), 'as1');
    assert.ok(link.searchParams.get('request_uri'));
    // redirect_to_app came from AS2 in the downstream role (no auth_session).
    const r2a = log.find((e) => JSON.parse(e.body).error === 'redirect_to_app');
    assert.ok(r2a?.url.startsWith(pair.as2.issuer + '/'));
    assert.equal(JSON.parse(r2a!.body).auth_session, undefined);
    // What the app delivered went to AS1's response_uri with AS1's auth_session.
    const delivered = log.find((e) => e.form?.has('authorization_code'));
    assert.ok(delivered?.url.startsWith(pair.as1.issuer + '/native/response/'), delivered?.url);
    assert.equal(delivered!.form!.get('iss'), pair.as2.issuer);
    assert.ok(delivered!.form!.get('auth_session'));
    assert.ok(!log.some((e) => e.url.startsWith(pair.as2.issuer + '/oauth2/token')), 'the device never redeems at AS2');

    const tok = await client.exchange(code, pkce);
    assert.equal(tok.token_type, 'DPoP');
    const id = decodeJwt(tok.id_token!);
    assert.equal(id.iss, pair.as1.issuer);
    assert.equal(id.sub, `${pair.as2.issuer}|${bob.username}`);
  });

  test('the bank app declines (error=access_denied on the callback): reported to AS1, which ends the sign-in', async () => {
    const log: Exchange[] = [];
    const client = await deviceClient(log, bankAppAdapter([], () => `${callbackUri}?error=access_denied`));
    const err = await client.authorize({ scope: 'openid email' }, promptOnly).then(
      () => assert.fail('signed in after the app declined'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof FedasError, String(err));
    assert.equal(err.error, 'access_denied');
    assert.ok(err.response.from?.startsWith(pair.as1.issuer + '/native/response/'), `final answer from ${err.response.from}`);
    const report = log.at(-1)!;
    assert.equal(report.form?.get('error'), 'access_denied');
    assert.ok(report.form?.get('auth_session'));
  });

  const refused: { name: string; tamper: (cb: string) => string }[] = [
    { name: 'another host', tamper: (cb) => cb.replace('https://app.example/', 'https://evil.example/') },
    { name: 'a look-alike path', tamper: (cb) => cb.replace('/cb?', '/cb.evil?') },
    { name: 'a longer path', tamper: (cb) => cb.replace('/cb?', '/cb/x?') },
    { name: 'a repeated authorization_code', tamper: (cb) => cb + '&authorization_code=other' },
    { name: 'an iss that is not AS2', tamper: (cb) => cb.replace(/iss=[^&]*/, `iss=${encodeURIComponent(pair.as1.issuer)}`) },
    { name: 'neither code nor error', tamper: () => `${callbackUri}?foo=bar` },
  ];
  for (const c of refused) {
    test(`a callback with ${c.name} is refused and nothing is sent`, async () => {
      const log: Exchange[] = [];
      let sentBeforeCallback = -1;
      const client = await deviceClient(
        log,
        bankAppAdapter([], (cb) => {
          sentBeforeCallback = log.length;
          return c.tamper(cb);
        }),
      );
      await assert.rejects(client.authorize({ scope: 'openid email' }, promptOnly), (e: unknown) => e instanceof FedasError && e.error === 'invalid_callback');
      assert.ok(sentBeforeCallback > 0);
      // No request after the callback (the bank app's completion is its own client's, not logged here).
      assert.equal(log.length, sentBeforeCallback, `sent after the callback: ${log.slice(sentBeforeCallback).map((e) => e.url)}`);
    });
  }
});
