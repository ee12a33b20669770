// Cross-implementation driver for dc/crossimpl (test only).
//
// Reads one JSON request on stdin, writes one JSON answer on stdout. The
// SD-JWT VC work is done by @sd-jwt/sd-jwt-vc (pinned in package-lock.json);
// ES256 and SHA-256 come from node:crypto, so no second SD-JWT package is
// involved.
//
// Requests:
//   {"op":"issue_present", "issuer_jwk":{private EC P-256 JWK}, "kid":"...",
//    "holder_jwk":{private}, "claims":{...}, "disclosure_frame":{...},
//    "presentation_frame":{...}, "nonce":"...", "aud":"...", "iat":N}
//     -> {"ok":true, "issued":"<SD-JWT>", "presentation":"<SD-JWT+KB>"}
//   {"op":"verify", "issuer_jwk":{public}, "presentation":"...",
//    "nonce":"...", "aud":"...", "now":N, "no_kb":false}
//     -> {"ok":true, "header":{...}, "claims":{...}, "kb":{...}}
//      | {"ok":false, "error":"<library or check message>"}
// Anything else (bad request, internal failure) exits 2 with the error on
// stderr, so a crash is never mistaken for a refusal.
import { createHash, createPrivateKey, createPublicKey, randomBytes, sign, verify } from 'node:crypto';
import { SDJwtVcInstance } from '@sd-jwt/sd-jwt-vc';

const b64u = (buf) => Buffer.from(buf).toString('base64url');

// hasher: RFC 9901 §4.2.3 digests and §4.3.1 sd_hash. Only sha-256, like fedas.
const hasher = (data, alg) => {
  if (alg !== 'sha-256') throw new Error(`unsupported _sd_alg ${alg}`);
  const bytes = typeof data === 'string' ? Buffer.from(data, 'ascii') : Buffer.from(data);
  return new Uint8Array(createHash('sha256').update(bytes).digest());
};

const es256Signer = (jwk) => {
  const key = createPrivateKey({ key: jwk, format: 'jwk' });
  return async (data) => b64u(sign('sha256', Buffer.from(data, 'ascii'), { key, dsaEncoding: 'ieee-p1363' }));
};

const es256Verify = (jwk, data, sig) => {
  const key = createPublicKey({ key: jwk, format: 'jwk' });
  return verify('sha256', Buffer.from(data, 'ascii'), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(sig, 'base64url'));
};

const publicJwk = (jwk) => {
  const { d, ...pub } = jwk;
  return pub;
};

async function issuePresent(req) {
  const sdjwt = new SDJwtVcInstance({
    hasher,
    hashAlg: 'sha-256',
    saltGenerator: (n) => b64u(randomBytes(n)),
    signer: es256Signer(req.issuer_jwk),
    signAlg: 'ES256',
    kbSigner: es256Signer(req.holder_jwk),
    kbSignAlg: 'ES256',
  });
  const payload = { ...req.claims, cnf: { jwk: publicJwk(req.holder_jwk) } };
  const issued = await sdjwt.issue(payload, req.disclosure_frame, { header: { kid: req.kid } });
  const presentation = await sdjwt.present(issued, req.presentation_frame, {
    kb: { payload: { iat: req.iat, aud: req.aud, nonce: req.nonce } },
  });
  return { ok: true, issued, presentation };
}

async function verifyPresentation(req) {
  const sdjwt = new SDJwtVcInstance({
    hasher,
    hashAlg: 'sha-256',
    verifier: (data, sig) => es256Verify(req.issuer_jwk, data, sig),
    // RFC 9901 §7.3 step 5: the KB-JWT is verified with the key in cnf.jwk.
    kbVerifier: (data, sig, payload) => {
      if (!payload?.cnf?.jwk) throw new Error('no cnf.jwk');
      return es256Verify(payload.cnf.jwk, data, sig);
    },
  });
  try {
    // keyBindingNonce makes the library require and verify the KB-JWT
    // (signature with cnf.jwk, typ kb+jwt, nonce, sd_hash); no_kb verifies
    // the SD-JWT alone (holder binding not required by the caller).
    if (req.no_kb) {
      const res = await sdjwt.verify(req.presentation, { currentDate: req.now });
      if (res.header?.typ !== 'dc+sd-jwt') return { ok: false, error: `driver: issuer JWT typ ${res.header?.typ}` };
      return { ok: true, header: res.header, claims: res.payload };
    }
    const res = await sdjwt.verify(req.presentation, { currentDate: req.now, keyBindingNonce: req.nonce });
    // The library checks neither of these two (0.19.0): the driver does,
    // so that the comparison covers what RFC 9901 §7.3 and SD-JWT VC §2.2.1
    // require of a verifier.
    if (res.header?.typ !== 'dc+sd-jwt') return { ok: false, error: `driver: issuer JWT typ ${res.header?.typ}` };
    if (res.kb?.payload?.aud !== req.aud) return { ok: false, error: 'driver: KB-JWT aud mismatch' };
    return { ok: true, header: res.header, claims: res.payload, kb: res.kb.payload };
  } catch (e) {
    return { ok: false, error: String(e?.message ?? e) };
  }
}

async function main() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  const req = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  let out;
  switch (req.op) {
    case 'issue_present':
      out = await issuePresent(req);
      break;
    case 'verify':
      out = await verifyPresentation(req);
      break;
    default:
      throw new Error(`unknown op ${req.op}`);
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => {
  process.stderr.write(`crossimpl.mjs: ${e?.stack ?? e}\n`);
  process.exit(2);
});
