package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/redistest"
)

// The interaction relay's tests (docs/reach.md "Interaction relay";
// SECURITY-RESULTS.md RI01…): real HTTP to two instances of one
// deployment, on memory and on Redis; the client polls instance a, the
// app's answer arrives through instance b.

const (
	relayPath   = server.PathInteractions
	relayOrigin = "https://shop.example"
	relayCode   = "7KQ4-M2XW"
)

// relayConfig lets demo-app relay to shop.example and pay.example:8443.
func relayConfig(c *config.Config) {
	for i := range c.Clients {
		if c.Clients[i].ID == "demo-app" {
			c.Clients[i].Reach = &config.ClientReach{InteractionOrigins: []string{relayOrigin, "https://pay.example:8443"}}
		}
	}
}

// relayEnv is the two-instance deployment with a fake clock.
func relayEnv(tb testing.TB, b backend, edits ...func(*config.Config)) (*reachEnv, *servertest.Clock) {
	tb.Helper()
	clock := &servertest.Clock{}
	env := newReachEnv(tb, b.store(tb), reachEnvOptions{clock: clock, edit: func(c *config.Config) {
		relayConfig(c)
		for _, e := range edits {
			e(c)
		}
	}})
	return env, clock
}

// relayClient is demo-app signed in for a user with its own DPoP key,
// sending proofs at the deployment's (fake) time.
type relayClient struct {
	key   *dpop.Key
	token sdk.Token
	clock *servertest.Clock
}

// signInRelay signs user in to demo-app at in with a fresh DPoP key and
// scope (default "openid reach:interaction").
func signInRelay(tb testing.TB, in *servertest.Instance, clock *servertest.Clock, user, password, scope string) *relayClient {
	tb.Helper()
	return signInRelayAs(tb, in, clock, "demo-app", user, password, scope)
}

