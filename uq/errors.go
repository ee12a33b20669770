package uq

import (
	"fmt"
	"net/http"
	"time"
)

// Error is a User Questioning error (-10 §4.1.4, §4.2.5, §4.3.2): the
// RFC 6749 §5.2 members plus the HTTP status the endpoint answers with.
// Description never carries personal data or request values (a later
// caller may log it). It matches the sentinel of its code with errors.Is,
// so callers can branch without string compares:
//
//	errors.Is(err, uq.ErrHighRateQuestion)
type Error struct {
	// Code is the error code (RFC 6749 §5.2 "error").
	Code string
	// Description is human-readable ASCII (RFC 6749 §5.2
	// "error_description").
	Description string
	// Status is the HTTP status: 400 for every UQ code (-10 has no 401 or
	// 429; fedas keeps that for interop), 500 for server_error, 503 for
	// temporarily_unavailable.
	Status int
	// RetryAfter, when positive, is how long the client should wait
	// (sent as Retry-After, rounded up to whole seconds; fedas adds it to
	// the rate-limit codes, which -10 leaves without).
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Description == "" {
		return "uq: " + e.Code
	}
	return "uq: " + e.Code + ": " + e.Description
}

// Is makes errors.Is(err, ErrXxx) hold for every *Error with ErrXxx's
// code, whatever its description.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Body is the JSON error object (RFC 6749 §5.2) of an endpoint's error
// response (the push carries it in a Notification, with question_id).
type Body struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
	ErrorURI         string `json:"error_uri,omitempty"`
}

// Body returns the error's JSON object.
func (e *Error) Body() Body {
	return Body{Error: e.Code, ErrorDescription: e.Description}
}

// The error codes of -10 (request endpoint §4.1.4, polling endpoint
// §4.2.5, notification §4.3.2, codes defined in §5) and the two that
// fedas adds. The trigger of each is its sentinel's comment.
const (
	CodeInvalidRequest         = "invalid_request"
	CodeNoSuitableMethod       = "no_suitable_method"
	CodeUnauthorized           = "unauthorized"
	CodeUnknownUser            = "unknown_user"
	CodeUnreachableUser        = "unreachable_user"
	CodeDuplicateRequests      = "duplicate_requests"
	CodeForbidden              = "forbidden"
	CodeHighRateClient         = "high_rate_client"
	CodeHighRateQuestion       = "high_rate_question"
	CodeInvalidQuestionID      = "invalid_question_id"
	CodeTimeout                = "timeout"
	CodeUserRefusedToAnswer    = "user_refused_to_answer"
	CodeServerError            = "server_error"
	CodeTemporarilyUnavailable = "temporarily_unavailable"
)

// Sentinels, one per code, each with its status (the one table: Codes).
var (
	// ErrInvalidRequest: malformed body, a member missing, of the wrong
	// type or over a limit, user_id with a user-bound token or without a
	// client token, client_notification_token against the registration.
	ErrInvalidRequest = &Error{Code: CodeInvalidRequest, Status: http.StatusBadRequest}
	// ErrNoSuitableMethod: the OP cannot meet wished_acr / wished_amr.
	ErrNoSuitableMethod = &Error{Code: CodeNoSuitableMethod, Status: http.StatusBadRequest}
	// ErrUnauthorized: the access token is missing, invalid or lacks the
	// question scope; or it belongs to another client than the question.
	// 400, not RFC 6750's 401: -10 answers every error with 400.
	ErrUnauthorized = &Error{Code: CodeUnauthorized, Status: http.StatusBadRequest}
	// ErrUnknownUser: user_id names no user (may be folded into
	// unreachable_user against enumeration).
	ErrUnknownUser = &Error{Code: CodeUnknownUser, Status: http.StatusBadRequest}
	// ErrUnreachableUser: the user has no working channel.
	ErrUnreachableUser = &Error{Code: CodeUnreachableUser, Status: http.StatusBadRequest}
	// ErrDuplicateRequests: a newer poll for the same question arrived;
	// the older one gets this (PollGate.Superseded).
	ErrDuplicateRequests = &Error{Code: CodeDuplicateRequests, Status: http.StatusBadRequest}
	// ErrForbidden: a client registered for Pushed-To-Client polled.
	ErrForbidden = &Error{Code: CodeForbidden, Status: http.StatusBadRequest}
	// ErrHighRateClient: the client polls or asks too fast across all its
	// questions (PollGate).
	ErrHighRateClient = &Error{Code: CodeHighRateClient, Status: http.StatusBadRequest}
	// ErrHighRateQuestion: one question is polled too fast (PollGate).
	ErrHighRateQuestion = &Error{Code: CodeHighRateQuestion, Status: http.StatusBadRequest}
	// ErrInvalidQuestionID: question_id is malformed, unknown, expired, or
	// another client's.
	ErrInvalidQuestionID = &Error{Code: CodeInvalidQuestionID, Status: http.StatusBadRequest}
	// ErrTimeout: the user did not answer in time.
	ErrTimeout = &Error{Code: CodeTimeout, Status: http.StatusBadRequest}
	// ErrUserRefusedToAnswer: the user declined the question.
	ErrUserRefusedToAnswer = &Error{Code: CodeUserRefusedToAnswer, Status: http.StatusBadRequest}
	// ErrServerError: an internal fault (500).
	ErrServerError = &Error{Code: CodeServerError, Status: http.StatusInternalServerError}
	// ErrTemporarilyUnavailable: a dependency (Redis) is down (503 with
	// Retry-After, as every fedas endpoint).
	ErrTemporarilyUnavailable = &Error{Code: CodeTemporarilyUnavailable, Status: http.StatusServiceUnavailable}
)

// Codes is the one table of every error code this package knows, in the
// order of the documentation, each with its status.
var Codes = []*Error{
	ErrInvalidRequest, ErrNoSuitableMethod, ErrUnauthorized, ErrUnknownUser,
	ErrUnreachableUser, ErrDuplicateRequests, ErrForbidden, ErrHighRateClient,
	ErrHighRateQuestion, ErrInvalidQuestionID, ErrTimeout, ErrUserRefusedToAnswer,
	ErrServerError, ErrTemporarilyUnavailable,
}

// Status returns the HTTP status of code (400 for a code not in Codes:
// an extension code is still a client-visible UQ error).
func Status(code string) int {
	for _, e := range Codes {
		if e.Code == code {
			return e.Status
		}
	}
	return http.StatusBadRequest
}

// NewError returns an *Error of the sentinel's code and status with a
// description (format and args must not carry personal data).
func NewError(sentinel *Error, format string, args ...any) *Error {
	d := format
	if len(args) > 0 {
		d = fmt.Sprintf(format, args...)
	}
	return &Error{Code: sentinel.Code, Status: sentinel.Status, Description: d, RetryAfter: sentinel.RetryAfter}
}

func invalid(format string, args ...any) *Error { return NewError(ErrInvalidRequest, format, args...) }
