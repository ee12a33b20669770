package dctest_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fedas/fedas/dc"
	"github.com/fedas/fedas/dc/dctest"
	"github.com/fedas/fedas/dc/oid4vp"
	"github.com/fedas/fedas/dc/sdjwt"
)

var userClaims = map[string]any{"sub": "user-1", "given_name": "Erika", "family_name": "Mustermann", "birthdate": "1964-08-12"}

// The three paths a wallet answers on (docs/protocol.md "Digital credentials").
const (
	pathSameDevice  = "same_device"
	pathDCAPI       = "dc_api"
	pathInteractive = "interactive"
)

// setup is one issuer (static key or x5c), a wallet holding one PID and a
// stub transaction.
func setup(t *testing.T, x5c bool, td []string) (*dctest.Issuer, *dctest.Wallet, *dctest.Credential, *stub) {
	t.Helper()
	iss := dctest.NewIssuer(t, dctest.IssuerOptions{X5C: x5c, Now: now})
	w := dctest.NewWallet()
	w.Now = now
	c, err := w.Receive(iss, userClaims, dctest.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := newStub(t, iss, pidQuery, td)
	w.HTTP = s.srv.Client()
	return iss, w, c, s
}

// run drives one presentation on path and returns the stub's verdict (or
// the wallet's own error) and the Answer (same device only).
func run(t *testing.T, path string, w *dctest.Wallet, s *stub) (*dctest.Answer, error) {
	t.Helper()
	switch path {
	case pathSameDevice:
		ans, err := w.Present(context.Background(), s.walletURL())
		if err != nil {
			return nil, err
		}
		return ans, s.result()
	case pathDCAPI:
		jar, err := oid4vp.SignRequest(s.params(oid4vp.ModeDCAPIJWT), s.signer)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := json.Marshal(map[string]any{"requests": []any{map[string]any{"protocol": "openid4vp-v1-signed", "data": map[string]string{"request": jar}}}})
		data, err := w.DCAPI(string(req), origin)
		if err != nil {
			return nil, err
		}
		return nil, s.verifyData(data, oid4vp.Audience(s.clientID, origin))
	case pathInteractive:
		jar, err := oid4vp.SignRequest(s.params(oid4vp.ModeDCAPIJWT), s.signer)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := json.Marshal(map[string]string{"request": jar})
		data, err := w.Interactive(string(req))
		if err != nil {
			return nil, err
		}
		return nil, s.verifyData(data, s.clientID)
	}
	t.Fatalf("unknown path %s", path)
	return nil, nil
}

// TestKnobs is the evil-knob table over every path: the honest wallet is
// verified; each knob is refused by the dc/oid4vp or dc check it targets
// (errors.Is on the sentinel), with both issuer key kinds.
func TestKnobs(t *testing.T) {
	type row struct {
		name  string
		knobs dctest.Knobs
		// prime runs an honest presentation on another transaction first
		// (replay rows).
		prime bool
		// revoke / suspend the credential's status entry first.
		revoke, suspend bool
		want            error
		only            string // path the row applies to ("" all)
	}
	rows := []row{
		{name: "honest"},
		{name: "wrong nonce", knobs: dctest.Knobs{WrongNonce: true}, want: sdjwt.ErrKB},
		{name: "wrong aud", knobs: dctest.Knobs{WrongAud: true}, want: sdjwt.ErrKB},
		{name: "KB stripped", knobs: dctest.Knobs{StripKB: true}, want: sdjwt.ErrKBRequired},
		{name: "stale iat", knobs: dctest.Knobs{StaleIAT: true}, want: sdjwt.ErrKB},
		{name: "KB alg none", knobs: dctest.Knobs{KBAlgNone: true}, want: sdjwt.ErrKB},
		{name: "KB HS256", knobs: dctest.Knobs{KBHS256: true}, want: sdjwt.ErrKB},
		{name: "extra disclosure", knobs: dctest.Knobs{ExtraDisclosure: true}, want: sdjwt.ErrUnreferenced},
		{name: "dropped disclosure", knobs: dctest.Knobs{DropDisclosure: true}, want: dc.ErrMatch},
		{name: "typ vc+sd-jwt", knobs: dctest.Knobs{LegacyTyp: true}, want: sdjwt.ErrTyp},
		{name: "issuer alg none", knobs: dctest.Knobs{IssuerAlgNone: true}, want: sdjwt.ErrAlg},
		{name: "issuer HS256", knobs: dctest.Knobs{IssuerHS256: true}, want: sdjwt.ErrAlg},
		{name: "disclosure carrying iss", knobs: dctest.Knobs{DiscloseIss: true}, want: sdjwt.ErrForbiddenDisclose},
		{name: "disclosure carrying cnf", knobs: dctest.Knobs{DiscloseCnf: true}, want: sdjwt.ErrForbiddenDisclose},
		{name: "altered transaction data", knobs: dctest.Knobs{AlterTransactionData: true}, want: errTD},
		{name: "transaction data hashes omitted", knobs: dctest.Knobs{OmitTDHashes: true}, want: errTD},
		{name: "wrong state inside the JWE", knobs: dctest.Knobs{WrongState: true}, want: oid4vp.ErrState},
		{name: "unencrypted response", knobs: dctest.Knobs{Unencrypted: true}, want: errUnencrypted},
		{name: "replayed response", knobs: dctest.Knobs{Replay: true}, prime: true, want: oid4vp.ErrKeyMismatch},
		{name: "replayed vp_token", knobs: dctest.Knobs{ReplayVPToken: true}, prime: true, want: sdjwt.ErrKB},
		{name: "access_denied", knobs: dctest.Knobs{Deny: true}, want: errDenied},
		{name: "revoked credential", revoke: true, want: dc.ErrStatus},
		{name: "suspended credential", suspend: true, want: dc.ErrStatus},
	}
	for _, path := range []string{pathSameDevice, pathDCAPI, pathInteractive} {
		for _, x5c := range []bool{false, true} {
			for _, tc := range rows {
				if tc.only != "" && tc.only != path {
					continue
				}
				name := path + "/" + map[bool]string{false: "jwks", true: "x5c"}[x5c] + "/" + tc.name
				t.Run(name, func(t *testing.T) {
					iss, w, c, s := setup(t, x5c, []string{paymentTD(t)})
					if tc.prime {
						prev := newStub(t, iss, pidQuery, s.td)
						if _, err := run(t, path, w, prev); err != nil {
							t.Fatalf("priming presentation: %v", err)
						}
					}
					if tc.revoke {
						iss.Revoke(c.StatusIdx)
					}
					if tc.suspend {
						iss.Suspend(c.StatusIdx)
					}
					w.Knobs = tc.knobs
					_, err := run(t, path, w, s)
					if tc.want == nil {
						if err != nil {
							t.Fatalf("honest wallet refused: %v", err)
						}
						if len(s.creds) != 1 || s.creds[0].Subject != iss.ID+"|user-1" || s.creds[0].Claims["given_name"] != "Erika" ||
							len(s.creds[0].TransactionDataHashes) != 1 || s.creds[0].TransactionDataHashesAlg != "sha-256" {
							t.Fatalf("verified %+v", s.creds)
						}
						return
					}
					if !errors.Is(err, tc.want) {
						t.Fatalf("err = %v, want %v", err, tc.want)
					}
				})
			}
		}
	}
}

// TestPresentSameDevice: the honest same-device answer carries the
// redirect_uri; a second POST (PostTwice) and a second request_uri fetch
// (FetchTwice) are refused by a verifier that enforces single use.
func TestPresentSameDevice(t *testing.T) {
	tests := []struct {
		name          string
		knobs         dctest.Knobs
		second, fetch int
	}{
		{name: "honest"},
		{name: "post twice", knobs: dctest.Knobs{PostTwice: true}, second: http.StatusBadRequest},
		{name: "fetch twice", knobs: dctest.Knobs{FetchTwice: true}, fetch: http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, w, _, s := setup(t, true, nil)
			w.Knobs = tc.knobs
			ans, err := w.Present(context.Background(), s.walletURL())
			if err != nil {
				t.Fatal(err)
			}
			if ans.Status != http.StatusOK || ans.RedirectURI != "https://app.example/cb?response_code=rc-1" || s.result() != nil {
				t.Fatalf("answer %d %q, stub %v", ans.Status, ans.RedirectURI, s.result())
			}
			if ans.SecondStatus != tc.second || ans.RefetchStatus != tc.fetch {
				t.Fatalf("second post %d, refetch %d", ans.SecondStatus, ans.RefetchStatus)
			}
			if ans.Request == nil || ans.Request.ClientID != s.clientID || ans.Request.WalletNonce == "" {
				t.Fatalf("request %+v", ans.Request)
			}
		})
	}
}

