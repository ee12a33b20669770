package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fedas/fedas/dpop"
)

// The client side of the interaction relay (docs/reach.md "Interaction
// relay"; AAuth interaction endpoint and deferred responses): ask the
// authorization server to show the user an interaction URL on their app,
// then poll the Location until the user completed it, declined it, or it
// expired. On interaction_unavailable (424, IsInteractionUnavailable) the
// caller shows url and code to the user itself.

// Interaction is what to relay (POST /reach/interactions).
type Interaction struct {
	// URL is the https interaction URL (no query, no fragment), on one of
	// the client's registered interaction_origins.
	URL string
	// Code is the interaction code (Crockford base32, at least 8 symbols).
	Code string
	// Description is shown to the user with the URL (plain text).
	Description string
	// MaxWait bounds the interaction (whole seconds; 0: the server's
	// default).
	MaxWait time.Duration
	// CanInteract declares the interaction capability: this client can
	// show the URL itself, so "no channel" is the non-terminal 424 rather
	// than the terminal user_unreachable.
	CanInteract bool
}

// FallbackURL is what to open or show as a QR code when the relay
// answers interaction_unavailable: the interaction URL with its code
// (AAuth: {url}?code={code}).
func (in Interaction) FallbackURL() string {
	return in.URL + "?code=" + url.QueryEscape(in.Code)
}

// RelayStatus is a relay answer that is not an error: Status pending or
// interacting (Location and RetryAfter set: poll again), or completed.
type RelayStatus struct {
	Status     string
	Location   string
	RetryAfter time.Duration
}

// Done reports whether the user completed the interaction.
func (s RelayStatus) Done() bool { return s.Status == "completed" }

// Relay talks to one authorization server's interaction endpoint with a
// DPoP-bound access token of a user (scope reach:interaction).
type Relay struct {
	// HTTP is the client; its Timeout must exceed the longest wait asked
	// for (NewHTTPClient's 10 s does for waits up to 8 s).
	HTTP *http.Client
	// Endpoint is the metadata's interaction_endpoint.
	Endpoint string
	// AccessToken is bound to DPoP.
	AccessToken string
	DPoP        *dpop.Key
	// Now is the clock of the proofs' iat (default time.Now).
	Now func() time.Time
	// Sleep waits between polls in Wait (default: a timer, ended by ctx).
	Sleep func(ctx context.Context, d time.Duration) error
}

// RelayError is a relay error answer: the RFC 6749 §5.2 members (Err;
// branch on Error, never on the status) and Retry-After.
type RelayError struct {
	*Err
	RetryAfter time.Duration
}

// Unwrap lets errors.As find the *Err.
func (e *RelayError) Unwrap() error { return e.Err }

// IsInteractionUnavailable reports AAuth's non-terminal 424: no channel
// of the server reaches the user now; show the URL and code yourself.
func IsInteractionUnavailable(err error) bool { return errorCode(err) == "interaction_unavailable" }

// errorCode is the error member of an *Err ("" for other errors).
func errorCode(err error) string {
	var e *Err
	if errors.As(err, &e) {
		return e.Response.Error
	}
	return ""
}

// Start relays in. wait > 0 asks the server to hold the answer up to
// that long (Prefer: wait, RFC 7240 §4.3) for the interaction to end.
func (r *Relay) Start(ctx context.Context, in Interaction, wait time.Duration) (RelayStatus, error) {
	body := map[string]any{"type": "interaction", "url": in.URL, "code": in.Code}
	if in.Description != "" {
		body["description"] = in.Description
	}
	if in.MaxWait > 0 {
		body["max_wait"] = int(in.MaxWait / time.Second)
	}
	if in.CanInteract {
		body["capabilities"] = []string{"interaction"}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return RelayStatus{}, err
	}
	return r.do(ctx, http.MethodPost, r.Endpoint, b, wait)
}

