/** @fedas/sdk: a native client for fedas and other FiPA authorization servers. */
export {
  FedasError,
  isChallenge,
  type Challenge,
  type ChallengeType,
  type ChallengeInput,
  type PasswordChallenge,
  type OtpChallenge,
  type PresentationChallenge,
  type NativeResponse,
} from './errors.js';
export { type ReachAdapter, type ReachAnswer } from './reach.js';
export { presentationOf, pathParams, type PresentationRequest, type PresentationFlow, type WalletAdapter } from './presentation.js';
export { discover, nativeEndpoint, type Metadata } from './discovery.js';
export { DPoPKey } from './dpop.js';
export { newPKCE, type PKCE } from './pkce.js';
export {
  Client,
  type ClientOptions,
  type UI,
  type Params,
  type TokenResponse,
  type AuthorizeResult,
  type Exchange,
  type AppLinkAdapter,
  type BrowserAdapter,
} from './client.js';
