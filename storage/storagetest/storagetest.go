// Package storagetest is the conformance suite every storage backend runs
// (in the manner of dex's storage/conformance): one set of tests, so that
// the memory and Redis backends cannot drift apart in the behaviour the
// server relies on — round trips, expiry, not-found, invalidation,
// revocation, compare-and-swap, and exactly one winner of every
// single-use race.
package storagetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/storage"
)

// Timings of the suite. Expiry is tested with short TTLs and one shared
// wait, so the whole suite stays around a second per backend.
const (
	longTTL  = time.Minute
	shortTTL = 300 * time.Millisecond
	// expiryMargin is how long after shortTTL the suite looks again; Redis
	// expires keys to the millisecond, the margin absorbs scheduling.
	expiryMargin = 250 * time.Millisecond
	racers       = 50
)

// Run runs the suite. newStore must return a fresh, empty store (or one
// in its own namespace) for each call and arrange its Close with
// t.Cleanup; subtests run in parallel, each on its own store.
func Run(t *testing.T, newStore func(t testing.TB) storage.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s storage.Store)
	}{
		{"TokenRoundTrip", testTokenRoundTrip},
		{"CodeRoundTrip", testCodeRoundTrip},
		{"TokenNotFound", testTokenNotFound},
		{"TokenOverwriteAndCopies", testTokenCopies},
		{"DeleteToken", testDeleteToken},
		{"InvalidateCode", testInvalidateCode},
		{"InvalidateRefresh", testInvalidateRefresh},
		{"ConsumeToken", testConsumeToken},
		{"RevokeRequest", testRevokeRequest},
		{"AuthSession", testAuthSession},
		{"AuthSessionCAS", testAuthSessionCAS},
		{"MarkUsed", testMarkUsed},
		{"InvalidArguments", testInvalidArguments},
		{"Expiry", testExpiry},
		{"Race", testRace},
		{"TokenBatcher", testTokenBatcher},
		{"CodeRedeemer", testCodeRedeemer},
		{"RefreshRotator", testRefreshRotator},
		{"Ping", func(t *testing.T, s storage.Store) { require.NoError(t, s.Ping(t.Context())) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, newStore(t))
		})
	}
}

var seq atomic.Int64

// id returns a value unique within the test binary, in the key alphabet
// every backend accepts (base64url-like, as fosite's signatures are).
func id(what string) string {
	return fmt.Sprintf("%s-%d.%d_Ab~:+/=", what, time.Now().UnixNano(), seq.Add(1))
}

// record returns a Record with every field set, so that a round trip
// proves each one survives.
func record() storage.Record {
	return storage.Record{
		RequestID:         id("req"),
		ClientID:          "client-1",
		RequestedAt:       time.Date(2025, 3, 4, 5, 6, 7, 891011121, time.UTC),
		Form:              "scope=openid+profile&state=xyz&redirect_uri=https%3A%2F%2Fapp.example%2Fcb",
		RequestedScopes:   []string{"openid", "profile", "offline_access"},
		GrantedScopes:     []string{"openid", "profile"},
		RequestedAudience: []string{"https://api.example"},
		GrantedAudience:   []string{"https://api.example"},
		ResponseTypes:     []string{"code"},
		State:             "xyz",
		RedirectURI:       "https://app.example/cb",
		Session:           json.RawMessage(`{"subject":"alice","extra":{"amr":["pwd","otp"],"n":1.5}}`),
	}
}

// session returns an AuthSession with every field set.
func session() storage.AuthSession {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return storage.AuthSession{
		ID:        id("as"),
		StepHash:  id("step"),
		ClientID:  "client-1",
		CreatedAt: now,
		ExpiresAt: now.Add(longTTL),
		Stage:     "challenge",
		Failures:  2,
		Request:   map[string]string{"scope": "openid", "code_challenge": "abc", "state": "s1"},
		Subject:   "sub-1",
		Username:  "alice",
		AMR:       []string{"pwd", "otp"},
		AuthTime:  now.Add(-time.Second),
		DPoPJKT:   "jkt-thumbprint",
		Extra:     json.RawMessage(`{"hops":[{"issuer":"https://ds1.example"}]}`),
	}
}

// requireRecord compares records, the opaque JSON session by meaning
// (a backend may re-encode it) and times with Equal.
func requireRecord(t testing.TB, want, got storage.Record) {
	t.Helper()
	require.JSONEq(t, string(want.Session), string(got.Session), "Session")
	require.True(t, want.RequestedAt.Equal(got.RequestedAt), "RequestedAt: want %s, got %s", want.RequestedAt, got.RequestedAt)
	want.Session, got.Session = nil, nil
	want.RequestedAt, got.RequestedAt = time.Time{}, time.Time{}
	require.Equal(t, want, got)
}

func requireSession(t testing.TB, want, got storage.AuthSession) {
	t.Helper()
	require.JSONEq(t, string(want.Extra), string(got.Extra), "Extra")
	for _, p := range []struct {
		name      string
		want, got time.Time
	}{{"CreatedAt", want.CreatedAt, got.CreatedAt}, {"ExpiresAt", want.ExpiresAt, got.ExpiresAt}, {"AuthTime", want.AuthTime, got.AuthTime}} {
		require.True(t, p.want.Equal(p.got), "%s: want %s, got %s", p.name, p.want, p.got)
	}
	want.Extra, got.Extra = nil, nil
	want.CreatedAt, got.CreatedAt = time.Time{}, time.Time{}
	want.ExpiresAt, got.ExpiresAt = time.Time{}, time.Time{}
	want.AuthTime, got.AuthTime = time.Time{}, time.Time{}
	require.Equal(t, want, got)
}

