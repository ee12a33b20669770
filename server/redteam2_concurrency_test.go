package server_test

// Red team, second pass: the new paths (deep-link pushes, browser-fallback
// pushes, app completion, the web callback's response_code, Q19 browser
// federation) on every backend — memory, one Redis node, a 3-node Redis
// Cluster — and under concurrency: of N requests spending the same
// one-time value, exactly one wins.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/federation/fedtest"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/redisstore"
	"github.com/fedas/fedas/storage/redistest"
)

const racers = 20

// backends2 adds a 3-node Redis Cluster to the usual backends.
func backends2() []backend {
	return append(backends(), backend{"redis-cluster", func(tb testing.TB) storage.Store {
		c := redistest.StartCluster(tb)
		st, err := redisstore.New(context.Background(), redisstore.Options{Addrs: c.Addrs(), Cluster: true, Prefix: "fedas:"}, zaptest.NewLogger(tb))
		if err != nil {
			tb.Fatalf("redisstore cluster: %v", err)
		}
		tb.Cleanup(func() { _ = st.Close() })
		return st
	}})
}

// tryReq sends req without following redirects and without failing the
// test (safe in goroutines).
func tryReq(req *http.Request) (reply, error) {
	hc := servertest.HTTP()
	resp, err := hc.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, raw: string(b)}, nil
}

// race runs f racers times at once and returns the replies.
func race(t *testing.T, f func() (reply, error)) []reply {
	t.Helper()
	out := make([]reply, racers)
	errs := make([]error, racers)
	var wg sync.WaitGroup
	startGun := make(chan struct{})
	for i := 0; i < racers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-startGun
			out[i], errs[i] = f()
		}(i)
	}
	close(startGun)
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	for _, r := range out {
		require.Less(t, r.status, 500, "no 5xx under concurrency: %s", r.raw)
	}
	return out
}

func postReq(endpoint string, form url.Values, authz string) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	return req
}

// q19 is AS1 on st with a standard downstream "std" (no native endpoint,
// browser federation allowed).
func q19(t *testing.T, st storage.Store) *mockFed {
	return newMockFed(t, mockFedOpts{store: st, mocks: map[string]fedtest.Options{"std": {NoNative: true}}, edit: func(c *config.Config) {
		for i := range c.Downstreams {
			c.Downstreams[i].BrowserFederation = true
		}
	}})
}

// q19Callback runs a Q19 sign-in up to the downstream's redirect to our
// web callback, and returns the device's auth_session and that URL.
func q19Callback(t *testing.T, e *mockFed) (string, string) {
	t.Helper()
	r, _ := e.prompt(t, url.Values{"native_callback_uri": {"https://app.example/cb"}})
	w := e.answer(t, r.str("auth_session"), url.Values{"bank": {"std"}})
	requireOAuthError(t, w, http.StatusForbidden, "redirect_to_web")
	status, loc, body := getNoFollow(t, e.as1.authorizeURL("demo-app", w.str("request_uri")))
	require.Equal(t, http.StatusSeeOther, status, body)
	status, cb, body := getNoFollow(t, loc)
	require.Equal(t, http.StatusSeeOther, status, body)
	require.True(t, strings.HasPrefix(cb, e.as1.URL+"/federation/callback"), cb)
	return w.str("auth_session"), cb
}

// TestRedteam2_Concurrent_AppCompletion: 20 completions of one deep link
// with the app's token: exactly one callback.
func TestRedteam2_Concurrent_AppCompletion(t *testing.T) {
	for _, b := range backends2() {
		t.Run(b.name, func(t *testing.T) {
			in := wrap(start(t, b.store(t), appSecConfig))
			token := "Bearer " + appToken(t, in, "bank-app")
			r, pk := in.localDeepLink(t, nil)
			form := url.Values{"client_id": {"demo-app"}, "request_uri": {requireDeepLink(t, r, "demo-app")}}
			out := race(t, func() (reply, error) { return tryReq(postReq(in.appCompleteURL(), form, token)) })
			wins := 0
			for _, o := range out {
				if o.status == http.StatusOK {
					wins++
				}
			}
			require.Equal(t, 1, wins, "exactly one completion")
			// The winner's value gives the device its code (Redis round trip of the session).
			var v string
			for _, o := range out {
				if o.status == http.StatusOK {
					var body map[string]any
					require.NoError(t, json.Unmarshal([]byte(o.raw), &body))
					v, _ = body["authorization_code"].(string)
				}
			}
			got := post(t, in.native(), url.Values{"client_id": {"demo-app"}, "auth_session": {r.str("auth_session")}, "authorization_code": {v}})
			require.Equal(t, http.StatusOK, got.status, got.raw)
			require.Equal(t, http.StatusOK, in.redeem(t, "demo-app", got.str("authorization_code"), pk).status)
		})
	}
}

