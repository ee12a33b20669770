// Package dpop verifies and creates DPoP proofs (RFC 9449): the proof of
// possession a native client attaches so that its auth_session, its
// authorization code and its tokens are bound to its key (FiPA-04 §9.5.1,
// §9.6.1; docs/decisions.md "auth_session").
package dpop

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/fedas/fedas/internal/compactjws"
	"github.com/fedas/fedas/internal/jsonexact"
)

// ErrInvalidProof is wrapped by every verification failure; the server
// answers 400 invalid_dpop_proof (RFC 9449 §5).
var ErrInvalidProof = errors.New("dpop: invalid proof")

// ErrReplay is a proof whose jti was seen before (RFC 9449 §11.1).
var ErrReplay = fmt.Errorf("%w: jti already used", ErrInvalidProof)

// Algs are the proof algorithms we accept: asymmetric only, no RS256
// (FAPI 2.0 §5.4), never none or HS*.
var Algs = []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.PS256}

// Replay records jti values once. MarkUsed MUST return an error wrapping
// ErrReplay for a key already recorded (the server adapts its store).
type Replay interface {
	MarkUsed(ctx context.Context, key string, exp time.Time) error
}

// Verifier checks proofs.
type Verifier struct {
	Replay Replay
	// Now is the clock (tests).
	Now func() time.Time
	// Past and Future bound iat (defaults 60 s and 10 s).
	Past, Future time.Duration
}

// Proof is a verified proof.
type Proof struct {
	// JKT is the RFC 7638 SHA-256 thumbprint of the proof key, base64url.
	JKT string
}

type claims struct {
	JTI string `json:"jti"`
	HTM string `json:"htm"`
	HTU string `json:"htu"`
	IAT *int64 `json:"iat"`
	ATH string `json:"ath,omitempty"`
}

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidProof, fmt.Sprintf(format, a...))
}