// TestWalletRefuses: what the wallet itself refuses before answering
// (OpenID4VP 1.0 §5, §5.9.3, §5.10, App. A.2), and that it then posts
// nothing.
func TestWalletRefuses(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, w *dctest.Wallet, s *stub) error
		want error
	}{
		{"client_id differs from the wallet URL", func(t *testing.T, w *dctest.Wallet, s *stub) error {
			u := strings.Replace(s.walletURL(), url.QueryEscape(s.clientID), url.QueryEscape("x509_hash:AAAA"), 1)
			_, err := w.Present(context.Background(), u)
			return err
		}, dctest.ErrRequest},
		{"wallet_nonce not echoed", func(t *testing.T, w *dctest.Wallet, s *stub) error {
			s.noEcho = true
			_, err := w.Present(context.Background(), s.walletURL())
			return err
		}, dctest.ErrRequest},
		{"x5c not anchored in the wallet's roots", func(t *testing.T, w *dctest.Wallet, s *stub) error {
			_, other := signer(t)
			w.VerifierRoots = other
			_, err := w.Present(context.Background(), s.walletURL())
			return err
		}, dctest.ErrRequest},
		{"x5c anchored in the wallet's roots", func(t *testing.T, w *dctest.Wallet, s *stub) error {
			w.VerifierRoots = s.roots
			_, err := w.Present(context.Background(), s.walletURL())
			return err
		}, nil},
		{"request object typ JWT", func(t *testing.T, w *dctest.Wallet, s *stub) error {
			jar, _ := oid4vp.SignRequest(s.params(oid4vp.ModeDCAPIJWT), s.signer)
			_, err := w.Interactive(`{"request":"` + retype(t, jar, s) + `"}`)
			return err
		}, dctest.ErrRequest},
		{"DC API origin not expected", func(t *testing.T, w *dctest.Wallet, s *stub) error {
			jar, _ := oid4vp.SignRequest(s.params(oid4vp.ModeDCAPIJWT), s.signer)
			_, err := w.DCAPI(`{"requests":[{"protocol":"openid4vp-v1-signed","data":{"request":"`+jar+`"}}]}`, "https://evil.example")
			return err
		}, dctest.ErrOrigin},
		{"unsigned redirect_uri request without AllowUnsigned", func(t *testing.T, w *dctest.Wallet, s *stub) error {
			_, err := w.Present(context.Background(), unsignedURL(t, s))
			return err
		}, dctest.ErrRequest},
		{"redirect_uri client_id is not the response_uri", func(t *testing.T, w *dctest.Wallet, s *stub) error {
			w.AllowUnsigned = true
			u := strings.Replace(unsignedURL(t, s), "client_id=redirect_uri%3A", "client_id=redirect_uri%3Ahttps%3A%2F%2Fevil.example%2F", 1)
			_, err := w.Present(context.Background(), u)
			return err
		}, dctest.ErrRequest},
		{"no credential for the query", func(t *testing.T, w *dctest.Wallet, s *stub) error {
			s.query = strings.Replace(pidQuery, "urn:eudi:pid:1", "urn:example:mdl", 1)
			_, err := w.Present(context.Background(), s.walletURL())
			return err
		}, dctest.ErrNoCredential},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, w, _, s := setup(t, false, nil)
			err := tc.run(t, w, s)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.want != nil && s.answered {
				t.Fatal("the wallet posted a response after refusing the request")
			}
		})
	}
}

