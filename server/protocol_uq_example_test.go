package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage/memory"
	"github.com/fedas/fedas/uq"
)

// exampleUQ: a User Questioning question (docs/protocol.md "User
// Questioning"): a client-credentials token, the question, a pending
// poll (304), the answer through the user's app, the UST, and an unknown
// question_id.
func exampleUQ(t *testing.T) *example {
	log := newExampleLog()
	clock := &servertest.Clock{}
	st := memory.New()
	t.Cleanup(func() { _ = st.Close() })
	as := log.start(t, "AS", "https://as.example", servertest.Options{Store: st, Clock: clock, Configure: func(c *config.Config) {
		reachConfig(c)
		c.Clients = append(c.Clients, config.Client{ID: "uq-backend", Name: "Bank back office", TokenEndpointAuthMethod: "client_secret_basic",
			SecretSHA256: config.SecretDigest(uqBackendSecret), Scopes: []string{config.ScopeQuestion}, GrantTypes: []string{"client_credentials"}})
		for i := range c.Users {
			if c.Users[i].Username == "carol" {
				c.Users[i].Claims = map[string]string{"email": uqCarolEmail}
			}
		}
	}})
	// carol's app, signed in and registered over the app API (not shown).
	phone := newAppPhone(t, as.Instance, clock, "carol", true, reach.KindQuestion)
	x := newExample("uq", log)
	tok := x.postForm(t, "client → AS: a client-credentials token with scope question", as.token(), url.Values{
		"grant_type": {"client_credentials"}, "scope": {config.ScopeQuestion}}, basic("uq-backend", uqBackendSecret))
	require.Equal(t, http.StatusOK, tok.status, tok.raw)
	at := tok.str("access_token")
	req, err := http.NewRequest(http.MethodPost, as.URL+server.PathUQQuestions, strings.NewReader(
		`{"user_id":"`+uqCarolEmail+`","user_id_type":"email","question_to_display":"Do you allow the transfer of 120 EUR to Bob?","statements_to_display":["Yes","No"],"wished_acr":"phr"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	bearer("Bearer", at)(req)
	r := x.send(t, "client → AS: the question for carol (by email)", req)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	qid := r.str("question_id")
	pollReq := func(q string) *http.Request {
		req, err := http.NewRequest(http.MethodGet, as.URL+server.PathUQPolling+"?question_id="+q, nil)
		require.NoError(t, err)
		bearer("Bearer", at)(req)
		return req
	}
	r = x.send(t, "client → AS: a poll while carol has not answered", pollReq(qid))
	require.Equal(t, http.StatusNotModified, r.status)
	answerQuestion(t, phone, qid, "Yes", "hwk", "face")
	clock.Advance(time.Second)
	r = x.send(t, "client → AS: carol answered Yes on her phone (face): the User Statement Token", pollReq(qid))
	require.Equal(t, http.StatusOK, r.status, r.raw)
	r = x.send(t, "client → AS: a question_id the AS never gave this client", pollReq(uq.NewQuestionID()))
	requireOAuthError(t, r, http.StatusBadRequest, "invalid_question_id")
	return x
}
