// Test support: a simulated credential issuer and an honest OpenID4VP 1.0
// wallet, in TypeScript with jose, doing what the Go tests' dc/dctest
// issuer and wallet do (fedas demo wallet, server/dc_e2e_test.go): the
// issuer signs an SD-JWT VC (RFC 9901; SD-JWT VC §2, typ dc+sd-jwt)
// bound to the wallet's holder key (cnf.jwk, RFC 7800); the wallet
// fetches fedas's signed request object, checks it, discloses what the
// DCQL query asks (OpenID4VP 1.0 §6), adds a key-binding JWT over the
// request's nonce and client_id (RFC 9901 §4.3), encrypts the response
// to the verifier's key (direct_post.jwt / dc_api.jwt, §8.3) and posts it
// as a wallet would (§8.2), or hands it back as the platform does for the
// Digital Credentials API (App. A).
import { createHash, randomBytes } from 'node:crypto';
import {
  CompactEncrypt,
  SignJWT,
  compactVerify,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  importJWK,
  importX509,
  type CryptoKey,
  type JWK,
} from 'jose';

const b64u = (b: Buffer | string) => Buffer.from(b).toString('base64url');
/** digest is base64url(SHA-256(ascii)): disclosure digests (RFC 9901 §4.2.3) and sd_hash (§4.3.1). */
const digest = (s: string) => b64u(createHash('sha256').update(s, 'ascii').digest());

/** The issuer identifier, type and key id of the Go tests' dctest issuer (dc/dctest/issuer.go). */
export const issuerID = 'https://issuer.example';
export const pidVCT = 'urn:eudi:pid:1';

/** TestIssuer is a credential issuer with one ES256 key (no status list). */
export class TestIssuer {
  readonly id = issuerID;
  readonly vct = pidVCT;
  readonly kid = 'issuer-key-1';
  private constructor(
    private readonly key: CryptoKey,
    /** The public key as trusted_issuers[].jwks names it. */
    readonly publicJwk: JWK,
  ) {}

  static async create(): Promise<TestIssuer> {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const pub = { ...(await exportJWK(publicKey)), kid: 'issuer-key-1', alg: 'ES256', use: 'sig' };
    return new TestIssuer(privateKey, pub);
  }

  /**
   * issue signs claims as an SD-JWT VC for holder: every top-level claim
   * but sub selectively disclosable, iss, vct, iat, exp and cnf plain
   * (SD-JWT VC §2.2.2), and returns the issuer JWT with its disclosures.
   */
  async issue(claims: Record<string, unknown>, holder: JWK): Promise<{ jwt: string; disclosures: { name: string; encoded: string }[] }> {
    const payload: Record<string, unknown> = {};
    const disclosures: { name: string; encoded: string }[] = [];
    const sd: string[] = [];
    for (const [name, value] of Object.entries(claims)) {
      if (name === 'sub') {
        payload[name] = value;
        continue;
      }
      const encoded = b64u(JSON.stringify([b64u(randomBytes(16)), name, value]));
      disclosures.push({ name, encoded });
      sd.push(digest(encoded));
    }
    const now = Math.floor(Date.now() / 1000);
    Object.assign(payload, { _sd: sd.sort(), _sd_alg: 'sha-256', cnf: { jwk: holder }, iss: this.id, vct: this.vct, iat: now, exp: now + 86400 });
    const jwt = await new SignJWT(payload).setProtectedHeader({ alg: 'ES256', typ: 'dc+sd-jwt', kid: this.kid }).sign(this.key);
    return { jwt, disclosures };
  }
}

/** The verified request object members the wallet uses (OpenID4VP 1.0 §5). */
export interface RequestObject {
  client_id?: string;
  response_type: string;
  response_mode: string;
  response_uri?: string;
  nonce: string;
  state?: string;
  wallet_nonce?: string;
  expected_origins?: string[];
  dcql_query: { credentials: { id: string; format: string; meta?: { vct_values?: string[] }; claims?: { path: unknown[] }[] }[] };
  client_metadata: { jwks?: { keys: JWK[] }; encrypted_response_enc_values_supported?: string[] };
}

/** What the verifier's response_uri answered (OpenID4VP 1.0 §8.2). */
export interface WalletAnswer {
  status: number;
  body: Record<string, unknown>;
  /** The 200 body's redirect_uri (same device), if any. */
  redirectUri?: string;
  request: RequestObject;
}

