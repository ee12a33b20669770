package server_test

// Federation races (SECURITY-RESULTS.md 4.3 C2, C5, C6): 50 goroutines released
// together by a barrier, on memory and on Redis.

import (
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/federation/fedtest"
)

const raceN = 50

// barrierRace runs f(i) in n goroutines released together and returns the
// replies (errors fail the test afterwards, in the test goroutine).
func barrierRace(t testing.TB, n int, f func(i int) (reply, error)) []reply {
	t.Helper()
	out := make([]reply, n)
	errs := make([]error, n)
	var ready, done sync.WaitGroup
	gate := make(chan struct{})
	for i := 0; i < n; i++ {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-gate
			out[i], errs[i] = f(i)
		}()
	}
	ready.Wait()
	close(gate)
	done.Wait()
	for i, err := range errs {
		require.NoError(t, err, "goroutine %d", i)
	}
	return out
}

// tallyErrors tallies replies by error code ("" for success).
func tallyErrors(rs []reply) map[string]int {
	m := map[string]int{}
	for _, r := range rs {
		m[r.str("error")]++
	}
	return m
}

// C2: the same hop result posted 50 times at once: the downstream token
// endpoint is called once and exactly one of our codes is issued; a
// downstream error raced the same way re-pushes once.
func TestRace_ResponseURISamePost(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name+"/code", func(t *testing.T) {
			e := newMockFed(t, mockFedOpts{store: b.store(t), edit: noRateLimits}) // raceN uses of one session
			fed, pk := e.federate(t, "ds1", nil)
			code := atDownstream(t, fed)
			form := url.Values{"authorization_code": {code}, "auth_session": {fed.str("auth_session")}}
			rs := barrierRace(t, raceN, func(int) (reply, error) { return tryPost(fed.str("response_uri"), form) })
			var codes []string
			for _, r := range rs {
				if r.status == http.StatusOK {
					codes = append(codes, r.str("authorization_code"))
					continue
				}
				require.Equal(t, http.StatusBadRequest, r.status, r.raw)
				require.Equal(t, "invalid_session", r.str("error"), r.raw)
			}
			require.Len(t, codes, 1, "exactly one code of ours: %v", tallyErrors(rs))
			require.EqualValues(t, 1, e.ds["ds1"].Count(fedtest.Token), "downstream token endpoint called once")
			tok := e.as1.redeem(t, "demo-app", codes[0], pk)
			require.Equal(t, http.StatusOK, tok.status, tok.raw)
		})
		t.Run(b.name+"/error", func(t *testing.T) {
			e := newMockFed(t, mockFedOpts{store: b.store(t), edit: noRateLimits}) // raceN uses of one session
			fed, _ := e.federate(t, "ds1", nil)
			form := url.Values{"error": {"invalid_request"}, "auth_session": {fed.str("auth_session")}}
			rs := barrierRace(t, raceN, func(int) (reply, error) { return tryPost(fed.str("response_uri"), form) })
			got := tallyErrors(rs)
			require.Equal(t, 1, got["federate"], "one re-push: %v", got)
			require.Equal(t, raceN-1, got["invalid_session"], "%v", got)
			require.EqualValues(t, 2, e.pars(), "the first PAR and one retry")
			require.Zero(t, e.tokens())
		})
	}
}

// C5: one request_uri of our own PAR presented 50 times at our native
// endpoint in the downstream role (AS1 federating to a real fedas AS2):
// at most one session starts.
func TestRace_RequestURISingleUse(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			as1, _ := pair(t, b.store(t), b.store(t), nil, nil)
			r, _ := as1.initial(t, "demo-app", url.Values{"scope": {"openid"}})
			requireOAuthError(t, r, http.StatusBadRequest, "insufficient_information")
			fed := post(t, as1.native(), url.Values{"auth_session": {r.str("auth_session")}, "email": {"carol@as2.example"}})
			requireFederate(t, fed)
			body, err := url.ParseQuery(fed.str("federation_body"))
			require.NoError(t, err)
			rs := barrierRace(t, raceN, func(int) (reply, error) { return tryPost(fed.str("federation_uri"), body) })
			started := 0
			for _, r := range rs {
				if r.str("auth_session") != "" || r.str("authorization_code") != "" {
					started++
					require.Equal(t, "insufficient_authorization", r.str("error"), r.raw)
					continue
				}
				require.Equal(t, http.StatusBadRequest, r.status, r.raw)
				require.Equal(t, "invalid_request", r.str("error"), r.raw)
			}
			require.Equal(t, 1, started, "one session from one request_uri: %v", tallyErrors(rs))
		})
	}
}

// C6: different prompt answers raced on one auth_session: exactly one PAR
// to one downstream, one federate, the others invalid_session.
func TestRace_ConcurrentPromptAnswers(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			e := newMockFed(t, mockFedOpts{store: b.store(t), mocks: map[string]fedtest.Options{"ds1": {}, "ds2": {}}, edit: noRateLimits}) // raceN uses of one session
			p, _ := e.prompt(t, nil)
			s := p.str("auth_session")
			rs := barrierRace(t, raceN, func(i int) (reply, error) {
				bank := []string{"ds1", "ds2"}[i%2]
				return tryPost(e.as1.native(), url.Values{"auth_session": {s}, "bank": {bank}})
			})
			var fed *reply
			for i := range rs {
				r := rs[i]
				if r.str("error") == "federate" {
					require.Nil(t, fed, "two federate answers")
					fed = &rs[i]
					continue
				}
				require.Equal(t, http.StatusBadRequest, r.status, r.raw)
				require.Equal(t, "invalid_session", r.str("error"), r.raw)
			}
			require.NotNil(t, fed, "one answer wins: %v", tallyErrors(rs))
			require.EqualValues(t, 1, e.pars(), "exactly one PAR")
			winner := "ds1"
			if e.ds["ds2"].Count(fedtest.PAR) == 1 {
				winner = "ds2"
			}
			require.Equal(t, e.ds[winner].Endpoint(fedtest.Native), fed.str("federation_uri"), "the session is bound to the downstream that got the PAR")
			r := respondHop(t, *fed, url.Values{"authorization_code": {atDownstream(t, *fed)}})
			require.Equal(t, http.StatusOK, r.status, r.raw)
		})
	}
}
