// Package storage defines the contracts every fedas storage backend
// fulfils and the domain types they store.
//
// Backends (storage/memory, storage/redisstore) store opaque, already
// serialised records; the translation to and from fosite requesters lives in
// one adapter in the server package, so that a backend never has to know
// fosite's types. Every backend runs the same conformance suite
// (storage/storagetest).
//
// Contract rules, binding for every backend:
//   - Every artefact has a lifetime; a backend MUST NOT return an artefact
//     after its TTL has passed, and MUST NOT keep it forever.
//   - Every single-use transition (InvalidateCode, InvalidateRefresh,
//     ConsumeToken, UpdateAuthSession, DeleteAuthSession, MarkUsed) MUST be
//     one atomic step: of N concurrent callers exactly one succeeds.
//   - A backend MUST return ErrNotFound (wrapped or not) for unknown or
//     expired keys and ErrUnavailable (wrapped) when the backing service
//     fails, never a driver-specific sentinel such as redis.Nil.
package storage

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Errors every backend maps its own failures to. Compare with errors.Is.
var (
	// ErrNotFound means the artefact does not exist or has expired.
	ErrNotFound = errors.New("storage: not found")
	// ErrConflict means a single-use artefact was already used, or a
	// compare-and-swap lost its race.
	ErrConflict = errors.New("storage: conflict")
	// ErrInvalidated is returned by Token for an authorization code that
	// has been redeemed already, or a refresh token that has been rotated;
	// the record is returned with it so the caller can revoke what the
	// first use issued (RFC 6749 §4.1.2; RFC 9700 §4.14.2).
	ErrInvalidated = errors.New("storage: single-use token already used")
	// ErrUnavailable means the backing service failed; the server answers
	// 503 temporarily_unavailable and issues nothing.
	ErrUnavailable = errors.New("storage: backend unavailable")
)

// Kind names a class of token-like artefact keyed by its signature.
type Kind string

// The artefact kinds fosite persists.
const (
	KindCode    Kind = "code"    // authorization codes (RFC 6749 §4.1.2)
	KindPKCE    Kind = "pkce"    // PKCE request sessions, keyed by the code signature (RFC 7636)
	KindAccess  Kind = "access"  // access tokens
	KindRefresh Kind = "refresh" // refresh tokens
	KindPAR     Kind = "par"     // pushed authorization requests, keyed by request_uri (RFC 9126)
	// Our own pushed requests, stored apart from clients' PARs so that
	// none is taken for another (docs/protocol.md "Pushed requests").
	KindPushApp Kind = "push-app" // a redirect_to_app deep link's request
	KindPushWeb Kind = "push-web" // a redirect_to_web fallback's request
)

// Kinds lists every Kind, for tests and sweeps.
var Kinds = []Kind{KindCode, KindPKCE, KindAccess, KindRefresh, KindPAR, KindPushApp, KindPushWeb}

// Record is a serialised OAuth request as fosite hands it to storage: the
// client, the original form, scopes and audiences, and the session as JSON.
// The server package rehydrates it into fosite's types.
type Record struct {
	RequestID         string          `json:"id"`
	ClientID          string          `json:"client_id"`
	RequestedAt       time.Time       `json:"requested_at"`
	Form              string          `json:"form,omitempty"` // url-encoded
	RequestedScopes   []string        `json:"scopes,omitempty"`
	GrantedScopes     []string        `json:"granted_scopes,omitempty"`
	RequestedAudience []string        `json:"audience,omitempty"`
	GrantedAudience   []string        `json:"granted_audience,omitempty"`
	ResponseTypes     []string        `json:"response_types,omitempty"`
	State             string          `json:"state,omitempty"`
	RedirectURI       string          `json:"redirect_uri,omitempty"`
	Session           json.RawMessage `json:"session,omitempty"`
}

// TokenStore persists fosite's artefacts by kind and signature.
type TokenStore interface {
	// CreateToken stores rec under (kind, signature) for ttl. For
	// KindAccess and KindRefresh it also indexes the signature under
	// rec.RequestID so that RevokeRequest can find it.
	CreateToken(ctx context.Context, kind Kind, signature string, rec Record, ttl time.Duration) error
	// CreateCode stores an authorization code and its PKCE request session
	// (same signature, same record) in one step, for ttl.
	CreateCode(ctx context.Context, signature string, rec Record, ttl time.Duration) error
	// Token returns the record. For an invalidated code or refresh token
	// it returns the record together with ErrInvalidated.
	Token(ctx context.Context, kind Kind, signature string) (Record, error)
	// DeleteToken removes the artefact; deleting a missing one is not an error.
	DeleteToken(ctx context.Context, kind Kind, signature string) error
	// InvalidateCode marks a code redeemed, atomically. It returns
	// ErrConflict when the code was already invalidated and ErrNotFound when
	// it does not exist. The code stays readable (with ErrInvalidated) until
	// its TTL ends so that a second redemption can be recognised.
	InvalidateCode(ctx context.Context, signature string) error
	// InvalidateRefresh marks a refresh token rotated, atomically (RFC 9700
	// §4.14.2): of concurrent callers exactly one gets nil, the others
	// ErrConflict; it returns ErrNotFound when the token does not exist.
	// by names this rotation (the successor's signature): a call repeating
	// the winner's by succeeds again, so that a driver's retry of a call
	// that applied is not taken for reuse. The token stays readable (Token
	// returns its record with ErrInvalidated) until its TTL ends, so that a
	// later use is recognised as reuse; RevokeRequest still deletes it.
	InvalidateRefresh(ctx context.Context, signature, by string) error
	// ConsumeToken atomically reads and deletes an artefact (single use,
	// e.g. a PAR request_uri). Of concurrent callers exactly one gets the
	// record; the others get ErrNotFound. An invalidated code or refresh
	// token comes back with ErrInvalidated, as from Token.
	ConsumeToken(ctx context.Context, kind Kind, signature string) (Record, error)
	// RevokeRequest deletes every artefact of kind (KindAccess or
	// KindRefresh) issued for requestID.
	RevokeRequest(ctx context.Context, kind Kind, requestID string) error
}

