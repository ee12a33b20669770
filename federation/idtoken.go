package federation

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/fedas/fedas/internal/jsonexact"
)

// ErrInvalidIDToken matches every *IDTokenError: the downstream's ID Token
// failed OpenID Connect Core §3.1.3.7 validation. The hop must fail and the
// auth_session be invalidated; no code may be issued on it (SECURITY-RESULTS.md
// B13). It does not match ErrUnavailable: a JWKS that cannot be fetched is
// reported as ErrUnavailable instead, since it proves nothing about the
// token.
var ErrInvalidIDToken = errors.New("federation: invalid ID token")

const (
	// DefaultIDTokenLeeway is the clock skew tolerated on exp, iat and nbf
	// when IDTokenParams.Leeway is zero (RFC 7519 §4.1.4 "small leeway").
	DefaultIDTokenLeeway = 60 * time.Second
	// maxIDTokenLen bounds the compact token before any parsing; real ID
	// Tokens are 1-3 KiB.
	maxIDTokenLen = 32 << 10
	// maxSubjectLen is the OIDC Core §2 limit on "sub".
	maxSubjectLen = 255
)

// defaultIDTokenAlgs are the FAPI 2.0 Security Profile §5.4.1 algorithms.
// RS256 is allowed only when listed explicitly (OIDC Core §15.1 makes it
// mandatory to implement, FAPI forbids it).
var defaultIDTokenAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.PS256, jose.EdDSA}

// IDTokenParams says what VerifyIDToken expects of one ID Token. Issuer,
// ClientID, JWKSURI and Keys come from the federation hop pinned at
// federation time (docs/decisions.md Q8), never from the token or the request.
type IDTokenParams struct {
	// Issuer is the downstream issuer the hop is bound to; "iss" must equal
	// it exactly (OIDC Core §3.1.3.7 step 2).
	Issuer string
	// ClientID is our client_id at the downstream; "aud" must contain it
	// (step 3) and "azp", when present or required, must equal it (steps
	// 4-5).
	ClientID string
	// Nonce is the nonce we sent in the PAR. When set, "nonce" must equal
	// it (OIDC Core §3.1.3.7 step 11; RFC 9700 §4.5.3.2 code injection).
	Nonce string
	// JWKSURI is the downstream's validated jwks_uri (RFC 8414 §2).
	JWKSURI string
	// Keys fetches and caches the JWK Set.
	Keys *JWKSCache
	// Algs is the "alg" allow-list (RFC 8725 §3.1). Empty means ES256,
	// PS256 and EdDSA. "none" and HS* are refused even if listed: an HMAC
	// "verified" with a public key is the classic alg-confusion forgery.
	Algs []jose.SignatureAlgorithm
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Leeway is the clock skew allowed on exp, iat and nbf; zero means
	// DefaultIDTokenLeeway.
	Leeway time.Duration
}

// IDClaims are the validated claims of an ID Token (OIDC Core §2).
type IDClaims struct {
	// Subject is "sub": the user at the downstream, unique only together
	// with Issuer (OIDC Core §2).
	Subject string
	// Issuer is "iss", equal to IDTokenParams.Issuer.
	Issuer string
	// Audience is "aud", always containing IDTokenParams.ClientID.
	Audience []string
	// Expiry is "exp".
	Expiry time.Time
	// IssuedAt is "iat".
	IssuedAt time.Time
	// AuthTime is "auth_time", zero when absent (needed for max_age and
	// step-up, RFC 9470 §4).
	AuthTime time.Time
	// Nonce is "nonce".
	Nonce string
	// AMR is "amr" (RFC 8176).
	AMR []string
	// ACR is "acr", checked by the caller against a requested acr_values
	// (RFC 9470 §4).
	ACR string
	// Extra holds every other claim (azp, jti, nbf, email, ...).
	Extra map[string]any
}

// IDTokenError is one failed ID Token check (OIDC Core §3.1.3.7). It
// matches ErrInvalidIDToken, and ErrUnknownKey when the kid was unknown.
// Its text never contains the token or the expected nonce; token-supplied
// values in it are quoted and capped.
type IDTokenError struct {
	// Check names the failed check: "malformed", "alg", "kid",
	// "signature", "iss", "sub", "aud", "azp", "exp", "iat", "nbf" or
	// "nonce".
	Check string
	// Detail explains the failure for logs.
	Detail string

	cause error
}

