/**
 * Typed errors for fedas answers. Every error answer is an RFC 6749 §5.2
 * body (`error`, `error_description`, `error_uri`); the native endpoint adds
 * the FiPA-04 §5.2 and federation-draft §4.3 members (docs/protocol.md
 * "Answers"). Clients branch on `error`, never on the HTTP status
 * (docs/decisions.md Q2).
 */

/** The challenge types fedas sends; others may come from other servers. */
export type ChallengeType = 'password' | 'otp' | 'digital_credentials' | (string & {});

/** A challenge: what a local step asks the user for (docs/protocol.md "Challenges"). */
export interface Challenge {
  /** `password`, `otp`, `digital_credentials`, … */
  type: ChallengeType;
  /** A presentation's path: dc_api, same_device, cross_device or interactive. */
  flow?: string;
  /** One field to collect per name; the follow-up sends one parameter per name. */
  inputs: Record<string, ChallengeInput>;
  /** What a method needs beyond text inputs. */
  data?: Record<string, unknown>;
}

/** The password challenge: `username` (unless login_hint named the user) and `password` inputs. */
export interface PasswordChallenge extends Challenge {
  type: 'password';
}

/** The one-time code challenge: an `otp` input (RFC 6238). */
export interface OtpChallenge extends Challenge {
  type: 'otp';
}

/** A credential presentation (docs/protocol.md "Digital credentials"): the request is in the answer's other members. */
export interface PresentationChallenge extends Challenge {
  type: 'digital_credentials';
  flow: 'dc_api' | 'same_device' | 'cross_device' | 'interactive';
}

/** isChallenge narrows a challenge to one of the known types (`isChallenge(c, 'otp')`). */
export function isChallenge<T extends 'password' | 'otp' | 'digital_credentials'>(
  c: Challenge | undefined,
  type: T,
): c is T extends 'password' ? PasswordChallenge : T extends 'otp' ? OtpChallenge : PresentationChallenge {
  return c?.type === type;
}

/** One input of a challenge. `hint` is an HTML autocomplete token; `secret` says to mask it. */
export interface ChallengeInput {
  title?: string;
  hint?: string;
  description?: string;
  secret: boolean;
}

/**
 * Any answer of a native endpoint (FiPA-04 §5.2; federation draft §4.3),
 * decoded loosely so that one type fits every outcome.
 */
export interface NativeResponse {
  /** The HTTP status (informational only: branch on `error`). */
  status: number;
  /** The endpoint that produced the answer. */
  from: string;
  authorization_code?: string;
  error?: string;
  error_description?: string;
  error_uri?: string;
  auth_session?: string;
  challenge?: Challenge;
  federation_uri?: string;
  federation_body?: string;
  response_uri?: string;
  deep_link?: string;
  /** The routing prompt of `insufficient_information` (docs/protocol.md "User Questioning"). */
  userPrompt?: Record<string, unknown>;
  logo?: string;
  request_uri?: string;
  expires_in?: number;
  interval?: number;
  /**
   * The body's `status` member: `pending` or `slow_down` while a step
   * waits (a cross-device wallet), `completed` for reach (the HTTP status
   * is `status`).
   */
  pollStatus?: string;
  /** A presentation's dialect marker: `digital_credentials` or `digital_credentials_required`. */
  type?: string;
  /** The wallet's request (wallet dialect). */
  credentials_request?: string;
  /** The wallet's request (draft00 dialect). */
  request?: string;
  /** Cross-device redirect_to_app: where to ask for the user's other device (docs/reach.md). */
  reach_uri?: string;
  /** The number the user picks on the other device. */
  binding_code?: string;
  [member: string]: unknown;
}

/**
 * FedasError is a terminal error answer from an authorization server: the
 * RFC 6749 §5.2 members plus whatever protocol members the answer carried
 * (auth_session, challenge, userPrompt, …) in `response`.
 */
export class FedasError extends Error {
  /** RFC 6749 §5.2 `error`. */
  readonly error: string;
  /** RFC 6749 §5.2 `error_description`. */
  readonly error_description?: string;
  /** RFC 6749 §5.2 `error_uri`. */
  readonly error_uri?: string;
  /** The HTTP status of the answer (0 when the error is the SDK's own). */
  readonly status: number;
  /** The answer's `auth_session`, when the session survives (docs/protocol.md "Answers"). */
  readonly auth_session?: string;
  /** The answer's `challenge`, for insufficient_authorization. */
  readonly challenge?: Challenge;
  /** The answer's `userPrompt`, for insufficient_information. */
  readonly prompt?: Record<string, unknown>;
  /** The whole decoded answer. */
  readonly response: Partial<NativeResponse>;

  constructor(response: Partial<NativeResponse> & { error?: string; status?: number }) {
    const error = response.error ?? 'server_error';
    super(`${error} (HTTP ${response.status ?? 0})${response.error_description ? `: ${response.error_description}` : ''}`);
    this.name = 'FedasError';
    this.error = error;
    this.error_description = response.error_description;
    this.error_uri = response.error_uri;
    this.status = response.status ?? 0;
    this.auth_session = response.auth_session;
    this.challenge = response.challenge;
    this.prompt = response.userPrompt;
    this.response = response;
  }
}
