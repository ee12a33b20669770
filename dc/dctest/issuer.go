package dctest

import (
	"bytes"
	"compress/zlib"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/fedas/fedas/dc"
	"github.com/fedas/fedas/dc/dcql"
	"github.com/fedas/fedas/dc/sdjwt/sdjwttest"
	"github.com/fedas/fedas/dc/statuslist"
)

// Defaults of IssuerOptions.
const (
	DefaultIssuerID   = "https://issuer.example"
	DefaultVCT        = "urn:eudi:pid:1"
	DefaultStatusSize = 64
	// StatusBits is the width of every list entry: 2 bits hold VALID,
	// INVALID and SUSPENDED (Token Status List §4.1, §7.1).
	StatusBits = 2
)

// IssuerOptions configure NewIssuer. Zero values take the defaults.
type IssuerOptions struct {
	// ID is the iss value (default DefaultIssuerID).
	ID string
	// X5C signs credentials with a leaf certificate chained to a
	// self-signed root instead of a static JWKS key (SD-JWT VC §3.5): the
	// leaf carries ID as URI SAN and its host as DNS SAN, as
	// sdjwt.X5CIssuerKeys requires.
	X5C bool
	// VCT is the credential type issued (default DefaultVCT).
	VCT string
	// Now is the clock of certificates, iat/exp and status list tokens
	// (default time.Now). Use the verifier's fixed clock.
	Now func() time.Time
	// StatusSize is the number of status list entries (default
	// DefaultStatusSize); Issue fails once they are used.
	StatusSize int
	// NoStatusServer: credentials carry no status claim and no status
	// list server runs.
	NoStatusServer bool
}

// Issuer is a simulated SD-JWT VC issuer (SD-JWT VC draft; Token Status
// List): an ES256 key, optionally an x5c chain, and a status list served
// over HTTPS on 127.0.0.1. Test support only.
type Issuer struct {
	ID  string
	VCT string
	Key *ecdsa.PrivateKey
	KID string
	// Chain is leaf, root when IssuerOptions.X5C (else nil); Roots holds
	// the root.
	Chain []*x509.Certificate
	Roots *x509.CertPool
	// StatusURI is the status list's URI ("" without a server).
	StatusURI string

	now  func() time.Time
	srv  *httptest.Server
	mu   sync.Mutex
	list []byte // one status value per entry
	next int
	hits int
}

// TB is the part of testing.TB that NewIssuer uses; the package does
// not import testing, so that programs (fedas demo wallet) can use it.
type TB interface {
	Helper()
	Cleanup(func())
	Fatal(args ...any)
}

// NewIssuer starts an issuer; its status server closes with tb.
func NewIssuer(tb TB, o IssuerOptions) *Issuer {
	tb.Helper()
	iss, err := NewIssuerFor(tb.Cleanup, o)
	if err != nil {
		tb.Fatal(err)
	}
	return iss
}

// NewIssuerFor starts an issuer outside a test: cleanup registers what
// stops it (its status server), e.g. a list the caller runs at exit.
func NewIssuerFor(cleanup func(func()), o IssuerOptions) (*Issuer, error) {
	if o.ID == "" {
		o.ID = DefaultIssuerID
	}
	if o.VCT == "" {
		o.VCT = DefaultVCT
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.StatusSize <= 0 {
		o.StatusSize = DefaultStatusSize
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	iss := &Issuer{ID: o.ID, VCT: o.VCT, Key: key, KID: "issuer-key-1", now: o.Now, list: make([]byte, o.StatusSize)}
	if o.X5C {
		if iss.Chain, iss.Roots, err = chainFor(o.ID, key, o.Now()); err != nil {
			return nil, err
		}
	}
	if !o.NoStatusServer {
		iss.srv = httptest.NewUnstartedServer(http.HandlerFunc(iss.serveStatus))
		iss.srv.StartTLS()
		cleanup(iss.srv.Close)
		iss.StatusURI = iss.srv.URL + "/status/1"
	}
	return iss, nil
}

// chainFor makes a self-signed root and a leaf for key bound to id (URI SAN
// id, DNS SAN its host: sdjwt.X5CIssuerKeys).
func chainFor(id string, key *ecdsa.PrivateKey, now time.Time) ([]*x509.Certificate, *x509.CertPool, error) {
	u, err := url.Parse(id)
	if err != nil {
		return nil, nil, fmt.Errorf("dctest: issuer id: %w", err)
	}
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	root := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dctest issuer root"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}
	rootDER, err := x509.CreateCertificate(rand.Reader, root, root, &rootKey.PublicKey, rootKey)
	if err != nil {
		return nil, nil, err
	}
	rootCert, _ := x509.ParseCertificate(rootDER)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: u.Hostname()}, URIs: []*url.URL{u},
		KeyUsage: x509.KeyUsageDigitalSignature, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}
	if u.Hostname() != "" {
		leaf.DNSNames = []string{u.Hostname()}
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, rootCert, &key.PublicKey, rootKey)
	if err != nil {
		return nil, nil, err
	}
	leafCert, _ := x509.ParseCertificate(leafDER)
	pool := x509.NewCertPool()
	pool.AddCert(rootCert)
	return []*x509.Certificate{leafCert, rootCert}, pool, nil
}