func testTokenRoundTrip(t *testing.T, s storage.Store) {
	ctx := t.Context()
	for _, kind := range storage.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			sig, rec := id("sig"), record()
			require.NoError(t, s.CreateToken(ctx, kind, sig, rec, longTTL))
			got, err := s.Token(ctx, kind, sig)
			require.NoError(t, err)
			requireRecord(t, rec, got)
			// Kinds are separate namespaces for the same signature.
			for _, other := range storage.Kinds {
				if other != kind {
					_, err := s.Token(ctx, other, sig)
					require.ErrorIs(t, err, storage.ErrNotFound, "kind %s", other)
				}
			}
		})
	}
	t.Run("minimal record", func(t *testing.T) {
		sig, rec := id("sig"), storage.Record{RequestID: id("req"), ClientID: "c"}
		require.NoError(t, s.CreateToken(ctx, storage.KindAccess, sig, rec, longTTL))
		got, err := s.Token(ctx, storage.KindAccess, sig)
		require.NoError(t, err)
		require.Equal(t, rec.RequestID, got.RequestID)
		require.Equal(t, rec.ClientID, got.ClientID)
		require.Empty(t, got.GrantedScopes)
		require.Empty(t, got.Session)
	})
}

func testCodeRoundTrip(t *testing.T, s storage.Store) {
	ctx := t.Context()
	sig, rec := id("sig"), record()
	require.NoError(t, s.CreateCode(ctx, sig, rec, longTTL))
	for _, kind := range []storage.Kind{storage.KindCode, storage.KindPKCE} {
		got, err := s.Token(ctx, kind, sig)
		require.NoError(t, err, "kind %s", kind)
		requireRecord(t, rec, got)
	}
	// fosite deletes the PKCE session on its own; the code stays.
	require.NoError(t, s.DeleteToken(ctx, storage.KindPKCE, sig))
	_, err := s.Token(ctx, storage.KindPKCE, sig)
	require.ErrorIs(t, err, storage.ErrNotFound)
	_, err = s.Token(ctx, storage.KindCode, sig)
	require.NoError(t, err)
}

func testTokenNotFound(t *testing.T, s storage.Store) {
	ctx := t.Context()
	for _, kind := range storage.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			_, err := s.Token(ctx, kind, id("missing"))
			require.ErrorIs(t, err, storage.ErrNotFound)
			_, err = s.ConsumeToken(ctx, kind, id("missing"))
			require.ErrorIs(t, err, storage.ErrNotFound)
		})
	}
	require.ErrorIs(t, s.InvalidateCode(ctx, id("missing")), storage.ErrNotFound)
	require.NoError(t, s.RevokeRequest(ctx, storage.KindAccess, id("missing")))
	require.NoError(t, s.RevokeRequest(ctx, storage.KindRefresh, id("missing")))
	_, err := s.AuthSession(ctx, id("missing"))
	require.ErrorIs(t, err, storage.ErrNotFound)
}

func testTokenCopies(t *testing.T, s storage.Store) {
	ctx := t.Context()
	sig, rec := id("sig"), record()
	want := record()
	want.RequestID = rec.RequestID
	require.NoError(t, s.CreateToken(ctx, storage.KindRefresh, sig, rec, longTTL))
	// Mutating what was passed in or handed out changes nothing stored.
	rec.GrantedScopes[0] = "admin"
	rec.Session[2] = 'X'
	got, err := s.Token(ctx, storage.KindRefresh, sig)
	require.NoError(t, err)
	got.GrantedScopes[0] = "admin"
	got.ResponseTypes = append(got.ResponseTypes[:0], "token")
	again, err := s.Token(ctx, storage.KindRefresh, sig)
	require.NoError(t, err)
	requireRecord(t, want, again)

	sess := session()
	wantSess := sess
	wantSess.Request = map[string]string{"scope": "openid", "code_challenge": "abc", "state": "s1"}
	wantSess.AMR = []string{"pwd", "otp"}
	require.NoError(t, s.CreateAuthSession(ctx, sess))
	sess.Request["scope"] = "admin"
	sess.AMR[0] = "none"
	gotSess, err := s.AuthSession(ctx, sess.ID)
	require.NoError(t, err)
	gotSess.Request["scope"] = "admin"
	gotSess.AMR[0] = "none"
	gotSess, err = s.AuthSession(ctx, sess.ID)
	require.NoError(t, err)
	requireSession(t, wantSess, gotSess)

	// Creating again under the same signature replaces the record.
	other := record()
	other.ClientID = "client-2"
	require.NoError(t, s.CreateToken(ctx, storage.KindRefresh, sig, other, longTTL))
	got, err = s.Token(ctx, storage.KindRefresh, sig)
	require.NoError(t, err)
	requireRecord(t, other, got)
}

func testDeleteToken(t *testing.T, s storage.Store) {
	ctx := t.Context()
	for _, kind := range storage.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			sig := id("sig")
			require.NoError(t, s.CreateToken(ctx, kind, sig, record(), longTTL))
			require.NoError(t, s.DeleteToken(ctx, kind, sig))
			_, err := s.Token(ctx, kind, sig)
			require.ErrorIs(t, err, storage.ErrNotFound)
			// Idempotent: deleting again, or something never stored, is fine.
			require.NoError(t, s.DeleteToken(ctx, kind, sig))
			require.NoError(t, s.DeleteToken(ctx, kind, id("never")))
		})
	}
}

