package flow

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"time"

	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/storage"
)

// Step is one local authentication method in a chain (password, TOTP;
// later passkeys, a credential presentation, a push to the user's other
// device). A new method is a new package implementing Step: the engine
// has no case for any of them. The engine owns the session, its
// single-use step values, failure counting and the code; a Step only
// asks and checks.
type Step interface {
	// Name is the step's stage name, stored in the session.
	Name() string
	// Applies reports whether the step applies to the user; u is nil while
	// no step has identified the user yet.
	Applies(u *policy.User) bool
	// Challenge describes what the client must collect, when the step
	// becomes current or asks again. data is the step's new own state.
	Challenge(ctx context.Context, sc StepContext) (spec ChallengeSpec, data json.RawMessage, err error)
	// Verify checks a follow-up's answers. A Go error is a failure of a
	// dependency only; a wrong answer is Result Failed.
	Verify(ctx context.Context, sc StepContext, answers url.Values) (StepResult, error)
}

// StepContext is what a step may know of the session.
type StepContext struct {
	Users  policy.UserStore
	Replay storage.ReplayStore
	Now    time.Time
	// Username names the user when a hint or an earlier step did.
	Username string
	// Data is the step's own state from its last Challenge or Verify.
	Data json.RawMessage
	// DPoPJKT is the key the session is bound to ("" when none).
	DPoPJKT string
	// ClientIP is the caller's address (Request.ClientIP), set for
	// Verify: the lockout keys on it (docs/security.md "Account lockout").
	ClientIP string
	// ClientID is the session's client, Client its registration in the
	// request's policy snapshot.
	ClientID string
	Client   *policy.Client
	// Request holds the session's validated initial request parameters
	// (login_hint, acr_values, authorization_details, the presentation
	// parameters of docs/protocol.md "Digital credentials").
	Request map[string]string
	// Binding is an opaque digest naming the session (its ID, never its
	// step value): a step that starts something outside the session (a
	// verifier transaction) stores it there so that the two stay bound.
	Binding string
}

// CredentialFree is implemented by steps that collect no secret of ours
// (a credential presentation, a push to our app): they may be served to
// federating clients, which never get password or one-time-code
// challenges (docs/decisions.md Q10).
type CredentialFree interface {
	CredentialFree() bool
}

// Ender is implemented by steps that hold something outside the session
// (a verifier transaction): Ended is called, with the step's state, once
// the session's code was minted, to release it early instead of at its
// expiry. Its failure changes nothing the client sees.
type Ender interface {
	Ended(ctx context.Context, sc StepContext)
}

// HintTaker is implemented by steps whose selection reads login_hint
// (login_hint=wallet asks for a presentation): such a hint names a method,
// not a user, and the engine does not fix the session's user by it.
type HintTaker interface {
	TakesHint(c *policy.Client, hint string) bool
}

// Result of a step's Verify.
type Result int

// Results.
const (
	// Passed: the step authenticated the user.
	Passed Result = iota + 1
	// Failed: a wrong answer; counts towards the session's failure cap.
	Failed
	// Waiting: nothing to decide yet (the client polls: Pending).
	Waiting
	// Malformed: the answer is missing or malformed (invalid_request; the
	// session is unchanged).
	Malformed
	// Renewed: the step replaced its state (a verifier transaction
	// expired and a new one began): the session rotates and the client
	// gets the step's challenge again; no failure is counted.
	Renewed
	// Denied: the step ends the session (the wallet refused, the
	// presentation failed verification, too many restarts): 400
	// access_denied with Description.
	Denied
	// Throttled: a delay is in force (a lockout: docs/security.md
	// "Account lockout") and the answer was not checked: 429 slow_down
	// with RetryAfter (docs/decisions.md Q28); the session is unchanged,
	// no failure is counted on it, and its auth_session works again
	// after the wait.
	Throttled
)

// ErrOverloaded is the error a step returns when a bounded resource it
// needs (the CPU of password checks: authn/password) stayed saturated
// for as long as a request may wait: 503 temporarily_unavailable with
// Retry-After. Nothing was checked; the session is unchanged.
var ErrOverloaded = errors.New("flow: overloaded; retry shortly")

// StepResult is a step's verdict.
type StepResult struct {
	Result Result
	// User is the user the step authenticated (first factor).
	User *policy.User
	// AMR is the method reference to record (RFC 8176 §2).
	AMR string
	// Description explains Failed or Malformed to the user.
	Description string
	// Data replaces the step's own state.
	Data json.RawMessage
	// Interval is the polling interval in seconds for Waiting.
	Interval int
	// Status is the status member of a Waiting answer: "pending", or
	// "slow_down" when the client polled faster than Interval (RFC 8628
	// §3.5 semantics); empty means pending.
	Status string
	// Members are extra top-level members of a Waiting answer (the
	// presentation dialect's type member: docs/protocol.md "Digital
	// credentials").
	Members map[string]any
	// Claims are identity claims the step established (a verified
	// credential's mapped claims), added to the ID token.
	Claims map[string]any
	// ACR is the authentication context the step established, if any.
	ACR string
	// Spec is the challenge of a Renewed result, answered as is (the
	// step's new state need not hold all it shows); nil: the engine asks
	// Challenge with Data.
	Spec *ChallengeSpec
	// RetryAfter is how long to wait for Throttled; Scope names what was
	// limited, a fixed word for the sign_in.throttled event and
	// fedas_rate_limited_total (docs/operations.md).
	RetryAfter time.Duration
	Scope      string
	// Satisfied lists later steps of the chain the answer passed as well
	// (a one-time code sent with the password: docs/security.md "Account
	// lockout"): the engine records their AMR and does not ask them.
	Satisfied []Satisfied
}

// Satisfied is a later step an answer passed too, with its method
// reference (RFC 8176 §2).
type Satisfied struct {
	Step string
	AMR  string
}

// ChallengeSpec is the self-describing member fedas adds to
// insufficient_authorization (docs/protocol.md "Challenges"): a generic
// client renders Inputs without knowing the method; Data carries what a
// method needs beyond text inputs (a presentation request, a number to
// match, a QR payload).
type ChallengeSpec struct {
	Type        string           `json:"type"`
	Inputs      map[string]Input `json:"inputs"`
	Data        map[string]any   `json:"data,omitempty"`
	Description string           `json:"-"`
	// Members are top-level members of the insufficient_authorization
	// body beside challenge (a presentation's type, credentials_request
	// and expires_in, named per the client's dialect).
	Members map[string]any `json:"-"`
	// Flow, when set, replaces the challenge member's type-specific
	// "flow" (the presentation path: docs/protocol.md).
	Flow string `json:"flow,omitempty"`
}

// Input describes one field the client collects.
type Input struct {
	Title       string `json:"title,omitempty"`
	Hint        string `json:"hint,omitempty"`
	Description string `json:"description,omitempty"`
	Secret      bool   `json:"secret"`
}
