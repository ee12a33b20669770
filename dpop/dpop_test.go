package dpop_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/dpop"
)

type replay struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (r *replay) MarkUsed(_ context.Context, k string, _ time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen[k] {
		return dpop.ErrReplay
	}
	r.seen[k] = true
	return nil
}

const htu = "https://as.example/native/authorize"

func key(t *testing.T) (*ecdsa.PrivateKey, *dpop.Key) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	dk, err := dpop.NewKey(k, jose.ES256)
	require.NoError(t, err)
	return k, dk
}

// forge signs arbitrary header and claims with k (for malformed proofs).
func forge(t *testing.T, k any, alg jose.SignatureAlgorithm, hdr map[jose.HeaderKey]any, c map[string]any) string {
	t.Helper()
	opts := &jose.SignerOptions{ExtraHeaders: hdr}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: k}, opts)
	require.NoError(t, err)
	b, _ := json.Marshal(c)
	jws, err := s.Sign(b)
	require.NoError(t, err)
	out, err := jws.CompactSerialize()
	require.NoError(t, err)
	return out
}

// F01 (part) and F02: the proof validation table, and jti replay.
func TestVerify(t *testing.T) {
	priv, k := key(t)
	pub := jose.JSONWebKey{Key: &priv.PublicKey}
	now := time.Now()
	good := func() map[string]any {
		return map[string]any{"jti": base64.RawURLEncoding.EncodeToString([]byte(time.Now().String())), "htm": "POST", "htu": htu, "iat": now.Unix()}
	}
	hdr := map[jose.HeaderKey]any{"typ": "dpop+jwt", "jwk": pub}
	with := func(k string, v any) map[string]any { c := good(); c[k] = v; return c }
	without := func(k string) map[string]any { c := good(); delete(c, k); return c }
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	privJWK := jose.JSONWebKey{Key: priv}

	tests := []struct {
		name  string
		proof func() string
		ok    bool
	}{
		{"valid", func() string { p, _ := k.Proof("POST", htu, ""); return p }, true},
		{"htu with query and other case host", func() string {
			return forge(t, priv, jose.ES256, hdr, with("htu", "https://AS.example/native/authorize?x=1#f"))
		}, true},
		{"iat +8s", func() string { return forge(t, priv, jose.ES256, hdr, with("iat", now.Add(8*time.Second).Unix())) }, true},
		{"iat -59s", func() string { return forge(t, priv, jose.ES256, hdr, with("iat", now.Add(-59*time.Second).Unix())) }, true},
		{"iat +61s", func() string { return forge(t, priv, jose.ES256, hdr, with("iat", now.Add(61*time.Second).Unix())) }, false},
		{"iat -5m", func() string { return forge(t, priv, jose.ES256, hdr, with("iat", now.Add(-5*time.Minute).Unix())) }, false},
		{"no iat", func() string { return forge(t, priv, jose.ES256, hdr, without("iat")) }, false},
		{"no jti", func() string { return forge(t, priv, jose.ES256, hdr, without("jti")) }, false},
		{"wrong htm", func() string { return forge(t, priv, jose.ES256, hdr, with("htm", "GET")) }, false},
		{"wrong htu", func() string {
			return forge(t, priv, jose.ES256, hdr, with("htu", "https://evil.example/native/authorize"))
		}, false},
		{"wrong typ", func() string {
			return forge(t, priv, jose.ES256, map[jose.HeaderKey]any{"typ": "JWT", "jwk": pub}, good())
		}, false},
		{"no jwk", func() string { return forge(t, priv, jose.ES256, map[jose.HeaderKey]any{"typ": "dpop+jwt"}, good()) }, false},
		{"private jwk", func() string {
			return forge(t, priv, jose.ES256, map[jose.HeaderKey]any{"typ": "dpop+jwt", "jwk": privJWK}, good())
		}, false},
		{"signed by another key", func() string { return forge(t, other, jose.ES256, hdr, good()) }, false},
		{"HS256", func() string { return forge(t, []byte(strings.Repeat("k", 32)), jose.HS256, hdr, good()) }, false},
		{"alg none", func() string {
			h, _ := json.Marshal(map[string]any{"alg": "none", "typ": "dpop+jwt", "jwk": pub})
			c, _ := json.Marshal(good())
			return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "."
		}, false},
		{"two proofs", func() string { p, _ := k.Proof("POST", htu, ""); return p + "," + p }, false},
		{"garbage", func() string { return "not.a.jwt" }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := &dpop.Verifier{Replay: &replay{seen: map[string]bool{}}, Now: func() time.Time { return now }}
			p, err := v.Verify(context.Background(), tc.proof(), "POST", htu, "")
			if tc.ok {
				require.NoError(t, err)
				require.Equal(t, k.JKT, p.JKT)
				return
			}
			require.ErrorIs(t, err, dpop.ErrInvalidProof)
		})
	}

	t.Run("jti replay", func(t *testing.T) {
		v := &dpop.Verifier{Replay: &replay{seen: map[string]bool{}}}
		p, err := k.Proof("POST", htu, "")
		require.NoError(t, err)
		_, err = v.Verify(context.Background(), p, "POST", htu, "")
		require.NoError(t, err)
		_, err = v.Verify(context.Background(), p, "POST", htu, "")
		require.True(t, errors.Is(err, dpop.ErrReplay))
	})
	t.Run("ath", func(t *testing.T) {
		v := &dpop.Verifier{Replay: &replay{seen: map[string]bool{}}}
		p, err := k.Proof("GET", "https://rs.example/x", "token-1")
		require.NoError(t, err)
		_, err = v.Verify(context.Background(), p, "GET", "https://rs.example/x", "token-2")
		require.ErrorIs(t, err, dpop.ErrInvalidProof)
	})
}
