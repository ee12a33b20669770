package uq

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestErrorTable: every UQ code has its -10 status (400, unauthorized
// and the rate limits included) and fedas's two (500, 503); an
// *Error matches its sentinel, and only it, through wrapping.
func TestErrorTable(t *testing.T) {
	want := map[string]int{
		"invalid_request": 400, "no_suitable_method": 400, "unauthorized": 400,
		"unknown_user": 400, "unreachable_user": 400, "duplicate_requests": 400,
		"forbidden": 400, "high_rate_client": 400, "high_rate_question": 400,
		"invalid_question_id": 400, "timeout": 400, "user_refused_to_answer": 400,
		"server_error": 500, "temporarily_unavailable": 503,
	}
	require.Len(t, Codes, len(want))
	for _, s := range Codes {
		t.Run(s.Code, func(t *testing.T) {
			st, ok := want[s.Code]
			require.True(t, ok, "unexpected code")
			require.Equal(t, st, s.Status)
			require.Equal(t, st, Status(s.Code))
			e := NewError(s, "because %d", 1)
			require.Equal(t, "because 1", e.Description)
			wrapped := fmt.Errorf("ctx: %w", e)
			require.ErrorIs(t, wrapped, s)
			for _, o := range Codes {
				if o != s {
					require.False(t, errors.Is(wrapped, o), "matches %s", o.Code)
				}
			}
			require.Equal(t, Body{Error: s.Code, ErrorDescription: "because 1"}, e.Body())
		})
	}
	require.Equal(t, http.StatusBadRequest, Status("some_extension"))
}
