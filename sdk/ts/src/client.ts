import { FedasError, type NativeResponse } from './errors.js';
import { type Metadata, discover, nativeEndpoint } from './discovery.js';
import { DPoPKey } from './dpop.js';
import { newPKCE, type PKCE } from './pkce.js';
import { canPresent, pathParams, present, presentationOf, type WalletAdapter } from './presentation.js';
import { reachOther, type ReachAdapter } from './reach.js';

/** Form parameters: one value or several per name. */
export type Params = Record<string, string | string[]>;

/**
 * UI answers what the server asks of the user: a challenge
 * (insufficient_authorization, `r.challenge`) or a routing prompt
 * (insufficient_information, `r.userPrompt`). It returns the answers to
 * post (one parameter per challenge input name, or the prompt's answer);
 * throwing aborts the sign-in.
 */
export type UI = (r: NativeResponse) => Promise<Params> | Params;

/** An RFC 6749 §5.1 token response. */
export interface TokenResponse {
  access_token: string;
  /** `DPoP` when the token is bound to the client's key (RFC 9449 §5). */
  token_type: string;
  expires_in?: number;
  refresh_token?: string;
  scope?: string;
  id_token?: string;
  /** RFC 9396 §7 granted authorization_details. */
  authorization_details?: unknown;
  [member: string]: unknown;
}

/** What authorize returns: our AS's code and the PKCE pair to redeem it with. */
export interface AuthorizeResult {
  code: string;
  pkce: PKCE;
}

/** One exchange, for logging or demos. */
export interface Exchange {
  method: string;
  url: string;
  form?: URLSearchParams;
  status: number;
  body: string;
}

/**
 * AppLinkAdapter is how the SDK hands a `redirect_to_app` deep link to the
 * OS and gets back what the other app delivered (federation draft §4.3.2;
 * docs/protocol.md "App-to-app"). On React Native or Capacitor, `open`
 * calls the platform's link API (Linking.openURL, App.openUrl) and resolves
 * with the next URL the OS hands the app on `nativeCallbackUri`.
 */
export interface AppLinkAdapter {
  /**
   * open opens deepLink and resolves with the full URL the other app
   * invoked (the native_callback_uri with `authorization_code` and `iss`,
   * or an `error`), or null when no installed app claims the link: the SDK
   * then asks the AS for its browser fallback (`deep_link_unavailable`).
   */
  open(deepLink: string, nativeCallbackUri: string): Promise<string | null>;
}

/**
 * BrowserAdapter runs a `redirect_to_web` leg in the system browser
 * (FiPA-04 §5.2.2.1.1; docs/protocol.md "Browser legs and the
 * response_code"): an ASWebAuthenticationSession, a Custom Tab, or a
 * Capacitor Browser plus a deep-link listener.
 */
export interface BrowserAdapter {
  /**
   * open loads authorizeUrl and resolves with the URL the browser finally
   * hands back to the app: one starting with callbackUri (the
   * native_callback_uri with a `response_code` or an `error`, or the
   * client's redirect_uri with `code`, `iss` and `state`).
   */
  open(authorizeUrl: string, callbackUri: string): Promise<string>;
}

export interface ClientOptions {
  clientId: string;
  /**
   * Where apps and browser legs return to this app (a registered
   * native_callback_uri, exact string match): sent in the initial request
   * when the authorize params carry none.
   */
  nativeCallbackUri?: string;
  /** The client's registered redirect_uri for our AS's own browser fallback (docs/decisions.md Q17). */
  redirectUri?: string;
  /** Opens `redirect_to_app` deep links; without it such an answer ends the sign-in. */
  appLinks?: AppLinkAdapter;
  /** Runs `redirect_to_web` legs; without it such an answer ends the sign-in. */
  browser?: BrowserAdapter;
  /** Completes credential-presentation challenges (OpenID4VP); without the hook a path needs, the UI callback gets them. */
  wallet?: WalletAdapter;
  /**
   * Completes a redirect_to_app on the user's other device when no app on
   * this one opens the deep link and the answer carries `reach_uri`
   * (docs/protocol.md "Cross-device sign-in").
   */
  reach?: ReachAdapter;
  metadata: Metadata;
  /** Binds the auth_session, the code and the tokens to this key; sent only to our own AS (docs/decisions.md Q5). */
  dpop?: DPoPKey;
  fetch?: typeof fetch;
  onExchange?: (e: Exchange) => void;
  /** Upper bound on the native-flow round trips (the Go SDK's is 32). */
  maxSteps?: number;
}