func testInvalidateCode(t *testing.T, s storage.Store) {
	ctx := t.Context()
	create := map[string]func(sig string, rec storage.Record) error{
		"CreateCode": func(sig string, rec storage.Record) error { return s.CreateCode(ctx, sig, rec, longTTL) },
		"CreateToken": func(sig string, rec storage.Record) error {
			return s.CreateToken(ctx, storage.KindCode, sig, rec, longTTL)
		},
	}
	for name, create := range create {
		t.Run(name, func(t *testing.T) {
			sig, rec := id("code"), record()
			require.NoError(t, create(sig, rec))
			require.NoError(t, s.InvalidateCode(ctx, sig))

			// The code stays readable, flagged, so a second redemption
			// can revoke what the first issued (RFC 6749 §4.1.2).
			got, err := s.Token(ctx, storage.KindCode, sig)
			require.ErrorIs(t, err, storage.ErrInvalidated)
			requireRecord(t, rec, got)

			require.ErrorIs(t, s.InvalidateCode(ctx, sig), storage.ErrConflict)
			got, err = s.Token(ctx, storage.KindCode, sig)
			require.ErrorIs(t, err, storage.ErrInvalidated)
			requireRecord(t, rec, got)

			if name == "CreateCode" {
				// Invalidation concerns the code only.
				got, err = s.Token(ctx, storage.KindPKCE, sig)
				require.NoError(t, err)
				requireRecord(t, rec, got)
			}

			require.NoError(t, s.DeleteToken(ctx, storage.KindCode, sig))
			require.ErrorIs(t, s.InvalidateCode(ctx, sig), storage.ErrNotFound)
		})
	}
}

// testInvalidateRefresh: refresh-token rotation's single-use mark
// (RFC 9700 §4.14.2). A rotated token stays readable, flagged, so that
// its reuse is recognised and can revoke its family; revocation and
// deletion still remove it; it concerns that one token only.
func testInvalidateRefresh(t *testing.T, s storage.Store) {
	ctx := t.Context()
	t.Run("rotated stays readable, flagged", func(t *testing.T) {
		sig, rec := id("rt"), record()
		require.NoError(t, s.CreateToken(ctx, storage.KindRefresh, sig, rec, longTTL))
		got, err := s.Token(ctx, storage.KindRefresh, sig)
		require.NoError(t, err, "not rotated yet")
		requireRecord(t, rec, got)
		require.NoError(t, s.InvalidateRefresh(ctx, sig, "successor-1"))
		got, err = s.Token(ctx, storage.KindRefresh, sig)
		require.ErrorIs(t, err, storage.ErrInvalidated)
		requireRecord(t, rec, got)
		// A retry of the call that applied succeeds (a driver's retry
		// after a lost reply); any other rotation conflicts.
		require.NoError(t, s.InvalidateRefresh(ctx, sig, "successor-1"))
		require.ErrorIs(t, s.InvalidateRefresh(ctx, sig, "successor-2"), storage.ErrConflict)
		got, err = s.Token(ctx, storage.KindRefresh, sig)
		require.ErrorIs(t, err, storage.ErrInvalidated)
		requireRecord(t, rec, got)
	})
	t.Run("only that token", func(t *testing.T) {
		rec := record()
		a, b := id("rt"), id("rt")
		require.NoError(t, s.CreateToken(ctx, storage.KindRefresh, a, rec, longTTL))
		require.NoError(t, s.CreateToken(ctx, storage.KindRefresh, b, rec, longTTL))
		at := id("at")
		require.NoError(t, s.CreateToken(ctx, storage.KindAccess, at, rec, longTTL))
		require.NoError(t, s.InvalidateRefresh(ctx, a, "successor"))
		_, err := s.Token(ctx, storage.KindRefresh, b)
		require.NoError(t, err, "a sibling of the same request")
		_, err = s.Token(ctx, storage.KindAccess, at)
		require.NoError(t, err, "the request's access token")
	})
	t.Run("unknown", func(t *testing.T) {
		require.ErrorIs(t, s.InvalidateRefresh(ctx, id("never"), "successor"), storage.ErrNotFound)
		// An access token of that signature is not a refresh token.
		sig := id("at")
		require.NoError(t, s.CreateToken(ctx, storage.KindAccess, sig, record(), longTTL))
		require.ErrorIs(t, s.InvalidateRefresh(ctx, sig, "successor"), storage.ErrNotFound)
	})
	t.Run("revoked and deleted", func(t *testing.T) {
		rec := record()
		rotated, live := id("rt"), id("rt")
		require.NoError(t, s.CreateToken(ctx, storage.KindRefresh, rotated, rec, longTTL))
		require.NoError(t, s.CreateToken(ctx, storage.KindRefresh, live, rec, longTTL))
		require.NoError(t, s.InvalidateRefresh(ctx, rotated, "successor"))
		require.NoError(t, s.RevokeRequest(ctx, storage.KindRefresh, rec.RequestID))
		for _, sig := range []string{rotated, live} {
			_, err := s.Token(ctx, storage.KindRefresh, sig)
			require.ErrorIs(t, err, storage.ErrNotFound)
			require.ErrorIs(t, s.InvalidateRefresh(ctx, sig, "successor"), storage.ErrNotFound)
		}
		del := id("rt")
		require.NoError(t, s.CreateToken(ctx, storage.KindRefresh, del, rec, longTTL))
		require.NoError(t, s.InvalidateRefresh(ctx, del, "successor"))
		require.NoError(t, s.DeleteToken(ctx, storage.KindRefresh, del))
		_, err := s.Token(ctx, storage.KindRefresh, del)
		require.ErrorIs(t, err, storage.ErrNotFound)
	})
}

