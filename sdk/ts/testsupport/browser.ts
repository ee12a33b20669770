// A browser for tests: it drives fedas's HTML sign-in pages with fetch as
// a user at a browser would (GET the authorization URL, fill in and post
// each form, keep cookies per origin, follow redirects) until a redirect
// leaves for the app's callback, whose URL it hands back as the OS would.
import { type BrowserAdapter } from '../src/index.js';
import { totp } from './fedas.js';

/** What the user types: one value per input name, or a function of the page. */
export interface BrowserUser {
  username: string;
  password: string;
  totpSecret?: string;
}

export interface BrowserTrace {
  /** Every URL the browser requested, in order. */
  visited: string[];
  /** Titles of the pages it filled in. */
  pages: string[];
}

/**
 * testBrowser returns a BrowserAdapter signing user in on the pages it
 * meets, recording what it did in trace.
 */
export function testBrowser(user: BrowserUser, trace: BrowserTrace = { visited: [], pages: [] }): BrowserAdapter {
  return {
    async open(authorizeUrl, callbackUri) {
      const jar = new Map<string, Map<string, string>>(); // origin → cookie name → value
      const send = async (url: string, body?: URLSearchParams): Promise<Response> => {
        trace.visited.push(url);
        const origin = new URL(url).origin;
        const cookies = jar.get(origin);
        const headers: Record<string, string> = {};
        if (cookies?.size) headers.Cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
        if (body) headers['Content-Type'] = 'application/x-www-form-urlencoded';
        const resp = await fetch(url, { method: body ? 'POST' : 'GET', headers, body: body?.toString(), redirect: 'manual' });
        for (const c of resp.headers.getSetCookie()) {
          const [pair] = c.split(';', 1);
          const i = pair.indexOf('=');
          if (!jar.has(origin)) jar.set(origin, new Map());
          jar.get(origin)!.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
        }
        return resp;
      };
      let resp = await send(authorizeUrl);
      for (let step = 0; step < 16; step++) {
        const base = trace.visited.at(-1)!;
        if ([301, 302, 303, 307].includes(resp.status)) {
          const loc = new URL(resp.headers.get('Location') ?? '', base).toString();
          const raw = resp.headers.get('Location') ?? '';
          // The OS hands a URL under the app's callback to the app.
          if (raw.startsWith(callbackUri)) return raw;
          resp = await send(loc);
          continue;
        }
        const html = await resp.text();
        const form = /<form method="post" action="([^"]+)"/.exec(html);
        if (resp.status !== 200 || !form) throw new Error(`browser: HTTP ${resp.status} at ${base} without a form:\n${html}`);
        trace.pages.push(/<title>([^<]*)<\/title>/.exec(html)?.[1] ?? '');
        const body = new URLSearchParams();
        for (const m of html.matchAll(/<input ([^>]*)>/g)) {
          const name = /name="([^"]+)"/.exec(m[1])?.[1];
          if (!name) continue;
          const value = /value="([^"]*)"/.exec(m[1])?.[1];
          if (/type="hidden"/.test(m[1])) body.set(name, value ?? '');
          else if (name === 'username') body.set(name, user.username);
          else if (name === 'password') body.set(name, user.password);
          else if (name === 'otp' && user.totpSecret) body.set(name, totp(user.totpSecret));
          else throw new Error(`browser: the page at ${base} asks for ${name}`);
        }
        resp = await send(new URL(form[1], base).toString(), body);
      }
      throw new Error('browser: too many steps');
    },
  };
}
