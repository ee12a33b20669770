package uq

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/netguard"
)

// recorder is a notification endpoint on 127.0.0.1 answering statuses
// in turn (the last repeats) and recording what it got.
type recorder struct {
	mu       sync.Mutex
	statuses []int
	hits     int
	auth     []string
	bodies   []map[string]any
	ctype    []string
	hang     bool // first request hangs until the client gives up
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.hits++
	n := r.hits
	b, _ := io.ReadAll(req.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	r.bodies = append(r.bodies, m)
	r.auth = append(r.auth, req.Header.Get("Authorization"))
	r.ctype = append(r.ctype, req.Header.Get("Content-Type"))
	st := r.statuses[min(n, len(r.statuses))-1]
	hang := r.hang && n == 1
	r.mu.Unlock()
	if hang {
		<-req.Context().Done()
		return
	}
	if st >= 300 && st < 400 {
		w.Header().Set("Location", "http://127.0.0.1:1/elsewhere")
	}
	w.WriteHeader(st)
	_, _ = w.Write([]byte("ack body that must be ignored {{{"))
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hits
}

func newRecorder(t *testing.T, statuses ...int) (*recorder, *httptest.Server) {
	rec := &recorder{statuses: statuses}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	return rec, srv
}

// fakeSleep records the waits and never sleeps.
type fakeSleep struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (f *fakeSleep) sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	f.waits = append(f.waits, d)
	f.mu.Unlock()
	return ctx.Err()
}

func loopbackNotifier(fs *fakeSleep) *Notifier {
	return &Notifier{Guard: netguard.Options{AllowLoopback: true, Timeout: 2 * time.Second}, Sleep: fs.sleep}
}

// TestNotifyDelivery: a POST of JSON with the Bearer token; 2xx ends it
// whatever the ack body; 5xx and timeouts are retried with backoff up to
// 3 attempts in all; 4xx and redirects fail at once (the redirect target
// is never contacted).
func TestNotifyDelivery(t *testing.T) {
	cases := []struct {
		name     string
		statuses []int
		hang     bool
		attempts int
		waits    []time.Duration
		status   int // of the NotifyError; 0 = success
	}{
		{"200 at once", []int{200}, false, 1, nil, 0},
		{"204 at once", []int{204}, false, 1, nil, 0},
		{"500, 500, 200", []int{500, 500, 200}, false, 3, []time.Duration{time.Second, 2 * time.Second}, 0},
		{"503 three times", []int{503}, false, 3, []time.Duration{time.Second, 2 * time.Second}, 503},
		{"timeout then 200", []int{200}, true, 2, []time.Duration{time.Second}, 0},
		{"400 not retried", []int{400}, false, 1, nil, 400},
		{"401 not retried", []int{401}, false, 1, nil, 401},
		{"302 not followed", []int{302}, false, 1, nil, 302},
		{"307 not followed", []int{307}, false, 1, nil, 307},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec, srv := newRecorder(t, tc.statuses...)
			rec.hang = tc.hang
			fs := &fakeSleep{}
			n := loopbackNotifier(fs)
			if tc.hang {
				n.Guard.Timeout = 200 * time.Millisecond
			}
			err := n.Notify(context.Background(), srv.URL+"/cb", goodToken, SuccessNotification("eyJ.a.b"))
			require.Equal(t, tc.attempts, rec.count())
			require.Equal(t, tc.waits, fs.waits)
			for i := range rec.count() {
				require.Equal(t, "Bearer "+goodToken, rec.auth[i])
				require.Equal(t, "application/json", rec.ctype[i])
			}
			if !tc.hang {
				require.Equal(t, map[string]any{"user_statement_token": "eyJ.a.b"}, rec.bodies[0])
			}
			if tc.status == 0 {
				require.NoError(t, err)
				return
			}
			var ne *NotifyError
			require.ErrorAs(t, err, &ne)
			require.ErrorIs(t, err, ErrNotifyFailed)
			require.Equal(t, tc.attempts, ne.Attempts)
			require.Equal(t, tc.status, ne.Status)
			require.NotContains(t, err.Error(), goodToken)
		})
	}
}

