package federation_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/federation"
	"github.com/fedas/fedas/federation/fedtest"
	"github.com/fedas/fedas/par"
)

const (
	testClientID = "client-1"
	webCallback  = "https://fedas.example/federation/callback/ds1"
)

// fedEnv is a Federator with one downstream "ds1", a fedtest mock that
// checks our private_key_jwt assertions.
type fedEnv struct {
	f  *federation.Federator
	ds *fedtest.Mock
}

type envOpts struct {
	mock fedtest.Options
	// noDPoP builds the Federator without a DPoP key.
	noDPoP bool
}

func newFedEnv(tb testing.TB, o envOpts) fedEnv {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	jwk := jose.JSONWebKey{Key: k, KeyID: "fedas-1", Algorithm: string(jose.ES256), Use: "sig"}
	raw, err := json.Marshal(jwk)
	require.NoError(tb, err)
	o.mock.ClientKeys = &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk.Public()}}
	ds := fedtest.Start(tb, o.mock)
	cfg := &config.Config{
		Dev: config.Dev{AllowLoopbackHTTP: true},
		Downstreams: []config.Downstream{{
			ID: "ds1", Issuer: ds.URL, ClientID: testClientID,
			Auth:    config.DownstreamAuth{Method: "private_key_jwt", Key: string(raw)},
			Scopes:  map[string]string{"email": "email"},
			Claims:  []string{"email"},
			Timeout: 2 * time.Second,
		}},
	}
	var seed []byte
	if !o.noDPoP {
		seed = make([]byte, 32)
		_, _ = rand.Read(seed)
	}
	f, err := federation.New(cfg, nil, seed)
	require.NoError(tb, err)
	return fedEnv{f: f, ds: ds}
}

// native runs Begin and the native endpoint as the native client would,
// and returns the hop and the downstream's code.
func (e fedEnv) native(tb testing.TB, r federation.HopRequest) (federation.Hop, string) {
	tb.Helper()
	hop, fed, err := e.f.Begin(context.Background(), "ds1", r)
	require.NoError(tb, err)
	resp, err := http.Post(fed.FederationURI, "application/x-www-form-urlencoded", strings.NewReader(fed.FederationBody))
	require.NoError(tb, err)
	defer resp.Body.Close()
	require.Equal(tb, http.StatusOK, resp.StatusCode)
	var nr struct {
		Code string `json:"authorization_code"`
	}
	require.NoError(tb, json.NewDecoder(resp.Body).Decode(&nr))
	require.NotEmpty(tb, nr.Code)
	return hop, nr.Code
}

// browse sends the browser to an authorization URL and returns the
// authorization response the downstream redirects it back with.
func browse(tb testing.TB, authzURL, wantRedirect string) url.Values {
	tb.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authzURL)
	require.NoError(tb, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	require.Equal(tb, http.StatusSeeOther, resp.StatusCode)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(tb, err)
	q := loc.Query()
	loc.RawQuery = ""
	require.Equal(tb, wantRedirect, loc.String())
	return q
}

func keys(v url.Values) []string {
	out := make([]string, 0, len(v))
	for k := range v {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func intp(v int) *int { return &v }

// requireTerminal asserts a hop failure the caller answers with
// access_denied: it matches want and ErrRejected, never a retry-later error.
func requireTerminal(tb testing.TB, err, want error) {
	tb.Helper()
	require.ErrorIs(tb, err, want)
	require.ErrorIs(tb, err, federation.ErrRejected)
	require.NotErrorIs(tb, err, federation.ErrUnavailable)
	require.NotErrorIs(tb, err, par.ErrUnavailable)
}

// RFC 9449 §5: a code our PAR bound to our DPoP key must come back as a
// DPoP token; Bearer means the downstream ignored dpop_jkt.
func TestComplete_TokenType(t *testing.T) {
	tests := []struct {
		name      string
		noDPoP    bool
		tokenType string
		want      error
	}{
		{"DPoP-bound, DPoP", false, "", nil},
		{"DPoP-bound, dpop lower case", false, "dpop", nil},
		{"DPoP-bound, Bearer refused", false, "Bearer", federation.ErrRejected},
		{"DPoP-bound, bearer refused", false, "bearer", federation.ErrRejected},
		{"not bound, Bearer", true, "", nil},
		{"not bound, DPoP", true, "DPoP", nil},
		{"unknown token_type", true, "mac", federation.ErrRejected},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newFedEnv(t, envOpts{noDPoP: tc.noDPoP, mock: fedtest.Options{TokenType: tc.tokenType}})
			hop, code := e.native(t, federation.HopRequest{Scope: "email"})
			require.Equal(t, !tc.noDPoP, hop.DPoP)
			require.Equal(t, !tc.noDPoP, e.ds.Requests(fedtest.PAR)[0].Form.Get("dpop_jkt") != "")
			id, err := e.f.Complete(context.Background(), hop, code, "")
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				require.NotErrorIs(t, err, federation.ErrUnavailable)
				return
			}
			require.NoError(t, err)
			require.Equal(t, "user-1", id.Subject)
			require.Equal(t, !tc.noDPoP, e.ds.Requests(fedtest.Token)[0].Header.Get("DPoP") != "")
		})
	}
}

