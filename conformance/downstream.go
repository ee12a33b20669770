package conformance

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Spec sections the downstream checks cite (besides fed-draft-00 §4.1).
const (
	specRFC9126Auth    = "RFC 9126 §2.1"
	specRFC9126Created = "RFC 9126 §2.2"
	specRFC9126Use     = "RFC 9126 §4"
)

// needPAREndpoint: the metadata advertises a PAR endpoint.
func needPAREndpoint(env *Env) string {
	if env.Metadata == nil {
		return noMetadata + env.MetadataError
	}
	if env.MetaString("pushed_authorization_request_endpoint") == "" {
		return "the metadata advertises no pushed_authorization_request_endpoint"
	}
	return ""
}

// needPARClient: a client registered as a federating AS, with its
// credentials.
func needPARClient(env *Env) string {
	if env.PARClientID == "" {
		return "no --par-client-id given (a client registered there as a federating AS)"
	}
	switch {
	case env.PARAuth.Method == "client_secret_basic":
	case env.PARAuth.Method == "private_key_jwt" && env.PARKey != "":
	default:
		return "no --par-auth client_secret_basic:SECRET (or private_key_jwt with --par-key) given"
	}
	return ""
}

// ParsePARKey parses a private JWK (JSON) for private_key_jwt (RFC 7523
// §2.2) and names the algorithm it signs with: the JWK's alg, else ES256,
// EdDSA or PS256 by key type.
func ParsePARKey(jwkJSON string) (*jose.JSONWebKey, jose.SignatureAlgorithm, error) {
	var k jose.JSONWebKey
	if err := json.Unmarshal([]byte(jwkJSON), &k); err != nil {
		return nil, "", fmt.Errorf("not a JWK: %v", err)
	}
	if k.IsPublic() {
		return nil, "", errors.New("the JWK has no private key")
	}
	if k.Algorithm != "" {
		return &k, jose.SignatureAlgorithm(k.Algorithm), nil
	}
	switch key := k.Key.(type) {
	case *ecdsa.PrivateKey:
		if key.Curve == elliptic.P256() {
			return &k, jose.ES256, nil
		}
	case ed25519.PrivateKey:
		return &k, jose.EdDSA, nil
	case *rsa.PrivateKey:
		return &k, jose.PS256, nil
	}
	return nil, "", errors.New("the JWK names no alg and is not a P-256, Ed25519 or RSA key")
}

// clientAssertion is a private_key_jwt assertion (RFC 7523 §3) of
// clientID for aud, signed with key.
func clientAssertion(key *jose.JSONWebKey, alg jose.SignatureAlgorithm, clientID, aud string) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	now := time.Now()
	payload, _ := json.Marshal(map[string]any{"iss": clientID, "sub": clientID, "aud": aud, "jti": randomToken(16),
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()})
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// otherKey is a fresh key of the same type as key, under key's kid: an
// assertion it signs names the registered key and does not verify with it.
func otherKey(key *jose.JSONWebKey) (*jose.JSONWebKey, error) {
	var k any
	var err error
	switch key.Key.(type) {
	case ed25519.PrivateKey:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	case *rsa.PrivateKey:
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return nil, err
	}
	return &jose.JSONWebKey{Key: k, KeyID: key.KeyID, Algorithm: key.Algorithm}, nil
}

// postPAR pushes form as the federating client: HTTP Basic for
// client_secret_basic (PostForm), or a client assertion signed with key
// (the registered one, or another to be refused) for private_key_jwt.
func postPAR(ctx context.Context, env *Env, form url.Values, key *jose.JSONWebKey) (*Response, Exchange) {
	u := env.MetaString("pushed_authorization_request_endpoint")
	pe := parEnv(env)
	if env.PARAuth.Method != "private_key_jwt" {
		return pe.PostForm(ctx, u, form)
	}
	reg, alg, err := ParsePARKey(env.PARKey)
	if err == nil && key == nil {
		key = reg
	}
	aud := env.MetaString("issuer")
	if aud == "" {
		aud = env.Issuer
	}
	var assertion string
	if err == nil {
		assertion, err = clientAssertion(key, alg, env.PARClientID, aud)
	}
	if err != nil {
		return nil, Exchange{Method: http.MethodPost, URL: u, Error: "--par-key: " + err.Error()}
	}
	form = cloneValues(form)
	form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	form.Set("client_assertion", assertion)
	pe.Auth = ClientAuth{Method: "none"} // client_id stays in the body
	return pe.PostForm(ctx, u, form)
}

