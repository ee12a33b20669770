import { FedasError } from './errors.js';

/** The part of RFC 8414 metadata a native client needs. */
export interface Metadata {
  issuer: string;
  /** FiPA-04 §4.1 name of the native endpoint. */
  authorization_challenge_endpoint?: string;
  /** The native-clients federation draft's name of the same endpoint. */
  native_authorization_endpoint?: string;
  token_endpoint: string;
  introspection_endpoint?: string;
  revocation_endpoint?: string;
  pushed_authorization_request_endpoint?: string;
  authorization_endpoint?: string;
  dpop_signing_alg_values_supported?: string[];
  [member: string]: unknown;
}

/** nativeEndpoint returns the FiPA endpoint under either of its names (Go: Meta.NativeEndpoint). */
export function nativeEndpoint(m: Metadata): string | undefined {
  return m.authorization_challenge_endpoint || m.native_authorization_endpoint || undefined;
}

/**
 * discover fetches RFC 8414 metadata from issuer's
 * /.well-known/oauth-authorization-server and checks that its `issuer` is
 * the one asked for (RFC 8414 §3.3).
 */
export async function discover(issuer: string, fetchImpl: typeof fetch = fetch): Promise<Metadata> {
  const resp = await fetchImpl(issuer.replace(/\/$/, '') + '/.well-known/oauth-authorization-server', {
    headers: { Accept: 'application/json' },
    redirect: 'manual',
  });
  if (resp.status !== 200) {
    throw new FedasError({ error: 'invalid_metadata', error_description: `metadata: HTTP ${resp.status}`, status: resp.status });
  }
  const m = (await resp.json()) as Metadata;
  if (m.issuer !== issuer) {
    throw new FedasError({ error: 'invalid_metadata', error_description: `metadata issuer ${m.issuer} != ${issuer} (RFC 8414 §3.3)`, status: resp.status });
  }
  return m;
}
