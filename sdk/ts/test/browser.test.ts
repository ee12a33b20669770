// redirect_to_web with a BrowserAdapter against real fedas browser
// fallbacks (docs/protocol.md "Browser legs and the response_code"; FiPA-04
// §5.2.2.1.1): a downstream's fallback to the browser (AS2 serves no
// credential challenge to AS1's users, docs/decisions.md Q7), and our own
// AS's fallback when no app opens its deep link (Q17).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { Client, DPoPKey, FedasError, discover, type BrowserAdapter, type Exchange, type NativeResponse, type Params } from '../src/index.js';
import { alice, freePort, ourBankApp, startFedas, startPair, type Pair, type Server } from '../testsupport/fedas.js';
import { testBrowser, type BrowserTrace } from '../testsupport/browser.js';

const callbackUri = 'https://app.example/cb';

const promptOnly = (r: NativeResponse): Params => {
  assert.equal(r.error, 'insufficient_information', `only AS1's prompt is expected, got ${r.error}`);
  return { email: 'alice@bank.example' };
};

describe('redirect_to_web: AS2 falls back to the browser', () => {
  let pair: Pair;
  before(async () => {
    pair = await startPair({ challenges: false });
  });
  after(async () => {
    await pair?.stop();
  });

  const deviceClient = async (log: Exchange[], browser: BrowserAdapter) =>
    new Client({ clientId: 'demo-app', metadata: await discover(pair.as1.issuer), dpop: await DPoPKey.generate(), nativeCallbackUri: callbackUri, browser, onExchange: (e) => log.push(e) });

  test('the browser signs in at AS2, AS1 sends it to native_callback_uri with a response_code; the device gets AS1 tokens for alice at AS2', async () => {
    const log: Exchange[] = [];
    const trace: BrowserTrace = { visited: [], pages: [] };
    const client = await deviceClient(log, testBrowser(alice, trace));
    const { code, pkce } = await client.authorize({ scope: 'openid email' }, promptOnly);
    // The browser started at AS2's authorization endpoint with AS1's client_id and AS2's request_uri.
    const start = new URL(trace.visited[0]);
    assert.equal(start.origin + start.pathname, `${pair.as2.issuer}/oauth2/authorize`);
    assert.equal(start.searchParams.get('client_id'), 'as1');
    assert.match(start.searchParams.get('request_uri') ?? '', /^urn:ietf:params:oauth:request_uri:/);
    assert.deepEqual(trace.pages, ['Sign in']);
    assert.ok(trace.visited.some((u) => u.startsWith(`${pair.as1.issuer}/federation/callback?`)), 'AS2 sent the browser to AS1 web callback');
    // The response_code went with AS1's auth_session to AS1's response_uri.
    const delivered = log.find((e) => e.form?.has('response_code'));
    assert.ok(delivered?.url.startsWith(`${pair.as1.issuer}/native/response/`), delivered?.url);
    assert.ok(delivered!.form!.get('auth_session'));
    const tok = await client.exchange(code, pkce);
    assert.equal(tok.token_type, 'DPoP');
    const id = decodeJwt(tok.id_token!);
    assert.equal(id.iss, pair.as1.issuer);
    assert.equal(id.sub, `${pair.as2.issuer}|${alice.username}`);
  });

  test('a browser callback outside native_callback_uri is refused and nothing is sent', async () => {
    const log: Exchange[] = [];
    let sent = -1;
    const real = testBrowser(alice);
    const client = await deviceClient(log, {
      async open(url, cb) {
        const got = await real.open(url, cb);
        sent = log.length;
        return got.replace('https://app.example/cb?', 'https://app.example/cb/../evil?');
      },
    });
    await assert.rejects(client.authorize({ scope: 'openid email' }, promptOnly), (e: unknown) => e instanceof FedasError && e.error === 'invalid_callback');
    assert.ok(sent > 0);
    assert.equal(log.length, sent);
  });

  test('error=access_denied on the callback goes to AS1 response_uri, whose answer ends the sign-in', async () => {
    const log: Exchange[] = [];
    const client = await deviceClient(log, { open: async () => `${callbackUri}?error=access_denied` });
    const err = await client.authorize({ scope: 'openid email' }, promptOnly).then(
      () => assert.fail('signed in without a response_code'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof FedasError, String(err));
    assert.equal(err.error, 'access_denied');
    const report = log.at(-1)!;
    assert.ok(report.url.startsWith(`${pair.as1.issuer}/native/response/`));
    assert.equal(report.form?.get('error'), 'access_denied');
  });
});

describe("our AS's app (local role): the app completes the link, or no app and the browser fallback", () => {
  let as: Server;
  before(async () => {
    const port = await freePort();
    let cfg = ourBankApp(port, ['openid']);
    cfg = cfg.replace('native_callback_uris: ["https://app.example/cb", "com.example.demo:/cb"]\n', '$&    redirect_uris: ["https://app.example/web-cb"]\n');
    assert.match(cfg, /redirect_uris: \["https:\/\/app.example\/web-cb"\]/);
    as = await startFedas({ port, config: cfg });
  });
  after(async () => {
    await as?.stop();
  });

  test('no app → deep_link_unavailable → redirect_to_web → the browser brings code, iss and state to redirect_uri', async () => {
    const log: Exchange[] = [];
    const trace: BrowserTrace = { visited: [], pages: [] };
    const client = new Client({
      clientId: 'demo-app',
      metadata: await discover(as.issuer),
      nativeCallbackUri: callbackUri,
      redirectUri: 'https://app.example/web-cb',
      appLinks: { open: async () => null },
      browser: testBrowser(alice, trace),
      onExchange: (e) => log.push(e),
    });
    const { code, pkce } = await client.authorize({ scope: 'openid', state: 'st-123' }, () => assert.fail('no native challenge expected'));
    assert.ok(log.some((e) => e.form?.get('deep_link_unavailable') === 'true'));
    assert.ok(trace.visited[0].startsWith(`${as.issuer}/oauth2/authorize?`));
    assert.equal(pkce.redirectUri, 'https://app.example/web-cb');
    const tok = await client.exchange(code, pkce);
    assert.equal(decodeJwt(tok.id_token!).sub, alice.username);
  });

  const refusals: { name: string; tamper: (cb: string) => string }[] = [
    { name: 'a foreign iss', tamper: (cb) => cb.replace(/iss=[^&]*/, 'iss=https%3A%2F%2Fevil.example') },
    { name: 'another state', tamper: (cb) => cb.replace(/state=[^&]*/, 'state=other') },
    { name: 'another redirect_uri', tamper: (cb) => cb.replace('https://app.example/web-cb?', 'https://app.example/web-cb2?') },
  ];
  for (const c of refusals) {
    test(`our fallback's callback with ${c.name} is refused`, async () => {
      const log: Exchange[] = [];
      const real = testBrowser(alice);
      const client = new Client({
        clientId: 'demo-app',
        metadata: await discover(as.issuer),
        nativeCallbackUri: callbackUri,
        redirectUri: 'https://app.example/web-cb',
        appLinks: { open: async () => null },
        browser: { open: async (u, cb) => c.tamper(await real.open(u, cb)) },
        onExchange: (e) => log.push(e),
      });
      await assert.rejects(
        client.authorize({ scope: 'openid', state: 'st-123' }, () => assert.fail('no native challenge expected')),
        (e: unknown) => e instanceof FedasError && e.error === 'invalid_callback',
      );
      // The last exchange is the redirect_to_web answer: nothing was sent after the browser came back.
      assert.equal(JSON.parse(log.at(-1)!.body).error, 'redirect_to_web');
    });
  }

  test('a local app completes the deep link: its one-time value and iss go with our auth_session to our native endpoint', async () => {
    const bankApp = new Client({ clientId: 'bank-app', metadata: await discover(as.issuer), dpop: await DPoPKey.generate() });
    const signedIn = await bankApp.authorize({ scope: 'openid' }, () => ({ username: alice.username, password: alice.password }));
    const bankTokens = await bankApp.exchange(signedIn.code, signedIn.pkce);
    const log: Exchange[] = [];
    const client = new Client({
      clientId: 'demo-app',
      metadata: await discover(as.issuer),
      dpop: await DPoPKey.generate(),
      nativeCallbackUri: callbackUri,
      appLinks: { open: async (link) => (await bankApp.completeApp(link, bankTokens)).callback },
      onExchange: (e) => log.push(e),
    });
    const { code, pkce } = await client.authorize({ scope: 'openid', login_hint: alice.username }, () => assert.fail('no native challenge expected'));
    const r2a = JSON.parse(log[0].body) as { error: string; auth_session: string };
    assert.equal(r2a.error, 'redirect_to_app');
    const delivered = log[1];
    assert.equal(delivered.url, `${as.issuer}/native/authorize`);
    assert.equal(delivered.form?.get('auth_session'), r2a.auth_session);
    assert.equal(delivered.form?.get('iss'), as.issuer);
    assert.ok(delivered.form?.get('authorization_code'));
    assert.notEqual(delivered.form?.get('authorization_code'), code, 'the app delivered a one-time value, not our code');
    const tok = await client.exchange(code, pkce);
    assert.equal(tok.token_type, 'DPoP');
    assert.equal(decodeJwt(tok.id_token!).sub, alice.username);
  });
});