// DownstreamChecks are the downstream profile's checks (an AS receiving
// other ASes' pushed requests), in run order.
func DownstreamChecks() []Check {
	par := []Need{needPAREndpoint, needPARClient}
	use := []Need{needPAREndpoint, needPARClient, needNative}
	return []Check{
		{ID: "downstream-par-client-auth", Title: "PAR without client authentication or with a wrong credential is invalid_client", Profile: ProfileDownstream, Spec: specRFC9126Auth, Needs: par, Run: checkPARClientAuth},
		{ID: "downstream-par-created", Title: "an authenticated PAR is 201 with request_uri and expires_in", Profile: ProfileDownstream, Spec: specRFC9126Created, Needs: par, Run: checkPARCreated},
		{ID: "downstream-request-uri-native", Title: "client_id + request_uri at the native endpoint starts a native flow", Profile: ProfileDownstream, Spec: specFedEndpoint, Needs: use, Run: checkRequestURINative},
		{ID: "downstream-request-uri-single-use", Title: "a request_uri works once at the native endpoint", Profile: ProfileDownstream, Spec: specRFC9126Use, Needs: use, Run: checkRequestURISingleUse},
		{ID: "downstream-request-uri-client-bound", Title: "a request_uri is refused with another client_id", Profile: ProfileDownstream, Spec: specRFC9126Use, Needs: use, Run: checkRequestURIClientBound},
		{ID: "downstream-request-uri-unknown", Title: "an unknown request_uri is invalid_request", Profile: ProfileDownstream, Spec: specRFC9126Use, Needs: use, Run: checkRequestURIUnknown},
		{ID: "downstream-request-uri-expired", Title: "a request_uri used after its expires_in is invalid_request", Profile: ProfileDownstream, Spec: specRFC9126Created, Needs: []Need{needPAREndpoint, needPARClient, needNative, needPARExpiry}, Run: checkRequestURIExpired},
	}
}

// needPARExpiry: the run may wait out a push's expires_in (--par-expiry).
func needPARExpiry(env *Env) string {
	if !env.PARExpiry {
		return "no --par-expiry given (the check waits for a push's expires_in to pass)"
	}
	return ""
}

// maxExpiryWait bounds the expiry check's wait.
const maxExpiryWait = 10 * time.Minute

// parEnv is env acting as the federating client (--par-client-id).
func parEnv(env *Env) *Env {
	pe := *env
	pe.ClientID, pe.Auth = env.PARClientID, env.PARAuth
	return &pe
}

// pushForm is an authorization request a federating AS pushes (RFC 9126
// §2.1): response_type, scope, state and an S256 challenge.
func pushForm(env *Env) url.Values {
	_, challenge := newPKCE()
	form := url.Values{
		"client_id":             {env.PARClientID},
		"response_type":         {"code"},
		"state":                 {randomToken(12)},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
	}
	if s := scope(env); s != "" {
		form.Set("scope", s)
	}
	if env.PARRedirectURI != "" {
		form.Set("redirect_uri", env.PARRedirectURI)
	}
	return form
}

// push pushes a request as the federating client; r is the result to
// return when the push did not answer a request_uri.
func push(ctx context.Context, env *Env) (requestURI string, resp *Response, ex Exchange, r *Result) {
	resp, ex = postPAR(ctx, env, pushForm(env), nil)
	switch {
	case resp == nil:
		res := fail([]Exchange{ex}, "no answer from the PAR endpoint: %s", ex.Error)
		return "", nil, ex, &res
	case resp.Status != http.StatusCreated || resp.Str("request_uri") == "":
		res := fail([]Exchange{ex}, "the authenticated push was answered %s, want 201 with request_uri (check --par-client-id, --par-auth and --par-redirect-uri)", answerOf(resp))
		return "", resp, ex, &res
	}
	return resp.Str("request_uri"), resp, ex, nil
}

// useRequestURI posts client_id + request_uri to the native endpoint as a
// device does with a federation_body (fed-draft-00 §4.3.1; response_type:
// docs/decisions.md Q4). No client authentication: the request_uri stands
// for it.
func useRequestURI(ctx context.Context, env *Env, clientID, requestURI string) (*Response, Exchange) {
	body := url.Values{"client_id": {clientID}, "request_uri": {requestURI}, "response_type": {"code"}}
	return env.postRaw(ctx, env.NativeEndpoint(), body.Encode())
}

