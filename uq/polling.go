package uq

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultMaxHold caps a long poll: below the 30 s idle timeout of
// common proxies and load balancers.
const DefaultMaxHold = 25 * time.Second

// maxTimeoutHeader bounds the header value we parse (a day); anything
// longer is still a valid number but clamps to the hold cap anyway.
const maxTimeoutHeader = 86400

// Hold returns how long a poll may be held open (-10 §4.2.1): the client
// says how many seconds it will wait in a Client_timeout header (the -10
// spelling) or Client-Timeout (the spelling some implementations use;
// nginx drops underscore headers by default), and we answer one second
// before it gives up, at most maxHold (DefaultMaxHold when ≤ 0). No
// header → 0 (answer at once). A value that is not a non-negative
// integer, or the two spellings disagreeing, is invalid_request.
func Hold(h http.Header, maxHold time.Duration) (time.Duration, error) {
	if maxHold <= 0 {
		maxHold = DefaultMaxHold
	}
	var vals []string
	for k, vs := range h {
		if strings.EqualFold(k, "Client-Timeout") || strings.EqualFold(k, "Client_timeout") {
			vals = append(vals, vs...)
		}
	}
	if len(vals) == 0 {
		return 0, nil
	}
	v := strings.TrimSpace(vals[0])
	for _, o := range vals[1:] {
		if strings.TrimSpace(o) != v {
			return 0, invalid("the Client-Timeout headers disagree")
		}
	}
	if v == "" || len(v) > 6 || strings.TrimLeft(v, "0123456789") != "" {
		return 0, invalid("Client-Timeout must be a whole number of seconds")
	}
	n, _ := strconv.Atoi(v)
	n = min(n, maxTimeoutHeader)
	hold := time.Duration(n)*time.Second - time.Second
	return max(0, min(hold, maxHold)), nil
}

// questionIDBytes: 256 bits, well over the 128 bits RFC 6749 §10.10 asks
// of a value that must not be guessed (a question_id is also checked
// against its client, but must not be enumerable).
const questionIDBytes = 32

// NewQuestionID returns a fresh question_id (-10 §4.1.3): 32 random bytes,
// base64url without padding (43 characters).
func NewQuestionID() string {
	b := make([]byte, questionIDBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ValidQuestionID reports whether s has the shape NewQuestionID makes, so
// the polling endpoint answers invalid_question_id for garbage before any
// lookup (and a storage key never holds arbitrary bytes).
func ValidQuestionID(s string) bool {
	if len(s) != base64.RawURLEncoding.EncodedLen(questionIDBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil
}

// PollGate decides, without storage, whether a poll is admitted (-10
// §4.2.5): the caller loads a PollState, calls Admit, stores the returned
// state (atomically, e.g. one Lua script), and while it holds the poll
// open asks Superseded with the generation it was given.
type PollGate struct {
	// QuestionInterval is the least time between two polls of one
	// question, from request start (-11 asks clients for at least 1 s);
	// faster → high_rate_question. Zero means 1 s.
	QuestionInterval time.Duration
	// ClientWindow and ClientLimit bound a client's polls across all its
	// questions: at most ClientLimit per fixed window (default 60
	// per minute); more → high_rate_client. Zero values mean 1 min and 60.
	ClientWindow time.Duration
	ClientLimit  int
}

// PollState is the numbers the caller stores: per question, the poll
// generation and the last admitted poll's start; per client, the current
// window's start and count.
type PollState struct {
	Generation        uint64
	LastQuestionPoll  time.Time
	ClientWindowStart time.Time
	ClientCount       int
}

func (g PollGate) questionInterval() time.Duration {
	if g.QuestionInterval > 0 {
		return g.QuestionInterval
	}
	return time.Second
}

func (g PollGate) clientWindow() (time.Duration, int) {
	w, n := g.ClientWindow, g.ClientLimit
	if w <= 0 {
		w = time.Minute
	}
	if n <= 0 {
		n = 60
	}
	return w, n
}

// Admit decides on a poll starting at now given the stored state. On
// success it returns the state to store, whose Generation is this poll's
// ticket for Superseded. A refused poll changes nothing (the caller
// stores nothing): a too-fast poll does not push the next allowed time
// further out. The client limit is checked first: a flooding client is
// told so even on a question it has not polled yet. Errors carry
// RetryAfter.
func (g PollGate) Admit(now time.Time, st PollState) (PollState, error) {
	w, limit := g.clientWindow()
	next := st
	if st.ClientWindowStart.IsZero() || !now.Before(st.ClientWindowStart.Add(w)) || now.Before(st.ClientWindowStart) {
		next.ClientWindowStart, next.ClientCount = now, 0
	}
	if next.ClientCount >= limit {
		e := NewError(ErrHighRateClient, "more than %d polls per %s by this client", limit, w)
		e.RetryAfter = next.ClientWindowStart.Add(w).Sub(now)
		return st, e
	}
	qi := g.questionInterval()
	if !st.LastQuestionPoll.IsZero() && now.Sub(st.LastQuestionPoll) < qi && !now.Before(st.LastQuestionPoll) {
		e := NewError(ErrHighRateQuestion, "poll a question at most once per %s", qi)
		e.RetryAfter = st.LastQuestionPoll.Add(qi).Sub(now)
		return st, e
	}
	next.ClientCount++
	next.LastQuestionPoll = now
	next.Generation = st.Generation + 1
	return next, nil
}

// Superseded returns duplicate_requests when a newer poll of the same
// question was admitted (current, the stored generation, is past mine):
// -10 §4.2.5 serves the newest request and answers the older ones with
// this error. nil means the poll may go on holding.
func (PollGate) Superseded(mine, current uint64) error {
	if current > mine {
		return NewError(ErrDuplicateRequests, "a newer poll for this question was received")
	}
	return nil
}

// RetryAfterSeconds is d as a Retry-After value: whole seconds, rounded
// up, at least 1.
func RetryAfterSeconds(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	return strconv.FormatInt(max(s, 1), 10)
}
