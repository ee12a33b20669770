package server

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/events"
	"github.com/fedas/fedas/netguard"
	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/uq"
)

// This file is the User Questioning front end (OpenID Connect User
// Questioning API 1.0, draft -10, whose wire format is kept: docs/reach.md
// "User Questioning", docs/decisions.md Q25): a client asks a question
// (uq_ask.go), polls for the User Statement Token (uq_poll.go) or has it
// pushed to its client_notification_endpoint (uq_push.go). A question is
// a reach task of kind question; the app shows it and answers it.

// Paths of the User Questioning endpoints (-10 §4.1, §4.2).
const (
	PathUQQuestions = "/uq/questions"
	PathUQPolling   = "/uq/questions_polling"
)

// Flows of -10 §1.4, fixed per client at registration (-10 §3): a client
// with a client_notification_endpoint is pushed to, the others poll.
const (
	uqFlowPull = "pull"
	uqFlowPush = "push"
)

// uqState is what the front end keeps per instance: the UST signer, the
// keys deriving question ids and sealing notification tokens, the
// notifier, and the pushes and expiry timers in flight (stopped on
// shutdown).
type uqState struct {
	signer   *uq.Signer
	idKey    []byte
	sealKey  cipher.AEAD
	notifier *uq.Notifier
	log      *zap.Logger

	mu     sync.Mutex
	closed bool
	timers map[string]*time.Timer
	base   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// initUQ builds the front end's state; the keys are derived from the
// deployment's shared secret, so every instance agrees on them.
func (s *Server) initUQ() (*uqState, error) {
	signer, err := uq.NewSigner(s.reach.kid, s.reach.key)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(derivedKey(s.fcfg.GlobalSecret, "fedas/uq-notification-token/v1"))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	base, cancel := context.WithCancel(context.Background())
	return &uqState{
		signer:  signer,
		idKey:   derivedKey(s.fcfg.GlobalSecret, "fedas/uq-question-id/v1"),
		sealKey: aead,
		// Over the reach core's SSRF-guarded client; the guard is checked
		// again by the notifier before each delivery (netguard.CheckURL).
		notifier: &uq.Notifier{Client: s.reach.httpc, Guard: netguard.Options{AllowLoopback: s.cfg.Dev.AllowLoopbackHTTP}},
		log:      s.log.Named("uq"),
		timers:   map[string]*time.Timer{},
		base:     base,
		cancel:   cancel,
	}, nil
}

// close stops the expiry timers and cancels the pushes in flight, then
// waits for them.
func (u *uqState) close() {
	u.mu.Lock()
	u.closed = true
	for _, t := range u.timers {
		t.Stop()
	}
	u.timers = map[string]*time.Timer{}
	u.mu.Unlock()
	u.cancel()
	u.wg.Wait()
}

// goBounded runs f off the request path with a context bounded by d and
// cancelled on shutdown.
func (u *uqState) goBounded(d time.Duration, f func(ctx context.Context)) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return
	}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		ctx, cancel := context.WithTimeout(u.base, d)
		defer cancel()
		f(ctx)
	}()
}

// uqRoutes mounts the request and polling endpoints (reach.go
// reachRoutes) and registers the push reaction to a question's end.
func (s *Server) uqRoutes(e *echo.Echo, limit func(string) echo.MiddlewareFunc) {
	st, err := s.initUQ()
	if err != nil {
		// Only a key of another curve gets here; reach is then served
		// without User Questioning.
		s.log.Error("uq: disabled", zap.Error(err))
		return
	}
	s.reach.uq = st
	s.reach.ended[reach.KindQuestion] = s.uqEnded
	e.POST(PathUQQuestions, s.uqAsk, limit(config.RateReachClient))
	e.GET(PathUQPolling, s.uqPoll, limit(config.RateReachClient))
}

// uqMetadata publishes the -10 §3 members: both endpoints, amr_list (the
// amr values the app's local user verification reports, config
// reach.acrs) and acr_list (config Reach.ACRValues); scopes_supported
// already lists question when the deployment offers it.
func (s *Server) uqMetadata(m map[string]any) {
	if s.reach.uq == nil {
		return
	}
	md, err := uq.DiscoveryMetadata(s.url(PathUQQuestions), s.url(PathUQPolling), nil, s.uqAMRList(), s.reach.cfg.ACRValues())
	if err != nil {
		// An issuer uq refuses (plain http off loopback) cannot be
		// configured (config.Validate); publish nothing rather than a
		// document -10 forbids.
		return
	}
	for _, k := range []string{"user_questioning_request_endpoint", "user_questioning_polling_endpoint", "amr_list", "acr_list"} {
		m[k] = md[k]
	}
}

// uqAMRList is every amr value of config reach.acrs, in order.
func (s *Server) uqAMRList() []string {
	out := []string{}
	for _, a := range s.reach.cfg.ACRs {
		for _, v := range a.AMR {
			if !containsStr(out, v) {
				out = append(out, v)
			}
		}
	}
	return out
}

