package flow

import (
	"net/url"
	"strings"
	"testing"

	"github.com/ory/fosite"

	"github.com/fedas/fedas/policy"
)

// fuzzClients are a public and a confidential client with registered
// native callbacks, redirect URIs and scopes.
var fuzzClients = []*policy.Client{
	fuzzClient("demo-app", true),
	fuzzClient("fp-conf", false),
}

func fuzzClient(id string, public bool) *policy.Client {
	return &policy.Client{
		DefaultOpenIDConnectClient: &fosite.DefaultOpenIDConnectClient{DefaultClient: &fosite.DefaultClient{
			ID: id, Public: public, Scopes: []string{"openid", "profile", "offline_access"},
			RedirectURIs: []string{"https://" + id + ".example/cb", "https://" + id + ".example/cb2?x=1"},
		}},
		NativeCallbackURIs: []string{"https://app.example/cb", "com.example.demo:/cb", "https://app.example/cb/ünï"},
	}
}

const fuzzChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

// FuzzParseInitial: the one parser of initial requests (parseInitial,
// every channel that starts a session) never panics, and what it accepts
// carries only the known parameters, each within its length limit, with
// response_type=code; a native_callback_uri and a redirect_uri exactly
// (byte for byte) equal to one the client registered (RFC 9700 §2.1;
// docs/decisions.md Q15); only registered scopes; and for a public
// client an S256 code_challenge (RFC 9700 §2.1.1).
func FuzzParseInitial(f *testing.F) {
	base := "response_type=code&code_challenge=" + fuzzChallenge + "&code_challenge_method=S256&scope=openid"
	for _, s := range []string{
		base,
		base + "&native_callback_uri=https%3A%2F%2Fapp.example%2Fcb",
		base + "&native_callback_uri=com.example.demo%3A%2Fcb",
		base + "&native_callback_uri=https%3A%2F%2Fapp.example%2Fcb%2F%C3%BCn%C3%AF",
		base + "&native_callback_uri=https%3A%2F%2Fapp.example%2Fcb%2F",
		base + "&native_callback_uri=https%3A%2F%2FAPP.example%2Fcb",
		base + "&native_callback_uri=https%3A%2F%2Fapp.example%2Fcb%3Fx%3D1",
		base + "&native_callback_uri=https%3A%2F%2Fapp.example%2Fcb%23f",
		base + "&native_callback_uri=https%3A%2F%2Fapp.example%2F%63b",
		base + "&native_callback_uri=https%3A%2F%2Fapp.example%2Fcb%00",
		base + "&native_callback_uri=https%3A%2F%2Fapp.example%2Fcb%2Fu%CC%88n%C3%AF",
		base + "&native_callback_uri=https%3A%2F%2Fapp.example.evil%2Fcb",
		base + "&redirect_uri=https%3A%2F%2Fdemo-app.example%2Fcb",
		base + "&redirect_uri=https%3A%2F%2Fdemo-app.example%2Fcb2%3Fx%3D1",
		base + "&redirect_uri=https%3A%2F%2Fdemo-app.example%2Fcb2%3Fx%3D2",
		base + "&scope=openid+profile+offline_access&state=state-12345&nonce=n&max_age=300&acr_values=urn%3Aacr%3A1&login_hint=carol",
		base + "&scope=openid+admin",
		base + "&dpop_jkt=" + fuzzChallenge,
		base + "&dpop_jkt=short",
		base + "&max_age=-1",
		"response_type=code&scope=openid",
		"response_type=code&code_challenge=" + fuzzChallenge + "&code_challenge_method=plain",
		"response_type=code&code_challenge_method=S256",
		"response_type=token",
		"",
	} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(1))
	}
	f.Fuzz(func(t *testing.T, body string, which uint8) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		c := fuzzClients[int(which)%len(fuzzClients)]
		req, refusal := parseInitial(c, form)
		if refusal != nil {
			if req != nil || refusal.Code == "" {
				t.Fatalf("refusal %+v with request %v", refusal, req)
			}
			return
		}
		if form.Get("response_type") != "code" {
			t.Fatalf("accepted response_type %q", form.Get("response_type"))
		}
		for k, v := range req {
			limit, known := paramLimits[k]
			if !known || len(v) > limit || v == "" || v != form.Get(k) {
				t.Fatalf("carried %s=%q (limit %d, known %v, sent %q)", k, v, limit, known, form.Get(k))
			}
		}
		if cb, ok := req["native_callback_uri"]; ok && !exactlyOneOf(cb, c.NativeCallbackURIs) {
			t.Fatalf("accepted native_callback_uri %q, registered %q", cb, c.NativeCallbackURIs)
		}
		if ru, ok := req["redirect_uri"]; ok && !exactlyOneOf(ru, c.GetRedirectURIs()) {
			t.Fatalf("accepted redirect_uri %q, registered %q", ru, c.GetRedirectURIs())
		}
		for _, sc := range strings.Fields(req["scope"]) {
			if !exactlyOneOf(sc, c.GetScopes()) {
				t.Fatalf("accepted scope %q", sc)
			}
		}
		cc, ok := req["code_challenge"]
		switch {
		case !ok && c.IsPublic():
			t.Fatal("accepted a public client's request without PKCE")
		case ok && (req["code_challenge_method"] != "S256" || !IsSHA256Value(cc)):
			t.Fatalf("accepted code_challenge %q method %q", cc, req["code_challenge_method"])
		}
	})
}

// exactlyOneOf is the oracle's own exact comparison.
func exactlyOneOf(v string, list []string) bool {
	n := 0
	for _, x := range list {
		if len(x) == len(v) && x == v {
			n++
		}
	}
	return n == 1
}
