package flow

import (
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/fedas/fedas/policy"
)

// Channel is where a request arrived. A session started on one channel
// continues only on its own: a browser session's value posted to the
// native endpoint, or a native one to our pages, is invalid_session.
type Channel int

// Channels.
const (
	// ChannelNative is the native authorization endpoint (FiPA-04 §5):
	// initial requests, follow-ups, and client_id + request_uri in the
	// downstream role (docs/decisions.md Q3).
	ChannelNative Channel = iota + 1
	// ChannelResponse is a hop's response_uri (federation draft §4.3.1).
	ChannelResponse
	// ChannelBrowser is our browser authorization endpoint (the target of
	// redirect_to_web, FiPA-04 §5.2.2.1.1).
	ChannelBrowser
	// ChannelAppComplete is the app completion API: our app completes a
	// redirect_to_app deep link for its signed-in user.
	ChannelAppComplete
	// ChannelWebCallback is where a downstream's browser flow ends
	// (docs/decisions.md Q7, Q19).
	ChannelWebCallback
)

// Request is one parsed request to the engine. The server fills it from
// HTTP and never decides anything the engine decides.
type Request struct {
	Channel Channel
	// Policy is the snapshot current when the request started.
	Policy *policy.Snapshot
	// Client is the client the request authenticated as (Authenticated),
	// or the public client its client_id names; nil when it named none.
	Client        *policy.Client
	Authenticated bool
	// DPoPJKT is the thumbprint of a valid DPoP proof's key ("" without).
	DPoPJKT string
	// Form holds the parameters: an initial request's, a follow-up's
	// answers, a response_uri post, or a web callback's query.
	Form url.Values
	// HopID is the response_uri's path element (ChannelResponse).
	HopID string
	// AppUser is the user of the app's access token, already validated as
	// a resource server would (ChannelAppComplete).
	AppUser *AppUser
	// ClientIP is the caller's address as the server decided it (the peer,
	// or the address a trusted proxy reported: docs/security.md "Client
	// addresses"); lockout and caps key on it.
	ClientIP string
	// UserAgent is the caller's User-Agent, shown to the user as a risk
	// signal of a cross-device sign-in (flow/reach.go).
	UserAgent string
}

// AppUser is who our app is signed in as (app completion).
type AppUser struct {
	// ClientID is the app's own client.
	ClientID string
	Subject  string
	Username string
	AMR      []string
	// AuthTime is when the app's user last authenticated (the token's
	// auth_time): the completed sign-in is no fresher than that.
	AuthTime time.Time
	// ACR of that authentication, if any.
	ACR string
}

// Params are the initial-request parameters a session carries and binds
// to its code (FiPA-04 §5.1; RFC 7636 §4.3), stored in the session under
// these names.
var carried = []string{"scope", "code_challenge", "code_challenge_method", "state", "nonce", "acr_values", "login_hint", "max_age", "native_callback_uri", "redirect_uri", "dpop_jkt",
	// The presentation parameters (docs/protocol.md "Digital credentials"),
	// validated by the presentation step when it begins.
	"dc_api", "openid4vp_flow_type", "openid4vp_redirect_uri", "interaction_types_supported"}

// paramLimits bound the carried parameters (an auth_session stays small).
var paramLimits = map[string]int{
	"scope": 1024, "state": 512, "nonce": 512, "login_hint": 256, "acr_values": 256,
	"max_age": 10, "native_callback_uri": 2048, "code_challenge": 43, "code_challenge_method": 5,
	"redirect_uri": 2048, "dpop_jkt": 43,
	"dc_api": 5, "openid4vp_flow_type": 12, "openid4vp_redirect_uri": 2048, "interaction_types_supported": 512,
}

// pkceByDPoP marks (in the parsed request only, never stored) a request
// of a presentation-during-issuance client that sent no PKCE: its code
// must then be bound to a DPoP key instead (docs/protocol.md "Presentation
// during issuance").
const pkceByDPoP = "\x00pkce-by-dpop"

