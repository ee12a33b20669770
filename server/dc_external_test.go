package server_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/dc/external/euditest"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage"
)

// extToken is the bearer token of the fake verifier's API.
const extToken = "ext-verifier-token-7f3a"

// extEnv is a dcEnv whose presentations run through an external verifier
// (dc/external) — the EUDI-V fake on loopback — and every exchange of
// fedas, recorded to prove the fake's transaction_id never reaches a
// client.
type extEnv struct {
	*dcEnv
	fake *euditest.Server
	mu   sync.Mutex
	seen []servertest.Exchange
}

type extOptions struct {
	store storage.Store
	// clientID pins digital_credentials.external.client_id ("": the fake's).
	clientID string
	// tokenEnv, when set, names the variable the token is read from
	// (token_env) instead of token_file.
	tokenEnv string
	edit     func(*config.Config)
	// start starts the instance (dcEnvOptions.start).
	start func(tb testing.TB, o servertest.Options) *servertest.Instance
}

// newExtEnv configures digital_credentials.verifier: external pointing at
// a fresh fake (dev.allow_loopback_http for its plain-http API), the token
// from token_file, no DC API origins and no wallet-is-client dialects
// (config refuses them with the external verifier). The wallet talks
// https to the fake's wallet API and trusts its request-signing CA.
func newExtEnv(tb testing.TB, o extOptions) *extEnv {
	tb.Helper()
	fake := euditest.New(tb, euditest.Options{Token: extToken})
	tokFile := filepath.Join(tb.TempDir(), "token")
	require.NoError(tb, os.WriteFile(tokFile, []byte(extToken+"\n"), 0o600))
	pin := o.clientID
	if pin == "" {
		pin = fake.ClientID
	}
	x := &extEnv{fake: fake}
	x.dcEnv = newDCEnv(tb, dcEnvOptions{store: o.store, start: o.start, observe: func(ex servertest.Exchange) {
		x.mu.Lock()
		x.seen = append(x.seen, ex)
		x.mu.Unlock()
	}, edit: func(c *config.Config) {
		c.Dev.AllowLoopbackHTTP = true
		c.DigitalCredentials.Verifier = "external"
		c.DigitalCredentials.External = config.ExternalVerifier{URL: fake.URL, TokenFile: tokFile, ClientID: pin}
		if o.tokenEnv != "" {
			c.DigitalCredentials.External.TokenFile, c.DigitalCredentials.External.TokenEnv = "", o.tokenEnv
		}
		var keep []config.Client
		for _, cl := range c.Clients {
			if cl.DigitalCredentials != nil {
				if d := cl.DigitalCredentials.Dialect; d == config.DialectPDI || d == config.DialectIA {
					continue
				}
				cl.DigitalCredentials.DCAPIOrigins = nil
			}
			keep = append(keep, cl)
		}
		c.Clients = keep
		if o.edit != nil {
			o.edit(c)
		}
	}})
	roots := x509.NewCertPool()
	roots.AddCert(fake.Signer.Chain[len(fake.Signer.Chain)-1])
	x.wallet.HTTP, x.wallet.VerifierRoots = fake.WalletClient(), roots
	return x
}

// requireNoTransactionID asserts that no answer of fedas (body or header)
// ever named a transaction_id of the external verifier: it is sealed in
// the auth_session state (dc/external).
func (x *extEnv) requireNoTransactionID(tb testing.TB) {
	tb.Helper()
	ids := x.fake.TransactionIDs()
	require.NotEmpty(tb, ids)
	x.mu.Lock()
	defer x.mu.Unlock()
	require.NotEmpty(tb, x.seen)
	for _, ex := range x.seen {
		var hdr strings.Builder
		_ = ex.Header.Write(&hdr)
		for _, id := range ids {
			require.NotContains(tb, string(ex.Body), id, ex.Request.URL.Path)
			require.NotContains(tb, hdr.String(), id, ex.Request.URL.Path)
		}
	}
}

// requireDCUnavailable asserts 503 temporarily_unavailable with Retry-After.
func requireDCUnavailable(tb testing.TB, a dcAnswer) {
	tb.Helper()
	require.Equal(tb, http.StatusServiceUnavailable, a.status, string(a.raw))
	require.Equal(tb, "temporarily_unavailable", a.s("error"))
	require.NotEmpty(tb, a.header.Get("Retry-After"))
}

