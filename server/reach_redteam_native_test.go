package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/server/servertest"
)

// nativeRaw sends one request to the cross-device endpoints with the
// Content-Type ctype, the body, and a DPoP proof when proof is set.
func nativeRaw(tb testing.TB, method, u, ctype, body, proof string) reply {
	tb.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	require.NoError(tb, err)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	return do(tb, req)
}

func proofAt(tb testing.TB, key *dpop.Key, clock *servertest.Clock, method, u string) string {
	tb.Helper()
	htu, _, _ := strings.Cut(u, "?")
	p, err := key.ProofAt(method, htu, "", clock.Now())
	require.NoError(tb, err)
	return p
}

// phoneEntries is how many entries the app's inbox has (GET
// /reach/inbox?wait=0 through the app API).
func phoneEntries(tb testing.TB, phone *reachApp) int {
	tb.Helper()
	st, _, body := phone.do(tb, http.MethodGet, "/reach/inbox?wait=0", "")
	require.Equal(tb, http.StatusOK, st, "%s", body)
	var p struct {
		Entries []any `json:"entries"`
	}
	require.NoError(tb, json.Unmarshal(body, &p))
	return len(p.Entries)
}

// TestRedteam_NativeReach (RR07): POST /native/reach and its poll under
// attack, on memory and Redis. Refused creations — the auth_session
// twice, in the query, as JSON, without or with a wrong DPoP proof
// (method, URL, key), another client, an oversized body — are RFC 6749
// bodies with no-store and create no task (the user's app sees
// nothing). Refused polls — a replayed proof (same jti), a proof for
// another method or URL or key, another client's client_id, unknown or
// malformed ids — spend nothing: the creator's next poll is still
// 202. Absurd Prefer: wait values are polls, never 500s. After the
// approval through the app API the poll completes once and a second
// answer to the task is 409.
func TestRedteam_NativeReach(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			clock := &servertest.Clock{}
			env := newReachEnv(t, b.store(t), reachEnvOptions{clock: clock, edit: nativeReachConfig})
			phone := signInApp(t, env.b, "carol", "carol-pw", "")
			phone.register(t, "", http.StatusCreated)
			require.Zero(t, phoneEntries(t, phone))
			d := newReachDevice(t, env.a, clock, "demo-app")
			other := newReachDevice(t, env.a, clock, "demo-app")
			first := d.start(t, "carol")
			sess := first.str("auth_session")
			require.NotEmpty(t, sess)
			reachURL := env.a.URL + "/native/reach"
			form := url.Values{"auth_session": {sess}}.Encode()
			p := func() string { return proofAt(t, d.key, clock, http.MethodPost, reachURL) }

			refused := []struct {
				name string
				r    reply
			}{
				{"auth_session twice", nativeRaw(t, http.MethodPost, reachURL, "application/x-www-form-urlencoded", form+"&"+form, p())},
				{"auth_session in the query", nativeRaw(t, http.MethodPost, reachURL+"?"+form, "application/x-www-form-urlencoded", "", p())},
				{"JSON body", nativeRaw(t, http.MethodPost, reachURL, "application/json", `{"auth_session":"`+sess+`"}`, p())},
				{"no content type", nativeRaw(t, http.MethodPost, reachURL, "", form, p())},
				{"no proof", nativeRaw(t, http.MethodPost, reachURL, "application/x-www-form-urlencoded", form, "")},
				{"proof for GET", nativeRaw(t, http.MethodPost, reachURL, "application/x-www-form-urlencoded", form, proofAt(t, d.key, clock, http.MethodGet, reachURL))},
				{"proof for another URL", nativeRaw(t, http.MethodPost, reachURL, "application/x-www-form-urlencoded", form, proofAt(t, d.key, clock, http.MethodPost, env.a.URL+"/native/authorize"))},
				{"proof of another key", nativeRaw(t, http.MethodPost, reachURL, "application/x-www-form-urlencoded", form, proofAt(t, other.key, clock, http.MethodPost, reachURL))},
				{"another client", nativeRaw(t, http.MethodPost, reachURL, "application/x-www-form-urlencoded", form+"&client_id=demo-nocd", p())},
				{"unknown client", nativeRaw(t, http.MethodPost, reachURL, "application/x-www-form-urlencoded", form+"&client_id=nobody", p())},
				{"unknown auth_session", nativeRaw(t, http.MethodPost, reachURL, "application/x-www-form-urlencoded", "auth_session=x"+sess[1:], p())},
				{"oversized", nativeRaw(t, http.MethodPost, reachURL, "application/x-www-form-urlencoded", form+"&x="+strings.Repeat("a", 2<<20), p())},
			}
			for _, c := range refused {
				require.True(t, c.r.status >= 400 && c.r.status < 500, "%s: %d %s", c.name, c.r.status, c.r.raw)
				require.Equal(t, "no-store", c.r.header.Get("Cache-Control"), c.name)
				if c.r.status != http.StatusRequestEntityTooLarge {
					require.NotEmpty(t, c.r.str("error"), "%s: %s", c.name, c.r.raw)
				}
				require.Empty(t, c.r.header.Get("Location"), c.name)
			}
			require.Zero(t, phoneEntries(t, phone), "no refused creation reached the app")

			r := d.reach(t, sess)
			require.Equal(t, http.StatusAccepted, r.status, r.raw)
			loc := r.header.Get("Location")
			id := taskID(t, loc)
			require.Equal(t, 1, phoneEntries(t, phone))

			// Refused polls spend nothing.
			d.next()
			replayed := proofAt(t, d.key, clock, http.MethodGet, loc)
			pr := nativeRaw(t, http.MethodGet, loc, "", "", replayed)
			require.Equal(t, http.StatusAccepted, pr.status, pr.raw)
			d.next()
			polls := []struct {
				name string
				r    reply
			}{
				{"replayed proof", nativeRaw(t, http.MethodGet, loc, "", "", replayed)},
				{"no proof", nativeRaw(t, http.MethodGet, loc, "", "", "")},
				{"proof for POST", nativeRaw(t, http.MethodGet, loc, "", "", proofAt(t, d.key, clock, http.MethodPost, loc))},
				{"proof for the creation URL", nativeRaw(t, http.MethodGet, loc, "", "", proofAt(t, d.key, clock, http.MethodGet, reachURL))},
				{"proof of another key", nativeRaw(t, http.MethodGet, loc, "", "", proofAt(t, other.key, clock, http.MethodGet, loc))},
				{"another client's client_id", nativeRaw(t, http.MethodGet, loc+"?client_id=demo-nocd", "", "", proofAt(t, d.key, clock, http.MethodGet, loc))},
				{"unknown client_id", nativeRaw(t, http.MethodGet, loc+"?client_id=nobody", "", "", proofAt(t, d.key, clock, http.MethodGet, loc))},
				{"unknown id", nativeRaw(t, http.MethodGet, reachURL+"/AAAAAAAAAAAAAAAAAAAAAA", "", "", proofAt(t, d.key, clock, http.MethodGet, reachURL+"/AAAAAAAAAAAAAAAAAAAAAA"))},
				{"malformed id", nativeRaw(t, http.MethodGet, reachURL+"/..%2f..%2fx", "", "", proofAt(t, d.key, clock, http.MethodGet, reachURL+"/..%2f..%2fx"))},
				{"long id", nativeRaw(t, http.MethodGet, reachURL+"/"+strings.Repeat("A", 4000), "", "", proofAt(t, d.key, clock, http.MethodGet, reachURL+"/"+strings.Repeat("A", 4000)))},
			}
			for _, c := range polls {
				require.True(t, c.r.status >= 400 && c.r.status < 500, "%s: %d %s", c.name, c.r.status, c.r.raw)
				require.NotEqual(t, http.StatusTooManyRequests, c.r.status, c.name)
				require.Equal(t, "no-store", c.r.header.Get("Cache-Control"), c.name)
				require.NotEmpty(t, c.r.str("error"), "%s: %s", c.name, c.r.raw)
				require.Empty(t, c.r.str("auth_session"), c.name)
			}
			pr = d.poll(t, loc)
			require.Equal(t, http.StatusAccepted, pr.status, "the refused polls spent no interval: %s", pr.raw)
			for _, w := range []string{"wait=abc", "wait=-1", "wait=", "wait=99999999999999999999", "wait=0"} {
				d.next()
				pr = d.send(t, d.key, http.MethodGet, loc, nil, http.Header{"Prefer": {w}})
				require.Equal(t, http.StatusAccepted, pr.status, "%s: %s", w, pr.raw)
			}

			// The approval, through the app API on instance b.
			st, _, body := phone.do(t, http.MethodPost, "/reach/tasks/"+id+"/ack", "")
			require.Equal(t, http.StatusOK, st, "%s", body)
			right := r.str("binding_code")
			approve := fmt.Sprintf(`{"decision":"approve","binding_choice":%s,"amr":["pin"]}`, right)
			st, _, body = phone.do(t, http.MethodPost, "/reach/tasks/"+id+"/response", approve)
			require.Equal(t, http.StatusOK, st, "%s", body)
			st, _, body = phone.do(t, http.MethodPost, "/reach/tasks/"+id+"/response", approve)
			require.Equal(t, http.StatusConflict, st, "a second answer: %s", body)
			st, _, body = phone.do(t, http.MethodPost, "/reach/tasks/"+id+"/response", `{"decision":"deny","amr":["pin"]}`)
			require.Equal(t, http.StatusConflict, st, "a later deny: %s", body)
			d.next()
			pr = d.poll(t, loc)
			require.Equal(t, http.StatusOK, pr.status, pr.raw)
			value := pr.str("auth_session")
			require.NotEmpty(t, value)
			d.next()
			requireOAuthError(t, d.poll(t, loc), http.StatusBadRequest, "invalid_request")
			requireCode(t, d, value, "carol")
		})
	}
}

var _ = config.ScopeReachDevice
var _ = io.EOF