// signInRelayAs is signInRelay for another client.
func signInRelayAs(tb testing.TB, in *servertest.Instance, clock *servertest.Clock, client, user, password, scope string) *relayClient {
	tb.Helper()
	if scope == "" {
		scope = "openid " + config.ScopeReachInteraction
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	dk, err := dpop.NewKey(k, jose.ES256)
	require.NoError(tb, err)
	cl := in.Client(tb, client)
	cl.DPoP = dk
	code, pk, err := cl.Authorize(context.Background(), url.Values{"scope": {scope}}, userUI(user, password, ""))
	require.NoError(tb, err)
	tok, err := cl.Exchange(context.Background(), code, pk)
	require.NoError(tb, err)
	require.Equal(tb, "DPoP", tok.TokenType)
	return &relayClient{key: dk, token: tok, clock: clock}
}

type relayReply struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

func (r relayReply) str(k string) string { s, _ := r.body[k].(string); return s }

// call sends a DPoP-authenticated request to in; hdr adds headers
// (Accept, Prefer); a nil client sends no token.
func (rc *relayClient) call(tb testing.TB, in *servertest.Instance, method, path, body string, hdr ...string) relayReply {
	tb.Helper()
	u := in.URL + path
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	require.NoError(tb, err)
	if rc != nil {
		proof, err := rc.key.ProofAt(method, u, rc.token.AccessToken, rc.clock.Now())
		require.NoError(tb, err)
		req.Header.Set("Authorization", "DPoP "+rc.token.AccessToken)
		req.Header.Set("DPoP", proof)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := in.HTTPClient().Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	r := relayReply{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	_ = json.Unmarshal(b, &r.body)
	return r
}

// relayBody is a valid request with edits (a nil value drops a member).
func relayBody(edit map[string]any) string {
	m := map[string]any{"type": "interaction", "url": relayOrigin + "/pay/approve", "code": relayCode,
		"description": "Approve the payment of 12 EUR", "max_wait": 60, "capabilities": []string{"interaction"}}
	for k, v := range edit {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

const problemAccept = "application/problem+json"

// requireRelayError checks an error in the shape its Accept asked for:
// RFC 6749 §5.2 members always, plus RFC 9457's under problem+json, with
// Cache-Control: no-store and Vary: Accept (Q24).
func requireRelayError(tb testing.TB, r relayReply, status int, code string, problem bool) {
	tb.Helper()
	require.Equal(tb, status, r.status, r.raw)
	require.Equal(tb, code, r.str("error"), r.raw)
	require.NotEmpty(tb, r.str("error_description"), r.raw)
	require.Equal(tb, "no-store", r.header.Get("Cache-Control"))
	require.Equal(tb, "Accept", r.header.Get("Vary"))
	if !problem {
		require.Equal(tb, "application/json", r.header.Get("Content-Type"))
		require.NotContains(tb, r.body, "type")
		require.NotContains(tb, r.body, "detail")
		return
	}
	require.Equal(tb, "application/problem+json", r.header.Get("Content-Type"))
	require.Equal(tb, "about:blank", r.str("type"))
	require.Equal(tb, http.StatusText(status), r.str("title"))
	require.EqualValues(tb, status, r.body["status"])
	require.Equal(tb, r.str("error_description"), r.str("detail"))
}

// bothShapes runs one request twice, default Accept and problem+json, and
// checks the error in each shape.
func bothShapes(tb testing.TB, status int, code string, send func(hdr ...string) relayReply) {
	tb.Helper()
	requireRelayError(tb, send(), status, code, false)
	requireRelayError(tb, send("Accept", "application/json, application/problem+json;q=0.5"), status, code, false)
	requireRelayError(tb, send("Accept", problemAccept), status, code, true)
}

// relayDevice is user's app on a device with the capabilities,
// signed in and registered over the app API at instance b (the other
// one than the client's), its inbox read once when present (the app's
// long poll running: the inbox channel delivers to it).
func relayDevice(tb testing.TB, env *reachEnv, clock *servertest.Clock, user string, present bool, caps ...reach.Kind) *appPhone {
	tb.Helper()
	return newAppPhone(tb, env.b, clock, user, present, caps...)
}

// appAnswers is the app's side of a relayed interaction over the app
// API: it shows the task (GET /reach/tasks/{id}: kind interaction, the
// url and code to open), opens it (POST …/ack: interacting) and, unless
// decision is "", the user answers (appResponds).
func appAnswers(tb testing.TB, dev *appPhone, id, decision string) {
	tb.Helper()
	v := dev.view(tb, id)
	require.Equal(tb, string(reach.KindInteraction), v["kind"])
	require.NotEmpty(tb, v["interaction"])
	dev.ack(tb, id)
	if decision != "" {
		appResponds(tb, dev, id, decision)
	}
}

// appResponds is the user's answer on a task the app already opened
// (POST /reach/tasks/{id}/response): approve (completed out of band at
// the url) or deny, recorded (200).
func appResponds(tb testing.TB, dev *appPhone, id, decision string) {
	tb.Helper()
	st, body := dev.respond(tb, id, map[string]any{"decision": decision})
	require.Equal(tb, http.StatusOK, st, "%v", body)
	want := map[string]string{"approve": "approved", "deny": "denied"}[decision]
	require.Equal(tb, map[string]any{"status": want}, body)
}

// taskIDOf is the task id a 202's Location names.
func taskIDOf(tb testing.TB, in *servertest.Instance, r relayReply) string {
	tb.Helper()
	loc := r.header.Get("Location")
	require.True(tb, strings.HasPrefix(loc, in.URL+relayPath+"/"), "Location %q on the same origin", loc)
	id := strings.TrimPrefix(loc, in.URL+relayPath+"/")
	require.True(tb, reach.ValidID(id), id)
	return id
}

// TestRelay_DeliveredThenCompletedAcrossInstances (RI01, RI02): a
// delivered interaction answers 202 pending with a same-origin Location,
// Retry-After and no-store; the task the app sees holds exactly the url,
// code and description; the app's ack makes it interacting; a poll held
// with Prefer: wait on instance a is released by the answer arriving
// through instance b (200 completed, Preference-Applied); a create held
// with Prefer: wait is released the same way.
func TestRelay_DeliveredThenCompletedAcrossInstances(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env, clock := relayEnv(t, b)
			dev := relayDevice(t, env, clock, "carol", true, reach.KindInteraction)
			cl := signInRelay(t, env.a, clock, "carol", "carol-pw", "")

			r := cl.call(t, env.a, http.MethodPost, relayPath, relayBody(nil))
			require.Equal(t, http.StatusAccepted, r.status, r.raw)
			require.Equal(t, "pending", r.str("status"))
			require.Equal(t, "2", r.header.Get("Retry-After"))
			require.Equal(t, "no-store", r.header.Get("Cache-Control"))
			require.Empty(t, r.header.Get("Preference-Applied"), "no wait asked, none applied")
			id := taskIDOf(t, env.a, r)
			task, err := env.store.(storage.ReachStore).Task(context.Background(), id)
			require.NoError(t, err)
			require.Equal(t, reach.StateDelivered, task.State)
			require.Equal(t, []string{dev.id}, task.Devices)
			var rec struct {
				D struct {
					ClientID    string            `json:"client_id"`
					Interaction map[string]string `json:"interaction"`
				} `json:"d"`
			}
			require.NoError(t, json.Unmarshal(task.Result, &rec))
			require.Equal(t, "demo-app", rec.D.ClientID)
			require.Equal(t, map[string]string{"url": relayOrigin + "/pay/approve", "code": relayCode, "description": "Approve the payment of 12 EUR"}, rec.D.Interaction)
			require.Equal(t, id, dev.nextTask(t))

			// A hold that nothing ends answers pending when it is over.
			r = cl.call(t, env.a, http.MethodGet, relayPath+"/"+id, "", "Prefer", "wait=1")
			require.Equal(t, http.StatusAccepted, r.status, r.raw)
			require.Equal(t, "pending", r.str("status"))
			require.Equal(t, "wait=1", r.header.Get("Preference-Applied"))

			appAnswers(t, dev, id, "")
			clock.Advance(3 * time.Second)
			r = cl.call(t, env.a, http.MethodGet, relayPath+"/"+id, "")
			require.Equal(t, http.StatusAccepted, r.status, r.raw)
			require.Equal(t, "interacting", r.str("status"))
			require.Equal(t, id, taskIDOf(t, env.a, r))

			clock.Advance(3 * time.Second)
			done := make(chan relayReply, 1)
			go func() { done <- cl.call(t, env.a, http.MethodGet, relayPath+"/"+id, "", "Prefer", "wait=20") }()
			appResponds(t, dev, id, "approve")
			r = <-done
			require.Equal(t, http.StatusOK, r.status, r.raw)
			require.Equal(t, "completed", r.str("status"))
			require.Regexp(t, `^wait=[1-9][0-9]?$`, r.header.Get("Preference-Applied"))
			require.Empty(t, r.header.Get("Location"))

			// A create held with Prefer: wait, answered through b.
			go func() { done <- cl.call(t, env.a, http.MethodPost, relayPath, relayBody(nil), "Prefer", "wait=20") }()
			id2 := dev.nextTask(t, id)
			appAnswers(t, dev, id2, "approve")
			r = <-done
			require.Equal(t, http.StatusOK, r.status, r.raw)
			require.Equal(t, "completed", r.str("status"))
			require.NotEmpty(t, r.header.Get("Preference-Applied"))
		})
	}
}

// TestRelay_Unavailable (RI03, RI04): no channel reaches the user — no
// device, a device without the interaction capability, a device whose
// inbox is not being polled — is 424 interaction_unavailable when the
// caller can drive the interaction itself (capabilities includes
// interaction), else 403 user_unreachable; both shapes; no task stays
// live.
func TestRelay_Unavailable(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env, clock := relayEnv(t, b)
			cl := signInRelay(t, env.a, clock, "carol", "carol-pw", "")
			for _, setup := range []struct {
				name   string
				device func()
			}{
				{"no device", func() {}},
				{"no interaction capability", func() { relayDevice(t, env, clock, "carol", true, reach.KindAppAuth, reach.KindQuestion) }},
				{"inbox not polled", func() { relayDevice(t, env, clock, "carol", false, reach.KindInteraction) }},
				{"another user's device", func() { relayDevice(t, env, clock, "alice", true, reach.KindInteraction) }},
			} {
				t.Run(setup.name, func(t *testing.T) {
					setup.device()
					bothShapes(t, http.StatusFailedDependency, "interaction_unavailable", func(hdr ...string) relayReply {
						return cl.call(t, env.a, http.MethodPost, relayPath, relayBody(nil), hdr...)
					})
					bothShapes(t, http.StatusForbidden, "user_unreachable", func(hdr ...string) relayReply {
						return cl.call(t, env.b, http.MethodPost, relayPath, relayBody(map[string]any{"capabilities": []string{"clarification"}}), hdr...)
					})
					r := cl.call(t, env.a, http.MethodPost, relayPath, relayBody(map[string]any{"capabilities": nil}))
					requireRelayError(t, r, http.StatusForbidden, "user_unreachable", false)
					require.Empty(t, r.header.Get("Location"))
				})
			}
		})
	}
}