// Verify checks one DPoP header value for a request (RFC 9449 §4.3):
// typ dpop+jwt, an allowed asymmetric alg, a public jwk that verifies the
// signature, htm and htu matching the request (htu without query and
// fragment), iat within the window, ath when an access token is
// presented, and a jti never seen before.
func (v *Verifier) Verify(ctx context.Context, header, method, htu, accessToken string) (Proof, error) {
	if header == "" || len(header) > 8192 || strings.Contains(header, ",") {
		return Proof{}, invalid("one DPoP header with one proof is required")
	}
	jws, err := jose.ParseSignedCompact(header, Algs)
	if err != nil {
		return Proof{}, invalid("not a signed JWT with an allowed algorithm")
	}
	if len(jws.Signatures) != 1 {
		return Proof{}, invalid("exactly one signature")
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "dpop+jwt" {
		return Proof{}, invalid("typ must be dpop+jwt")
	}
	if h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() || !h.JSONWebKey.Valid() {
		return Proof{}, invalid("a public jwk header is required")
	}
	payload, err := jws.Verify(h.JSONWebKey)
	if err != nil {
		return Proof{}, invalid("signature does not verify")
	}
	c, err := parseClaims(payload)
	if err != nil {
		return Proof{}, err
	}
	if c.JTI == "" || len(c.JTI) > 256 {
		return Proof{}, invalid("jti is required")
	}
	if c.HTM != method {
		return Proof{}, invalid("htm does not match the request method")
	}
	if !sameURI(c.HTU, htu) {
		return Proof{}, invalid("htu does not match the request URI")
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	past, future := v.Past, v.Future
	if past == 0 {
		past = 60 * time.Second
	}
	if future == 0 {
		future = 10 * time.Second
	}
	if c.IAT == nil {
		return Proof{}, invalid("iat is required")
	}
	iat := time.Unix(*c.IAT, 0)
	if iat.Before(now.Add(-past)) || iat.After(now.Add(future)) {
		return Proof{}, invalid("iat is outside the accepted window")
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		if c.ATH != base64.RawURLEncoding.EncodeToString(sum[:]) {
			return Proof{}, invalid("ath does not match the access token")
		}
	}
	tp, err := h.JSONWebKey.Thumbprint(crypto.SHA256)
	if err != nil {
		return Proof{}, invalid("cannot compute the key thumbprint")
	}
	jkt := base64.RawURLEncoding.EncodeToString(tp)
	if v.Replay != nil {
		// jti is client input: store a digest, scoped to the key.
		sum := sha256.Sum256([]byte(jkt + "|" + c.JTI))
		if err := v.Replay.MarkUsed(ctx, "dpop:"+base64.RawURLEncoding.EncodeToString(sum[:]), iat.Add(past+future)); err != nil {
			if errors.Is(err, ErrReplay) {
				return Proof{}, ErrReplay
			}
			return Proof{}, err
		}
	}
	return Proof{JKT: jkt}, nil
}

// parseClaims reads the claims by their exact names (internal/jsonexact):
// JWT claim names are case-sensitive (RFC 7519 §4), and encoding/json
// would take "HTM" for htm, accepting a proof without the required claim
// (RFC 9449 §4.3 item 3; SECURITY-RESULTS.md FZ).
func parseClaims(payload []byte) (claims, error) {
	var c claims
	if err := jsonexact.Unmarshal(payload, &c); err != nil {
		return claims{}, invalid("claims are not JSON")
	}
	return c, nil
}

// sameURI compares htu with the request URI per RFC 9449 §4.3 item 9:
// scheme and host case-insensitively, query and fragment ignored.
func sameURI(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	if err1 != nil || err2 != nil || ua.Host == "" {
		return false
	}
	return strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Host, ub.Host) && ua.EscapedPath() == ub.EscapedPath()
}

// Key is a client's DPoP key, for the SDK and tests.
type Key struct {
	signer jose.Signer
	fast   *compactjws.Signer // ES256 and EdDSA; signer otherwise
	alg    jose.SignatureAlgorithm
	JKT    string
}

// proofClaims are a proof's claims (RFC 9449 §4.2).
type proofClaims struct {
	JTI string `json:"jti"`
	HTM string `json:"htm"`
	HTU string `json:"htu"`
	IAT int64  `json:"iat"`
	ATH string `json:"ath,omitempty"`
}

// Alg is the key's proof algorithm.
func (k *Key) Alg() jose.SignatureAlgorithm { return k.alg }

// NewKey wraps a private key (ECDSA P-256 for ES256, ed25519 for EdDSA).
func NewKey(private any, alg jose.SignatureAlgorithm) (*Key, error) {
	jwk := jose.JSONWebKey{Key: private}
	pub := jwk.Public()
	k := &Key{alg: alg}
	if compactjws.Supported(private, alg) {
		// The header (typ, jwk) is the same for every proof: encoded once
		// (internal/compactjws; issue 13 profile).
		s, err := compactjws.New(private, alg, map[string]any{"typ": "dpop+jwt", "jwk": pub})
		if err != nil {
			return nil, err
		}
		k.fast = s
	} else {
		opts := (&jose.SignerOptions{EmbedJWK: false}).WithType("dpop+jwt").WithHeader("jwk", pub)
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: private}, opts)
		if err != nil {
			return nil, err
		}
		k.signer = s
	}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	k.JKT = base64.RawURLEncoding.EncodeToString(tp)
	return k, nil
}

// Proof makes a fresh proof for one request (RFC 9449 §4.2).
func (k *Key) Proof(method, htu, accessToken string) (string, error) {
	return k.ProofAt(method, htu, accessToken, time.Now())
}

// ProofAt is Proof with iat = now (RFC 9449 §4.2): for clients whose
// clock is not the system's (tests driving a server on a fake clock).
func (k *Key) ProofAt(method, htu, accessToken string, now time.Time) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	c := proofClaims{JTI: base64.RawURLEncoding.EncodeToString(b[:]), HTM: method, HTU: htu, IAT: now.Unix()}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		c.ATH = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	if k.fast != nil {
		return k.fast.Sign(payload)
	}
	jws, err := k.signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}