// TestDCExternal_EndToEnd: digital_credentials.verifier=external over real
// HTTPS, memory and Redis, DPoP: same device and cross device through our
// native endpoint, the wallet fetching the request object from and posting
// to the external verifier; fedas re-verifies what the service returns and
// issues the code (derived subject, mapped claims); a payment's
// transaction_data reaches the wallet through the service byte for byte;
// every API call carries the token from token_file; the metadata lists
// only the paths the external verifier serves, and the DC API and
// Interactive Authorization are 400 (not 503); no answer of fedas names
// the service's transaction_id.
func TestDCExternal_EndToEnd(t *testing.T) {
	for _, b := range dcBackends() {
		t.Run(b.name, func(t *testing.T) {
			x := newExtEnv(t, extOptions{store: b.store(t), edit: rarDCConfig})
			meta, err := x.hc.Get(x.in.URL + "/.well-known/oauth-authorization-server")
			require.NoError(t, err)
			var m map[string]any
			require.NoError(t, json.NewDecoder(meta.Body).Decode(&m))
			_ = meta.Body.Close()
			require.Equal(t, []any{"same_device", "cross_device"}, m["native_authorization_dc_flows_supported"])
			require.NotContains(t, m, "interactive_authorization_endpoint")

			t.Run("same device", func(t *testing.T) {
				a := x.app(t, "demo-app")
				ch := a.initial(t, "login_hint", "wallet", "openid4vp_flow_type", "same_device", "openid4vp_redirect_uri", dcReturn)
				requireDCChallenge(t, ch, "same_device")
				wu, err := url.Parse(ch.s("credentials_request"))
				require.NoError(t, err)
				require.Equal(t, x.fake.ClientID, wu.Query().Get("client_id"))
				require.True(t, strings.HasPrefix(wu.Query().Get("request_uri"), x.fake.WalletURL+"/"), wu.String())
				ans, err := x.wallet.Present(context.Background(), ch.s("credentials_request"))
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, ans.Status, string(ans.Body))
				ru, err := url.Parse(ans.RedirectURI)
				require.NoError(t, err)
				require.Equal(t, dcReturn, ru.Scheme+"://"+ru.Host+ru.Path)
				done := a.post(t, url.Values{"auth_session": {ch.s("auth_session")}, "response_code": {ru.Query().Get("response_code")}})
				require.Equal(t, http.StatusOK, done.status, string(done.raw))
				claims := idClaims(t, a.exchange(t, done.s("authorization_code")))
				require.True(t, strings.HasPrefix(claims["sub"].(string), "dc."), claims["sub"])
				require.Equal(t, "Erika", claims["given_name"])
				require.Equal(t, "urn:fedas:acr:wallet", claims["acr"])
			})
			t.Run("cross device", func(t *testing.T) {
				a := x.app(t, "demo-app")
				ch := a.initial(t, "login_hint", "wallet", "openid4vp_flow_type", "cross_device")
				requireDCChallenge(t, ch, "cross_device")
				as := ch.s("auth_session")
				x.clock.Advance(6 * time.Second)
				p := a.post(t, url.Values{"auth_session": {as}})
				require.Equal(t, "pending", p.s("status"), string(p.raw))
				ans, err := x.wallet.Present(context.Background(), ch.s("credentials_request"))
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, ans.Status, string(ans.Body))
				require.Empty(t, ans.RedirectURI)
				x.clock.Advance(6 * time.Second)
				done := a.post(t, url.Values{"auth_session": {as}})
				require.Equal(t, http.StatusOK, done.status, string(done.raw))
				idClaims(t, a.exchange(t, done.s("authorization_code")))
			})
			t.Run("payment", func(t *testing.T) {
				a := x.app(t, "demo-app")
				ch := a.initial(t, "scope", "openid profile offline_access", "authorization_details", scaDetails,
					"openid4vp_flow_type", "same_device", "openid4vp_redirect_uri", dcReturn)
				requireDCChallenge(t, ch, "same_device")
				ans, err := x.wallet.Present(context.Background(), ch.s("credentials_request"))
				require.NoError(t, err)
				requireSCARequest(t, ans)
				ru, _ := url.Parse(ans.RedirectURI)
				done := a.post(t, url.Values{"auth_session": {ch.s("auth_session")}, "response_code": {ru.Query().Get("response_code")}})
				require.Equal(t, http.StatusOK, done.status, string(done.raw))
				redeemSCA(t, x.dcEnv, a, done.s("authorization_code"))
			})
			t.Run("paths the external verifier does not serve", func(t *testing.T) {
				for _, extra := range [][]string{
					{"login_hint", "wallet", "dc_api", "true"},
					{"login_hint", "wallet", "interaction_types_supported", "urn:openid:dcp:ia:openid4vp_presentation"},
				} {
					r := x.app(t, "demo-app").initial(t, extra...)
					require.Equal(t, http.StatusBadRequest, r.status, string(r.raw))
					require.Equal(t, "invalid_request", r.s("error"), string(r.raw))
				}
			})
			for _, auth := range x.fake.Authorizations() {
				require.Equal(t, "Bearer "+extToken, auth)
			}
			require.NotEmpty(t, x.fake.Inits())
			x.requireNoTransactionID(t)
		})
	}
}

