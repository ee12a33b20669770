package uq

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// ErrInvalidUST is wrapped by every refusal of Sign and Verify.
var ErrInvalidUST = errors.New("uq: invalid user statement token")

// Claims are the User Statement Token's claims (-10 §2), exactly these:
// the spec's, plus iat and jti (RFC 7519 §4.1.6, §4.1.7). aud is always an
// array; user_id and user_id_type are present iff the request carried
// them; used_amr and used_acr are always present (MANDATORY in -10).
type Claims struct {
	QuestionID          string   `json:"question_id"`
	Issuer              string   `json:"iss"`
	Subject             string   `json:"sub"`
	Audience            []string `json:"aud"`
	UserID              string   `json:"user_id,omitempty"`
	UserIDType          string   `json:"user_id_type,omitempty"`
	QuestionDisplayed   string   `json:"question_displayed"`
	DisplayedStatements []string `json:"displayed_statements"`
	Statement           string   `json:"statement"`
	StatementDate       int64    `json:"statement_date"`
	UsedAMR             []string `json:"used_amr"`
	UsedACR             string   `json:"used_acr"`
	IssuedAt            int64    `json:"iat"`
	JTI                 string   `json:"jti"`
}

// check says why c is not a well-formed UST claim set, or "".
func (c *Claims) check() string {
	switch {
	case c.QuestionID == "":
		return "question_id missing"
	case c.Issuer == "":
		return "iss missing"
	case !isSub(c.Subject):
		return "sub must be 1 to 255 printable ASCII characters"
	case len(c.Audience) == 0 || slices.Contains(c.Audience, ""):
		return "aud must be a non-empty array of client ids"
	case (c.UserID == "") != (c.UserIDType == ""):
		return "user_id and user_id_type go together"
	case c.QuestionDisplayed == "":
		return "question_displayed missing"
	case len(c.DisplayedStatements) == 0:
		return "displayed_statements missing"
	case !slices.Contains(c.DisplayedStatements, c.Statement):
		return "statement is not among displayed_statements"
	case c.StatementDate <= 0:
		return "statement_date missing"
	case len(c.UsedAMR) == 0 || slices.Contains(c.UsedAMR, ""):
		return "used_amr missing"
	case c.UsedACR == "":
		return "used_acr missing"
	case c.IssuedAt <= 0:
		return "iat missing"
	}
	return ""
}

// Signer signs USTs with one P-256 key under a kid (-10 §2: asymmetric
// only; the key is found through the OP's jwks_uri by kid).
type Signer struct {
	s jose.Signer
}

// NewSigner returns a Signer for an ES256 key. The protected header is
// exactly {"alg":"ES256","kid":kid,"typ":"JWT"} ("JWT" as in the -10
// example): never x5c, x5u, jku or jwk, which -10 §2 says SHOULD NOT be
// used (keys come from discovery).
func NewSigner(kid string, key *ecdsa.PrivateKey) (*Signer, error) {
	if kid == "" || key == nil || key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: a kid and a P-256 key are required", ErrInvalidUST)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), kid))
	if err != nil {
		return nil, err
	}
	return &Signer{s: s}, nil
}

// Sign serializes and signs c (compact JWS). It refuses a claim set
// missing anything -10 §2 makes mandatory, or whose statement is not
// among displayed_statements; an empty JTI is filled with 128 random
// bits. IssuedAt and StatementDate come from the caller's clock.
func Sign(c Claims, s *Signer) (string, error) {
	if s == nil {
		return "", fmt.Errorf("%w: no signer", ErrInvalidUST)
	}
	if c.JTI == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		c.JTI = base64.RawURLEncoding.EncodeToString(b)
	}
	if why := c.check(); why != "" {
		return "", fmt.Errorf("%w: %s", ErrInvalidUST, why)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	jws, err := s.s.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// Expect is what the client sent and must find in the UST (-10 §2.1).
type Expect struct {
	// ClientID must be in aud.
	ClientID string
	// QuestionID must equal question_id.
	QuestionID string
	// Issuer, when set, must equal iss.
	Issuer string
	// Question and Statements must equal question_displayed and
	// displayed_statements exactly (the user saw what was asked).
	Question   string
	Statements []string
	// UserID and UserIDType: the request's; present in the UST iff set.
	UserID, UserIDType string
}

// forbiddenHeaders: key-carrying headers (-10 §2: SHOULD NOT be used; a
// verifier that honoured them would let the token pick its own key) and
// crit (no extension is understood here, RFC 7515 §4.1.11).
var forbiddenHeaders = []string{"jwk", "jku", "x5c", "x5u", "x5t", "x5t#S256", "crit"}

// Verify checks a UST the way a client must (-10 §2.1) and returns its
// claims: compact JWS, protected header {alg: ES256, typ: JWT, kid} with
// none of jwk/jku/x5c/x5u/x5t/crit; the kid's key in keys (EC P-256); a
// valid signature; strict JSON claims (no duplicates); every mandatory
// claim; aud containing ClientID; question_id, the displayed question
// and statements equal to what was sent; statement among them; user_id /
// user_id_type iff requested. Every refusal wraps ErrInvalidUST.
// Freshness (statement_date against replay) and the amr/acr policy are
// the caller's.
func Verify(token string, keys jose.JSONWebKeySet, want Expect) (*Claims, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidUST}, args...)...)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, bad("not a compact JWS")
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, bad("header not base64url")
	}
	var hdr map[string]json.RawMessage
	if msg, err := decodeStrict(hb, &struct{}{}); err != nil {
		return nil, bad("header: %s", msg)
	}
	_ = json.Unmarshal(hb, &hdr)
	for _, h := range forbiddenHeaders {
		if _, ok := hdr[h]; ok {
			return nil, bad("header %q not accepted", h)
		}
	}
	var alg, typ, kid string
	if json.Unmarshal(hdr["alg"], &alg) != nil || alg != string(jose.ES256) {
		return nil, bad("alg must be ES256")
	}
	if json.Unmarshal(hdr["typ"], &typ) != nil || !strings.EqualFold(typ, "JWT") {
		return nil, bad("typ must be JWT")
	}
	if json.Unmarshal(hdr["kid"], &kid) != nil || kid == "" {
		return nil, bad("kid missing")
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, bad("unparseable")
	}
	var pub *ecdsa.PublicKey
	for _, k := range keys.Key(kid) {
		if p, ok := k.Key.(*ecdsa.PublicKey); ok && p.Curve == elliptic.P256() {
			pub = p
			break
		}
	}
	if pub == nil {
		return nil, bad("no P-256 key with this kid")
	}
	payload, err := jws.Verify(pub)
	if err != nil {
		return nil, bad("signature does not verify")
	}
	var c Claims
	if msg, err := decodeStrict(payload, &c); err != nil {
		return nil, bad("claims: %s", msg)
	}
	if why := c.check(); why != "" {
		return nil, bad("%s", why)
	}
	switch {
	case want.ClientID == "" || !slices.Contains(c.Audience, want.ClientID):
		return nil, bad("aud does not contain the client")
	case c.QuestionID != want.QuestionID:
		return nil, bad("question_id does not match")
	case want.Issuer != "" && c.Issuer != want.Issuer:
		return nil, bad("iss does not match")
	case c.QuestionDisplayed != want.Question:
		return nil, bad("question_displayed differs from the question sent")
	case !slices.Equal(c.DisplayedStatements, want.Statements):
		return nil, bad("displayed_statements differ from the statements sent")
	case c.UserID != want.UserID || c.UserIDType != want.UserIDType:
		return nil, bad("user_id / user_id_type differ from the request")
	}
	return &c, nil
}
