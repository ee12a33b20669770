package flow

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/fedas/fedas/events"
	"github.com/fedas/fedas/federation"
	"github.com/fedas/fedas/storage"
)

// Stages of an auth session besides the local steps' own names.
const (
	// StageRoute waits for an insufficient_information answer.
	StageRoute = "route"
	// StageFederating holds the session while we push to a downstream.
	StageFederating = "federating"
	// StageFederated waits for the downstream's result at response_uri
	// (or, for a browser hop, at our web callback).
	StageFederated = "federated"
	// StageRedeeming holds the session while we redeem a downstream code.
	StageRedeeming = "redeeming"
	// StageApp waits for our app to complete the deep link.
	StageApp = "app"
	// StageCompleting holds the session while the app completion mints.
	StageCompleting = "completing"
	// StageReturned: an out-of-band leg (our app, a browser at our web
	// callback) authenticated the user; the device's next post, carrying
	// the one-time value that leg returned, gets our code.
	StageReturned = "returned"
)

// extra is the flow's own part of a session (storage.AuthSession.Extra).
type extra struct {
	// Channel the session belongs to.
	Channel Channel `json:"ch"`
	// Hop is the open federation hop, pinned when it began.
	Hop *federation.Hop `json:"hop,omitempty"`
	// Claims of a downstream identity (idp, idp_sub, mapped claims).
	Claims map[string]any `json:"claims,omitempty"`
	// IDClaims are identity claims a step established (a verified
	// credential's mapped claims), for the ID token.
	IDClaims map[string]any `json:"idc,omitempty"`
	// ACR of the authentication (OIDC Core §2).
	ACR string `json:"acr,omitempty"`
	// Cred records whether the client may get credential challenges.
	Cred bool `json:"cred,omitempty"`
	// ClientAuth: the initial request authenticated a confidential client
	// directly, so every later request of the session must too (FiPA-04
	// §4.1). Sessions attested by a client's PAR (the downstream role) are
	// carried by a device that holds no client credentials.
	ClientAuth bool `json:"cauth,omitempty"`
	// Step is the index of the current local step in the chain.
	Step int `json:"step,omitempty"`
	// User is the username a step identified or a hint named; the session's
	// user is then fixed (app completion must match it).
	User string `json:"user,omitempty"`
	// Hinted marks a user named by the request (login_hint, an email) or
	// by app enrolment, not yet authenticated.
	Hinted bool `json:"hinted,omitempty"`
	// App is the app of a redirect_to_app.
	App string `json:"app,omitempty"`
	// Downstream marks an app session of the downstream role: the code
	// goes to the upstream through the device, not to the device.
	Downstream bool `json:"ds,omitempty"`
	// ReturnHash is the SHA-256 of the one-time value an out-of-band leg
	// sent back to the app (StageReturned).
	ReturnHash string `json:"rh,omitempty"`
	// Push is our pushed request this session completes (a browser
	// session's request_uri, consumed when its code is minted).
	Push string `json:"push,omitempty"`
	// WebDS is the downstream of a browser hop our redirect_to_web starts
	// (docs/decisions.md Q19), until the browser arrives.
	WebDS string `json:"wds,omitempty"`
	// StepData is the current step's own state.
	StepData json.RawMessage `json:"sd,omitempty"`
	// Live is the session's live-session slot (caps.go).
	Live *liveRef `json:"live,omitempty"`
	// Hops counts the pushes to downstreams made for the session (caps.go).
	Hops int `json:"hops,omitempty"`
	// ReachTask is the session's current cross-device task
	// (flow/reach.go): only its approval completes the session.
	ReachTask string `json:"rt,omitempty"`
}

func readExtra(s storage.AuthSession) extra {
	var x extra
	if len(s.Extra) > 0 {
		_ = json.Unmarshal(s.Extra, &x)
	}
	return x
}

func (x extra) into(s *storage.AuthSession) {
	b, _ := json.Marshal(x)
	s.Extra = b
}

// handle is a parsed auth_session value: a 16-byte lookup ID and a 32-byte
// one-step secret, of which only the SHA-256 digest is stored
// (docs/protocol.md "auth_session").
type handle struct {
	id       string
	stepHash string
}

const (
	idLen     = 16
	secretLen = 32
)

var b64 = base64.RawURLEncoding

func newHandle() (value string, h handle, err error) {
	var b [idLen + secretLen]byte
	if _, err = rand.Read(b[:]); err != nil {
		return "", handle{}, err
	}
	return b64.EncodeToString(b[:]), handle{id: b64.EncodeToString(b[:idLen]), stepHash: digest(b[idLen:])}, nil
}

