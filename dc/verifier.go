package dc

import (
	"context"
	"errors"
	"time"

	"github.com/fedas/fedas/dc/dcql"
)

// ErrPending: the transaction has no response yet (the wallet has not
// posted to the response_uri); poll again (Verifier.Result).
var ErrPending = errors.New("dc: transaction pending")

// Transaction errors of a Verifier (docs/protocol.md "Digital credentials"). Compare with errors.Is.
var (
	// ErrResponseCode: the response_code is wrong, unknown, from another
	// transaction or already used (OpenID4VP 1.0 §13.3, §14.2); the flow
	// answers invalid_session.
	ErrResponseCode = errors.New("dc: invalid response_code")
	// ErrWrongFlow is the session-fixation guard (docs/decisions.md Q30–Q35): Result
	// with a code on cross device, without one on same device, or Submit on
	// a transaction that is neither DC API nor interactive.
	ErrWrongFlow = errors.New("dc: not allowed on this transaction's flow")
	// ErrExpired: the transaction is unknown, ended or past its TTL; the
	// flow restarts with a new one.
	ErrExpired = errors.New("dc: transaction expired")
	// ErrUnavailable: the verifier or one of its dependencies (storage, an
	// external verifier) failed; the flow answers 503
	// temporarily_unavailable. The cause is wrapped.
	ErrUnavailable = errors.New("dc: verifier unavailable")
)

// Verifier runs OpenID4VP 1.0 transactions for one auth_session step,
// internal (dc/verifier) or external (dc/external): docs/architecture.md "Local steps".
type Verifier interface {
	// Begin starts a transaction: flow, DCQL, nonce, transaction data,
	// redirect template, origins, TTL.
	Begin(ctx context.Context, r BeginRequest) (Transaction, error)
	// Submit verifies a DC API response (path A; OpenID4VP App. A).
	Submit(ctx context.Context, txID string, dcAPI DCAPIResponse) (Result, error)
	// Result returns the outcome: path B (same device) needs the
	// response_code (§8.2), path C (cross device) an empty one. ErrPending
	// while no response has arrived.
	Result(ctx context.Context, txID, responseCode string) (Result, error)
	// Cancel ends the transaction; a later response is refused.
	Cancel(ctx context.Context, txID string) error
}

// Flow is how the wallet is reached.
type Flow string

// Flows (docs/protocol.md "Digital credentials").
const (
	FlowDCAPI       Flow = "dc_api"
	FlowSameDevice  Flow = "same_device"
	FlowCrossDevice Flow = "cross_device"
	// FlowInteractive is OpenID4VCI 1.1 Interactive Authorization: the
	// wallet is the client and posts openid4vp_response (the OpenID4VP
	// response parameters as JSON) to the native endpoint; it completes
	// through Submit with Origin "" (KB-JWT aud = the full client_id).
	FlowInteractive Flow = "interactive"
)

// BeginRequest is the input of Verifier.Begin.
type BeginRequest struct {
	Flow  Flow
	Query *dcql.Query
	// Nonce is fresh per request, URL-safe (OpenID4VP §5.2).
	Nonce string
	// TransactionData are the base64url transaction_data objects (§5.1, §8.4).
	TransactionData []string
	// RedirectURITemplate is where the wallet returns for same device (§8.2).
	RedirectURITemplate string
	// Origins are the expected DC API origins (App. A.2).
	Origins []string
	TTL     time.Duration
	// Binding is an opaque digest of the auth_session family; the verifier
	// stores it with the transaction and never returns it (docs/security.md "Digital credentials"
	// "DPoP and auth_session").
	Binding string
	// Issuance marks presentation during issuance: the response_uri
	// answers the wallet {"presentation_during_issuance_session": code}
	// instead of a redirect_uri.
	Issuance bool
}

// Transaction is what Begin hands back to the flow.
type Transaction struct {
	ID string
	// RequestURI (paths B, C) is the wallet URL
	// openid4vp://?client_id=…&request_uri=…&request_uri_method=post.
	RequestURI string
	// Request is, for FlowDCAPI, the JSON text the platform DC API takes
	// ({"requests":[{"protocol":"openid4vp-v1-signed","data":{"request":
	// "<JAR>"}}]}, docs/protocol.md "Digital credentials") and, for FlowInteractive, the JSON text of
	// the openid4vp_request object {"request":"<JAR>"}.
	Request   string
	ExpiresAt time.Time
	// ClientID is the verifier's client_id with its prefix (OpenID4VP 1.0
	// §5.9.3), e.g. "x509_hash:…".
	ClientID string
}

// DCAPIResponse is the data returned by navigator.credentials.get (App. A.3):
// the response object (possibly a JWE "response") and the caller's origin.
type DCAPIResponse struct {
	Origin string
	Data   []byte
}

// Status is a transaction outcome.
type Status string

// Statuses.
const (
	StatusPending  Status = "pending"
	StatusVerified Status = "verified"
	StatusError    Status = "error"
)

// Result is a transaction outcome; WalletError is the wallet's error code
// (§8.5) when Status is StatusError.
type Result struct {
	Status      Status
	Credentials []VerifiedCredential
	WalletError string
}
