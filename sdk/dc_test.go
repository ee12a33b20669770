package sdk_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/sdk"
)

// fakeAS is a scripted native endpoint: answer decides each reply from
// the form; every request is recorded.
type fakeAS struct {
	srv    *httptest.Server
	mu     sync.Mutex
	forms  []url.Values
	dpop   []string
	answer func(n int, f url.Values) (int, map[string]any)
}

func newFakeAS(t *testing.T, answer func(n int, f url.Values) (int, map[string]any)) *fakeAS {
	a := &fakeAS{answer: answer}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, r.ParseForm())
		a.mu.Lock()
		n := len(a.forms)
		a.forms = append(a.forms, r.PostForm)
		a.dpop = append(a.dpop, r.Header.Get("DPoP"))
		a.mu.Unlock()
		status, body := a.answer(n, r.PostForm)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *fakeAS) native() string { return a.srv.URL + "/native" }

// dcChallenge is a presentation challenge of flow in the wallet dialect
// (or, with typ digital_credentials_required, the draft -00 one).
func dcChallenge(flow, typ, request string) map[string]any {
	m := map[string]any{"error": "insufficient_authorization", "auth_session": "as-dc", "expires_in": 120,
		"challenge": map[string]any{"type": "digital_credentials", "flow": flow, "inputs": map[string]any{}}, "type": typ}
	if typ == "digital_credentials_required" {
		m["request"] = request
	} else {
		m["credentials_request"] = request
	}
	if flow == sdk.FlowCrossDevice {
		m["interval"] = 5
	}
	return m
}

func code() map[string]any { return map[string]any{"authorization_code": "the-code"} }

// TestSDK_Presentation_Paths: Authorize completes each path through its
// hook and posts exactly what the path takes, with the challenge's
// auth_session; the challenge comes with HTTP 401 (OpenID4VCI 1.1) or 403
// and is handled the same, because the SDK reads the error member only.
func TestSDK_Presentation_Paths(t *testing.T) {
	const wurl = "openid4vp://?client_id=x509_hash%3Aabc&request_uri=https%3A%2F%2Fas.example%2Fdc%2Frequest%2F1"
	dcReq := `{"requests":[{"protocol":"openid4vp-v1-signed","data":{"request":"eyJ.x.y"}}]}`
	for _, status := range []int{http.StatusForbidden, http.StatusUnauthorized} {
		for _, tc := range []struct {
			name, flow, typ, req string
			hooks                func(t *testing.T) *sdk.WalletHooks
			want                 url.Values
		}{
			{"dc_api response", sdk.FlowDCAPI, "digital_credentials", dcReq, func(t *testing.T) *sdk.WalletHooks {
				return &sdk.WalletHooks{DCAPI: func(_ context.Context, r string) ([]byte, error) {
					require.Equal(t, dcReq, r)
					return []byte(`{"response":"eyJhbGciOiJFQ0RILUVTIn0.."}`), nil
				}}
			}, url.Values{"auth_session": {"as-dc"}, "response": {"eyJhbGciOiJFQ0RILUVTIn0.."}}},
			{"dc_api vp_token", sdk.FlowDCAPI, "digital_credentials", dcReq, func(t *testing.T) *sdk.WalletHooks {
				return &sdk.WalletHooks{DCAPI: func(context.Context, string) ([]byte, error) {
					return []byte(`{"vp_token":{"pid":["a~b~c"]}}`), nil
				}}
			}, url.Values{"auth_session": {"as-dc"}, "vp_token": {`{"pid":["a~b~c"]}`}}},
			{"same_device", sdk.FlowSameDevice, "digital_credentials", wurl, func(t *testing.T) *sdk.WalletHooks {
				return &sdk.WalletHooks{OpenWallet: func(_ context.Context, u string) (url.Values, error) {
					require.Equal(t, wurl, u)
					return url.Values{"response_code": {"rc-1"}}, nil
				}}
			}, url.Values{"auth_session": {"as-dc"}, "response_code": {"rc-1"}}},
			{"same_device draft00", sdk.FlowSameDevice, "digital_credentials_required", wurl, func(t *testing.T) *sdk.WalletHooks {
				return &sdk.WalletHooks{OpenWallet: func(context.Context, string) (url.Values, error) {
					return url.Values{"presentation_id": {"rc-2"}}, nil
				}}
			}, url.Values{"auth_session": {"as-dc"}, "presentation_id": {"rc-2"}}},
			{"same_device declined", sdk.FlowSameDevice, "digital_credentials", wurl, func(t *testing.T) *sdk.WalletHooks {
				return &sdk.WalletHooks{OpenWallet: func(context.Context, string) (url.Values, error) {
					return url.Values{"error": {"access_denied"}}, nil
				}}
			}, url.Values{"auth_session": {"as-dc"}, "error": {"access_denied"}}},
		} {
			t.Run(http.StatusText(status)+" "+tc.name, func(t *testing.T) {
				as := newFakeAS(t, func(n int, f url.Values) (int, map[string]any) {
					if n == 0 {
						return status, dcChallenge(tc.flow, tc.typ, tc.req)
					}
					return http.StatusOK, code()
				})
				c := &sdk.Client{HTTP: as.srv.Client(), ClientID: "app", Meta: sdk.Metadata{Issuer: as.srv.URL, NativeAuthorizationEndpoint: as.native()},
					Wallet: tc.hooks(t)}
				got, _, err := c.Authorize(context.Background(), url.Values{"scope": {"openid"}}, func(context.Context, sdk.Response) (url.Values, error) {
					t.Fatal("the UI must not be asked")
					return nil, nil
				})
				require.NoError(t, err)
				require.Equal(t, "the-code", got)
				require.Len(t, as.forms, 2)
				require.Equal(t, tc.want, as.forms[1])
			})
		}
	}
}