// TestRelay_RefusedRequests (RI05–RI08): every url, code, description,
// max_wait, type and body rule refuses with 400 invalid_request in both
// shapes, before any task exists; the controls pass the checks.
func TestRelay_RefusedRequests(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env, clock := relayEnv(t, b, noRateLimits)
			cl := signInRelay(t, env.a, clock, "carol", "carol-pw", "")
			long := relayOrigin + "/" + strings.Repeat("a", 512)
			tests := []struct {
				name string
				body string
				ok   bool
			}{
				{"control", relayBody(nil), true},
				{"control: registered port", relayBody(map[string]any{"url": "https://pay.example:8443/x"}), true},
				{"control: explicit default port, upper-case host", relayBody(map[string]any{"url": "https://SHOP.example:443/x"}), true},
				{"control: lower-case code without hyphen", relayBody(map[string]any{"code": "7kq4m2xw"}), true},
				{"control: unknown member ignored", relayBody(map[string]any{"mission_s256": "abc"}), true},
				{"control: no description, no max_wait", relayBody(map[string]any{"description": nil, "max_wait": nil}), true},
				{"url http", relayBody(map[string]any{"url": "http://shop.example/x"}), false},
				{"url query", relayBody(map[string]any{"url": relayOrigin + "/x?a=b"}), false},
				{"url empty query", relayBody(map[string]any{"url": relayOrigin + "/x?"}), false},
				{"url fragment", relayBody(map[string]any{"url": relayOrigin + "/x#f"}), false},
				{"url userinfo", relayBody(map[string]any{"url": "https://user@shop.example/x"}), false},
				{"url userinfo tricking the host", relayBody(map[string]any{"url": "https://shop.example@evil.example/x"}), false},
				{"url backslash", relayBody(map[string]any{"url": `https://evil.example\@shop.example/x`}), false},
				{"url off-origin", relayBody(map[string]any{"url": "https://evil.example/shop.example"}), false},
				{"url sub-domain", relayBody(map[string]any{"url": "https://a.shop.example/x"}), false},
				{"url suffix domain", relayBody(map[string]any{"url": "https://shop.example.evil.example/x"}), false},
				{"url trailing dot", relayBody(map[string]any{"url": "https://shop.example./x"}), false},
				{"url unregistered port", relayBody(map[string]any{"url": "https://shop.example:8443/x"}), false},
				{"url default port where another is registered", relayBody(map[string]any{"url": "https://pay.example/x"}), false},
				{"url port with leading zero", relayBody(map[string]any{"url": "https://pay.example:08443/x"}), false},
				{"url port out of range", relayBody(map[string]any{"url": "https://shop.example:65979/x"}), false},
				{"url IDN homograph", relayBody(map[string]any{"url": "https://shоp.example/x"}), false},
				{"url punycode of another host", relayBody(map[string]any{"url": "https://xn--shp-zod.example/x"}), false},
				{"url percent-encoded host", relayBody(map[string]any{"url": "https://shop%2eexample/x"}), false},
				{"url space", relayBody(map[string]any{"url": relayOrigin + "/a b"}), false},
				{"url relative", relayBody(map[string]any{"url": "/pay/approve"}), false},
				{"url scheme-relative", relayBody(map[string]any{"url": "//shop.example/x"}), false},
				{"url javascript", relayBody(map[string]any{"url": "javascript:alert(1)"}), false},
				{"url too long", relayBody(map[string]any{"url": long}), false},
				{"url missing", relayBody(map[string]any{"url": nil}), false},
				{"url not a string", relayBody(map[string]any{"url": 7}), false},
				{"code too short (35 bits)", relayBody(map[string]any{"code": "7KQ4M2X"}), false},
				{"code outside the alphabet (U)", relayBody(map[string]any{"code": "7KQ4M2XU"}), false},
				{"code outside the alphabet (I, L, O)", relayBody(map[string]any{"code": "IL0O1234"}), false},
				{"code double hyphen", relayBody(map[string]any{"code": "7KQ4--M2XW"}), false},
				{"code leading hyphen", relayBody(map[string]any{"code": "-7KQ4M2XW"}), false},
				{"code too long", relayBody(map[string]any{"code": strings.Repeat("A", 33)}), false},
				{"code missing", relayBody(map[string]any{"code": nil}), false},
				{"description control character", relayBody(map[string]any{"description": "pay\u0007now"}), false},
				{"description newline", relayBody(map[string]any{"description": "pay\nnow"}), false},
				{"description bidi override", relayBody(map[string]any{"description": "pay \u202e RUE 21"}), false},
				{"description line separator", relayBody(map[string]any{"description": "pay\u2028now"}), false},
				{"description too long", relayBody(map[string]any{"description": strings.Repeat("é", 257)}), false},
				{"max_wait too short", relayBody(map[string]any{"max_wait": 5}), false},
				{"max_wait too long", relayBody(map[string]any{"max_wait": 601}), false},
				{"max_wait fraction", relayBody(map[string]any{"max_wait": 30.5}), false},
				{"max_wait string", relayBody(map[string]any{"max_wait": "60"}), false},
				{"max_wait negative", relayBody(map[string]any{"max_wait": -1}), false},
				{"type question", relayBody(map[string]any{"type": "question"}), false},
				{"type payment", relayBody(map[string]any{"type": "payment"}), false},
				{"type missing", relayBody(map[string]any{"type": nil}), false},
				{"capabilities not an array", relayBody(map[string]any{"capabilities": "interaction"}), false},
				{"duplicate member", strings.TrimSuffix(relayBody(nil), "}") + `,"url":"https://evil.example/x"}`, false},
				{"duplicate nested member", `{"type":"interaction","url":"https://shop.example/x","code":"7KQ4M2XW","ext":{"a":1,"a":2}}`, false},
				{"not JSON", "{", false},
				{"an array", `[1]`, false},
				{"data after the object", relayBody(nil) + "{}", false},
				{"invalid UTF-8", "{\"type\":\"interaction\",\"description\":\"\xff\"}", false},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					if tc.ok {
						r := cl.call(t, env.a, http.MethodPost, relayPath, tc.body)
						requireRelayError(t, r, http.StatusFailedDependency, "interaction_unavailable", false)
						return
					}
					bothShapes(t, http.StatusBadRequest, "invalid_request", func(hdr ...string) relayReply {
						return cl.call(t, env.a, http.MethodPost, relayPath, tc.body, hdr...)
					})
				})
			}
			r := cl.call(t, env.a, http.MethodPost, relayPath, relayBody(map[string]any{"type": "question"}))
			require.Contains(t, r.str("error_description"), "User Questioning")
			t.Run("not application/json", func(t *testing.T) {
				bothShapes(t, http.StatusBadRequest, "invalid_request", func(hdr ...string) relayReply {
					return cl.call(t, env.a, http.MethodPost, relayPath, "", append(hdr, "Content-Type", "text/plain")...)
				})
			})
			t.Run("too large", func(t *testing.T) {
				big := relayBody(map[string]any{"pad": strings.Repeat("a", int(env.a.Config.Limits.MaxBodyBytes))})
				bothShapes(t, http.StatusRequestEntityTooLarge, "invalid_request", func(hdr ...string) relayReply {
					return cl.call(t, env.a, http.MethodPost, relayPath, big, hdr...)
				})
			})
		})
	}
}

