/** RFC 7636 PKCE with S256 only (fedas refuses `plain`: docs/protocol.md "The native endpoint"). */

/** A verifier and its S256 challenge. */
export interface PKCE {
  verifier: string;
  challenge: string;
  /**
   * Set when the code came through the browser to the client's
   * redirect_uri: the token request must repeat it (RFC 6749 §4.1.3).
   */
  redirectUri?: string;
}

/** base64url without padding (RFC 7636 Appendix A). */
export function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

/** SHA-256 of an ASCII string, base64url-encoded. */
export async function sha256b64url(s: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(s));
  return base64url(new Uint8Array(digest));
}

/** newPKCE makes a fresh S256 pair: 32 random bytes as the verifier (RFC 7636 §4.1, §4.2). */
export async function newPKCE(): Promise<PKCE> {
  const b = crypto.getRandomValues(new Uint8Array(32));
  const verifier = base64url(b);
  return { verifier, challenge: await sha256b64url(verifier) };
}
