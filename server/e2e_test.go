package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
	"golang.org/x/crypto/bcrypt"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/memory"
	"github.com/fedas/fedas/storage/redisstore"
	"github.com/fedas/fedas/storage/redistest"
)

const (
	bobTOTP       = "JBSWY3DPEHPK3PXP"
	partnerSecret = "demo-partner-secret"
)

// carolHash is a minimum-cost bcrypt hash so that tests needing many
// sign-ins stay fast; the demo users keep the default cost.
var carolHash = func() string {
	h, err := bcrypt.GenerateFromPassword([]byte("carol-pw"), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
}()

// testConfig adds what the security tests need to the demo config: a
// second first-party public client, a confidential first-party client, a
// third-party client and a fast-hashing user.
func testConfig(c *config.Config) {
	c.Clients = append(c.Clients,
		config.Client{ID: "c2", FirstParty: true, TokenEndpointAuthMethod: "none", Scopes: []string{"openid", "offline_access"}, GrantTypes: []string{"authorization_code", "refresh_token"}},
		config.Client{ID: "fp-conf", FirstParty: true, TokenEndpointAuthMethod: "client_secret_basic", SecretSHA256: config.SecretDigest("fp-conf-secret"), Scopes: []string{"openid", "offline_access"}, GrantTypes: []string{"authorization_code", "refresh_token"}},
		config.Client{ID: "third-party", TokenEndpointAuthMethod: "none", Scopes: []string{"openid"}, GrantTypes: []string{"authorization_code"}},
		config.Client{ID: "post-client", TokenEndpointAuthMethod: "client_secret_post", SecretSHA256: config.SecretDigest("post-secret"), Scopes: []string{"openid"}, GrantTypes: []string{"authorization_code"}, RedirectURIs: []string{"https://post.example/cb"}},
	)
	c.Users = append(c.Users, config.User{Username: "carol", Subject: "carol", PasswordHash: carolHash})
}

// backend makes a fresh store for one test.
type backend struct {
	name  string
	store func(tb testing.TB) storage.Store
}

func backends() []backend {
	return []backend{
		{"memory", func(tb testing.TB) storage.Store {
			m := memory.New()
			tb.Cleanup(func() { _ = m.Close() })
			return m
		}},
		{"redis", func(tb testing.TB) storage.Store {
			rs := redistest.Start(tb)
			return redisStore(tb, rs.URL())
		}},
	}
}

func redisStore(tb testing.TB, url string) *redisstore.Store {
	tb.Helper()
	st, err := redisstore.New(context.Background(), redisstore.Options{URL: url, Prefix: "fedas:"}, zaptest.NewLogger(tb))
	if err != nil {
		tb.Fatalf("redisstore: %v", err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	return st
}

func start(tb testing.TB, st storage.Store, edit ...func(*config.Config)) *servertest.Instance {
	return servertest.Start(tb, servertest.Options{Store: st, Configure: func(c *config.Config) {
		testConfig(c)
		for _, e := range edit {
			e(c)
		}
	}})
}

// startClocked starts an instance on a memory store that shares the
// returned clock with the server: expiry tests advance it, never sleep.
func startClocked(tb testing.TB, edit ...func(*config.Config)) (instance, *servertest.Clock) {
	clock := &servertest.Clock{}
	return wrap(servertest.Start(tb, servertest.Options{Clock: clock, Configure: func(c *config.Config) {
		testConfig(c)
		for _, e := range edit {
			e(c)
		}
	}})), clock
}

// userUI answers challenges as the named user would.
func userUI(username, password, totpSecret string) sdk.UI {
	return func(_ context.Context, r sdk.Response) (url.Values, error) {
		if r.Challenge == nil {
			return nil, fmt.Errorf("unexpected %s without challenge", r.Error)
		}
		switch r.Challenge.Type {
		case "password":
			v := url.Values{"password": {password}}
			if _, ok := r.Challenge.Inputs["username"]; ok {
				v.Set("username", username)
			}
			return v, nil
		case "otp":
			code, err := totp.GenerateCode(totpSecret, time.Now())
			return url.Values{"otp": {code}}, err
		}
		return nil, fmt.Errorf("unexpected challenge %q", r.Challenge.Type)
	}
}

// reply is a decoded HTTP answer.
type reply struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r reply) str(k string) string { s, _ := r.body[k].(string); return s }

func post(tb testing.TB, endpoint string, form url.Values, opts ...func(*http.Request)) reply {
	tb.Helper()
	return postBody(tb, endpoint, "application/x-www-form-urlencoded", form.Encode(), opts...)
}

func postBody(tb testing.TB, endpoint, contentType, body string, opts ...func(*http.Request)) reply {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
	require.NoError(tb, err)
	req.Header.Set("Content-Type", contentType)
	for _, o := range opts {
		o(req)
	}
	return do(tb, req)
}

func do(tb testing.TB, req *http.Request) reply {
	tb.Helper()
	resp, err := servertest.HTTP().Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	if len(b) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		require.NoError(tb, json.Unmarshal(b, &r.body), "body %q", b)
	}
	return r
}

func basic(id, secret string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret)) }
}

