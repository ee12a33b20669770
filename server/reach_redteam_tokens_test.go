package server_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage"
)

const rtCCSecret = "rt-cc-secret-0123456789"

// redteamConfig is the reach deployment with refresh tokens for our app
// and demo-app, demo-app relaying to relayOrigin, and a confidential
// client-credentials client holding every reach scope.
func redteamConfig(c *config.Config) {
	relayConfig(c)
	for i := range c.Clients {
		switch c.Clients[i].ID {
		case "bank-app", "demo-app":
			c.Clients[i].Scopes = append(c.Clients[i].Scopes, "offline_access")
			if !containsString(c.Clients[i].GrantTypes, "refresh_token") {
				c.Clients[i].GrantTypes = append(c.Clients[i].GrantTypes, "refresh_token")
			}
		}
	}
	c.Clients = append(c.Clients, config.Client{ID: "rt-cc", Name: "Back office", TokenEndpointAuthMethod: "client_secret_basic",
		SecretSHA256: config.SecretDigest(rtCCSecret), GrantTypes: []string{"client_credentials"},
		Scopes: []string{config.ScopeQuestion, config.ScopeReachInteraction, config.ScopeReachDevice}})
}

func containsString(l []string, v string) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

// credential is one way of presenting something as the access token.
type credential struct {
	name string
	// authz returns the Authorization and DPoP header values for a
	// request of method to u.
	authz func(method, u string) (string, string)
}

func dpopCred(tb testing.TB, name string, key *dpop.Key, token string, clock *servertest.Clock) credential {
	return credential{name, func(method, u string) (string, string) {
		htu, _, _ := strings.Cut(u, "?")
		p, err := key.ProofAt(method, htu, token, clock.Now())
		require.NoError(tb, err)
		return "DPoP " + token, p
	}}
}

func bearerCred(name, token string) credential {
	return credential{name, func(string, string) (string, string) { return "Bearer " + token, "" }}
}

type rtEndpoint struct {
	method, path, body string
	// uq: a User Questioning endpoint (token errors are -10's
	// unauthorized, status 400).
	uq bool
}

// send sends one request with cred to in.
func (e rtEndpoint) send(tb testing.TB, in *servertest.Instance, cred credential) (int, http.Header, []byte) {
	tb.Helper()
	u := in.URL + e.path
	authz, proof := cred.authz(e.method, u)
	req, err := http.NewRequest(e.method, u, strings.NewReader(e.body))
	require.NoError(tb, err)
	req.Header.Set("Authorization", authz)
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	if e.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := in.HTTPClient().Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	return resp.StatusCode, resp.Header, b
}