// AuthSession is the server-side state behind a FiPA auth_session
// (FiPA-04 §5.1, §5.3.1). The value the client holds is never stored: the
// backend keeps ID (a random lookup key) and StepHash (a digest of the
// current one-step secret), and each step swaps StepHash atomically.
type AuthSession struct {
	ID        string    `json:"-"`
	StepHash  string    `json:"-"`
	ClientID  string    `json:"client_id"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// Stage is the flow's position: which challenge is outstanding.
	Stage string `json:"stage"`
	// Failures counts wrong answers; the flow ends the session at its cap.
	Failures int `json:"failures,omitempty"`
	// Request holds the parameters of the initial request that are carried
	// through to the code (scope, code_challenge, state, nonce, …).
	Request map[string]string `json:"request,omitempty"`
	// Subject and Username are set once the first factor passed.
	Subject  string    `json:"sub,omitempty"`
	Username string    `json:"username,omitempty"`
	AMR      []string  `json:"amr,omitempty"`
	AuthTime time.Time `json:"auth_time,omitempty"`
	// DPoPJKT binds the session to the device key (FiPA-04 §9.6.1).
	DPoPJKT string `json:"dpop_jkt,omitempty"`
	// Extra carries flow-specific state (federation hops, prompts) that
	// later milestones add without changing the contract.
	Extra json.RawMessage `json:"extra,omitempty"`
}

// AuthSessionStore persists auth sessions with compare-and-swap steps.
type AuthSessionStore interface {
	// CreateAuthSession stores s (keyed by s.ID, current step s.StepHash)
	// until s.ExpiresAt. It returns ErrConflict if s.ID exists with
	// another step; with the same step it succeeds (idempotent, so that a
	// driver's retry of a create that applied is not an error).
	CreateAuthSession(ctx context.Context, s AuthSession) error
	// AuthSession reads the session by ID, StepHash included.
	AuthSession(ctx context.Context, id string) (AuthSession, error)
	// UpdateAuthSession replaces the session atomically if and only if its
	// current StepHash equals expectStep; next.StepHash becomes the current
	// step and next.ExpiresAt its expiry. It returns ErrConflict when the
	// step does not match (a replayed or raced step) and ErrNotFound when
	// the session is gone. When the current step already equals
	// next.StepHash (a fresh random value), the update already applied and
	// it returns nil: idempotent under a driver's retry.
	UpdateAuthSession(ctx context.Context, expectStep string, next AuthSession) error
	// DeleteAuthSession removes the session atomically if its current
	// StepHash equals expectStep, with the same errors as UpdateAuthSession.
	DeleteAuthSession(ctx context.Context, id, expectStep string) error
}

// ReplayStore records single-use identifiers (client assertion and DPoP
// jti values, used TOTP counters).
type ReplayStore interface {
	// MarkUsed records key until exp. It returns ErrConflict when key was
	// already recorded and has not expired.
	MarkUsed(ctx context.Context, key string, exp time.Time) error
}

// Store is everything a backend provides.
type Store interface {
	TokenStore
	AuthSessionStore
	ReplayStore
	// Ping reports whether the backend is reachable (readiness).
	Ping(ctx context.Context) error
	// Close releases the backend's resources.
	Close() error
}

// TokenWrite is one CreateToken of a batch.
type TokenWrite struct {
	Kind      Kind
	Signature string
	Rec       Record
	TTL       time.Duration
}

// TokenBatcher writes several tokens and deletes several artefacts in one
// step (one round trip on Redis). Not atomic.
type TokenBatcher interface {
	CreateTokens(ctx context.Context, writes []TokenWrite, deleteKind Kind, deletes []string) error
}

// RefreshRotator stores a rotation's successor tokens and then marks the
// used refresh token rotated (InvalidateRefresh, with its results: nil,
// ErrConflict, ErrNotFound) in one step where the backend can (one round
// trip on a single Redis node or Sentinel group). The writes always take
// effect before the rotation is decided, so that the loser of a
// concurrent rotation finds the winner's tokens in the grant it revokes;
// when the rotation is refused the writes stand and the caller revokes or
// deletes them, as after CreateTokens followed by InvalidateRefresh. When
// the writes fail the token is not rotated.
type RefreshRotator interface {
	RotateRefresh(ctx context.Context, writes []TokenWrite, signature, by string) error
}

// CodeRedeemer redeems a code in one atomic step (RFC 6749 §4.1.2): it
// reads the code, marks it redeemed as InvalidateCode does and consumes
// its PKCE request session (RFC 7636 §4.6), so that the token endpoint's
// single-use decision costs one round trip and is made before any token
// exists. Of N concurrent callers exactly one gets the record with a nil
// error; every other gets the record with ErrInvalidated (the code was
// already redeemed), as Token does for a redeemed code. pkce is nil when
// there was none left. ErrNotFound when the code does not exist.
type CodeRedeemer interface {
	RedeemCode(ctx context.Context, signature string) (rec Record, pkce *Record, err error)
}

// PolicyVersion is one committed version of the live policy
// (docs/admin.md "Versions"): the whole policy document in the config
// file's YAML format, who committed it, and what changed.
type PolicyVersion struct {
	// Version numbers versions 1, 2, 3, … in commit order.
	Version uint64 `json:"version"`
	// Parent is the version this one replaced (Version-1; 0 for the first).
	Parent uint64 `json:"parent"`
	// Doc is the policy document (config.Policy as YAML).
	Doc []byte `json:"doc"`
	// Author names who committed it: an admin token's name, or
	// "config-file" for a bootstrap or SIGHUP.
	Author string `json:"author"`
	// Origin is how: "bootstrap", "sighup", "api", "console", "rollback",
	// "import".
	Origin string    `json:"origin"`
	Time   time.Time `json:"time"`
	// Summary is a one-line description ("downstream bank added").
	Summary string `json:"summary"`
}

// AuditEntry records one committed change (docs/admin.md "Audit log").
// Secrets never appear in it: Diff is computed over the redacted document.
type AuditEntry struct {
	// Version is the version the change committed; audit entries are
	// keyed by it.
	Version uint64    `json:"version"`
	Time    time.Time `json:"time"`
	// Actor is the admin token's name; Role its role.
	Actor string `json:"actor"`
	Role  string `json:"role,omitempty"`
	// Remote is the client address the change came from.
	Remote string `json:"remote,omitempty"`
	// Action is e.g. "downstreams.create", "routes.update", "rollback".
	Action string `json:"action"`
	// Target is e.g. "downstreams/bank".
	Target  string `json:"target,omitempty"`
	Summary string `json:"summary"`
	// Diff is a unified line diff of the redacted policy document.
	Diff string `json:"diff"`
}

// PolicyStore versions the live policy that every instance sharing the
// store serves (docs/admin.md). A commit is one atomic step; a reader
// never sees a version without its audit entry or the reverse.
type PolicyStore interface {
	// PolicyHead returns the current version number; 0 when no policy
	// was ever committed.
	PolicyHead(ctx context.Context) (uint64, error)
	// PolicyVersion returns a retained version, or ErrNotFound.
	PolicyVersion(ctx context.Context, version uint64) (PolicyVersion, error)
	// CommitPolicy stores v as the new head if and only if the current
	// head is v.Parent and v.Version is v.Parent+1, together with its
	// audit entry (the store sets a.Version = v.Version), then trims
	// versions and audit entries older than the newest keep, and wakes
	// every watcher. It returns ErrConflict when the head has moved.
	//
	// v.Version != v.Parent+1 and keep < 1 are caller bugs, not races:
	// they fail with an error that is neither ErrConflict nor
	// ErrUnavailable, so a caller that rebases on ErrConflict cannot loop
	// on them. When the head already is v.Version and the stored version
	// has v's content, the commit already applied (a driver's retry of a
	// write whose reply was lost) and it returns nil, like
	// UpdateAuthSession.
	CommitPolicy(ctx context.Context, v PolicyVersion, a AuditEntry, keep int) error
	// PolicyHistory returns up to limit retained versions older than
	// before (0: from the head), newest first, without their Doc. limit
	// must be positive.
	PolicyHistory(ctx context.Context, before uint64, limit int) ([]PolicyVersion, error)
	// PolicyAudit returns up to limit audit entries older than before
	// (0: from the newest), newest first. limit must be positive.
	PolicyAudit(ctx context.Context, before uint64, limit int) ([]AuditEntry, error)
	// WatchPolicy delivers a version number on the returned channel after
	// commits (from any instance sharing the store) until ctx ends, then
	// closes it. Delivery is best effort (Redis pub/sub is at most once):
	// watchers also poll PolicyHead. The channel holds one value and
	// coalesces: a watcher that reads late gets the newest version, not
	// every one, so the value is a wake-up to read PolicyHead, not a log.
	// A commit that completes after WatchPolicy returned is delivered
	// unless the backend's connection drops meanwhile.
	WatchPolicy(ctx context.Context) (<-chan uint64, error)
}