/**
 * hop is one federation level: where to send the downstream result and
 * with which auth_session (federation draft §4.3.1; docs/decisions.md Q13).
 */
interface Hop {
  responseUri: string;
  authSession: string;
}

/**
 * Client drives one native client against one (first) authorization
 * server, as the Go SDK's sdk.Client does.
 */
export class Client {
  readonly clientId: string;
  readonly metadata: Metadata;
  readonly dpop?: DPoPKey;
  private readonly fetchImpl: typeof fetch;
  private readonly onExchange?: (e: Exchange) => void;
  private readonly maxSteps: number;
  private readonly nativeCallbackUri?: string;
  private readonly redirectUri?: string;
  private readonly appLinks?: AppLinkAdapter;
  private readonly browser?: BrowserAdapter;
  private readonly wallet?: WalletAdapter;
  private readonly reach?: ReachAdapter;

  constructor(opts: ClientOptions) {
    this.clientId = opts.clientId;
    this.nativeCallbackUri = opts.nativeCallbackUri;
    this.redirectUri = opts.redirectUri;
    this.appLinks = opts.appLinks;
    this.browser = opts.browser;
    this.wallet = opts.wallet;
    this.reach = opts.reach;
    this.metadata = opts.metadata;
    this.dpop = opts.dpop;
    this.fetchImpl = opts.fetch ?? fetch;
    this.onExchange = opts.onExchange;
    this.maxSteps = opts.maxSteps ?? 32;
  }

