/**
 * Credential presentations inside the native flow (OpenID4VP 1.0;
 * docs/protocol.md "Digital credentials"), as the Go SDK's sdk/dc.go
 * completes them: the Digital Credentials API (path A, OpenID4VP App. A),
 * a wallet on this device (path B, §13.3: the wallet returns to the app's
 * openid4vp_redirect_uri with a response_code), or a wallet on another
 * device (path C: a QR code, then polling with the auth_session).
 */
import { FedasError, type NativeResponse } from './errors.js';

/** The path a presentation challenge names (`challenge.flow`). */
export type PresentationFlow = 'dc_api' | 'same_device' | 'cross_device' | 'interactive';

/**
 * PresentationRequest is a presentation challenge, typed: what the
 * wallet is handed and how its answer goes back.
 */
export interface PresentationRequest {
  flow: PresentationFlow;
  /**
   * The wallet's request: for dc_api the `{"requests":[…]}` JSON for the
   * platform's navigator.credentials.get, else the `openid4vp://` URL to
   * open (same device) or show as a QR code (cross device).
   */
  request: string;
  /**
   * The challenge's dialect (docs/protocol.md "Dialects"): `wallet`
   * (`type: digital_credentials`, `credentials_request`) or `draft00`
   * (the federation draft -00 appendix: `digital_credentials_required`,
   * `request`).
   */
  dialect: 'wallet' | 'draft00';
  /** The follow-up member carrying a same-device result: `response_code`, or `presentation_id` in draft00. */
  codeMember: 'response_code' | 'presentation_id';
  /** Seconds the request lives. */
  expiresIn?: number;
  /** Seconds between cross-device polls. */
  interval?: number;
  /** The whole answer. */
  response: NativeResponse;
}

/**
 * WalletAdapter connects the SDK to the user's wallet. The SDK calls the
 * hook of the path the challenge names; a missing hook leaves that
 * challenge to the UI callback (which sees the raw answer).
 */
export interface WalletAdapter {
  /**
   * dcApi hands request.request to the platform's Digital Credentials API
   * and returns what it gave back: `{"response": "<JWE>"}` (dc_api.jwt)
   * or `{"vp_token": {…}}` (OpenID4VP App. A.3).
   */
  dcApi?(request: PresentationRequest): Promise<unknown>;
  /**
   * openWallet opens the wallet on this device with request.request and
   * resolves with the URL the wallet returned to (the app's
   * openid4vp_redirect_uri with `response_code` / `presentation_id`, or
   * an `error` when the user declined).
   */
  openWallet?(request: PresentationRequest): Promise<string>;
  /** showQR displays request.request as a QR code; called again when a new request replaces an expired one. */
  showQR?(request: PresentationRequest): Promise<void> | void;
  /** sleep waits between cross-device polls (default: a timer). Tests inject their own. */
  sleep?(seconds: number): Promise<void>;
}

/** The initial-request parameters that say how the wallet is reached; copied into a downstream's request after federate. */
export const pathParams = ['dc_api', 'openid4vp_flow_type', 'openid4vp_redirect_uri'] as const;

/** presentationOf types a presentation challenge in a dialect the SDK completes, or returns undefined. */
export function presentationOf(r: NativeResponse): PresentationRequest | undefined {
  const flow = r.challenge?.flow as PresentationFlow | undefined;
  const isPresentation = (r.challenge?.type === 'digital_credentials' && !!flow) || r.type === 'digital_credentials' || r.type === 'digital_credentials_required';
  if (!isPresentation || !flow) return undefined;
  const draft00 = r.type === 'digital_credentials_required';
  const request = (typeof r.credentials_request === 'string' && r.credentials_request) || (typeof r.request === 'string' && r.request) || '';
  if (!request) return undefined;
  return {
    flow,
    request,
    dialect: draft00 ? 'draft00' : 'wallet',
    codeMember: draft00 ? 'presentation_id' : 'response_code',
    expiresIn: r.expires_in,
    interval: r.interval,
    response: r,
  };
}

/** canPresent says whether wallet has the hook the challenge's path needs. */
export function canPresent(wallet: WalletAdapter | undefined, p: PresentationRequest | undefined, r: NativeResponse): p is PresentationRequest {
  if (!wallet || !p || !r.auth_session) return false;
  switch (p.flow) {
    case 'dc_api':
      return !!wallet.dcApi;
    case 'same_device':
      return !!wallet.openWallet;
    case 'cross_device':
      return !!wallet.showQR;
    default:
      return false;
  }
}

/** Post sends a follow-up to the endpoint that asked. */
type Post = (endpoint: string, form: URLSearchParams) => Promise<NativeResponse>;

/** maxPolls bounds one cross-device presentation (the server ends it much earlier). */
const maxPolls = 1000;

