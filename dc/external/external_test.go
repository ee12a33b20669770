package external_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fedas/fedas/dc"
	"github.com/fedas/fedas/dc/external"
)

// TestExternalFlows drives the adapter against the EUDI-V fake over real
// HTTP on 127.0.0.1, one row per path and per way the service or the
// wallet can misbehave. Every row also asserts the transaction_id leaks
// nowhere (Transaction fields, errors) and the bearer token was sent on
// every Verifier API call.
func TestExternalFlows(t *testing.T) {
	tamperIssuerJWT := func(vp map[string][]string) {
		for k, l := range vp {
			for i, s := range l {
				parts := strings.SplitN(s, ".", 3)
				parts[1] = parts[1][:len(parts[1])-2] + "AA" // flip payload bits
				l[i] = strings.Join(parts, ".")
			}
			vp[k] = l
		}
	}
	dropKB := func(vp map[string][]string) {
		for k, l := range vp {
			for i, s := range l {
				l[i] = s[:strings.LastIndex(s, "~")+1]
			}
			vp[k] = l
		}
	}
	cases := []struct {
		name   string
		mod    func(o *external.Options)
		flow   dc.Flow
		td     bool
		w      wallet
		before func(e *env)             // before Begin
		mid    func(e *env)             // after the wallet posted
		code   func(real string) string // same device: the code the client posts
		err    error                    // nil: verified
		status dc.Status
		wErr   string
	}{
		{name: "same_device_verified", flow: dc.FlowSameDevice},
		{name: "cross_device_verified", flow: dc.FlowCrossDevice},
		{name: "same_device_transaction_data_verified", flow: dc.FlowSameDevice, td: true},
		{name: "cross_device_transaction_data_verified", flow: dc.FlowCrossDevice, td: true},
		{name: "tampered_vp_token_refused", flow: dc.FlowCrossDevice, mid: func(e *env) { e.fake.SetTamper(tamperIssuerJWT) },
			err: dc.ErrRejected, status: dc.StatusError, wErr: "invalid_presentation"},
		{name: "kb_stripped_by_verifier_refused", flow: dc.FlowSameDevice, mid: func(e *env) { e.fake.SetTamper(dropKB) },
			err: dc.ErrRejected, status: dc.StatusError, wErr: "invalid_presentation"},
		{name: "wallet_wrong_nonce_refused", flow: dc.FlowSameDevice, w: wallet{nonce: "AAAAAAAAAAAAAAAAAAAAAA"},
			err: dc.ErrRejected, status: dc.StatusError, wErr: "invalid_presentation"},
		{name: "verifier_substitutes_nonce_refused", flow: dc.FlowCrossDevice, before: func(e *env) { e.fake.SetNonce("BBBBBBBBBBBBBBBBBBBBBB") },
			err: dc.ErrRejected, status: dc.StatusError, wErr: "invalid_presentation"},
		{name: "wrong_audience_refused", flow: dc.FlowCrossDevice, w: wallet{aud: "x509_hash:someone-else"},
			err: dc.ErrRejected, status: dc.StatusError, wErr: "invalid_presentation"},
		{name: "transaction_data_hash_wrong_refused", flow: dc.FlowSameDevice, td: true, w: wallet{tdHashes: []string{"bm90LXRoZS1oYXNo"}},
			err: dc.ErrRejected, status: dc.StatusError, wErr: "invalid_presentation"},
		{name: "transaction_data_unconfirmed_refused", flow: dc.FlowCrossDevice, td: true, w: wallet{tdHashes: []string{}},
			err: dc.ErrRejected, status: dc.StatusError, wErr: "invalid_presentation"},
		{name: "wallet_error_relayed_as_code_only", flow: dc.FlowCrossDevice, w: wallet{walletErr: "access_denied"},
			status: dc.StatusError, wErr: "access_denied"},
		{name: "wrong_response_code", flow: dc.FlowSameDevice, code: func(string) string { return "not-the-code" }, err: dc.ErrResponseCode},
		{name: "same_device_without_code_wrong_flow", flow: dc.FlowSameDevice, code: func(string) string { return "" }, err: dc.ErrWrongFlow},
		{name: "cross_device_with_code_wrong_flow", flow: dc.FlowCrossDevice, code: func(string) string { return "some-code" }, err: dc.ErrWrongFlow},
		{name: "verifier_500_unavailable", flow: dc.FlowCrossDevice, mid: func(e *env) { e.fake.SetStatus(http.StatusInternalServerError) }, err: dc.ErrUnavailable},
		{name: "verifier_401_unavailable", flow: dc.FlowSameDevice, mid: func(e *env) { e.fake.SetStatus(http.StatusUnauthorized) }, err: dc.ErrUnavailable},
		{name: "oversized_answer_refused", flow: dc.FlowCrossDevice, mod: func(o *external.Options) { o.MaxBody = 512 },
			err: dc.ErrRejected},
		{name: "verifier_slow_unavailable", flow: dc.FlowCrossDevice, mod: func(o *external.Options) { o.Timeout = 100 * time.Millisecond }, mid: func(e *env) { e.fake.SetDelay(time.Minute) }, err: dc.ErrUnavailable},
		{name: "verifier_down_unavailable", flow: dc.FlowSameDevice, mid: func(e *env) { e.fake.Close() }, err: dc.ErrUnavailable},
		{name: "expired_transaction", flow: dc.FlowCrossDevice, mid: func(e *env) { e.clk.Add(external.DefaultTTL) }, err: dc.ErrExpired},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.mod)
			ctx := context.Background()
			if c.before != nil {
				c.before(e)
			}
			br := dc.BeginRequest{Flow: c.flow, Query: pidQ(t), Nonce: "Nn0nce-0123456789abcdefgh", TTL: 0}
			if c.flow == dc.FlowSameDevice {
				br.RedirectURITemplate = "https://app.example/cb"
			}
			if c.td {
				br.TransactionData = []string{paymentTD()}
			}
			tx, err := e.v.Begin(ctx, br)
			if err != nil {
				t.Fatal(err)
			}
			var errs []error
			if c.flow == dc.FlowCrossDevice {
				_, err := e.v.Result(ctx, tx.ID, "")
				if !errors.Is(err, dc.ErrPending) {
					t.Fatalf("before the wallet: %v, want ErrPending", err)
				}
				errs = append(errs, err)
			}
			redirect := c.w.run(t, e, tx.RequestURI)
			code := ""
			if c.flow == dc.FlowSameDevice {
				code = responseCode(t, redirect)
			} else if redirect != "" {
				t.Fatalf("cross device got redirect_uri %q", redirect)
			}
			if c.code != nil {
				code = c.code(code)
			}
			if c.mid != nil {
				c.mid(e)
			}
			res, err := e.v.Result(ctx, tx.ID, code)
			errs = append(errs, err)
			switch {
			case c.err != nil:
				if !errors.Is(err, c.err) {
					t.Fatalf("Result: %v, want %v", err, c.err)
				}
			case err != nil:
				t.Fatalf("Result: %v", err)
			}
			want := c.status
			if c.err == nil && want == "" {
				want = dc.StatusVerified
			}
			if res.Status != want || res.WalletError != c.wErr {
				t.Fatalf("Result = %+v, want status %q wallet error %q", res, want, c.wErr)
			}
			if want == dc.StatusVerified {
				if len(res.Credentials) != 1 || res.Credentials[0].Subject != issuer+"|user-1" || res.Credentials[0].Claims["given_name"] != "Erika" {
					t.Fatalf("credentials %+v", res.Credentials)
				}
				// Result consumes nothing: the flow's auth_session swap is
				// the single-use gate (the dc.Verifier contract).
				if again, err := e.v.Result(ctx, tx.ID, code); err != nil || again.Status != dc.StatusVerified {
					t.Fatalf("second Result: %+v %v", again, err)
				}
			}
			// The transaction_id never leaves the server side in clear.
			ids := e.fake.TransactionIDs()
			if len(ids) != 1 {
				t.Fatalf("transactions at the fake: %d", len(ids))
			}
			if len(tx.ID) > 2048 {
				t.Fatalf("sealed ID is %d bytes", len(tx.ID))
			}
			for _, s := range []string{tx.ID, tx.RequestURI, tx.Request, tx.ClientID} {
				if strings.Contains(s, ids[0]) {
					t.Fatalf("transaction_id in %q", s)
				}
			}
			for _, err := range errs {
				if err != nil && (strings.Contains(err.Error(), ids[0]) || (code != "" && strings.Contains(err.Error(), code))) {
					t.Fatalf("error leaks the transaction_id or code: %v", err)
				}
			}
			if tx.ClientID != e.fake.ClientID || !strings.HasPrefix(tx.RequestURI, "openid4vp://?client_id=x509_hash%3A") ||
				!strings.HasSuffix(tx.RequestURI, "&request_uri_method=post") {
				t.Fatalf("transaction %+v", tx)
			}
			for _, a := range e.fake.Authorizations() {
				if a != "Bearer "+token {
					t.Fatalf("Authorization %q", a)
				}
			}
			in := e.fake.Inits()[0]
			if in.Type != "vp_token" || in.ResponseMode != "direct_post.jwt" || in.JARMode != "by_reference" || in.RequestURIMethod != "post" ||
				in.Nonce != br.Nonce {
				t.Fatalf("init body %+v", in)
			}
			if (c.flow == dc.FlowSameDevice) != (in.RedirectTemplate == "https://app.example/cb?response_code={RESPONSE_CODE}") {
				t.Fatalf("redirect template %q", in.RedirectTemplate)
			}
		})
	}
}