  /**
   * authorize runs the native flow (FiPA-04 §5) from the initial request
   * to our authorization code: it answers challenges and prompts through
   * ui, follows `federate` to downstream native endpoints with a stack of
   * hops and posts each downstream result to the response_uri of the AS
   * that federated us there (federation draft §4.3.1). params are the
   * initial request's extra parameters (scope, login_hint, …); PKCE S256
   * is added.
   */
  async authorize(params: Params, ui: UI): Promise<AuthorizeResult> {
    const pkce = await newPKCE();
    const endpoint0 = nativeEndpoint(this.metadata);
    if (!endpoint0) {
      throw new FedasError({ error: 'native_endpoint_unsupported', error_description: 'the metadata names no authorization_challenge_endpoint nor native_authorization_endpoint' });
    }
    let form = toForm(params);
    if (!form.has('native_callback_uri') && this.nativeCallbackUri) form.set('native_callback_uri', this.nativeCallbackUri);
    // Where an app or a browser leg must return: callbacks elsewhere are refused.
    const callbackUri = form.get('native_callback_uri') ?? undefined;
    const state = form.get('state') ?? undefined;
    form.set('client_id', this.clientId);
    form.set('response_type', 'code');
    form.set('code_challenge', pkce.challenge);
    form.set('code_challenge_method', 'S256');
    let endpoint = endpoint0;
    // The client_id at the AS we are talking to (a downstream's is the
    // federation_body's): a browser leg names it.
    let clientIdHere = this.clientId;
    const stack: Hop[] = [];
    const walletReturn = form.get('openid4vp_redirect_uri') ?? undefined;
    // next is an answer already received (a presentation's last one) that
    // the loop decides on without posting.
    let next: NativeResponse | undefined;
    for (let step = 0; step < this.maxSteps; step++) {
      const r = next ?? (await this.postNative(endpoint, form));
      next = undefined;
      if (r.authorization_code) {
        const top = stack.pop();
        if (!top) return { code: r.authorization_code, pkce };
        // A downstream's code goes to the AS that federated us there,
        // never to a token endpoint.
        endpoint = top.responseUri;
        form = new URLSearchParams({ authorization_code: r.authorization_code, auth_session: top.authSession });
        continue;
      }
      let kind = r.error;
      if (kind === 'invalid_request' && r.userPrompt && r.auth_session) {
        // fedas re-asks an invalid prompt answer (docs/decisions.md Q11).
        kind = 'insufficient_information';
      }
      switch (kind) {
        case 'insufficient_authorization':
        case 'insufficient_information': {
          if (!r.auth_session) throw new FedasError(r);
          const p = kind === 'insufficient_authorization' ? presentationOf(r) : undefined;
          if (canPresent(this.wallet, p, r)) {
            // OpenID4VP through the wallet, at the endpoint that asked
            // (ours or a downstream's: its own auth_session only).
            next = await present(this.wallet!, p, (e, f) => this.postNative(e, f), walletReturn);
            continue;
          }
          const answers = await ui(r);
          form = toForm(answers);
          form.set('auth_session', r.auth_session);
          continue;
        }
        case 'federate': {
          if (!r.federation_uri || !r.response_uri || !r.auth_session || r.federation_body === undefined) {
            throw new FedasError(r);
          }
          // The downstream gets exactly the body our AS prepared: our
          // auth_session stays on the stack and no DPoP proof is sent
          // there (postNative signs only for our issuer).
          const body = new URLSearchParams(r.federation_body);
          stack.push({ responseUri: r.response_uri, authSession: r.auth_session });
          clientIdHere = body.get('client_id') ?? clientIdHere;
          if (this.wallet) {
            // A downstream asking for a presentation must know the path too.
            for (const k of pathParams) {
              const v = params[k];
              if (typeof v === 'string' && v && !body.get(k)) body.set(k, v);
            }
          }
          if (!body.get('response_type')) body.set('response_type', 'code'); // docs/decisions.md Q4
          endpoint = r.federation_uri;
          form = body;
          continue;
        }
        case 'redirect_to_app': {
          const next = await this.openApp(r, stack, callbackUri);
          endpoint = next.endpoint;
          form = next.form;
          continue;
        }
        case 'redirect_to_web': {
          if (!this.browser || !r.request_uri) throw new FedasError(r);
          const m = await this.metadataOf(r.from);
          if (!m.authorization_endpoint) throw new FedasError({ ...r, error_description: `no browser endpoint for ${r.from}` });
          const authorizeUrl = `${m.authorization_endpoint}?${new URLSearchParams({ client_id: clientIdHere, request_uri: r.request_uri })}`;
          if (stack.length === 0 && !r.auth_session) {
            // Our own AS's browser fallback: the browser brings its code
            // to our redirect_uri, bound to our PKCE (docs/decisions.md Q17).
            if (!this.redirectUri) throw new FedasError({ ...r, error_description: 'redirect_to_web needs ClientOptions.redirectUri' });
            const q = checkCallback(await this.browser.open(authorizeUrl, this.redirectUri), this.redirectUri);
            const err = q.get('error');
            if (err) throw new FedasError({ error: err, error_description: q.get('error_description') ?? undefined, from: r.from });
            // RFC 9207 §2.4: the code must come from our issuer; RFC 6749 §10.12: our state.
            if (!q.get('code') || q.get('iss') !== this.metadata.issuer || (state !== undefined && q.get('state') !== state)) {
              throw new FedasError({ error: 'invalid_callback', error_description: 'the browser callback lacks a code, or its iss or state is not ours' });
            }
            pkce.redirectUri = this.redirectUri;
            return { code: q.get('code')!, pkce };
          }
          // A browser leg ending at a federating AS's web callback, which
          // sends the browser to our native_callback_uri with a one-time
          // response_code (or an error) for this device.
          if (!callbackUri) throw new FedasError({ ...r, error_description: 'a browser leg needs a native_callback_uri' });
          const q = checkCallback(await this.browser.open(authorizeUrl, callbackUri), callbackUri);
          let target: Hop;
          if (stack.length === 0) {
            // Our AS federated through the browser (docs/decisions.md Q19):
            // the response_code goes back to its native endpoint.
            target = { responseUri: r.from, authSession: r.auth_session! };
          } else {
            // A downstream's fallback (Q7): to the response_uri of the AS
            // that federated us.
            target = stack.pop()!;
          }
          endpoint = target.responseUri;
          form = new URLSearchParams({ auth_session: target.authSession });
          copyParams(q, form, ['response_code', 'error', 'error_description']);
          if (!form.has('response_code') && !form.has('error')) {
            throw new FedasError({ error: 'invalid_callback', error_description: 'the browser callback carries neither response_code nor error' });
          }
          continue;
        }
        default: {
          // TODO(issue 14): presentations, reach.
          const top = stack.pop();
          if (top && r.error) {
            // A downstream failure is reported to the AS that federated
            // us (federation draft §4.3.1), which decides what follows.
            endpoint = top.responseUri;
            form = new URLSearchParams({ error: r.error, auth_session: top.authSession });
            if (r.error_description) form.set('error_description', r.error_description);
            continue;
          }
          throw new FedasError(r);
        }
      }
    }
    throw new FedasError({ error: 'too_many_steps', error_description: `no code after ${this.maxSteps} steps` });
  }

