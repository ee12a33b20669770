// Package flow is the auth_session state machine behind the native
// authorization endpoint (FiPA-04 §5, "authorization challenge endpoint").
// It takes a parsed request — the client, the initial parameters or a
// follow-up's answers — and returns one outcome: a challenge, an error, or
// an authorization code. It knows nothing of HTTP.
//
// An auth_session value (FiPA-04 §5.1, §5.3.1) is 48 random bytes,
// base64url: a 16-byte lookup ID and a 32-byte one-step secret. Only the ID
// and a SHA-256 digest of the secret are stored; every step swaps the
// digest with a compare-and-swap, so each value is good for exactly one
// step and a replay changes nothing (PROTOCOL-NOTES "auth_session").
package flow

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/fedas/fedas/federation"
	"github.com/fedas/fedas/storage"
)

// Stages of an auth session.
const (
	StagePassword = "password"
	StageOTP      = "otp"
	// StageRoute waits for an insufficient_information answer.
	StageRoute = "route"
	// StageFederating holds the session while we push to a downstream.
	StageFederating = "federating"
	// StageFederated waits for the downstream's result at response_uri.
	StageFederated = "federated"
	// StageRedeeming holds the session while we redeem the downstream code.
	StageRedeeming = "redeeming"
	// StageApp waits for the code our app delivered on native_callback_uri.
	StageApp = "app"
	// StageAuthenticated: a downstream's browser flow finished at our web
	// callback; the device's next post gets our code.
	StageAuthenticated = "authenticated"
)

// AMR values (RFC 8176 §2).
const (
	AMRPassword = "pwd"
	AMROTP      = "otp"
)

// Carried lists the initial-request parameters kept in the session and
// bound to the code (FiPA-04 §5.1; RFC 7636 §4.3).
var Carried = []string{"scope", "code_challenge", "code_challenge_method", "state", "nonce", "acr_values", "login_hint", "max_age", "native_callback_uri", "redirect_uri"}

// User is a local account.
type User struct {
	Username     string
	Subject      string
	PasswordHash string
	TOTPSecret   string
	// Apps lists our apps the user has enrolled.
	Apps []string
}

// Grant is what the engine asks the code issuer to bind to a new code.
type Grant struct {
	ClientID string
	Request  map[string]string
	Subject  string
	Username string
	AMR      []string
	AuthTime time.Time
	// Claims are extra claims for the session (idp, idp_sub, mapped claims).
	Claims map[string]any
	// DPoPJKT binds the code to the device key (RFC 9449 §10).
	DPoPJKT string
}

// CodeIssuer mints and stores an authorization code for a grant
// (implemented by the server on fosite). It MUST NOT return a code whose
// state was not stored.
type CodeIssuer interface {
	IssueCode(ctx context.Context, g Grant) (string, error)
	// RedeemCode redeems, once, a code issued to clientID and bound to the
	// S256 challenge of verifier, and returns what it was issued for (the
	// app-delivered code of a local redirect_to_app, PROTOCOL-NOTES Q6).
	RedeemCode(ctx context.Context, clientID, code, verifier string) (Grant, error)
}

// Client is what the engine needs to know about the calling client.
type Client struct {
	ID string
	// DPoPJKT is the thumbprint of the key of the DPoP proof the initial
	// request carried: the session is bound to it (FiPA-04 §9.6.1).
	DPoPJKT string
	// Federating marks another AS that federated the user to us.
	Federating bool
	// CredentialChallenges allows password and OTP challenges: first-party
	// clients, or federating clients that opted in (PROTOCOL-NOTES Q10).
	CredentialChallenges bool
}

