package oid4vp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/fedas/fedas/dc/dcql"
	"github.com/fedas/fedas/dc/sdjwt"
	jose "github.com/go-jose/go-jose/v4"
)

// Response modes fedas supports (OpenID4VP 1.0 §8.2, §8.3, App. A.2).
const (
	ModeDirectPostJWT = "direct_post.jwt"
	ModeDCAPIJWT      = "dc_api.jwt"
	// ModeIAEPostJWT is OpenID4VCI 1.1 Interactive Authorization: the
	// wallet returns the encrypted response to the Interactive
	// Authorization Endpoint as openid4vp_response; expected_url names that
	// endpoint in signed requests.
	ModeIAEPostJWT = "iae_post.jwt"
)

// Client identifier prefixes (OpenID4VP 1.0 §5.9.3).
const (
	PrefixX509Hash    = "x509_hash:"
	PrefixRedirectURI = "redirect_uri:"
	PrefixOrigin      = "origin:"
)

// SelfIssuedAudience is the aud of request objects outside the DC API
// (OpenID4VP 1.0 §5.8, static discovery metadata).
const SelfIssuedAudience = "https://self-issued.me/v2"

// RequestObjectType is the JWS typ of request objects (OpenID4VP 1.0 §5).
const RequestObjectType = "oauth-authz-req+jwt"

// DefaultRequestLifetime bounds exp-iat of request objects when
// RequestParams.Lifetime is zero.
const DefaultRequestLifetime = 5 * time.Minute

const minNonceBytes = 16

// Sentinel errors of the request side.
var (
	ErrInvalidRequest = errors.New("oid4vp: invalid request parameters")
	ErrUnsignable     = errors.New("oid4vp: client_id prefix cannot be signed")
	ErrSigner         = errors.New("oid4vp: invalid signer")
)

// Signer signs request objects: an ES256 (P-256) key and its X.509 chain,
// leaf first. The client_id is x509_hash of the leaf (OpenID4VP 1.0 §5.9.3).
type Signer struct {
	Key   *ecdsa.PrivateKey
	Chain []*x509.Certificate
}

// RequestParams are the authorization request members (OpenID4VP 1.0 §5).
type RequestParams struct {
	// ClientID: empty for signed requests (computed from the signer), or
	// "redirect_uri:<uri>" for UnsignedRequest (tests only). A non-empty
	// x509_hash value must equal the computed one.
	ClientID     string
	ResponseMode string // ModeDirectPostJWT or ModeDCAPIJWT
	ResponseURI  string // direct_post.jwt only (§8.2)
	RedirectURI  string // always refused with direct_post.jwt (§8.2)
	Nonce        string // generated when empty (§5.2)
	State        string
	DCQLQuery    json.RawMessage // validated with dcql.Parse
	// EncryptionKey is the ephemeral key whose public half goes into
	// client_metadata.jwks (§8.3).
	EncryptionKey   *ResponseKey
	ExpectedOrigins []string // dc_api.jwt (App. A.2)
	ExpectedURL     string   // iae_post.jwt: the Interactive Authorization Endpoint
	TransactionData []string // base64url JSON objects, passed through (§8.4)
	WalletNonce     string   // echoed for request_uri_method=post (§5.10)
	Now             func() time.Time
	Lifetime        time.Duration
}

// ClientMetadata is the client_metadata member (OpenID4VP 1.0 §5.1, §11.1).
type ClientMetadata struct {
	JWKS               jose.JSONWebKeySet `json:"jwks"`
	EncValuesSupported []string           `json:"encrypted_response_enc_values_supported"`
	VPFormatsSupported map[string]any     `json:"vp_formats_supported,omitempty"`
}

// RequestObject is the payload of a request object, or the plain parameters
// of an unsigned request.
type RequestObject struct {
	ClientID        string          `json:"client_id,omitempty"`
	ResponseType    string          `json:"response_type"`
	ResponseMode    string          `json:"response_mode"`
	ResponseURI     string          `json:"response_uri,omitempty"`
	Nonce           string          `json:"nonce"`
	State           string          `json:"state,omitempty"`
	DCQLQuery       json.RawMessage `json:"dcql_query"`
	ClientMetadata  ClientMetadata  `json:"client_metadata"`
	ExpectedOrigins []string        `json:"expected_origins,omitempty"`
	ExpectedURL     string          `json:"expected_url,omitempty"`
	TransactionData []string        `json:"transaction_data,omitempty"`
	WalletNonce     string          `json:"wallet_nonce,omitempty"`
	Aud             string          `json:"aud,omitempty"`
	Iat             int64           `json:"iat,omitempty"`
	Exp             int64           `json:"exp,omitempty"`
}