// OIDC Core §3.1.3.7 step 13: with max_age forwarded, auth_time must be
// present and no older than max_age + AuthTimeLeeway by our clock.
func TestComplete_MaxAge(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	limit := 300*time.Second + federation.AuthTimeLeeway
	tests := []struct {
		name   string
		maxAge *int
		idt    fedtest.IDTokenOptions
		want   error
	}{
		{"auth_time missing", intp(300), fedtest.IDTokenOptions{OmitAuthTime: true}, federation.ErrAuthTooOld},
		{"too old", intp(300), fedtest.IDTokenOptions{AuthTime: now.Add(-limit - time.Second)}, federation.ErrAuthTooOld},
		{"at the limit", intp(300), fedtest.IDTokenOptions{AuthTime: now.Add(-limit)}, nil},
		{"fresh", intp(300), fedtest.IDTokenOptions{AuthTime: now.Add(-100 * time.Second)}, nil},
		{"max_age 0, just now", intp(0), fedtest.IDTokenOptions{AuthTime: now}, nil},
		{"max_age 0, a minute ago", intp(0), fedtest.IDTokenOptions{AuthTime: now.Add(-time.Minute)}, federation.ErrAuthTooOld},
		{"no max_age, no auth_time", nil, fedtest.IDTokenOptions{OmitAuthTime: true}, nil},
		{"no max_age, old auth_time", nil, fedtest.IDTokenOptions{AuthTime: now.Add(-24 * time.Hour)}, nil},
		{"auth_time in the future", intp(300), fedtest.IDTokenOptions{AuthTime: now.Add(time.Hour)}, federation.ErrRejected},
		{"auth_time within the leeway ahead", intp(300), fedtest.IDTokenOptions{AuthTime: now.Add(federation.AuthTimeLeeway)}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newFedEnv(t, envOpts{mock: fedtest.Options{IDToken: tc.idt}})
			e.f.Now = func() time.Time { return now }
			hop, code := e.native(t, federation.HopRequest{MaxAge: tc.maxAge})
			require.Equal(t, now, hop.Began)
			if tc.maxAge != nil {
				require.Equal(t, *tc.maxAge, *hop.MaxAge)
				require.Equal(t, hop.MaxAge, roundTripHop(t, hop).MaxAge)
			}
			id, err := e.f.Complete(context.Background(), hop, code, "")
			if tc.want != nil {
				requireTerminal(t, err, tc.want)
				require.NotErrorIs(t, err, federation.ErrACRNotMet)
				return
			}
			require.NoError(t, err)
			if !tc.idt.AuthTime.IsZero() {
				require.True(t, tc.idt.AuthTime.Equal(id.AuthTime))
			}
		})
	}
}

// OIDC Core §3.1.3.7 step 12: with acr_values forwarded, acr must be one
// of them.
func TestComplete_ACR(t *testing.T) {
	tests := []struct {
		name      string
		acrValues string
		acr       string
		want      error
	}{
		{"acr missing", "urn:a urn:b", "", federation.ErrACRNotMet},
		{"other acr", "urn:a urn:b", "urn:c", federation.ErrACRNotMet},
		{"prefix is not a match", "urn:a", "urn:a:weaker", federation.ErrACRNotMet},
		{"matching first", "urn:a urn:b", "urn:a", nil},
		{"matching second", "urn:a urn:b", "urn:b", nil},
		{"not requested", "", "urn:x", nil},
		{"not requested, absent", "", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newFedEnv(t, envOpts{mock: fedtest.Options{IDToken: fedtest.IDTokenOptions{ACR: tc.acr}}})
			hop, code := e.native(t, federation.HopRequest{ACRValues: tc.acrValues})
			require.Equal(t, tc.acrValues, roundTripHop(t, hop).ACRValues)
			require.Equal(t, tc.acrValues, e.ds.Requests(fedtest.PAR)[0].Form.Get("acr_values"))
			id, err := e.f.Complete(context.Background(), hop, code, "")
			if tc.want != nil {
				requireTerminal(t, err, tc.want)
				require.NotErrorIs(t, err, federation.ErrAuthTooOld)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.acr, id.ACR)
		})
	}
}