/** The wallet_metadata of a request_uri POST (OpenID4VP 1.0 §10), as the Go wallet sends it. */
const walletMetadata = JSON.stringify({
  vp_formats_supported: { 'dc+sd-jwt': { 'sd-jwt_alg_values': ['ES256'], 'kb-jwt_alg_values': ['ES256'] } },
  client_id_prefixes_supported: ['x509_hash'],
  response_modes_supported: ['direct_post.jwt', 'dc_api.jwt'],
  authorization_encryption_alg_values_supported: ['ECDH-ES'],
  authorization_encryption_enc_values_supported: ['A128GCM', 'A256GCM'],
});

interface Held {
  vct: string;
  jwt: string;
  disclosures: { name: string; encoded: string }[];
  holder: CryptoKey;
}

/**
 * TestWallet holds credentials and presents them. It accepts only
 * request objects signed by the pinned verifier certificate (the Go
 * wallet's VerifierRoots), reached over fetchImpl.
 */
export class TestWallet {
  private readonly held: Held[] = [];
  constructor(
    private readonly fetchImpl: typeof fetch,
    /** The verifier's certificate (PEM): x5c[0] must be it, and client_id its x509_hash. */
    private readonly verifierCertPem: string,
  ) {}

  /** receive makes a holder key, has iss issue claims bound to it and keeps the credential. */
  async receive(iss: TestIssuer, claims: Record<string, unknown>): Promise<void> {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const { kty, crv, x, y } = await exportJWK(publicKey);
    const c = await iss.issue(claims, { kty, crv, x, y });
    this.held.push({ vct: iss.vct, ...c, holder: privateKey });
  }