func checkPARClientAuth(ctx context.Context, env *Env) Result {
	u := env.MetaString("pushed_authorization_request_endpoint")
	var exs []Exchange
	// No authentication at all: the client_id alone in the body.
	noAuth := *env
	noAuth.ClientID, noAuth.Auth = env.PARClientID, ClientAuth{Method: "none"}
	resp, ex := noAuth.PostForm(ctx, u, pushForm(env))
	exs = append(exs, ex)
	switch {
	case resp == nil:
		return fail(exs, "no answer: %s", ex.Error)
	case resp.Status == http.StatusCreated || resp.Str("request_uri") != "":
		return fail(exs, "a push without client authentication was accepted (HTTP %d)", resp.Status)
	case resp.Str("error") != "invalid_client" || (resp.Status != http.StatusUnauthorized && resp.Status != http.StatusBadRequest):
		return fail(exs, "a push without client authentication was answered %s, want 401 invalid_client (RFC 6749 §5.2)", answerOf(resp))
	}
	first := resp.Status
	// The right client with a wrong credential. A wrong secret in the
	// Authorization header must be 401 (RFC 6749 §5.2); an assertion
	// signed with another key under the registered kid, 400 or 401.
	what := "a wrong client secret"
	if env.PARAuth.Method == "private_key_jwt" {
		what = "a client assertion signed with another key"
		reg, _, err := ParsePARKey(env.PARKey)
		var k *jose.JSONWebKey
		if err == nil {
			k, err = otherKey(reg)
		}
		if err != nil {
			return fail(exs, "--par-key: %v", err)
		}
		resp, ex = postPAR(ctx, env, pushForm(env), k)
	} else {
		wrong := *env
		wrong.PARAuth = ClientAuth{Method: "client_secret_basic", Secret: "conformance-wrong-" + randomToken(8)}
		resp, ex = postPAR(ctx, &wrong, pushForm(env), nil)
	}
	exs = append(exs, ex)
	want401 := env.PARAuth.Method == "client_secret_basic"
	switch {
	case resp == nil:
		return fail(exs, "no answer: %s", ex.Error)
	case resp.Status == http.StatusCreated || resp.Str("request_uri") != "":
		return fail(exs, "a push with %s was accepted (HTTP %d)", what, resp.Status)
	case resp.Str("error") != "invalid_client" || (resp.Status != http.StatusUnauthorized && (want401 || resp.Status != http.StatusBadRequest)):
		return fail(exs, "a push with %s was answered HTTP %d %q, want 401 invalid_client (RFC 6749 §5.2)", what, resp.Status, resp.Str("error"))
	}
	if p := errorBodyProblems(resp); len(p) > 0 {
		return fail(exs, "%s", strings.Join(p, "; "))
	}
	return pass(fmt.Sprintf("no authentication: HTTP %d invalid_client; %s: HTTP %d invalid_client", first, what, resp.Status), exs...)
}

func checkPARCreated(ctx context.Context, env *Env) Result {
	ru, resp, ex, r := push(ctx, env)
	if r != nil {
		return *r
	}
	exs := []Exchange{ex}
	if u, err := url.Parse(ru); err != nil || !u.IsAbs() {
		return fail(exs, "request_uri %q is not an absolute URI", ru)
	}
	exp, ok := resp.JSON["expires_in"].(float64)
	if !ok || exp <= 0 || exp != float64(int64(exp)) {
		return fail(exs, "expires_in %v is not a positive integer (REQUIRED)", resp.JSON["expires_in"])
	}
	return pass(fmt.Sprintf("HTTP 201, request_uri, expires_in %d", int64(exp)), exs...)
}

func checkRequestURINative(ctx context.Context, env *Env) Result {
	ru, _, ex, r := push(ctx, env)
	if r != nil {
		return *r
	}
	resp, ex2 := useRequestURI(ctx, env, env.PARClientID, ru)
	exs := []Exchange{ex, ex2}
	switch {
	case resp == nil:
		return fail(exs, "no answer from the native endpoint: %s", ex2.Error)
	case !isNativeAnswer(resp):
		return fail(exs, "the native endpoint answered %s, want one of %s", answerOf(resp), strings.Join(nativeAnswers, ", "))
	case slices.Contains(sessionAnswers, resp.Str("error")) && resp.Str("auth_session") == "":
		return fail(exs, "%s without auth_session (FiPA-04 §5.2.2)", resp.Str("error"))
	}
	return pass(fmt.Sprintf("HTTP %d %s", resp.Status, resp.Str("error")), exs...)
}

// sessionAnswers are the native answers that continue with an
// auth_session (redirect_to_web carries a request_uri instead, and
// redirect_to_app a deep_link).
var sessionAnswers = []string{"insufficient_authorization", "insufficient_information", "federate"}

// refusedUse: resp refuses a request_uri (a 4xx error that starts nothing).
func refusedUse(resp *Response) bool {
	return refusedResult(resp) && !slices.Contains(nativeAnswers, resp.Str("error"))
}