// roundTripHop stores and reloads a hop as a session does.
func roundTripHop(tb testing.TB, hop federation.Hop) federation.Hop {
	tb.Helper()
	b, err := json.Marshal(hop)
	require.NoError(tb, err)
	var out federation.Hop
	require.NoError(tb, json.Unmarshal(b, &out))
	require.Equal(tb, hop.DPoP, out.DPoP)
	require.Equal(tb, hop.RedirectURI, out.RedirectURI)
	return out
}

// RFC 9207 §2.4 on the browser's authorization response, whether it
// carries a code or an error.
func TestCheckResponseIss(t *testing.T) {
	tests := []struct {
		name string
		mock fedtest.Options
		want error
	}{
		{"present, match", fedtest.Options{IssParameter: true}, nil},
		{"present, match, not advertised", fedtest.Options{}, nil},
		{"present, mismatch", fedtest.Options{AuthorizeIss: "https://evil.example"}, federation.ErrMixUp},
		{"present, mismatch, advertised", fedtest.Options{IssParameter: true, AuthorizeIss: "https://evil.example"}, federation.ErrMixUp},
		{"absent, not advertised", fedtest.Options{AuthorizeOmitIss: true}, nil},
		{"absent, advertised", fedtest.Options{AuthorizeOmitIss: true, IssParameter: true}, federation.ErrMixUp},
		{"error response, match", fedtest.Options{IssParameter: true, AuthorizeError: "access_denied"}, nil},
		{"error response, mismatch", fedtest.Options{AuthorizeError: "access_denied", AuthorizeIss: "https://evil.example"}, federation.ErrMixUp},
		{"error response, absent, advertised", fedtest.Options{AuthorizeError: "access_denied", AuthorizeOmitIss: true, IssParameter: true}, federation.ErrMixUp},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.mock.NoNative = true
			e := newFedEnv(t, envOpts{mock: tc.mock})
			ctx := context.Background()
			hop, u, err := e.f.BeginWeb(ctx, "ds1", federation.HopRequest{}, webCallback)
			require.NoError(t, err)
			resp := browse(t, u, webCallback)
			require.Equal(t, hop.State, resp.Get("state"))
			require.Equal(t, tc.mock.AuthorizeError, resp.Get("error"))
			require.Equal(t, !tc.mock.AuthorizeOmitIss, resp.Has("iss"))
			err = e.f.CheckResponseIss(ctx, hop, resp.Get("iss"))
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				require.NotErrorIs(t, err, federation.ErrUnavailable)
				return
			}
			require.NoError(t, err)
		})
	}
}

func TestCheckResponseIss_HopGone(t *testing.T) {
	e := newFedEnv(t, envOpts{})
	hop := federation.Hop{Downstream: "ds1", Issuer: "https://re-pointed.example"}
	require.ErrorIs(t, e.f.CheckResponseIss(context.Background(), hop, ""), federation.ErrHopGone)
	require.ErrorIs(t, e.f.CheckResponseIss(context.Background(), hop, e.ds.URL), federation.ErrMixUp)
}

