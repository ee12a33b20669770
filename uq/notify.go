package uq

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/fedas/fedas/netguard"
)

// ErrNotifyFailed is wrapped by every failed Notify.
var ErrNotifyFailed = errors.New("uq: client notification failed")

// Notification is the body POSTed to the client notification endpoint
// (-10 §4.3): either the UST (§4.3.1) or an error object plus
// question_id (§4.3.2). Build it with SuccessNotification or
// ErrorNotification.
type Notification struct {
	UserStatementToken string `json:"user_statement_token,omitempty"`
	QuestionID         string `json:"question_id,omitempty"`
	Error              string `json:"error,omitempty"`
	ErrorDescription   string `json:"error_description,omitempty"`
	ErrorURI           string `json:"error_uri,omitempty"`
}

// SuccessNotification carries a signed UST.
func SuccessNotification(ust string) Notification {
	return Notification{UserStatementToken: ust}
}

// ErrorNotification carries e and the question it is about (-10 §4.3.2
// makes question_id mandatory: the error body alone names no question).
func ErrorNotification(questionID string, e *Error) Notification {
	return Notification{QuestionID: questionID, Error: e.Code, ErrorDescription: e.Description}
}

func (n Notification) check() error {
	switch {
	case n.UserStatementToken != "" && n.Error != "":
		return errors.New("both a token and an error")
	case n.UserStatementToken == "" && n.Error == "":
		return errors.New("neither a token nor an error")
	case n.Error != "" && n.QuestionID == "":
		return errors.New("an error notification needs question_id")
	}
	return nil
}

// Notifier pushes results to client notification endpoints (-10 §4.3).
// The zero value is ready: strict netguard rules, 3 attempts, 1 s then
// 2 s between them.
type Notifier struct {
	// Guard configures the SSRF guard (netguard.Options). Production
	// leaves it zero; tests set AllowLoopback to reach httptest on
	// 127.0.0.1 — the only relaxation there is.
	Guard netguard.Options
	// Client, when set, replaces netguard.Client(Guard); it must be one
	// (tests pass a netguard client with a fake resolver).
	Client *http.Client
	// Attempts is the most POSTs per notification (0 → 3).
	Attempts int
	// Backoff returns the wait before attempt n+1 after attempt n failed
	// (n from 1; nil → n seconds).
	Backoff func(n int) time.Duration
	// Sleep waits d or until ctx ends (nil → a real timer); tests inject a
	// recorder so nothing really sleeps.
	Sleep func(ctx context.Context, d time.Duration) error
}

// NotifyError reports a failed notification: how many attempts were
// made and the last HTTP status (0 when no response came). It wraps
// ErrNotifyFailed and the cause (netguard.ErrForbidden for a refused
// destination).
type NotifyError struct {
	Attempts int
	Status   int
	Err      error
}

func (e *NotifyError) Error() string {
	return fmt.Sprintf("uq: client notification failed after %d attempt(s) (status %d): %v", e.Attempts, e.Status, e.Err)
}

// Unwrap exposes ErrNotifyFailed and the cause.
func (e *NotifyError) Unwrap() []error { return []error{ErrNotifyFailed, e.Err} }

// maxAckBytes: the acknowledgement body is ignored (-10 §4.3.3 "SHOULD
// ignore"); we read at most this much of it so the connection can be
// reused, and never parse it.
const maxAckBytes = 4 << 10

// Notify POSTs n as JSON to endpoint with Authorization: Bearer token
// (-10 §4.3). The endpoint is checked with netguard.CheckURL first and
// every connection goes through the netguard dialer (https only, no
// private, loopback or metadata address, DNS rebinding closed); a
// redirect is never followed and counts as a failure. Any 2xx is
// success, its body ignored. A 5xx, a timeout or a transport error is
// retried, up to Attempts in all, with Backoff between (at-least-once:
// the client dedups by question_id); any other
// status, a refused destination or a malformed notification fails at
// once. The token is never put in an error.
func (n *Notifier) Notify(ctx context.Context, endpoint, token string, note Notification) error {
	fail := func(attempts, status int, err error) error {
		return &NotifyError{Attempts: attempts, Status: status, Err: err}
	}
	if err := note.check(); err != nil {
		return fail(0, 0, err)
	}
	if why := checkNotificationToken(token); why != "" {
		return fail(0, 0, errors.New("client_notification_token "+why))
	}
	if err := netguard.CheckURL(endpoint, n.Guard); err != nil {
		return fail(0, 0, err)
	}
	body, err := json.Marshal(note)
	if err != nil {
		return fail(0, 0, err)
	}
	client := n.Client
	if client == nil {
		client = netguard.Client(n.Guard)
	}
	attempts := n.Attempts
	if attempts <= 0 {
		attempts = 3
	}
	backoff := n.Backoff
	if backoff == nil {
		backoff = func(i int) time.Duration { return time.Duration(i) * time.Second }
	}
	sleep := n.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	var lastErr error
	var lastStatus int
	for i := 1; i <= attempts; i++ {
		status, err := post(ctx, client, endpoint, token, body)
		if err == nil {
			return nil
		}
		lastErr, lastStatus = err, status
		if !retryable(status, err) || i == attempts {
			return fail(i, status, err)
		}
		if err := sleep(ctx, backoff(i)); err != nil {
			return fail(i, lastStatus, err)
		}
	}
	return fail(attempts, lastStatus, lastErr)
}

var errStatus = errors.New("unexpected status")

func post(ctx context.Context, c *http.Client, endpoint, token string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAckBytes))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, nil
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return resp.StatusCode, fmt.Errorf("%w %d: redirects are not followed", errStatus, resp.StatusCode)
	}
	return resp.StatusCode, fmt.Errorf("%w %d", errStatus, resp.StatusCode)
}

// retryable: 5xx, or a transport failure that is not a guard refusal
// and not the caller's cancellation.
func retryable(status int, err error) bool {
	if status >= 500 {
		return true
	}
	if status != 0 {
		return false
	}
	if errors.Is(err, netguard.ErrForbidden) || errors.Is(err, context.Canceled) {
		return false
	}
	return true
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
