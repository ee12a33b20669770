package par

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/fedas/fedas/internal/compactjws"
)

// ClientAssertionType is the client_assertion_type value for JWT client
// authentication (RFC 7523 §2.2).
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// MaxAssertionLifetime caps exp-iat of a client assertion. RFC 7523 §3 only
// asks for a "reasonable" lifetime; we keep it at 60 s (SECURITY-RESULTS.md B04) so a
// captured assertion is useful to an attacker for at most a minute.
const MaxAssertionLifetime = 60 * time.Second

// ClientAuth authenticates fedas to a downstream AS. The same method is used
// at the PAR and the token endpoint: RFC 9126 §2.1 applies the token
// endpoint's client authentication rules to the PAR endpoint.
//
// Apply adds the credentials to req (headers) or to form (body parameters)
// before the form is encoded. audience is the downstream's issuer identifier;
// JWT-based methods MUST put it in aud (RFC 9126 §2), never an endpoint URL,
// so an assertion captured by one downstream cannot be replayed at another
// (SECURITY-RESULTS.md B07).
type ClientAuth interface {
	Apply(req *http.Request, form url.Values, audience string) error
}

// clientIDer lets the Client check that the client_id it sends matches the
// identity the credentials authenticate, so a configuration slip fails
// locally instead of as an opaque invalid_client downstream.
type clientIDer interface {
	clientID() string
}

// PrivateKeyJWT is the private_key_jwt client authentication method
// (OIDC Core §9, RFC 7523 §2.2): each request carries a freshly signed,
// short-lived JWT. Asymmetric client authentication is the RECOMMENDED
// method (RFC 9700 §2.5) because the downstream never holds a secret that
// could impersonate us.
//
// Build it with NewPrivateKeyJWT, which validates the key once and caches the
// signer; do not change the fields afterwards. It is safe for concurrent use.
type PrivateKeyJWT struct {
	// ClientID is our client_id at the downstream; it is iss and sub of the
	// assertion (RFC 7523 §3 items 1 and 2).
	ClientID string
	// Key is the private signing key. KeyID and Algorithm must be set;
	// Algorithm must be ES256, PS256 or EdDSA.
	Key jose.JSONWebKey
	// Lifetime is exp-iat. Zero means MaxAssertionLifetime; larger values are
	// clamped to it.
	Lifetime time.Duration

	signer signFunc
	now    func() time.Time // tests only
}

// allowedAlgs are the signing algorithms we emit. RS256 is excluded because
// it is 30-50x slower to sign (docs/performance.md trap 2) and PKCS#1 v1.5 is not
// allowed by FAPI 2.0; HS* would need a shared secret and "none" is no
// authentication at all.
var allowedAlgs = map[jose.SignatureAlgorithm]bool{
	jose.ES256: true,
	jose.PS256: true,
	jose.EdDSA: true,
}

// NewPrivateKeyJWT validates key and returns a ready PrivateKeyJWT
// (RFC 7523 §2.2). It rejects public keys, keys without a kid, any algorithm
// other than ES256, PS256 and EdDSA, and keys whose type does not match the
// algorithm (for instance a P-384 key labelled ES256 or an RSA key shorter
// than 2048 bits).
func NewPrivateKeyJWT(clientID string, key jose.JSONWebKey) (*PrivateKeyJWT, error) {
	if clientID == "" {
		return nil, errors.New("par: private_key_jwt: empty client_id")
	}
	signer, err := newAssertionSigner(key)
	if err != nil {
		return nil, err
	}
	return &PrivateKeyJWT{ClientID: clientID, Key: key, Lifetime: MaxAssertionLifetime, signer: signer}, nil
}

// signFunc returns the compact JWS of a payload.
type signFunc func(payload []byte) (string, error)

func newAssertionSigner(key jose.JSONWebKey) (signFunc, error) {
	alg := jose.SignatureAlgorithm(key.Algorithm)
	if !allowedAlgs[alg] {
		return nil, fmt.Errorf("par: private_key_jwt: algorithm %q not allowed (want ES256, PS256 or EdDSA)", key.Algorithm)
	}
	if key.KeyID == "" {
		// The downstream picks the verification key from our JWKS by kid;
		// without it rotation breaks.
		return nil, errors.New("par: private_key_jwt: key has no kid")
	}
	if key.Use != "" && key.Use != "sig" {
		return nil, fmt.Errorf("par: private_key_jwt: key use %q is not sig", key.Use)
	}
	if key.IsPublic() || !key.Valid() {
		return nil, errors.New("par: private_key_jwt: key is not a valid private key")
	}
	switch k := key.Key.(type) {
	case *ecdsa.PrivateKey:
		if alg != jose.ES256 || k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("par: private_key_jwt: EC key on %s does not match %s", k.Curve.Params().Name, alg)
		}
	case *rsa.PrivateKey:
		if alg != jose.PS256 {
			return nil, fmt.Errorf("par: private_key_jwt: RSA key does not match %s", alg)
		}
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("par: private_key_jwt: RSA key of %d bits is shorter than 2048", k.N.BitLen())
		}
	case ed25519.PrivateKey:
		if alg != jose.EdDSA {
			return nil, fmt.Errorf("par: private_key_jwt: Ed25519 key does not match %s", alg)
		}
	default:
		return nil, fmt.Errorf("par: private_key_jwt: unsupported key type %T", key.Key)
	}
	if compactjws.Supported(key.Key, alg) {
		// ES256 and EdDSA: the header {"alg","kid"} is encoded once, not
		// on every assertion (internal/compactjws; issue 13 profile).
		s, err := compactjws.New(key.Key, alg, map[string]any{"kid": key.KeyID})
		if err != nil {
			return nil, fmt.Errorf("par: private_key_jwt: %w", err)
		}
		return s.Sign, nil
	}
	// Passing the JSONWebKey (not the raw key) makes go-jose put its kid in
	// the protected header.
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, nil)
	if err != nil {
		return nil, fmt.Errorf("par: private_key_jwt: %w", err)
	}
	return func(payload []byte) (string, error) {
		jws, err := s.Sign(payload)
		if err != nil {
			return "", err
		}
		return jws.CompactSerialize()
	}, nil
}