// docs/decisions.md Q19 with PAR (RFC 9126 §4): the pushed request carries
// the redirect_uri, the browser only client_id and request_uri, and the
// token request the same redirect_uri (RFC 6749 §4.1.3).
func TestBeginWeb_PAR(t *testing.T) {
	e := newFedEnv(t, envOpts{mock: fedtest.Options{NoNative: true, IssParameter: true}})
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	e.f.Now = func() time.Time { return now }

	supported, err := e.f.SupportsNative(ctx, "ds1")
	require.NoError(t, err)
	require.False(t, supported)
	_, _, err = e.f.Begin(ctx, "ds1", federation.HopRequest{})
	require.ErrorIs(t, err, federation.ErrFederateUnsupported)
	require.Zero(t, e.ds.Count(fedtest.PAR))

	hop, u, err := e.f.BeginWeb(ctx, "ds1", federation.HopRequest{State: "upstream-state", Scope: "email unmapped", MaxAge: intp(600), ACRValues: "urn:a"}, webCallback)
	require.NoError(t, err)
	require.Equal(t, webCallback, hop.RedirectURI)
	require.Equal(t, "upstream-state", hop.State)
	require.True(t, hop.DPoP)
	require.Equal(t, now, hop.Began)
	hop = roundTripHop(t, hop)

	require.EqualValues(t, 1, e.ds.Count(fedtest.PAR))
	push := e.ds.Requests(fedtest.PAR)[0]
	require.Equal(t, http.StatusCreated, push.Status)
	require.Equal(t, webCallback, push.Form.Get("redirect_uri"))
	require.Equal(t, "S256", push.Form.Get("code_challenge_method"))
	require.Len(t, push.Form.Get("code_challenge"), 43)
	require.Equal(t, hop.State, push.Form.Get("state"))
	require.Equal(t, hop.Nonce, push.Form.Get("nonce"))
	require.NotEmpty(t, hop.Nonce)
	require.Equal(t, "openid email", push.Form.Get("scope"))
	require.Equal(t, "600", push.Form.Get("max_age"))
	require.Equal(t, "urn:a", push.Form.Get("acr_values"))
	require.NotEmpty(t, push.Form.Get("dpop_jkt"))
	require.NotEmpty(t, push.Form.Get("client_assertion"))
	require.False(t, push.Form.Has("native_callback_uri"))

	bu, err := url.Parse(u)
	require.NoError(t, err)
	q := bu.Query()
	bu.RawQuery = ""
	require.Equal(t, e.ds.Endpoint(fedtest.Authorize), bu.String())
	require.Equal(t, []string{"client_id", "request_uri"}, keys(q))
	require.Equal(t, testClientID, q.Get("client_id"))
	require.True(t, strings.HasPrefix(q.Get("request_uri"), fedtest.RequestURIPrefix))

	resp := browse(t, u, webCallback)
	require.Equal(t, hop.State, resp.Get("state"))
	require.NoError(t, e.f.CheckResponseIss(ctx, hop, resp.Get("iss")))
	e.ds.SetIDToken(fedtest.IDTokenOptions{ACR: "urn:a"})
	id, err := e.f.Complete(ctx, hop, resp.Get("code"), resp.Get("iss"))
	require.NoError(t, err)
	require.Equal(t, "user-1", id.Subject)
	require.Equal(t, "urn:a", id.ACR)
	tok := e.ds.Requests(fedtest.Token)
	require.Len(t, tok, 1)
	require.Equal(t, http.StatusOK, tok[0].Status)
	require.Equal(t, webCallback, tok[0].Form.Get("redirect_uri"))
	require.NotEmpty(t, tok[0].Header.Get("DPoP"))
}

// docs/decisions.md Q19 without PAR: the whole request goes in the query
// (RFC 6749 §4.1.1; OIDC Core §3.1.2.1) and nothing is pushed.
func TestBeginWeb_NoPAR(t *testing.T) {
	e := newFedEnv(t, envOpts{mock: fedtest.Options{NoNative: true, NoPAR: true}})
	ctx := context.Background()
	hop, u, err := e.f.BeginWeb(ctx, "ds1", federation.HopRequest{Scope: "email", MaxAge: intp(0), ACRValues: "urn:a urn:b"}, webCallback)
	require.NoError(t, err)
	require.Zero(t, e.ds.Count(fedtest.PAR))
	require.False(t, hop.DPoP, "no dpop_jkt in a query: the code is not bound")
	require.Equal(t, webCallback, hop.RedirectURI)

	bu, err := url.Parse(u)
	require.NoError(t, err)
	q := bu.Query()
	bu.RawQuery = ""
	require.Equal(t, e.ds.Endpoint(fedtest.Authorize), bu.String())
	require.Equal(t, []string{"acr_values", "client_id", "code_challenge", "code_challenge_method", "max_age",
		"nonce", "redirect_uri", "response_type", "scope", "state"}, keys(q))
	require.Equal(t, "code", q.Get("response_type"))
	require.Equal(t, testClientID, q.Get("client_id"))
	require.Equal(t, webCallback, q.Get("redirect_uri"))
	require.Equal(t, "openid email", q.Get("scope"))
	require.Equal(t, hop.State, q.Get("state"))
	require.Equal(t, hop.Nonce, q.Get("nonce"))
	require.Len(t, q.Get("code_challenge"), 43)
	require.Equal(t, "S256", q.Get("code_challenge_method"))
	require.Equal(t, "0", q.Get("max_age"))
	require.Equal(t, "urn:a urn:b", q.Get("acr_values"))

	resp := browse(t, u, webCallback)
	require.Equal(t, hop.State, resp.Get("state"))
	require.NoError(t, e.f.CheckResponseIss(ctx, hop, resp.Get("iss")))
	e.ds.SetIDToken(fedtest.IDTokenOptions{ACR: "urn:b"})
	id, err := e.f.Complete(ctx, hop, resp.Get("code"), resp.Get("iss"))
	require.NoError(t, err)
	require.Equal(t, "user-1", id.Subject)
	require.Equal(t, "urn:b", id.ACR)
	require.Equal(t, "user-1@"+strings.TrimPrefix(e.ds.URL, "http://"), id.Claims["email"])
	tok := e.ds.Requests(fedtest.Token)
	require.Len(t, tok, 1)
	require.Equal(t, webCallback, tok[0].Form.Get("redirect_uri"))
}

