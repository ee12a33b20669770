// Presentation challenges through the WalletAdapter: shape and dispatch
// only, against a scripted node:http server (testsupport/stub.ts), with
// the answers of docs/protocol.md "Digital credentials" (dc-same-device,
// dc-cross-device, dc-api; the draft00 dialect of "Dialects"): the edge
// cases a real fedas does not produce on demand. The same paths against
// fedas's own verifier are test/presentation-real.test.ts.
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, DPoPKey, FedasError, discover, type PresentationRequest, type WalletAdapter } from '../src/index.js';
import { startStub, type Stub, type StubAnswer, type StubRequest } from '../testsupport/stub.js';

const walletURL = (n: number) => `openid4vp://?client_id=x509_hash%3Aabc&request_uri=https%3A%2F%2Fas.example%2Fdc%2Frequest%2Fr${n}&request_uri_method=post`;
const challenge = (flow: string, extra: Record<string, unknown> = {}): StubAnswer => [
  403,
  {
    error: 'insufficient_authorization',
    auth_session: 's1',
    challenge: { type: 'digital_credentials', flow, inputs: flow === 'same_device' ? { response_code: { title: 'response_code', secret: true } } : {} },
    credentials_request: walletURL(1),
    expires_in: 120,
    type: 'digital_credentials',
    ...extra,
  },
];
const code: StubAnswer = [200, { authorization_code: 'the-code' }];