func checkRequestURISingleUse(ctx context.Context, env *Env) Result {
	ru, _, ex, r := push(ctx, env)
	if r != nil {
		return *r
	}
	exs := []Exchange{ex}
	resp, ex := useRequestURI(ctx, env, env.PARClientID, ru)
	exs = append(exs, ex)
	if resp == nil || !isNativeAnswer(resp) {
		return na(exs, "the first use did not start a native flow (%s): see downstream-request-uri-native", statusOf(resp, ex))
	}
	resp, ex = useRequestURI(ctx, env, env.PARClientID, ru)
	exs = append(exs, ex)
	if !refusedUse(resp) {
		return fail(exs, "the second use of the request_uri was answered %s, want a 4xx error", statusOf(resp, ex))
	}
	return pass("the second use: "+statusOf(resp, ex), exs...)
}

func checkRequestURIClientBound(ctx context.Context, env *Env) Result {
	ru, _, ex, r := push(ctx, env)
	if r != nil {
		return *r
	}
	exs := []Exchange{ex}
	other := env.ClientID
	if other == "" || other == env.PARClientID {
		other = "conformance-other-" + randomToken(6)
	}
	resp, ex := useRequestURI(ctx, env, other, ru)
	exs = append(exs, ex)
	if !refusedUse(resp) {
		return fail(exs, "the request_uri with client_id %q (not the pushing client) was answered %s, want a 4xx error", other, statusOf(resp, ex))
	}
	refused := statusOf(resp, ex)
	// Whether the refusal burned the request is the server's choice
	// (fedas keeps it: docs/decisions.md Q3); it is reported, not judged.
	resp, ex = useRequestURI(ctx, env, env.PARClientID, ru)
	exs = append(exs, ex)
	after := "the pushing client could not use it afterwards"
	if resp != nil && isNativeAnswer(resp) {
		after = "the pushing client still could"
	}
	return pass(fmt.Sprintf("another client_id: %s; %s", refused, after), exs...)
}

func checkRequestURIUnknown(ctx context.Context, env *Env) Result {
	ru := "urn:ietf:params:oauth:request_uri:conformance-" + randomToken(16)
	resp, ex := useRequestURI(ctx, env, env.PARClientID, ru)
	exs := []Exchange{ex}
	switch {
	case resp == nil:
		return fail(exs, "no answer: %s", ex.Error)
	case !refusedUse(resp):
		return fail(exs, "an unknown request_uri was answered %s, want a 4xx error", statusOf(resp, ex))
	case resp.Str("error") != "invalid_request" && resp.Str("error") != "invalid_request_uri":
		// A federating AS pushes again on invalid_request (an expired
		// request_uri, docs/decisions.md Q9); RFC 9101 §7 names
		// invalid_request_uri.
		return fail(exs, "an unknown request_uri was answered %s, want invalid_request (or invalid_request_uri)", statusOf(resp, ex))
	}
	if p := errorBodyProblems(resp); len(p) > 0 {
		return fail(exs, "%s", strings.Join(p, "; "))
	}
	return pass(statusOf(resp, ex), exs...)
}

func checkRequestURIExpired(ctx context.Context, env *Env) Result {
	ru, resp, ex, r := push(ctx, env)
	if r != nil {
		return *r
	}
	exs := []Exchange{ex}
	exp, _ := resp.JSON["expires_in"].(float64)
	d := time.Duration(exp)*time.Second + time.Second
	switch {
	case exp <= 0:
		return fail(exs, "expires_in %v is not a positive number", resp.JSON["expires_in"])
	case d > maxExpiryWait:
		return na(exs, "expires_in %v: longer than the %v the check waits", resp.JSON["expires_in"], maxExpiryWait)
	}
	if err := env.sleep(ctx, d); err != nil {
		return fail(exs, "waiting %v for the request_uri to expire: %v", d, err)
	}
	resp, ex = useRequestURI(ctx, env, env.PARClientID, ru)
	exs = append(exs, ex)
	switch {
	case !refusedUse(resp):
		return fail(exs, "the request_uri %v after its expires_in was answered %s, want a 4xx error", d, statusOf(resp, ex))
	case resp.Str("error") != "invalid_request" && resp.Str("error") != "invalid_request_uri":
		// invalid_request is what makes a federating AS push again
		// (docs/decisions.md Q9).
		return fail(exs, "an expired request_uri was answered %s, want invalid_request (or invalid_request_uri)", statusOf(resp, ex))
	}
	return pass(fmt.Sprintf("%v after the push: %s", d, statusOf(resp, ex)), exs...)
}