func testConsumeToken(t *testing.T, s storage.Store) {
	ctx := t.Context()
	for _, kind := range storage.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			sig, rec := id("sig"), record()
			require.NoError(t, s.CreateToken(ctx, kind, sig, rec, longTTL))
			got, err := s.ConsumeToken(ctx, kind, sig)
			require.NoError(t, err)
			requireRecord(t, rec, got)
			_, err = s.ConsumeToken(ctx, kind, sig)
			require.ErrorIs(t, err, storage.ErrNotFound)
			_, err = s.Token(ctx, kind, sig)
			require.ErrorIs(t, err, storage.ErrNotFound)
		})
	}
	t.Run("invalidated code", func(t *testing.T) {
		sig, rec := id("sig"), record()
		require.NoError(t, s.CreateCode(ctx, sig, rec, longTTL))
		require.NoError(t, s.InvalidateCode(ctx, sig))
		got, err := s.ConsumeToken(ctx, storage.KindCode, sig)
		require.ErrorIs(t, err, storage.ErrInvalidated)
		requireRecord(t, rec, got)
		_, err = s.ConsumeToken(ctx, storage.KindCode, sig)
		require.ErrorIs(t, err, storage.ErrNotFound)
	})
	t.Run("rotated refresh token", func(t *testing.T) {
		sig, rec := id("sig"), record()
		require.NoError(t, s.CreateToken(ctx, storage.KindRefresh, sig, rec, longTTL))
		require.NoError(t, s.InvalidateRefresh(ctx, sig, "successor"))
		got, err := s.ConsumeToken(ctx, storage.KindRefresh, sig)
		require.ErrorIs(t, err, storage.ErrInvalidated)
		requireRecord(t, rec, got)
		_, err = s.ConsumeToken(ctx, storage.KindRefresh, sig)
		require.ErrorIs(t, err, storage.ErrNotFound)
		require.ErrorIs(t, s.InvalidateRefresh(ctx, sig, "successor"), storage.ErrNotFound)
	})
}

func testRevokeRequest(t *testing.T, s storage.Store) {
	ctx := t.Context()
	for _, kind := range []storage.Kind{storage.KindAccess, storage.KindRefresh} {
		t.Run(string(kind), func(t *testing.T) {
			other := kind
			if other == storage.KindAccess {
				other = storage.KindRefresh
			} else {
				other = storage.KindAccess
			}
			target, bystander := record(), record()
			var targetSigs, keepSigs []string
			for range 3 {
				sig := id("sig")
				require.NoError(t, s.CreateToken(ctx, kind, sig, target, longTTL))
				targetSigs = append(targetSigs, sig)
			}
			sig := id("sig")
			require.NoError(t, s.CreateToken(ctx, kind, sig, bystander, longTTL))
			keepSigs = append(keepSigs, sig)
			// The same request's tokens of the other kind stay.
			otherSig := id("sig")
			require.NoError(t, s.CreateToken(ctx, other, otherSig, target, longTTL))

			require.NoError(t, s.RevokeRequest(ctx, kind, target.RequestID))
			for _, sig := range targetSigs {
				_, err := s.Token(ctx, kind, sig)
				require.ErrorIs(t, err, storage.ErrNotFound)
			}
			for _, sig := range keepSigs {
				_, err := s.Token(ctx, kind, sig)
				require.NoError(t, err)
			}
			_, err := s.Token(ctx, other, otherSig)
			require.NoError(t, err)

			// Idempotent; and tokens issued afterwards are revocable too.
			require.NoError(t, s.RevokeRequest(ctx, kind, target.RequestID))
			late := id("sig")
			require.NoError(t, s.CreateToken(ctx, kind, late, target, longTTL))
			require.NoError(t, s.RevokeRequest(ctx, kind, target.RequestID))
			_, err = s.Token(ctx, kind, late)
			require.ErrorIs(t, err, storage.ErrNotFound)
		})
	}
	t.Run("unindexed kinds", func(t *testing.T) {
		for _, kind := range []storage.Kind{storage.KindCode, storage.KindPKCE, storage.KindPAR} {
			require.Error(t, s.RevokeRequest(ctx, kind, id("req")), "kind %s", kind)
		}
	})
}

func testAuthSession(t *testing.T, s storage.Store) {
	ctx := t.Context()
	sess := session()
	require.NoError(t, s.CreateAuthSession(ctx, sess))
	got, err := s.AuthSession(ctx, sess.ID)
	require.NoError(t, err)
	requireSession(t, sess, got)

	// An existing ID is never overwritten.
	dup := session()
	dup.ID = sess.ID
	require.ErrorIs(t, s.CreateAuthSession(ctx, dup), storage.ErrConflict)
	got, err = s.AuthSession(ctx, sess.ID)
	require.NoError(t, err)
	requireSession(t, sess, got)

	t.Run("minimal", func(t *testing.T) {
		bare := storage.AuthSession{ID: id("as"), StepHash: "h", ExpiresAt: time.Now().Add(longTTL).UTC().Truncate(time.Millisecond)}
		require.NoError(t, s.CreateAuthSession(ctx, bare))
		got, err := s.AuthSession(ctx, bare.ID)
		require.NoError(t, err)
		require.Equal(t, bare.ID, got.ID)
		require.Equal(t, "h", got.StepHash)
		require.Empty(t, got.Request)
		require.Empty(t, got.AMR)
		require.Empty(t, got.Extra)
	})
}