// X509HashClientID returns "x509_hash:" + base64url(SHA-256(leaf DER))
// (OpenID4VP 1.0 §5.9.3).
func X509HashClientID(leaf *x509.Certificate) string {
	h := sha256.Sum256(leaf.Raw)
	return PrefixX509Hash + base64.RawURLEncoding.EncodeToString(h[:])
}

// Audience is the expected KB-JWT aud (OpenID4VP 1.0 §14.8, App. A.4):
// the full client_id with its prefix, or "origin:<origin>" for the DC API
// (where it applies even to signed requests). The origin is opaque.
func Audience(clientID, dcAPIOrigin string) string {
	if dcAPIOrigin != "" {
		return PrefixOrigin + dcAPIOrigin
	}
	return clientID
}

// NewNonce returns 16 random bytes, base64url (OpenID4VP 1.0 §5.2, §13.3).
func NewNonce() (string, error) {
	b := make([]byte, minNonceBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// URLSafe reports whether s is made of base64url characters only (the
// shape OpenID4VP §5.2 asks of a nonce, and of our ids).
func URLSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// build validates p and fills the members shared by signed and unsigned
// requests; one place for every rule of the request side.
func build(p RequestParams, signed bool) (*RequestObject, error) {
	if p.ExpectedURL != "" && p.ResponseMode != ModeIAEPostJWT {
		return nil, fmt.Errorf("%w: expected_url is for iae_post.jwt only", ErrInvalidRequest)
	}
	ro := &RequestObject{ResponseType: "vp_token", ResponseMode: p.ResponseMode, State: p.State,
		TransactionData: p.TransactionData, WalletNonce: p.WalletNonce}
	switch p.ResponseMode {
	case ModeDirectPostJWT:
		if p.RedirectURI != "" {
			return nil, fmt.Errorf("%w: redirect_uri is forbidden with direct_post.jwt (OpenID4VP §8.2)", ErrInvalidRequest)
		}
		u, err := url.Parse(p.ResponseURI)
		if p.ResponseURI == "" || err != nil || u.Scheme != "https" || u.Host == "" || u.Fragment != "" {
			return nil, fmt.Errorf("%w: direct_post.jwt needs an https response_uri", ErrInvalidRequest)
		}
		if len(p.ExpectedOrigins) != 0 {
			return nil, fmt.Errorf("%w: expected_origins is for the DC API only", ErrInvalidRequest)
		}
		ro.ResponseURI = p.ResponseURI
	case ModeDCAPIJWT:
		if p.ResponseURI != "" || p.RedirectURI != "" {
			return nil, fmt.Errorf("%w: response_uri/redirect_uri not used with dc_api.jwt", ErrInvalidRequest)
		}
		if signed && len(p.ExpectedOrigins) == 0 {
			return nil, fmt.Errorf("%w: signed dc_api.jwt requests need expected_origins (OpenID4VP App. A.2)", ErrInvalidRequest)
		}
		for _, o := range p.ExpectedOrigins {
			if o == "" {
				return nil, fmt.Errorf("%w: empty expected origin", ErrInvalidRequest)
			}
		}
		ro.ExpectedOrigins = p.ExpectedOrigins
	case ModeIAEPostJWT:
		if p.ResponseURI != "" || len(p.ExpectedOrigins) != 0 {
			return nil, fmt.Errorf("%w: response_uri/expected_origins not used with iae_post.jwt", ErrInvalidRequest)
		}
		u, err := url.Parse(p.ExpectedURL)
		if signed && (p.ExpectedURL == "" || err != nil || u.Scheme != "https" || u.Host == "") {
			return nil, fmt.Errorf("%w: signed iae_post.jwt requests need an https expected_url", ErrInvalidRequest)
		}
		ro.ExpectedURL = p.ExpectedURL
	default:
		return nil, fmt.Errorf("%w: unsupported response_mode", ErrInvalidRequest)
	}
	if p.RedirectURI != "" {
		return nil, fmt.Errorf("%w: redirect_uri is not used", ErrInvalidRequest)
	}
	ro.Nonce = p.Nonce
	if ro.Nonce == "" {
		n, err := NewNonce()
		if err != nil {
			return nil, err
		}
		ro.Nonce = n
	} else if len(ro.Nonce) < 22 || !URLSafe(ro.Nonce) {
		return nil, fmt.Errorf("%w: nonce must be >= 16 bytes of base64url", ErrInvalidRequest)
	}
	if p.State != "" && !URLSafe(p.State) {
		return nil, fmt.Errorf("%w: state must be URL-safe", ErrInvalidRequest)
	}
	if _, err := dcql.Parse(p.DCQLQuery); err != nil {
		return nil, fmt.Errorf("%w: dcql_query: %w", ErrInvalidRequest, err)
	}
	ro.DCQLQuery = p.DCQLQuery
	if p.EncryptionKey == nil {
		return nil, fmt.Errorf("%w: an encryption key is required (*.jwt modes)", ErrInvalidRequest)
	}
	ro.ClientMetadata = ClientMetadata{
		JWKS:               jose.JSONWebKeySet{Keys: []jose.JSONWebKey{p.EncryptionKey.PublicJWK()}},
		EncValuesSupported: []string{string(jose.A128GCM), string(jose.A256GCM)},
		VPFormatsSupported: vpFormatsSupported(),
	}
	return ro, nil
}

// vpFormatsSupported advertises the dc+sd-jwt algorithms dc/sdjwt accepts
// (OpenID4VP 1.0 §11.1, App. B.3.4: sd-jwt_alg_values, kb-jwt_alg_values),
// taken from that package so the advertisement and the check never differ.
func vpFormatsSupported() map[string]any {
	var algs []string
	for _, a := range sdjwt.AllowedAlgs() {
		algs = append(algs, string(a))
	}
	return map[string]any{"dc+sd-jwt": map[string]any{"sd-jwt_alg_values": algs, "kb-jwt_alg_values": algs}}
}

// UnsignedRequest returns the plain request parameters of an unsigned
// request: client_id "redirect_uri:<uri>" with direct_post.jwt (tests only;
// such a client_id cannot be signed, §5.9.3), or no client_id with
// dc_api.jwt (the openid4vp-v1-unsigned DC API protocol, App. A.2).
func UnsignedRequest(p RequestParams) (*RequestObject, error) {
	switch {
	case p.ResponseMode == ModeDCAPIJWT && p.ClientID == "":
	case p.ResponseMode == ModeDirectPostJWT && strings.HasPrefix(p.ClientID, PrefixRedirectURI):
		// §5.9.3: with direct_post the redirect_uri: value is the response_uri.
		if p.ClientID[len(PrefixRedirectURI):] != p.ResponseURI {
			return nil, fmt.Errorf("%w: redirect_uri client_id must equal response_uri", ErrInvalidRequest)
		}
	default:
		return nil, fmt.Errorf("%w: unsigned requests use redirect_uri: (direct_post.jwt) or no client_id (dc_api.jwt)", ErrInvalidRequest)
	}
	ro, err := build(p, false)
	if err != nil {
		return nil, err
	}
	ro.ClientID = p.ClientID
	return ro, nil
}

// SignRequest builds and signs a request object (RFC 9101; OpenID4VP 1.0
// §5): ES256, typ oauth-authz-req+jwt, x5c chain, client_id x509_hash of the
// leaf. A redirect_uri: client_id yields ErrUnsignable (use UnsignedRequest).
func SignRequest(p RequestParams, s Signer) (string, error) {
	if strings.HasPrefix(p.ClientID, PrefixRedirectURI) {
		return "", ErrUnsignable
	}
	if s.Key == nil || len(s.Chain) == 0 || s.Chain[0] == nil {
		return "", fmt.Errorf("%w: key and certificate chain required", ErrSigner)
	}
	if s.Key.Curve != elliptic.P256() {
		return "", fmt.Errorf("%w: ES256 (P-256) only", ErrSigner)
	}
	leafKey, ok := s.Chain[0].PublicKey.(*ecdsa.PublicKey)
	if !ok || !leafKey.Equal(&s.Key.PublicKey) {
		return "", fmt.Errorf("%w: leaf certificate does not hold the signing key", ErrSigner)
	}
	cid := X509HashClientID(s.Chain[0])
	if p.ClientID != "" && p.ClientID != cid {
		return "", fmt.Errorf("%w: client_id does not match the signer's leaf certificate", ErrInvalidRequest)
	}
	ro, err := build(p, true)
	if err != nil {
		return "", err
	}
	ro.ClientID = cid
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	life := p.Lifetime
	if life <= 0 {
		life = DefaultRequestLifetime
	}
	t := now()
	ro.Iat, ro.Exp = t.Unix(), t.Add(life).Unix()
	if p.ResponseMode != ModeDCAPIJWT {
		ro.Aud = SelfIssuedAudience
	}
	payload, err := json.Marshal(ro)
	if err != nil {
		return "", err
	}
	x5c := make([]string, len(s.Chain))
	for i, c := range s.Chain {
		x5c[i] = base64.StdEncoding.EncodeToString(c.Raw)
	}
	opts := (&jose.SignerOptions{}).WithType(RequestObjectType).WithHeader("x5c", x5c)
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: s.Key}, opts)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrSigner, err)
	}
	jws, err := sg.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrSigner, err)
	}
	return jws.CompactSerialize()
}
