/**
 * The cross-device redirect_to_app (docs/reach.md; docs/protocol.md
 * "Cross-device sign-in" and "No channel: the QR code"), as the Go SDK's
 * sdk/reach_client.go runs it: when no app on this device opens the deep
 * link, the client asks the AS to reach the user's other device, shows the
 * number to pick there (number matching) — or, with no device reachable,
 * a QR code for our app to scan — and polls until the sign-in completes.
 */
import { FedasError, type NativeResponse } from './errors.js';

/** ReachAdapter shows what the user needs on this device while the other device approves. */
export interface ReachAdapter {
  /** showBindingCode shows the number the user must pick in our app on their other device. */
  showBindingCode?(code: string): Promise<void> | void;
  /**
   * showQR shows deepLink as a QR code, with the number to pick, when no
   * device of the user could be reached (`424 interaction_unavailable`).
   * Without it that answer ends the sign-in.
   */
  showQR?(deepLink: string, code: string): Promise<void> | void;
  /** sleep waits between polls (default: a timer). */
  sleep?(seconds: number): Promise<void>;
}

/** The answer shapes of POST reach_uri and of its polls (`status`, `interval`, `binding_code`, `auth_session`). */
export interface ReachAnswer {
  status?: string;
  expires_in?: number;
  interval?: number;
  binding_code?: string;
  deep_link?: string;
  auth_session?: string;
  error?: string;
  error_description?: string;
  [member: string]: unknown;
}

type Send = (method: string, url: string, form?: URLSearchParams) => Promise<{ resp: Response; text: string }>;

/** maxPolls bounds one cross-device wait (tasks live at most 10 minutes, polled at least a second apart). */
const maxPolls = 600;

/**
 * reachOther runs the cross-device sign-in for redirect_to_app r: POST
 * reach_uri with the auth_session, show the number (202) or the QR code
 * (424 interaction_unavailable), poll Location honouring interval,
 * Retry-After and slow_down (RFC 8628 §3.5; docs/decisions.md Q26, Q28),
 * and return the new auth_session of the completed sign-in.
 */
export async function reachOther(reach: ReachAdapter, r: NativeResponse, send: Send): Promise<string> {
  const reachUri = r.reach_uri!;
  const first = await send('POST', reachUri, new URLSearchParams({ auth_session: r.auth_session! }));
  const a = decode(first.text, reachUri, first.resp.status);
  if (first.resp.status === 202) {
    await reach.showBindingCode?.(a.binding_code ?? '');
  } else if (first.resp.status === 424 && a.error === 'interaction_unavailable' && reach.showQR && a.deep_link) {
    await reach.showQR(a.deep_link, a.binding_code ?? '');
  } else {
    throw new FedasError({ ...(a as Partial<NativeResponse>), status: first.resp.status, from: reachUri });
  }
  const loc = first.resp.headers.get('Location');
  if (!loc) throw new FedasError({ error: 'invalid_response', error_description: 'cross-device answer without Location', from: reachUri });
  const pollUri = new URL(loc, reachUri).toString();
  const sleep = reach.sleep ?? ((s: number) => new Promise<void>((ok) => setTimeout(ok, s * 1000)));
  let wait = Math.max(a.interval ?? 1, 1);
  for (let i = 0; i < maxPolls; i++) {
    await sleep(wait);
    const { resp, text } = await send('GET', pollUri);
    const p = decode(text, pollUri, resp.status);
    if (resp.status === 200 && p.auth_session) return p.auth_session;
    if (resp.status === 202 || (resp.status === 429 && p.error === 'slow_down')) {
      if (p.interval && p.interval > 0) wait = p.interval;
      const ra = Number(resp.headers.get('Retry-After'));
      if (Number.isInteger(ra) && ra > wait) wait = ra;
      continue;
    }
    // A denial (403 access_denied), an expired task (400 expired_token), …
    throw new FedasError({ ...(p as Partial<NativeResponse>), status: resp.status, from: pollUri });
  }
  throw new FedasError({ error: 'too_many_steps', error_description: 'the cross-device sign-in did not complete' });
}

function decode(text: string, url: string, status: number): ReachAnswer {
  try {
    const v = JSON.parse(text) as unknown;
    if (v && typeof v === 'object') return v as ReachAnswer;
  } catch {
    // fall through
  }
  throw new FedasError({ error: 'invalid_response', error_description: `${url} answered HTTP ${status} with non-JSON`, status });
}