func testAuthSessionCAS(t *testing.T, s storage.Store) {
	ctx := t.Context()
	sess := session()
	require.NoError(t, s.CreateAuthSession(ctx, sess))

	next := sess
	next.StepHash = id("step2")
	next.Stage = "federate"
	next.Failures = 0
	next.Extra = json.RawMessage(`{"hop":2}`)
	next.ExpiresAt = sess.ExpiresAt.Add(time.Minute)

	tests := []struct {
		name   string
		expect string
		err    error
	}{
		{"wrong step", "not-the-step", storage.ErrConflict},
		{"empty step", "", storage.ErrConflict},
		{"next step before it is current", next.StepHash, storage.ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.ErrorIs(t, s.UpdateAuthSession(ctx, tt.expect, next), tt.err)
			require.ErrorIs(t, s.DeleteAuthSession(ctx, sess.ID, tt.expect), tt.err)
			got, err := s.AuthSession(ctx, sess.ID)
			require.NoError(t, err)
			requireSession(t, sess, got) // unchanged
		})
	}

	require.NoError(t, s.UpdateAuthSession(ctx, sess.StepHash, next))
	got, err := s.AuthSession(ctx, sess.ID)
	require.NoError(t, err)
	requireSession(t, next, got)
	// The old step is spent: replaying it with another next step
	// conflicts; the very same call again (a client-library retry of a
	// write that applied) is idempotent and changes nothing.
	other := next
	other.StepHash = id("other-step")
	require.ErrorIs(t, s.UpdateAuthSession(ctx, sess.StepHash, other), storage.ErrConflict)
	require.NoError(t, s.UpdateAuthSession(ctx, sess.StepHash, next))
	require.ErrorIs(t, s.DeleteAuthSession(ctx, sess.ID, sess.StepHash), storage.ErrConflict)

	require.NoError(t, s.DeleteAuthSession(ctx, sess.ID, next.StepHash))
	_, err = s.AuthSession(ctx, sess.ID)
	require.ErrorIs(t, err, storage.ErrNotFound)
	require.ErrorIs(t, s.UpdateAuthSession(ctx, next.StepHash, next), storage.ErrNotFound)
	require.ErrorIs(t, s.DeleteAuthSession(ctx, sess.ID, next.StepHash), storage.ErrNotFound)

	// Unknown IDs are not found, whatever the step.
	missing := session()
	require.ErrorIs(t, s.UpdateAuthSession(ctx, missing.StepHash, missing), storage.ErrNotFound)
	require.ErrorIs(t, s.DeleteAuthSession(ctx, missing.ID, missing.StepHash), storage.ErrNotFound)
}

func testMarkUsed(t *testing.T, s storage.Store) {
	ctx := t.Context()
	key := id("jti")
	exp := time.Now().Add(longTTL)
	require.NoError(t, s.MarkUsed(ctx, key, exp))
	require.ErrorIs(t, s.MarkUsed(ctx, key, exp), storage.ErrConflict)
	require.ErrorIs(t, s.MarkUsed(ctx, key, exp.Add(time.Hour)), storage.ErrConflict)
	require.NoError(t, s.MarkUsed(ctx, id("jti"), exp))
}

// testInvalidArguments pins down the caller mistakes every backend
// refuses rather than storing something that would never expire.
func testInvalidArguments(t *testing.T, s storage.Store) {
	ctx := t.Context()
	tests := []struct {
		name string
		call func() error
	}{
		{"token ttl 0", func() error { return s.CreateToken(ctx, storage.KindAccess, id("s"), record(), 0) }},
		{"token ttl negative", func() error { return s.CreateToken(ctx, storage.KindPAR, id("s"), record(), -time.Second) }},
		{"code ttl 0", func() error { return s.CreateCode(ctx, id("s"), record(), 0) }},
		{"unknown kind", func() error { return s.CreateToken(ctx, storage.Kind("nope"), id("s"), record(), longTTL) }},
		{"session without expiry", func() error {
			sess := session()
			sess.ExpiresAt = time.Time{}
			return s.CreateAuthSession(ctx, sess)
		}},
		{"replay marker in the past", func() error { return s.MarkUsed(ctx, id("jti"), time.Now().Add(-time.Second)) }},
		{"rotation without its id", func() error {
			sig := id("rt")
			if err := s.CreateToken(ctx, storage.KindRefresh, sig, record(), longTTL); err != nil {
				return nil // fails the test: the setup must work
			}
			err := s.InvalidateRefresh(ctx, sig, "")
			if errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrNotFound) {
				return nil // a caller bug, not an answer about the token
			}
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			require.Error(t, err)
			require.NotErrorIs(t, err, storage.ErrUnavailable)
		})
	}
	_, err := s.Token(ctx, storage.Kind("nope"), id("s"))
	require.Error(t, err)
}