// requireOAuthError asserts an RFC 6749 §5.2 error answer.
func requireOAuthError(tb testing.TB, r reply, status int, codes ...string) {
	tb.Helper()
	require.Equal(tb, status, r.status, "body: %s", r.raw)
	require.Contains(tb, codes, r.str("error"), "body: %s", r.raw)
	require.True(tb, strings.HasPrefix(r.header.Get("Content-Type"), "application/json"), "content type %q", r.header.Get("Content-Type"))
	require.Equal(tb, "no-store", r.header.Get("Cache-Control"))
	require.NotContains(tb, r.body, "authorization_code")
	require.NotContains(tb, r.body, "access_token")
}

func (in instance) native() string         { return in.URL + "/native/authorize" }
func (in instance) token() string          { return in.URL + "/oauth2/token" }
func (in instance) intro() string          { return in.URL + "/oauth2/introspect" }
func (in instance) parURL() string         { return in.URL + "/oauth2/par" }
func (in instance) revoke() string         { return in.URL + "/oauth2/revoke" }
func wrap(i *servertest.Instance) instance { return instance{i} }

type instance struct{ *servertest.Instance }

// initial starts a native request for client and returns the first answer.
func (in instance) initial(tb testing.TB, client string, extra url.Values) (reply, sdk.PKCE) {
	tb.Helper()
	pk := sdk.NewPKCE()
	f := url.Values{"client_id": {client}, "response_type": {"code"}, "scope": {"openid offline_access"},
		"code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}
	for k, v := range extra {
		f[k] = v
	}
	return post(tb, in.native(), f), pk
}

// signIn runs a whole native sign-in and returns our code and its PKCE.
func (in instance) signIn(tb testing.TB, client, user, pw, otpSecret string) (string, sdk.PKCE) {
	tb.Helper()
	c := in.Client(tb, client)
	code, pk, err := c.Authorize(context.Background(), url.Values{"scope": {"openid offline_access"}}, userUI(user, pw, otpSecret))
	require.NoError(tb, err)
	require.NotEmpty(tb, code)
	return code, pk
}

func (in instance) redeem(tb testing.TB, client, code string, pk sdk.PKCE) reply {
	tb.Helper()
	f := url.Values{"grant_type": {"authorization_code"}, "client_id": {client}, "code": {code}, "code_verifier": {pk.Verifier}}
	if pk.RedirectURI != "" {
		f.Set("redirect_uri", pk.RedirectURI)
	}
	return post(tb, in.token(), f)
}

func (in instance) introspect(tb testing.TB, tok string) reply {
	tb.Helper()
	r := post(tb, in.intro(), url.Values{"token": {tok}}, basic("demo-partner", partnerSecret))
	require.Equal(tb, http.StatusOK, r.status, r.raw)
	return r
}

// TestE2E_LocalSignIn walks the native flow over real HTTP as a native app
// would, on both backends: alice (password) and bob (password + TOTP)
// through challenge → code → token → introspection → refresh.
func TestE2E_LocalSignIn(t *testing.T) {
	users := []struct {
		name, user, pw, otp string
		amr                 []any
	}{
		{"alice password", "alice", "wonderland", "", []any{"pwd"}},
		{"bob password and totp", "bob", "builder", bobTOTP, []any{"pwd", "otp"}},
	}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			in := wrap(start(t, b.store(t)))
			for _, u := range users {
				t.Run(u.name, func(t *testing.T) {
					var steps []string
					c := in.Client(t, "demo-app")
					ui := userUI(u.user, u.pw, u.otp)
					code, pk, err := c.Authorize(context.Background(), url.Values{"scope": {"openid offline_access"}}, func(ctx context.Context, r sdk.Response) (url.Values, error) {
						require.Equal(t, http.StatusForbidden, r.Status)
						require.Len(t, r.AuthSession, 64)
						steps = append(steps, r.Challenge.Type)
						return ui(ctx, r)
					})
					require.NoError(t, err)
					if u.otp == "" {
						require.Equal(t, []string{"password"}, steps)
					} else {
						require.Equal(t, []string{"password", "otp"}, steps)
					}
					tok, err := c.Exchange(context.Background(), code, pk)
					require.NoError(t, err)
					require.NotEmpty(t, tok.AccessToken)
					require.NotEmpty(t, tok.RefreshToken)
					require.Positive(t, tok.ExpiresIn)

					ir := in.introspect(t, tok.AccessToken)
					require.Equal(t, true, ir.body["active"])
					require.Equal(t, u.user, ir.str("sub"))
					require.Equal(t, "demo-app", ir.str("client_id"))
					require.Equal(t, "openid offline_access", ir.str("scope"))
					require.Equal(t, u.amr, ir.body["amr"])
					require.NotZero(t, ir.body["auth_time"])

					ref, err := c.Refresh(context.Background(), tok.RefreshToken)
					require.NoError(t, err)
					require.NotEqual(t, tok.AccessToken, ref.AccessToken)
					ir = in.introspect(t, ref.AccessToken)
					require.Equal(t, true, ir.body["active"])
					require.Equal(t, u.user, ir.str("sub"))
				})
			}
		})
	}
}

