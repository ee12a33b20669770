package sdk_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/sdk"
)

// reachAS is a scripted AS for the cross-device redirect_to_app: the
// native endpoint answers redirect_to_app with reach_uri, /native/reach
// answers status (202 or 424), the task polls answer polls in order, and
// the rotated auth_session gets a code.
type reachAS struct {
	srv   *httptest.Server
	mu    sync.Mutex
	log   []string
	polls []int
}

func newReachAS(t *testing.T, status int, polls ...int) *reachAS {
	a := &reachAS{polls: polls}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		_ = r.ParseForm()
		a.log = append(a.log, r.Method+" "+r.URL.Path+" "+r.PostForm.Get("auth_session")+r.PostForm.Get("deep_link_unavailable"))
		w.Header().Set("Content-Type", "application/json")
		reply := func(st int, body map[string]any) {
			w.WriteHeader(st)
			_ = json.NewEncoder(w).Encode(body)
		}
		switch {
		case r.URL.Path == "/native/authorize" && r.PostForm.Get("auth_session") == "":
			reply(400, map[string]any{"error": "redirect_to_app", "auth_session": "s1", "deep_link": "https://bank.example/app?x=1", "reach_uri": a.srv.URL + "/native/reach"})
		case r.URL.Path == "/native/authorize" && r.PostForm.Get("auth_session") == "s2":
			reply(200, map[string]any{"authorization_code": "code-1"})
		case r.URL.Path == "/native/reach":
			w.Header().Set("Location", "/native/reach/t1")
			if status == 202 {
				reply(202, map[string]any{"status": "pending", "binding_code": "42", "interval": 2, "expires_in": 120})
				return
			}
			reply(424, map[string]any{"error": "interaction_unavailable", "deep_link": "https://bank.example/app?reach_ref=r", "binding_code": "17", "interval": 2})
		case r.URL.Path == "/native/reach/t1" && len(a.polls) > 0:
			st := a.polls[0]
			a.polls = a.polls[1:]
			switch st {
			case 200:
				reply(200, map[string]any{"status": "completed", "auth_session": "s2"})
			case 429:
				w.Header().Set("Retry-After", "5")
				reply(429, map[string]any{"error": "slow_down"})
			case 403:
				reply(403, map[string]any{"error": "access_denied"})
			default:
				reply(202, map[string]any{"status": "pending", "interval": 3})
			}
		default:
			reply(400, map[string]any{"error": "invalid_request"})
		}
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *reachAS) client() *sdk.Client {
	return &sdk.Client{HTTP: a.srv.Client(), ClientID: "demo-app", Meta: sdk.Metadata{Issuer: a.srv.URL, NativeAuthorizationEndpoint: a.srv.URL + "/native/authorize"}}
}

// TestSDK_Reach: no app on this device → POST reach_uri, show the number
// (or the QR code on 424), poll Location honouring interval, Retry-After
// and slow_down, then the rotated auth_session gets the code. An app on
// this device is preferred: reach_uri is then never used.
func TestSDK_Reach(t *testing.T) {
	noApp := func(context.Context, string) (url.Values, error) { return nil, sdk.ErrNoApp }
	for _, tc := range []struct {
		name    string
		status  int
		polls   []int
		open    func(context.Context, string) (url.Values, error)
		code    string
		qr      string
		sleeps  []time.Duration
		wantErr string
	}{
		{"delivered", 202, []int{202, 429, 200}, noApp, "42", "", []time.Duration{2 * time.Second, 3 * time.Second, 5 * time.Second}, ""},
		{"no OpenApp hook", 202, []int{200}, nil, "42", "", []time.Duration{2 * time.Second}, ""},
		{"QR fallback", 424, []int{202, 200}, noApp, "", "https://bank.example/app?reach_ref=r 17", []time.Duration{2 * time.Second, 3 * time.Second}, ""},
		{"denied", 202, []int{403}, noApp, "42", "", []time.Duration{2 * time.Second}, "access_denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newReachAS(t, tc.status, tc.polls...)
			c := a.client()
			c.OpenApp = tc.open
			var code, qr string
			var sleeps []time.Duration
			c.Reach = &sdk.ReachHooks{
				ShowBindingCode: func(_ context.Context, v string) error { code = v; return nil },
				ShowQR:          func(_ context.Context, link, v string) error { qr = link + " " + v; return nil },
				Sleep:           func(_ context.Context, d time.Duration) error { sleeps = append(sleeps, d); return nil },
			}
			got, _, err := c.Authorize(context.Background(), url.Values{"login_hint": {"carol"}}, nil)
			if tc.wantErr != "" {
				var serr *sdk.Err
				require.ErrorAs(t, err, &serr)
				require.Equal(t, tc.wantErr, serr.Response.Error)
				return
			}
			require.NoError(t, err)
			require.Equal(t, "code-1", got)
			require.Equal(t, tc.code, code)
			require.Equal(t, tc.qr, qr)
			require.Equal(t, tc.sleeps, sleeps)
			require.Equal(t, "POST /native/reach s1", a.log[1])
		})
	}
	t.Run("same device first", func(t *testing.T) {
		a := newReachAS(t, 202, 200)
		c := a.client()
		c.OpenApp = func(context.Context, string) (url.Values, error) { return url.Values{"authorization_code": {"x"}}, nil }
		c.Reach = &sdk.ReachHooks{}
		_, _, err := c.Authorize(context.Background(), nil, nil)
		require.Error(t, err) // the scripted AS refuses the app's code
		for _, l := range a.log {
			require.NotContains(t, l, "/native/reach")
		}
	})
	t.Run("no hooks: the browser fallback as before", func(t *testing.T) {
		a := newReachAS(t, 202, 200)
		c := a.client()
		c.OpenApp = noApp
		_, _, err := c.Authorize(context.Background(), nil, nil)
		require.Error(t, err)
		require.Equal(t, "POST /native/authorize s1true", a.log[1])
	})
}