// TestWrongTransactionRefused: the service answers with another
// transaction's (genuine) response; the nonce re-check refuses it.
func TestWrongTransactionRefused(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	begin := func(n string) dc.Transaction {
		tx, err := e.v.Begin(ctx, dc.BeginRequest{Flow: dc.FlowCrossDevice, Query: pidQ(t), Nonce: n})
		if err != nil {
			t.Fatal(err)
		}
		return tx
	}
	a := begin("aaaaaaaaaaaaaaaaaaaaaaaa")
	b := begin("bbbbbbbbbbbbbbbbbbbbbbbb")
	wallet{}.run(t, e, b.RequestURI)
	e.fake.SetSwapTransaction(true)
	res, err := e.v.Result(ctx, a.ID, "")
	if !errors.Is(err, dc.ErrRejected) || res.Status != dc.StatusError {
		t.Fatalf("swapped response: %+v %v", res, err)
	}
	e.fake.SetSwapTransaction(false)
	if res, err := e.v.Result(ctx, b.ID, ""); err != nil || res.Status != dc.StatusVerified {
		t.Fatalf("own response: %+v %v", res, err)
	}
}

// TestBeginRefusals: flows the adapter does not offer, bad input and a
// service that is down or refuses our token, each with its sentinel.
func TestBeginRefusals(t *testing.T) {
	cases := []struct {
		name string
		mod  func(o *external.Options)
		env  func(e *env)
		req  func(r *dc.BeginRequest)
		err  error
	}{
		{name: "dc_api", req: func(r *dc.BeginRequest) { r.Flow = dc.FlowDCAPI }, err: dc.ErrWrongFlow},
		{name: "interactive", req: func(r *dc.BeginRequest) { r.Flow = dc.FlowInteractive }, err: dc.ErrWrongFlow},
		{name: "issuance", req: func(r *dc.BeginRequest) { r.Issuance = true }, err: dc.ErrWrongFlow},
		{name: "same_device_without_redirect", req: func(r *dc.BeginRequest) { r.Flow = dc.FlowSameDevice }, err: external.ErrInvalidRequest},
		{name: "template_twice", req: func(r *dc.BeginRequest) {
			r.Flow, r.RedirectURITemplate = dc.FlowSameDevice, "https://app.example/cb?a={RESPONSE_CODE}&b={RESPONSE_CODE}"
		}, err: external.ErrInvalidRequest},
		{name: "short_nonce", req: func(r *dc.BeginRequest) { r.Nonce = "short" }, err: external.ErrInvalidRequest},
		{name: "transaction_data_not_json", req: func(r *dc.BeginRequest) { r.TransactionData = []string{"bm90LWpzb24"} }, err: external.ErrInvalidRequest},
		{name: "no_query", req: func(r *dc.BeginRequest) { r.Query = nil }, err: external.ErrInvalidRequest},
		{name: "wrong_token", mod: func(o *external.Options) { o.BearerToken = "wrong" }, err: dc.ErrUnavailable},
		{name: "verifier_500", env: func(e *env) { e.fake.SetStatus(500) }, err: dc.ErrUnavailable},
		{name: "verifier_down", env: func(e *env) { e.fake.Close() }, err: dc.ErrUnavailable},
		{name: "client_id_not_pinned_one", mod: func(o *external.Options) { o.ClientID = "x509_hash:other" }, err: dc.ErrUnavailable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.mod)
			if c.env != nil {
				c.env(e)
			}
			r := dc.BeginRequest{Flow: dc.FlowCrossDevice, Query: pidQ(t)}
			if c.req != nil {
				c.req(&r)
			}
			if _, err := e.v.Begin(context.Background(), r); !errors.Is(err, c.err) {
				t.Fatalf("Begin: %v, want %v", err, c.err)
			}
		})
	}
}

