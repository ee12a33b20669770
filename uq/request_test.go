package uq

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const goodToken = "vO4n2DAeRrcWE0VAlo4I-abc" // 24 b64token chars

// body builds a request body from a base and overrides (nil value =
// delete the member).
func body(tb testing.TB, over map[string]any) []byte {
	tb.Helper()
	m := map[string]any{
		"question_to_display":   "Do you allow a payment of 10 EUR to Shop?",
		"statements_to_display": []string{"Yes", "No"},
		"wished_acr":            "3",
	}
	for k, v := range over {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	require.NoError(tb, err)
	return b
}

// TestParseRequestAccepts: valid bodies for each caller shape parse to
// the values sent.
func TestParseRequestAccepts(t *testing.T) {
	client := map[string]any{"user_id": "+33612345678", "user_id_type": "msisdn"}
	cases := []struct {
		name string
		ctx  Context
		over map[string]any
		want func(*testing.T, *Request)
	}{
		{"user-bound pull", Context{UserBound: true}, nil, func(t *testing.T, r *Request) {
			require.Equal(t, []string{"Yes", "No"}, r.StatementsToDisplay)
			require.Empty(t, r.UserID)
			require.Nil(t, r.WishedAMR)
		}},
		{"client token msisdn", Context{}, client, func(t *testing.T, r *Request) {
			require.Equal(t, "+33612345678", r.UserID)
			require.Equal(t, UserIDMSISDN, r.UserIDType)
		}},
		{"client token email", Context{}, map[string]any{"user_id": "a.b@example.com", "user_id_type": "email"}, nil},
		{"client token sub", Context{}, map[string]any{"user_id": "g117YBtCZO3mAKPQKP8o", "user_id_type": "sub"}, nil},
		{"push with token", Context{UserBound: true, Push: true}, map[string]any{"client_notification_token": goodToken}, func(t *testing.T, r *Request) {
			require.Equal(t, goodToken, r.ClientNotificationToken)
		}},
		{"wished_amr kept in order", Context{UserBound: true}, map[string]any{"wished_amr": []string{"hwk", "pin"}}, func(t *testing.T, r *Request) {
			require.Equal(t, []string{"hwk", "pin"}, r.WishedAMR)
		}},
		{"unknown member ignored", Context{UserBound: true}, map[string]any{"future_member": map[string]any{"x": 1}}, nil},
		{"null counts as absent", Context{UserBound: true}, map[string]any{"wished_amr": json.RawMessage("null")}, nil},
		{"five statements, 64 chars each", Context{UserBound: true}, map[string]any{"statements_to_display": []string{
			strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("c", 64), strings.Repeat("d", 64), strings.Repeat("é", 64)}}, nil},
		{"256-char question with newline", Context{UserBound: true}, map[string]any{"question_to_display": "Q\n" + strings.Repeat("ü", 254)}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRequest(body(t, tc.over), tc.ctx)
			require.NoError(t, err)
			if tc.want != nil {
				tc.want(t, r)
			}
		})
	}
}