// issuanceDialect reports whether c speaks presentation during issuance,
// whose requests carry no response_type or PKCE.
func issuanceDialect(c *policy.Client) bool {
	return c != nil && c.DC != nil && c.DC.Dialect == "pdi"
}

// pkceChallenge is the shape of an S256 code_challenge (RFC 7636 §4.2) and
// of a JWK SHA-256 thumbprint (RFC 7638).
var pkceChallenge = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// IsSHA256Value reports whether v has the shape of a base64url SHA-256
// value: an S256 code_challenge (RFC 7636 §4.2) or a JWK thumbprint used as
// dpop_jkt (RFC 7638; RFC 9449 §10). The PAR endpoint and the engine use
// this one rule.
func IsSHA256Value(v string) bool { return pkceChallenge.MatchString(v) }

var maxAgeShape = regexp.MustCompile(`^[0-9]{1,9}$`)

// parseInitial validates an initial request for client and returns the
// parameters the session carries (FiPA-04 §5.1). It is the one place that
// applies the PKCE policy, scopes, redirect_uri and native_callback_uri
// rules, for every channel that starts a session.
func parseInitial(c *policy.Client, form url.Values) (map[string]string, *Refusal) {
	switch rt := form.Get("response_type"); {
	case rt == "" && issuanceDialect(c):
		// The presentation-during-issuance texts send no response_type; the
		// code flow is the only one (FiPA-04 §5.1 requires it of others).
	case rt == "":
		r := invalidRequest("The response_type parameter is required.")
		return nil, &r
	case rt != "code":
		r := refuse(statusBadRequest, "unsupported_response_type", "Only response_type=code is supported.")
		return nil, &r
	}
	req := map[string]string{}
	for _, k := range carried {
		v := form.Get(k)
		if len(v) > paramLimits[k] {
			r := invalidRequest("The " + k + " parameter is too long.")
			return nil, &r
		}
		if v != "" {
			req[k] = v
		}
	}
	bad := func(desc string) (map[string]string, *Refusal) {
		r := invalidRequest(desc)
		return nil, &r
	}
	cc, method := req["code_challenge"], req["code_challenge_method"]
	switch {
	case cc == "" && method != "":
		return bad("code_challenge_method without code_challenge.")
	case cc == "" && c.IsPublic() && issuanceDialect(c):
		// Its texts forbid PKCE; a DPoP-bound code is as safe from
		// interception (RFC 9449 §10), so DPoP is required instead.
		req[pkceByDPoP] = "1"
	case cc == "" && c.IsPublic():
		// RFC 9700 §2.1.1: PKCE is required for public clients.
		return bad("PKCE is required: send code_challenge and code_challenge_method=S256.")
	case cc != "" && method != "S256":
		return bad("Only code_challenge_method=S256 is supported.")
	case cc != "" && !pkceChallenge.MatchString(cc):
		return bad("The code_challenge is not a valid S256 challenge.")
	}
	if v := req["max_age"]; v != "" && !maxAgeShape.MatchString(v) {
		return bad("max_age must be a non-negative integer.")
	}
	if k := req["dpop_jkt"]; k != "" && !pkceChallenge.MatchString(k) {
		return bad("dpop_jkt is not a SHA-256 JWK thumbprint.")
	}
	for _, sc := range strings.Fields(req["scope"]) {
		if !contains(c.GetScopes(), sc) { // exact match, as fosite's ExactScopeStrategy
			r := refuse(statusBadRequest, "invalid_scope", "A requested scope is not allowed for this client.")
			return nil, &r
		}
	}
	if ru := req["redirect_uri"]; ru != "" && !contains(c.GetRedirectURIs(), ru) {
		return bad("The redirect_uri is not registered for this client.")
	}
	if cb := req["native_callback_uri"]; cb != "" && !contains(c.NativeCallbackURIs, cb) {
		// Exact string comparison only (RFC 9700 §2.1; docs/decisions.md Q15).
		return bad("The native_callback_uri is not registered for this client.")
	}
	if rf := parseAuthorizationDetails(c, form, req); rf != nil {
		return nil, rf
	}
	return req, nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