// testExpiry creates one of every artefact with a short TTL, checks each
// is there, waits once past the TTL and checks each is gone for every
// operation that could still find it.
func testExpiry(t *testing.T, s storage.Store) {
	ctx := t.Context()
	type check struct {
		name string
		gone func() error // must return ErrNotFound after expiry
	}
	var checks []check

	for _, kind := range storage.Kinds {
		sig := id("sig")
		require.NoError(t, s.CreateToken(ctx, kind, sig, record(), shortTTL))
		_, err := s.Token(ctx, kind, sig)
		require.NoError(t, err, "kind %s before expiry", kind)
		checks = append(checks,
			check{"Token " + string(kind), func() error { _, err := s.Token(ctx, kind, sig); return err }},
			check{"ConsumeToken " + string(kind), func() error { _, err := s.ConsumeToken(ctx, kind, sig); return err }},
		)
	}

	code := id("code")
	require.NoError(t, s.CreateCode(ctx, code, record(), shortTTL))
	checks = append(checks,
		check{"code of CreateCode", func() error { _, err := s.Token(ctx, storage.KindCode, code); return err }},
		check{"pkce of CreateCode", func() error { _, err := s.Token(ctx, storage.KindPKCE, code); return err }},
		check{"InvalidateCode", func() error { return s.InvalidateCode(ctx, code) }},
	)

	// Invalidation keeps the code's TTL: it does not outlive it.
	used := id("code")
	require.NoError(t, s.CreateCode(ctx, used, record(), shortTTL))
	require.NoError(t, s.InvalidateCode(ctx, used))
	checks = append(checks, check{"invalidated code", func() error { _, err := s.Token(ctx, storage.KindCode, used); return err }})

	// Rotation keeps the refresh token's TTL: neither the token nor its
	// mark outlives it, and no mark is left to flag a later token.
	rotated := id("rt")
	require.NoError(t, s.CreateToken(ctx, storage.KindRefresh, rotated, record(), shortTTL))
	require.NoError(t, s.InvalidateRefresh(ctx, rotated, "successor"))
	checks = append(checks,
		check{"rotated refresh token", func() error { _, err := s.Token(ctx, storage.KindRefresh, rotated); return err }},
		check{"InvalidateRefresh", func() error { return s.InvalidateRefresh(ctx, rotated, "successor") }},
	)

	sess := session()
	sess.ExpiresAt = time.Now().Add(shortTTL)
	require.NoError(t, s.CreateAuthSession(ctx, sess))
	_, err := s.AuthSession(ctx, sess.ID)
	require.NoError(t, err, "session before expiry")
	next := sess
	next.StepHash = id("step")
	checks = append(checks,
		check{"AuthSession", func() error { _, err := s.AuthSession(ctx, sess.ID); return err }},
		check{"UpdateAuthSession", func() error { return s.UpdateAuthSession(ctx, sess.StepHash, next) }},
		check{"DeleteAuthSession", func() error { return s.DeleteAuthSession(ctx, sess.ID, sess.StepHash) }},
	)

	// An update moves the expiry to next.ExpiresAt.
	moved := session()
	require.NoError(t, s.CreateAuthSession(ctx, moved))
	movedNext := moved
	movedNext.StepHash = id("step")
	movedNext.ExpiresAt = time.Now().Add(shortTTL)
	require.NoError(t, s.UpdateAuthSession(ctx, moved.StepHash, movedNext))
	checks = append(checks, check{"updated session", func() error { _, err := s.AuthSession(ctx, moved.ID); return err }})

	jti := id("jti")
	require.NoError(t, s.MarkUsed(ctx, jti, time.Now().Add(shortTTL)))
	require.ErrorIs(t, s.MarkUsed(ctx, jti, time.Now().Add(shortTTL)), storage.ErrConflict)

	// A request's index lives as long as its longest-lived token: a
	// later, shorter token must not shorten it.
	rec := record()
	long, short := id("sig"), id("sig")
	require.NoError(t, s.CreateToken(ctx, storage.KindAccess, long, rec, longTTL))
	require.NoError(t, s.CreateToken(ctx, storage.KindAccess, short, rec, shortTTL))

	// Every artefact expires at most shortTTL after its creation, which
	// ended before now.
	time.Sleep(shortTTL + expiryMargin)

	for _, c := range checks {
		require.ErrorIs(t, c.gone(), storage.ErrNotFound, c.name)
	}
	// The replay window is over: the key may be used again.
	require.NoError(t, s.MarkUsed(ctx, jti, time.Now().Add(longTTL)), "MarkUsed after expiry")

	require.NoError(t, s.RevokeRequest(ctx, storage.KindAccess, rec.RequestID))
	_, err = s.Token(ctx, storage.KindAccess, long)
	require.ErrorIs(t, err, storage.ErrNotFound, "long-lived token survived revocation: the index expired early")
}

// race is one single-use transition raced by racers goroutines.
type race struct {
	name string
	// setup prepares the artefact and returns racer i's attempt.
	setup func(t *testing.T) func(i int) error
	// lose lists the errors a loser may get (errors.Is).
	lose []error
	// after checks the final state, given the winner's index.
	after func(t *testing.T, winner int)
}

