package dcql

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// FormatSDJWTVC is the only credential format identifier supported: SD-JWT
// VC (OpenID4VP 1.0 App. B.3.1, draft-ietf-oauth-sd-jwt-vc).
const FormatSDJWTVC = "dc+sd-jwt"

// Caps on a query. DCQL has no limits of its own; these bound the work of
// Parse and Match for a configured or client-supplied query.
const (
	MaxQueryBytes      = 64 << 10
	MaxCredentials     = 32
	MaxClaims          = 64
	MaxClaimSets       = 32
	MaxCredentialSets  = 16
	MaxOptions         = 16
	MaxVCTValues       = 32
	MaxValues          = 32
	MaxPathLen         = 16
	MaxPathIndex       = 1 << 20
	MaxIDLen           = 64
	MaxStringLen       = 2048
	maxDepth           = 16
	maxOptionIDs       = MaxCredentials
	maxClaimSetMembers = MaxClaims
)

// Sentinel errors. Every error from Parse wraps exactly one of the first
// three; every error from Match wraps one of the Err* matching errors.
var (
	// ErrInvalidQuery: the query breaks a rule of OpenID4VP 1.0 §6.
	ErrInvalidQuery = errors.New("dcql: invalid query")
	// ErrUnsupported: valid DCQL outside the supported subset (doc.go).
	ErrUnsupported = errors.New("dcql: unsupported query feature")
	// ErrTooLarge: a size cap was exceeded.
	ErrTooLarge = errors.New("dcql: query too large")
)

// Query is a DCQL query (OpenID4VP 1.0 §6). Defaults are resolved: Multiple,
// RequireCryptographicHolderBinding and CredentialSet.Required hold the
// effective value whether or not the JSON carried the member.
type Query struct {
	Credentials    []CredentialQuery `json:"credentials"`
	CredentialSets []CredentialSet   `json:"credential_sets,omitempty"`
}

// CredentialQuery is a Credential Query (OpenID4VP 1.0 §6.1).
type CredentialQuery struct {
	ID     string `json:"id"`
	Format string `json:"format"`
	// Multiple: more than one presentation may answer this query (§6.1).
	Multiple bool `json:"multiple"`
	// Meta.VCTValues lists the accepted vct values (App. B.3.5).
	Meta Meta `json:"meta"`
	// RequireCryptographicHolderBinding defaults to true (§6.1).
	RequireCryptographicHolderBinding bool         `json:"require_cryptographic_holder_binding"`
	Claims                            []ClaimQuery `json:"claims,omitempty"`
	// ClaimSets: each is a list of claim ids; the first one the presentation
	// satisfies is used (§6.4.1).
	ClaimSets [][]string `json:"claim_sets,omitempty"`
}

// Meta is the dc+sd-jwt meta object (OpenID4VP 1.0 App. B.3.5).
type Meta struct {
	VCTValues []string `json:"vct_values"`
}

// ClaimQuery is a Claims Query (OpenID4VP 1.0 §6.3). Values elements are
// string, int64 or bool.
type ClaimQuery struct {
	ID     string `json:"id,omitempty"`
	Path   Path   `json:"path"`
	Values []any  `json:"values,omitempty"`
}

// CredentialSet is a Credential Set Query (OpenID4VP 1.0 §6.2).
type CredentialSet struct {
	Options  [][]string `json:"options"`
	Required bool       `json:"required"`
}

type rawQuery struct {
	Credentials    *[]rawCredential    `json:"credentials"`
	CredentialSets *[]rawCredentialSet `json:"credential_sets"`
}

type rawCredential struct {
	ID                 *string          `json:"id"`
	Format             *string          `json:"format"`
	Multiple           *bool            `json:"multiple"`
	Meta               *rawMeta         `json:"meta"`
	TrustedAuthorities *json.RawMessage `json:"trusted_authorities"`
	RequireHB          *bool            `json:"require_cryptographic_holder_binding"`
	Claims             *[]rawClaim      `json:"claims"`
	ClaimSets          *[][]string      `json:"claim_sets"`
}

type rawMeta struct {
	VCTValues *[]string `json:"vct_values"`
}

type rawClaim struct {
	ID     *string            `json:"id"`
	Path   *[]json.RawMessage `json:"path"`
	Values *[]json.RawMessage `json:"values"`
}

type rawCredentialSet struct {
	Options  *[][]string `json:"options"`
	Required *bool       `json:"required"`
}

