package storage

import (
	"context"
	"time"
)

// DCRecord is one digital-credential (OpenID4VP) transaction as stored:
// the verifier's opaque transaction state and, once the wallet has
// answered, its opaque result (nil while pending). Both are read in one
// step, so that a poll costs one read (docs/architecture.md "Local steps").
type DCRecord struct {
	Tx     []byte
	Result []byte
}

// DCStore persists the internal OpenID4VP verifier's transactions
// (dc/verifier; docs/redis.md "Keys"). A transaction lives under its
// transaction id (never shown to a wallet or client) and, when it has a
// request_uri, is found from its request id (the wallet-facing state) by
// a separate pointer: two secrets for the internal lookup (OpenID4VP 1.0
// §14.3). Values are opaque bytes; ids are random values the verifier made.
type DCStore interface {
	// CreateDC stores tx under txID and, when requestID is not empty, a
	// pointer from requestID to txID, both expiring after ttl. An id
	// already in use gives ErrConflict (a retried call that applied is not
	// a conflict).
	CreateDC(ctx context.Context, txID, requestID string, tx []byte, ttl time.Duration) error
	// DC returns the transaction and its result (one read). ErrNotFound
	// when it is unknown, deleted or expired.
	DC(ctx context.Context, txID string) (DCRecord, error)
	// TakeDCRequest returns the transaction id for requestID the first
	// time only (a request_uri is fetched once, docs/security.md "Digital credentials"): later calls get
	// ErrConflict, an unknown or expired id ErrNotFound. Of concurrent
	// callers exactly one succeeds.
	TakeDCRequest(ctx context.Context, requestID string) (txID string, err error)
	// DCRequest returns the transaction id for requestID and whether the
	// request was taken, without changing anything (the response_uri's
	// lookup by state).
	DCRequest(ctx context.Context, requestID string) (txID string, taken bool, err error)
	// SetDCResult records the transaction's result, first wins: a result
	// already there gives ErrConflict, a transaction gone ErrNotFound. The
	// result expires with the transaction.
	SetDCResult(ctx context.Context, txID string, result []byte) error
	// DeleteDC removes the transaction and its request pointer (requestID
	// may be empty); deleting what is gone is not an error.
	DeleteDC(ctx context.Context, txID, requestID string) error
}
