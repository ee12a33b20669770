package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/reach/wake"
	"github.com/fedas/fedas/storage"
)

// The device's inbox (docs/reach.md "App API"): a long poll (GET
// /reach/inbox?wait=N&after=CURSOR) or an event stream (GET
// /reach/inbox/events, Last-Event-ID). Either marks the device present,
// which is what makes the inbox channel deliver to it; both wait on the
// device's inbox topic through the instance's wake hub (no Redis
// connection per waiter; docs/reach.md "Scale-out").

// Event stream bounds: a comment line every sseHeartbeat keeps proxies
// and the presence alive; a stream ends after sseMaxAge (the app
// reconnects with Last-Event-ID), within the write deadline it extends.
const (
	sseHeartbeat = 15 * time.Second
	sseMaxAge    = 5 * time.Minute
)

// inboxEntry is one inbox entry as the app reads it: the entry id (the
// cursor) and the content-free task reference (reach.TaskRef).
type inboxEntry struct {
	ID   string     `json:"id"`
	Task string     `json:"task"`
	Kind reach.Kind `json:"kind"`
}

// inboxPage is the long poll's answer: the entries after the cursor and
// the cursor to send next.
type inboxPage struct {
	Entries []inboxEntry `json:"entries"`
	Next    string       `json:"next"`
}

func toInboxEntries(es []storage.InboxEntry) []inboxEntry {
	out := make([]inboxEntry, 0, len(es))
	for _, e := range es {
		var ref reach.TaskRef
		if json.Unmarshal(e.Data, &ref) != nil || !reach.ValidID(ref.ID) {
			continue // not a task reference: nothing the app can open
		}
		out = append(out, inboxEntry{ID: e.ID, Task: ref.ID, Kind: ref.Kind})
	}
	return out
}

// inboxGen is the per-instance generation of a device's long polls: a
// newer poll of the same device supersedes the one this instance holds
// (it answers at once with no entries), so an app that reconnects never
// leaves an older poll holding its slot. Across instances the older
// poll ends with its hold (docs/reach.md "App API").
type inboxGen struct {
	n       uint64
	holders int
}

type inboxGenKey struct {
	s   *Server
	dev string
}

var (
	inboxGensMu sync.Mutex
	inboxGens   = map[inboxGenKey]*inboxGen{}
)

// enterInbox starts a poll of dev: it bumps the device's generation and
// returns the check "was I superseded?", the release, and whether an
// older poll of the device is held here (then it is to be woken).
func (s *Server) enterInbox(dev string) (superseded func() bool, release func(), older bool) {
	k := inboxGenKey{s, dev}
	inboxGensMu.Lock()
	g := inboxGens[k]
	if g == nil {
		g = &inboxGen{}
		inboxGens[k] = g
	}
	g.n++
	g.holders++
	mine, older := g.n, g.holders > 1
	inboxGensMu.Unlock()
	superseded = func() bool {
		inboxGensMu.Lock()
		defer inboxGensMu.Unlock()
		return g.n != mine
	}
	release = func() {
		inboxGensMu.Lock()
		defer inboxGensMu.Unlock()
		g.holders--
		if g.holders == 0 && inboxGens[k] == g {
			delete(inboxGens, k)
		}
	}
	return superseded, release, older
}

// dropInboxGen forgets a deleted device's generation (its polls end with
// their hold or the not-found of their next read).
func (s *Server) dropInboxGen(dev string) {
	inboxGensMu.Lock()
	defer inboxGensMu.Unlock()
	if g := inboxGens[inboxGenKey{s, dev}]; g != nil {
		g.n++
	}
}

// inboxDevice is the common start of both inbox endpoints: the caller,
// its device, the cursor (validated as the stores parse it) and presence
// set.
func (s *Server) inboxDevice(c echo.Context, cursor string) (reach.Device, error) {
	ctx := c.Request().Context()
	ac, err := s.reachAppCaller(c)
	if err != nil {
		return reach.Device{}, err
	}
	if _, _, err := storage.ParseInboxCursor(cursor); err != nil || len(cursor) > 41 {
		return reach.Device{}, errInvalidRequest("The inbox cursor is not one this server issued.")
	}
	dev, err := s.callerDevice(ctx, ac)
	if err != nil {
		return dev, err
	}
	if err := s.reach.store.SetPresence(ctx, dev.ID, storage.PresenceTTL); err != nil {
		return dev, err
	}
	return dev, nil
}

