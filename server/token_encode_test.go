package server

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/ory/fosite"
	"github.com/stretchr/testify/require"
)

// TestTokenResponseJSON: the reflection-free token response is byte for
// byte what writeJSON encodes, and anything it does not know falls back.
func TestTokenResponseJSON(t *testing.T) {
	enc := func(t *testing.T, v any) []byte {
		var buf bytes.Buffer
		e := json.NewEncoder(&buf)
		e.SetEscapeHTML(false)
		require.NoError(t, e.Encode(v))
		return bytes.TrimRight(buf.Bytes(), "\n")
	}
	tests := []struct {
		name string
		out  map[string]any
		fast bool
	}{
		{"code exchange", map[string]any{"access_token": "ory_at_a.b", "token_type": "bearer", "expires_in": int64(300), "scope": "openid offline_access", "refresh_token": "ory_rt_c.d", "id_token": "h.p.s"}, true},
		{"dpop with details", map[string]any{"access_token": "a.b", "token_type": "DPoP", "expires_in": int64(0), "scope": "", "authorization_details": json.RawMessage(`[ {"type": "x", "a": [1, 2]} ]`)}, true},
		{"html characters are not escaped", map[string]any{"access_token": "a<b>&c", "token_type": "bearer"}, true},
		{"an escaped string falls back", map[string]any{"access_token": "a\"b", "token_type": "bearer"}, false},
		{"a non-ASCII string falls back", map[string]any{"access_token": "a", "scope": "é", "token_type": "bearer"}, false},
		{"an unknown member falls back", map[string]any{"access_token": "a", "token_type": "bearer", "issued_token_type": "x"}, false},
		{"another type falls back", map[string]any{"access_token": "a", "token_type": "bearer", "expires_in": 3.5}, false},
		{"an invalid raw message falls back", map[string]any{"access_token": "a", "authorization_details": json.RawMessage(`[`)}, false},
		{"empty falls back", map[string]any{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tokenResponseJSON(tt.out)
			require.Equal(t, tt.fast, ok)
			if ok {
				require.Equal(t, string(enc(t, tt.out)), string(got))
			}
		})
	}
}

// TestIDTokenPayload: the hand-written claims set is valid JSON with
// the claims a map encoding had, every string escaped as encoding/json
// escapes it, and no reserved claim taken from a step's claims.
func TestIDTokenPayload(t *testing.T) {
	tests := []struct {
		name  string
		extra map[string]any
		want  map[string]any
	}{
		{"minimal", map[string]any{}, map[string]any{}},
		{"stored session", map[string]any{"auth_time": float64(1700000000), "amr": []any{"pwd", "otp"}, "acr": "urn:x", "nonce": "n-1"},
			map[string]any{"auth_time": float64(1700000000), "amr": []any{"pwd", "otp"}, "acr": "urn:x", "nonce": "n-1"}},
		{"fresh session", map[string]any{"auth_time": int64(1700000001), "amr": []string{"pwd"}},
			map[string]any{"auth_time": float64(1700000001), "amr": []any{"pwd"}}},
		{"strings needing escapes", map[string]any{"nonce": "a\"b\\c\n<é>\u2028\xff"}, map[string]any{"nonce": "a\"b\\c\n<é>\u2028\ufffd"}},
		{"step claims, reserved ones dropped", map[string]any{"id_token_claims": map[string]any{"email": "c@x.example", "email_verified": true, "n": float64(2), "iss": "evil", "sub": "evil", "nonce": "evil", "cnf": "evil", "addr": map[string]any{"k": "v"}}},
			map[string]any{"email": "c@x.example", "email_verified": true, "n": float64(2), "addr": map[string]any{"k": "v"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sess := &fosite.DefaultSession{Subject: "carol \"c\"", Extra: tt.extra}
			b, err := idTokenPayload("https://as.example/<x>", "demo-app", sess, 1700000100)
			require.NoError(t, err)
			var got map[string]any
			require.NoError(t, json.Unmarshal(b, &got), "%s", b)
			want := map[string]any{"iss": "https://as.example/<x>", "sub": "carol \"c\"", "aud": "demo-app", "azp": "demo-app",
				"iat": float64(1700000100), "exp": float64(1700000100 + int64(IDTokenLifetime.Seconds()))}
			for k, v := range tt.want {
				want[k] = v
			}
			require.Equal(t, want, got)
		})
	}
}