// TestRelay_ClientWithoutOrigins (RI09): a client with no
// interaction_origins may not relay: 403 unauthorized_client, both shapes.
func TestRelay_ClientWithoutOrigins(t *testing.T) {
	env, clock := relayEnv(t, backends()[0], func(c *config.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "demo-app" {
				c.Clients[i].Reach = nil
			}
		}
	})
	cl := signInRelay(t, env.a, clock, "carol", "carol-pw", "")
	bothShapes(t, http.StatusForbidden, "unauthorized_client", func(hdr ...string) relayReply {
		return cl.call(t, env.a, http.MethodPost, relayPath, relayBody(nil), hdr...)
	})
}

// TestRelay_TokenChecks (RI10): every relay endpoint refuses a request
// without a token (401 invalid_token + WWW-Authenticate) and a token
// without reach:interaction (403 insufficient_scope + WWW-Authenticate
// naming the scope), in both shapes.
func TestRelay_TokenChecks(t *testing.T) {
	env, clock := relayEnv(t, backends()[0])
	noScope := signInRelay(t, env.a, clock, "carol", "carol-pw", "openid")
	id := reach.NewID()
	for _, ep := range []struct{ method, path, body string }{
		{http.MethodPost, relayPath, relayBody(nil)},
		{http.MethodGet, relayPath + "/" + id, ""},
		{http.MethodDelete, relayPath + "/" + id, ""},
	} {
		t.Run(ep.method, func(t *testing.T) {
			bothShapes(t, http.StatusUnauthorized, "invalid_token", func(hdr ...string) relayReply {
				r := (*relayClient)(nil).call(t, env.a, ep.method, ep.path, ep.body, hdr...)
				require.NotEmpty(t, r.header.Values("WWW-Authenticate"))
				return r
			})
			bothShapes(t, http.StatusForbidden, "insufficient_scope", func(hdr ...string) relayReply {
				r := noScope.call(t, env.a, ep.method, ep.path, ep.body, hdr...)
				require.Contains(t, r.header.Get("WWW-Authenticate"), `scope="reach:interaction"`)
				return r
			})
		})
	}
}