// Parse decodes and validates a DCQL query (OpenID4VP 1.0 §6). It refuses
// unknown members, duplicate member names, trailing data and oversized
// input (see doc.go), then applies Validate.
func Parse(data []byte) (*Query, error) {
	if len(data) > MaxQueryBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(data), MaxQueryBytes)
	}
	if err := checkStrictJSON(data); err != nil {
		return nil, err
	}
	var raw rawQuery
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidQuery, decodeErr(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data", ErrInvalidQuery)
	}
	q, err := raw.convert()
	if err != nil {
		return nil, err
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	return q, nil
}

// decodeErr keeps encoding/json's message, which names fields and types but
// never values.
func decodeErr(err error) string {
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		return "member " + strconv.Quote(ute.Field) + " has the wrong type"
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "syntax error at offset " + strconv.FormatInt(se.Offset, 10)
	}
	return err.Error()
}

func (r rawQuery) convert() (*Query, error) {
	if r.Credentials == nil {
		return nil, fmt.Errorf("%w: credentials is required", ErrInvalidQuery)
	}
	if len(*r.Credentials) > MaxCredentials {
		return nil, fmt.Errorf("%w: more than %d credentials", ErrTooLarge, MaxCredentials)
	}
	q := &Query{Credentials: make([]CredentialQuery, 0, len(*r.Credentials))}
	for i, rc := range *r.Credentials {
		c, err := rc.convert(i)
		if err != nil {
			return nil, err
		}
		q.Credentials = append(q.Credentials, c)
	}
	if r.CredentialSets != nil {
		if len(*r.CredentialSets) == 0 {
			return nil, fmt.Errorf("%w: credential_sets must be a non-empty array", ErrInvalidQuery)
		}
		for i, rs := range *r.CredentialSets {
			if rs.Options == nil {
				return nil, fmt.Errorf("%w: credential_sets[%d].options is required", ErrInvalidQuery, i)
			}
			s := CredentialSet{Options: *rs.Options, Required: true}
			if rs.Required != nil {
				s.Required = *rs.Required
			}
			q.CredentialSets = append(q.CredentialSets, s)
		}
	}
	return q, nil
}

func (rc rawCredential) convert(i int) (CredentialQuery, error) {
	var c CredentialQuery
	if rc.ID == nil {
		return c, fmt.Errorf("%w: credentials[%d].id is required", ErrInvalidQuery, i)
	}
	c.ID = *rc.ID
	if rc.Format == nil {
		return c, fmt.Errorf("%w: credential %q: format is required", ErrInvalidQuery, c.ID)
	}
	c.Format = *rc.Format
	if rc.TrustedAuthorities != nil {
		return c, fmt.Errorf("%w: credential %q: trusted_authorities (issuer trust is fedas policy)", ErrUnsupported, c.ID)
	}
	if rc.Meta == nil {
		return c, fmt.Errorf("%w: credential %q: meta is required", ErrInvalidQuery, c.ID)
	}
	if rc.Meta.VCTValues == nil {
		return c, fmt.Errorf("%w: credential %q: meta.vct_values is required", ErrInvalidQuery, c.ID)
	}
	c.Meta.VCTValues = *rc.Meta.VCTValues
	if rc.Multiple != nil {
		c.Multiple = *rc.Multiple
	}
	c.RequireCryptographicHolderBinding = true
	if rc.RequireHB != nil {
		c.RequireCryptographicHolderBinding = *rc.RequireHB
	}
	if rc.Claims != nil {
		if len(*rc.Claims) == 0 {
			return c, fmt.Errorf("%w: credential %q: claims must be a non-empty array", ErrInvalidQuery, c.ID)
		}
		if len(*rc.Claims) > MaxClaims {
			return c, fmt.Errorf("%w: credential %q: more than %d claims", ErrTooLarge, c.ID, MaxClaims)
		}
		for j, rcl := range *rc.Claims {
			cl, err := rcl.convert(c.ID, j)
			if err != nil {
				return c, err
			}
			c.Claims = append(c.Claims, cl)
		}
	}
	if rc.ClaimSets != nil {
		if len(*rc.ClaimSets) == 0 {
			return c, fmt.Errorf("%w: credential %q: claim_sets must be a non-empty array", ErrInvalidQuery, c.ID)
		}
		c.ClaimSets = *rc.ClaimSets
	}
	return c, nil
}

