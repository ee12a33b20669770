package sdk_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/uq"
)

// TestUQClient: against a provider on real HTTP, the SDK discovers the
// endpoints, asks (Bearer, JSON), polls (304 → ErrPending with
// Client-Timeout sent; 200 → the UST), verifies the UST against the
// JWKS, and reads a refusal as a *uq.Error with its code, status and
// Retry-After. (The server side end to end: server/uq_test.go.)
func TestUQClient(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	signer, err := uq.NewSigner("k1", key)
	require.NoError(t, err)
	var polls atomic.Int32
	var srv *httptest.Server
	const qid = "Vj3tjv2n1Ls0C6ucW1o9nZcG9yRk7o5Wq0UeVvPZy6s"
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server":
			_ = json.NewEncoder(w).Encode(map[string]any{"issuer": srv.URL, "jwks_uri": srv.URL + "/jwks",
				"user_questioning_request_endpoint": srv.URL + "/q", "user_questioning_polling_endpoint": srv.URL + "/p"})
		case "/jwks":
			_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
		case "/q":
			var q uq.Request
			if r.Header.Get("Authorization") != "Bearer at" || json.NewDecoder(r.Body).Decode(&q) != nil || q.UserID != "+33612345678" {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"error":"invalid_request"}`))
				return
			}
			_, _ = w.Write([]byte(`{"question_id":"` + qid + `"}`))
		case "/p":
			switch polls.Add(1) {
			case 1:
				if r.Header.Get("Client-Timeout") != "10" {
					w.WriteHeader(http.StatusBadRequest)
					return
				}
				w.WriteHeader(http.StatusNotModified)
			case 2:
				ust, _ := uq.Sign(uq.Claims{QuestionID: qid, Issuer: srv.URL, Subject: "carol", Audience: []string{"bank"},
					UserID: "+33612345678", UserIDType: "msisdn", QuestionDisplayed: "Pay?", DisplayedStatements: []string{"Yes", "No"},
					Statement: "Yes", StatementDate: 1700000000, UsedAMR: []string{"hwk", "face"}, UsedACR: "phr", IssuedAt: 1700000000}, signer)
				_, _ = w.Write([]byte(`{"user_statement_token":"` + ust + `"}`))
			default:
				w.Header().Set("Retry-After", "3")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"error":"high_rate_question","error_description":"slow"}`))
			}
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	meta, err := sdk.DiscoverUQ(ctx, srv.Client(), srv.URL)
	require.NoError(t, err)
	c := &sdk.UQClient{HTTP: srv.Client(), Meta: meta, AccessToken: "at"}
	got, err := c.Ask(ctx, uq.Request{UserID: "+33612345678", UserIDType: "msisdn", QuestionToDisplay: "Pay?", StatementsToDisplay: []string{"Yes", "No"}, WishedACR: "phr"})
	require.NoError(t, err)
	require.Equal(t, qid, got)
	_, err = c.Poll(ctx, qid, 10*time.Second)
	require.ErrorIs(t, err, sdk.ErrPending)
	ust, err := c.Poll(ctx, qid, 0)
	require.NoError(t, err)
	claims, err := c.VerifyUST(ctx, ust, uq.Expect{ClientID: "bank", QuestionID: qid, Question: "Pay?", Statements: []string{"Yes", "No"},
		UserID: "+33612345678", UserIDType: "msisdn"})
	require.NoError(t, err)
	require.Equal(t, "Yes", claims.Statement)
	_, err = c.VerifyUST(ctx, ust, uq.Expect{ClientID: "bank", QuestionID: qid, Question: "Pay?", Statements: []string{"Yes", "No"}})
	require.ErrorIs(t, err, uq.ErrInvalidUST, "user_id sent but not expected")

	_, err = c.Poll(ctx, qid, 0)
	var ue *uq.Error
	require.True(t, errors.As(err, &ue))
	require.ErrorIs(t, err, uq.ErrHighRateQuestion)
	require.Equal(t, http.StatusBadRequest, ue.Status)
	require.Equal(t, 3*time.Second, ue.RetryAfter)
}
