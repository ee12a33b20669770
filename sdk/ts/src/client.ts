import { FedasError, type NativeResponse } from './errors.js';
import { type Metadata, nativeEndpoint } from './discovery.js';
import { DPoPKey } from './dpop.js';
import { newPKCE, type PKCE } from './pkce.js';

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

export interface ClientOptions {
  clientId: string;
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

  constructor(opts: ClientOptions) {
    this.clientId = opts.clientId;
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
    form.set('client_id', this.clientId);
    form.set('response_type', 'code');
    form.set('code_challenge', pkce.challenge);
    form.set('code_challenge_method', 'S256');
    let endpoint = endpoint0;
    const stack: Hop[] = [];
    for (let step = 0; step < this.maxSteps; step++) {
      const r = await this.postNative(endpoint, form);
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
          if (!body.get('response_type')) body.set('response_type', 'code'); // docs/decisions.md Q4
          endpoint = r.federation_uri;
          form = body;
          continue;
        }
        default: {
          // TODO(issue 14): redirect_to_app (deep-link adapter) and
          // redirect_to_web (browser adapter), presentations, reach.
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
    return { ...body, status: resp.status, from: endpoint } as NativeResponse;
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
  private async send(method: string, url: string, form: URLSearchParams): Promise<{ resp: Response; text: string }> {
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' };
      const signed = this.dpop !== undefined && this.ours(url);
      if (signed) headers.DPoP = await this.dpop!.proof(method, url);
      const resp = await this.fetchImpl(url, { method, headers, body: form.toString(), redirect: 'manual' });
      const text = await resp.text();
      this.onExchange?.({ method, url, form, status: resp.status, body: text });
      if (signed && attempt === 0 && resp.status >= 400 && parseJSON(text).error === 'use_dpop_nonce') {
        if (this.dpop!.rememberNonce(url, resp.headers.get('DPoP-Nonce'))) continue;
      }
      return { resp, text };
    }
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