// TestUnsigned: an unsigned DC API request (openid4vp-v1-unsigned, App.
// A.2) and, with AllowUnsigned, a redirect_uri: request by value (§5.9.3,
// tests only) are answered and verify.
func TestUnsigned(t *testing.T) {
	t.Run("dc api unsigned", func(t *testing.T) {
		_, w, _, s := setup(t, false, nil)
		p := s.params(oid4vp.ModeDCAPIJWT)
		p.ExpectedOrigins = nil
		ro, err := oid4vp.UnsignedRequest(p)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := json.Marshal(map[string]any{"requests": []any{map[string]any{"protocol": "openid4vp-v1-unsigned", "data": ro}}})
		data, err := w.DCAPI(string(req), origin)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.verifyData(data, "origin:"+origin); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("redirect_uri by value", func(t *testing.T) {
		_, w, _, s := setup(t, false, nil)
		w.AllowUnsigned = true
		ans, err := w.Present(context.Background(), unsignedURL(t, s))
		if err != nil {
			t.Fatal(err)
		}
		if ans.Status != http.StatusOK || s.result() != nil {
			t.Fatalf("status %d, stub %v", ans.Status, s.result())
		}
	})
}

// TestPresentAnswers: the Answer carries what the response_uri returned on
// each path (same device redirect_uri, cross device {}, presentation during
// issuance), and a request_uri without request_uri_method=post is fetched
// with GET and no wallet_nonce.
func TestPresentAnswers(t *testing.T) {
	tests := []struct {
		name, body, redirect, pdis string
		get                        bool
	}{
		{name: "same device", redirect: "https://app.example/cb?response_code=rc-1"},
		{name: "cross device", body: `{}`},
		{name: "presentation during issuance", body: `{"presentation_during_issuance_session":"pdis-1"}`, pdis: "pdis-1"},
		{name: "GET request_uri", get: true, redirect: "https://app.example/cb?response_code=rc-1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, w, _, s := setup(t, false, nil)
			s.answer = tc.body
			u := s.walletURL()
			if tc.get {
				u = strings.Replace(u, "&request_uri_method=post", "", 1)
			}
			ans, err := w.Present(context.Background(), u)
			if err != nil {
				t.Fatal(err)
			}
			if ans.Status != http.StatusOK || s.result() != nil || ans.RedirectURI != tc.redirect || ans.PresentationDuringIssuanceSession != tc.pdis {
				t.Fatalf("answer %+v, stub %v", ans, s.result())
			}
			if tc.get != (ans.Request.WalletNonce == "") {
				t.Fatalf("wallet_nonce %q", ans.Request.WalletNonce)
			}
		})
	}
}

// TestSelection: the wallet answers claim_sets with the first set it can
// satisfy and credential_sets with the first available option (OpenID4VP
// 1.0 §6.4), and what it sends satisfies dcql.Match inside VerifyVPToken.
func TestSelection(t *testing.T) {
	tests := []struct {
		name, query string
		want        []string // query ids presented
	}{
		{"claim_sets", `{"credentials":[{"id":"pid","format":"dc+sd-jwt","meta":{"vct_values":["urn:eudi:pid:1"]},` +
			`"claims":[{"id":"a","path":["nationality"]},{"id":"b","path":["given_name"]},{"id":"c","path":["sub"]}],"claim_sets":[["a"],["b","c"]]}]}`, []string{"pid"}},
		{"credential_sets", `{"credentials":[{"id":"mdl","format":"dc+sd-jwt","meta":{"vct_values":["urn:example:mdl"]}},` +
			`{"id":"pid","format":"dc+sd-jwt","meta":{"vct_values":["urn:eudi:pid:1"]},"claims":[{"path":["birthdate"]}]}],` +
			`"credential_sets":[{"options":[["mdl"],["pid"]]}]}`, []string{"pid"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iss := dctest.NewIssuer(t, dctest.IssuerOptions{Now: now})
			w := dctest.NewWallet()
			w.Now = now
			if _, err := w.Receive(iss, userClaims, dctest.IssueOptions{}); err != nil {
				t.Fatal(err)
			}
			s := newStub(t, iss, tc.query, nil)
			w.HTTP = s.srv.Client()
			ans, err := w.Present(context.Background(), s.walletURL())
			if err != nil || ans.Status != http.StatusOK || s.result() != nil {
				t.Fatalf("present: %v %+v stub %v", err, ans, s.result())
			}
			var got []string
			for _, c := range s.creds {
				got = append(got, c.QueryID)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("presented %v, want %v", got, tc.want)
			}
		})
	}
}