func containsStr(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// uqFront is a question's front-end state in its task record (never shown
// to the app).
type uqFront struct {
	Flow string `json:"flow"`
	// QuestionID is the question_id the client holds (uqQuestionID).
	QuestionID string `json:"qid"`
	// Sub is the UST's sub: the user's subject.
	Sub string `json:"sub"`
	// UserID and UserIDType are the request's, echoed in the UST iff
	// sent (-10 §2).
	UserID     string `json:"uid,omitempty"`
	UserIDType string `json:"uidt,omitempty"`
	// Asker is the user of the access token that asked ("" for a
	// client-credentials token): a question asked with a user's token is
	// polled with that user's tokens only, as a relayed interaction is
	// (another installation of a public client is another user's).
	Asker string `json:"asker,omitempty"`
	// TokenSHA256 is the client_notification_token's digest (for logs
	// and support); TokenSealed the token itself sealed with AES-GCM under
	// a key derived from the deployment secret, so that whichever
	// instance sees the answer can push it, while the store holds no
	// usable bearer token.
	TokenSHA256 string `json:"tok_sha256,omitempty"`
	TokenSealed string `json:"tok,omitempty"`
	// PollGen and LastPoll are the polling gate's state (uq.PollGate):
	// the newest poll's generation and its start (Unix ms).
	PollGen  uint64 `json:"gen,omitempty"`
	LastPoll int64  `json:"last,omitempty"`
}

// uqFrontOf decodes a question's front-end state.
func uqFrontOf(rec taskRecord) (uqFront, error) {
	var f uqFront
	if len(rec.Front) == 0 {
		return f, errors.New("uq: task without front-end state")
	}
	err := json.Unmarshal(rec.Front, &f)
	return f, err
}

// uqQuestionID derives the question_id of a task: its 16-byte id and 16
// bytes of HMAC-SHA-256 over it under a deployment key, base64url — the
// 43-character shape uq.ValidQuestionID checks, 256 bits, and a client
// cannot make one from a task id it learnt elsewhere. It needs no
// storage: uqTaskID inverts it.
func (u *uqState) uqQuestionID(taskID string) string {
	raw, _ := base64.RawURLEncoding.DecodeString(taskID)
	return base64.RawURLEncoding.EncodeToString(append(raw, u.mac(raw)...))
}

// uqTaskID returns the task id of a question_id, or false for one we did
// not make.
func (u *uqState) uqTaskID(qid string) (string, bool) {
	if !uq.ValidQuestionID(qid) {
		return "", false
	}
	b, _ := base64.RawURLEncoding.DecodeString(qid)
	if !hmac.Equal(b[16:], u.mac(b[:16])) {
		return "", false
	}
	return base64.RawURLEncoding.EncodeToString(b[:16]), true
}

func (u *uqState) mac(raw []byte) []byte {
	m := hmac.New(sha256.New, u.idKey)
	m.Write(raw)
	return m.Sum(nil)[:16]
}

// seal encrypts a notification token for the task record (the task id
// is the associated data: a sealed token moved to another task does not
// open).
func (u *uqState) seal(taskID, token string) string {
	nonce := make([]byte, u.sealKey.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(u.sealKey.Seal(nonce, nonce, []byte(token), []byte(taskID)))
}

func (u *uqState) open(taskID, sealed string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil || len(b) < u.sealKey.NonceSize() {
		return "", errors.New("uq: sealed token malformed")
	}
	n := u.sealKey.NonceSize()
	p, err := u.sealKey.Open(nil, b[:n], b[n:], []byte(taskID))
	return string(p), err
}

// digest is a value's SHA-256 in base64url (logs, records).
func digest(v string) string {
	h := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// uqError maps any error of a UQ endpoint to its -10 error: a *uq.Error
// as is; the reach token check's 401/403 to unauthorized (400: -10
// §4.1.4 answers every error with 400, so RFC 6750's challenge, which
// belongs to a 401, is dropped); a storage outage to 503
// temporarily_unavailable; anything else to server_error (logged).
func (s *Server) uqError(c echo.Context, err error) *uq.Error {
	ctx := c.Request().Context()
	var ue *uq.Error
	var pe *protoError
	switch {
	case errors.As(err, &ue):
		return ue
	case errors.As(err, &pe) && (pe.status == http.StatusUnauthorized || pe.status == http.StatusForbidden):
		c.Response().Header().Del("WWW-Authenticate")
		return uq.NewError(uq.ErrUnauthorized, "%s", pe.body.ErrorDescription)
	case errors.As(err, &pe) && pe.status == http.StatusServiceUnavailable, unavailable(err):
		e := uq.NewError(uq.ErrTemporarilyUnavailable, "The service is temporarily unavailable; retry shortly.")
		e.RetryAfter = time.Second
		return e
	}
	events.For(ctx, s.log).Warn("uq: request failed", zap.Error(err))
	return uq.NewError(uq.ErrServerError, "The server could not complete the request.")
}

// uqFail writes a UQ error: its status (400 for every -10 code, 503,
// 500), RFC 6749 §5.2 body, no-store, and Retry-After when the error
// carries a wait (the rate limits) or is a 503 (docs/decisions.md Q25).
func (s *Server) uqFail(c echo.Context, err error) error {
	e := s.uqError(c, err)
	events.NoteError(c.Request().Context(), e.Code)
	switch {
	case e.RetryAfter > 0:
		c.Response().Header().Set("Retry-After", uq.RetryAfterSeconds(e.RetryAfter))
	case e.Status == http.StatusServiceUnavailable:
		c.Response().Header().Set("Retry-After", "1")
	}
	b := e.Body()
	b.ErrorDescription = cleanDescription(b.ErrorDescription)
	return writeJSON(c, e.Status, b)
}

// uqRateError is a refused budget as -10's error of that code (400 with
// Retry-After; Q25 keeps -10's 400 over Q28's 429).
func uqRateError(sentinel *uq.Error, wait time.Duration, desc string) *uq.Error {
	e := uq.NewError(sentinel, "%s", desc)
	e.RetryAfter = max(wait, time.Second)
	return e
}

// uqBudget spends one unit of a client's per-minute budget (reachAllow:
// kept in the store, so it holds across instances); key is a digest.
func (s *Server) uqBudget(ctx context.Context, kind, clientID string, perMinute int) (bool, time.Duration) {
	return s.reachAllow(ctx, "uq"+kind+"."+digest(clientID)[:22], storage.Limit{Rate: perMinute, Period: time.Minute, Burst: perMinute})
}