func (rcl rawClaim) convert(credID string, j int) (ClaimQuery, error) {
	var cl ClaimQuery
	if rcl.ID != nil {
		cl.ID = *rcl.ID
		if cl.ID == "" {
			return cl, fmt.Errorf("%w: credential %q: claims[%d].id is empty", ErrInvalidQuery, credID, j)
		}
	}
	if rcl.Path == nil {
		return cl, fmt.Errorf("%w: credential %q: claims[%d].path is required", ErrInvalidQuery, credID, j)
	}
	p, err := pathFromRaw(*rcl.Path)
	if err != nil {
		return cl, fmt.Errorf("credential %q: claims[%d]: %w", credID, j, err)
	}
	cl.Path = p
	if rcl.Values != nil {
		if len(*rcl.Values) == 0 {
			return cl, fmt.Errorf("%w: credential %q: claims[%d].values must be a non-empty array", ErrInvalidQuery, credID, j)
		}
		if len(*rcl.Values) > MaxValues {
			return cl, fmt.Errorf("%w: credential %q: claims[%d]: more than %d values", ErrTooLarge, credID, j, MaxValues)
		}
		for _, rv := range *rcl.Values {
			v, err := valueFromRaw(rv)
			if err != nil {
				return cl, fmt.Errorf("%w: credential %q: claims[%d].values: %v", ErrInvalidQuery, credID, j, err)
			}
			cl.Values = append(cl.Values, v)
		}
	}
	return cl, nil
}

// valueFromRaw accepts the value types of §6.3: string, integer, boolean.
func valueFromRaw(raw json.RawMessage) (any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, errors.New("empty value")
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, errors.New("bad string")
		}
		return s, nil
	case 't', 'f':
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return nil, errors.New("bad boolean")
		}
		return b, nil
	default:
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return nil, errors.New("a value must be a string, an integer or a boolean")
		}
		return n, nil
	}
}

