package admin

import (
	"errors"
	"net/http"
	"regexp"
	"strings"

	"github.com/fedas/fedas/config"
)

// Problem is one validation problem: Path is its path in the policy
// document as a config file would have it ("downstreams[2].issuer");
// Field is the path inside the resource being written ("issuer") when the
// problem is in that resource, so the console can show it beside the field.
type Problem struct {
	Path    string `json:"path,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Error is an admin API refusal: an RFC 6749 §5.2-style body (error,
// error_description) plus every problem found.
type Error struct {
	Status      int       `json:"-"`
	Code        string    `json:"error"`
	Description string    `json:"error_description"`
	Problems    []Problem `json:"problems,omitempty"`
	// RetryAfter (seconds) is sent as Retry-After with 503.
	RetryAfter int `json:"-"`
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Code + ": " + e.Description)
	for _, p := range e.Problems {
		b.WriteString("; ")
		if p.Path != "" {
			b.WriteString(p.Path + ": ")
		}
		b.WriteString(p.Message)
	}
	return b.String()
}

func errf(status int, code, desc string) *Error {
	return &Error{Status: status, Code: code, Description: desc}
}

var (
	errNotFound     = func(what string) *Error { return errf(http.StatusNotFound, "not_found", what+" does not exist") }
	errPrecondition = func() *Error {
		return errf(http.StatusPreconditionFailed, "precondition_failed", "the resource changed since it was read (If-Match does not match its ETag): read it again and reapply the change")
	}
	errNoIfMatch = func() *Error {
		return errf(http.StatusPreconditionRequired, "precondition_required", "send If-Match with the ETag you read, so that a concurrent change is never overwritten")
	}
	errUnavailable = func() *Error {
		return &Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: "the policy store is unavailable; nothing was changed", RetryAfter: 2}
	}
)

var problemPath = regexp.MustCompile(`^([a-z_]+(?:\[\d+\])?(?:\.[a-z_]+(?:\[\d+\])?)*): (.*)$`)

// validationError lists every problem of a refused policy (config.Compose
// joins them, each "path: message"). prefix ("downstreams[3]") marks the
// problems of the resource being written, whose Field is then set.
func validationError(err error, prefix string) *Error {
	e := &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: "the change was rejected whole: the resulting policy is invalid"}
	for _, line := range config.Problems(err) {
		p := Problem{Message: line}
		if m := problemPath.FindStringSubmatch(line); m != nil {
			p.Path, p.Message = m[1], m[2]
			if prefix != "" {
				switch {
				case p.Path == prefix:
					p.Field = "."
				case strings.HasPrefix(p.Path, prefix+"."):
					p.Field = strings.TrimPrefix(p.Path, prefix+".")
				}
			}
		}
		e.Problems = append(e.Problems, p)
	}
	return e
}

// prefixProblems prefixes a decode error's problems with path.
func prefixProblems(err error, path string) []Problem {
	var e *Error
	if !errors.As(err, &e) {
		return []Problem{{Path: path, Message: err.Error()}}
	}
	out := make([]Problem, 0, len(e.Problems))
	for _, p := range e.Problems {
		if p.Path != "" {
			p.Path = path + "." + p.Path
		} else {
			p.Path = path
		}
		out = append(out, p)
	}
	return out
}
