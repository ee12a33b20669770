package federation

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"unicode"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/internal/testkeys"
	"github.com/fedas/fedas/par"
)

// fzFederator is a Federator with one downstream, fzIssuer, reached only
// through the in-memory fzDownstream, and a prompt with an option and
// the email and phone inputs.
func fzFederator(tb testing.TB, d *fzDownstream) *Federator {
	tb.Helper()
	cfg := &config.Config{
		Downstreams: []config.Downstream{{ID: "ds", Issuer: fzIssuer, ClientID: fzClientID,
			Auth: config.DownstreamAuth{Method: "client_secret_basic", Secret: "s"}}},
		Routes: []config.Route{
			{Clients: []string{"direct"}, Downstream: "ds"},
			{EmailDomains: []string{"Bank.Example"}, Downstream: "ds"},
			{Option: &config.RouteOption{Key: "bank", Value: "firstBank"}, Downstream: "ds"},
			{Clients: []string{"mobile"}, Option: &config.RouteOption{Key: "bank", Value: "secondBank"}, App: "wallet"},
		},
		DefaultRoute: "local",
		Prompt: &config.Prompt{
			Options: []config.PromptOption{{Key: "bank", Values: []config.PromptValue{{Value: "firstBank", Name: "First"}, {Value: "secondBank", Name: "Second"}}}},
			Inputs:  []config.PromptInput{{Key: "email"}, {Key: "phone"}},
		},
	}
	f, err := New(cfg, nil, []byte("fedas fuzz downstream dpop seed."))
	if err != nil {
		tb.Fatal(err)
	}
	f.Now = fzClock
	f.meta = NewMetadataCache(MetadataOptions{HTTPClient: d.client(), Now: fzClock})
	f.jwks = fzKeyCache(tb, d)
	f.ds["ds"].http = d.client()
	return f
}

// FuzzAnswer: the insufficient_information answer parser (federation
// draft §4.3.3; Federator.Answer, which the flow engine calls for every
// prompt answer) never panics, is deterministic, and accepts only the
// prompt's own keys (plus auth_session and client_id), option values it
// offered, an email of at most 254 bytes with one "@", something on both
// sides and no control or space characters outside the local part, and
// an E.164 phone number; at least one of them answered.
func FuzzAnswer(f *testing.F) {
	fed := fzFederator(f, &fzDownstream{})
	for _, s := range []string{
		"auth_session=x&bank=firstBank",
		"auth_session=x&bank=secondBank",
		"bank=thirdBank",
		"email=carol%40bank.example",
		"email=Carol%40BANK.EXAMPLE&client_id=demo-app",
		"email=carol%40bank.example.",
		"email=%22carol%22%40bank.example",
		"email=%22a+b%22%40bank.example",
		"email=Carol+%3Ccarol%40bank.example%3E",
		"email=a%40b%40bank.example",
		"email=carol%40bank.example%0d%0aX:1",
		"email=carol%40%5B127.0.0.1%5D",
		"email=" + strings.Repeat("a", 250) + "%40b.c",
		"phone=%2B15551234567",
		"phone=15551234567",
		"phone=%2B0123",
		"other=1",
		"",
		"auth_session=x",
		"bank=firstBank&email=carol%40corp.example&phone=%2B4930123456",
	} {
		f.Add(s, "demo-app")
		f.Add(s, "mobile")
	}
	f.Fuzz(func(t *testing.T, body, client string) {
		answers, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		target, err := fed.Answer(client, answers)
		again, err2 := fed.Answer(client, answers)
		if target != again || (err == nil) != (err2 == nil) {
			t.Fatalf("not deterministic: %+v %v, then %+v %v", target, err, again, err2)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidAnswer) {
				t.Fatalf("refusal %v is not ErrInvalidAnswer", err)
			}
			return
		}
		answered := 0
		for k := range answers {
			v := answers.Get(k)
			switch k {
			case "auth_session", "client_id":
				continue
			case "bank":
				if v != "" && v != "firstBank" && v != "secondBank" {
					t.Fatalf("accepted bank %q", v)
				}
			case "email":
				if v != "" && !plausibleEmail(v) {
					t.Fatalf("accepted email %q", v)
				}
			case "phone":
				if v != "" && (len(v) < 8 || len(v) > 16 || v[0] != '+' || strings.Trim(v[1:], "0123456789") != "") {
					t.Fatalf("accepted phone %q", v)
				}
			default:
				t.Fatalf("accepted unexpected parameter %q", k)
			}
			if v != "" {
				answered++
			}
		}
		if answered == 0 {
			t.Fatal("accepted an empty answer")
		}
		if !target.Local && !target.Deny && target.Downstream != "ds" && target.App != "wallet" {
			t.Fatalf("routed to %+v", target)
		}
	})
}