// TestRelay_OnlyTheCreatorPolls (RI11): another DPoP key of the same
// client and user, another user, or another client (allowed to relay to
// the same origin) polling or cancelling the task is
// 404 as for an unknown id (no oracle), and the task is untouched.
func TestRelay_OnlyTheCreatorPolls(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env, clock := relayEnv(t, b, func(c *config.Config) {
				// c2 may relay to the same origin: still not demo-app's tasks.
				for i := range c.Clients {
					if c.Clients[i].ID == "c2" {
						c.Clients[i].Scopes = append(c.Clients[i].Scopes, config.ScopeReachInteraction)
						c.Clients[i].Reach = &config.ClientReach{InteractionOrigins: []string{relayOrigin}}
					}
				}
			})
			relayDevice(t, env, clock, "carol", true, reach.KindInteraction)
			owner := signInRelay(t, env.a, clock, "carol", "carol-pw", "")
			r := owner.call(t, env.a, http.MethodPost, relayPath, relayBody(nil))
			require.Equal(t, http.StatusAccepted, r.status, r.raw)
			id := taskIDOf(t, env.a, r)
			otherKey := signInRelay(t, env.b, clock, "carol", "carol-pw", "")
			otherUser := signInRelay(t, env.b, clock, "alice", "wonderland", "")
			otherClient := signInRelayAs(t, env.b, clock, "c2", "carol", "carol-pw", "")
			for name, cl := range map[string]*relayClient{"other key": otherKey, "other user": otherUser, "other client": otherClient} {
				t.Run(name, func(t *testing.T) {
					for _, method := range []string{http.MethodGet, http.MethodDelete} {
						bothShapes(t, http.StatusNotFound, "not_found", func(hdr ...string) relayReply {
							return cl.call(t, env.b, method, relayPath+"/"+id, "", hdr...)
						})
					}
					unknown := cl.call(t, env.b, http.MethodGet, relayPath+"/"+reach.NewID(), "")
					require.Equal(t, http.StatusNotFound, unknown.status)
					mine := cl.call(t, env.b, http.MethodGet, relayPath+"/"+id, "")
					require.Equal(t, unknown.raw, mine.raw, "the same answer as for an unknown id")
				})
			}
			task, err := env.store.(storage.ReachStore).Task(context.Background(), id)
			require.NoError(t, err)
			require.Equal(t, reach.StateDelivered, task.State)
			r = owner.call(t, env.a, http.MethodGet, relayPath+"/not-an-id", "")
			requireRelayError(t, r, http.StatusNotFound, "not_found", false)
			r = owner.call(t, env.a, http.MethodGet, relayPath+"/"+id, "")
			require.Equal(t, http.StatusAccepted, r.status, r.raw)
		})
	}
}

