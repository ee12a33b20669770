// Presentations through the WalletAdapter against a real fedas with its
// internal OpenID4VP verifier (docs/protocol.md "Digital credentials"),
// configured as the Go end-to-end tests configure it
// (server/dc_e2e_test.go: the PID query, the `wallet` login_hint rule, a
// trusted issuer whose given_name and family_name become ID token
// claims). The verifier needs an https issuer, so fedas runs behind a
// TLS proxy on 127.0.0.1 with a certificate made for this run
// (testsupport/tls.ts, testsupport/x509.ts); the wallet is
// testsupport/wallet.ts, holding a PID issued by a test issuer fedas
// trusts, and answering exactly what fedas's signed request asks.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import { Client, DPoPKey, FedasError, discover, type Exchange, type Metadata, type PresentationRequest, type TokenResponse, type WalletAdapter } from '../src/index.js';
import { demoConfig, freePort, startFedas, type Server } from '../testsupport/fedas.js';
import { httpsFetch, startTLSProxy, type TLSProxy } from '../testsupport/tls.js';
import { TestIssuer, TestWallet } from '../testsupport/wallet.js';
import { selfSignedCert } from '../testsupport/x509.js';

/** The wallet client's registered openid4vp_redirect_uri and DC API origin (server/dc_e2e_test.go). */
const dcReturn = 'https://app.example/dc-return';
const dcOrigin = 'android:apk-key-hash:Zm9vYmFy';
const acr = 'urn:fedas:acr:wallet';

/** pidQuery asks a PID's given and family name (OpenID4VP 1.0 §6). */
const pidQuery = (vct: string) => JSON.stringify({ credentials: [{ id: 'pid', format: 'dc+sd-jwt', meta: { vct_values: [vct] }, claims: [{ path: ['given_name'] }, { path: ['family_name'] }] }] });

