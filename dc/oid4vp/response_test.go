package oid4vp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

func okPayload() map[string]any {
	return map[string]any{"vp_token": map[string]any{"pid": []string{"eyJ.a.b~d1~kb"}}, "state": "req-123"}
}

func TestDecryptResponseRoundTrip(t *testing.T) {
	k := testKey(t)
	// The key survives storage.
	txt, err := k.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	if len(txt) > 100 {
		t.Fatalf("stored key %d bytes", len(txt))
	}
	k2, err := UnmarshalResponseKey(txt)
	if err != nil || k2.KID() != k.KID() || !k2.Public().Equal(k.Public()) {
		t.Fatalf("unmarshal: %v", err)
	}
	for _, tc := range []struct {
		name    string
		enc     jose.ContentEncryption
		payload any
	}{
		{"A128GCM", jose.A128GCM, okPayload()},
		{"A256GCM", jose.A256GCM, okPayload()},
		{"unknown members ignored", jose.A128GCM, map[string]any{"vp_token": map[string]any{"pid": []string{"x"}}, "state": "req-123", "extra": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jwe := encrypt(t, k, tc.payload, encOpts{enc: tc.enc})
			r, err := DecryptResponse(jwe, k2, ExpectedResponse{State: "req-123"})
			if err != nil {
				t.Fatal(err)
			}
			if r.State != "req-123" || len(r.VPToken["pid"]) != 1 || r.VPToken["pid"][0] == "" {
				t.Fatalf("%+v", r)
			}
		})
	}
	// No state expected and none sent (dc_api.jwt without state).
	jwe := encrypt(t, k, map[string]any{"vp_token": map[string]any{"pid": []string{"x"}}}, encOpts{})
	if _, err := DecryptResponse(jwe, k, ExpectedResponse{}); err != nil {
		t.Fatal(err)
	}
}

func TestDecryptResponseWalletError(t *testing.T) {
	k := testKey(t)
	jwe := encrypt(t, k, map[string]any{"error": "access_denied", "error_description": "user said no", "state": "req-123"}, encOpts{})
	_, err := DecryptResponse(jwe, k, ExpectedResponse{State: "req-123"})
	var we *WalletError
	if !errors.As(err, &we) || we.Code != "access_denied" || we.Description != "user said no" {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), "user said no") {
		t.Fatal("wallet text in error string")
	}
	// A wallet error with a wrong state is a state error, not a wallet error.
	jwe = encrypt(t, k, map[string]any{"error": "access_denied", "state": "other"}, encOpts{})
	if _, err := DecryptResponse(jwe, k, ExpectedResponse{State: "req-123"}); !errors.Is(err, ErrState) {
		t.Fatalf("got %v", err)
	}
}