// Options configure an Engine.
type Options struct {
	Sessions    storage.AuthSessionStore
	Replay      storage.ReplayStore
	Users       []User
	Issuer      CodeIssuer
	TTL         time.Duration
	MaxFailures int
	Logger      *zap.Logger
	// Now is the clock (tests).
	Now func() time.Time
	// Fed routes and federates; nil means local sign-in only.
	Fed *federation.Federator
	// ResponseURI builds the per-hop response_uri.
	ResponseURI func(hopID string) string
	// Apps are our own apps for redirect_to_app.
	Apps []App
	// Pusher stores pushed requests for deep links and browser fallback.
	Pusher Pusher
	// StateKey (32 bytes) seals the state we send downstream; instances
	// sharing a store must share it. Nil means a random key.
	StateKey []byte
}

// Engine runs auth sessions.
type Engine struct {
	o     Options
	aead  cipher.AEAD
	users map[string]User
	// dummyHash equalises the time of an unknown-user check with a
	// wrong-password check.
	dummyHash []byte
}

// New builds an Engine.
func New(o Options) *Engine {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	e := &Engine{o: o, users: make(map[string]User, len(o.Users))}
	key := o.StateKey
	if len(key) != 32 {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			panic(err)
		}
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	if e.aead, err = cipher.NewGCM(block); err != nil {
		panic(err)
	}
	for _, u := range o.Users {
		e.users[u.Username] = u
		if e.dummyHash == nil {
			e.dummyHash = []byte(u.PasswordHash)
		}
	}
	if e.dummyHash == nil {
		e.dummyHash, _ = bcrypt.GenerateFromPassword([]byte("x"), bcrypt.MinCost)
	}
	return e
}

// Error is a protocol outcome other than success: an RFC 6749 §5.2 error,
// possibly carrying a new auth_session and a challenge (FiPA-04 §5.2.2).
type Error struct {
	Status      int
	Code        string
	Description string
	AuthSession string
	Challenge   *Challenge
	// federate (federation draft §4.3.1)
	FederationURI  string
	FederationBody string
	ResponseURI    string
	// insufficient_information (federation draft §4.3.3)
	UserPrompt map[string]any
	Logo       string
	// redirect_to_app (federation draft §4.3.2)
	DeepLink string
	// redirect_to_web (FiPA-04 §5.2.2.1.1)
	RequestURI string
	ExpiresIn  int
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

// Challenge is the self-describing member fedas adds to
// insufficient_authorization (PROTOCOL-NOTES "Local authentication
// challenges are self-describing").
type Challenge struct {
	Type   string           `json:"type"`
	Inputs map[string]Input `json:"inputs"`
}

// Input describes one field the client collects.
type Input struct {
	Title       string `json:"title,omitempty"`
	Hint        string `json:"hint,omitempty"`
	Description string `json:"description,omitempty"`
	Secret      bool   `json:"secret"`
}

func invalidSession() *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_session", Description: "The auth_session is invalid, expired or already used."}
}

func invalidRequest(desc string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: desc}
}

// handle is a parsed auth_session value.
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
	return b64.EncodeToString(b[:]), handle{id: b64.EncodeToString(b[:idLen]), stepHash: stepHash(b[idLen:])}, nil
}

func stepHash(secret []byte) string {
	sum := sha256.Sum256(secret)
	return b64.EncodeToString(sum[:])
}

// parseHandle accepts only the exact shape we mint, so that no client
// input ever reaches a storage key unchecked (SECURITY.md A12).
func parseHandle(v string) (handle, bool) {
	if len(v) != b64.EncodedLen(idLen+secretLen) {
		return handle{}, false
	}
	b, err := b64.DecodeString(v)
	if err != nil || len(b) != idLen+secretLen {
		return handle{}, false
	}
	return handle{id: b64.EncodeToString(b[:idLen]), stepHash: stepHash(b[idLen:])}, true
}

// Start begins an auth session for a validated initial request and
// returns the first challenge (always an *Error with Status 403).
func (e *Engine) Start(ctx context.Context, c Client, req map[string]string) error {
	if app := e.appFor(c, req); app != nil {
		return e.startApp(ctx, c, req, app)
	}
	if f := e.o.Fed; f != nil {
		if t, ok := f.RouteClient(c.ID); ok {
			return e.startRouted(ctx, c, req, t)
		}
		if f.HasPrompt() {
			return e.startPrompt(ctx, c, req)
		}
	}
	return e.startLocal(ctx, c, req)
}

