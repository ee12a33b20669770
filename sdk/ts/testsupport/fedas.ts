// Test support: builds the fedas binary once per test process and starts
// real servers on free loopback ports (no mocks: the SDK's behaviour is
// decided by the server's answers).
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The repository root: $FEDAS_REPO_ROOT (the Go wrapper test, which runs
 * a copy of this package outside the repository), else derived from this
 * file's place: dist/testsupport/ is four levels below it
 * (sdk/ts/dist/testsupport).
 */
export const repoRoot = process.env.FEDAS_REPO_ROOT || resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

let binary: string | undefined = process.env.FEDAS_BIN || undefined;

/**
 * fedasBinary is $FEDAS_BIN (built once by `npm test`'s runner, or by the
 * Go wrapper test), else ./cmd/fedas built into a temporary directory
 * once per process.
 */
export function fedasBinary(): string {
  if (!binary) {
    const out = join(mkdtempSync(join(tmpdir(), 'fedas-sdk-ts-')), 'fedas');
    execFileSync('go', ['build', '-o', out, './cmd/fedas'], { cwd: repoRoot, stdio: 'inherit' });
    binary = out;
  }
  return binary;
}

/** freePort asks the kernel for an unused loopback port. */
export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => ok(port));
    });
  });
}

export interface Server {
  issuer: string;
  stop(): Promise<void>;
  /** What the server printed, for failure messages. */
  log(): string;
}

/**
 * startFedas runs `fedas serve` with the embedded demo config (no config)
 * or the given YAML, on port, and waits for its metadata. issuer is the
 * issuer the YAML names when TLS is terminated in front of fedas
 * (testsupport/tls.ts); the metadata is then awaited on the plain
 * listener all the same.
 */