// TestSDK_Presentation_CrossDevice: polling with the auth_session alone
// every interval (never sleeping for real: the test's Sleep records),
// slow_down's new interval honoured, an expired request's replacement
// shown again, then the code.
func TestSDK_Presentation_CrossDevice(t *testing.T) {
	for _, status := range []int{http.StatusForbidden, http.StatusUnauthorized} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			as := newFakeAS(t, func(n int, f url.Values) (int, map[string]any) {
				pend := func(st string, iv int) map[string]any {
					return map[string]any{"error": "insufficient_authorization", "auth_session": "as-dc", "status": st, "interval": iv, "type": "digital_credentials"}
				}
				switch n {
				case 0:
					return status, dcChallenge(sdk.FlowCrossDevice, "digital_credentials", "openid4vp://?request_uri=one")
				case 1:
					return status, pend("slow_down", 10)
				case 2:
					return status, pend("pending", 10)
				case 3:
					m := dcChallenge(sdk.FlowCrossDevice, "digital_credentials", "openid4vp://?request_uri=two")
					m["status"], m["auth_session"] = "expired", "as-dc2"
					return status, m
				case 4:
					m := pend("pending", 5)
					m["auth_session"] = "as-dc2"
					return status, m
				}
				return http.StatusOK, code()
			})
			var shown []string
			var slept []time.Duration
			c := &sdk.Client{HTTP: as.srv.Client(), ClientID: "app", Meta: sdk.Metadata{Issuer: as.srv.URL, NativeAuthorizationEndpoint: as.native()},
				Wallet: &sdk.WalletHooks{
					ShowQR: func(_ context.Context, u string) error { shown = append(shown, u); return nil },
					Sleep:  func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil },
				}}
			got, _, err := c.Authorize(context.Background(), url.Values{"openid4vp_flow_type": {"cross_device"}}, nil)
			require.NoError(t, err)
			require.Equal(t, "the-code", got)
			require.Equal(t, []string{"openid4vp://?request_uri=one", "openid4vp://?request_uri=two"}, shown)
			require.Equal(t, []time.Duration{5 * time.Second, 10 * time.Second, 10 * time.Second, 5 * time.Second, 5 * time.Second}, slept)
			for i, f := range as.forms[1:] {
				want := "as-dc"
				if i >= 3 {
					want = "as-dc2" // the session value the renewed challenge carried
				}
				require.Equal(t, url.Values{"auth_session": {want}}, f, "poll %d", i)
			}
		})
	}
}