func digest(secret []byte) string {
	sum := sha256.Sum256(secret)
	return b64.EncodeToString(sum[:])
}

// parseHandle accepts only the exact shape we mint, so that no client
// input ever reaches a storage key unchecked.
func parseHandle(v string) (handle, bool) {
	if len(v) != b64.EncodedLen(idLen+secretLen) {
		return handle{}, false
	}
	b, err := b64.DecodeString(v)
	if err != nil || len(b) != idLen+secretLen {
		return handle{}, false
	}
	return handle{id: b64.EncodeToString(b[:idLen]), stepHash: digest(b[idLen:])}, true
}

// newHandleFor mints a new step value for an existing session ID.
func newHandleFor(id string) (string, handle, error) {
	raw, err := b64.DecodeString(id)
	if err != nil || len(raw) != idLen {
		return "", handle{}, errors.New("flow: corrupt session id")
	}
	var b [idLen + secretLen]byte
	copy(b[:idLen], raw)
	if _, err := rand.Read(b[idLen:]); err != nil {
		return "", handle{}, err
	}
	return b64.EncodeToString(b[:]), handle{id: id, stepHash: digest(b[idLen:])}, nil
}

// oneTime returns a fresh one-time value and its digest (the value an
// out-of-band leg returns to the app; cf. OpenID4VP response_code).
func oneTime() (value, hash string) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	v := b64.EncodeToString(b)
	return v, digest([]byte(v))
}

// A stored step is the digest of the device's step secret, optionally
// with a revision: "<digest>~<n>". A server-side change that must keep the
// device's value valid (a browser leg, our app's completion) stores the
// same digest under a new revision, so that a request which loaded the
// session before the change fails its compare-and-swap instead of acting
// on the stale state (the value still matches the digest).
func stepDigest(stored string) string {
	if i := strings.IndexByte(stored, '~'); i >= 0 {
		return stored[:i]
	}
	return stored
}

func nextRevision(stored string) string {
	d, n := stepDigest(stored), 0
	if i := strings.IndexByte(stored, '~'); i >= 0 {
		n, _ = strconv.Atoi(stored[i+1:])
	}
	return d + "~" + strconv.Itoa(n+1)
}

func sameHash(stored, value string) bool {
	return stored != "" && subtle.ConstantTimeCompare([]byte(stored), []byte(digest([]byte(value)))) == 1
}

// session is a loaded auth session and the step value it was loaded by.
type session struct {
	storage.AuthSession
	h handle
	x extra
	// spec is the challenge the current step gave when it became current
	// in this request (never stored): answered as is, so that a step need
	// not keep in the session what it shows only once.
	spec *ChallengeSpec
}

// hint names the session's user before any step authenticated one
// (login_hint, an email answered at a prompt): the password step asks no
// username, and only that user may complete the session. A session that
// already names a user keeps it.
func (s *session) hint(name string) {
	if name != "" && s.x.User == "" && s.Username == "" {
		s.Username, s.x.User, s.x.Hinted = name, name, true
	}
}

// errRefused carries a Refusal out of a helper that also returns errors.
type errRefused struct{ r Refusal }

func (e *errRefused) Error() string { return e.r.Code }

func refused(r Refusal) error { return &errRefused{r} }

// load finds the session a value names, if that value is its current
// step; any other value is invalid_session and changes nothing.
func (e *Engine) load(ctx context.Context, value string) (*session, error) {
	h, ok := parseHandle(value)
	if !ok {
		return nil, refused(invalidSession())
	}
	s, err := e.o.Sessions.AuthSession(ctx, h.id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, refused(invalidSession())
	} else if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(stepDigest(s.StepHash)), []byte(h.stepHash)) != 1 {
		return nil, refused(invalidSession())
	}
	// Compare-and-swap against the stored step, revision included.
	h.stepHash = s.StepHash
	// A follow-up names no client: the session says whose it is.
	events.NoteClient(ctx, s.ClientID)
	return &session{AuthSession: s, h: h, x: readExtra(s)}, nil
}

// loadByID finds a session by its ID alone (a sealed state or our own
// pushed request named it; no step value is presented).
func (e *Engine) loadByID(ctx context.Context, id string) (*session, error) {
	s, err := e.o.Sessions.AuthSession(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, refused(invalidSession())
	} else if err != nil {
		return nil, err
	}
	return &session{AuthSession: s, h: handle{id: s.ID, stepHash: s.StepHash}, x: readExtra(s)}, nil
}

