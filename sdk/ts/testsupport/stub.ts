// A scripted authorization server on node:http, for the SDK's shape and
// dispatch only (which hook gets what, which members go back): answers a
// real fedas does not give in these tests (a renewed cross-device request,
// slow_down at will, DPoP nonces, a presentation asked after federate).
// Every behaviour that matters is tested against real fedas servers
// elsewhere (presentations: test/presentation-real.test.ts).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

export interface StubRequest {
  method: string;
  path: string;
  form: URLSearchParams;
  headers: IncomingMessage['headers'];
}

/** A scripted answer: HTTP status, JSON body and extra headers. */
export type StubAnswer = [number, Record<string, unknown>, Record<string, string>?];

export interface Stub {
  issuer: string;
  /** Every request the stub received, in order (metadata excluded). */
  requests: StubRequest[];
  stop(): Promise<void>;
}

/**
 * startStub serves RFC 8414 metadata naming /native/authorize and
 * /oauth2/token, and answers every other request with script(request).
 */
export async function startStub(script: (r: StubRequest) => StubAnswer): Promise<Stub> {
  const requests: StubRequest[] = [];
  let issuer = '';
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (b: Buffer) => (body += b.toString()));
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0];
      let status: number;
      let out: Record<string, unknown>;
      let extra: Record<string, string> | undefined;
      if (path === '/.well-known/oauth-authorization-server') {
        [status, out] = [200, { issuer, authorization_challenge_endpoint: `${issuer}/native/authorize`, token_endpoint: `${issuer}/oauth2/token` }];
      } else {
        const r = { method: req.method ?? 'GET', path, form: new URLSearchParams(body), headers: req.headers };
        requests.push(r);
        [status, out, extra] = script(r);
      }
      res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...extra });
      res.end(JSON.stringify(out));
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const addr = server.address();
  issuer = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  return { issuer, requests, stop: () => new Promise<void>((ok) => server.close(() => ok())) };
}