// validID reports whether s is a non-empty string of alphanumeric, '_' or
// '-' characters (OpenID4VP 1.0 §6.1 id, §6.3 id), at most MaxIDLen long.
func validID(s string) bool {
	if s == "" || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Validate checks the rules of OpenID4VP 1.0 §6 and the caps of this package
// on q. Parse calls it; a caller building a Query in code should too.
func (q *Query) Validate() error {
	if q == nil {
		return fmt.Errorf("%w: nil query", ErrInvalidQuery)
	}
	if len(q.Credentials) == 0 {
		return fmt.Errorf("%w: credentials must be a non-empty array", ErrInvalidQuery)
	}
	if len(q.Credentials) > MaxCredentials {
		return fmt.Errorf("%w: more than %d credentials", ErrTooLarge, MaxCredentials)
	}
	ids := make(map[string]bool, len(q.Credentials))
	for i := range q.Credentials {
		c := &q.Credentials[i]
		if !validID(c.ID) {
			return fmt.Errorf("%w: credentials[%d].id must be 1-%d characters of [A-Za-z0-9_-]", ErrInvalidQuery, i, MaxIDLen)
		}
		if ids[c.ID] {
			return fmt.Errorf("%w: credential id %q is not unique", ErrInvalidQuery, c.ID)
		}
		ids[c.ID] = true
		if err := c.validate(); err != nil {
			return err
		}
	}
	if q.CredentialSets != nil && len(q.CredentialSets) == 0 {
		return fmt.Errorf("%w: credential_sets must be a non-empty array", ErrInvalidQuery)
	}
	if len(q.CredentialSets) > MaxCredentialSets {
		return fmt.Errorf("%w: more than %d credential_sets", ErrTooLarge, MaxCredentialSets)
	}
	for i, s := range q.CredentialSets {
		if len(s.Options) == 0 {
			return fmt.Errorf("%w: credential_sets[%d].options must be a non-empty array", ErrInvalidQuery, i)
		}
		if len(s.Options) > MaxOptions {
			return fmt.Errorf("%w: credential_sets[%d]: more than %d options", ErrTooLarge, i, MaxOptions)
		}
		for j, opt := range s.Options {
			if len(opt) == 0 {
				return fmt.Errorf("%w: credential_sets[%d].options[%d] is empty", ErrInvalidQuery, i, j)
			}
			if len(opt) > maxOptionIDs {
				return fmt.Errorf("%w: credential_sets[%d].options[%d] too long", ErrTooLarge, i, j)
			}
			seen := make(map[string]bool, len(opt))
			for _, id := range opt {
				if !ids[id] {
					return fmt.Errorf("%w: credential_sets[%d].options[%d] refers to an unknown credential id", ErrInvalidQuery, i, j)
				}
				if seen[id] {
					return fmt.Errorf("%w: credential_sets[%d].options[%d] repeats credential id %q", ErrInvalidQuery, i, j, id)
				}
				seen[id] = true
			}
		}
	}
	return nil
}

func (c *CredentialQuery) validate() error {
	if c.Format != FormatSDJWTVC {
		return fmt.Errorf("%w: credential %q: only format %q is supported", ErrUnsupported, c.ID, FormatSDJWTVC)
	}
	if len(c.Meta.VCTValues) == 0 {
		return fmt.Errorf("%w: credential %q: meta.vct_values must be a non-empty array", ErrInvalidQuery, c.ID)
	}
	if len(c.Meta.VCTValues) > MaxVCTValues {
		return fmt.Errorf("%w: credential %q: more than %d vct_values", ErrTooLarge, c.ID, MaxVCTValues)
	}
	for _, v := range c.Meta.VCTValues {
		if v == "" || len(v) > MaxStringLen {
			return fmt.Errorf("%w: credential %q: a vct_values entry is empty or longer than %d", ErrInvalidQuery, c.ID, MaxStringLen)
		}
	}
	if c.Claims != nil && len(c.Claims) == 0 {
		return fmt.Errorf("%w: credential %q: claims must be a non-empty array", ErrInvalidQuery, c.ID)
	}
	if len(c.Claims) > MaxClaims {
		return fmt.Errorf("%w: credential %q: more than %d claims", ErrTooLarge, c.ID, MaxClaims)
	}
	claimIDs := make(map[string]bool, len(c.Claims))
	for j, cl := range c.Claims {
		if cl.ID != "" {
			if !validID(cl.ID) {
				return fmt.Errorf("%w: credential %q: claims[%d].id must be 1-%d characters of [A-Za-z0-9_-]", ErrInvalidQuery, c.ID, j, MaxIDLen)
			}
			if claimIDs[cl.ID] {
				return fmt.Errorf("%w: credential %q: claim id %q is not unique", ErrInvalidQuery, c.ID, cl.ID)
			}
			claimIDs[cl.ID] = true
		} else if c.ClaimSets != nil {
			// §6.3 id: REQUIRED if claim_sets is present.
			return fmt.Errorf("%w: credential %q: claims[%d].id is required with claim_sets", ErrInvalidQuery, c.ID, j)
		}
		if err := cl.Path.Validate(); err != nil {
			return fmt.Errorf("credential %q: claims[%d]: %w", c.ID, j, err)
		}
		if cl.Values != nil && len(cl.Values) == 0 {
			return fmt.Errorf("%w: credential %q: claims[%d].values must be a non-empty array", ErrInvalidQuery, c.ID, j)
		}
		if len(cl.Values) > MaxValues {
			return fmt.Errorf("%w: credential %q: claims[%d]: more than %d values", ErrTooLarge, c.ID, j, MaxValues)
		}
		for _, v := range cl.Values {
			switch v := v.(type) {
			case string:
				if len(v) > MaxStringLen {
					return fmt.Errorf("%w: credential %q: claims[%d]: a value is longer than %d", ErrTooLarge, c.ID, j, MaxStringLen)
				}
			case int64, bool:
			default:
				return fmt.Errorf("%w: credential %q: claims[%d]: a value must be a string, an integer or a boolean", ErrInvalidQuery, c.ID, j)
			}
		}
	}
	if c.ClaimSets != nil {
		// §6.1, §6.4.1: claim_sets MUST NOT be present if claims is absent.
		if len(c.Claims) == 0 {
			return fmt.Errorf("%w: credential %q: claim_sets without claims", ErrInvalidQuery, c.ID)
		}
		if len(c.ClaimSets) == 0 {
			return fmt.Errorf("%w: credential %q: claim_sets must be a non-empty array", ErrInvalidQuery, c.ID)
		}
		if len(c.ClaimSets) > MaxClaimSets {
			return fmt.Errorf("%w: credential %q: more than %d claim_sets", ErrTooLarge, c.ID, MaxClaimSets)
		}
		for k, set := range c.ClaimSets {
			if len(set) == 0 {
				return fmt.Errorf("%w: credential %q: claim_sets[%d] is empty", ErrInvalidQuery, c.ID, k)
			}
			if len(set) > maxClaimSetMembers {
				return fmt.Errorf("%w: credential %q: claim_sets[%d] too long", ErrTooLarge, c.ID, k)
			}
			seen := make(map[string]bool, len(set))
			for _, id := range set {
				if !claimIDs[id] {
					return fmt.Errorf("%w: credential %q: claim_sets[%d] refers to an unknown claim id", ErrInvalidQuery, c.ID, k)
				}
				if seen[id] {
					return fmt.Errorf("%w: credential %q: claim_sets[%d] repeats claim id %q", ErrInvalidQuery, c.ID, k, id)
				}
				seen[id] = true
			}
		}
	}
	return nil
}