// create stores a new session for client c and returns its value.
func (e *Engine) create(ctx context.Context, s *session) (string, error) {
	value, h, err := newHandle()
	if err != nil {
		return "", err
	}
	s.ID, s.StepHash, s.h = h.id, h.stepHash, h
	return value, e.store(ctx, s)
}

// store writes a new session whose handle is set, in a live-session slot
// (over a cap: 429, nothing stored).
func (e *Engine) store(ctx context.Context, s *session) error {
	if err := e.admit(ctx, s); err != nil {
		return err
	}
	s.x.into(&s.AuthSession)
	if err := e.o.Sessions.CreateAuthSession(ctx, s.AuthSession); err != nil {
		e.release(ctx, s)
		return err
	}
	return nil
}

func (e *Engine) newSession(ch Channel, clientID string, req map[string]string, jkt string, stage string) *session {
	now := e.o.Now()
	return &session{AuthSession: storage.AuthSession{ClientID: clientID, CreatedAt: now, ExpiresAt: now.Add(e.o.TTL), Stage: stage, Request: req, DPoPJKT: jkt}, x: extra{Channel: ch}}
}

// advance stores s under a fresh step value (compare-and-swap on the
// value it was loaded by) and returns the new value.
func (e *Engine) advance(ctx context.Context, s *session) (string, error) {
	value, nh, err := newHandleFor(s.ID)
	if err != nil {
		return "", err
	}
	old := s.h.stepHash
	s.StepHash, s.h = nh.stepHash, nh
	s.x.into(&s.AuthSession)
	if err := casErr(e.o.Sessions.UpdateAuthSession(ctx, old, s.AuthSession)); err != nil {
		return "", err
	}
	return value, nil
}

// keep stores s under the step value it was loaded by, at a new
// revision (compare-and-swap on the old one): the session changed only in
// bookkeeping, so the device's value stays good, while a request that
// loaded the session before this change fails its own swap.
func (e *Engine) keep(ctx context.Context, s *session) error {
	old := s.h.stepHash
	s.StepHash = nextRevision(old)
	s.h.stepHash = s.StepHash
	s.x.into(&s.AuthSession)
	return casErr(e.o.Sessions.UpdateAuthSession(ctx, old, s.AuthSession))
}

// lock moves the session to a transient stage under a server-only step
// value, so that of concurrent requests with the same auth_session exactly
// one proceeds to the side effect (a PAR, a code redemption). It returns
// the session as it was, for unlock.
func (e *Engine) lock(ctx context.Context, s *session, stage string) (storage.AuthSession, error) {
	orig := s.AuthSession
	s.Stage = stage
	if _, err := e.advance(ctx, s); err != nil {
		s.AuthSession = orig
		return orig, err
	}
	return orig, nil
}

// unlock puts the session back as it was, so the client may retry with
// the same auth_session after a temporary failure.
func (e *Engine) unlock(ctx context.Context, s *session, orig storage.AuthSession) {
	// Even when the device gave up (its request context is cancelled),
	// the session must not stay locked until its TTL.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := e.o.Sessions.UpdateAuthSession(ctx, s.StepHash, orig); err != nil {
		events.For(ctx, e.o.Logger).Warn("could not restore session after a temporary failure", zap.Error(err))
	}
}

// end deletes the session; terminal outcomes ignore a lost race.
func (e *Engine) end(ctx context.Context, s *session) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	err := e.o.Sessions.DeleteAuthSession(ctx, s.ID, s.StepHash)
	if err == nil {
		e.release(ctx, s)
	} else if !errors.Is(err, storage.ErrNotFound) && !errors.Is(err, storage.ErrConflict) {
		events.For(ctx, e.o.Logger).Warn("could not end session", zap.Error(err))
	}
}

// finish deletes the session under compare-and-swap: of two requests
// racing to the same terminal step, one wins.
func (e *Engine) finish(ctx context.Context, s *session) error {
	if err := casErr(e.o.Sessions.DeleteAuthSession(ctx, s.ID, s.StepHash)); err != nil {
		return err
	}
	e.release(ctx, s)
	return nil
}

// casErr turns a lost compare-and-swap into invalid_session: another
// request used this step value first.
func casErr(err error) error {
	if errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrNotFound) {
		return refused(invalidSession())
	}
	return err
}