// TrustedIssuer is the dc.TrustedIssuer configuration a verifier needs for
// this issuer: the x5c roots or a static JWKS, the vct, StatusRequired when a
// status list is served, and ["sub"] as the subject claim (OpenID4VP §14.4).
func (i *Issuer) TrustedIssuer() dc.TrustedIssuer {
	t := dc.TrustedIssuer{Issuer: i.ID, VCTValues: []string{i.VCT}, SubjectClaim: dcql.Path{"sub"}, StatusRequired: i.srv != nil}
	if i.Roots != nil {
		t.X5CRoots = i.Roots
	} else {
		t.Keys = &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{i.PublicJWK()}}
	}
	return t
}

// PublicJWK is the issuer's public key (kid, alg ES256).
func (i *Issuer) PublicJWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: &i.Key.PublicKey, KeyID: i.KID, Algorithm: string(jose.ES256), Use: "sig"}
}

// IssueOptions tune Issue.
type IssueOptions struct {
	// Disclosable lists the selectively disclosable claim paths
	// (dot-separated, sdjwttest syntax). Nil: every top-level claim of
	// claims except "sub". vct, iss, cnf, status, iat and exp are never
	// disclosable (SD-JWT VC §2.2.2).
	Disclosable []string
	// Typ overrides the typ header (default dc+sd-jwt).
	Typ string
	// NoStatus omits the status claim.
	NoStatus bool
	// Lifetime sets exp = iat + Lifetime (default 24h).
	Lifetime time.Duration
}

// Credential is an issued SD-JWT VC and what a wallet needs to present it.
type Credential struct {
	*sdjwttest.Credential
	VCT string
	// Claims are the claims as issued (for DCQL selection).
	Claims map[string]any
	// StatusIdx is the status list index, -1 without status.
	StatusIdx int
	issuer    *Issuer
}

// ErrStatusFull: every status list entry is in use.
var ErrStatusFull = errors.New("dctest: status list full")

// Issue signs claims as a dc+sd-jwt SD-JWT VC (SD-JWT VC §2) bound to holder
// (cnf.jwk, RFC 7800), adding iss, vct, iat, exp and, with a status server,
// status.status_list{idx,uri} at the next free index (Token Status List
// §6.2).
func (i *Issuer) Issue(claims map[string]any, holder *jose.JSONWebKey, o IssueOptions) (*Credential, error) {
	all := make(map[string]any, len(claims)+6)
	var disclosable []string
	for k, v := range claims {
		all[k] = v
		if o.Disclosable == nil && k != "sub" {
			disclosable = append(disclosable, k)
		}
	}
	if o.Disclosable != nil {
		disclosable = o.Disclosable
	}
	for _, p := range disclosable {
		switch strings.SplitN(p, ".", 2)[0] {
		case "vct", "iss", "cnf", "status", "iat", "exp", "nbf":
			return nil, fmt.Errorf("dctest: %s must not be selectively disclosable (SD-JWT VC §2.2.2)", p)
		}
	}
	now := i.now()
	life := o.Lifetime
	if life <= 0 {
		life = 24 * time.Hour
	}
	all["iss"], all["vct"], all["iat"], all["exp"] = i.ID, i.VCT, now.Unix(), now.Add(life).Unix()
	idx := -1
	if i.srv != nil && !o.NoStatus {
		i.mu.Lock()
		if i.next >= len(i.list) {
			i.mu.Unlock()
			return nil, ErrStatusFull
		}
		idx = i.next
		i.next++
		i.mu.Unlock()
		all["status"] = map[string]any{"status_list": map[string]any{"idx": idx, "uri": i.StatusURI}}
	}
	so := sdjwttest.Options{Typ: o.Typ, Header: i.header()}
	if holder != nil {
		so.HolderKey = holder.Key
	}
	c, err := sdjwttest.Issue(all, disclosable, i.signingKey(), so)
	if err != nil {
		return nil, err
	}
	return &Credential{Credential: c, VCT: i.VCT, Claims: claims, StatusIdx: idx, issuer: i}, nil
}