export async function startFedas(opts: { port?: number; config?: string; issuer?: string } = {}): Promise<Server> {
  const port = opts.port ?? (await freePort());
  const args = ['serve', '--listen', `127.0.0.1:${port}`];
  let cfgDir: string | undefined;
  if (opts.config) {
    cfgDir = mkdtempSync(join(tmpdir(), 'fedas-sdk-ts-cfg-'));
    const file = join(cfgDir, 'fedas.yaml');
    writeFileSync(file, opts.config);
    args.push('--config', file);
  } else {
    args.push('--demo');
  }
  const listener = `http://127.0.0.1:${port}`;
  const issuer = opts.issuer ?? listener;
  const child: ChildProcess = spawn(fedasBinary(), args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (output += b.toString()));
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    if (cfgDir) rmSync(cfgDir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) {
      if (cfgDir) rmSync(cfgDir, { recursive: true, force: true });
      throw new Error(`fedas exited ${child.exitCode}:\n${output}`);
    }
    try {
      const r = await fetch(`${listener}/.well-known/oauth-authorization-server`);
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`fedas did not start in 20 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { issuer, stop, log: () => output };
}

/** totp computes an RFC 6238 code (SHA-1, 6 digits, 30 s) for a base32 secret. */
export function totp(base32: string, now = Date.now()): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of base32.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.alloc(Math.floor(bits.length / 8));
  for (let i = 0; i < key.length; i++) key[i] = parseInt(bits.slice(i * 8, i * 8 + 8), 2);
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(now / 1000 / 30)));
  const h = createHmac('sha1', key).update(counter).digest();
  const off = h[h.length - 1] & 0xf;
  const n = ((h[off] & 0x7f) << 24) | (h[off + 1] << 16) | (h[off + 2] << 8) | h[off + 3];
  return String(n % 1_000_000).padStart(6, '0');
}

/** Demo users (config/demo.yaml). */
export const alice = { username: 'alice', password: 'wonderland' };
export const bob = { username: 'bob', password: 'builder', totpSecret: 'JBSWY3DPEHPK3PXP' };

/**
 * demoConfig is config/demo.yaml moved to port, with clientsExtra (YAML
 * list items) appended to its clients and extra appended at the end: the
 * federation tests' per-instance configuration, as cmd/fedas/demo.go
 * builds its two instances.
 */
export function demoConfig(port: number, clientsExtra = '', extra = ''): string {
  let y = readFileSync(join(repoRoot, 'config/demo.yaml'), 'utf8').replaceAll('127.0.0.1:8080', `127.0.0.1:${port}`);
  y = y.replace('\nusers:\n', `\n${clientsExtra}users:\n`);
  return y + extra;
}

/**
 * ourBankApp is the demo configuration with our own bank app: the
 * first-party public client bank-app (with scopes) and the app "bank"
 * (deep link https://bank.example/app) completing demo-app's links
 * (docs/protocol.md "Our own app"); extra is appended at the end.
 */
export function ourBankApp(port: number, scopes: string[], extra = ''): string {
  return demoConfig(
    port,
    `  - id: bank-app
    name: Bank app
    first_party: true
    token_endpoint_auth_method: none
    scopes: ${JSON.stringify(scopes)}
    grant_types: [authorization_code, refresh_token]
`,
    `apps:
  - id: bank
    client_id: bank-app
    deep_link: https://bank.example/app
    clients: [demo-app]
${extra}`,
  );
}

/**
 * routeTo is the top-level YAML that makes an instance federate to the
 * fedas on port: the downstream id (client clientId there, private_key_jwt
 * with the private JWK priv), the email prompt, and @bank.example routed to
 * it.
 */
export function routeTo(id: string, name: string, port: number, clientId: string, priv: object): string {
  return `downstreams:
  - id: ${id}
    issuer: http://127.0.0.1:${port}
    name: ${name}
    client_id: ${clientId}
    auth: {method: private_key_jwt, key: '${JSON.stringify(priv)}'}
    scopes: {openid: openid, email: email}
prompt:
  inputs: [{key: email, title: Email, hint: you@example.com}]
routes:
  - downstream: ${id}
    email_domains: [bank.example]
`;
}

/** A federation pair: AS1 (the app's AS) routes @bank.example to AS2. */
export interface Pair {
  as1: Server;
  as2: Server;
  stop(): Promise<void>;
}

/**
 * startPair starts AS2 and AS1 as the federation tests and `fedas demo`
 * (cmd/fedas/demo.go) configure them: AS1 is AS2's federating client
 * `as1` (private_key_jwt, RFC 7523; native_callback_uri
 * https://app.example/cb; AS1's /federation/callback as its redirect URI
 * for AS2's browser fallback), allowed credential challenges when
 * challenges is set (docs/decisions.md Q10); AS1 prompts for an email and
 * routes @bank.example to AS2. as2Clients (YAML list items) and as2Extra
 * (top-level YAML) extend AS2's configuration.
 */
export async function startPair(opts: { challenges: boolean; as2Clients?: string; as2Extra?: string }): Promise<Pair> {
  const { generateKeyPair, exportJWK } = await import('jose');
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const priv = { ...(await exportJWK(privateKey)), kid: 'as1-at-as2', alg: 'ES256', use: 'sig' };
  const pub = { ...(await exportJWK(publicKey)), kid: 'as1-at-as2', alg: 'ES256', use: 'sig' };
  const [p1, p2] = [await freePort(), await freePort()];
  const as2 = await startFedas({
    port: p2,
    config: demoConfig(
      p2,
      `  - id: as1
    name: AS1 (federating)
    federating: true
    allow_credential_challenges: ${opts.challenges}
    token_endpoint_auth_method: private_key_jwt
    jwks: '${JSON.stringify({ keys: [pub] })}'
    signing_alg: ES256
    scopes: [openid, profile, email]
    grant_types: [authorization_code]
    redirect_uris: ["http://127.0.0.1:${p1}/federation/callback"]
    native_callback_uris: ["https://app.example/cb"]
${opts.as2Clients ?? ''}`,
      opts.as2Extra ?? '',
    ),
  });
  let as1: Server;
  try {
    as1 = await startFedas({
      port: p1,
      config: demoConfig(
        p1,
        '',
        routeTo('bank', 'Bank', p2, 'as1', priv),
      ),
    });
  } catch (e) {
    await as2.stop();
    throw e;
  }
  return {
    as1,
    as2,
    stop: async () => {
      await as1.stop();
      await as2.stop();
    },
  };
}