func TestDecryptResponseRefusals(t *testing.T) {
	k := testKey(t)
	other := testKey(t)
	rk := rsaKey(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good := encrypt(t, k, okPayload(), encOpts{})
	parts := strings.Split(good, ".")
	tamper := func(i int) string {
		p := append([]string(nil), parts...)
		b, _ := base64.RawURLEncoding.DecodeString(p[i])
		b[0] ^= 1
		p[i] = base64.RawURLEncoding.EncodeToString(b)
		return strings.Join(p, ".")
	}
	withHeader := func(h string) string {
		p := append([]string(nil), parts...)
		p[0] = base64.RawURLEncoding.EncodeToString([]byte(h))
		return strings.Join(p, ".")
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	dupHeader := strings.Replace(string(hdr), "{", `{"enc":"A128GCM",`, 1)
	for _, tc := range []struct {
		name string
		jwe  string
		key  *ResponseKey
		exp  ExpectedResponse
		want error
	}{
		{"wrong kid", encrypt(t, k, okPayload(), encOpts{kid: "nope"}), k, ExpectedResponse{State: "req-123"}, ErrKeyMismatch},
		{"encrypted to another key", encrypt(t, other, okPayload(), encOpts{kid: k.KID()}), k, ExpectedResponse{State: "req-123"}, ErrDecrypt},
		{"key of another transaction", good, other, ExpectedResponse{State: "req-123"}, ErrKeyMismatch},
		{"epk on another curve (P-384)", encrypt(t, k, okPayload(), encOpts{key: &p384.PublicKey}), k, ExpectedResponse{State: "req-123"}, ErrDecrypt},
		{"RSA-OAEP", encrypt(t, k, okPayload(), encOpts{alg: jose.RSA_OAEP, key: &rk.PublicKey}), k, ExpectedResponse{State: "req-123"}, ErrInvalidJWE},
		{"ECDH-ES+A128KW", encrypt(t, k, okPayload(), encOpts{alg: jose.ECDH_ES_A128KW}), k, ExpectedResponse{State: "req-123"}, ErrInvalidJWE},
		{"A128CBC-HS256", encrypt(t, k, okPayload(), encOpts{enc: jose.A128CBC_HS256}), k, ExpectedResponse{State: "req-123"}, ErrInvalidJWE},
		{"dir", encrypt(t, k, okPayload(), encOpts{alg: jose.DIRECT, key: make([]byte, 16)}), k, ExpectedResponse{State: "req-123"}, ErrInvalidJWE},
		{"zip", encrypt(t, k, okPayload(), encOpts{zip: true}), k, ExpectedResponse{State: "req-123"}, ErrInvalidJWE},
		{"duplicate header member", withHeader(dupHeader), k, ExpectedResponse{State: "req-123"}, ErrInvalidJWE},
		{"JSON serialization", `{"protected":"x"}`, k, ExpectedResponse{State: "req-123"}, ErrInvalidJWE},
		{"wrong state", good, k, ExpectedResponse{State: "req-124"}, ErrState},
		{"state missing", encrypt(t, k, map[string]any{"vp_token": map[string]any{"pid": []string{"x"}}}, encOpts{}), k, ExpectedResponse{State: "req-123"}, ErrState},
		{"state unexpected", good, k, ExpectedResponse{}, ErrState},
		{"oversize", good, k, ExpectedResponse{State: "req-123", MaxSize: len(good) - 1}, ErrTooLarge},
		{"oversize default", strings.Repeat("a", DefaultMaxResponseSize+1), k, ExpectedResponse{State: "req-123"}, ErrTooLarge},
		{"tampered ciphertext", tamper(3), k, ExpectedResponse{State: "req-123"}, ErrDecrypt},
		{"tampered tag", tamper(4), k, ExpectedResponse{State: "req-123"}, ErrDecrypt},
		{"tampered iv", tamper(2), k, ExpectedResponse{State: "req-123"}, ErrDecrypt},
		{"duplicate state", encrypt(t, k, `{"vp_token":{"pid":["x"]},"state":"evil","state":"req-123"}`, encOpts{}), k, ExpectedResponse{State: "req-123"}, ErrInvalidResponse},
		{"duplicate nested", encrypt(t, k, `{"vp_token":{"pid":["x"],"pid":["y"]},"state":"req-123"}`, encOpts{}), k, ExpectedResponse{State: "req-123"}, ErrInvalidResponse},
		{"trailing data", encrypt(t, k, `{"vp_token":{"pid":["x"]},"state":"req-123"}{}`, encOpts{}), k, ExpectedResponse{State: "req-123"}, ErrInvalidResponse},
		{"not an object", encrypt(t, k, `null`, encOpts{}), k, ExpectedResponse{}, ErrInvalidResponse},
		{"no vp_token", encrypt(t, k, `{"state":"req-123"}`, encOpts{}), k, ExpectedResponse{State: "req-123"}, ErrInvalidResponse},
		{"vp_token string", encrypt(t, k, `{"vp_token":"x","state":"req-123"}`, encOpts{}), k, ExpectedResponse{State: "req-123"}, ErrInvalidResponse},
		{"vp_token value not array", encrypt(t, k, `{"vp_token":{"pid":"x"},"state":"req-123"}`, encOpts{}), k, ExpectedResponse{State: "req-123"}, ErrInvalidResponse},
		{"vp_token object presentation", encrypt(t, k, `{"vp_token":{"pid":[{}]},"state":"req-123"}`, encOpts{}), k, ExpectedResponse{State: "req-123"}, ErrInvalidResponse},
		{"vp_token empty array", encrypt(t, k, `{"vp_token":{"pid":[]},"state":"req-123"}`, encOpts{}), k, ExpectedResponse{State: "req-123"}, ErrInvalidResponse},
		{"vp_token empty", encrypt(t, k, `{"vp_token":{},"state":"req-123"}`, encOpts{}), k, ExpectedResponse{State: "req-123"}, ErrInvalidResponse},
		{"error and vp_token", encrypt(t, k, `{"vp_token":{"pid":["x"]},"error":"access_denied","state":"req-123"}`, encOpts{}), k, ExpectedResponse{State: "req-123"}, ErrInvalidResponse},
		{"state not a string", encrypt(t, k, `{"vp_token":{"pid":["x"]},"state":1}`, encOpts{}), k, ExpectedResponse{State: "req-123"}, ErrInvalidResponse},
		{"nil key", good, nil, ExpectedResponse{State: "req-123"}, ErrKeyMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := DecryptResponse(tc.jwe, tc.key, tc.exp)
			if !errors.Is(err, tc.want) || r != nil {
				t.Fatalf("got %+v, %v; want %v", r, err, tc.want)
			}
		})
	}
}

func TestUnmarshalResponseKeyRefusals(t *testing.T) {
	k := testKey(t)
	txt, _ := k.MarshalText()
	s := string(txt)
	for _, in := range []string{"", "k1", "k2" + s[2:], strings.Replace(s, ".", "..", 1), s + "AA", "k1.kid.AAAA",
		"k1.kid." + base64.RawURLEncoding.EncodeToString(make([]byte, 32))} {
		if _, err := UnmarshalResponseKey([]byte(in)); !errors.Is(err, ErrKey) {
			t.Fatalf("%q: %v", in, err)
		}
	}
}

func FuzzDecryptResponse(f *testing.F) {
	k := testKey(f)
	f.Add(encrypt(f, k, okPayload(), encOpts{}), "req-123")
	f.Add(encrypt(f, k, map[string]any{"error": "access_denied", "state": "req-123"}, encOpts{}), "req-123")
	f.Add(encrypt(f, k, `{"vp_token":{"pid":["x"],"pid":["y"]},"state":"req-123"}`, encOpts{}), "req-123")
	f.Add("a.b.c.d.e", "")
	f.Fuzz(func(t *testing.T, jwe, state string) {
		r, err := DecryptResponse(jwe, k, ExpectedResponse{State: state})
		if err == nil && (r == nil || r.State != state || len(r.VPToken) == 0) {
			t.Fatalf("accepted with state %q want %q", r.State, state)
		}
	})
}