// TestSealedID: a forged, truncated or foreign ID is "unknown"
// (dc.ErrExpired) and costs no call to the service; Submit is never the
// way to complete.
func TestSealedID(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	tx, err := e.v.Begin(ctx, dc.BeginRequest{Flow: dc.FlowCrossDevice, Query: pidQ(t)})
	if err != nil {
		t.Fatal(err)
	}
	other := newEnv(t, func(o *external.Options) { o.SealKey = []byte("ffffffffffffffffffffffffffffffff") })
	calls := len(e.fake.Authorizations())
	flip := []byte(tx.ID)
	flip[len(flip)-3] ^= 1
	for _, id := range []string{"", "x1.", tx.ID[:len(tx.ID)-4], string(flip), "x2" + tx.ID[2:], strings.Repeat("A", 200000)} {
		if _, err := e.v.Result(ctx, id, ""); !errors.Is(err, dc.ErrExpired) {
			t.Fatalf("Result(%.20q): %v", id, err)
		}
	}
	if _, err := other.v.Result(ctx, tx.ID, ""); !errors.Is(err, dc.ErrExpired) {
		t.Fatalf("other key: %v", err)
	}
	if got := len(e.fake.Authorizations()); got != calls {
		t.Fatalf("forged IDs reached the service: %d calls", got-calls)
	}
	if _, err := e.v.Submit(ctx, tx.ID, dc.DCAPIResponse{Data: []byte(`{}`)}); !errors.Is(err, dc.ErrWrongFlow) {
		t.Fatalf("Submit: %v", err)
	}
	if err := e.v.Cancel(ctx, tx.ID); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
}

