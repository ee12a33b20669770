package federation

import (
	"encoding/json"
	"testing"

	"github.com/fedas/fedas/netguard"
)

func fzMetadata(mod func(map[string]any)) []byte {
	var doc map[string]any
	if err := json.Unmarshal([]byte(fzMetadataJSON), &doc); err != nil {
		panic(err)
	}
	if mod != nil {
		mod(doc)
	}
	b, _ := json.Marshal(doc)
	return b
}

// FuzzParseMetadata: downstream metadata (RFC 8414 §3.2; metadata.go
// parseMetadata) never panics, and a document it accepts is a JSON object
// whose exact "issuer" member is the configured issuer, byte for byte
// (§3.3, the mix-up defence), that has a token_endpoint, and whose every
// endpoint we would call (authorization, PAR, token, native, jwks_uri) is
// one the SSRF guard admits (netguard.CheckURL: https, no userinfo or
// fragment, no loopback, private, link-local or otherwise non-public
// address in any spelling; loopback only in dev) and is the document's
// exact member.
func FuzzParseMetadata(f *testing.F) {
	seeds := [][]byte{
		[]byte(fzMetadataJSON),
		fzMetadata(func(d map[string]any) {
			delete(d, "authorization_challenge_endpoint")
			d["native_authorization_endpoint"] = fzIssuer + "/native"
		}),
		fzMetadata(func(d map[string]any) { d["issuer"] = fzIssuer + "/" }),
		fzMetadata(func(d map[string]any) { d["issuer"] = "https://DS.example" }),
		fzMetadata(func(d map[string]any) { d["ISSUER"] = fzIssuer; d["issuer"] = "https://evil.example" }),
		fzMetadata(func(d map[string]any) { delete(d, "token_endpoint") }),
		fzMetadata(func(d map[string]any) { d["token_endpoint"] = "http://ds.example/token" }),
		fzMetadata(func(d map[string]any) { d["token_endpoint"] = "https://user:pw@ds.example/token" }),
		fzMetadata(func(d map[string]any) { d["token_endpoint"] = "https://ds.example/token#f" }),
		fzMetadata(func(d map[string]any) { d["token_endpoint"] = "//ds.example/token" }),
		fzMetadata(func(d map[string]any) { d["token_endpoint"] = "https:ds.example/token" }),
		fzMetadata(func(d map[string]any) { d["token_endpoint"] = "https://127.0.0.1/token" }),
		fzMetadata(func(d map[string]any) { d["token_endpoint"] = "https://localhost/token" }),
		fzMetadata(func(d map[string]any) { d["jwks_uri"] = "https://169.254.169.254/latest" }),
		fzMetadata(func(d map[string]any) { d["jwks_uri"] = "https://10.0.0.1/jwks" }),
		fzMetadata(func(d map[string]any) { d["jwks_uri"] = "https://[::1]/jwks" }),
		fzMetadata(func(d map[string]any) { d["jwks_uri"] = "https://[fe80::1]/jwks" }),
		fzMetadata(func(d map[string]any) { d["jwks_uri"] = "https://[::ffff:10.0.0.1]/jwks" }),
		fzMetadata(func(d map[string]any) { d["jwks_uri"] = "https://[2606:4700::1111]:8443/jwks" }),
		fzMetadata(func(d map[string]any) { d["pushed_authorization_request_endpoint"] = 1 }),
		fzMetadata(func(d map[string]any) { d["dpop_signing_alg_values_supported"] = "ES256" }),
		fzMetadata(func(d map[string]any) { d["require_pushed_authorization_requests"] = "true" }),
		[]byte(`{"issuer":"` + fzIssuer + `","token_endpoint":"https://ds.example/t","token_endpoint":"https://10.1.1.1/t"}`),
		[]byte(`{"issuer":"` + fzIssuer + `","token_endpoint":"https://ds.example/t","Token_Endpoint":"https://other.example/t"}`),
		[]byte(`{"issuer":"https://evil.example","ISSUER":"` + fzIssuer + `","token_endpoint":"https://ds.example/t"}`),
		[]byte(`null`),
		[]byte(`[]`),
		[]byte(``),
		[]byte(`{}`),
	}
	for _, s := range seeds {
		f.Add(s, false)
	}
	f.Add([]byte(`{"issuer":"http://127.0.0.1:8080","token_endpoint":"http://127.0.0.1:8080/token"}`), true)
	f.Add([]byte(`{"issuer":"`+fzIssuer+`","token_endpoint":"http://localhost:8080/token","jwks_uri":"http://10.0.0.1/jwks"}`), true)
	f.Fuzz(func(t *testing.T, body []byte, dev bool) {
		issuer := fzIssuer
		if dev {
			issuer = "http://127.0.0.1:8080"
		}
		md, err := parseMetadata(WellKnownURL(issuer), issuer, body, dev)
		if err != nil {
			return
		}
		var raw map[string]any
		if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
			t.Fatalf("accepted a document that is not a JSON object: %v", err)
		}
		if raw["issuer"] != issuer || md.Issuer != issuer {
			t.Fatalf("accepted issuer %v (parsed %q) for %s", raw["issuer"], md.Issuer, issuer)
		}
		if md.TokenEndpoint == "" {
			t.Fatal("accepted without a token_endpoint")
		}
		native := raw["authorization_challenge_endpoint"]
		if native == nil || native == "" {
			native = raw["native_authorization_endpoint"]
		}
		for name, ep := range map[string]struct {
			got  string
			want any
		}{
			"authorization_endpoint":                {md.AuthorizationEndpoint, raw["authorization_endpoint"]},
			"pushed_authorization_request_endpoint": {md.PAREndpoint, raw["pushed_authorization_request_endpoint"]},
			"token_endpoint":                        {md.TokenEndpoint, raw["token_endpoint"]},
			"native endpoint":                       {md.NativeEndpoint, native},
			"jwks_uri":                              {md.JWKSURI, raw["jwks_uri"]},
		} {
			if ep.got == "" && (ep.want == nil || ep.want == "") {
				continue
			}
			if ep.got != ep.want {
				t.Fatalf("%s is %q, the document's member is %v", name, ep.got, ep.want)
			}
			if err := netguard.CheckURL(ep.got, netguard.Options{AllowLoopback: dev}); err != nil {
				t.Fatalf("accepted %s %q: %v", name, ep.got, err)
			}
		}
	})
}