describe('presentations: a real fedas verifier, a wallet holding a PID', () => {
  let proxy: TLSProxy;
  let as: Server;
  let dir: string;
  let fetchTLS: typeof fetch;
  let metadata: Metadata;
  let wallet: TestWallet;

  before(async () => {
    const tlsCert = selfSignedCert('fedas sdk test', true);
    const verifierCert = selfSignedCert('fedas sdk test verifier', false);
    dir = mkdtempSync(join(tmpdir(), 'fedas-sdk-ts-dc-'));
    writeFileSync(join(dir, 'verifier.key'), verifierCert.keyPem, { mode: 0o600 });
    writeFileSync(join(dir, 'verifier.pem'), verifierCert.certPem);
    const issuer = await TestIssuer.create();

    proxy = await startTLSProxy(tlsCert);
    const port = await freePort();
    proxy.target(port);
    let cfg = demoConfig(port);
    const plain = `issuer: http://127.0.0.1:${port}\n`;
    assert.ok(cfg.includes(plain));
    cfg = cfg.replace(plain, `issuer: ${proxy.url}\n`);
    const demoApp = '    native_callback_uris: ["https://app.example/cb", "com.example.demo:/cb"]\n';
    assert.ok(cfg.includes(demoApp));
    const dcClient = `digital_credentials: {dc_api_origins: ["${dcOrigin}"], openid4vp_redirect_uris: ["${dcReturn}"]`;
    cfg = cfg.replace(demoApp, `${demoApp}    ${dcClient}}\n`);
    // A client speaking the federation draft's dialect (docs/protocol.md "Dialects").
    cfg = cfg.replace(
      '\nusers:\n',
      `
  - id: dc-draft00
    name: draft00 dialect app
    first_party: true
    token_endpoint_auth_method: none
    scopes: [openid, profile]
    grant_types: [authorization_code]
    ${dcClient}, dialect: draft00}
users:
`,
    );
    cfg += `digital_credentials:
  enabled: true
  signing_key_file: ${join(dir, 'verifier.key')}
  certificate_chain_file: ${join(dir, 'verifier.pem')}
  poll_interval: 1s
  trusted_issuers:
    - issuer: ${issuer.id}
      jwks: '${JSON.stringify({ keys: [issuer.publicJwk] })}'
      vct_values: ["${issuer.vct}"]
      subject_claim: sub
      claims: {given_name: given_name, family_name: family_name}
  queries:
    pid: '${pidQuery(issuer.vct)}'
  rules:
    - {login_hint: wallet, query: pid, acr: "${acr}"}
    - {acr_value: "${acr}", query: pid, acr: "${acr}"}
`;
    as = await startFedas({ port, config: cfg, issuer: proxy.url });
    fetchTLS = httpsFetch(tlsCert.certPem);
    metadata = await discover(proxy.url, fetchTLS);
    assert.equal(metadata.issuer, proxy.url);
    wallet = new TestWallet(fetchTLS, verifierCert.certPem);
    await wallet.receive(issuer, { sub: 'pid-4711', given_name: 'Erika', family_name: 'Mustermann', birthdate: '1964-08-12' });
  });
  after(async () => {
    await as?.stop();
    await proxy?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const client = async (w: WalletAdapter, log: Exchange[]) =>
    new Client({ clientId: 'demo-app', metadata, fetch: fetchTLS, dpop: await DPoPKey.generate(), wallet: w, onExchange: (e) => log.push(e) });

  /** idClaims verifies the ID token with fedas's published keys (issuer, audience) and returns its claims. */
  const idClaims = async (tok: TokenResponse, audience = 'demo-app'): Promise<JWTPayload> => {
    assert.equal(tok.token_type, 'DPoP');
    const jwks = (await (await fetchTLS(String(metadata.jwks_uri))).json()) as JSONWebKeySet;
    const { payload } = await jwtVerify(tok.id_token!, createLocalJWKSet(jwks), { issuer: proxy.url, audience });
    return payload;
  };

  /** The sign-in of the PID holder, as server/dc_e2e_test.go asserts it: derived subject, mapped claims only, amr pop, the rule's acr. */
  const assertErika = (c: JWTPayload) => {
    assert.match(String(c.sub), /^dc\./);
    assert.ok(!String(c.sub).includes('pid-4711'), 'the credential’s own subject is not ours');
    assert.equal(c.given_name, 'Erika');
    assert.equal(c.family_name, 'Mustermann');
    assert.ok(!('birthdate' in c), 'no claim beyond the mapped ones');
    assert.deepEqual(c.amr, ['pop']);
    assert.equal(c.acr, acr);
  };

  const noUI = () => assert.fail('the UI should not be asked');
  let subject = '';

  test('same device: openWallet presents to fedas’s response_uri; the response_code it returns signs Erika in', async () => {
    const seen: PresentationRequest[] = [];
    const log: Exchange[] = [];
    const c = await client(
      {
        async openWallet(p) {
          seen.push(p);
          const ans = await wallet.present(p.request);
          assert.equal(ans.status, 200, JSON.stringify(ans.body));
          assert.equal(ans.request.response_uri, `${proxy.url}/dc/response`);
          return ans.redirectUri!;
        },
      },
      log,
    );
    const { code, pkce } = await c.authorize({ scope: 'openid profile', login_hint: 'wallet', dc_api: 'false', openid4vp_flow_type: 'same_device', openid4vp_redirect_uri: dcReturn }, noUI);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].flow, 'same_device');
    assert.equal(seen[0].dialect, 'wallet');
    assert.equal(seen[0].codeMember, 'response_code');
    assert.ok(seen[0].request.startsWith('openid4vp://?'), seen[0].request);
    assert.ok(seen[0].expiresIn! > 0);
    // Two posts at the native endpoint: the initial request (403 with the
    // challenge), then the auth_session with the wallet's response_code only.
    const native = log.filter((e) => e.url === `${proxy.url}/native/authorize`);
    assert.equal(native.length, 2);
    assert.equal(native[0].status, 403);
    assert.deepEqual([...native[1].form!.keys()].sort(), ['auth_session', 'response_code']);
    assert.ok(native[1].form!.get('response_code')!.length >= 22);
    const claims = await idClaims(await c.exchange(code, pkce));
    assertErika(claims);
    subject = String(claims.sub);
  });

  // A wallet that never answers would leave the SDK polling until fedas ends the transaction: bounded here.
  test('cross device: the QR code is scanned by the wallet on another device; the next poll gets the code for the same subject', { timeout: 20_000 }, async () => {
    const shown: string[] = [];
    const sleeps: number[] = [];
    const log: Exchange[] = [];
    const c = await client(
      {
        showQR: (p) => void shown.push(p.request),
        async sleep(s) {
          sleeps.push(s);
          if (sleeps.length === 1) {
            const ans = await wallet.present(shown[0]);
            assert.equal(ans.status, 200, JSON.stringify(ans.body));
            assert.equal(ans.redirectUri, undefined, 'no redirect across devices (OpenID4VP 1.0 §14.2)');
          }
          // fedas runs on the real clock: polling before interval is slow_down.
          await new Promise((ok) => setTimeout(ok, s * 1000 + 100));
        },
      },
      log,
    );
    const { code, pkce } = await c.authorize({ scope: 'openid profile', login_hint: 'wallet', openid4vp_flow_type: 'cross_device' }, noUI);
    assert.equal(shown.length, 1);
    assert.ok(shown[0].startsWith('openid4vp://?'));
    assert.deepEqual(sleeps, [1]);
    const polls = log.filter((e) => e.url === `${proxy.url}/native/authorize`).slice(1);
    assert.equal(polls.length, 1);
    assert.deepEqual([...polls[0].form!.keys()], ['auth_session']);
    const claims = await idClaims(await c.exchange(code, pkce));
    assertErika(claims);
    if (subject) assert.equal(claims.sub, subject, 'one credential subject, one subject of ours');
  });

  test('Digital Credentials API: dcApi returns the encrypted response for the registered origin; fedas accepts it', async () => {
    const log: Exchange[] = [];
    const c = await client(
      {
        async dcApi(p) {
          assert.equal(p.flow, 'dc_api');
          const { requests } = JSON.parse(p.request) as { requests: { protocol: string }[] };
          assert.deepEqual(requests.map((r) => r.protocol), ['openid4vp-v1-signed']);
          return wallet.dcApi(p.request, dcOrigin);
        },
      },
      log,
    );
    const { code, pkce } = await c.authorize({ scope: 'openid profile', login_hint: 'wallet', dc_api: 'true' }, noUI);
    // The platform's answer goes back as the encrypted response member, with the auth_session.
    const follow = log.filter((e) => e.url === `${proxy.url}/native/authorize`)[1];
    assert.deepEqual([...follow.form!.keys()].sort(), ['auth_session', 'response']);
    assert.equal(follow.form!.get('response')!.split('.').length, 5, 'a compact JWE');
    assertErika(await idClaims(await c.exchange(code, pkce)));
  });

  test('same device, draft00 dialect: the request member, the wallet returns a presentation_id, which signs Erika in', async () => {
    const seen: PresentationRequest[] = [];
    const log: Exchange[] = [];
    const c = new Client({
      clientId: 'dc-draft00',
      metadata,
      fetch: fetchTLS,
      dpop: await DPoPKey.generate(),
      onExchange: (e) => log.push(e),
      wallet: {
        async openWallet(p) {
          seen.push(p);
          const ans = await wallet.present(p.request);
          assert.equal(ans.status, 200, JSON.stringify(ans.body));
          return ans.redirectUri!;
        },
      },
    });
    const { code, pkce } = await c.authorize({ scope: 'openid profile', login_hint: 'wallet', openid4vp_flow_type: 'same_device', openid4vp_redirect_uri: dcReturn }, noUI);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].dialect, 'draft00');
    assert.equal(seen[0].codeMember, 'presentation_id');
    assert.equal(seen[0].response.type, 'digital_credentials_required');
    const follow = log.filter((e) => e.url === `${proxy.url}/native/authorize`)[1];
    assert.deepEqual([...follow.form!.keys()].sort(), ['auth_session', 'presentation_id']);
    const claims = await idClaims(await c.exchange(code, pkce), 'dc-draft00');
    assertErika(claims);
    if (subject) assert.equal(claims.sub, subject);
  });

  test('same device: the user declines in the wallet; error=access_denied ends the sign-in', async () => {
    const c = await client({ openWallet: async () => `${dcReturn}?error=access_denied` }, []);
    await assert.rejects(
      c.authorize({ scope: 'openid profile', login_hint: 'wallet', openid4vp_flow_type: 'same_device', openid4vp_redirect_uri: dcReturn }, noUI),
      (e: unknown) => e instanceof FedasError && e.error === 'access_denied',
    );
  });
});
