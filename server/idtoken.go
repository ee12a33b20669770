package server

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/ory/fosite"
)

// idToken signs an OpenID Connect ID token (OIDC Core §2, §3.1.3.3) for
// an authorization_code grant that was granted the openid scope: what a
// federating AS verifies when it redeems our code. Signed with ES256 by
// the active signing key, whose kid is in the header (keys.go).
//
// The claims set is written straight into a buffer: the claims are known
// and few, and a map marshalled by reflection cost more allocations than
// the rest of the exchange (docs/performance.md). Strings are escaped as
// encoding/json escapes them; values of unknown type go through
// encoding/json.
func (s *Server) idToken(ctx context.Context, ar fosite.AccessRequester) (string, error) {
	sess, ok := ar.GetSession().(*fosite.DefaultSession)
	if !ok {
		return "", fosite.ErrServerError.WithDebug("unexpected session type")
	}
	payload, err := idTokenPayload(s.cfg.Issuer, ar.GetClient().GetID(), sess, s.now().Unix())
	if err != nil {
		return "", fosite.ErrServerError.WithWrap(err).WithDebug("encode ID token claims")
	}
	return s.signJWT(ctx, payload)
}

// idTokenPayload is the ID token's claims set as JSON: iss, sub, aud and
// azp (the client), iat = now, exp = now + IDTokenLifetime, then the
// session's auth_time, amr, acr and nonce, then the claims a sign-in
// step established (a credential's mapped claims, in key order), never
// one of the reserved claims.
func idTokenPayload(issuer, clientID string, sess *fosite.DefaultSession, now int64) ([]byte, error) {
	b := make([]byte, 0, 384)
	b = append(b, `{"iss":`...)
	b = appendJSONString(b, issuer)
	b = append(b, `,"sub":`...)
	b = appendJSONString(b, sess.Subject)
	b = append(b, `,"aud":`...)
	b = appendJSONString(b, clientID)
	b = append(b, `,"azp":`...)
	b = appendJSONString(b, clientID)
	b = append(b, `,"iat":`...)
	b = strconv.AppendInt(b, now, 10)
	b = append(b, `,"exp":`...)
	b = strconv.AppendInt(b, now+int64(IDTokenLifetime.Seconds()), 10)
	var err error
	for _, k := range [...]string{"auth_time", "amr", "acr", "nonce"} {
		v, ok := sess.Extra[k]
		if !ok {
			continue
		}
		b = append(b, ',', '"')
		b = append(b, k...)
		b = append(b, '"', ':')
		// Stored sessions come back from JSON with numbers as float64.
		if f, isFloat := v.(float64); isFloat && k == "auth_time" {
			v = int64(f)
		}
		if b, err = appendJSONValue(b, v); err != nil {
			return nil, err
		}
	}
	if m, ok := sess.Extra["id_token_claims"].(map[string]any); ok && len(m) > 0 {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if reservedIDClaims[k] {
				continue
			}
			b = append(b, ',')
			b = appendJSONString(b, k)
			b = append(b, ':')
			if b, err = appendJSONValue(b, m[k]); err != nil {
				return nil, err
			}
		}
	}
	return append(b, '}'), nil
}

// appendJSONValue appends v as JSON: strings, integers and lists of
// strings directly, anything else through encoding/json.
func appendJSONValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case string:
		return appendJSONString(b, v), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case []any:
		strs := true
		for _, e := range v {
			if _, ok := e.(string); !ok {
				strs = false
				break
			}
		}
		if strs {
			b = append(b, '[')
			for i, e := range v {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, e.(string))
			}
			return append(b, ']'), nil
		}
	case []string:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, e)
		}
		return append(b, ']'), nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, j...), nil
}

// appendJSONString appends s as a JSON string. Printable ASCII other
// than the characters encoding/json escapes (", \, <, >, &) is copied;
// any other string is encoded by encoding/json, so the escaping is
// always encoding/json's.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			j, _ := json.Marshal(s) // a string always encodes
			return append(b, j...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// reservedIDClaims are never taken from a step's claims (OIDC Core §2).
var reservedIDClaims = map[string]bool{"iss": true, "sub": true, "aud": true, "azp": true, "iat": true, "exp": true,
	"nbf": true, "jti": true, "auth_time": true, "amr": true, "acr": true, "nonce": true, "at_hash": true, "c_hash": true, "sid": true, "cnf": true}