// TestRelay_PollTooFast (RI12, Q26): a poll sooner than
// reach.poll_interval after the last is 429 slow_down with Retry-After on
// either instance and in both shapes; after the interval it is answered.
func TestRelay_PollTooFast(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env, clock := relayEnv(t, b)
			relayDevice(t, env, clock, "carol", true, reach.KindInteraction)
			cl := signInRelay(t, env.a, clock, "carol", "carol-pw", "")
			r := cl.call(t, env.a, http.MethodPost, relayPath, relayBody(nil))
			id := taskIDOf(t, env.a, r)
			r = cl.call(t, env.a, http.MethodGet, relayPath+"/"+id, "")
			require.Equal(t, http.StatusAccepted, r.status, r.raw)
			bothShapes(t, http.StatusTooManyRequests, "slow_down", func(hdr ...string) relayReply {
				r := cl.call(t, env.b, http.MethodGet, relayPath+"/"+id, "", hdr...)
				require.Regexp(t, `^[12]$`, r.header.Get("Retry-After"))
				return r
			})
			clock.Advance(3 * time.Second)
			r = cl.call(t, env.b, http.MethodGet, relayPath+"/"+id, "")
			require.Equal(t, http.StatusAccepted, r.status, r.raw)
		})
	}
}

// TestRelay_MaxWaitElapses (RI13): past max_wait the poll answers 408
// expired (both shapes) and the task is recorded EXPIRED.
func TestRelay_MaxWaitElapses(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env, clock := relayEnv(t, b)
			relayDevice(t, env, clock, "carol", true, reach.KindInteraction)
			cl := signInRelay(t, env.a, clock, "carol", "carol-pw", "")
			r := cl.call(t, env.a, http.MethodPost, relayPath, relayBody(map[string]any{"max_wait": 10}))
			id := taskIDOf(t, env.a, r)
			clock.Advance(11 * time.Second)
			requireRelayError(t, cl.call(t, env.a, http.MethodGet, relayPath+"/"+id, "", "Prefer", "wait=5"), http.StatusRequestTimeout, "expired", false)
			task, err := env.store.(storage.ReachStore).Task(context.Background(), id)
			require.NoError(t, err)
			require.Equal(t, reach.StateExpired, task.State)
			clock.Advance(3 * time.Second)
			requireRelayError(t, cl.call(t, env.b, http.MethodGet, relayPath+"/"+id, "", "Accept", problemAccept), http.StatusRequestTimeout, "expired", true)
		})
	}
}

