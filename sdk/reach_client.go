package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// ReachHooks complete a redirect_to_app on the user's other device (the
// cross-device redirect_to_app, docs/reach.md): when the answer carries
// reach_uri and no app on this device opens the deep link, the client
// asks the AS to reach the user, shows the number to pick (number
// matching), or — no device reachable (424 interaction_unavailable) — a QR
// code for our app to scan, and polls until the sign-in completes.
type ReachHooks struct {
	// ShowBindingCode shows the number the user must pick in the app on
	// their other device. An error aborts.
	ShowBindingCode func(ctx context.Context, code string) error
	// ShowQR shows deepLink as a QR code, with the number to pick, when
	// no device of the user could be reached. Nil: the 424 is returned as
	// an *Err.
	ShowQR func(ctx context.Context, deepLink, code string) error
	// Sleep waits d between polls (nil: a timer that honours ctx).
	Sleep func(ctx context.Context, d time.Duration) error
}

// maxReachPolls bounds a cross-device wait (task lifetimes are at most
// 10 minutes, polled at least a second apart).
const maxReachPolls = 600

func (c *Client) canReach(r Response) bool {
	return c.Reach != nil && r.ReachURI != "" && r.AuthSession != ""
}

func (h *ReachHooks) sleep(ctx context.Context, d time.Duration) error {
	if h.Sleep != nil {
		return h.Sleep(ctx, d)
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

// reachOther runs the cross-device sign-in for redirect_to_app r: POST
// reach_uri with the auth_session, show the number (202) or the QR code
// (424), poll Location honouring interval, Retry-After and slow_down, and
// return the rotated auth_session of the completed sign-in.
func (c *Client) reachOther(ctx context.Context, r Response) (string, error) {
	resp, body, err := c.postRaw(ctx, r.ReachURI, url.Values{"auth_session": {r.AuthSession}})
	if err != nil {
		return "", err
	}
	var rr Response
	if err := json.Unmarshal(body, &rr); err != nil {
		return "", fmt.Errorf("sdk: %s answered HTTP %d with non-JSON", r.ReachURI, resp.StatusCode)
	}
	rr.Status, rr.From = resp.StatusCode, r.ReachURI
	switch {
	case resp.StatusCode == http.StatusAccepted && c.Reach.ShowBindingCode != nil:
		err = c.Reach.ShowBindingCode(ctx, rr.BindingCode)
	case resp.StatusCode == http.StatusFailedDependency && rr.Error == "interaction_unavailable" && c.Reach.ShowQR != nil && rr.DeepLink != "":
		err = c.Reach.ShowQR(ctx, rr.DeepLink, rr.BindingCode)
	case resp.StatusCode == http.StatusAccepted:
	default:
		return "", &Err{rr}
	}
	if err != nil {
		return "", err
	}
	loc, err := resolve(r.ReachURI, resp.Header.Get("Location"))
	if err != nil {
		return "", err
	}
	wait := time.Duration(max(rr.Interval, 1)) * time.Second
	for i := 0; i < maxReachPolls; i++ {
		if err := c.Reach.sleep(ctx, wait); err != nil {
			return "", err
		}
		resp, body, err := c.getRaw(ctx, loc)
		if err != nil {
			return "", err
		}
		var p Response
		if err := json.Unmarshal(body, &p); err != nil {
			return "", fmt.Errorf("sdk: %s answered HTTP %d with non-JSON", loc, resp.StatusCode)
		}
		p.Status, p.From = resp.StatusCode, loc
		switch {
		case resp.StatusCode == http.StatusOK && p.AuthSession != "":
			return p.AuthSession, nil
		case resp.StatusCode == http.StatusAccepted, resp.StatusCode == http.StatusTooManyRequests && p.Error == "slow_down":
			// RFC 8628 §3.5-style pacing (docs/decisions.md Q26, Q28).
			if p.Interval > 0 {
				wait = time.Duration(p.Interval) * time.Second
			}
			if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && ra > 0 && time.Duration(ra)*time.Second > wait {
				wait = time.Duration(ra) * time.Second
			}
		default:
			return "", &Err{p}
		}
	}
	return "", errors.New("sdk: the cross-device sign-in did not complete")
}

// resolve makes Location absolute against the URL that answered.
func resolve(base, loc string) (string, error) {
	if loc == "" {
		return "", errors.New("sdk: cross-device answer without Location")
	}
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	l, err := url.Parse(loc)
	if err != nil {
		return "", err
	}
	return b.ResolveReference(l).String(), nil
}

// getRaw sends a GET with a DPoP proof for URLs of our own AS (send).
func (c *Client) getRaw(ctx context.Context, endpoint string) (*http.Response, []byte, error) {
	return c.send(ctx, http.MethodGet, endpoint, nil)
}