// TestParseRequestRefuses: every validation rule refuses with
// invalid_request (400), and the description never echoes the value.
func TestParseRequestRefuses(t *testing.T) {
	bound, client, push := Context{UserBound: true}, Context{}, Context{UserBound: true, Push: true}
	secret := "SECRET-VALUE-1234567890"
	cases := []struct {
		name string
		ctx  Context
		raw  []byte // when set, replaces the built body
		over map[string]any
		want string // substring of the description
	}{
		{"empty body", bound, []byte(""), nil, "empty"},
		{"not an object", bound, []byte(`["x"]`), nil, "JSON object"},
		{"invalid JSON", bound, []byte(`{"question_to_display":`), nil, "not valid JSON"},
		{"trailing data", bound, []byte(`{"wished_acr":"3"} {}`), nil, "after"},
		{"invalid UTF-8", bound, []byte("{\"question_to_display\":\"a\xff\"}"), nil, "UTF-8"},
		{"duplicate member", bound, []byte(`{"question_to_display":"a","question_to_display":"b","statements_to_display":["Yes","No"],"wished_acr":"3"}`), nil, "twice"},
		{"duplicate by escape", bound, []byte(`{"wished_acr":"3","wished_\u0061cr":"1","question_to_display":"a","statements_to_display":["Yes","No"]}`), nil, "twice"},
		{"duplicate nested", bound, []byte(`{"x":{"a":1,"a":2},"wished_acr":"3","question_to_display":"a","statements_to_display":["Yes","No"]}`), nil, "twice"},
		{"too deep", bound, []byte(`{"x":[[[[[[[[[[1]]]]]]]]]],"wished_acr":"3"}`), nil, "deeply"},
		{"too large", bound, body(t, map[string]any{"x": strings.Repeat("a", 17<<10)}), nil, "larger"},
		{"case-different name not matched", bound, []byte(`{"Question_To_Display":"a","statements_to_display":["Yes","No"],"wished_acr":"3"}`), nil, "question_to_display is required"},
		{"question missing", bound, nil, map[string]any{"question_to_display": nil}, "question_to_display is required"},
		{"question empty", bound, nil, map[string]any{"question_to_display": ""}, "question_to_display is required"},
		{"question not a string", bound, nil, map[string]any{"question_to_display": 7}, "must be a string"},
		{"question 257 chars", bound, nil, map[string]any{"question_to_display": strings.Repeat("ü", 257)}, "longer than 256"},
		{"question control char", bound, nil, map[string]any{"question_to_display": "a\u0007b"}, "control"},
		{"question bidi override", bound, nil, map[string]any{"question_to_display": "pay \u202e01 RUE"}, "bidirectional"},
		{"question lone surrogate", bound, nil, map[string]any{"question_to_display": json.RawMessage(`"a\ud800b"`)}, "U+FFFD"},
		{"question padded", bound, nil, map[string]any{"question_to_display": " a"}, "white space"},
		{"statements missing", bound, nil, map[string]any{"statements_to_display": nil}, "statements_to_display is required"},
		{"statements not array", bound, nil, map[string]any{"statements_to_display": "Yes"}, "array of strings"},
		{"statements of numbers", bound, nil, map[string]any{"statements_to_display": []int{1, 2}}, "array of strings"},
		{"one statement", bound, nil, map[string]any{"statements_to_display": []string{"Yes"}}, "2 to 5"},
		{"six statements", bound, nil, map[string]any{"statements_to_display": []string{"a", "b", "c", "d", "e", "f"}}, "2 to 5"},
		{"statement 65 chars", bound, nil, map[string]any{"statements_to_display": []string{"Yes", strings.Repeat("n", 65)}}, "longer than 64"},
		{"statement empty", bound, nil, map[string]any{"statements_to_display": []string{"Yes", ""}}, "empty"},
		{"statement null", bound, nil, map[string]any{"statements_to_display": json.RawMessage(`["Yes",null]`)}, "empty"},
		{"statement repeated", bound, nil, map[string]any{"statements_to_display": []string{"Yes", "Yes"}}, "repeats"},
		{"statement newline", bound, nil, map[string]any{"statements_to_display": []string{"Yes", "N\no"}}, "control"},
		{"statement isolate", bound, nil, map[string]any{"statements_to_display": []string{"Yes", "\u2067No"}}, "bidirectional"},
		{"wished_acr missing", bound, nil, map[string]any{"wished_acr": nil}, "wished_acr is required"},
		{"wished_acr not string", bound, nil, map[string]any{"wished_acr": 3}, "must be a string"},
		{"wished_acr space", bound, nil, map[string]any{"wished_acr": "a b"}, "printable ASCII"},
		{"wished_amr not array", bound, nil, map[string]any{"wished_amr": "pin"}, "array of strings"},
		{"wished_amr empty entry", bound, nil, map[string]any{"wished_amr": []string{""}}, "empty"},
		{"wished_amr too many", bound, nil, map[string]any{"wished_amr": strings.Split("a b c d e f g h i j k", " ")}, "more than 10"},
		{"user_id with user-bound token", bound, nil, map[string]any{"user_id": "+33612345678", "user_id_type": "msisdn"}, "user-bound"},
		{"user_id missing with client token", client, nil, nil, "required with a client access token"},
		{"user_id without type", client, nil, map[string]any{"user_id": "+33612345678"}, "go together"},
		{"type without user_id", client, nil, map[string]any{"user_id_type": "msisdn"}, "go together"},
		{"msisdn not E.164", client, nil, map[string]any{"user_id": "0612345678", "user_id_type": "msisdn"}, "E.164"},
		{"msisdn too long", client, nil, map[string]any{"user_id": "+1234567890123456", "user_id_type": "msisdn"}, "E.164"},
		{"email with display name", client, nil, map[string]any{"user_id": "Bob <bob@example.com>", "user_id_type": "email"}, "addr-spec"},
		{"email garbage", client, nil, map[string]any{"user_id": secret, "user_id_type": "email"}, "addr-spec"},
		{"sub too long", client, nil, map[string]any{"user_id": strings.Repeat("s", 256), "user_id_type": "sub"}, "sub"},
		{"unknown user_id_type", client, nil, map[string]any{"user_id": "x", "user_id_type": "iban"}, "msisdn, email or sub"},
		{"push without token", push, nil, nil, "required for a client registered"},
		{"token from a pull client", bound, nil, map[string]any{"client_notification_token": goodToken}, "must not be sent"},
		{"token too short", push, nil, map[string]any{"client_notification_token": "vO4n2DAeRrcWE0VAlo4I"}, "shorter than 22"},
		{"token bad chars", push, nil, map[string]any{"client_notification_token": "abcdefghijklmnopqrstuv\r\nX: y"}, "b64token"},
		{"token not a string", push, nil, map[string]any{"client_notification_token": 12345}, "must be a string"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.raw
			if raw == nil {
				raw = body(t, tc.over)
			}
			_, err := ParseRequest(raw, tc.ctx)
			var e *Error
			require.ErrorAs(t, err, &e)
			require.True(t, errors.Is(err, ErrInvalidRequest))
			require.Equal(t, http.StatusBadRequest, e.Status)
			require.Contains(t, e.Description, tc.want)
			require.NotContains(t, e.Description, secret)
		})
	}
}

