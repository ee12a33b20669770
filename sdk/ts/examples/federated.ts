// A federated sign-in: our AS asks where the user signs in
// (insufficient_information), federates to the AS that holds the account,
// which may challenge natively, fall back to the browser
// (redirect_to_web) or send the user to its app (redirect_to_app). The
// SDK follows every hop; the UI callback sees each AS's questions in turn
// and the adapters handle the legs outside the app.
import { Client, DPoPKey, FedasError, discover, type AppLinkAdapter, type BrowserAdapter, type NativeResponse, type Params } from '../src/index.js';

/** What the app's screens provide. */
export interface Screens {
  askEmail(prompt: Record<string, unknown>): Promise<string>;
  askInputs(r: NativeResponse): Promise<Params>;
}

export async function federatedSignIn(issuer: string, screens: Screens, browser: BrowserAdapter, appLinks: AppLinkAdapter) {
  const client = new Client({
    clientId: 'demo-app',
    metadata: await discover(issuer),
    dpop: await DPoPKey.generate(), // proofs go to our AS only, never to a downstream
    nativeCallbackUri: 'https://app.example/cb', // registered; apps and browsers return here
    browser,
    appLinks,
  });
  try {
    const { code, pkce } = await client.authorize({ scope: 'openid email' }, async (r) => {
      if (r.error === 'insufficient_information' && r.userPrompt) return { email: await screens.askEmail(r.userPrompt) };
      return screens.askInputs(r); // a downstream's password / one-time code, rendered from r.challenge.inputs
    });
    return await client.exchange(code, pkce);
  } catch (e) {
    if (e instanceof FedasError && e.error === 'invalid_callback') {
      // An app or browser came back somewhere else than our
      // native_callback_uri, or with another AS's iss: nothing was sent,
      // and the sign-in starts again from the beginning.
      console.warn(`refused a callback: ${e.error_description}`);
    }
    throw e;
  }
}
