package oid4vp

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func baseParams(k *ResponseKey) RequestParams {
	return RequestParams{
		ResponseMode:  ModeDirectPostJWT,
		ResponseURI:   "https://as.example/dc/response",
		State:         "req-123",
		DCQLQuery:     json.RawMessage(testQuery),
		EncryptionKey: k,
		Now:           func() time.Time { return fixedNow },
	}
}

// parseRequest is the wallet side: verify the JWS with the x5c leaf key.
func parseRequest(t *testing.T, jws string, s Signer) (map[string]json.RawMessage, jose.Header) {
	t.Helper()
	obj, err := jose.ParseSignedCompact(jws, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	h := obj.Signatures[0].Protected
	certs, err := h.Certificates(x509VerifyOpts(s))
	if err != nil {
		t.Fatalf("x5c chain: %v", err)
	}
	payload, err := obj.Verify(certs[0][0].PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	return m, h
}

func TestSignRequestRoundTrip(t *testing.T) {
	s := testSigner(t)
	k := testKey(t)
	leafHash := sha256.Sum256(s.Chain[0].Raw)
	wantCID := "x509_hash:" + base64.RawURLEncoding.EncodeToString(leafHash[:])
	dc := baseParams(k)
	dc.ResponseMode, dc.ResponseURI, dc.ExpectedOrigins = ModeDCAPIJWT, "", []string{"https://app.example"}
	fixedNonce := baseParams(k)
	fixedNonce.Nonce = "abcdefghijklmnopqrstuvwxyz012345"
	fixedNonce.WalletNonce = "wn-1"
	fixedNonce.ClientID = wantCID
	for _, tc := range []struct {
		name string
		p    RequestParams
		aud  string
	}{
		{"direct_post.jwt", baseParams(k), SelfIssuedAudience},
		{"dc_api.jwt", dc, ""},
		{"given nonce and matching client_id", fixedNonce, SelfIssuedAudience},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jws, err := SignRequest(tc.p, s)
			if err != nil {
				t.Fatal(err)
			}
			m, h := parseRequest(t, jws, s)
			if h.ExtraHeaders[jose.HeaderType] != RequestObjectType || h.Algorithm != "ES256" {
				t.Fatalf("header typ/alg: %v %v", h.ExtraHeaders, h.Algorithm)
			}
			str := func(k string) string {
				var v string
				if raw, ok := m[k]; ok {
					if err := json.Unmarshal(raw, &v); err != nil {
						t.Fatalf("%s: %v", k, err)
					}
				}
				return v
			}
			if got := str("client_id"); got != wantCID || got != X509HashClientID(s.Chain[0]) {
				t.Fatalf("client_id %q want %q", got, wantCID)
			}
			if str("response_type") != "vp_token" || str("response_mode") != tc.p.ResponseMode ||
				str("response_uri") != tc.p.ResponseURI || str("state") != tc.p.State || str("aud") != tc.aud ||
				str("wallet_nonce") != tc.p.WalletNonce {
				t.Fatalf("members: %s", jws)
			}
			if _, ok := m["redirect_uri"]; ok {
				t.Fatal("redirect_uri present")
			}
			n := str("nonce")
			if tc.p.Nonce != "" && n != tc.p.Nonce {
				t.Fatal("nonce not kept")
			}
			if raw, err := base64.RawURLEncoding.DecodeString(n); err != nil || len(raw) < 16 {
				t.Fatalf("nonce %q", n)
			}
			var iat, exp int64
			_ = json.Unmarshal(m["iat"], &iat)
			_ = json.Unmarshal(m["exp"], &exp)
			if iat != fixedNow.Unix() || exp != fixedNow.Add(DefaultRequestLifetime).Unix() {
				t.Fatalf("iat/exp %d %d", iat, exp)
			}
			var origins []string
			_ = json.Unmarshal(m["expected_origins"], &origins)
			if strings.Join(origins, ",") != strings.Join(tc.p.ExpectedOrigins, ",") {
				t.Fatalf("expected_origins %v", origins)
			}
			if string(m["dcql_query"]) != testQuery {
				t.Fatalf("dcql_query %s", m["dcql_query"])
			}
			var md struct {
				JWKS jose.JSONWebKeySet             `json:"jwks"`
				Enc  []string                       `json:"encrypted_response_enc_values_supported"`
				VPF  map[string]map[string][]string `json:"vp_formats_supported"`
			}
			if err := json.Unmarshal(m["client_metadata"], &md); err != nil {
				t.Fatal(err)
			}
			if len(md.JWKS.Keys) != 1 || md.JWKS.Keys[0].KeyID != k.KID() || md.JWKS.Keys[0].Algorithm != "ECDH-ES" ||
				md.JWKS.Keys[0].Use != "enc" || !md.JWKS.Keys[0].IsPublic() || strings.Join(md.Enc, ",") != "A128GCM,A256GCM" {
				t.Fatalf("client_metadata %s", m["client_metadata"])
			}
			if f := md.VPF["dc+sd-jwt"]; len(f["sd-jwt_alg_values"]) == 0 || f["sd-jwt_alg_values"][0] != "ES256" || len(f["kb-jwt_alg_values"]) == 0 {
				t.Fatalf("vp_formats_supported %v", md.VPF)
			}
			if !k.Public().Equal(md.JWKS.Keys[0].Key) {
				t.Fatal("jwks key is not the response key")
			}
		})
	}
}

