package fedtest_test

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
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/federation"
	"github.com/fedas/fedas/federation/fedtest"
	"github.com/fedas/fedas/par"
)

func clientKey(t *testing.T) (*par.PrivateKeyJWT, *jose.JSONWebKeySet) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	jwk := jose.JSONWebKey{Key: k, KeyID: "c1", Algorithm: string(jose.ES256), Use: "sig"}
	auth, err := par.NewPrivateKeyJWT("client-1", jwk)
	require.NoError(t, err)
	return auth, &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk.Public()}}
}

// roundTrip pushes, authorizes at the native endpoint and redeems, as
// fedas would, and returns the token response.
func roundTrip(t *testing.T, m *fedtest.Mock, auth par.ClientAuth) (par.TokenResponse, string, error) {
	t.Helper()
	ctx := context.Background()
	meta, err := federation.NewMetadataCache(federation.MetadataOptions{AllowLoopbackHTTP: true}).Get(ctx, m.URL)
	require.NoError(t, err)
	require.True(t, meta.SupportsNative())
	c := par.New(par.Options{Issuer: m.URL, PAREndpoint: meta.PAREndpoint, TokenEndpoint: meta.TokenEndpoint, Auth: auth, Timeout: time.Second})
	verifier, challenge := par.NewPKCE()
	pushed, err := c.Push(ctx, par.Request{ClientID: "client-1", Scope: "openid", State: "st", Nonce: "n-1", CodeChallenge: challenge})
	require.NoError(t, err)
	r, err := http.PostForm(meta.NativeEndpoint, url.Values{"client_id": {"client-1"}, "request_uri": {pushed.RequestURI}})
	require.NoError(t, err)
	defer r.Body.Close()
	var nr struct {
		Code string `json:"authorization_code"`
	}
	require.NoError(t, json.NewDecoder(r.Body).Decode(&nr))
	require.NotEmpty(t, nr.Code)
	tok, err := c.Exchange(ctx, nr.Code, verifier)
	return tok, meta.JWKSURI, err
}

func TestMock_RoundTripVerifies(t *testing.T) {
	m := fedtest.Start(t, fedtest.Options{})
	auth, _ := clientKey(t)
	tok, jwksURI, err := roundTrip(t, m, auth)
	require.NoError(t, err)
	claims, err := federation.VerifyIDToken(context.Background(), tok.IDToken, federation.IDTokenParams{
		Issuer: m.URL, ClientID: "client-1", Nonce: "n-1", JWKSURI: jwksURI,
		Keys: federation.NewJWKSCache(federation.JWKSOptions{AllowLoopbackHTTP: true}),
	})
	require.NoError(t, err)
	require.Equal(t, "user-1", claims.Subject)
	require.EqualValues(t, 1, m.Count(fedtest.PAR))
	require.EqualValues(t, 1, m.Count(fedtest.Native))
	require.EqualValues(t, 1, m.Count(fedtest.Token))
	push := m.Requests(fedtest.PAR)[0]
	require.Equal(t, http.StatusCreated, push.Status)
	a, err := fedtest.DecodeAssertion(push.Form.Get("client_assertion"))
	require.NoError(t, err)
	aud, ok := a.AudString()
	require.True(t, ok)
	require.Equal(t, m.URL, aud)
}

func TestMock_ClientKeysEnforced(t *testing.T) {
	auth, keys := clientKey(t)
	m := fedtest.Start(t, fedtest.Options{ClientKeys: keys})
	_, _, err := roundTrip(t, m, auth)
	require.NoError(t, err)
	// The captured assertion is single-use and bound to this issuer.
	push := m.Requests(fedtest.PAR)[0]
	r, err := http.PostForm(m.Endpoint(fedtest.PAR), push.Form)
	require.NoError(t, err)
	r.Body.Close()
	require.Equal(t, http.StatusUnauthorized, r.StatusCode)
	other := fedtest.Start(t, fedtest.Options{ClientKeys: keys})
	r, err = http.PostForm(other.Endpoint(fedtest.PAR), m.Requests(fedtest.Token)[0].Form)
	require.NoError(t, err)
	r.Body.Close()
	require.Equal(t, http.StatusUnauthorized, r.StatusCode)
}

func TestMock_PKCEAndSingleUse(t *testing.T) {
	m := fedtest.Start(t, fedtest.Options{})
	_, challenge := par.NewPKCE()
	code := m.MintCode(url.Values{"client_id": {"c"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}})
	wrong, _ := par.NewPKCE()
	r, err := http.PostForm(m.Endpoint(fedtest.Token), url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {wrong}})
	require.NoError(t, err)
	r.Body.Close()
	require.Equal(t, http.StatusBadRequest, r.StatusCode)
}

func TestMock_Modes(t *testing.T) {
	canary := fedtest.StartCanary(t)
	m := fedtest.Start(t, fedtest.Options{RedirectTo: canary.URL + "/x", Sleep: 200 * time.Millisecond})
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func() (*http.Response, []byte, error) {
		r, err := hc.Get(m.Endpoint(fedtest.Metadata))
		if err != nil {
			return nil, nil, err
		}
		defer r.Body.Close()
		b, err := io.ReadAll(r.Body)
		return r, b, err
	}
	m.SetMode(fedtest.Metadata, fedtest.Redirect)
	r, _, err := get()
	require.NoError(t, err)
	require.Equal(t, http.StatusFound, r.StatusCode)
	m.SetMode(fedtest.Metadata, fedtest.Garbage)
	r, _, err = get()
	require.NoError(t, err)
	require.Equal(t, "text/html", r.Header.Get("Content-Type"))
	m.SetMode(fedtest.Metadata, fedtest.Huge)
	_, b, err := get()
	require.NoError(t, err)
	require.Greater(t, len(b), fedtest.HugeSize)
	m.SetMode(fedtest.Metadata, fedtest.Down)
	_, _, err = get()
	require.Error(t, err)
	m.SetMode(fedtest.Metadata, fedtest.Slow)
	began := time.Now()
	_, _, err = get()
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(began), 200*time.Millisecond)
	// net/http may retry the GET once when a reused connection drops.
	require.GreaterOrEqual(t, m.Count(fedtest.Metadata), int64(5))
	require.Zero(t, canary.Hits())
	_, err = http.Get(canary.URL)
	require.NoError(t, err)
	require.EqualValues(t, 1, canary.Hits())

	_, err = http.Get(fedtest.RefusedURL(t))
	require.True(t, err != nil && (strings.Contains(err.Error(), "refused") || errors.Is(err, context.DeadlineExceeded)), "%v", err)
}
