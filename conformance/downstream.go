package conformance

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
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
		return "no authorization server metadata: " + env.MetadataError
	}
	if env.MetaString("pushed_authorization_request_endpoint") == "" {
		return "the metadata advertises no pushed_authorization_request_endpoint"
	}
	return ""
}

// needPARClient: a client registered as a federating AS, with a secret.
func needPARClient(env *Env) string {
	if env.PARClientID == "" {
		return "no --par-client-id given (a client registered there as a federating AS)"
	}
	if env.PARAuth.Method != "client_secret_basic" {
		return "no --par-auth client_secret_basic:SECRET given"
	}
	return ""
}

// DownstreamChecks are the downstream profile's checks (an AS receiving
// other ASes' pushed requests), in run order.
func DownstreamChecks() []Check {
	par := []Need{needPAREndpoint, needPARClient}
	use := []Need{needPAREndpoint, needPARClient, needNative}
	return []Check{
		{ID: "downstream-par-client-auth", Title: "PAR without client authentication or with a wrong secret is invalid_client", Profile: ProfileDownstream, Spec: specRFC9126Auth, Needs: par, Run: checkPARClientAuth},
		{ID: "downstream-par-created", Title: "an authenticated PAR is 201 with request_uri and expires_in", Profile: ProfileDownstream, Spec: specRFC9126Created, Needs: par, Run: checkPARCreated},
		{ID: "downstream-request-uri-native", Title: "client_id + request_uri at the native endpoint starts a native flow", Profile: ProfileDownstream, Spec: specFedEndpoint, Needs: use, Run: checkRequestURINative},
		{ID: "downstream-request-uri-single-use", Title: "a request_uri works once at the native endpoint", Profile: ProfileDownstream, Spec: specRFC9126Use, Needs: use, Run: checkRequestURISingleUse},
		{ID: "downstream-request-uri-client-bound", Title: "a request_uri is refused with another client_id", Profile: ProfileDownstream, Spec: specRFC9126Use, Needs: use, Run: checkRequestURIClientBound},
		{ID: "downstream-request-uri-unknown", Title: "an unknown request_uri is invalid_request", Profile: ProfileDownstream, Spec: specRFC9126Use, Needs: use, Run: checkRequestURIUnknown},
	}
}

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
	resp, ex = parEnv(env).PostForm(ctx, env.MetaString("pushed_authorization_request_endpoint"), pushForm(env))
	switch {
	case resp == nil:
		res := fail([]Exchange{ex}, "no answer from the PAR endpoint: %s", ex.Error)
		return "", nil, ex, &res
	case resp.Status != http.StatusCreated || resp.Str("request_uri") == "":
		res := fail([]Exchange{ex}, "the authenticated push was answered HTTP %d %q, want 201 with request_uri (check --par-client-id, --par-auth and --par-redirect-uri)", resp.Status, resp.Str("error"))
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
		return fail(exs, "a push without client authentication was answered HTTP %d %q, want 401 invalid_client (RFC 6749 §5.2)", resp.Status, resp.Str("error"))
	}
	first := resp.Status
	// The right client, a wrong secret, in the Authorization header:
	// RFC 6749 §5.2 wants 401.
	wrong := parEnv(env)
	wrong.Auth = ClientAuth{Method: "client_secret_basic", Secret: "conformance-wrong-" + randomToken(8)}
	resp, ex = wrong.PostForm(ctx, u, pushForm(env))
	exs = append(exs, ex)
	switch {
	case resp == nil:
		return fail(exs, "no answer: %s", ex.Error)
	case resp.Status == http.StatusCreated || resp.Str("request_uri") != "":
		return fail(exs, "a push with a wrong client secret was accepted (HTTP %d)", resp.Status)
	case resp.Status != http.StatusUnauthorized || resp.Str("error") != "invalid_client":
		return fail(exs, "a push with a wrong client secret was answered HTTP %d %q, want 401 invalid_client (RFC 6749 §5.2)", resp.Status, resp.Str("error"))
	}
	if p := errorBodyProblems(resp); len(p) > 0 {
		return fail(exs, "%s", strings.Join(p, "; "))
	}
	return pass(fmt.Sprintf("no authentication: HTTP %d invalid_client; a wrong secret: HTTP 401 invalid_client", first), exs...)
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
		return fail(exs, "the native endpoint answered HTTP %d %q, want one of %s", resp.Status, resp.Str("error"), strings.Join(nativeAnswers, ", "))
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