func (i *Issuer) signingKey() jose.SigningKey {
	return jose.SigningKey{Algorithm: jose.ES256, Key: i.Key}
}

// header is kid, or x5c (leaf first, RFC 7515 §4.1.6) with an x5c chain.
func (i *Issuer) header() map[jose.HeaderKey]any {
	if i.Chain == nil {
		return map[jose.HeaderKey]any{"kid": i.KID}
	}
	x5c := make([]string, len(i.Chain))
	for n, c := range i.Chain {
		x5c[n] = base64.StdEncoding.EncodeToString(c.Raw)
	}
	return map[jose.HeaderKey]any{"x5c": x5c}
}

// resign re-signs an issuer JWT payload with a new typ: the wallet's evil
// knobs simulate an issuer that misbehaves (legacy typ, forbidden
// disclosures) so the refusal comes from the check under test, not from the
// signature.
func (i *Issuer) resign(typ string, payload map[string]any) (string, error) {
	hdr := i.header()
	hdr[jose.HeaderType] = typ
	return sdjwttest.Sign(i.signingKey(), hdr, payload)
}

// Revoke sets entry idx to INVALID (Token Status List §7.1).
func (i *Issuer) Revoke(idx int) { i.set(idx, byte(statuslist.Invalid)) }

// Suspend sets entry idx to SUSPENDED.
func (i *Issuer) Suspend(idx int) { i.set(idx, byte(statuslist.Suspended)) }

// Reinstate sets entry idx back to VALID.
func (i *Issuer) Reinstate(idx int) { i.set(idx, byte(statuslist.Valid)) }

func (i *Issuer) set(idx int, v byte) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if idx >= 0 && idx < len(i.list) {
		i.list[idx] = v
	}
}

// StatusFetches counts the status list requests served.
func (i *Issuer) StatusFetches() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.hits
}

// StatusToken is the current status list token (statuslist+jwt, TSL §5.1):
// sub = StatusURI, iat now, exp now+1h, ttl 60, bits 2, lst zlib-compressed
// and packed from the least significant bit (TSL §4.1).
func (i *Issuer) StatusToken() (string, error) {
	i.mu.Lock()
	packed := make([]byte, (len(i.list)*StatusBits+7)/8)
	for n, v := range i.list {
		bit := n * StatusBits
		packed[bit/8] |= v << (bit % 8)
	}
	i.mu.Unlock()
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	if _, err := zw.Write(packed); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	now := i.now()
	claims := map[string]any{"sub": i.StatusURI, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "ttl": 60,
		"status_list": map[string]any{"bits": StatusBits, "lst": base64.RawURLEncoding.EncodeToString(buf.Bytes())}}
	hdr := i.header()
	hdr[jose.HeaderType] = "statuslist+jwt"
	return sdjwttest.Sign(i.signingKey(), hdr, claims)
}

func (i *Issuer) serveStatus(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/status/1" || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	i.mu.Lock()
	i.hits++
	i.mu.Unlock()
	tok, err := i.StatusToken()
	if err != nil {
		http.Error(w, "status list unavailable", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/statuslist+jwt")
	_, _ = w.Write([]byte(tok))
}

// HTTPClient trusts the status server's TLS certificate (the httptest
// one), for verifiers that build their own statuslist.Client.
func (i *Issuer) HTTPClient() *http.Client {
	if i.srv == nil {
		return http.DefaultClient
	}
	return i.srv.Client()
}

// StatusClient is a statuslist.Client that reaches this issuer's status
// server (TLS on 127.0.0.1, trusted through the httptest certificate) and
// nothing else, verifying tokens with the issuer key. It caches: use a new
// client after Revoke/Suspend.
func (i *Issuer) StatusClient(now func() time.Time) (*statuslist.Client, error) {
	if i.srv == nil {
		return nil, errors.New("dctest: issuer has no status server")
	}
	pub := &i.Key.PublicKey
	return statuslist.NewClient(statuslist.Options{
		HTTP: i.srv.Client(),
		Key: func(uri string, _ jose.Header) (any, error) {
			if uri != i.StatusURI {
				return nil, errors.New("dctest: unknown status list")
			}
			return pub, nil
		},
		CheckURL: func(uri string) error {
			if uri != i.StatusURI {
				return statuslist.ErrForbiddenURI
			}
			return nil
		},
		Now: now,
	})
}

// payloadOf decodes the payload of a compact JWS without verifying it.
func payloadOf(jws string) (map[string]any, error) {
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		return nil, errors.New("dctest: not a compact JWS")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}
