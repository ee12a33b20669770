// The cross-device redirect_to_app through a ReachAdapter against a real
// fedas with reach enabled (docs/protocol.md "Cross-device sign-in", "No
// channel: the QR code"; docs/reach.md): no app on this device opens the
// deep link, so the client asks fedas to reach the user's phone, where our
// bank app (a first-party client with reach:device, its device registered
// for its DPoP key) approves by picking the number this device shows.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { Client, DPoPKey, FedasError, discover, type Exchange, type NativeResponse, type Params, type TokenResponse } from '../src/index.js';
import { alice, bob, freePort, ourBankApp, startFedas, totp, type Server } from '../testsupport/fedas.js';

const callbackUri = 'https://app.example/cb';

/** Phone is our bank app on the user's other device, speaking the reach app API as the real app does. */
class Phone {
  cursor = '';
  constructor(
    readonly app: Client,
    readonly tokens: TokenResponse,
  ) {}

  static async signIn(issuer: string, user: { username: string; password: string; totpSecret?: string }): Promise<Phone> {
    const app = new Client({ clientId: 'bank-app', metadata: await discover(issuer), dpop: await DPoPKey.generate() });
    const { code, pkce } = await app.authorize({ scope: 'openid reach:device' }, (r: NativeResponse): Params =>
      r.challenge?.type === 'otp' ? { otp: totp(user.totpSecret!) } : { username: user.username, password: user.password },
    );
    const phone = new Phone(app, await app.exchange(code, pkce));
    const reg = await phone.call('POST', '/reach/devices', { name: `${user.username}'s phone`, platform: 'ios', capabilities: ['app_auth'], channels: [{ type: 'inbox' }] });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    return phone;
  }