// TestParseRequestCustomLimits: Limits replace the defaults.
func TestParseRequestCustomLimits(t *testing.T) {
	lim := DefaultLimits()
	lim.MaxQuestionChars, lim.MaxStatements, lim.MaxStatementChars = 10, 3, 3
	ctx := Context{UserBound: true, Limits: lim}
	_, err := ParseRequest(body(t, map[string]any{"question_to_display": "0123456789"}), ctx)
	require.NoError(t, err)
	_, err = ParseRequest(body(t, map[string]any{"question_to_display": "0123456789A"}), ctx)
	require.ErrorIs(t, err, ErrInvalidRequest)
	_, err = ParseRequest(body(t, map[string]any{"question_to_display": "q", "statements_to_display": []string{"a", "b", "c", "d"}}), ctx)
	require.ErrorIs(t, err, ErrInvalidRequest)
	_, err = ParseRequest(body(t, map[string]any{"question_to_display": "q", "statements_to_display": []string{"Yes", "Nope"}}), ctx)
	require.ErrorIs(t, err, ErrInvalidRequest)
}

// FuzzParseRequest: the parser never panics, and whatever it accepts
// obeys the default limits and parses again to the same Request after a
// round trip through encoding/json.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(`{"question_to_display":"Q?","statements_to_display":["Yes","No"],"wished_acr":"3"}`), true, false)
	f.Add([]byte(`{"user_id":"+33612345678","user_id_type":"msisdn","question_to_display":"Q","statements_to_display":["a","b"],"wished_acr":"3","wished_amr":["pin"]}`), false, false)
	f.Add([]byte(`{"client_notification_token":"vO4n2DAeRrcWE0VAlo4I-abc","question_to_display":"Q","statements_to_display":["a","b"],"wished_acr":"3"}`), true, true)
	f.Add([]byte(`{"a":{"a":1,"a":2}}`), true, false)
	f.Fuzz(func(t *testing.T, data []byte, userBound, push bool) {
		ctx := Context{UserBound: userBound, Push: push}
		r, err := ParseRequest(data, ctx)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeInvalidRequest || e.Status != http.StatusBadRequest {
				t.Fatalf("refusal is not invalid_request: %v", err)
			}
			return
		}
		lim := DefaultLimits()
		if n := len(r.StatementsToDisplay); n < lim.MinStatements || n > lim.MaxStatements {
			t.Fatalf("accepted %d statements", n)
		}
		if (r.UserID != "") == userBound || (r.ClientNotificationToken != "") != push || r.WishedACR == "" {
			t.Fatalf("accepted a body against its context: %+v", r)
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := ParseRequest(again, ctx)
		if err != nil {
			t.Fatalf("re-encoded request refused: %v", err)
		}
		a, _ := json.Marshal(r2)
		if string(a) != string(again) {
			t.Fatalf("round trip differs: %s vs %s", a, again)
		}
	})
}
