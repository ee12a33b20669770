// Test support: self-signed P-256 certificates for 127.0.0.1, made per
// test run with node:crypto (which signs but has no certificate builder),
// so that no key is ever committed: the TLS certificate of the https
// proxy in front of `fedas serve` (testsupport/tls.ts), and the signing
// certificate of fedas's OpenID4VP verifier (its client_id is
// x509_hash:<SHA-256 of the leaf>, OpenID4VP 1.0 §5.9.3). Never for a
// deployment.
import { X509Certificate, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';

export interface TestCert {
  /** The certificate, PEM. */
  certPem: string;
  /** The certificate, DER. */
  der: Buffer;
  /** The private key, PEM (PKCS #8). */
  keyPem: string;
  privateKey: KeyObject;
}

// DER (X.690) encoders for the few types a certificate needs.
function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  const len = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, content]);
}
const seq = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => tlv(0x31, Buffer.concat(items));
const explicit = (n: number, content: Buffer) => tlv(0xa0 + n, content);
const octets = (b: Buffer) => tlv(0x04, b);
const bits = (b: Buffer, unused = 0) => tlv(0x03, Buffer.concat([Buffer.from([unused]), b]));
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0]));
function int(b: Buffer): Buffer {
  return tlv(0x02, b[0] & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
}
function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const out = [40 * a + b];
  for (let v of rest) {
    const chunk = [v & 0x7f];
    while ((v >>= 7) > 0) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}
function utcTime(d: Date): Buffer {
  const s = d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z'; // YYMMDDHHMMSSZ (RFC 5280 §4.1.2.5.1)
  return tlv(0x17, Buffer.from(s, 'ascii'));
}
const name = (cn: string) => seq(set(seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(cn, 'utf8')))));
const ext = (id: string, critical: boolean, value: Buffer) => seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));

const ecdsaWithSHA256 = seq(oid('1.2.840.10045.4.3.2'));

/**
 * selfSignedCert makes a P-256 key and a self-signed CA certificate for
 * it naming 127.0.0.1 (IP address SAN), valid from an hour ago for a day
 * (RFC 5280 §4.1; key usage digitalSignature and keyCertSign), as
 * internal/loopbackcert does for the Go demos; serverAuth adds the TLS
 * server extended key usage (RFC 5280 §4.2.1.12).
 */
export function selfSignedCert(cn: string, serverAuth: boolean, now = new Date()): TestCert {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const serial = randomBytes(16);
  serial[0] = (serial[0] & 0x3f) | 0x40; // positive, and minimal in DER (no leading zero octet)
  const extensions = [
    ext('2.5.29.19', true, seq(bool(true))), // basicConstraints: CA
    ext('2.5.29.15', true, bits(Buffer.from([0x84]), 2)), // keyUsage: digitalSignature, keyCertSign
    ext('2.5.29.17', false, seq(tlv(0x87, Buffer.from([127, 0, 0, 1])))), // subjectAltName: iPAddress 127.0.0.1
  ];
  if (serverAuth) extensions.push(ext('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'))));
  const tbs = seq(
    explicit(0, int(Buffer.from([2]))), // v3
    int(serial),
    ecdsaWithSHA256,
    name(cn),
    seq(utcTime(new Date(now.getTime() - 3600_000)), utcTime(new Date(now.getTime() + 86400_000))),
    name(cn),
    publicKey.export({ type: 'spki', format: 'der' }),
    explicit(3, seq(...extensions)),
  );
  const der = seq(tbs, ecdsaWithSHA256, bits(sign('sha256', tbs, privateKey)));
  const certPem = `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE-----\n`;
  // Parse it back: a malformed encoding fails here, not inside fedas.
  if (!new X509Certificate(der).checkPrivateKey(privateKey)) throw new Error('x509: the certificate is not for its key');
  return { certPem, der, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), privateKey };
}
