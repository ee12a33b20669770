// Test support: TLS in front of `fedas serve`, which listens on plain
// HTTP and leaves TLS to what is in front of it (docs/config.md
// `listen`). fedas's OpenID4VP verifier needs an https issuer (its
// response_uri and request_uri, OpenID4VP 1.0 §5.9.3, §8.2), so the
// presentation tests run fedas with issuer https://127.0.0.1:<proxy> and
// this reverse proxy forwarding every request to it unchanged; the
// clients trust the proxy's test certificate through httpsFetch, never
// by turning certificate checks off.
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, createServer, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TestCert } from './x509.js';

export interface TLSProxy {
  /** https://127.0.0.1:<port> */
  url: string;
  port: number;
  /** Points the proxy at the plain HTTP listener on 127.0.0.1:port (before the first request). */
  target(port: number): void;
  stop(): Promise<void>;
}

/**
 * startTLSProxy listens with cert on a free 127.0.0.1 port and forwards
 * each request (method, path, headers, body) to the target's plain HTTP
 * listener, streaming the answer back as it came.
 */
export async function startTLSProxy(cert: TestCert): Promise<TLSProxy> {
  let upstream = 0;
  const agent = new HttpAgent({ keepAlive: false });
  const server = createServer({ key: cert.keyPem, cert: cert.certPem }, (req, res) => {
    const out = httpRequest({ host: '127.0.0.1', port: upstream, method: req.method, path: req.url, headers: req.headers, agent }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    out.on('error', (e) => {
      if (!res.headersSent) res.writeHead(502, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: 'bad_gateway', error_description: e.message }));
    });
    req.pipe(out);
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    target: (p) => void (upstream = p),
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
      agent.destroy();
    },
  };
}

/**
 * httpsFetch is a fetch over node:https trusting exactly ca (a PEM
 * certificate): what the SDK (ClientOptions.fetch, discover) and the test
 * wallet use to reach the proxy. Redirects are never followed (the SDK
 * asks for `redirect: 'manual'` and handles none at these endpoints).
 */
export function httpsFetch(ca: string): typeof fetch {
  const agent = new HttpsAgent({ ca, keepAlive: false });
  return async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    if (input instanceof Request) throw new Error('httpsFetch: pass a URL and init');
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((v, k) => (headers[k] = v));
    const body = init.body;
    if (body !== undefined && body !== null && typeof body !== 'string') throw new Error('httpsFetch: string bodies only');
    return new Promise<Response>((ok, fail) => {
      const req = httpsRequest(new URL(input), { method: init.method ?? 'GET', headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', fail);
        res.on('end', () => {
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) {
            if (v === undefined) continue;
            for (const one of Array.isArray(v) ? v : [v]) h.append(k, one);
          }
          const status = res.statusCode ?? 0;
          ok(new Response(status === 204 || status === 304 ? null : Buffer.concat(chunks), { status, headers: h }));
        });
      });
      req.on('error', fail);
      init.signal?.addEventListener('abort', () => req.destroy(new Error('aborted')));
      req.end(body ?? undefined);
    });
  };
}