// StartBrowser begins a sign-in on our own browser pages (the
// redirect_to_web fallback, FiPA-04 §5.2.2.1.1): local challenges only,
// since the pages are ours whatever the client.
func (e *Engine) StartBrowser(ctx context.Context, clientID string, req map[string]string) error {
	return e.startLocal(ctx, Client{ID: clientID, CredentialChallenges: true}, req)
}

// startLocal begins a local sign-in with a password challenge.
func (e *Engine) startLocal(ctx context.Context, c Client, req map[string]string) error {
	if !c.CredentialChallenges {
		return e.webFallback(ctx, c.ID, req)
	}
	s, value, _, err := e.newSession(c, req, StagePassword, extra{})
	if err != nil {
		return err
	}
	if hint := req["login_hint"]; hint != "" {
		s.Username = hint
	}
	if err := e.o.Sessions.CreateAuthSession(ctx, s); err != nil {
		return err
	}
	return e.challenge(s, value, "")
}

func (e *Engine) challenge(s storage.AuthSession, value, desc string) *Error {
	ch := &Challenge{Inputs: map[string]Input{}}
	switch s.Stage {
	case StagePassword:
		ch.Type = "password"
		if s.Username == "" {
			ch.Inputs["username"] = Input{Title: "Username", Hint: "username"}
		}
		ch.Inputs["password"] = Input{Title: "Password", Hint: "current-password", Secret: true}
		if desc == "" {
			desc = "Sign in with your username and password."
		}
	case StageOTP:
		ch.Type = "otp"
		ch.Inputs["otp"] = Input{Title: "One-time code", Hint: "one-time-code", Description: "The 6-digit code from your authenticator app."}
		if desc == "" {
			desc = "Enter the one-time code from your authenticator app."
		}
	}
	return &Error{Status: http.StatusForbidden, Code: "insufficient_authorization", Description: desc, AuthSession: value, Challenge: ch}
}

// Continue advances the session named by value with the client's answers.
// clientID is the client_id of the follow-up, if it sent one. It returns
// the authorization code on success, an *Error for every protocol
// outcome, or another error (storage.ErrUnavailable, …) for failures.
func (e *Engine) Continue(ctx context.Context, clientID, value string, answers url.Values) (Outcome, error) {
	return e.cont(ctx, clientID, value, answers, "", false)
}

// ContinueDPoP is Continue for a request that carried a valid DPoP proof
// for the key jkt ("" when it carried none). A session bound to a key
// moves only with a proof for that key; anything else is
// invalid_dpop_proof and changes nothing (SECURITY.md A08, A09).
func (e *Engine) ContinueDPoP(ctx context.Context, clientID, value string, answers url.Values, jkt string) (Outcome, error) {
	return e.cont(ctx, clientID, value, answers, jkt, false)
}

// ContinueBrowser is Continue for sessions our browser pages started
// (StartBrowser). Sessions stay in their channel: a browser session's
// value posted to the native endpoint, or a native one to the pages, is
// invalid_session, so one pushed request never yields two codes.
func (e *Engine) ContinueBrowser(ctx context.Context, value string, answers url.Values) (Outcome, error) {
	return e.cont(ctx, "", value, answers, "", true)
}

// codeKey is the key the session's code is bound to: the one a
// federating AS named in its PAR (dpop_jkt, RFC 9449 §10.1: it redeems
// the code, the device cannot), else the device's own.
func codeKey(s storage.AuthSession) string {
	if k := s.Request["dpop_jkt"]; k != "" {
		return k
	}
	return s.DPoPJKT
}