// Error formats the failure for logs.
func (e *IDTokenError) Error() string {
	s := ErrInvalidIDToken.Error() + ": " + e.Check
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

// Unwrap exposes the cause (for instance ErrUnknownKey).
func (e *IDTokenError) Unwrap() error { return e.cause }

// Is makes errors.Is(err, ErrInvalidIDToken) true.
func (e *IDTokenError) Is(target error) bool { return target == ErrInvalidIDToken }

func invalid(check, detail string, cause error) *IDTokenError {
	return &IDTokenError{Check: check, Detail: detail, cause: cause}
}

// idExtra are the OIDC Core §2 claims go-jose's jwt.Claims lacks.
type idExtra struct {
	Nonce    string           `json:"nonce"`
	AuthTime *jwt.NumericDate `json:"auth_time"`
	AMR      []string         `json:"amr"`
	ACR      string           `json:"acr"`
	AZP      string           `json:"azp"`
}

// mappedClaims are moved out of Extra into IDClaims fields.
var mappedClaims = []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr", "acr"}

// VerifyIDToken validates a downstream ID Token as OpenID Connect Core
// §3.1.3.7 requires of a client (SECURITY-RESULTS.md B13): JWS compact
// serialization only (encrypted tokens are not supported), "alg" from the
// allow-list (RFC 8725 §3.1), a "kid" (RFC 7515 §4.1.4) present in the
// downstream's JWK Set, a valid signature by that key, "iss" equal to
// p.Issuer, "aud" containing p.ClientID, "azp" equal to p.ClientID when
// present and required with several audiences, "exp" in the future and
// "iat" not in the future (both with leeway), "nbf" if present, a
// non-empty "sub", and "nonce" equal to p.Nonce when p.Nonce is set.
//
// Token failures are *IDTokenError (ErrInvalidIDToken). A JWK Set that
// cannot be fetched yields an error matching ErrUnavailable. Invalid params
// yield an error matching neither: that is our bug.
func VerifyIDToken(ctx context.Context, raw string, p IDTokenParams) (IDClaims, error) {
	algs, err := p.validate()
	if err != nil {
		return IDClaims{}, err
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	leeway := p.Leeway
	if leeway <= 0 {
		leeway = DefaultIDTokenLeeway
	}

	if len(raw) > maxIDTokenLen {
		return IDClaims{}, invalid("malformed", "token too large", nil)
	}
	tok, err := jwt.ParseSigned(raw, algs)
	if err != nil {
		if alg, ok := headerAlg(raw); ok && !slices.Contains(algs, jose.SignatureAlgorithm(alg)) {
			return IDClaims{}, invalid("alg", "alg "+logSafe(alg)+" not allowed", nil)
		}
		return IDClaims{}, invalid("malformed", "not a JWS compact serialization", err)
	}
	if len(tok.Headers) != 1 {
		return IDClaims{}, invalid("malformed", "expected exactly one signature", nil)
	}
	h := tok.Headers[0]
	if h.KeyID == "" {
		return IDClaims{}, invalid("kid", "no kid in header", nil)
	}
	key, err := p.Keys.Key(ctx, p.JWKSURI, h.KeyID)
	if err != nil {
		if errors.Is(err, ErrUnknownKey) {
			return IDClaims{}, invalid("kid", "", err)
		}
		return IDClaims{}, fmt.Errorf("federation: fetching ID token key: %w", err)
	}
	if key.Algorithm != "" && key.Algorithm != h.Algorithm {
		// RFC 7517 §4.4: a key published for one alg must not verify
		// another.
		return IDClaims{}, invalid("alg", "alg "+logSafe(h.Algorithm)+" does not match the key's alg "+logSafe(key.Algorithm), nil)
	}

	var payload json.RawMessage
	if err := tok.Claims(key, &payload); err != nil {
		if errors.Is(err, jose.ErrCryptoFailure) {
			return IDClaims{}, invalid("signature", "signature does not verify", nil)
		}
		return IDClaims{}, invalid("malformed", "payload", err)
	}
	var (
		std jwt.Claims
		ext idExtra
	)
	// Claim names are case-sensitive (RFC 7519 §4): encoding/json would
	// read "Iss" as iss (SECURITY-RESULTS.md FZ). The payload is split into
	// its members once; the registered claims, the OIDC claims and the rest
	// are read from that one split.
	members, err := jsonexact.Members(payload)
	if err != nil {
		return IDClaims{}, invalid("malformed", "claims are not a JSON object", err)
	}
	if err := jsonexact.Fill(members, &std); err != nil {
		return IDClaims{}, invalid("malformed", "registered claims", err)
	}
	if err := jsonexact.Fill(members, &ext); err != nil {
		return IDClaims{}, invalid("malformed", "OIDC claims", err)
	}
	if members == nil {
		return IDClaims{}, invalid("malformed", "claims are not a JSON object", nil)
	}

	t := now()
	switch {
	case std.Issuer != p.Issuer:
		// Exact match (OIDC Core §3.1.3.7 step 2); also the mix-up check
		// (RFC 9700 §4.4.2): the token must come from the pinned issuer.
		return IDClaims{}, invalid("iss", "iss is "+logSafe(std.Issuer), nil)
	case std.Subject == "" || len(std.Subject) > maxSubjectLen:
		return IDClaims{}, invalid("sub", "sub missing or longer than 255", nil)
	case !std.Audience.Contains(p.ClientID):
		return IDClaims{}, invalid("aud", "aud does not contain our client_id", nil)
	case len(std.Audience) > 1 && ext.AZP == "":
		return IDClaims{}, invalid("azp", "several audiences and no azp", nil)
	case ext.AZP != "" && ext.AZP != p.ClientID:
		return IDClaims{}, invalid("azp", "azp is not our client_id", nil)
	case std.Expiry == nil:
		return IDClaims{}, invalid("exp", "exp missing", nil)
	case !t.Before(std.Expiry.Time().Add(leeway)):
		return IDClaims{}, invalid("exp", "token expired", nil)
	case std.IssuedAt == nil:
		return IDClaims{}, invalid("iat", "iat missing", nil)
	case std.IssuedAt.Time().After(t.Add(leeway)):
		return IDClaims{}, invalid("iat", "iat in the future", nil)
	case std.NotBefore != nil && std.NotBefore.Time().After(t.Add(leeway)):
		return IDClaims{}, invalid("nbf", "token not yet valid", nil)
	case p.Nonce != "" && subtle.ConstantTimeCompare([]byte(ext.Nonce), []byte(p.Nonce)) != 1:
		return IDClaims{}, invalid("nonce", "nonce missing or different", nil)
	}

	all := make(map[string]any, len(members))
	for name, raw := range members {
		if slices.Contains(mappedClaims, name) {
			continue
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return IDClaims{}, invalid("malformed", "claim value", err)
		}
		all[name] = v
	}
	var authTime time.Time
	if ext.AuthTime != nil {
		authTime = ext.AuthTime.Time()
	}
	return IDClaims{
		Subject:  std.Subject,
		Issuer:   std.Issuer,
		Audience: []string(std.Audience),
		Expiry:   std.Expiry.Time(),
		IssuedAt: std.IssuedAt.Time(),
		AuthTime: authTime,
		Nonce:    ext.Nonce,
		AMR:      ext.AMR,
		ACR:      ext.ACR,
		Extra:    all,
	}, nil
}

// validate checks the caller's params and returns the effective alg list.
func (p IDTokenParams) validate() ([]jose.SignatureAlgorithm, error) {
	switch {
	case p.Issuer == "":
		return nil, errors.New("federation: VerifyIDToken: empty Issuer")
	case p.ClientID == "":
		return nil, errors.New("federation: VerifyIDToken: empty ClientID")
	case p.JWKSURI == "":
		return nil, errors.New("federation: VerifyIDToken: empty JWKSURI")
	case p.Keys == nil:
		return nil, errors.New("federation: VerifyIDToken: nil Keys")
	}
	if len(p.Algs) == 0 {
		return defaultIDTokenAlgs, nil
	}
	for _, a := range p.Algs {
		if a == "" || strings.EqualFold(string(a), "none") || strings.HasPrefix(strings.ToUpper(string(a)), "HS") {
			return nil, fmt.Errorf("federation: VerifyIDToken: alg %q may never be allowed (RFC 8725 §3.1)", a)
		}
	}
	return p.Algs, nil
}

// headerAlg reads "alg" from an unverified compact JWS header, only to
// report a disallowed algorithm precisely.
func headerAlg(raw string) (string, bool) {
	head, _, ok := strings.Cut(raw, ".")
	if !ok {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return "", false
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(b, &h) != nil {
		return "", false
	}
	return h.Alg, true
}