// TestE2E_LoginHintSkipsUsername: the username may come from login_hint
// (FiPA-04 §5.1), so the first challenge asks only for the password.
func TestE2E_LoginHintSkipsUsername(t *testing.T) {
	in := wrap(start(t, nil))
	r, pk := in.initial(t, "demo-app", url.Values{"login_hint": {"alice"}})
	require.Equal(t, http.StatusForbidden, r.status)
	ch := r.body["challenge"].(map[string]any)
	require.Equal(t, "password", ch["type"])
	require.NotContains(t, ch["inputs"], "username")
	r = post(t, in.native(), url.Values{"auth_session": {r.str("auth_session")}, "password": {"wonderland"}})
	require.Equal(t, http.StatusOK, r.status, r.raw)
	tr := in.redeem(t, "demo-app", r.str("authorization_code"), pk)
	require.Equal(t, http.StatusOK, tr.status, tr.raw)
}

// TestE2E_FollowUpAsJSON: follow-ups may be JSON (FiPA-04 §5.3).
func TestE2E_FollowUpAsJSON(t *testing.T) {
	in := wrap(start(t, nil))
	r, _ := in.initial(t, "demo-app", nil)
	body, _ := json.Marshal(map[string]string{"auth_session": r.str("auth_session"), "username": "alice", "password": "wonderland"})
	r = postBody(t, in.native(), "application/json", string(body))
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.NotEmpty(t, r.str("authorization_code"))
}

// TestAuthSession_WrongAnswersCapped: at most 5 wrong answers per session,
// the same answer for an unknown user as for a wrong password (SECURITY-RESULTS.md
// J06), then the session is dead.
func TestAuthSession_WrongAnswersCapped(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			in := wrap(start(t, b.store(t)))
			r, _ := in.initial(t, "demo-app", nil)
			as := r.str("auth_session")
			var descs []string
			for i := 0; i < 4; i++ {
				user := "alice"
				if i%2 == 1 {
					user = "nobody"
				}
				r = post(t, in.native(), url.Values{"auth_session": {as}, "username": {user}, "password": {"wrong"}})
				requireOAuthError(t, r, http.StatusForbidden, "insufficient_authorization")
				require.NotEqual(t, as, r.str("auth_session"), "rotated on every step")
				descs = append(descs, r.str("error_description"))
				as = r.str("auth_session")
			}
			require.Equal(t, descs[0], descs[1], "no user-existence oracle")
			r = post(t, in.native(), url.Values{"auth_session": {as}, "username": {"alice"}, "password": {"wrong"}})
			requireOAuthError(t, r, http.StatusBadRequest, "access_denied")
			require.Empty(t, r.str("auth_session"))
			r = post(t, in.native(), url.Values{"auth_session": {as}, "username": {"alice"}, "password": {"wonderland"}})
			requireOAuthError(t, r, http.StatusBadRequest, "invalid_session")
		})
	}
}

