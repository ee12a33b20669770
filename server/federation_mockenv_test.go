package server_test

// Helpers for the federation security tests: AS1 is a real fedas whose
// downstreams are fedtest mocks (federation/fedtest), routed by an
// insufficient_information prompt with a "bank" option (one value per
// downstream) and an email input (domain <id>.example → <id>).

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/federation/fedtest"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/storage"
)

// as1ClientID is AS1's client_id at every mock downstream.
const as1ClientID = "as1"

// mockFed is AS1 with mock downstreams.
type mockFed struct {
	as1  instance
	ds   map[string]*fedtest.Mock
	keys map[string]fedKey
}

// mockFedOpts configure newMockFed.
type mockFedOpts struct {
	// store of AS1 (nil: memory).
	store storage.Store
	// mocks by downstream id (default: ds1 with zero options).
	mocks map[string]fedtest.Options
	// timeout of every downstream (default: fedas's default).
	timeout time.Duration
	// edit runs last on AS1's configuration.
	edit func(*config.Config)
}

// newMockFed starts the mocks and AS1.
func newMockFed(tb testing.TB, o mockFedOpts) *mockFed {
	tb.Helper()
	if o.mocks == nil {
		o.mocks = map[string]fedtest.Options{"ds1": {}}
	}
	e := &mockFed{ds: map[string]*fedtest.Mock{}, keys: map[string]fedKey{}}
	for id, mo := range o.mocks {
		e.ds[id] = fedtest.Start(tb, mo)
		e.keys[id] = newFedKey(tb, id+"-key")
	}
	e.as1 = wrap(start(tb, o.store, e.configure(o.timeout), func(c *config.Config) {
		if o.edit != nil {
			o.edit(c)
		}
	}))
	return e
}

// ids are the downstream ids in order.
func (e *mockFed) ids() []string {
	ids := make([]string, 0, len(e.ds))
	for id := range e.ds {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// configure adds the mocks as downstreams, the prompt and the routes.
func (e *mockFed) configure(timeout time.Duration) func(*config.Config) {
	return func(c *config.Config) {
		opt := config.PromptOption{Key: "bank", Title: "Your bank"}
		for _, id := range e.ids() {
			d := downstreamOf(id, e.ds[id].URL, as1ClientID, e.keys[id])
			d.Timeout = timeout
			c.Downstreams = append(c.Downstreams, d)
			opt.Values = append(opt.Values, config.PromptValue{Value: id, Name: "Bank " + id})
		}
		c.Prompt = &config.Prompt{Options: []config.PromptOption{opt},
			Inputs: []config.PromptInput{{Key: "email", Title: "Email"}}, MaxAttempts: 3}
		for _, id := range e.ids() {
			c.Routes = append(c.Routes,
				config.Route{Downstream: id, Option: &config.RouteOption{Key: "bank", Value: id}},
				config.Route{Downstream: id, EmailDomains: []string{id + ".example"}})
		}
		for i := range c.Clients {
			if c.Clients[i].ID == "demo-app" {
				c.Clients[i].NativeCallbackURIs = append(c.Clients[i].NativeCallbackURIs, "http://127.0.0.1/cb")
			}
		}
	}
}

// pars is the number of PARs all mocks received.
func (e *mockFed) pars() int64 {
	var n int64
	for _, m := range e.ds {
		n += m.Count(fedtest.PAR)
	}
	return n
}

// tokens is the number of token requests all mocks received.
func (e *mockFed) tokens() int64 {
	var n int64
	for _, m := range e.ds {
		n += m.Count(fedtest.Token)
	}
	return n
}

// prompt sends the initial request and expects insufficient_information.
func (e *mockFed) prompt(tb testing.TB, extra url.Values) (reply, sdk.PKCE) {
	tb.Helper()
	r, pk := e.as1.initial(tb, "demo-app", extra)
	requireOAuthError(tb, r, http.StatusBadRequest, "insufficient_information")
	require.NotEmpty(tb, r.str("auth_session"))
	return r, pk
}

// answer posts a prompt answer (or any follow-up) with auth_session.
func (e *mockFed) answer(tb testing.TB, session string, answers url.Values) reply {
	tb.Helper()
	f := url.Values{"auth_session": {session}}
	for k, v := range answers {
		f[k] = v
	}
	return post(tb, e.as1.native(), f)
}

// federate runs prompt + answer bank=ds and expects federate.
func (e *mockFed) federate(tb testing.TB, ds string, extra url.Values) (reply, sdk.PKCE) {
	tb.Helper()
	p, pk := e.prompt(tb, extra)
	r := e.answer(tb, p.str("auth_session"), url.Values{"bank": {ds}})
	requireFederate(tb, r)
	return r, pk
}

func requireFederate(tb testing.TB, r reply) {
	tb.Helper()
	requireOAuthError(tb, r, http.StatusBadRequest, "federate")
	require.NotEmpty(tb, r.str("auth_session"))
	require.NotEmpty(tb, r.str("federation_uri"))
	require.NotEmpty(tb, r.str("federation_body"))
	require.NotEmpty(tb, r.str("response_uri"))
}

// atDownstream plays the device at the downstream: it posts
// federation_body verbatim to federation_uri and returns the
// authorization_code (federation draft §4.3.1).
func atDownstream(tb testing.TB, fed reply) string {
	tb.Helper()
	r := postBody(tb, fed.str("federation_uri"), "application/x-www-form-urlencoded", fed.str("federation_body"))
	require.Equal(tb, http.StatusOK, r.status, r.raw)
	require.NotEmpty(tb, r.str("authorization_code"))
	return r.str("authorization_code")
}

// respondHop posts to the hop's response_uri with the federate's auth_session
// unless form sets its own.
func respondHop(tb testing.TB, fed reply, form url.Values) reply {
	tb.Helper()
	f := url.Values{"auth_session": {fed.str("auth_session")}}
	for k, v := range form {
		f[k] = v
	}
	return post(tb, fed.str("response_uri"), f)
}

// raceClient makes one connection per request, so that no dialed but
// unused connection holds up a server's shutdown after a race.
var raceClient = &http.Client{
	Timeout:       10 * time.Second,
	Transport:     &http.Transport{DisableKeepAlives: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// tryPost is post for goroutines: no testing.TB calls.
func tryPost(endpoint string, form url.Values) (reply, error) {
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := raceClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &r.body); err != nil {
			return r, err
		}
	}
	return r, nil
}

// requireUnavailable asserts a 503 temporarily_unavailable with Retry-After.
func requireUnavailable(tb testing.TB, r reply) {
	tb.Helper()
	requireOAuthError(tb, r, http.StatusServiceUnavailable, "temporarily_unavailable")
	require.NotEmpty(tb, r.header.Get("Retry-After"))
	require.Empty(tb, r.str("federation_uri"))
}

// requireNoLeak asserts the mock's error text is not passed on.
func requireNoLeak(tb testing.TB, r reply) {
	tb.Helper()
	require.NotContains(tb, r.raw, "fedtest-internal-detail")
	require.NotContains(tb, r.raw, "<script>")
}