// reachInbox serves the inbox long poll. wait (seconds, default 0) is
// capped at reach.max_hold; the presence set at the start outlives the
// longest hold (storage.PresenceTTL 45 s > max_hold 25 s), so a device
// that polls again at once stays present.
func (s *Server) reachInbox(c echo.Context) error {
	q := c.QueryParams()
	after := q.Get("after")
	wait := time.Duration(0)
	if w := q.Get("wait"); w != "" {
		n, err := strconv.Atoi(w)
		if err != nil || n < 0 || len(q["wait"]) > 1 || len(w) > 6 {
			return s.writeError(c, errInvalidRequest("wait must be a number of seconds."))
		}
		wait = min(time.Duration(n)*time.Second, s.reach.cfg.MaxHold)
	}
	if len(q["after"]) > 1 {
		return s.writeError(c, errInvalidRequest("Send after at most once."))
	}
	dev, err := s.inboxDevice(c, after)
	if err != nil {
		return s.reachError(c, err)
	}
	superseded, release, older := s.enterInbox(dev.ID)
	defer release()
	topic := reach.InboxTopic(dev.ID)
	if older {
		// Wake the poll this one supersedes (the notification reaches
		// every instance; elsewhere waiters only re-read).
		_ = s.reach.hub.Notify(c.Request().Context(), topic)
	}
	var got []storage.InboxEntry
	check := func(ctx context.Context) (bool, error) {
		if superseded() {
			got = nil
			return true, nil
		}
		es, err := s.reach.store.ReadInbox(ctx, dev.ID, after, storage.MaxInboxRead)
		if err != nil {
			return false, err
		}
		got = es
		return len(es) > 0, nil
	}
	if wait <= 0 {
		_, err = check(c.Request().Context())
	} else {
		ctx, cancel := holdContext(c, wait)
		err = s.reach.hub.Wait(ctx, topic, check)
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, wake.ErrClosed) {
			err = nil // the hold is over: what was read last stands
		}
		cancel()
	}
	if err != nil {
		return s.reachError(c, err)
	}
	if superseded() {
		got = nil
	}
	page := inboxPage{Entries: toInboxEntries(got), Next: after}
	if len(got) > 0 {
		page.Next = got[len(got)-1].ID
	}
	return writeJSON(c, http.StatusOK, page)
}

// reachInboxEvents serves the inbox as a Server-Sent Events stream
// (HTML Living Standard §9.2): one event per entry (id = the entry id,
// so a reconnect with Last-Event-ID resumes without loss or duplicate),
// a comment line every sseHeartbeat, and the end after sseMaxAge. The
// presence is renewed with the heartbeats while the stream is open.
func (s *Server) reachInboxEvents(c echo.Context) error {
	after := c.Request().Header.Get("Last-Event-ID")
	if len(c.Request().Header.Values("Last-Event-ID")) > 1 {
		return s.writeError(c, errInvalidRequest("Send Last-Event-ID at most once."))
	}
	dev, err := s.inboxDevice(c, after)
	if err != nil {
		return s.reachError(c, err)
	}
	// The first read before the stream starts, so that an outage is
	// still an error answer.
	first, err := s.reach.store.ReadInbox(c.Request().Context(), dev.ID, after, storage.MaxInboxRead)
	if err != nil {
		return s.reachError(c, err)
	}
	h := c.Response().Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	rc := http.NewResponseController(c.Response())
	// The server's WriteTimeout (30 s) would cut the stream: this one
	// extends its own deadline (real time: the connection's clock).
	_ = rc.SetWriteDeadline(time.Now().Add(sseMaxAge + 10*time.Second))
	c.Response().WriteHeader(http.StatusOK)
	w := c.Response()
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return nil
	}
	ctx, cancel := holdContext(c, sseMaxAge)
	defer cancel()
	topic := reach.InboxTopic(dev.ID)
	presence := time.Now()
	es := first
	for {
		for _, e := range toInboxEntries(es) {
			b, _ := json.Marshal(e)
			if _, err := fmt.Fprintf(w, "id: %s\nevent: task\ndata: %s\n\n", e.ID, b); err != nil {
				return nil
			}
		}
		if len(es) > 0 {
			after = es[len(es)-1].ID
		}
		if rc.Flush() != nil {
			return nil
		}
		if len(es) == storage.MaxInboxRead {
			es, err = s.reach.store.ReadInbox(ctx, dev.ID, after, storage.MaxInboxRead)
			if err != nil {
				return nil
			}
			continue
		}
		es = nil
		wctx, wcancel := context.WithTimeout(ctx, sseHeartbeat)
		err := s.reach.hub.Wait(wctx, topic, func(ctx context.Context) (bool, error) {
			got, err := s.reach.store.ReadInbox(ctx, dev.ID, after, storage.MaxInboxRead)
			if err != nil {
				return false, err
			}
			es = got
			return len(got) > 0, nil
		})
		wcancel()
		switch {
		case ctx.Err() != nil:
			return nil // the stream's age, or the app went away
		case errors.Is(err, context.DeadlineExceeded):
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil {
				return nil
			}
		case err != nil:
			return nil // the store or hub went down: the app reconnects
		}
		if time.Since(presence) >= sseHeartbeat {
			if s.reach.store.SetPresence(ctx, dev.ID, storage.PresenceTTL) == nil {
				presence = time.Now()
			}
		}
	}
}