// TestRelay_Denied (RI14): the user's deny through instance b releases a
// create held with Prefer: wait with 403 denied, and later polls answer
// the same, in both shapes.
func TestRelay_Denied(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env, clock := relayEnv(t, b)
			dev := relayDevice(t, env, clock, "carol", true, reach.KindInteraction)
			cl := signInRelay(t, env.a, clock, "carol", "carol-pw", "")
			done := make(chan relayReply, 1)
			go func() { done <- cl.call(t, env.a, http.MethodPost, relayPath, relayBody(nil), "Prefer", "wait=20") }()
			id := dev.nextTask(t)
			appAnswers(t, dev, id, "deny")
			r := <-done
			requireRelayError(t, r, http.StatusForbidden, "denied", false)
			require.NotEmpty(t, r.header.Get("Preference-Applied"))
			bothShapes(t, http.StatusForbidden, "denied", func(hdr ...string) relayReply {
				clock.Advance(3 * time.Second)
				return cl.call(t, env.a, http.MethodGet, relayPath+"/"+id, "", hdr...)
			})
		})
	}
}

// TestRelay_Cancel (RI15): the creator's DELETE supersedes the task (204,
// stored SUPERSEDED, the app's long poll woken); the poll then answers
// 404; a second DELETE is 204 again.
func TestRelay_Cancel(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env, clock := relayEnv(t, b)
			relayDevice(t, env, clock, "carol", true, reach.KindInteraction)
			cl := signInRelay(t, env.a, clock, "carol", "carol-pw", "")
			id := taskIDOf(t, env.a, cl.call(t, env.a, http.MethodPost, relayPath, relayBody(nil)))
			r := cl.call(t, env.b, http.MethodDelete, relayPath+"/"+id, "")
			require.Equal(t, http.StatusNoContent, r.status, r.raw)
			require.Empty(t, r.raw)
			require.Equal(t, "no-store", r.header.Get("Cache-Control"))
			task, err := env.store.(storage.ReachStore).Task(context.Background(), id)
			require.NoError(t, err)
			require.Equal(t, reach.StateSuperseded, task.State)
			bothShapes(t, http.StatusNotFound, "not_found", func(hdr ...string) relayReply {
				clock.Advance(3 * time.Second)
				return cl.call(t, env.a, http.MethodGet, relayPath+"/"+id, "", hdr...)
			})
			r = cl.call(t, env.a, http.MethodDelete, relayPath+"/"+id, "")
			require.Equal(t, http.StatusNoContent, r.status, r.raw)
		})
	}
}

// TestRelay_CreationBudget (RI16): a client's 61st interaction within a
// minute is 429 slow_down with Retry-After, on either instance (the
// budget is in the store), in both shapes.
func TestRelay_CreationBudget(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env, clock := relayEnv(t, b, noRateLimits)
			cl := signInRelay(t, env.a, clock, "carol", "carol-pw", "")
			for i := range 60 {
				in := env.a
				if i%2 == 1 {
					in = env.b
				}
				r := cl.call(t, in, http.MethodPost, relayPath, relayBody(nil))
				require.Equal(t, http.StatusFailedDependency, r.status, "request %d: %s", i, r.raw)
			}
			bothShapes(t, http.StatusTooManyRequests, "slow_down", func(hdr ...string) relayReply {
				r := cl.call(t, env.b, http.MethodPost, relayPath, relayBody(nil), hdr...)
				require.NotEmpty(t, r.header.Get("Retry-After"))
				return r
			})
		})
	}
}