// keyBound refuses a request without a proof for the session's key.
func keyBound(s storage.AuthSession, jkt string) error {
	if s.DPoPJKT != "" && subtle.ConstantTimeCompare([]byte(s.DPoPJKT), []byte(jkt)) != 1 {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_dpop_proof", Description: "This auth_session is bound to a DPoP key: send a proof for that key."}
	}
	return nil
}

// load finds the session a value names, if that value is its current
// step; any other value is invalid_session and changes nothing.
func (e *Engine) load(ctx context.Context, value string) (storage.AuthSession, handle, error) {
	h, ok := parseHandle(value)
	if !ok {
		return storage.AuthSession{}, h, invalidSession()
	}
	s, err := e.o.Sessions.AuthSession(ctx, h.id)
	if errors.Is(err, storage.ErrNotFound) {
		return s, h, invalidSession()
	} else if err != nil {
		return s, h, err
	}
	if subtle.ConstantTimeCompare([]byte(s.StepHash), []byte(h.stepHash)) != 1 {
		return s, h, invalidSession()
	}
	return s, h, nil
}

func (e *Engine) cont(ctx context.Context, clientID, value string, answers url.Values, jkt string, browser bool) (Outcome, error) {
	s, h, err := e.load(ctx, value)
	if err != nil {
		return Outcome{}, err
	}
	if err := keyBound(s, jkt); err != nil {
		return Outcome{}, err
	}
	if (s.Request["request_uri"] != "") != browser {
		return Outcome{}, invalidSession()
	}
	if clientID != "" && clientID != s.ClientID {
		// FiPA-04 §5.1: the client_id MUST match the session's; reject
		// without touching the victim's session (SECURITY.md A04).
		return Outcome{}, invalidRequest("The client_id does not match the auth_session.")
	}
	switch s.Stage {
	case StagePassword:
		return e.password(ctx, s, h, answers)
	case StageOTP:
		return e.otp(ctx, s, h, answers)
	case StageRoute:
		return Outcome{}, e.answerPrompt(ctx, s, h, answers)
	case StageApp:
		return e.appReturn(ctx, s, h, answers)
	case StageAuthenticated:
		return e.finish(ctx, s, h)
	}
	// A federated session continues only at its response_uri.
	return Outcome{}, invalidSession()
}

func field(answers url.Values, name string, max int) (string, *Error) {
	v := answers.Get(name)
	if v == "" {
		return "", invalidRequest(fmt.Sprintf("The %s input is required.", name))
	}
	if len(v) > max {
		return "", invalidRequest(fmt.Sprintf("The %s input is too long.", name))
	}
	return v, nil
}

func (e *Engine) password(ctx context.Context, s storage.AuthSession, h handle, answers url.Values) (Outcome, error) {
	username := s.Username
	if username == "" {
		u, perr := field(answers, "username", 256)
		if perr != nil {
			return Outcome{}, perr
		}
		username = u
	}
	pw, perr := field(answers, "password", 1024)
	if perr != nil {
		return Outcome{}, perr
	}
	user, known := e.users[username]
	hash := e.dummyHash
	if known {
		hash = []byte(user.PasswordHash)
	}
	okPW := bcrypt.CompareHashAndPassword(hash, []byte(pw)) == nil && known
	if !okPW {
		// The same answer whether or not the user exists.
		return e.fail(ctx, s, h, "The username or password is not correct.")
	}
	s.Username, s.Subject = user.Username, user.Subject
	s.AMR = []string{AMRPassword}
	s.AuthTime = e.o.Now()
	if user.TOTPSecret != "" {
		s.Stage = StageOTP
		s.Failures = 0
		return e.step(ctx, s, h, "")
	}
	return e.finish(ctx, s, h)
}