  /**
   * openApp follows redirect_to_app (federation draft §4.3.2) and decides
   * where the other app's result goes (docs/decisions.md Q6): to the AS
   * that sent redirect_to_app when it gave us an auth_session, else to the
   * response_uri of the AS that federated us. A code from a callback is
   * never redeemed at a token endpoint. A callback that is not our
   * native_callback_uri, or whose iss is not the answering AS's, is refused
   * before anything is sent.
   */
  private async openApp(r: NativeResponse, stack: Hop[], callbackUri: string | undefined): Promise<{ endpoint: string; form: URLSearchParams }> {
    if (!r.deep_link) throw new FedasError(r);
    // Same device first (RFC 10027 §6.1): the other device only when no
    // app here opens the link.
    let received: string | null = null;
    if (this.appLinks) {
      if (!callbackUri) throw new FedasError({ ...r, error_description: 'redirect_to_app needs a native_callback_uri' });
      received = await this.appLinks.open(r.deep_link, callbackUri);
    }
    if (received === null && this.reach && r.reach_uri && r.auth_session) {
      const session = await reachOther(this.reach, r, (m, u, f) => this.send(m, u, f));
      return { endpoint: r.from, form: new URLSearchParams({ auth_session: session }) };
    }
    if (!this.appLinks) throw new FedasError(r);
    if (received === null) {
      // No app claims the link: ask that AS for its browser fallback.
      if (!r.auth_session) throw new FedasError({ ...r, error_description: 'no app opens the deep link' });
      return { endpoint: r.from, form: new URLSearchParams({ auth_session: r.auth_session, deep_link_unavailable: 'true' }) };
    }
    const q = checkCallback(received, callbackUri!);
    if (q.has('authorization_code')) {
      // RFC 9207: the app's code must be the answering AS's.
      const m = await this.metadataOf(r.from);
      if (q.get('iss') !== m.issuer) {
        throw new FedasError({ error: 'invalid_callback', error_description: `the callback's iss is not ${m.issuer}` });
      }
    } else if (!q.has('error')) {
      throw new FedasError({ error: 'invalid_callback', error_description: 'the callback carries neither authorization_code nor error' });
    }
    const form = new URLSearchParams();
    copyParams(q, form, ['authorization_code', 'iss', 'error', 'error_description']);
    if (r.auth_session) {
      form.set('auth_session', r.auth_session);
      return { endpoint: r.from, form };
    }
    const top = stack.pop();
    if (!top) throw new FedasError({ ...r, error_description: 'redirect_to_app without auth_session outside a federation' });
    form.set('auth_session', top.authSession);
    return { endpoint: top.responseUri, form };
  }

