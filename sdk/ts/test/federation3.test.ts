// Three real fedas instances in a chain: AS1 → AS2 → AS3 (bob's bank).
// The SDK's hop stack must carry each AS's auth_session back to its own
// response_uri, innermost first.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt, exportJWK, generateKeyPair } from 'jose';
import { Client, DPoPKey, discover, type Exchange, type Params } from '../src/index.js';
import { bob, demoConfig, freePort, routeTo, startFedas, totp, type Server } from '../testsupport/fedas.js';


/** A federating client registration (id) at a downstream, and the downstream entry pointing there. */
async function link(id: string, downstreamPort: number) {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const priv = { ...(await exportJWK(privateKey)), kid: id, alg: 'ES256', use: 'sig' };
  const pub = { ...(await exportJWK(publicKey)), kid: id, alg: 'ES256', use: 'sig' };
  const client = `  - id: ${id}
    name: ${id} (federating)
    federating: true
    allow_credential_challenges: true
    token_endpoint_auth_method: private_key_jwt
    jwks: '${JSON.stringify({ keys: [pub] })}'
    signing_alg: ES256
    scopes: [openid, profile, email]
    grant_types: [authorization_code]
    redirect_uris: ["https://${id}.example/web-callback"]
    native_callback_uris: ["https://app.example/cb"]
`;
  const downstream = routeTo('next', 'Next', downstreamPort, id, priv);
  return { client, downstream };
}

describe('federation: AS1 → AS2 → AS3', () => {
  const servers: Server[] = [];
  let as1: Server, as2: Server, as3: Server;
  before(async () => {
    const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()];
    const l12 = await link('as1', p2);
    const l23 = await link('as2', p3);
    as3 = await startFedas({ port: p3, config: demoConfig(p3, l23.client) });
    servers.push(as3);
    as2 = await startFedas({ port: p2, config: demoConfig(p2, l12.client, l23.downstream) });
    servers.push(as2);
    as1 = await startFedas({ port: p1, config: demoConfig(p1, '', l12.downstream) });
    servers.push(as1);
  });
  after(async () => {
    for (const s of servers) await s.stop();
  });

  test('two federate hops, then each code goes back up the stack to its own response_uri', async () => {
    const log: Exchange[] = [];
    const client = new Client({ clientId: 'demo-app', metadata: await discover(as1.issuer), dpop: await DPoPKey.generate(), onExchange: (e) => log.push(e) });
    const { code, pkce } = await client.authorize({ scope: 'openid email', native_callback_uri: 'https://app.example/cb' }, (r): Params => {
      if (r.error === 'insufficient_information') return { email: 'bob@bank.example' };
      if (r.challenge!.type === 'otp') return { otp: totp(bob.totpSecret) };
      return { username: bob.username, password: bob.password };
    });
    const tok = await client.exchange(code, pkce);
    assert.equal(tok.token_type, 'DPoP');
    assert.equal(decodeJwt(tok.id_token!).iss, as1.issuer);
    const federates = log.filter((e) => e.body.includes('"federate"'));
    assert.equal(federates.length, 2, 'one federate per hop');
    // Codes went up: AS3's to AS2, then AS2's to AS1 (innermost first).
    const codePosts = log.filter((e) => e.form?.has('authorization_code')).map((e) => new URL(e.url).origin);
    assert.deepEqual(codePosts, [as2.issuer, as1.issuer]);
    // The password was only ever sent to AS3, the account's AS.
    const pw = log.filter((e) => e.form?.has('password')).map((e) => new URL(e.url).origin);
    assert.ok(pw.length > 0 && pw.every((o) => o === as3.issuer), pw.join(','));
  });
});