func TestSignRequestRefusals(t *testing.T) {
	s := testSigner(t)
	k := testKey(t)
	other := testSigner(t)
	mod := func(f func(*RequestParams)) RequestParams { p := baseParams(k); f(&p); return p }
	for _, tc := range []struct {
		name   string
		p      RequestParams
		signer Signer
		want   error
	}{
		{"redirect_uri client_id cannot be signed", mod(func(p *RequestParams) { p.ClientID = "redirect_uri:https://as.example/dc/response" }), s, ErrUnsignable},
		{"redirect_uri with direct_post.jwt", mod(func(p *RequestParams) { p.RedirectURI = "https://app.example/cb" }), s, ErrInvalidRequest},
		{"missing response_uri", mod(func(p *RequestParams) { p.ResponseURI = "" }), s, ErrInvalidRequest},
		{"http response_uri", mod(func(p *RequestParams) { p.ResponseURI = "http://as.example/r" }), s, ErrInvalidRequest},
		{"wrong mode direct_post", mod(func(p *RequestParams) { p.ResponseMode = "direct_post" }), s, ErrInvalidRequest},
		{"wrong mode fragment", mod(func(p *RequestParams) { p.ResponseMode = "fragment" }), s, ErrInvalidRequest},
		{"empty mode", mod(func(p *RequestParams) { p.ResponseMode = "" }), s, ErrInvalidRequest},
		{"dc_api.jwt without expected_origins", mod(func(p *RequestParams) { p.ResponseMode, p.ResponseURI = ModeDCAPIJWT, "" }), s, ErrInvalidRequest},
		{"dc_api.jwt with response_uri", mod(func(p *RequestParams) { p.ResponseMode, p.ExpectedOrigins = ModeDCAPIJWT, []string{"https://a"} }), s, ErrInvalidRequest},
		{"expected_origins with direct_post.jwt", mod(func(p *RequestParams) { p.ExpectedOrigins = []string{"https://a"} }), s, ErrInvalidRequest},
		{"invalid dcql", mod(func(p *RequestParams) { p.DCQLQuery = json.RawMessage(`{"credentials":[]}`) }), s, ErrInvalidRequest},
		{"dcql duplicate member", mod(func(p *RequestParams) { p.DCQLQuery = json.RawMessage(`{"credentials":[],"credentials":[]}`) }), s, ErrInvalidRequest},
		{"short nonce", mod(func(p *RequestParams) { p.Nonce = "abc" }), s, ErrInvalidRequest},
		{"nonce not url-safe", mod(func(p *RequestParams) { p.Nonce = "abcdefghijklmnopqrstuvwxyz+/=012345" }), s, ErrInvalidRequest},
		{"state not url-safe", mod(func(p *RequestParams) { p.State = "a b" }), s, ErrInvalidRequest},
		{"no encryption key", mod(func(p *RequestParams) { p.EncryptionKey = nil }), s, ErrInvalidRequest},
		{"client_id of another leaf", mod(func(p *RequestParams) { p.ClientID = X509HashClientID(other.Chain[0]) }), s, ErrInvalidRequest},
		{"leaf does not hold key", baseParams(k), Signer{Key: s.Key, Chain: other.Chain}, ErrSigner},
		{"no chain", baseParams(k), Signer{Key: s.Key}, ErrSigner},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jws, err := SignRequest(tc.p, tc.signer)
			if !errors.Is(err, tc.want) || jws != "" {
				t.Fatalf("got %q, %v; want %v", jws, err, tc.want)
			}
		})
	}
}

func TestUnsignedRequest(t *testing.T) {
	k := testKey(t)
	p := baseParams(k)
	p.ClientID = "redirect_uri:" + p.ResponseURI
	ro, err := UnsignedRequest(p)
	if err != nil {
		t.Fatal(err)
	}
	if ro.ClientID != p.ClientID || ro.Aud != "" || ro.Iat != 0 || len(ro.Nonce) < 22 || ro.ResponseURI != p.ResponseURI {
		t.Fatalf("%+v", ro)
	}
	dc := baseParams(k)
	dc.ResponseMode, dc.ResponseURI = ModeDCAPIJWT, ""
	if ro, err := UnsignedRequest(dc); err != nil || ro.ClientID != "" {
		t.Fatalf("dc_api unsigned: %v %+v", err, ro)
	}
	bad := baseParams(k)
	bad.ClientID = "redirect_uri:https://elsewhere.example/r"
	for _, p := range []RequestParams{bad, baseParams(k)} {
		if _, err := UnsignedRequest(p); !errors.Is(err, ErrInvalidRequest) {
			t.Fatalf("want ErrInvalidRequest, got %v", err)
		}
	}
	p.RedirectURI = "https://app.example/cb"
	if _, err := UnsignedRequest(p); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("redirect_uri with direct_post.jwt: %v", err)
	}
}

func TestAudience(t *testing.T) {
	for _, tc := range []struct{ cid, origin, want string }{
		{"x509_hash:abc", "", "x509_hash:abc"},
		{"x509_hash:abc", "https://app.example", "origin:https://app.example"},
		{"", "android:apk-key-hash:xyz", "origin:android:apk-key-hash:xyz"},
	} {
		if got := Audience(tc.cid, tc.origin); got != tc.want {
			t.Fatalf("Audience(%q,%q)=%q", tc.cid, tc.origin, got)
		}
	}
}