// TestNotifyErrorBody: the error notification carries question_id with
// the RFC 6749 §5.2 members (-10 §4.3.2).
func TestNotifyErrorBody(t *testing.T) {
	rec, srv := newRecorder(t, 200)
	n := loopbackNotifier(&fakeSleep{})
	e := NewError(ErrUserRefusedToAnswer, "the user declined")
	require.NoError(t, n.Notify(context.Background(), srv.URL, goodToken, ErrorNotification("q-1", e)))
	require.Equal(t, map[string]any{"question_id": "q-1", "error": "user_refused_to_answer", "error_description": "the user declined"}, rec.bodies[0])
}

// TestNotifySSRF: refused destinations are never contacted and never
// retried: http to a public host, private and metadata IP literals,
// loopback without the test seam, a name resolving to a private address
// (dial-time check), userinfo; plus refusals of a bad token or body
// before any request.
func TestNotifySSRF(t *testing.T) {
	rec, srv := newRecorder(t, 200)
	fakeDNS := func(_ context.Context, host string) ([]net.IP, error) {
		return []net.IP{net.ParseIP("10.1.2.3")}, nil
	}
	cases := []struct {
		name     string
		n        *Notifier
		endpoint string
		token    string
		note     Notification
		guard    bool // refusal comes from netguard
	}{
		{"http public host", loopbackNotifier(&fakeSleep{}), "http://client.example.com/cb", goodToken, SuccessNotification("x"), true},
		{"private IP", loopbackNotifier(&fakeSleep{}), "https://10.0.0.7/cb", goodToken, SuccessNotification("x"), true},
		{"metadata IP", loopbackNotifier(&fakeSleep{}), "https://169.254.169.254/latest", goodToken, SuccessNotification("x"), true},
		{"IPv6 ULA", loopbackNotifier(&fakeSleep{}), "https://[fd00::1]/cb", goodToken, SuccessNotification("x"), true},
		{"loopback in production", &Notifier{Sleep: (&fakeSleep{}).sleep}, srv.URL, goodToken, SuccessNotification("x"), true},
		{"name resolving to private", &Notifier{Client: netguard.Client(netguard.Options{LookupIP: fakeDNS}), Sleep: (&fakeSleep{}).sleep}, "https://client.example.com/cb", goodToken, SuccessNotification("x"), true},
		{"userinfo", loopbackNotifier(&fakeSleep{}), "https://u:p@client.example.com/cb", goodToken, SuccessNotification("x"), true},
		{"short token", loopbackNotifier(&fakeSleep{}), srv.URL, "short", SuccessNotification("x"), false},
		{"header-injecting token", loopbackNotifier(&fakeSleep{}), srv.URL, goodToken + "\r\nX: y", SuccessNotification("x"), false},
		{"error without question_id", loopbackNotifier(&fakeSleep{}), srv.URL, goodToken, Notification{Error: "timeout"}, false},
		{"empty notification", loopbackNotifier(&fakeSleep{}), srv.URL, goodToken, Notification{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := rec.count()
			err := tc.n.Notify(context.Background(), tc.endpoint, tc.token, tc.note)
			require.ErrorIs(t, err, ErrNotifyFailed)
			require.Equal(t, tc.guard, errors.Is(err, netguard.ErrForbidden), "%v", err)
			var ne *NotifyError
			require.ErrorAs(t, err, &ne)
			require.LessOrEqual(t, ne.Attempts, 1)
			require.Equal(t, before, rec.count(), "the endpoint was contacted")
		})
	}
}

// TestNotifyCancel: a cancelled context stops the retries.
func TestNotifyCancel(t *testing.T) {
	rec, srv := newRecorder(t, 500)
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	n := &Notifier{Guard: netguard.Options{AllowLoopback: true}, Sleep: func(ctx context.Context, d time.Duration) error {
		calls.Add(1)
		cancel()
		return ctx.Err()
	}}
	err := n.Notify(ctx, srv.URL, goodToken, SuccessNotification("x"))
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, 1, rec.count())
	require.Equal(t, int32(1), calls.Load())
}