// plausibleEmail is the oracle's own weaker email rule.
func plausibleEmail(v string) bool {
	local, domain, ok := strings.Cut(v, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") || len(v) > 254 {
		return false
	}
	for _, r := range domain {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	for _, r := range local {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// fzVerifier is a valid RFC 7636 §4.1 code_verifier for the hops.
const fzVerifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

func fzTokenBody(typ, idToken string) []byte {
	b, _ := json.Marshal(map[string]any{"access_token": "at", "token_type": typ, "expires_in": 300, "id_token": idToken})
	return b
}

// FuzzComplete: a hop's completion (Federator.Complete: the downstream's
// token response, RFC 6749 §5.1, and its ID token) never panics; a
// refusal is ErrRejected or ErrUnavailable (ours or par's); and an identity comes only
// from a 200 response whose exact members carry an access_token, a
// token_type of Bearer or DPoP (DPoP when the hop is DPoP-bound: RFC 9449
// §5), and an ID token that passes the ID token oracle, its iss and sub
// being the identity's. The fuzzer writes the status and body; an id_token
// in the body may be the marker ID, which the target replaces by a token
// it signs over the fuzzer's claims.
func FuzzComplete(f *testing.F) {
	d := &fzDownstream{}
	fed := fzFederator(f, d)
	const mark = "ID"
	es := `{"alg":"ES256","kid":"es"}`
	add := func(status int, body []byte, claims string, dpopBound bool) {
		f.Add(uint16(status), body, es, claims, dpopBound)
	}
	add(200, fzTokenBody("Bearer", mark), fzIDClaims(nil), false)
	add(200, fzTokenBody("DPoP", mark), fzIDClaims(nil), true)
	add(200, fzTokenBody("dpop", mark), fzIDClaims(nil), false)
	add(200, fzTokenBody("Bearer", mark), fzIDClaims(nil), true)
	add(200, fzTokenBody("mac", mark), fzIDClaims(nil), false)
	add(200, fzTokenBody("Bearer", ""), fzIDClaims(nil), false)
	add(200, fzTokenBody("Bearer", mark), fzIDClaims(func(c map[string]any) { c["nonce"] = "other" }), false)
	add(200, []byte(`{"access_token":"at","token_type":"Bearer","TOKEN_TYPE":"DPoP","id_token":"ID"}`), fzIDClaims(nil), true)
	add(200, []byte(`{"ACCESS_TOKEN":"at","token_type":"Bearer","id_token":"ID"}`), fzIDClaims(nil), false)
	add(200, []byte(`{"access_token":"at","token_type":"Bearer","expires_in":"300","id_token":"ID"}`), fzIDClaims(nil), false)
	add(200, []byte(`{"access_token":"at","token_type":"Bearer","expires_in":-1,"id_token":"ID"}`), fzIDClaims(nil), false)
	add(200, []byte(`{"access_token":"","token_type":"Bearer","id_token":"ID"}`), fzIDClaims(nil), false)
	add(200, []byte(`{"access_token":1}`), "", false)
	add(200, []byte(`[]`), "", false)
	add(200, []byte(`not json`), "", false)
	add(400, []byte(`{"error":"invalid_grant","error_description":"bad \"code\""}`), "", false)
	add(429, []byte(`{"error":"slow_down"}`), "", false)
	add(503, []byte(``), "", false)
	add(302, []byte(``), "", false)
	add(201, fzTokenBody("Bearer", mark), fzIDClaims(nil), false)
	f.Fuzz(func(t *testing.T, status uint16, body []byte, protected, claims string, dpopBound bool) {
		if status < 100 || status > 999 {
			return
		}
		idToken := testkeys.Compact(protected, claims, fzSigners[0].alg, fzSigners[0].key)
		d.mu.Lock()
		d.tokenStatus, d.tokenBody = int(status), []byte(strings.Replace(string(body), `"`+mark+`"`, `"`+idToken+`"`, 1))
		sent := d.tokenBody
		d.mu.Unlock()
		hop := Hop{ID: "hop", Downstream: "ds", Issuer: fzIssuer, Verifier: fzVerifier, Nonce: fzNonce, Began: fzNow, DPoP: dpopBound}
		id, err := fed.Complete(context.Background(), hop, "code", "")
		if err != nil {
			if !errors.Is(err, ErrRejected) && !errors.Is(err, ErrUnavailable) && !errors.Is(err, par.ErrUnavailable) {
				t.Fatalf("refusal %v is neither ErrRejected nor ErrUnavailable", err)
			}
			return
		}
		if status != 200 {
			t.Fatalf("completed on status %d", status)
		}
		var tr map[string]any
		if err := json.Unmarshal(sent, &tr); err != nil {
			t.Fatalf("completed on a body that is not a JSON object: %v", err)
		}
		if at, _ := tr["access_token"].(string); at == "" {
			t.Fatalf("completed without an access_token: %s", sent)
		}
		typ, _ := tr["token_type"].(string)
		if !strings.EqualFold(typ, "DPoP") && (dpopBound || !strings.EqualFold(typ, "Bearer")) {
			t.Fatalf("completed a hop (DPoP-bound %v) with token_type %q", dpopBound, typ)
		}
		tok, _ := tr["id_token"].(string)
		c := checkFzIDToken(t, tok)
		if id.Issuer != c["iss"] || id.Subject != c["sub"] {
			t.Fatalf("identity %s|%s, the ID token says %v|%v", id.Issuer, id.Subject, c["iss"], c["sub"])
		}
	})
}