// testRace starts racers goroutines behind a barrier on every single-use
// transition and requires exactly one winner.
func testRace(t *testing.T, s storage.Store) {
	ctx := t.Context()
	sess := session()
	step := func(i int) string { return fmt.Sprintf("%s-next-%d", sess.StepHash, i) }
	tests := []race{
		{
			name: "InvalidateCode",
			setup: func(t *testing.T) func(int) error {
				sig := id("code")
				require.NoError(t, s.CreateCode(ctx, sig, record(), longTTL))
				t.Cleanup(func() {
					_, err := s.Token(context.Background(), storage.KindCode, sig)
					assert.ErrorIs(t, err, storage.ErrInvalidated)
				})
				return func(int) error { return s.InvalidateCode(ctx, sig) }
			},
			lose: []error{storage.ErrConflict},
		},
		{
			// Refresh-token rotation: of concurrent refreshes with one
			// token exactly one may issue a successor (RFC 9700 §4.14.2).
			name: "InvalidateRefresh",
			setup: func(t *testing.T) func(int) error {
				sig := id("rt")
				require.NoError(t, s.CreateToken(ctx, storage.KindRefresh, sig, record(), longTTL))
				t.Cleanup(func() {
					_, err := s.Token(context.Background(), storage.KindRefresh, sig)
					assert.ErrorIs(t, err, storage.ErrInvalidated)
				})
				// Each racer rotates to a successor of its own.
				return func(i int) error { return s.InvalidateRefresh(ctx, sig, fmt.Sprintf("successor-%d", i)) }
			},
			lose: []error{storage.ErrConflict},
		},
		{
			name: "ConsumeToken PAR",
			setup: func(t *testing.T) func(int) error {
				uri := "urn:ietf:params:oauth:request_uri:" + id("par")
				rec := record()
				require.NoError(t, s.CreateToken(ctx, storage.KindPAR, uri, rec, longTTL))
				return func(int) error {
					got, err := s.ConsumeToken(ctx, storage.KindPAR, uri)
					if err == nil && got.RequestID != rec.RequestID {
						return fmt.Errorf("winner got the wrong record %q", got.RequestID)
					}
					return err
				}
			},
			lose: []error{storage.ErrNotFound},
		},
		{
			name: "UpdateAuthSession",
			setup: func(t *testing.T) func(int) error {
				require.NoError(t, s.CreateAuthSession(ctx, sess))
				return func(i int) error {
					next := sess
					next.StepHash = step(i) // each racer holds its own next secret
					next.Failures = i
					return s.UpdateAuthSession(ctx, sess.StepHash, next)
				}
			},
			lose: []error{storage.ErrConflict},
			after: func(t *testing.T, winner int) {
				got, err := s.AuthSession(ctx, sess.ID)
				require.NoError(t, err)
				require.Equal(t, step(winner), got.StepHash)
				require.Equal(t, winner, got.Failures)
			},
		},
		{
			name: "DeleteAuthSession",
			setup: func(t *testing.T) func(int) error {
				sess := session()
				require.NoError(t, s.CreateAuthSession(ctx, sess))
				return func(int) error { return s.DeleteAuthSession(ctx, sess.ID, sess.StepHash) }
			},
			// Losers find the session gone; a backend may also see the
			// winner's step change first.
			lose: []error{storage.ErrNotFound, storage.ErrConflict},
		},
		{
			name: "MarkUsed",
			setup: func(t *testing.T) func(int) error {
				key := id("jti")
				exp := time.Now().Add(longTTL)
				return func(int) error { return s.MarkUsed(ctx, key, exp) }
			},
			lose: []error{storage.ErrConflict},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attempt := tt.setup(t)
			start := make(chan struct{})
			errs := make([]error, racers)
			var ready, done sync.WaitGroup
			ready.Add(racers)
			done.Add(racers)
			for i := range racers {
				go func() {
					defer done.Done()
					ready.Done()
					<-start
					errs[i] = attempt(i)
				}()
			}
			ready.Wait() // every racer is parked at the barrier
			close(start)
			done.Wait()

			winner := -1
			for i, err := range errs {
				if err == nil {
					require.Equal(t, -1, winner, "two winners: racers %d and %d", winner, i)
					winner = i
					continue
				}
				if !isAny(err, tt.lose) {
					require.ErrorIs(t, err, tt.lose[0], "racer %d", i)
				}
			}
			require.NotEqual(t, -1, winner, "no winner")
			if tt.after != nil {
				tt.after(t, winner)
			}
		})
	}
}

func isAny(err error, targets []error) bool {
	for _, target := range targets {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// testTokenBatcher covers the optional storage.TokenBatcher capability:
// batched writes round-trip, are indexed for RevokeRequest, and the
// batch's deletes apply.
func testTokenBatcher(t *testing.T, s storage.Store) {
	b, ok := s.(storage.TokenBatcher)
	if !ok {
		t.Fatalf("%T does not implement storage.TokenBatcher; every fedas backend must", s)
	}
	ctx := t.Context()
	rec := record()
	gone := id("gone")
	require.NoError(t, s.CreateToken(ctx, storage.KindPKCE, gone, rec, time.Minute))
	at, rt := id("at"), id("rt")
	require.NoError(t, b.CreateTokens(ctx, []storage.TokenWrite{
		{Kind: storage.KindAccess, Signature: at, Rec: rec, TTL: time.Minute},
		{Kind: storage.KindRefresh, Signature: rt, Rec: rec, TTL: time.Minute},
	}, storage.KindPKCE, []string{gone}))
	for _, k := range []struct {
		kind storage.Kind
		sig  string
	}{{storage.KindAccess, at}, {storage.KindRefresh, rt}} {
		got, err := s.Token(ctx, k.kind, k.sig)
		require.NoError(t, err)
		require.Equal(t, rec.RequestID, got.RequestID)
	}
	_, err := s.Token(ctx, storage.KindPKCE, gone)
	require.ErrorIs(t, err, storage.ErrNotFound)
	require.NoError(t, s.RevokeRequest(ctx, storage.KindAccess, rec.RequestID))
	_, err = s.Token(ctx, storage.KindAccess, at)
	require.ErrorIs(t, err, storage.ErrNotFound)
}

// testCodeRedeemer covers storage.CodeRedeemer: of concurrent redeemers
// exactly one gets the code without error and exactly one the PKCE
// record; every other sees ErrInvalidated with the record, the code then
// is redeemed for InvalidateCode too, and a missing code is ErrNotFound.
func testCodeRedeemer(t *testing.T, s storage.Store) {
	cr, ok := s.(storage.CodeRedeemer)
	if !ok {
		t.Fatalf("%T does not implement storage.CodeRedeemer; every fedas backend must", s)
	}
	ctx := t.Context()
	rec := record()
	sig := id("code")
	require.NoError(t, s.CreateCode(ctx, sig, rec, time.Minute))

	var wins, pkces, losses atomic.Int32
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := 0; i < racers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			got, pkce, err := cr.RedeemCode(ctx, sig)
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, storage.ErrInvalidated):
				losses.Add(1)
			default:
				t.Errorf("RedeemCode: %v", err)
				return
			}
			assert.Equal(t, rec.RequestID, got.RequestID)
			if pkce != nil {
				pkces.Add(1)
				assert.Equal(t, rec.RequestID, pkce.RequestID)
			}
		}()
	}
	close(gate)
	wg.Wait()
	require.EqualValues(t, 1, wins.Load(), "exactly one redemption wins")
	require.EqualValues(t, racers-1, losses.Load(), "every other sees the code redeemed")
	require.EqualValues(t, 1, pkces.Load(), "exactly one redeemer consumes the PKCE record")

	require.ErrorIs(t, s.InvalidateCode(ctx, sig), storage.ErrConflict, "a redeemed code is invalidated")
	got, err := s.Token(ctx, storage.KindCode, sig)
	require.ErrorIs(t, err, storage.ErrInvalidated)
	require.Equal(t, rec.RequestID, got.RequestID)
	_, pkce, err := cr.RedeemCode(ctx, sig)
	require.ErrorIs(t, err, storage.ErrInvalidated)
	require.Nil(t, pkce)

	// An invalidated code is not redeemed again.
	sig2 := id("code2")
	require.NoError(t, s.CreateCode(ctx, sig2, rec, time.Minute))
	require.NoError(t, s.InvalidateCode(ctx, sig2))
	_, _, err = cr.RedeemCode(ctx, sig2)
	require.ErrorIs(t, err, storage.ErrInvalidated)

	_, _, err = cr.RedeemCode(ctx, id("missing"))
	require.ErrorIs(t, err, storage.ErrNotFound)
}