  async call(method: string, path: string, json?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
    const init: RequestInit = { method };
    if (json !== undefined) {
      init.headers = { 'Content-Type': 'application/json' };
      init.body = JSON.stringify(json);
    }
    const resp = await this.app.fetchResource(this.app.metadata.issuer + path, this.tokens, init);
    const text = await resp.text();
    return { status: resp.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }

  /** inbox reads the entries after the cursor (held up to wait seconds when there are none); polling is what makes the device present. */
  async inbox(wait = 0): Promise<{ task: string; kind: string }[]> {
    const q = new URLSearchParams();
    if (wait) q.set('wait', String(wait));
    if (this.cursor) q.set('after', this.cursor);
    const r = await this.call('GET', `/reach/inbox?${q}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    this.cursor = String(r.body.next ?? this.cursor);
    return r.body.entries as { task: string; kind: string }[];
  }

  /** answer approves (picking the number shown on the other device) or denies the task. */
  async answer(task: Record<string, unknown>, decision: 'approve' | 'deny', bindingCode: string): Promise<void> {
    const choices = task.binding_choices as unknown[];
    assert.equal(choices.length, 3);
    const pick = choices.find((c) => String(c) === bindingCode);
    assert.ok(pick !== undefined, `the number ${bindingCode} is among ${JSON.stringify(choices)}`);
    const r = await this.call('POST', `/reach/tasks/${task.id}/response`, { decision, binding_choice: pick, amr: ['hwk', 'face'] });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
}

describe('reach: redirect_to_app completed on the user’s other device', () => {
  let as: Server;
  let alicePhone: Phone;
  let bobPhone: Phone;
  before(async () => {
    const port = await freePort();
    let cfg = ourBankApp(port, ['openid', 'reach:device'], `reach:
  enabled: true
  poll_interval: 1s
`);
    cfg = cfg.replace('\nscopes: [openid, profile, email, offline_access]\n', '\nscopes: [openid, profile, email, offline_access, "reach:device"]\n');
    assert.match(cfg, /reach:device"\]\n/);
    as = await startFedas({ port, config: cfg });
    alicePhone = await Phone.signIn(as.issuer, alice);
    bobPhone = await Phone.signIn(as.issuer, bob); // registered, never polls its inbox: not present
  });
  after(async () => {
    await as?.stop();
  });

  const device = async (log: Exchange[], reach: ConstructorParameters<typeof Client>[0]['reach']) =>
    new Client({ clientId: 'demo-app', metadata: await discover(as.issuer), dpop: await DPoPKey.generate(), nativeCallbackUri: callbackUri, appLinks: { open: async () => null }, reach, onExchange: (e) => log.push(e) });

  test('inbox: the phone gets the task, the user picks the number shown here; the completed auth_session gets our code for alice', async () => {
    await alicePhone.inbox(); // the app is running: present
    const log: Exchange[] = [];
    const shown: string[] = [];
    const client = await device(log, {
      async showBindingCode(code) {
        shown.push(code);
        const entries = await alicePhone.inbox(5);
        assert.equal(entries.length, 1);
        assert.equal(entries[0].kind, 'app_auth');
        const task = await alicePhone.call('GET', `/reach/tasks/${entries[0].task}`);
        assert.equal(task.status, 200);
        assert.equal(task.body.client_id, 'demo-app');
        assert.equal((await alicePhone.call('POST', `/reach/tasks/${entries[0].task}/ack`)).body.status, 'interacting');
        await alicePhone.answer(task.body, 'approve', code);
      },
    });
    const { code, pkce } = await client.authorize({ scope: 'openid', login_hint: alice.username }, () => assert.fail('no challenge expected'));
    assert.equal(shown.length, 1);
    assert.match(shown[0], /^\d+$/);
    // POST reach_uri with the auth_session, polls of Location, then the new auth_session at the native endpoint.
    const reachPost = log.find((e) => e.url === `${as.issuer}/native/reach`);
    assert.ok(reachPost?.form?.get('auth_session'));
    assert.ok(log.some((e) => e.method === 'GET' && e.url.startsWith(`${as.issuer}/native/reach/`) && e.status === 200));
    const tok = await client.exchange(code, pkce);
    assert.equal(tok.token_type, 'DPoP');
    assert.equal(decodeJwt(tok.id_token!).sub, alice.username);
  });

  test('no present device: 424 with a QR deep link; the phone scans it and approves', async () => {
    const log: Exchange[] = [];
    const qr: string[] = [];
    const client = await device(log, {
      showBindingCode: () => assert.fail('bob has no present device'),
      async showQR(deepLink, code) {
        qr.push(deepLink);
        const ref = new URL(deepLink).searchParams.get('reach_ref');
        assert.ok(ref, deepLink);
        const task = await bobPhone.call('POST', '/reach/scan', { ref });
        assert.equal(task.status, 200, JSON.stringify(task.body));
        await bobPhone.answer(task.body, 'approve', code);
      },
    });
    const { code, pkce } = await client.authorize({ scope: 'openid', login_hint: bob.username }, () => assert.fail('no challenge expected'));
    assert.equal(qr.length, 1);
    assert.ok(qr[0].startsWith('https://bank.example/app?'));
    assert.equal(decodeJwt((await client.exchange(code, pkce)).id_token!).sub, bob.username);
  });

  test('the user denies on the phone: the poll answers access_denied and the sign-in ends', async () => {
    await alicePhone.inbox();
    const log: Exchange[] = [];
    const client = await device(log, {
      async showBindingCode(code) {
        const [entry] = await alicePhone.inbox(5);
        const task = await alicePhone.call('GET', `/reach/tasks/${entry.task}`);
        assert.equal((await alicePhone.call('POST', `/reach/tasks/${entry.task}/ack`)).status, 200);
        await alicePhone.answer(task.body, 'deny', code);
      },
    });
    await assert.rejects(
      client.authorize({ scope: 'openid', login_hint: alice.username }, () => assert.fail('no challenge expected')),
      (e: unknown) => e instanceof FedasError && e.error === 'access_denied' && e.status === 403,
    );
    assert.ok(!log.some((e) => e.form?.has('deep_link_unavailable')));
  });
});
