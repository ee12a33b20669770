package flow

import (
	"errors"
	"time"
)

// Outcome is the engine's answer to one Request: exactly one of the types
// below. The set is closed (the unexported method); server renders each
// one to JSON or HTML and nothing else decides what the client sees.
type Outcome interface{ outcome() }

// Challenge is insufficient_authorization (FiPA-04 §5.2.2.1, HTTP 403): a
// local step asks for more. Spec is the self-describing challenge member.
type Challenge struct {
	AuthSession string
	Description string
	Spec        ChallengeSpec
}

// Prompt is insufficient_information (federation draft §4.3.3, 400): the
// user must say where they sign in. Invalid marks a re-prompt after an
// invalid answer, sent as invalid_request with the prompt again.
type Prompt struct {
	AuthSession string
	Description string
	UserPrompt  map[string]any
	Logo        string
	Invalid     bool
}

// Federate is the federate instruction (federation draft §4.3.1, 400).
type Federate struct {
	AuthSession    string
	FederationURI  string
	FederationBody string
	ResponseURI    string
}

// RedirectToApp is redirect_to_app (federation draft §4.3.2, 400).
// AuthSession is empty in the downstream role: the app's result goes to
// the upstream's response_uri.
type RedirectToApp struct {
	AuthSession string
	DeepLink    string
	// ReachURI, when set, is where the client may ask us to reach the
	// user on another device (flow/reach.go; an ignorable member).
	ReachURI string
}

// RedirectToWeb is redirect_to_web (FiPA-04 §5.2.2.1.1, 403), with a
// request_uri for our browser endpoint when one can be made
// (docs/decisions.md Q17, Q19). AuthSession is set when the device must post
// it after the browser returns to its native_callback_uri.
type RedirectToWeb struct {
	AuthSession string
	RequestURI  string
	ExpiresIn   int
}

// Code is our authorization code (FiPA-04 §5.2.1). For codes delivered
// through a browser, RedirectURI and State say where (RFC 6749 §4.1.2).
type Code struct {
	Code        string
	RedirectURI string
	State       string
}

// Return sends the result of an out-of-band leg (app completion, a
// browser that finished at our web callback) back to the app on its
// registered native_callback_uri, with Params in the query.
type Return struct {
	URI    string
	Params map[string]string
}

// Pending tells the client to poll with its auth_session (a step that
// waits for something outside this request; 403 with status=pending).
type Pending struct {
	AuthSession string
	Description string
	Interval    int
	// Status is "pending" (the default) or "slow_down".
	Status string
	// Members are extra top-level members (StepResult.Members).
	Members map[string]any
}

// Refusal is an RFC 6749 §5.2 error the client caused or must handle:
// Status is the HTTP status, Code the error code.
type Refusal struct {
	Status      int
	Code        string
	Description string
	// AuthSession is set when the session survives for a retry.
	AuthSession string
	// RetryAfter is how long to wait before retrying (429 slow_down,
	// docs/decisions.md Q28); zero otherwise.
	RetryAfter time.Duration
}

func (Challenge) outcome()     {}
func (Prompt) outcome()        {}
func (Federate) outcome()      {}
func (RedirectToApp) outcome() {}
func (RedirectToWeb) outcome() {}
func (Code) outcome()          {}
func (Return) outcome()        {}
func (Pending) outcome()       {}
func (Refusal) outcome()       {}

// HTTP statuses the engine uses (flow imports no net/http).
const (
	statusBadRequest   = 400
	statusUnauthorized = 401
	statusForbidden    = 403
	statusTooMany      = 429
	statusServerError  = 500
	statusUnavailable  = 503
)

func refuse(status int, code, desc string) Refusal {
	return Refusal{Status: status, Code: code, Description: desc}
}

// SlowDown is the engine's answer over a limit (a lockout delay, a
// live-session cap: docs/decisions.md Q28): 429 slow_down with
// Retry-After. The request changed nothing: an auth_session it carried
// works again after the wait.
func SlowDown(retry time.Duration, desc string) Refusal {
	if retry < time.Second {
		retry = time.Second
	}
	return Refusal{Status: statusTooMany, Code: "slow_down", Description: desc, RetryAfter: retry}
}

func invalidRequest(desc string) Refusal { return refuse(statusBadRequest, "invalid_request", desc) }

func invalidSession() Refusal {
	return refuse(statusBadRequest, "invalid_session", "The auth_session is invalid, expired or already used.")
}

func accessDenied(desc string) Refusal { return refuse(statusBadRequest, "access_denied", desc) }

func invalidClient(desc string) Refusal { return refuse(statusUnauthorized, "invalid_client", desc) }

func unavailable() Refusal {
	return refuse(statusUnavailable, "temporarily_unavailable", "The authorization server we federate to is not reachable; retry shortly.")
}

func invalidDPoP() Refusal {
	return refuse(statusBadRequest, "invalid_dpop_proof", "This auth_session is bound to a DPoP key: send a proof for that key.")
}

func unauthorizedClient() Refusal {
	return refuse(statusBadRequest, "unauthorized_client", "This client may not use the native authorization endpoint.")
}

// Refuse is the error a step's Challenge returns to refuse the request
// that would begin it (presentation parameters that do not fit the
// client): the engine answers the RFC 6749 §5.2 error status/code/desc
// and stores nothing.
func Refuse(status int, code, desc string) error { return refused(refuse(status, code, desc)) }

// IsRefusal reports whether err is a Refuse error.
func IsRefusal(err error) bool {
	var rf *errRefused
	return errors.As(err, &rf)
}