// testRefreshRotator covers storage.RefreshRotator: of concurrent
// rotations of one refresh token exactly one wins, every rotation's
// writes are stored and indexed whatever its outcome, a repeat of the
// winner's rotation id succeeds again, and a missing token is
// ErrNotFound with the writes stored.
func testRefreshRotator(t *testing.T, s storage.Store) {
	rr, ok := s.(storage.RefreshRotator)
	if !ok {
		t.Fatalf("%T does not implement storage.RefreshRotator; every fedas backend must", s)
	}
	ctx := t.Context()
	rec := record()
	rec.RequestID = id("req")
	old := id("rt")
	require.NoError(t, s.CreateToken(ctx, storage.KindRefresh, old, rec, time.Minute))
	successor := func(i int) (string, string, []storage.TokenWrite) {
		at, rt := id(fmt.Sprintf("at%d", i)), id(fmt.Sprintf("rt%d", i))
		return at, rt, []storage.TokenWrite{
			{Kind: storage.KindAccess, Signature: at, Rec: rec, TTL: time.Minute},
			{Kind: storage.KindRefresh, Signature: rt, Rec: rec, TTL: time.Minute},
		}
	}
	var wins atomic.Int32
	var winner atomic.Value
	var wg sync.WaitGroup
	gate := make(chan struct{})
	sigs := make([][2]string, racers)
	for i := 0; i < racers; i++ {
		at, rt, writes := successor(i)
		sigs[i] = [2]string{at, rt}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			switch err := rr.RotateRefresh(ctx, writes, old, rt); {
			case err == nil:
				wins.Add(1)
				winner.Store(rt)
			case errors.Is(err, storage.ErrConflict):
			default:
				t.Errorf("RotateRefresh: %v", err)
			}
		}()
	}
	close(gate)
	wg.Wait()
	require.EqualValues(t, 1, wins.Load(), "exactly one rotation wins")
	for _, sg := range sigs {
		_, err := s.Token(ctx, storage.KindAccess, sg[0])
		require.NoError(t, err, "every rotation's access token is stored")
		_, err = s.Token(ctx, storage.KindRefresh, sg[1])
		require.NoError(t, err, "every rotation's refresh token is stored")
	}
	_, err := s.Token(ctx, storage.KindRefresh, old)
	require.ErrorIs(t, err, storage.ErrInvalidated)
	// A retry of the winner's call applies again.
	at, _, writes := successor(racers)
	require.NoError(t, rr.RotateRefresh(ctx, writes, old, winner.Load().(string)))
	_, err = s.Token(ctx, storage.KindAccess, at)
	require.NoError(t, err)
	// Every successor is indexed under the grant: revoking it removes all.
	require.NoError(t, s.RevokeRequest(ctx, storage.KindRefresh, rec.RequestID))
	require.NoError(t, s.RevokeRequest(ctx, storage.KindAccess, rec.RequestID))
	for _, sg := range sigs {
		_, err := s.Token(ctx, storage.KindAccess, sg[0])
		require.ErrorIs(t, err, storage.ErrNotFound)
		_, err = s.Token(ctx, storage.KindRefresh, sg[1])
		require.ErrorIs(t, err, storage.ErrNotFound)
	}
	// A token that is gone: not found, the writes stand.
	at, rt, writes := successor(racers + 1)
	require.ErrorIs(t, rr.RotateRefresh(ctx, writes, id("missing"), rt), storage.ErrNotFound)
	_, err = s.Token(ctx, storage.KindAccess, at)
	require.NoError(t, err)
}