/**
 * present completes presentation p at the endpoint that asked (with its
 * auth_session only) and returns the first answer that is no longer this
 * presentation's: a code, an error, or another challenge. Decisions follow
 * `error` and `status`, never the HTTP status.
 */
export async function present(wallet: WalletAdapter, p: PresentationRequest, post: Post, redirectUri: string | undefined): Promise<NativeResponse> {
  const r = p.response;
  const endpoint = r.from;
  const session = r.auth_session!;
  switch (p.flow) {
    case 'dc_api': {
      const form = dcApiForm(await wallet.dcApi!(p));
      form.set('auth_session', session);
      return post(endpoint, form);
    }
    case 'same_device': {
      if (!redirectUri) throw new FedasError({ error: 'invalid_request', error_description: 'a same-device presentation needs openid4vp_redirect_uri in the initial request' });
      const q = walletReturn(await wallet.openWallet!(p), redirectUri);
      const form = new URLSearchParams({ auth_session: session });
      const code = q.get(p.codeMember);
      if (code) form.set(p.codeMember, code);
      else if (q.get('error')) form.set('error', q.get('error')!); // the wallet declined: the session ends now
      else throw new FedasError({ error: 'invalid_callback', error_description: `the wallet returned no ${p.codeMember}` });
      return post(endpoint, form);
    }
    default:
      return poll(wallet, p, post);
  }
}

/**
 * poll is the cross-device path: show the request, then poll with the
 * auth_session alone every interval; slow_down lengthens it (RFC 8628
 * §3.5), and an expired request replaced by a new one is shown again
 * (docs/protocol.md "A cross-device presentation").
 */
async function poll(wallet: WalletAdapter, p: PresentationRequest, post: Post): Promise<NativeResponse> {
  const endpoint = p.response.from;
  let session = p.response.auth_session!;
  await wallet.showQR!(p);
  let shown = p.request;
  let interval = seconds(p.interval);
  const sleep = wallet.sleep ?? ((s: number) => new Promise<void>((ok) => setTimeout(ok, s * 1000)));
  for (let i = 0; i < maxPolls; i++) {
    await sleep(interval);
    const a = await post(endpoint, new URLSearchParams({ auth_session: session }));
    if (a.error === 'slow_down') {
      // A rate limit (docs/decisions.md Q28): wait longer.
      interval += 5;
      continue;
    }
    if (a.error !== 'insufficient_authorization') return a;
    if (a.pollStatus === 'pending' || a.pollStatus === 'slow_down') {
      if (a.interval) interval = a.interval;
    } else {
      const np = presentationOf(a);
      if (!np || np.flow !== 'cross_device') return a;
      // The request expired and a new one replaced it.
      if (a.interval) interval = a.interval;
      if (np.request !== shown) {
        await wallet.showQR!(np);
        shown = np.request;
      }
    }
    if (a.auth_session) session = a.auth_session;
  }
  throw new FedasError({ error: 'too_many_steps', error_description: 'the presentation did not complete' });
}

function seconds(n: number | undefined): number {
  return n && n > 0 ? n : 5; // RFC 8628 §3.2's default interval
}

/** walletReturn checks the URL the wallet returned to: exactly redirectUri plus a query. */
function walletReturn(received: string, redirectUri: string): URLSearchParams {
  const noFragment = received.split('#', 1)[0];
  const i = noFragment.indexOf('?');
  if ((i < 0 ? noFragment : noFragment.slice(0, i)) !== redirectUri) {
    throw new FedasError({ error: 'invalid_callback', error_description: `the wallet did not return to ${redirectUri}` });
  }
  return new URLSearchParams(i < 0 ? '' : noFragment.slice(i + 1));
}

/** dcApiForm turns what the platform returned into the follow-up's members (OpenID4VP App. A.3, §8.1). */
function dcApiForm(data: unknown): URLSearchParams {
  const m = typeof data === 'string' ? (JSON.parse(data) as unknown) : data;
  if (!m || typeof m !== 'object') throw new FedasError({ error: 'invalid_response', error_description: 'the digital credentials api returned no JSON object' });
  const o = m as Record<string, unknown>;
  if ('response' in o) {
    if (typeof o.response !== 'string' || !o.response) throw new FedasError({ error: 'invalid_response', error_description: 'the digital credentials api returned a malformed response' });
    return new URLSearchParams({ response: o.response });
  }
  if (o.vp_token && typeof o.vp_token === 'object' && !Array.isArray(o.vp_token)) return new URLSearchParams({ vp_token: JSON.stringify(o.vp_token) });
  throw new FedasError({ error: 'invalid_response', error_description: 'the digital credentials api returned neither response nor vp_token' });
}