// The mock enforces RFC 6749 §4.1.3, so a hop whose redirect_uri changed
// after the authorization request cannot redeem its code.
func TestBeginWeb_RedirectURIMustMatchAtToken(t *testing.T) {
	e := newFedEnv(t, envOpts{mock: fedtest.Options{NoNative: true}})
	ctx := context.Background()
	hop, u, err := e.f.BeginWeb(ctx, "ds1", federation.HopRequest{}, webCallback)
	require.NoError(t, err)
	resp := browse(t, u, webCallback)
	hop.RedirectURI = "https://fedas.example/other"
	_, err = e.f.Complete(ctx, hop, resp.Get("code"), resp.Get("iss"))
	require.ErrorIs(t, err, federation.ErrRejected)
	require.Equal(t, http.StatusBadRequest, e.ds.Requests(fedtest.Token)[0].Status)
}

// A downstream without authorization_endpoint cannot be federated to
// through the browser: refused after discovery, before anything else.
func TestBeginWeb_NoAuthorizationEndpoint(t *testing.T) {
	for _, o := range []fedtest.Options{{NoNative: true, NoAuthorize: true}, {NoAuthorize: true}, {NoAuthorize: true, NoPAR: true}} {
		e := newFedEnv(t, envOpts{mock: o})
		_, _, err := e.f.BeginWeb(context.Background(), "ds1", federation.HopRequest{}, webCallback)
		require.ErrorIs(t, err, federation.ErrFederateUnsupported)
		require.Zero(t, e.ds.Count(fedtest.PAR))
		require.Equal(t, e.ds.Count(fedtest.Metadata), e.ds.Total(), "only discovery")
	}
}

func TestBeginWeb_InvalidInput(t *testing.T) {
	e := newFedEnv(t, envOpts{mock: fedtest.Options{NoNative: true}})
	ctx := context.Background()
	for _, tc := range []struct {
		name, id, redirect string
		maxAge             *int
		want               error
	}{
		{"relative redirect_uri", "ds1", "/callback", nil, nil},
		{"redirect_uri with fragment", "ds1", webCallback + "#x", nil, nil},
		{"negative max_age", "ds1", webCallback, intp(-1), nil},
		{"unknown downstream", "nope", webCallback, nil, federation.ErrHopGone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := e.f.BeginWeb(ctx, tc.id, federation.HopRequest{MaxAge: tc.maxAge}, tc.redirect)
			require.Error(t, err)
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
			}
			require.Zero(t, e.ds.Total())
		})
	}
}

func TestSupportsNative(t *testing.T) {
	tests := []struct {
		name string
		mock fedtest.Options
		want bool
	}{
		{"native and PAR", fedtest.Options{}, true},
		{"native_authorization_endpoint", fedtest.Options{NativeName: "native_authorization_endpoint"}, true},
		{"no native", fedtest.Options{NoNative: true}, false},
		{"native without PAR", fedtest.Options{NoPAR: true}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newFedEnv(t, envOpts{mock: tc.mock})
			got, err := e.f.SupportsNative(context.Background(), "ds1")
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			require.Zero(t, e.ds.Count(fedtest.PAR))
		})
	}
	e := newFedEnv(t, envOpts{mock: fedtest.Options{Modes: map[fedtest.Endpoint]fedtest.Mode{fedtest.Metadata: fedtest.ServerError}}})
	_, err := e.f.SupportsNative(context.Background(), "ds1")
	require.ErrorIs(t, err, federation.ErrUnavailable)
	_, err = e.f.SupportsNative(context.Background(), "nope")
	require.True(t, errors.Is(err, federation.ErrHopGone))
}
