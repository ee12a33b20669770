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

// ReachApp is the app side of reach (docs/reach.md "App API"): our own
// first-party app, signed in with a DPoP-bound access token (scope
// reach:device), registers its device, reads its inbox and answers the
// tasks delivered to it. Every request carries a fresh DPoP proof by
// DPoP, the key the token is bound to, which is also the device's
// identity (RFC 9449 §7).
type ReachApp struct {
	// HTTP sends the requests; its Timeout must exceed the longest
	// Inbox wait (NewHTTPClient's 10 s is shorter than max_hold).
	HTTP *http.Client
	// Meta is the AS's metadata (Issuer names the endpoints).
	Meta Metadata
	// DPoP is the device's key; AccessToken the DPoP-bound token.
	DPoP        *dpop.Key
	AccessToken string
	// DeviceID is this device's id, set by Register (Delete needs it).
	DeviceID string
}

// ReachChannel is one way to wake the device: "inbox"; "webhook" with its
// https URL; "apns" or "fcm" with the provider Token.
type ReachChannel struct {
	Type  string `json:"type"`
	URL   string `json:"url,omitempty"`
	Token string `json:"token,omitempty"`
}

// DeviceRegistration is what the app registers: a display name, its
// platform, the task kinds it can serve (app_auth, question,
// interaction) and its channels in the order to try them.
type DeviceRegistration struct {
	Name         string         `json:"name"`
	Platform     string         `json:"platform"`
	Capabilities []string       `json:"capabilities"`
	Channels     []ReachChannel `json:"channels"`
}

// Device is a registered device: its id and where it reads its inbox.
// New is false when the key was registered already (the registration
// updated).
type Device struct {
	ID        string `json:"device_id"`
	InboxURI  string `json:"inbox_uri"`
	EventsURI string `json:"events_uri"`
	New       bool   `json:"-"`
}

// InboxEntry is one content-free wake-up: the entry's id (a cursor), the
// task's id and kind. The app reads the task itself (Task).
type InboxEntry struct {
	ID   string `json:"id"`
	Task string `json:"task"`
	Kind string `json:"kind"`
}

// ReachTask is a task as the app shows it to the user: who asks
// (client), from where (Initiator: RFC 10027 §6.1.1), what (a question
// and its statements, an interaction URL to show but never open) and,
// for a cross-device sign-in, the numbers to offer (number matching).
type ReachTask struct {
	ID             string            `json:"id"`
	Kind           string            `json:"kind"`
	Status         string            `json:"status"`
	ExpiresIn      int               `json:"expires_in"`
	ClientID       string            `json:"client_id"`
	ClientName     string            `json:"client_name"`
	Initiator      *ReachInitiator   `json:"initiator,omitempty"`
	Question       string            `json:"question,omitempty"`
	Statements     []string          `json:"statements,omitempty"`
	WishedACR      string            `json:"wished_acr,omitempty"`
	WishedAMR      []string          `json:"wished_amr,omitempty"`
	Interaction    *ReachInteraction `json:"interaction,omitempty"`
	BindingChoices []int             `json:"binding_choices,omitempty"`
}

// ReachInitiator is the device that started a cross-device sign-in.
type ReachInitiator struct {
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	Location  string `json:"location,omitempty"`
}

// ReachInteraction is a relayed interaction.
type ReachInteraction struct {
	URL         string `json:"url"`
	Code        string `json:"code,omitempty"`
	Description string `json:"description,omitempty"`
}

// TaskAnswer is the user's answer to a task: Decision approve or deny
// (answer or deny for a question); BindingChoice the number the user
// picked (approve of app_auth); Statement the chosen statement (answer);
// AMR the local user verification used (RFC 8176 values).
type TaskAnswer struct {
	Decision      string   `json:"decision"`
	BindingChoice *int     `json:"binding_choice,omitempty"`
	Statement     string   `json:"statement,omitempty"`
	AMR           []string `json:"amr,omitempty"`
}

// BindingMismatch is the answer to a wrong number pick with picks left
// (error binding_mismatch): AttemptsLeft before the task fails.
// errors.As finds the *Err in it too.
type BindingMismatch struct {
	Err          *Err
	AttemptsLeft int
}

func (e *BindingMismatch) Error() string {
	return fmt.Sprintf("%s (%d attempts left)", e.Err.Error(), e.AttemptsLeft)
}

// Unwrap returns the RFC 6749 error.
func (e *BindingMismatch) Unwrap() error { return e.Err }

// ErrNoDevice: Delete without a registered device id.
var ErrNoDevice = errors.New("sdk: no device registered")