describe('presentations (stub server: shape and dispatch)', () => {
  let stub: Stub | undefined;
  afterEach(async () => {
    await stub?.stop();
    stub = undefined;
  });

  /** run starts a stub answering initial, then each follow-up in turn, and signs in with wallet. */
  const run = async (initial: StubAnswer, followUps: ((r: StubRequest) => StubAnswer)[], wallet: WalletAdapter, params: Record<string, string> = {}) => {
    let i = 0;
    stub = await startStub((r) => (r.form.has('response_type') ? initial : (followUps[i++] ?? (() => [500, { error: 'server_error' }]))(r)));
    const client = new Client({ clientId: 'demo-app', metadata: await discover(stub.issuer), wallet });
    return client.authorize({ scope: 'openid', login_hint: 'wallet', ...params }, () => assert.fail('the UI should not be asked'));
  };

  test('same device (wallet dialect): openWallet gets the typed request; its response_code goes back with the auth_session', async () => {
    const seen: PresentationRequest[] = [];
    const res = await run(
      challenge('same_device'),
      [(r) => (r.form.get('auth_session') === 's1' && r.form.get('response_code') === 'rc-1' && [...r.form.keys()].length === 2 ? code : [400, { error: 'invalid_request' }])],
      { openWallet: async (p) => (seen.push(p), 'https://app.example/dc-return?response_code=rc-1') },
      { openid4vp_flow_type: 'same_device', openid4vp_redirect_uri: 'https://app.example/dc-return' },
    );
    assert.equal(res.code, 'the-code');
    assert.equal(seen.length, 1);
    assert.deepEqual({ flow: seen[0].flow, request: seen[0].request, dialect: seen[0].dialect, codeMember: seen[0].codeMember, expiresIn: seen[0].expiresIn }, {
      flow: 'same_device',
      request: walletURL(1),
      dialect: 'wallet',
      codeMember: 'response_code',
      expiresIn: 120,
    });
  });

  test('same device (draft00 dialect): the request member, presentation_id back', async () => {
    const seen: PresentationRequest[] = [];
    const res = await run(
      [403, { error: 'insufficient_authorization', auth_session: 's1', challenge: { type: 'digital_credentials', flow: 'same_device', inputs: {} }, type: 'digital_credentials_required', request: walletURL(2) }],
      [(r) => (r.form.get('presentation_id') === 'pid-1' && r.form.get('auth_session') === 's1' ? code : [400, { error: 'invalid_request' }])],
      { openWallet: async (p) => (seen.push(p), 'https://app.example/dc-return?presentation_id=pid-1') },
      { openid4vp_redirect_uri: 'https://app.example/dc-return' },
    );
    assert.equal(res.code, 'the-code');
    assert.equal(seen[0].dialect, 'draft00');
    assert.equal(seen[0].codeMember, 'presentation_id');
    assert.equal(seen[0].request, walletURL(2));
  });

  test('same device: the wallet declines → error=access_denied is posted, the answer ends the sign-in', async () => {
    await assert.rejects(
      run(challenge('same_device'), [(r) => (r.form.get('error') === 'access_denied' ? [400, { error: 'access_denied' }] : [400, { error: 'invalid_request' }])], {
        openWallet: async () => 'https://app.example/dc-return?error=access_denied',
      }, { openid4vp_redirect_uri: 'https://app.example/dc-return' }),
      (e: unknown) => e instanceof FedasError && e.error === 'access_denied',
    );
    assert.equal(stub!.requests.length, 2);
  });

  test('same device: a wallet return elsewhere than openid4vp_redirect_uri is refused, nothing sent', async () => {
    await assert.rejects(
      run(challenge('same_device'), [], { openWallet: async () => 'https://evil.example/dc-return?response_code=rc' }, { openid4vp_redirect_uri: 'https://app.example/dc-return' }),
      (e: unknown) => e instanceof FedasError && e.error === 'invalid_callback',
    );
    assert.equal(stub!.requests.length, 1);
  });

  test('Digital Credentials API: dcApi gets the request JSON; vp_token goes back as JSON text', async () => {
    const dcReq = JSON.stringify({ requests: [{ protocol: 'openid4vp-v1-signed', data: { request: 'jws' } }] });
    const res = await run(
      challenge('dc_api', { credentials_request: dcReq }),
      [(r) => (r.form.get('vp_token') === '{"pid":["sd-jwt~kb"]}' && r.form.get('auth_session') === 's1' ? code : [400, { error: 'invalid_request' }])],
      {
        dcApi: async (p) => {
          assert.equal(p.flow, 'dc_api');
          assert.equal(p.request, dcReq);
          return { vp_token: { pid: ['sd-jwt~kb'] } };
        },
      },
      { dc_api: 'true' },
    );
    assert.equal(res.code, 'the-code');
  });

  test('cross device: QR shown, slow_down lengthens the interval, an expired request is shown anew, pending waits, then the code', async () => {
    const sleeps: number[] = [];
    const shown: string[] = [];
    const pollOf = (session: string, a: StubAnswer) => (r: StubRequest): StubAnswer => {
      assert.deepEqual([...r.form.entries()], [['auth_session', session]]);
      return a;
    };
    const res = await run(
      challenge('cross_device', { interval: 5 }),
      [
        pollOf('s1', [403, { error: 'insufficient_authorization', auth_session: 's1', status: 'slow_down', interval: 10, type: 'digital_credentials' }]),
        pollOf('s1', challenge('cross_device', { auth_session: 's2', credentials_request: walletURL(3), interval: 7 })),
        pollOf('s2', [403, { error: 'insufficient_authorization', auth_session: 's2', status: 'pending', interval: 7, type: 'digital_credentials' }]),
        pollOf('s2', code),
      ],
      { showQR: (p) => void shown.push(p.request), sleep: async (s) => void sleeps.push(s) },
      { openid4vp_flow_type: 'cross_device' },
    );
    assert.equal(res.code, 'the-code');
    assert.deepEqual(shown, [walletURL(1), walletURL(3)]);
    assert.deepEqual(sleeps, [5, 10, 7, 7]);
  });

  test("after federate, the wallet path parameters go to the downstream, which asks for the presentation; no proof of ours goes there", async () => {
    const down = await startStub((r) => {
      if (r.form.has('request_uri')) return challenge('same_device');
      return r.form.get('response_code') === 'rc-d' && r.form.get('auth_session') === 's1' ? [200, { authorization_code: 'down-code' }] : [400, { error: 'invalid_request' }];
    });
    try {
      stub = await startStub((r) => {
        if (r.form.has('response_type'))
          return [400, { error: 'federate', auth_session: 'ours-1', federation_uri: `${down.issuer}/native/authorize`, federation_body: 'client_id=as1&request_uri=urn%3Ax', response_uri: `${stub!.issuer}/native/response/h1` }];
        return r.path === '/native/response/h1' && r.form.get('authorization_code') === 'down-code' && r.form.get('auth_session') === 'ours-1' ? [200, { authorization_code: 'the-code' }] : [400, { error: 'invalid_request' }];
      });
      const client = new Client({ clientId: 'demo-app', metadata: await discover(stub.issuer), dpop: await DPoPKey.generate(), wallet: { openWallet: async () => 'https://app.example/dc-return?response_code=rc-d' } });
      const res = await client.authorize({ scope: 'openid', openid4vp_flow_type: 'same_device', openid4vp_redirect_uri: 'https://app.example/dc-return', dc_api: 'false' }, () => assert.fail('no UI expected'));
      assert.equal(res.code, 'the-code');
      const first = down.requests[0].form;
      assert.equal(first.get('client_id'), 'as1');
      assert.equal(first.get('request_uri'), 'urn:x');
      assert.equal(first.get('response_type'), 'code');
      assert.equal(first.get('openid4vp_flow_type'), 'same_device');
      assert.equal(first.get('openid4vp_redirect_uri'), 'https://app.example/dc-return');
      assert.equal(first.get('dc_api'), 'false');
      for (const r of down.requests) {
        assert.equal(r.headers.dpop, undefined, 'no DPoP proof to a downstream');
        assert.ok(!r.form.getAll('auth_session').includes('ours-1'), 'our auth_session stays with us');
      }
      for (const r of stub.requests) assert.ok(r.headers.dpop, 'our AS gets proofs');
    } finally {
      await down.stop();
    }
  });

  test('without the hook a path needs, the UI callback gets the presentation challenge', async () => {
    stub = await startStub((r) => (r.form.has('response_type') ? challenge('cross_device') : [400, { error: 'access_denied' }]));
    const client = new Client({ clientId: 'demo-app', metadata: await discover(stub.issuer), wallet: { openWallet: async () => '' } });
    const asked: string[] = [];
    await assert.rejects(
      client.authorize({ scope: 'openid' }, (r) => {
        asked.push(`${r.challenge?.type}/${r.challenge?.flow}`);
        return {};
      }),
      (e: unknown) => e instanceof FedasError && e.error === 'access_denied',
    );
    assert.deepEqual(asked, ['digital_credentials/cross_device']);
  });
});