  /**
   * metadataOf finds the metadata of the AS whose native endpoint
   * answered: ours, or the one at the endpoint's origin, which must name
   * that same native endpoint (RFC 8414 §3.3).
   */
  private async metadataOf(endpoint: string): Promise<Metadata> {
    if (endpoint === nativeEndpoint(this.metadata)) return this.metadata;
    const m = await discover(new URL(endpoint).origin, this.fetchImpl);
    if (nativeEndpoint(m) !== endpoint) {
      throw new FedasError({ error: 'invalid_metadata', error_description: `${m.issuer} does not name ${endpoint} as its native endpoint` });
    }
    return m;
  }

  /**
   * completeApp is the other side of redirect_to_app: our own app, signed
   * in at this AS (tokens of this client), completes a deep link it was
   * opened with at the app completion API and gets the callback to invoke
   * (docs/protocol.md "App-to-app"). A DPoP-bound token is sent with the
   * DPoP scheme and a proof carrying `ath` (RFC 9449 §7.1).
   */
  async completeApp(deepLink: string, token: TokenResponse): Promise<{ callback: string; params: URLSearchParams }> {
    const q = new URL(deepLink).searchParams;
    const form = new URLSearchParams({ client_id: q.get('client_id') ?? '', request_uri: q.get('request_uri') ?? '' });
    const url = this.metadata.issuer.replace(/\/$/, '') + '/native/app/complete';
    const resp = await this.fetchResource(url, token, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body: form.toString(),
      redirect: 'manual',
    });
    const text = await resp.text();
    this.onExchange?.({ method: 'POST', url, form, status: resp.status, body: text });
    const body = parseJSON(text);
    if (resp.status !== 200 || typeof body.callback !== 'string') throw new FedasError({ ...body, status: resp.status, from: url });
    return { callback: body.callback, params: new URL(body.callback).searchParams };
  }

  /** exchange redeems a code at the token endpoint (RFC 6749 §4.1.3, no redirect_uri per FiPA-04 §6; RFC 7636 §4.5). */
  exchange(code: string, pkce: PKCE): Promise<TokenResponse> {
    const form = new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: pkce.verifier, client_id: this.clientId });
    if (pkce.redirectUri) form.set('redirect_uri', pkce.redirectUri);
    return this.tokenRequest(form);
  }

  /** refresh uses a refresh token (RFC 6749 §6); fedas rotates it, so keep the new one. */
  refresh(refreshToken: string): Promise<TokenResponse> {
    return this.tokenRequest(new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: this.clientId }));
  }

  /**
   * revoke revokes a token (RFC 7009 §2.1). The server answers 200 for
   * unknown tokens as well (§2.2), so success says nothing about the token.
   */
  async revoke(token: string, tokenTypeHint?: 'access_token' | 'refresh_token'): Promise<void> {
    const endpoint = this.metadata.revocation_endpoint;
    if (!endpoint) throw new FedasError({ error: 'revocation_unsupported', error_description: 'the metadata names no revocation_endpoint' });
    const form = new URLSearchParams({ token, client_id: this.clientId });
    if (tokenTypeHint) form.set('token_type_hint', tokenTypeHint);
    const { resp, text } = await this.send('POST', endpoint, form);
    if (resp.status !== 200) throw new FedasError({ ...parseJSON(text), status: resp.status });
  }

  /**
   * fetchResource calls a resource server with an access token: a DPoP
   * token with a proof carrying `ath` (RFC 9449 §7), a Bearer one as
   * RFC 6750 §2.1 says.
   */
  async fetchResource(url: string, token: TokenResponse, init: RequestInit = {}): Promise<Response> {
    const method = (init.method ?? 'GET').toUpperCase();
    for (let attempt = 0; ; attempt++) {
      const headers = new Headers(init.headers);
      if (token.token_type.toLowerCase() === 'dpop' && this.dpop) {
        headers.set('Authorization', `DPoP ${token.access_token}`);
        headers.set('DPoP', await this.dpop.proof(method, url, token.access_token));
      } else {
        headers.set('Authorization', `Bearer ${token.access_token}`);
      }
      const resp = await this.fetchImpl(url, { ...init, method, headers });
      // RFC 9449 §9: a resource server's nonce comes in WWW-Authenticate.
      if (attempt === 0 && this.dpop && resp.status === 401 && /use_dpop_nonce/.test(resp.headers.get('WWW-Authenticate') ?? '')) {
        if (this.dpop.rememberNonce(url, resp.headers.get('DPoP-Nonce'))) continue;
      }
      return resp;
    }
  }

  private async tokenRequest(form: URLSearchParams): Promise<TokenResponse> {
    const { resp, text } = await this.send('POST', this.metadata.token_endpoint, form);
    const body = parseJSON(text);
    if (resp.status !== 200) throw new FedasError({ ...body, status: resp.status });
    return body as TokenResponse;
  }

  /** postNative posts a form to a native endpoint and decodes its answer. */
  private async postNative(endpoint: string, form: URLSearchParams): Promise<NativeResponse> {
    const { resp, text } = await this.send('POST', endpoint, form);
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new FedasError({ error: 'invalid_response', error_description: `${endpoint} answered HTTP ${resp.status} with non-JSON`, status: resp.status });
    }
    // The body's own `status` (pending, slow_down, completed) is kept as pollStatus.
    const pollStatus = typeof body.status === 'string' ? body.status : undefined;
    return { ...body, status: resp.status, pollStatus, from: endpoint } as NativeResponse;
  }

  /** ours says whether url belongs to our own AS: only there do DPoP proofs go (docs/decisions.md Q5). */
  private ours(url: string): boolean {
    const iss = this.metadata.issuer.replace(/\/$/, '');
    return url === iss || url.startsWith(iss + '/');
  }

  /**
   * send sends a form with a DPoP proof for URLs of our own AS, and
   * retries once with the server's nonce on `use_dpop_nonce` (RFC 9449
   * §8): the server consumed nothing on that answer.
   */
  private async send(method: string, url: string, form?: URLSearchParams): Promise<{ resp: Response; text: string }> {
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { Accept: 'application/json' };
      if (form) headers['Content-Type'] = 'application/x-www-form-urlencoded';
      const signed = this.dpop !== undefined && this.ours(url);
      if (signed) headers.DPoP = await this.dpop!.proof(method, url);
      const resp = await this.fetchImpl(url, { method, headers, body: form?.toString(), redirect: 'manual' });
      const text = await resp.text();
      this.onExchange?.({ method, url, form, status: resp.status, body: text });
      if (signed && attempt === 0 && resp.status >= 400 && parseJSON(text).error === 'use_dpop_nonce') {
        if (this.dpop!.rememberNonce(url, resp.headers.get('DPoP-Nonce'))) continue;
      }
      return { resp, text };
    }
  }
}