  /**
   * present runs a same- or cross-device presentation from a wallet URL
   * (openid4vp://?client_id=…&request_uri=…&request_uri_method=post):
   * fetch and verify the request object, answer it, POST response=<JWE>
   * to response_uri. A non-2xx answer is returned, not thrown.
   */
  async present(walletURL: string): Promise<WalletAnswer> {
    const q = new URL(walletURL).searchParams;
    const clientID = q.get('client_id');
    const requestURI = q.get('request_uri');
    if (!clientID || !requestURI || q.get('request_uri_method') !== 'post') throw new Error(`wallet: unexpected wallet URL ${walletURL}`);
    const walletNonce = b64u(randomBytes(16));
    const resp = await this.fetchImpl(requestURI, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/oauth-authz-req+jwt' },
      body: new URLSearchParams({ wallet_metadata: walletMetadata, wallet_nonce: walletNonce }).toString(),
    });
    const jar = await resp.text();
    if (resp.status !== 200) throw new Error(`wallet: request_uri answered ${resp.status}: ${jar}`);
    if (!resp.headers.get('Content-Type')?.startsWith('application/oauth-authz-req+jwt')) throw new Error('wallet: request object content type');
    const ro = await this.verifyRequest(jar);
    if (ro.client_id !== clientID) throw new Error('wallet: client_id differs from the wallet URL’s');
    if (ro.wallet_nonce !== walletNonce) throw new Error('wallet: wallet_nonce not echoed (§5.10)');
    if (ro.response_mode !== 'direct_post.jwt' || !ro.response_uri) throw new Error(`wallet: response_mode ${ro.response_mode}`);
    const members = await this.responseMembers(ro, ro.client_id);
    const post = await this.fetchImpl(ro.response_uri, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ response: await encryptTo(ro, members) }).toString(),
    });
    const text = await post.text();
    const body = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
    return { status: post.status, body, redirectUri: typeof body.redirect_uri === 'string' ? body.redirect_uri : undefined, request: ro };
  }

  /**
   * dcApi answers a Digital Credentials API request ({"requests":[{"protocol":
   * "openid4vp-v1-signed","data":{"request":"<JAR>"}}]}) as the platform
   * would for a caller at origin: the request must list origin in
   * expected_origins, the KB-JWT aud is origin:<origin> (App. A.2, A.4),
   * and the answer is {"response":"<JWE>"} (dc_api.jwt).
   */
  async dcApi(requestJSON: string, origin: string): Promise<{ response: string }> {
    const { requests } = JSON.parse(requestJSON) as { requests: { protocol: string; data: { request?: string } }[] };
    const signed = requests.find((r) => r.protocol === 'openid4vp-v1-signed');
    if (!signed?.data.request) throw new Error('wallet: no openid4vp-v1-signed request');
    const ro = await this.verifyRequest(signed.data.request);
    if (!ro.expected_origins?.includes(origin)) throw new Error('wallet: origin not in expected_origins');
    if (ro.response_mode !== 'dc_api.jwt') throw new Error(`wallet: response_mode ${ro.response_mode}`);
    return { response: await encryptTo(ro, await this.responseMembers(ro, `origin:${origin}`)) };
  }

  /**
   * verifyRequest checks a request object: typ oauth-authz-req+jwt, ES256
   * signed by x5c[0], which is the pinned verifier certificate, and
   * client_id x509_hash of that leaf (OpenID4VP 1.0 §5, §5.9.3).
   */
  private async verifyRequest(jar: string): Promise<RequestObject> {
    const hdr = decodeProtectedHeader(jar);
    if (hdr.typ !== 'oauth-authz-req+jwt' || hdr.alg !== 'ES256') throw new Error(`wallet: request object header ${JSON.stringify(hdr)}`);
    const pinned = derOf(this.verifierCertPem);
    const leaf = Buffer.from(hdr.x5c?.[0] ?? '', 'base64');
    if (!leaf.equals(pinned)) throw new Error('wallet: x5c is not the verifier’s certificate');
    const { payload } = await compactVerify(jar, await importX509(this.verifierCertPem, 'ES256'), { algorithms: ['ES256'] });
    const ro = JSON.parse(Buffer.from(payload).toString('utf8')) as RequestObject;
    if (ro.client_id !== `x509_hash:${b64u(createHash('sha256').update(leaf).digest())}`) throw new Error('wallet: client_id is not x509_hash of the leaf');
    if (ro.response_type !== 'vp_token' || !ro.nonce || !ro.dcql_query) throw new Error('wallet: response_type, nonce and dcql_query are required');
    return ro;
  }

  /**
   * responseMembers selects a held credential for each credential query
   * (format dc+sd-jwt, a vct among meta.vct_values), discloses exactly the
   * top-level claims the query names and presents it with a KB-JWT:
   * {vp_token: {<query id>: [<SD-JWT+KB>]}, state} (§6, §8.1, App. B.3.6).
   */
  private async responseMembers(ro: RequestObject, aud: string | undefined): Promise<Record<string, unknown>> {
    if (!aud) throw new Error('wallet: no audience');
    const vp: Record<string, string[]> = {};
    for (const cq of ro.dcql_query.credentials) {
      const h = this.held.find((c) => cq.format === 'dc+sd-jwt' && (cq.meta?.vct_values ?? []).includes(c.vct));
      if (!h) throw new Error(`wallet: no credential for ${cq.id}`);
      const wanted = new Set((cq.claims ?? []).map((c) => String(c.path[0])));
      const disclosed = h.disclosures.filter((d) => wanted.has(d.name)).map((d) => d.encoded);
      const sdPart = `${h.jwt}~${disclosed.map((d) => `${d}~`).join('')}`;
      const kb = await new SignJWT({ nonce: ro.nonce, aud, sd_hash: digest(sdPart) })
        .setProtectedHeader({ alg: 'ES256', typ: 'kb+jwt' })
        .setIssuedAt()
        .sign(h.holder);
      vp[cq.id] = [sdPart + kb];
    }
    return ro.state ? { vp_token: vp, state: ro.state } : { vp_token: vp };
  }
}

/**
 * encryptTo encrypts the response members to the first ECDH-ES key of
 * client_metadata.jwks (OpenID4VP 1.0 §8.3): enc the first of
 * encrypted_response_enc_values_supported among A128GCM and A256GCM
 * (A128GCM when absent), kid echoed.
 */
async function encryptTo(ro: RequestObject, members: Record<string, unknown>): Promise<string> {
  const key = ro.client_metadata.jwks?.keys.find((k) => k.kty === 'EC' && (!k.use || k.use === 'enc') && (!k.alg || k.alg === 'ECDH-ES'));
  if (!key) throw new Error('wallet: no ECDH-ES key in client_metadata.jwks');
  const offered = ro.client_metadata.encrypted_response_enc_values_supported;
  const enc = offered ? offered.find((e) => e === 'A128GCM' || e === 'A256GCM') : 'A128GCM';
  if (!enc) throw new Error('wallet: no supported enc value');
  return new CompactEncrypt(new TextEncoder().encode(JSON.stringify(members)))
    .setProtectedHeader({ alg: 'ECDH-ES', enc, ...(key.kid ? { kid: key.kid } : {}) })
    .encrypt(await importJWK(key, 'ECDH-ES'));
}

function derOf(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, ''), 'base64');
}