// TestTOTP_CodeUsableOnce: a TOTP code passes once (RFC 6238 §5.2).
func TestTOTP_CodeUsableOnce(t *testing.T) {
	in := wrap(start(t, nil))
	toOTP := func() string {
		r, _ := in.initial(t, "demo-app", url.Values{"login_hint": {"bob"}})
		r = post(t, in.native(), url.Values{"auth_session": {r.str("auth_session")}, "password": {"builder"}})
		require.Equal(t, "otp", r.body["challenge"].(map[string]any)["type"])
		return r.str("auth_session")
	}
	s1, s2 := toOTP(), toOTP()
	code, err := totp.GenerateCode(bobTOTP, time.Now())
	require.NoError(t, err)
	r := post(t, in.native(), url.Values{"auth_session": {s1}, "otp": {code}})
	require.Equal(t, http.StatusOK, r.status, r.raw)
	r = post(t, in.native(), url.Values{"auth_session": {s2}, "otp": {code}})
	requireOAuthError(t, r, http.StatusForbidden, "insufficient_authorization")
}

// TestRedis_Unavailable: with Redis down, every endpoint that needs state
// answers 503 temporarily_unavailable with Retry-After quickly, issues
// nothing, and readiness fails (SECURITY-RESULTS.md R1).
func TestRedis_Unavailable(t *testing.T) {
	rs := redistest.Start(t)
	in := wrap(start(t, redisStore(t, rs.URL())))
	r, pk := in.initial(t, "demo-app", nil)
	require.Equal(t, http.StatusForbidden, r.status)
	as := r.str("auth_session")
	code, codePK := in.signIn(t, "demo-app", "carol", "carol-pw", "")
	_ = pk
	rs.Stop()

	checks := []struct {
		name string
		call func() reply
	}{
		{"initial", func() reply { r, _ := in.initial(t, "demo-app", nil); return r }},
		{"follow-up", func() reply {
			return post(t, in.native(), url.Values{"auth_session": {as}, "username": {"alice"}, "password": {"wonderland"}})
		}},
		{"token", func() reply { return in.redeem(t, "demo-app", code, codePK) }},
		{"par", func() reply {
			return post(t, in.parURL(), url.Values{"response_type": {"code"}, "client_id": {"demo-partner"}, "redirect_uri": {"https://partner.example/cb"}, "state": {"state-12345"}}, basic("demo-partner", partnerSecret))
		}},
		{"revoke", func() reply {
			return post(t, in.revoke(), url.Values{"token": {"ory_at_x.y"}}, basic("demo-partner", partnerSecret))
		}},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			began := time.Now()
			r := c.call()
			requireOAuthError(t, r, http.StatusServiceUnavailable, "temporarily_unavailable")
			require.Equal(t, "1", r.header.Get("Retry-After"))
			t.Logf("answered in %v", time.Since(began))
		})
	}
	req, _ := http.NewRequest(http.MethodGet, in.URL+"/readyz", nil)
	require.Equal(t, http.StatusServiceUnavailable, do(t, req).status)
	req, _ = http.NewRequest(http.MethodGet, in.URL+"/healthz", nil)
	require.Equal(t, http.StatusOK, do(t, req).status)
}

// TestToken_ConcurrentRedemption (SECURITY-RESULTS.md C1): 50 concurrent token
// requests for one code: exactly one 200 with tokens, no token elsewhere.
func TestToken_ConcurrentRedemption(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			in := wrap(start(t, b.store(t)))
			code, pk := in.signIn(t, "demo-app", "carol", "carol-pw", "")
			var wins, tokens atomic.Int32
			var wg sync.WaitGroup
			gate := make(chan struct{})
			for i := 0; i < 50; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-gate
					r := in.redeem(t, "demo-app", code, pk)
					if r.status == http.StatusOK {
						wins.Add(1)
					}
					if r.str("access_token") != "" {
						tokens.Add(1)
					}
					if r.status != http.StatusOK {
						require.Equal(t, http.StatusBadRequest, r.status, r.raw)
						require.Equal(t, "invalid_grant", r.str("error"))
					}
				}()
			}
			close(gate)
			wg.Wait()
			require.EqualValues(t, 1, wins.Load())
			require.EqualValues(t, 1, tokens.Load())
		})
	}
}