func (a *ReachApp) url(path string) string { return strings.TrimSuffix(a.Meta.Issuer, "/") + path }

// do sends one DPoP-authenticated request (htu is the URL without its
// query, RFC 9449 §4.2) and decodes a 2xx answer into out; any other
// status is an *Err with the RFC 6749 §5.2 members.
func (a *ReachApp) do(ctx context.Context, method, path string, query url.Values, in, out any) (int, error) {
	u := a.url(path)
	proof, err := a.DPoP.Proof(method, u, a.AccessToken)
	if err != nil {
		return 0, err
	}
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "DPoP "+a.AccessToken)
	req.Header.Set("DPoP", proof)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Response
			AttemptsLeft int `json:"attempts_left"`
		}
		_ = json.Unmarshal(raw, &e)
		e.Status = resp.StatusCode
		ee := &Err{e.Response}
		if e.Error == "binding_mismatch" {
			return resp.StatusCode, &BindingMismatch{Err: ee, AttemptsLeft: e.AttemptsLeft}
		}
		return resp.StatusCode, ee
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("sdk: reach: HTTP %d with a body that is not the expected JSON", resp.StatusCode)
		}
	}
	return resp.StatusCode, nil
}

// Register registers this device (POST /reach/devices) and remembers its
// id. Registering again with the same key updates the device (New
// false); the key registered under another account is an *Err
// "conflict"; one device too many is "access_denied".
func (a *ReachApp) Register(ctx context.Context, r DeviceRegistration) (Device, error) {
	var d Device
	st, err := a.do(ctx, http.MethodPost, "/reach/devices", nil, r, &d)
	if err != nil {
		return d, err
	}
	d.New = st == http.StatusCreated
	a.DeviceID = d.ID
	return d, nil
}

// Inbox long-polls the inbox (GET /reach/inbox) for up to wait (whole
// seconds; the server caps it at reach.max_hold) and returns the entries
// after the cursor after ("" = from the oldest kept) and the cursor to
// pass next. No entries is not an error: the hold passed, or a newer
// poll of this device took over.
func (a *ReachApp) Inbox(ctx context.Context, after string, wait time.Duration) ([]InboxEntry, string, error) {
	q := url.Values{"wait": {strconv.Itoa(int(wait / time.Second))}}
	if after != "" {
		q.Set("after", after)
	}
	var page struct {
		Entries []InboxEntry `json:"entries"`
		Next    string       `json:"next"`
	}
	_, err := a.do(ctx, http.MethodGet, "/reach/inbox", q, nil, &page)
	return page.Entries, page.Next, err
}

// Task reads a task delivered to this device (GET /reach/tasks/{id}).
func (a *ReachApp) Task(ctx context.Context, id string) (ReachTask, error) {
	var t ReachTask
	_, err := a.do(ctx, http.MethodGet, "/reach/tasks/"+url.PathEscape(id), nil, nil, &t)
	return t, err
}

// Ack tells the AS the app shows the task (POST /reach/tasks/{id}/ack:
// interacting); the task must be acked before it is answered.
func (a *ReachApp) Ack(ctx context.Context, id string) error {
	_, err := a.do(ctx, http.MethodPost, "/reach/tasks/"+url.PathEscape(id)+"/ack", nil, nil, nil)
	return err
}

// Scan takes a scanned QR code's or deep link's single-use ref (POST
// /reach/scan): the task is acked for this device and returned.
func (a *ReachApp) Scan(ctx context.Context, ref string) (ReachTask, error) {
	var t ReachTask
	_, err := a.do(ctx, http.MethodPost, "/reach/scan", nil, map[string]string{"ref": ref}, &t)
	return t, err
}

// Respond sends the user's answer (POST /reach/tasks/{id}/response) and
// returns the task's status (approved, denied, answered). A wrong number
// is a *BindingMismatch; the last wrong number, or this device's account
// not being the task's user, an *Err "access_denied".
func (a *ReachApp) Respond(ctx context.Context, id string, ans TaskAnswer) (string, error) {
	var out struct {
		Status string `json:"status"`
	}
	_, err := a.do(ctx, http.MethodPost, "/reach/tasks/"+url.PathEscape(id)+"/response", nil, ans, &out)
	return out.Status, err
}

// Delete deletes this device (DELETE /reach/devices/{id}), as the app
// does when the user signs out.
func (a *ReachApp) Delete(ctx context.Context) error {
	if a.DeviceID == "" {
		return ErrNoDevice
	}
	_, err := a.do(ctx, http.MethodDelete, "/reach/devices/"+url.PathEscape(a.DeviceID), nil, nil, nil)
	if err == nil {
		a.DeviceID = ""
	}
	return err
}