func (p *PrivateKeyJWT) clientID() string { return p.ClientID }

// assertionClaims is serialised by hand rather than with go-jose/jwt.Claims
// so that aud is always a plain JSON string holding the issuer (RFC 9126 §2
// recommends the issuer as audience; the RFC 7523 update, rfc7523bis, makes
// a single-string issuer aud mandatory). Some ASes reject an array, and a
// multi-valued or endpoint aud is what audience-injection attacks exploit.
type assertionClaims struct {
	Iss string `json:"iss"`
	Sub string `json:"sub"`
	Aud string `json:"aud"`
	Jti string `json:"jti"`
	Iat int64  `json:"iat"`
	Exp int64  `json:"exp"`
}

// Apply signs a new client assertion for audience and adds client_assertion
// and client_assertion_type to form (RFC 7523 §2.2). Every call uses a new
// 128-bit random jti, so the downstream can reject replays (RFC 7523 §3
// item 7).
func (p *PrivateKeyJWT) Apply(_ *http.Request, form url.Values, audience string) error {
	if p.ClientID == "" {
		return errors.New("par: private_key_jwt: empty client_id")
	}
	if audience == "" {
		return errors.New("par: private_key_jwt: empty audience")
	}
	signer := p.signer
	if signer == nil {
		// Built as a struct literal: validate on every call rather than
		// trusting an unchecked key. NewPrivateKeyJWT avoids this cost.
		var err error
		if signer, err = newAssertionSigner(p.Key); err != nil {
			return err
		}
	}
	tok, err := p.sign(signer, audience)
	if err != nil {
		return err
	}
	if form.Get("client_id") == "" {
		form.Set("client_id", p.ClientID)
	}
	form.Set("client_assertion_type", ClientAssertionType)
	form.Set("client_assertion", tok)
	return nil
}

func (p *PrivateKeyJWT) sign(signer signFunc, audience string) (string, error) {
	life := p.Lifetime
	if life <= 0 || life > MaxAssertionLifetime {
		life = MaxAssertionLifetime
	}
	secs := int64(life / time.Second)
	if secs < 1 {
		secs = 1
	}
	now := time.Now
	if p.now != nil {
		now = p.now
	}
	iat := now().Unix()
	var jti [16]byte
	_, _ = rand.Read(jti[:]) // never fails since Go 1.24
	payload, err := json.Marshal(assertionClaims{
		Iss: p.ClientID,
		Sub: p.ClientID,
		Aud: audience,
		Jti: base64.RawURLEncoding.EncodeToString(jti[:]),
		Iat: iat,
		Exp: iat + secs,
	})
	if err != nil {
		return "", fmt.Errorf("par: private_key_jwt: %w", err)
	}
	tok, err := signer(payload)
	if err != nil {
		return "", fmt.Errorf("par: private_key_jwt: sign: %w", err)
	}
	return tok, nil
}

// ClientSecretBasic is the client_secret_basic method (RFC 6749 §2.3.1):
// HTTP Basic with the client_id and secret each form-urlencoded first
// (RFC 6749 Appendix B), which net/http's SetBasicAuth does not do. Prefer
// PrivateKeyJWT (RFC 9700 §2.5); this exists for downstreams that support
// nothing else.
type ClientSecretBasic struct {
	ClientID string
	Secret   string
}

func (b ClientSecretBasic) clientID() string { return b.ClientID }

// Apply sets the Authorization header (RFC 6749 §2.3.1). audience is unused:
// a shared secret is not bound to an audience, which is why asymmetric
// methods are preferred.
func (b ClientSecretBasic) Apply(req *http.Request, form url.Values, _ string) error {
	if b.ClientID == "" || b.Secret == "" {
		return errors.New("par: client_secret_basic: empty client_id or secret")
	}
	// RFC 6749 §2.3: no more than one authentication method per request.
	form.Del("client_secret")
	form.Del("client_assertion")
	form.Del("client_assertion_type")
	cred := url.QueryEscape(b.ClientID) + ":" + url.QueryEscape(b.Secret)
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(cred)))
	return nil
}

// String hides the secret from %v and %s, so a logged config never leaks it.
func (b ClientSecretBasic) String() string {
	return "ClientSecretBasic{ClientID:" + strconv.Quote(b.ClientID) + ", Secret:REDACTED}"
}

// GoString hides the secret from %#v for the same reason as String.
func (b ClientSecretBasic) GoString() string { return b.String() }
