// The cross-device redirect_to_app through a ReachAdapter: shape and
// dispatch only, against a scripted node:http server with the answers of
// docs/protocol.md "Cross-device sign-in" and "No channel: the QR code".
// The same flows against a real fedas (our app's API included) are in
// test-pending/reach.test.ts, which waits for a fedas fix (see there).
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, DPoPKey, FedasError, discover, type ReachAdapter } from '../src/index.js';
import { startStub, type Stub, type StubAnswer, type StubRequest } from '../testsupport/stub.js';

describe('reach (stub server: shape and dispatch)', () => {
  let stub: Stub | undefined;
  afterEach(async () => {
    await stub?.stop();
    stub = undefined;
  });

  const redirectToApp: StubAnswer = [400, { error: 'redirect_to_app', auth_session: 's1', deep_link: 'https://bank.example/app?client_id=demo-app&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Afedas-app.x', reach_uri: '' }];

  /** run scripts POST /native/reach and its polls; the native endpoint answers redirect_to_app, then a code for the completed auth_session. */
  const run = async (reachAnswer: StubAnswer, polls: StubAnswer[], reach: ReachAdapter, appLinks = true) => {
    let i = 0;
    stub = await startStub((r: StubRequest): StubAnswer => {
      if (r.path === '/native/authorize') {
        if (r.form.has('response_type')) return [redirectToApp[0], { ...redirectToApp[1], reach_uri: `${stub!.issuer}/native/reach` }];
        return r.form.get('auth_session') === 's2' && [...r.form.keys()].length === 1 ? [200, { authorization_code: 'the-code' }] : [400, { error: 'invalid_session' }];
      }
      if (r.path === '/native/reach' && r.method === 'POST') return reachAnswer;
      if (r.path === '/native/reach/t1' && r.method === 'GET') return polls[i++] ?? [500, { error: 'server_error' }];
      return [404, { error: 'not_found' }];
    });
    const client = new Client({
      clientId: 'demo-app',
      metadata: await discover(stub.issuer),
      dpop: await DPoPKey.generate(),
      nativeCallbackUri: 'https://app.example/cb',
      appLinks: appLinks ? { open: async () => null } : undefined,
      reach,
    });
    return client.authorize({ scope: 'openid', login_hint: 'carol' }, () => assert.fail('no UI expected'));
  };

  test('no app here → POST reach_uri (auth_session, DPoP), number shown, polls honour interval, Retry-After and slow_down, completed auth_session → code', async () => {
    const shown: string[] = [];
    const sleeps: number[] = [];
    const res = await run(
      [202, { status: 'pending', expires_in: 120, interval: 2, binding_code: '42' }, { Location: '/native/reach/t1', 'Retry-After': '2' }],
      [
        [202, { status: 'pending', expires_in: 118, interval: 3 }, { 'Retry-After': '3' }],
        [429, { error: 'slow_down' }, { 'Retry-After': '7' }],
        [202, { status: 'interacting', interval: 3 }],
        [200, { status: 'completed', auth_session: 's2' }],
      ],
      { showBindingCode: (c) => void shown.push(c), sleep: async (s) => void sleeps.push(s) },
    );
    assert.equal(res.code, 'the-code');
    assert.deepEqual(shown, ['42']);
    assert.deepEqual(sleeps, [2, 3, 7, 3]);
    const post = stub!.requests.find((r) => r.path === '/native/reach')!;
    assert.deepEqual([...post.form.entries()], [['auth_session', 's1']]);
    // Every request to our AS carries a DPoP proof (docs/protocol.md "Cross-device sign-in").
    for (const r of stub!.requests) assert.ok(r.headers.dpop, `${r.method} ${r.path} without DPoP`);
  });

  test('without an AppLinkAdapter the other device is asked at once', async () => {
    const res = await run(
      [202, { status: 'pending', interval: 1, binding_code: '7' }, { Location: `/native/reach/t1` }],
      [[200, { status: 'completed', auth_session: 's2' }]],
      { showBindingCode: () => {}, sleep: async () => {} },
      false,
    );
    assert.equal(res.code, 'the-code');
  });

  test('424 interaction_unavailable: the deep link and number shown as a QR code, then the same polling', async () => {
    const qr: [string, string][] = [];
    const res = await run(
      [424, { error: 'interaction_unavailable', deep_link: 'https://bank.example/app?client_id=demo-app&reach_ref=r1', binding_code: '13', interval: 2 }, { Location: '/native/reach/t1' }],
      [[200, { status: 'completed', auth_session: 's2' }]],
      { showBindingCode: () => assert.fail('no number without a device'), showQR: (l, c) => void qr.push([l, c]), sleep: async () => {} },
    );
    assert.equal(res.code, 'the-code');
    assert.deepEqual(qr, [['https://bank.example/app?client_id=demo-app&reach_ref=r1', '13']]);
  });

  test('424 without showQR, and a denial while polling, end the sign-in with the server’s error', async () => {
    await assert.rejects(
      run([424, { error: 'interaction_unavailable', deep_link: 'https://bank.example/app?reach_ref=r1', binding_code: '13' }, { Location: '/native/reach/t1' }], [], { sleep: async () => {} }),
      (e: unknown) => e instanceof FedasError && e.error === 'interaction_unavailable' && e.status === 424,
    );
    await stub!.stop();
    await assert.rejects(
      run([202, { status: 'pending', interval: 1, binding_code: '9' }, { Location: '/native/reach/t1' }], [[403, { error: 'access_denied' }]], { showBindingCode: () => {}, sleep: async () => {} }),
      (e: unknown) => e instanceof FedasError && e.error === 'access_denied' && e.status === 403,
    );
  });
});
