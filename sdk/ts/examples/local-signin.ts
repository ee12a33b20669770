// Local sign-in: discovery, the native password (+ one-time code) loop,
// DPoP-bound tokens, a refresh and a revocation. Against the demo:
//
//   go run ./cmd/fedas serve --demo            # http://127.0.0.1:8080
//   cd sdk/ts && npm run build && node dist/examples/local-signin.js http://127.0.0.1:8080 alice wonderland
import { createInterface } from 'node:readline/promises';
import { Client, DPoPKey, FedasError, discover, isChallenge, type NativeResponse, type Params } from '../src/index.js';

export async function signIn(issuer: string, username: string, password: string, ask: (q: string) => Promise<string>) {
  const client = new Client({ clientId: 'demo-app', metadata: await discover(issuer), dpop: await DPoPKey.generate() });
  const ui = async (r: NativeResponse): Promise<Params> => {
    if (isChallenge(r.challenge, 'password')) return { username, password };
    if (isChallenge(r.challenge, 'otp')) return { otp: await ask('one-time code: ') };
    // Any other challenge is self-describing: one answer per input name.
    const answers: Params = {};
    for (const [name, input] of Object.entries(r.challenge?.inputs ?? {})) answers[name] = await ask(`${input.title ?? name}: `);
    return answers;
  };
  const { code, pkce } = await client.authorize({ scope: 'openid profile offline_access' }, ui);
  const tokens = await client.exchange(code, pkce);
  const fresh = await client.refresh(tokens.refresh_token!); // fedas rotates refresh tokens: keep the new one
  await client.revoke(fresh.refresh_token!, 'refresh_token');
  return tokens;
}

if (process.argv[1]?.endsWith('local-signin.js')) {
  const [issuer = 'http://127.0.0.1:8080', user = 'alice', pw = 'wonderland'] = process.argv.slice(2);
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  signIn(issuer, user, pw, (q) => rl.question(q))
    .then((t) => console.log(`signed in: token_type ${t.token_type}, expires_in ${t.expires_in}`))
    .catch((e: unknown) => {
      // Branch on error, never on the HTTP status (docs/decisions.md Q2).
      console.error(e instanceof FedasError ? `${e.error}: ${e.error_description ?? ''}` : e);
      process.exitCode = 1;
    })
    .finally(() => rl.close());
}
