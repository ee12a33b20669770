package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/authn/presentation"
	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/dc/dctest"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server/servertest"
)

// dcFed is AS1 (federating, no digital_credentials of its own) in front
// of AS2, which requires a presentation of AS1's client: two fedas
// instances over real HTTPS on one test clock.
type dcFed struct {
	as1 *servertest.Instance
	as2 *dcEnv
	hc  *http.Client // the device's: trusts both instances
}

func newDCFed(t *testing.T, b backend) *dcFed {
	t.Helper()
	key := newFedKey(t, "as1-key")
	as2 := newDCEnv(t, dcEnvOptions{store: b.store(t), edit: func(c *config.Config) {
		fc := federatingClient("as1", key, false) // no password challenges for AS1's users
		fc.DigitalCredentials = &config.ClientDC{OpenID4VPRedirectURIs: []string{dcReturn}}
		c.Clients = append(c.Clients, fc)
		// A rule with no condition for this client: every sign-in through
		// AS1 presents the PID.
		c.DigitalCredentials.Rules = append(c.DigitalCredentials.Rules, config.DCRule{Clients: []string{"as1"}, Query: "pid", ACR: "urn:fedas:acr:wallet"})
	}})
	as1 := servertest.Start(t, servertest.Options{Store: b.store(t), Clock: as2.clock, TLS: true, DownstreamRoots: as2.in.Roots,
		Configure: func(c *config.Config) {
			testConfig(c)
			c.Downstreams = append(c.Downstreams, downstreamOf("as2", as2.in.URL, "as1", key))
			emailPrompt(c, "as2.example", "as2")
		}})
	byHost := hostTransports{}
	for _, in := range []*servertest.Instance{as1, as2.in} {
		u, err := url.Parse(in.URL)
		require.NoError(t, err)
		byHost[u.Host] = in.HTTPClient().Transport
	}
	hc := sdk.NewHTTPClient()
	hc.Transport = byHost
	return &dcFed{as1: as1, as2: as2, hc: hc}
}

// hostTransports sends each request through the transport of its host
// (each instance's trusts its own self-signed certificate) and refuses
// any other host.
type hostTransports map[string]http.RoundTripper

func (h hostTransports) RoundTrip(r *http.Request) (*http.Response, error) {
	rt, ok := h[r.URL.Host]
	if !ok {
		return nil, errors.New("test device: unknown host " + r.URL.Host)
	}
	return rt.RoundTrip(r)
}

// device is the demo app at AS1 with the wallet hooks of the dctest
// wallet: same device through OpenWallet, cross device through ShowQR and
// a Sleep that advances the shared clock (and lets the wallet on the
// other device scan the code at the second wait).
func (f *dcFed) device(t *testing.T, seen *[]sdk.Response) *sdk.Client {
	meta, err := sdk.Discover(context.Background(), f.hc, f.as1.URL)
	require.NoError(t, err)
	var shown string
	sleeps := 0
	c := &sdk.Client{HTTP: f.hc, ClientID: "demo-app", Meta: meta, DPoP: newDPoPKey(t),
		OnExchange: func(_ string, u string, _ url.Values, status int, body []byte) {
			var r sdk.Response
			_ = json.Unmarshal(body, &r)
			r.Status, r.From = status, u
			*seen = append(*seen, r)
		},
		Wallet: &sdk.WalletHooks{
			OpenWallet: func(ctx context.Context, walletURL string) (url.Values, error) {
				ans, err := f.as2.wallet.Present(ctx, walletURL)
				if err != nil {
					return nil, err
				}
				if ans.Status != http.StatusOK {
					return nil, errors.New("wallet: response_uri answered " + http.StatusText(ans.Status))
				}
				ru, err := url.Parse(ans.RedirectURI)
				if err != nil {
					return nil, err
				}
				if ru.Scheme+"://"+ru.Host+ru.Path != dcReturn {
					return nil, errors.New("wallet: redirect to an unregistered URI")
				}
				return ru.Query(), nil
			},
			ShowQR: func(_ context.Context, walletURL string) error { shown = walletURL; return nil },
			Sleep: func(ctx context.Context, d time.Duration) error {
				sleeps++
				if sleeps == 2 {
					ans, err := f.as2.wallet.Present(ctx, shown)
					if err != nil {
						return err
					}
					if ans.RedirectURI != "" {
						return errors.New("wallet: a cross-device response must not redirect")
					}
				}
				f.as2.clock.Advance(d)
				return nil
			},
		}}
	return c
}