/**
 * checkCallback accepts a URL an app or a browser handed back only when
 * it is exactly `expected` plus a query, each parameter at most once (no
 * look-alike host or path, no duplicated code to smuggle a second value);
 * it returns the query.
 */
function checkCallback(received: string, expected: string): URLSearchParams {
  const noFragment = received.split('#', 1)[0];
  const i = noFragment.indexOf('?');
  const base = i < 0 ? noFragment : noFragment.slice(0, i);
  if (base !== expected) {
    throw new FedasError({ error: 'invalid_callback', error_description: `the callback is not ${expected}` });
  }
  const q = new URLSearchParams(i < 0 ? '' : noFragment.slice(i + 1));
  for (const k of new Set(q.keys())) {
    if (q.getAll(k).length > 1) throw new FedasError({ error: 'invalid_callback', error_description: `the callback repeats ${k}` });
  }
  return q;
}

function copyParams(from: URLSearchParams, to: URLSearchParams, names: string[]): void {
  for (const k of names) {
    const v = from.get(k);
    if (v) to.set(k, v);
  }
}

function toForm(p: Params): URLSearchParams {
  const f = new URLSearchParams();
  for (const [k, v] of Object.entries(p)) {
    for (const x of Array.isArray(v) ? v : [v]) f.append(k, x);
  }
  return f;
}

function parseJSON(text: string): Record<string, unknown> {
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