// Poll asks for the state at location (a Location Start or Poll
// answered), holding up to wait.
func (r *Relay) Poll(ctx context.Context, location string, wait time.Duration) (RelayStatus, error) {
	if err := r.sameOrigin(location); err != nil {
		return RelayStatus{}, err
	}
	return r.do(ctx, http.MethodGet, location, nil, wait)
}

// Wait polls location until the interaction ends: the completed status,
// or the error that ended it (denied, expired, ...). It waits Retry-After
// between polls (and after a slow_down) and holds each poll up to hold.
func (r *Relay) Wait(ctx context.Context, location string, hold time.Duration) (RelayStatus, error) {
	for {
		st, err := r.Poll(ctx, location, hold)
		var e *RelayError
		switch {
		case err == nil && st.Done():
			return st, nil
		case err == nil:
			if st.Location != "" {
				if err := r.sameOrigin(st.Location); err != nil {
					return st, err
				}
				location = st.Location
			}
			if err := r.sleep(ctx, st.RetryAfter); err != nil {
				return st, err
			}
		case errors.As(err, &e) && e.Response.Error == "slow_down":
			if err := r.sleep(ctx, e.RetryAfter); err != nil {
				return st, err
			}
		default:
			return st, err
		}
	}
}

// Cancel withdraws the interaction at location (DELETE; the app stops
// showing it).
func (r *Relay) Cancel(ctx context.Context, location string) error {
	if err := r.sameOrigin(location); err != nil {
		return err
	}
	_, err := r.do(ctx, http.MethodDelete, location, nil, 0)
	return err
}

// sameOrigin refuses a location on another origin than the endpoint:
// the access token and its proofs go to the server that issued the
// Location only (AAuth: Location is same-origin).
func (r *Relay) sameOrigin(location string) error {
	e, err1 := url.Parse(r.Endpoint)
	l, err2 := url.Parse(location)
	if err1 != nil || err2 != nil || e.Scheme != l.Scheme || !strings.EqualFold(e.Host, l.Host) || l.User != nil {
		return fmt.Errorf("sdk: relay: location %q is not on the endpoint's origin", location)
	}
	return nil
}

func (r *Relay) do(ctx context.Context, method, target string, body []byte, wait time.Duration) (RelayStatus, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return RelayStatus{}, err
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	htu, _, _ := strings.Cut(target, "?")
	proof, err := r.DPoP.ProofAt(method, htu, r.AccessToken, now())
	if err != nil {
		return RelayStatus{}, err
	}
	req.Header.Set("Authorization", "DPoP "+r.AccessToken)
	req.Header.Set("DPoP", proof)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if wait >= time.Second {
		req.Header.Set("Prefer", "wait="+strconv.Itoa(int(wait/time.Second)))
	}
	hc := r.HTTP
	if hc == nil {
		hc = NewHTTPClient()
	}
	resp, err := hc.Do(req)
	if err != nil {
		return RelayStatus{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return RelayStatus{}, err
	}
	retry := time.Duration(0)
	if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && n > 0 {
		retry = time.Duration(n) * time.Second
	}
	switch resp.StatusCode {
	case http.StatusNoContent:
		return RelayStatus{}, nil
	case http.StatusOK, http.StatusAccepted:
		var st RelayStatus
		var out struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal(raw, &out); err != nil || out.Status == "" {
			return st, fmt.Errorf("sdk: relay: HTTP %d without a status", resp.StatusCode)
		}
		st.Status, st.RetryAfter = out.Status, retry
		if resp.StatusCode == http.StatusAccepted {
			st.Location = resp.Header.Get("Location")
			if st.Location == "" {
				return st, errors.New("sdk: relay: 202 without Location")
			}
		}
		return st, nil
	}
	var out Response
	if err := json.Unmarshal(raw, &out); err != nil || out.Error == "" {
		return RelayStatus{}, fmt.Errorf("sdk: relay: HTTP %d without an error body", resp.StatusCode)
	}
	out.Status = resp.StatusCode
	return RelayStatus{}, &RelayError{Err: &Err{Response: out}, RetryAfter: retry}
}

func (r *Relay) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		d = time.Second
	}
	if r.Sleep != nil {
		return r.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
