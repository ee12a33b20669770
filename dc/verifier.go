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

// Verifier runs OpenID4VP 1.0 transactions for one auth_session step,
// internal (dc/oid4vp) or external (dc/external). See the design, §5.
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

// Flows (design §3.3–§3.5).
const (
	FlowDCAPI       Flow = "dc_api"
	FlowSameDevice  Flow = "same_device"
	FlowCrossDevice Flow = "cross_device"
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
}

// Transaction is what Begin hands back to the flow.
type Transaction struct {
	ID string
	// RequestURI (paths B, C) or Request (path A, the DC API request
	// object) for the wallet.
	RequestURI string
	Request    string
	ExpiresAt  time.Time
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