func (e *Engine) otp(ctx context.Context, s storage.AuthSession, h handle, answers url.Values) (Outcome, error) {
	code, perr := field(answers, "otp", 10)
	if perr != nil {
		return Outcome{}, perr
	}
	user, known := e.users[s.Username]
	if !known || user.TOTPSecret == "" {
		return Outcome{}, invalidSession()
	}
	counter, ok := matchTOTP(user.TOTPSecret, code, e.o.Now())
	if ok {
		// RFC 6238 §5.2: a code is accepted once. The marker outlives the
		// ±1 step window.
		exp := time.Unix((counter+3)*30, 0)
		err := e.o.Replay.MarkUsed(ctx, "totp:"+user.Subject+":"+strconv.FormatInt(counter, 10), exp)
		if errors.Is(err, storage.ErrConflict) {
			ok = false
		} else if err != nil {
			return Outcome{}, err
		}
	}
	if !ok {
		return e.fail(ctx, s, h, "The one-time code is not correct.")
	}
	s.AMR = append(s.AMR, AMROTP)
	s.AuthTime = e.o.Now()
	return e.finish(ctx, s, h)
}

// matchTOTP checks code against the steps t-1, t, t+1 (RFC 6238 §5.2) and
// returns the matching counter.
func matchTOTP(secret, code string, now time.Time) (int64, bool) {
	opts := totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	base := now.Unix() / 30
	found, counter := false, int64(0)
	for _, d := range []int64{-1, 0, 1} {
		want, err := totp.GenerateCodeCustom(secret, time.Unix((base+d)*30, 0), opts)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && !found {
			found, counter = true, base+d
		}
	}
	return counter, found
}

// fail counts a wrong answer: the session survives with a new step value
// until MaxFailures, then it ends (SECURITY.md J06).
func (e *Engine) fail(ctx context.Context, s storage.AuthSession, h handle, desc string) (Outcome, error) {
	s.Failures++
	if s.Failures >= e.o.MaxFailures {
		err := e.o.Sessions.DeleteAuthSession(ctx, s.ID, h.stepHash)
		if err := casErr(err); err != nil {
			return Outcome{}, err
		}
		return Outcome{}, &Error{Status: http.StatusBadRequest, Code: "access_denied", Description: "Too many failed attempts; start again."}
	}
	return e.step(ctx, s, h, desc)
}

// step stores s under a fresh step value and answers with its challenge.
func (e *Engine) step(ctx context.Context, s storage.AuthSession, h handle, desc string) (Outcome, error) {
	value, nh, err := newHandleFor(s.ID)
	if err != nil {
		return Outcome{}, err
	}
	s.StepHash = nh.stepHash
	if err := casErr(e.o.Sessions.UpdateAuthSession(ctx, h.stepHash, s)); err != nil {
		return Outcome{}, err
	}
	return Outcome{}, e.challenge(s, value, desc)
}

// finish ends the session (its value is dead once the code exists:
// FiPA-04 §5.3.1) and issues the code.
func (e *Engine) finish(ctx context.Context, s storage.AuthSession, h handle) (Outcome, error) {
	if err := casErr(e.o.Sessions.DeleteAuthSession(ctx, s.ID, h.stepHash)); err != nil {
		return Outcome{}, err
	}
	return e.issue(ctx, Grant{
		ClientID: s.ClientID,
		Request:  s.Request,
		Subject:  s.Subject,
		Username: s.Username,
		AMR:      s.AMR,
		AuthTime: s.AuthTime,
		Claims:   readExtra(s).Claims,
		DPoPJKT:  codeKey(s),
	})
}

// Outcome is a finished session: our authorization code, and the
// parameters of the request it answers (the browser endpoint needs its
// redirect_uri and state).
type Outcome struct {
	Code    string
	Request map[string]string
}

func (e *Engine) issue(ctx context.Context, g Grant) (Outcome, error) {
	code, err := e.o.Issuer.IssueCode(ctx, g)
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{Code: code, Request: g.Request}, nil
}

// casErr turns a lost compare-and-swap into invalid_session: another
// request used this step value first.
func casErr(err error) error {
	if errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrNotFound) {
		return invalidSession()
	}
	return err
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
	return b64.EncodeToString(b[:]), handle{id: id, stepHash: stepHash(b[idLen:])}, nil
}