// TestDC_Federation: issue 11 item 6. AS2 requires a presentation of
// AS1's client; the SDK gets AS2's challenge after federate (the step is
// credential-free, so a federating client without credential challenges
// gets it: docs/decisions.md Q10), completes it with the dctest wallet
// on the same device and across devices (polling AS2 with AS2's
// auth_session, pending, then the code), the code goes back through
// AS1's response_uri, and AS1's subject is AS2's credential-derived one.
// Both instances serve HTTPS (AS1 trusts AS2's certificate through
// server.Options.DownstreamRoots); memory and Redis.
func TestDC_Federation(t *testing.T) {
	for _, b := range dcBackends() {
		for _, path := range []string{"same_device", "cross_device"} {
			t.Run(b.name+" "+path, func(t *testing.T) {
				f := newDCFed(t, b)
				var seen []sdk.Response
				c := f.device(t, &seen)
				params := url.Values{"scope": {"openid profile"}, "openid4vp_flow_type": {path}}
				if path == "same_device" {
					params.Set("openid4vp_redirect_uri", dcReturn)
				}
				code, pk, err := c.Authorize(context.Background(), params, func(_ context.Context, r sdk.Response) (url.Values, error) {
					if r.Error == "insufficient_information" {
						return url.Values{"email": {"erika@as2.example"}}, nil
					}
					return nil, errors.New("unexpected " + r.Error)
				})
				require.NoError(t, err)
				as2Native, as1Response := f.as2.in.URL+"/native/authorize", f.as1.URL+"/native/response/"
				var errs []string
				var challenge *sdk.Response
				for i := range seen {
					r := seen[i]
					errs = append(errs, r.Error+r.PollStatus)
					if r.IsPresentation() && r.Challenge != nil && challenge == nil {
						challenge = &seen[i]
					}
				}
				require.NotNil(t, challenge, "%v", errs)
				require.Equal(t, as2Native, challenge.From, "the presentation is AS2's")
				require.Equal(t, path, challenge.Challenge.Flow)
				require.True(t, strings.HasPrefix(challenge.CredentialsRequest, "openid4vp://?"), challenge.CredentialsRequest)
				want := []string{"insufficient_information", "federate", "insufficient_authorization"}
				if path == "cross_device" {
					want = append(want, "insufficient_authorizationpending")
				}
				want = append(want, "", "") // AS2's code, then AS1's at its response_uri
				require.Equal(t, want, errs)
				last := seen[len(seen)-1]
				require.True(t, strings.HasPrefix(last.From, as1Response), last.From)
				tok, err := c.Exchange(context.Background(), code, pk)
				require.NoError(t, err)
				sub := f.introspect(t, tok.AccessToken)
				require.Equal(t, f.as2.in.URL+"|"+presentation.Subject(dctest.DefaultIssuerID+"|pid-4711"), sub)
			})
		}
	}
}