// TestNewRefusals: configuration the adapter refuses.
func TestNewRefusals(t *testing.T) {
	base := func() external.Options {
		return external.Options{BaseURL: "https://verifier.example", SealKey: sealKey, Issuers: []dc.TrustedIssuer{{Issuer: issuer}}}
	}
	cases := map[string]func(o *external.Options){
		"short_seal_key":            func(o *external.Options) { o.SealKey = []byte("short") },
		"no_issuers":                func(o *external.Options) { o.Issuers = nil },
		"http_not_loopback":         func(o *external.Options) { o.BaseURL = "http://verifier.example" },
		"http_loopback_no_ok":       func(o *external.Options) { o.BaseURL = "http://127.0.0.1:1" },
		"userinfo":                  func(o *external.Options) { o.BaseURL = "https://u:p@verifier.example" },
		"query":                     func(o *external.Options) { o.BaseURL = "https://verifier.example/?x=1" },
		"token_newline":             func(o *external.Options) { o.BearerToken = "a\r\nX-Evil: 1" },
		"private_ip_default_client": func(o *external.Options) { o.BaseURL = "https://10.0.0.7" },
	}
	for name, mod := range cases {
		t.Run(name, func(t *testing.T) {
			o := base()
			mod(&o)
			if _, err := external.New(o); !errors.Is(err, external.ErrInvalidRequest) {
				t.Fatalf("New: %v", err)
			}
		})
	}
	if _, err := external.New(base()); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	o := base()
	o.BaseURL, o.HTTPClient = "https://10.0.0.7", &http.Client{}
	if _, err := external.New(o); err != nil {
		t.Fatalf("private address with the operator's client: %v", err)
	}
}

// TestTransportPolicy: redirects are never followed (the 3xx is the
// service failing, and the target is not contacted); a caller's
// HTTPClient (here TLS with the test root, as for mTLS) is used as given.
func TestTransportPolicy(t *testing.T) {
	hit := false
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hit = true }))
	defer target.Close()
	redir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redir.Close()
	e := newEnv(t, func(o *external.Options) { o.BaseURL = redir.URL })
	if _, err := e.v.Begin(context.Background(), dc.BeginRequest{Flow: dc.FlowCrossDevice, Query: pidQ(t)}); !errors.Is(err, dc.ErrUnavailable) || hit {
		t.Fatalf("redirect: %v, target hit %v", err, hit)
	}

	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"transaction_id":"t1","client_id":"x509_hash:abc","request_uri":"https://verifier.example/r/1"}`))
	}))
	defer tlsSrv.Close()
	e = newEnv(t, func(o *external.Options) {
		o.BaseURL, o.HTTPClient, o.AllowLoopback = tlsSrv.URL, tlsSrv.Client(), false
	})
	tx, err := e.v.Begin(context.Background(), dc.BeginRequest{Flow: dc.FlowCrossDevice, Query: pidQ(t)})
	if err != nil || tx.ClientID != "x509_hash:abc" ||
		tx.RequestURI != "openid4vp://?client_id=x509_hash%3Aabc&request_uri=https%3A%2F%2Fverifier.example%2Fr%2F1&request_uri_method=post" {
		t.Fatalf("custom client: %+v %v", tx, err)
	}
}