// TestRedteam2_Concurrent_Q19ResponseCode: the device's auth_session +
// response_code posted 20 times at once: exactly one code.
func TestRedteam2_Concurrent_Q19ResponseCode(t *testing.T) {
	for _, b := range backends2() {
		t.Run(b.name, func(t *testing.T) {
			e := q19(t, b.store(t))
			as, cb := q19Callback(t, e)
			status, loc, body := getNoFollow(t, cb)
			require.Equal(t, http.StatusSeeOther, status, body)
			p, err := url.Parse(loc)
			require.NoError(t, err)
			rc := p.Query().Get("response_code")
			require.NotEmpty(t, rc, loc)
			form := url.Values{"client_id": {"demo-app"}, "auth_session": {as}, "response_code": {rc}}
			out := race(t, func() (reply, error) { return tryReq(postReq(e.as1.native(), form, "")) })
			wins := 0
			for _, o := range out {
				if o.status == http.StatusOK {
					wins++
				}
			}
			require.Equal(t, 1, wins, "exactly one code for one response_code")
		})
	}
}

// TestRedteam2_Concurrent_WebCallbackTwice: the downstream's redirect to
// our web callback delivered 20 times at once (a double-clicked link, a
// browser retry): exactly one redemption at the downstream's token
// endpoint and exactly one response_code.
func TestRedteam2_Concurrent_WebCallbackTwice(t *testing.T) {
	for _, b := range backends2() {
		t.Run(b.name, func(t *testing.T) {
			e := q19(t, b.store(t))
			_, cb := q19Callback(t, e)
			out := race(t, func() (reply, error) {
				req, _ := http.NewRequest(http.MethodGet, cb, nil)
				return tryReq(req)
			})
			codes := 0
			for _, o := range out {
				if strings.Contains(o.header.Get("Location"), "response_code=") {
					codes++
				}
			}
			require.Equal(t, 1, codes, "exactly one response_code")
			require.EqualValues(t, 1, e.ds["std"].Count(fedtest.Token), "exactly one redemption at the downstream")
		})
	}
}

// TestRedteam2_Concurrent_BrowserTabs: a browser-fallback push
// (deep_link_unavailable → redirect_to_web) opened in 20 tabs, each
// signing carol in at once: exactly one code.
func TestRedteam2_Concurrent_BrowserTabs(t *testing.T) {
	for _, b := range backends2() {
		t.Run(b.name, func(t *testing.T) {
			in := wrap(start(t, b.store(t), appSecConfig, noRateLimits, wideGate)) // racers sign-ins of one account at once
			ru, _ := fpConfFallback(t, in)
			sessions := make(chan string, racers)
			for i := 0; i < racers; i++ {
				sessions <- requireFormPage(t, getURL(t, in.authorizeURL("fp-conf", ru)))
			}
			out := race(t, func() (reply, error) {
				s := <-sessions
				return tryReq(postReq(in.URL+"/oauth2/authorize", url.Values{"auth_session": {s}, "username": {"carol"}, "password": {"carol-pw"}}, ""))
			})
			codes := 0
			for _, o := range out {
				if strings.Contains(o.header.Get("Location"), "code=") {
					codes++
				}
			}
			require.Equal(t, 1, codes, "one push, one code")
		})
	}
}

// TestRedteam2_Concurrent_DeepLinkUnavailableVsApp: the app completes the
// deep link while the device reports deep_link_unavailable for the same
// session. Exactly one of them may win: either the app's completion
// (whose value then gives the device its code) or the browser fallback.
// Both win when the device's request loads the session before the app
// completion locks it and deletes it after the completion restored the
// device's step digest (flow.Engine.restoreStep reuses the digest the
// device already holds, an ABA on the compare-and-swap); the app is told
// it completed and its push is spent, but the session is gone. The race
// is timing-dependent: 40 rounds per backend show it in most runs.
func TestRedteam2_Concurrent_DeepLinkUnavailableVsApp(t *testing.T) {
	for _, b := range backends2() {
		t.Run(b.name, func(t *testing.T) {
			in := wrap(start(t, b.store(t), appSecConfig))
			token := "Bearer " + appToken(t, in, "bank-app")
			for round := 0; round < 40; round++ {
				r, _ := in.localDeepLink(t, nil)
				form := url.Values{"client_id": {"demo-app"}, "request_uri": {requireDeepLink(t, r, "demo-app")}}
				var app, dev reply
				var wg sync.WaitGroup
				wg.Add(2)
				go func() {
					defer wg.Done()
					app, _ = tryReq(postReq(in.appCompleteURL(), form, token))
				}()
				go func() {
					defer wg.Done()
					dev, _ = tryReq(postReq(in.native(), url.Values{"client_id": {"demo-app"}, "auth_session": {r.str("auth_session")}, "deep_link_unavailable": {"true"}}, ""))
				}()
				wg.Wait()
				appWon := app.status == http.StatusOK
				webWon := dev.status == http.StatusForbidden && strings.Contains(dev.raw, "redirect_to_web")
				require.False(t, appWon && webWon, "round %d: both the app completion and the browser fallback won: %s / %s", round, app.raw, dev.raw)
				require.True(t, appWon || webWon, "round %d: neither won: %s / %s", round, app.raw, dev.raw)
			}
		})
	}
}