// TestRelay_AddressRateLimit (RI17): the reach_client address limit
// answers 429 slow_down on every relay endpoint, negotiated too.
func TestRelay_AddressRateLimit(t *testing.T) {
	limitedEnv, lclock := relayEnv(t, backends()[0], tinyLimit(config.RateReachClient, config.ScopeIP, 1, time.Hour))
	lcl := signInRelay(t, limitedEnv.a, lclock, "carol", "carol-pw", "")
	id := reach.NewID()
	requireRelayError(t, lcl.call(t, limitedEnv.a, http.MethodGet, relayPath+"/"+id, ""), http.StatusNotFound, "not_found", false)
	for _, ep := range []struct{ method, path, body string }{
		{http.MethodPost, relayPath, relayBody(nil)},
		{http.MethodGet, relayPath + "/" + id, ""},
		{http.MethodDelete, relayPath + "/" + id, ""},
	} {
		t.Run(ep.method, func(t *testing.T) {
			bothShapes(t, http.StatusTooManyRequests, "slow_down", func(hdr ...string) relayReply {
				return lcl.call(t, limitedEnv.a, ep.method, ep.path, ep.body, hdr...)
			})
		})
	}
}

// TestRelay_StorageOutage (RI18): Redis down, every relay endpoint is
// 503 temporarily_unavailable with Retry-After, in both shapes.
func TestRelay_StorageOutage(t *testing.T) {
	rs := redistest.Start(t)
	st := redisStore(t, rs.URL())
	clock := &servertest.Clock{}
	env := newReachEnv(t, st, reachEnvOptions{clock: clock, edit: relayConfig, one: true})
	cl := signInRelay(t, env.a, clock, "carol", "carol-pw", "")
	rs.Stop()
	id := reach.NewID()
	for _, ep := range []struct{ method, path, body string }{
		{http.MethodPost, relayPath, relayBody(nil)},
		{http.MethodGet, relayPath + "/" + id, ""},
		{http.MethodDelete, relayPath + "/" + id, ""},
	} {
		t.Run(ep.method, func(t *testing.T) {
			bothShapes(t, http.StatusServiceUnavailable, "temporarily_unavailable", func(hdr ...string) relayReply {
				r := cl.call(t, env.a, ep.method, ep.path, ep.body, hdr...)
				require.Equal(t, "1", r.header.Get("Retry-After"))
				return r
			})
		})
	}
}

// TestRelay_Metadata: the relay is published as AAuth's
// interaction_endpoint.
func TestRelay_Metadata(t *testing.T) {
	env, _ := relayEnv(t, backends()[0])
	resp, err := env.a.HTTPClient().Get(env.a.URL + "/.well-known/oauth-authorization-server")
	require.NoError(t, err)
	defer resp.Body.Close()
	var m map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
	require.Equal(t, env.a.URL+relayPath, m["interaction_endpoint"])
}

// TestRelay_UserQuota (RI21): a user's fourth live task is the same 424
// as no channel (push bombing gets nothing, learns nothing); the
// creator's cancel frees a slot on the other instance at once.
func TestRelay_UserQuota(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env, clock := relayEnv(t, b)
			relayDevice(t, env, clock, "carol", true, reach.KindInteraction)
			cl := signInRelay(t, env.a, clock, "carol", "carol-pw", "")
			var first string
			for i := range 3 {
				r := cl.call(t, env.a, http.MethodPost, relayPath, relayBody(nil))
				require.Equal(t, http.StatusAccepted, r.status, "task %d: %s", i, r.raw)
				if first == "" {
					first = taskIDOf(t, env.a, r)
				}
			}
			bothShapes(t, http.StatusFailedDependency, "interaction_unavailable", func(hdr ...string) relayReply {
				return cl.call(t, env.b, http.MethodPost, relayPath, relayBody(nil), hdr...)
			})
			r := cl.call(t, env.a, http.MethodDelete, relayPath+"/"+first, "")
			require.Equal(t, http.StatusNoContent, r.status, r.raw)
			r = cl.call(t, env.b, http.MethodPost, relayPath, relayBody(nil))
			require.Equal(t, http.StatusAccepted, r.status, r.raw)
		})
	}
}

// TestRelay_ProblemOnlyOnTheRelay (RI20): the negotiation is the relay's
// alone: the other endpoints answer application/json whatever Accept
// says (their clients key on the RFC 6749 body, Q24).
func TestRelay_ProblemOnlyOnTheRelay(t *testing.T) {
	env, _ := relayEnv(t, backends()[0])
	for _, path := range []string{"/oauth2/token", "/native/authorize"} {
		req, err := http.NewRequest(http.MethodPost, env.a.URL+path, strings.NewReader("grant_type=nope"))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", problemAccept)
		resp, err := env.a.HTTPClient().Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.GreaterOrEqual(t, resp.StatusCode, 400, path)
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"), path)
		require.Empty(t, resp.Header.Get("Vary"), path)
		require.NotContains(t, string(b), `"type":"about:blank"`, path)
	}
}
