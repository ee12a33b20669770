// Adapters for React Native and Capacitor, as sketches: the SDK needs only
// "open this URL, give me the URL the OS delivers to our callback".
// Neither platform package is a dependency of the SDK; the shapes below
// are the subset of their APIs the adapters use.
//
// React Native (Linking):
//
//   import { Linking } from 'react-native';
//   const appLinks = deepLinkAdapter({
//     canOpen: (url) => Linking.canOpenURL(url),
//     open: (url) => Linking.openURL(url),
//     onUrl: (cb) => { const s = Linking.addEventListener('url', (e) => cb(e.url)); return () => s.remove(); },
//   });
//
// Capacitor (@capacitor/app, @capacitor/browser):
//
//   import { App } from '@capacitor/app';
//   import { Browser } from '@capacitor/browser';
//   const browser = browserAdapter({
//     open: (url) => Browser.open({ url }),
//     close: () => Browser.close(),
//     onUrl: (cb) => { const h = App.addListener('appUrlOpen', (e) => cb(e.url)); return () => void h.then((x) => x.remove()); },
//   });
//
// The app declares native_callback_uri (https://app.example/cb) as an
// Android App Link / iOS Universal Link so that only it receives it.
import { type AppLinkAdapter, type BrowserAdapter } from '../src/index.js';

/** The platform's link API: what the adapters need of it. */
export interface Platform {
  canOpen?(url: string): Promise<boolean>;
  open(url: string): Promise<unknown>;
  close?(): Promise<unknown>;
  /** onUrl calls cb with every URL the OS hands the app; it returns an unsubscribe. */
  onUrl(cb: (url: string) => void): () => void;
}

/** nextUrl resolves with the first URL the OS delivers under prefix (the SDK checks it exactly). */
function nextUrl(p: Platform, prefix: string, timeoutMs: number): Promise<string> {
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => {
      off();
      fail(new Error('no callback'));
    }, timeoutMs);
    const off = p.onUrl((url) => {
      if (!url.startsWith(prefix)) return;
      clearTimeout(timer);
      off();
      ok(url);
    });
  });
}

/** deepLinkAdapter opens a redirect_to_app deep link and waits for the other app's callback. */
export function deepLinkAdapter(p: Platform, timeoutMs = 5 * 60_000): AppLinkAdapter {
  return {
    async open(deepLink, nativeCallbackUri) {
      // No app claims the link: null lets the SDK ask for the browser fallback (or the user's other device).
      if (p.canOpen && !(await p.canOpen(deepLink))) return null;
      const callback = nextUrl(p, nativeCallbackUri, timeoutMs);
      await p.open(deepLink);
      return callback;
    },
  };
}

/** browserAdapter runs a redirect_to_web leg in the system browser and waits for the callback. */
export function browserAdapter(p: Platform, timeoutMs = 10 * 60_000): BrowserAdapter {
  return {
    async open(authorizeUrl, callbackUri) {
      const callback = nextUrl(p, callbackUri, timeoutMs);
      await p.open(authorizeUrl);
      try {
        return await callback;
      } finally {
        await p.close?.();
      }
    },
  };
}