// introspect asks AS1 about an access token (the demo partner's
// credentials) and returns its sub.
func (f *dcFed) introspect(t *testing.T, tok string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.as1.URL+"/oauth2/introspect", strings.NewReader(url.Values{"token": {tok}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	basic("demo-partner", partnerSecret)(req)
	resp, err := f.hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(raw))
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	require.Equal(t, true, m["active"], string(raw))
	sub, _ := m["sub"].(string)
	return sub
}

// TestDC_Federation_DevicePath: the path parameters the device adds to
// AS2's client_id + request_uri are validated for AS1's client at AS2
// exactly as on an initial request: without them, with an unregistered
// openid4vp_redirect_uri, or with dc_api for a client with no DC API
// origin, AS2 refuses (400 invalid_request, no presentation begins: AS1
// may push once more and gets the same) and the SDK reports the failure
// to AS1's response_uri.
func TestDC_Federation_DevicePath(t *testing.T) {
	b := dcBackends()[0]
	for _, tc := range []struct {
		name   string
		params url.Values
	}{
		{"none", url.Values{}},
		{"unregistered redirect", url.Values{"openid4vp_flow_type": {"same_device"}, "openid4vp_redirect_uri": {"https://evil.example/dc"}}},
		{"dc_api without origin", url.Values{"dc_api": {"true"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newDCFed(t, b)
			var seen []sdk.Response
			c := f.device(t, &seen)
			tc.params.Set("scope", "openid")
			_, _, err := c.Authorize(context.Background(), tc.params, func(_ context.Context, r sdk.Response) (url.Values, error) {
				if r.Error == "insufficient_information" {
					return url.Values{"email": {"erika@as2.example"}}, nil
				}
				return nil, errors.New("unexpected " + r.Error)
			})
			require.Error(t, err)
			var at2 []sdk.Response
			for _, r := range seen {
				if r.From == f.as2.in.URL+"/native/authorize" {
					at2 = append(at2, r)
				}
			}
			require.NotEmpty(t, at2)
			for _, r := range at2 {
				require.Equal(t, http.StatusBadRequest, r.Status)
				require.Equal(t, "invalid_request", r.Error, r.ErrorDescription)
				require.False(t, r.IsPresentation())
			}
			require.True(t, strings.HasPrefix(seen[len(seen)-1].From, f.as1.URL+"/native/response/"), "the failure goes to AS1")
		})
	}
}

// TestDC_SDK: the SDK's wallet hooks against a real instance, one row per
// path and dialect: the DC API (the platform's data posted as response),
// same device in the wallet dialect (response_code) and in the draft -00
// dialect (presentation_id), and cross device, where a client whose
// clock runs fast (it waits less than asked) gets slow_down and then
// waits the new interval.
func TestDC_SDK(t *testing.T) {
	e := newDCEnv(t, dcEnvOptions{})
	for _, tc := range []struct {
		name, client string
		params       url.Values
	}{
		{"dc_api", "demo-app", url.Values{"dc_api": {"true"}}},
		{"same_device", "demo-app", url.Values{"openid4vp_flow_type": {"same_device"}, "openid4vp_redirect_uri": {dcReturn}}},
		{"same_device draft00", "dc-draft00", url.Values{"openid4vp_flow_type": {"same_device"}, "openid4vp_redirect_uri": {dcReturn}}},
		{"cross_device", "demo-app", url.Values{"openid4vp_flow_type": {"cross_device"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			meta, err := sdk.Discover(context.Background(), e.hc, e.in.URL)
			require.NoError(t, err)
			var answers []sdk.Response
			var waits []time.Duration
			var shown string
			c := &sdk.Client{HTTP: e.hc, ClientID: tc.client, Meta: meta, DPoP: newDPoPKey(t),
				OnExchange: func(_ string, _ string, _ url.Values, status int, body []byte) {
					var r sdk.Response
					_ = json.Unmarshal(body, &r)
					r.Status = status
					answers = append(answers, r)
				},
				Wallet: &sdk.WalletHooks{
					DCAPI: func(_ context.Context, req string) ([]byte, error) { return e.wallet.DCAPI(req, dcOrigin) },
					OpenWallet: func(ctx context.Context, u string) (url.Values, error) {
						ans, err := e.wallet.Present(ctx, u)
						if err != nil {
							return nil, err
						}
						ru, err := url.Parse(ans.RedirectURI)
						if err != nil {
							return nil, err
						}
						return ru.Query(), nil
					},
					ShowQR: func(_ context.Context, u string) error { shown = u; return nil },
					Sleep: func(ctx context.Context, d time.Duration) error {
						waits = append(waits, d)
						switch len(waits) {
						case 1:
							e.clock.Advance(d - time.Second) // too early: slow_down
							return nil
						case 2:
							if _, err := e.wallet.Present(ctx, shown); err != nil {
								return err
							}
						}
						e.clock.Advance(d)
						return nil
					},
				}}
			params := url.Values{"scope": {"openid profile"}, "login_hint": {"wallet"}}
			for k, v := range tc.params {
				params[k] = v
			}
			code, pk, err := c.Authorize(context.Background(), params, nil)
			require.NoError(t, err)
			tok, err := c.Exchange(context.Background(), code, pk)
			require.NoError(t, err)
			require.NotEmpty(t, tok.IDToken)
			if tc.name == "cross_device" {
				require.Equal(t, []time.Duration{5 * time.Second, 10 * time.Second}, waits)
				require.Equal(t, "slow_down", answers[1].PollStatus)
				require.Equal(t, 10, answers[1].Interval)
			}
		})
	}
}
