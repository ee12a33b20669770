import { SignJWT, exportJWK, calculateJwkThumbprint, type JWK } from 'jose';
import { base64url, sha256b64url } from './pkce.js';

/**
 * DPoPKey is an RFC 9449 proof-of-possession key: a WebCrypto ES256 key
 * pair whose private half is non-extractable, so that no code (ours or a
 * script sharing the page) can copy it out; only `sign` is allowed.
 */
export class DPoPKey {
  /** The public JWK put in every proof's header (RFC 9449 §4.2). */
  readonly jwk: JWK;
  /** The RFC 7638 JWK SHA-256 thumbprint: the `jkt` that bound tokens carry in `cnf` (RFC 9449 §6). */
  readonly thumbprint: string;
  /** The last DPoP-Nonce each origin gave us (RFC 9449 §8, §9). */
  private readonly nonces = new Map<string, string>();

  private constructor(private readonly privateKey: CryptoKey, jwk: JWK, thumbprint: string) {
    this.jwk = jwk;
    this.thumbprint = thumbprint;
  }

  /** generate makes a fresh P-256 key pair with a non-extractable private key. */
  static async generate(): Promise<DPoPKey> {
    const pair = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign'])) as CryptoKeyPair;
    // A public key is always exportable, whatever `extractable` says.
    const full = await exportJWK(pair.publicKey);
    const jwk: JWK = { kty: full.kty, crv: full.crv, x: full.x, y: full.y };
    return new DPoPKey(pair.privateKey, jwk, await calculateJwkThumbprint(jwk, 'sha256'));
  }

  /**
   * proof signs a DPoP proof JWT for one request (RFC 9449 §4.2): htm, htu
   * (without query and fragment), a fresh jti, iat, the origin's last
   * nonce when it gave one, and `ath` (the access token's SHA-256) when
   * the request carries an access token.
   */
  async proof(method: string, url: string, accessToken?: string): Promise<string> {
    const u = new URL(url);
    const htu = u.origin + u.pathname;
    const claims: Record<string, unknown> = {
      htm: method.toUpperCase(),
      htu,
      jti: base64url(crypto.getRandomValues(new Uint8Array(16))),
    };
    const nonce = this.nonces.get(u.origin);
    if (nonce) claims.nonce = nonce;
    if (accessToken) claims.ath = await sha256b64url(accessToken);
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: this.jwk })
      .setIssuedAt()
      .sign(this.privateKey);
  }

  /** rememberNonce keeps a DPoP-Nonce response header for the origin of url. */
  rememberNonce(url: string, nonce: string | null): boolean {
    if (!nonce) return false;
    const origin = new URL(url).origin;
    const changed = this.nonces.get(origin) !== nonce;
    this.nonces.set(origin, nonce);
    return changed;
  }
}