// TestSDK_Presentation_FallsBackToUI: without Wallet, or without the
// hook of the challenge's path, the UI callback gets the challenge.
func TestSDK_Presentation_FallsBackToUI(t *testing.T) {
	for _, w := range []*sdk.WalletHooks{nil, {DCAPI: func(context.Context, string) ([]byte, error) { return nil, nil }}} {
		as := newFakeAS(t, func(n int, f url.Values) (int, map[string]any) {
			if n == 0 {
				return http.StatusForbidden, dcChallenge(sdk.FlowSameDevice, "digital_credentials", "openid4vp://x")
			}
			return http.StatusOK, code()
		})
		c := &sdk.Client{HTTP: as.srv.Client(), ClientID: "app", Meta: sdk.Metadata{Issuer: as.srv.URL, NativeAuthorizationEndpoint: as.native()}, Wallet: w}
		asked := 0
		got, _, err := c.Authorize(context.Background(), nil, func(_ context.Context, r sdk.Response) (url.Values, error) {
			asked++
			require.Equal(t, "same_device", r.Challenge.Flow)
			require.Equal(t, "openid4vp://x", r.CredentialsRequest)
			return url.Values{"response_code": {"typed"}}, nil
		})
		require.NoError(t, err)
		require.Equal(t, "the-code", got)
		require.Equal(t, 1, asked)
	}
}

// TestSDK_Presentation_Downstream: a presentation a downstream asks for
// after federate is completed at the downstream with the downstream's
// auth_session; the downstream never sees our auth_session or a DPoP
// proof, gets the caller's path parameters with the federation body, and
// the downstream's code goes to our response_uri.
func TestSDK_Presentation_Downstream(t *testing.T) {
	var ours *fakeAS
	down := newFakeAS(t, func(n int, f url.Values) (int, map[string]any) {
		if n == 0 {
			return http.StatusUnauthorized, dcChallenge(sdk.FlowSameDevice, "digital_credentials", "openid4vp://down")
		}
		return http.StatusOK, map[string]any{"authorization_code": "down-code"}
	})
	ours = newFakeAS(t, func(n int, f url.Values) (int, map[string]any) {
		if n == 0 {
			return http.StatusBadRequest, map[string]any{"error": "federate", "auth_session": "our-session",
				"federation_uri": down.native(), "federation_body": "client_id=as1&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Ax",
				"response_uri": ours.srv.URL + "/native/response/h1"}
		}
		return http.StatusOK, map[string]any{"authorization_code": "our-code"}
	})
	pk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	key, err := dpop.NewKey(pk, jose.ES256)
	require.NoError(t, err)
	c := &sdk.Client{HTTP: http.DefaultClient, ClientID: "app", DPoP: key, Meta: sdk.Metadata{Issuer: ours.srv.URL, NativeAuthorizationEndpoint: ours.native()},
		Wallet: &sdk.WalletHooks{OpenWallet: func(_ context.Context, u string) (url.Values, error) {
			require.Equal(t, "openid4vp://down", u)
			return url.Values{"response_code": {"rc"}}, nil
		}}}
	got, _, err := c.Authorize(context.Background(), url.Values{"openid4vp_flow_type": {"same_device"}, "openid4vp_redirect_uri": {"https://app.example/dc"}}, nil)
	require.NoError(t, err)
	require.Equal(t, "our-code", got)
	require.Len(t, down.forms, 2)
	require.Equal(t, "same_device", down.forms[0].Get("openid4vp_flow_type"))
	require.Equal(t, "https://app.example/dc", down.forms[0].Get("openid4vp_redirect_uri"))
	require.Equal(t, url.Values{"auth_session": {"as-dc"}, "response_code": {"rc"}}, down.forms[1])
	for i, f := range down.forms {
		require.NotContains(t, f.Encode(), "our-session")
		require.Empty(t, down.dpop[i], "no DPoP proof to a downstream")
	}
	require.Equal(t, url.Values{"authorization_code": {"down-code"}, "auth_session": {"our-session"}}, ours.forms[1])
	require.NotEmpty(t, ours.dpop[1])
}