// TestDCExternal_Tampered: a vp_token the external verifier tampered with
// (a flipped character in the presentation) is refused by fedas's own
// re-verification: 400 access_denied and no code.
func TestDCExternal_Tampered(t *testing.T) {
	for _, b := range dcBackends() {
		t.Run(b.name, func(t *testing.T) {
			x := newExtEnv(t, extOptions{store: b.store(t)})
			x.fake.SetTamper(func(vp map[string][]string) {
				for id, list := range vp {
					s := list[0]
					i := strings.Index(s, ".") + 5 // inside the issuer JWT's payload
					c := byte('A')
					if s[i] == 'A' {
						c = 'B'
					}
					vp[id][0] = s[:i] + string(c) + s[i+1:]
				}
			})
			a := x.app(t, "demo-app")
			ch := a.initial(t, "login_hint", "wallet", "openid4vp_flow_type", "same_device", "openid4vp_redirect_uri", dcReturn)
			ans, err := x.wallet.Present(context.Background(), ch.s("credentials_request"))
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, ans.Status, string(ans.Body))
			ru, _ := url.Parse(ans.RedirectURI)
			r := a.post(t, url.Values{"auth_session": {ch.s("auth_session")}, "response_code": {ru.Query().Get("response_code")}})
			require.Equal(t, http.StatusBadRequest, r.status, string(r.raw))
			require.Equal(t, "access_denied", r.s("error"))
			require.Empty(t, r.s("authorization_code"))
			x.requireNoTransactionID(t)
		})
	}
}

// TestDCExternal_Unavailable: the external verifier answering 500, or
// down, gets the client 503 temporarily_unavailable with Retry-After on
// every call that needs it (initial request, same-device completion,
// cross-device poll); nothing is burned: once the service is back the
// same auth_session completes with the same response_code, and the poll
// goes on. A service whose client_id is not the pinned one is 503 too.
func TestDCExternal_Unavailable(t *testing.T) {
	for _, b := range dcBackends() {
		t.Run(b.name, func(t *testing.T) {
			x := newExtEnv(t, extOptions{store: b.store(t)})
			same := func(a *dcApp) dcAnswer {
				return a.initial(t, "login_hint", "wallet", "openid4vp_flow_type", "same_device", "openid4vp_redirect_uri", dcReturn)
			}
			// Initial request.
			x.fake.SetStatus(http.StatusInternalServerError)
			requireDCUnavailable(t, same(x.app(t, "demo-app")))
			x.fake.SetStatus(0)

			// Same-device completion.
			a := x.app(t, "demo-app")
			ch := same(a)
			requireDCChallenge(t, ch, "same_device")
			ans, err := x.wallet.Present(context.Background(), ch.s("credentials_request"))
			require.NoError(t, err)
			ru, _ := url.Parse(ans.RedirectURI)
			answer := url.Values{"auth_session": {ch.s("auth_session")}, "response_code": {ru.Query().Get("response_code")}}
			x.fake.SetStatus(http.StatusInternalServerError)
			requireDCUnavailable(t, a.post(t, answer))
			requireDCUnavailable(t, a.post(t, answer))
			x.fake.SetStatus(0)
			done := a.post(t, answer)
			require.Equal(t, http.StatusOK, done.status, string(done.raw))
			require.NotEmpty(t, done.s("authorization_code"))

			// Cross-device poll, then the service goes down for good.
			c := x.app(t, "demo-app")
			cc := c.initial(t, "login_hint", "wallet", "openid4vp_flow_type", "cross_device")
			requireDCChallenge(t, cc, "cross_device")
			poll := url.Values{"auth_session": {cc.s("auth_session")}}
			x.fake.SetStatus(http.StatusInternalServerError)
			x.clock.Advance(6 * time.Second)
			requireDCUnavailable(t, c.post(t, poll))
			x.fake.SetStatus(0)
			x.clock.Advance(6 * time.Second)
			p := c.post(t, poll)
			require.Equal(t, "pending", p.s("status"), string(p.raw))
			x.requireNoTransactionID(t)
			x.fake.Close()
			x.clock.Advance(11 * time.Second)
			requireDCUnavailable(t, c.post(t, poll))
			requireDCUnavailable(t, same(x.app(t, "demo-app")))
		})
	}
	t.Run("client_id not the pinned one", func(t *testing.T) {
		x := newExtEnv(t, extOptions{clientID: "x509_hash:bm90LXRoZS1mYWtlcy1jZXJ0aWZpY2F0ZS1oYXNo"})
		requireDCUnavailable(t, x.app(t, "demo-app").initial(t, "login_hint", "wallet", "openid4vp_flow_type", "cross_device"))
	})
}

// TestDCExternal_TokenEnv: the bearer token may come from token_env; every
// call to the verifier's API carries it.
func TestDCExternal_TokenEnv(t *testing.T) {
	t.Setenv("FEDAS_TEST_DC_EXTERNAL_TOKEN", extToken)
	x := newExtEnv(t, extOptions{tokenEnv: "FEDAS_TEST_DC_EXTERNAL_TOKEN"})
	requireDCChallenge(t, x.app(t, "demo-app").initial(t, "login_hint", "wallet", "openid4vp_flow_type", "cross_device"), "cross_device")
	require.Equal(t, []string{"Bearer " + extToken}, x.fake.Authorizations())
}