// TestRedteam_TokenKinds (RR05): on every app, relay and User
// Questioning endpoint, something that is not a valid access token for
// it — a refresh token or an ID token (either scheme), a revoked access
// token, garbage, a client-credentials token where a user's is
// needed, another client's user token without the scope — is refused
// with an RFC 6749 body and no-store: 401 invalid_token or 403
// insufficient_scope on the resource endpoints, -10's 400 unauthorized
// on UQ's; and nothing changed (the task is SEEN with no attempt, the
// device keeps its name, the interaction is still pending).
func TestRedteam_TokenKinds(t *testing.T) {
	clock := &servertest.Clock{}
	env := newReachEnv(t, nil, reachEnvOptions{one: true, clock: clock, edit: redteamConfig})
	ctx := context.Background()
	phone := signInApp(t, env.a, "carol", "carol-pw", "openid offline_access "+config.ScopeReachDevice)
	require.NotEmpty(t, phone.token.RefreshToken)
	require.NotEmpty(t, phone.token.IDToken)
	dev := phone.register(t, "", http.StatusCreated)
	st, _, body := phone.do(t, http.MethodGet, "/reach/inbox?wait=0", "")
	require.Equal(t, http.StatusOK, st, "%s", body)
	relay := signInRelay(t, env.a, clock, "carol", "carol-pw", "openid offline_access "+config.ScopeReachInteraction+" "+config.ScopeQuestion)
	require.NotEmpty(t, relay.token.RefreshToken)
	created := relay.call(t, env.a, http.MethodPost, relayPath, relayBody(nil))
	require.Equal(t, http.StatusAccepted, created.status, created.raw)
	interaction := taskIDOf(t, env.a, created)
	clock.Advance(3 * time.Second)

	// A task delivered to the phone and opened there.
	rs := env.store.(storage.ReachStore)
	tk := reach.Task{ID: reach.NewID(), Kind: reach.KindAppAuth, User: "carol", ClientID: "demo-app", State: reach.StateCreated, Ref: reach.NewID(),
		ExpiresAt: clock.Now().Add(2 * time.Minute), Devices: []string{dev.DeviceID}}
	tk.Binding, _ = reach.NewBinding()
	tk.Result = []byte(`{"d":{"client_id":"demo-app","client_name":"Demo app"}}`)
	require.NoError(t, rs.CreateTask(ctx, tk))
	st, _, body = phone.do(t, http.MethodPost, "/reach/tasks/"+tk.ID+"/ack", "")
	require.Equal(t, http.StatusOK, st, "%s", body)

	// The revoked token: another sign-in of our app, revoked (RFC 7009).
	revokedApp := signInApp(t, env.a, "carol", "carol-pw", "")
	form := url.Values{"token": {revokedApp.token.AccessToken}, "client_id": {"bank-app"}}
	resp, err := env.a.HTTPClient().PostForm(env.a.URL+server.PathRevoke, form)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	cc := ccToken(t, env.a, "rt-cc", rtCCSecret, config.ScopeQuestion+" "+config.ScopeReachInteraction+" "+config.ScopeReachDevice)
	userQ := userQuestionToken(t, env.a, "carol", "carol-pw")

	pick := `{"decision":"approve","binding_choice":` + strconv.Itoa(tk.Binding.Right) + `,"amr":["pin"]}`
	endpoints := []rtEndpoint{
		{http.MethodPost, "/reach/devices", phoneBody, false},
		{http.MethodGet, "/reach/devices", "", false},
		{http.MethodPatch, "/reach/devices/" + dev.DeviceID, `{"name":"Renamed"}`, false},
		{http.MethodDelete, "/reach/devices/" + dev.DeviceID, "", false},
		{http.MethodGet, "/reach/inbox", "", false},
		{http.MethodGet, "/reach/tasks/" + tk.ID, "", false},
		{http.MethodPost, "/reach/tasks/" + tk.ID + "/ack", "", false},
		{http.MethodPost, "/reach/tasks/" + tk.ID + "/response", pick, false},
		{http.MethodPost, "/reach/scan", `{"ref":"` + tk.Ref + `"}`, false},
		{http.MethodPost, relayPath, relayBody(nil), false},
		{http.MethodGet, relayPath + "/" + interaction, "", false},
		{http.MethodDelete, relayPath + "/" + interaction, "", false},
		{http.MethodPost, server.PathUQQuestions, `{"question_to_display":"Pay 12 EUR?","statements_to_display":["Yes","No"]}`, true},
		{http.MethodGet, server.PathUQPolling + "?question_id=" + strings.Repeat("A", 43), "", true},
	}
	creds := []credential{
		dpopCred(t, "our app's refresh token, DPoP", phone.key, phone.token.RefreshToken, clock),
		bearerCred("our app's refresh token, Bearer", phone.token.RefreshToken),
		dpopCred(t, "our app's ID token, DPoP", phone.key, phone.token.IDToken, clock),
		bearerCred("our app's ID token, Bearer", phone.token.IDToken),
		dpopCred(t, "relay client's refresh token, DPoP", relay.key, relay.token.RefreshToken, clock),
		bearerCred("relay client's ID token, Bearer", relay.token.IDToken),
		dpopCred(t, "revoked access token", revokedApp.key, revokedApp.token.AccessToken, clock),
		bearerCred("DPoP-bound token as Bearer", relay.token.AccessToken),
		bearerCred("garbage", "not-a-token"),
		bearerCred("a JWT-looking value", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJjYXJvbCJ9."),
	}
	appOrRelayOnly := []credential{
		bearerCred("client-credentials token", cc),
		bearerCred("another client's user token without the scope", userQ),
	}
	uqOnly := []credential{
		dpopCred(t, "our app's token (no question scope)", phone.key, phone.token.AccessToken, clock),
	}
	check := func(ep rtEndpoint, cred credential) {
		st, h, body := ep.send(t, env.a, cred)
		what := ep.method + " " + ep.path + ": " + cred.name
		m := requireErrorShape(t, what, st, h, body)
		if ep.uq {
			require.Equal(t, http.StatusBadRequest, st, "%s: %s", what, body)
			require.Equal(t, "unauthorized", m["error"], what)
			return
		}
		switch st {
		case http.StatusUnauthorized:
			require.Equal(t, "invalid_token", m["error"], what)
			require.NotEmpty(t, h.Values("WWW-Authenticate"), what)
		case http.StatusForbidden:
			require.Equal(t, "insufficient_scope", m["error"], what)
		case http.StatusBadRequest, http.StatusNotFound:
			// A client-credentials token on the relay: no user to relay
			// to (400), no task of this caller (404).
			require.Equal(t, "client-credentials token", cred.name, "%s: %s", what, body)
		default:
			t.Fatalf("%s: %d %s", what, st, body)
		}
	}
	for _, ep := range endpoints {
		for _, cred := range creds {
			check(ep, cred)
		}
		if ep.uq {
			for _, cred := range uqOnly {
				check(ep, cred)
			}
		} else {
			for _, cred := range appOrRelayOnly {
				check(ep, cred)
			}
		}
	}
	// An expired access token is not in this table: fosite checks
	// expiry against the real clock, which the deployment's test clock
	// does not move (see SECURITY-RESULTS.md RR05).

	got, err := rs.Task(ctx, tk.ID)
	require.NoError(t, err)
	require.Equal(t, reach.StateSeen, got.State)
	require.Zero(t, got.Attempts)
	d, err := rs.Device(ctx, dev.DeviceID)
	require.NoError(t, err)
	require.Equal(t, "Alice's phone", d.Name)
	it, err := rs.Task(ctx, interaction)
	require.NoError(t, err)
	require.True(t, it.State.Live(), "the interaction was not cancelled: %s", it.State)
	_, err = rs.TakeRef(ctx, tk.Ref)
	require.NoError(t, err, "the ref was not taken")
}

// TestRedteam_UQDPoP (RR15): a DPoP-bound token on the User Questioning
// endpoints (Bearer or DPoP are both allowed there) needs a fresh proof
// for its key, method and URL: a replayed proof (same jti), none, one
// for another URL, method or key, or one for another token (ath) is
// -10's 400 unauthorized with no-store, and the refused ask creates no
// question (the user's app sees one, from the first use only).
func TestRedteam_UQDPoP(t *testing.T) {
	clock := &servertest.Clock{}
	env := newReachEnv(t, nil, reachEnvOptions{one: true, clock: clock, edit: redteamConfig})
	phone := signInApp(t, env.a, "carol", "carol-pw", "")
	phone.register(t, "", http.StatusCreated)
	require.Zero(t, phoneEntries(t, phone))
	cl := signInRelay(t, env.a, clock, "carol", "carol-pw", "openid "+config.ScopeQuestion)
	other := signInRelay(t, env.a, clock, "carol", "carol-pw", "openid "+config.ScopeQuestion)
	ep := rtEndpoint{method: http.MethodPost, path: server.PathUQQuestions,
		body: `{"question_to_display":"Pay 12 EUR?","statements_to_display":["Yes","No"],"wished_acr":"app"}`, uq: true}
	u := env.a.URL + ep.path
	proof, err := cl.key.ProofAt(http.MethodPost, u, cl.token.AccessToken, clock.Now())
	require.NoError(t, err)
	fixed := func(name, p string) credential {
		return credential{name, func(string, string) (string, string) { return "DPoP " + cl.token.AccessToken, p }}
	}
	st, _, body := ep.send(t, env.a, fixed("first use", proof))
	require.Equal(t, http.StatusOK, st, "%s", body)
	mk := func(key *dpop.Key, method, url, token string) string {
		p, err := key.ProofAt(method, url, token, clock.Now())
		require.NoError(t, err)
		return p
	}
	for _, c := range []credential{
		fixed("replayed proof", proof),
		fixed("no proof", ""),
		fixed("proof for another URL", mk(cl.key, http.MethodPost, env.a.URL+server.PathUQPolling, cl.token.AccessToken)),
		fixed("proof for GET", mk(cl.key, http.MethodGet, u, cl.token.AccessToken)),
		fixed("proof of another key", mk(other.key, http.MethodPost, u, cl.token.AccessToken)),
		fixed("proof for another token", mk(cl.key, http.MethodPost, u, other.token.AccessToken)),
	} {
		st, h, body := ep.send(t, env.a, c)
		m := requireErrorShape(t, c.name, st, h, body)
		require.Equal(t, http.StatusBadRequest, st, "%s: %s", c.name, body)
		require.Equal(t, "unauthorized", m["error"], c.name)
	}
	require.Equal(t, 1, phoneEntries(t, phone), "only the first ask reached the app")
}
