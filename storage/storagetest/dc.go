package storagetest

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/storage"
)

// RunDCStore runs the storage.DCStore conformance suite (the internal
// OpenID4VP verifier's transactions, dc/verifier). newStore must return a
// fresh store (or one in its own namespace) for each call and arrange its
// Close with t.Cleanup; subtests run in parallel.
func RunDCStore(t *testing.T, newStore func(t testing.TB) storage.DCStore) {
	tests := []struct {
		name string
		run  func(t *testing.T, s storage.DCStore)
	}{
		{"RoundTrip", testDCRoundTrip},
		{"NotFound", testDCNotFound},
		{"CreateConflict", testDCCreateConflict},
		{"TakeOnce", testDCTakeOnce},
		{"ResultFirstWins", testDCResultFirstWins},
		{"Delete", testDCDelete},
		{"Expiry", testDCExpiry},
		{"RaceTake", testDCRaceTake},
		{"RaceResult", testDCRaceResult},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, newStore(t))
		})
	}
}

// dcIDs returns a fresh transaction and request id.
func dcIDs() (string, string) { return id("dctx"), id("dcreq") }

// testDCRoundTrip: a transaction reads back byte for byte, pending (no
// result) until one is set; the request points at it, untaken.
func testDCRoundTrip(t *testing.T, s storage.DCStore) {
	ctx := t.Context()
	tx, req := dcIDs()
	val := []byte("{\"flow\":\"same_device\",\"bin\":\"\x00\xff\"}")
	require.NoError(t, s.CreateDC(ctx, tx, req, val, longTTL))
	rec, err := s.DC(ctx, tx)
	require.NoError(t, err)
	require.Equal(t, val, rec.Tx)
	require.Nil(t, rec.Result, "pending")
	got, taken, err := s.DCRequest(ctx, req)
	require.NoError(t, err)
	require.Equal(t, tx, got)
	require.False(t, taken)
	require.NoError(t, s.SetDCResult(ctx, tx, []byte("verified")))
	rec, err = s.DC(ctx, tx)
	require.NoError(t, err)
	require.Equal(t, val, rec.Tx)
	require.Equal(t, []byte("verified"), rec.Result)
	// A transaction without a request_uri (DC API) has no pointer.
	tx2, _ := dcIDs()
	require.NoError(t, s.CreateDC(ctx, tx2, "", []byte("dc_api"), longTTL))
	rec, err = s.DC(ctx, tx2)
	require.NoError(t, err)
	require.Equal(t, []byte("dc_api"), rec.Tx)
	// A retried create that applied is not a conflict.
	require.NoError(t, s.CreateDC(ctx, tx, req, val, longTTL))
}

// testDCNotFound: unknown ids are ErrNotFound everywhere, and a result for
// an unknown transaction is not stored.
func testDCNotFound(t *testing.T, s storage.DCStore) {
	ctx := t.Context()
	tx, req := dcIDs()
	_, err := s.DC(ctx, tx)
	require.ErrorIs(t, err, storage.ErrNotFound)
	_, err = s.TakeDCRequest(ctx, req)
	require.ErrorIs(t, err, storage.ErrNotFound)
	_, _, err = s.DCRequest(ctx, req)
	require.ErrorIs(t, err, storage.ErrNotFound)
	require.ErrorIs(t, s.SetDCResult(ctx, tx, []byte("r")), storage.ErrNotFound)
	_, err = s.DC(ctx, tx)
	require.ErrorIs(t, err, storage.ErrNotFound, "SetDCResult created nothing")
	require.NoError(t, s.DeleteDC(ctx, tx, req))
}

// testDCCreateConflict: an id in use with another value is a conflict.
func testDCCreateConflict(t *testing.T, s storage.DCStore) {
	ctx := t.Context()
	tx, req := dcIDs()
	require.NoError(t, s.CreateDC(ctx, tx, req, []byte("a"), longTTL))
	require.ErrorIs(t, s.CreateDC(ctx, tx, req, []byte("b"), longTTL), storage.ErrConflict)
	tx2, _ := dcIDs()
	require.ErrorIs(t, s.CreateDC(ctx, tx2, req, []byte("c"), longTTL), storage.ErrConflict, "request id in use")
	rec, err := s.DC(ctx, tx)
	require.NoError(t, err)
	require.Equal(t, []byte("a"), rec.Tx)
}

// testDCTakeOnce: the request is taken once; afterwards DCRequest still
// finds it, marked taken.
func testDCTakeOnce(t *testing.T, s storage.DCStore) {
	ctx := t.Context()
	tx, req := dcIDs()
	require.NoError(t, s.CreateDC(ctx, tx, req, []byte("t"), longTTL))
	got, err := s.TakeDCRequest(ctx, req)
	require.NoError(t, err)
	require.Equal(t, tx, got)
	_, err = s.TakeDCRequest(ctx, req)
	require.ErrorIs(t, err, storage.ErrConflict)
	got, taken, err := s.DCRequest(ctx, req)
	require.NoError(t, err)
	require.Equal(t, tx, got)
	require.True(t, taken)
}

// testDCResultFirstWins: the second result is refused and the first kept.
func testDCResultFirstWins(t *testing.T, s storage.DCStore) {
	ctx := t.Context()
	tx, req := dcIDs()
	require.NoError(t, s.CreateDC(ctx, tx, req, []byte("t"), longTTL))
	require.NoError(t, s.SetDCResult(ctx, tx, []byte("first")))
	require.ErrorIs(t, s.SetDCResult(ctx, tx, []byte("second")), storage.ErrConflict)
	rec, err := s.DC(ctx, tx)
	require.NoError(t, err)
	require.Equal(t, []byte("first"), rec.Result)
}

// testDCDelete: a deleted transaction and its pointer are gone; a result
// cannot be set afterwards.
func testDCDelete(t *testing.T, s storage.DCStore) {
	ctx := t.Context()
	tx, req := dcIDs()
	require.NoError(t, s.CreateDC(ctx, tx, req, []byte("t"), longTTL))
	require.NoError(t, s.DeleteDC(ctx, tx, req))
	_, err := s.DC(ctx, tx)
	require.ErrorIs(t, err, storage.ErrNotFound)
	_, _, err = s.DCRequest(ctx, req)
	require.ErrorIs(t, err, storage.ErrNotFound)
	require.ErrorIs(t, s.SetDCResult(ctx, tx, []byte("late")), storage.ErrNotFound)
	require.NoError(t, s.DeleteDC(ctx, tx, req), "deleting twice")
}

// testDCExpiry: after its TTL the transaction, its result and its pointer
// are gone.
func testDCExpiry(t *testing.T, s storage.DCStore) {
	ctx := t.Context()
	tx, req := dcIDs()
	require.NoError(t, s.CreateDC(ctx, tx, req, []byte("t"), shortTTL))
	require.NoError(t, s.SetDCResult(ctx, tx, []byte("r")))
	time.Sleep(shortTTL + expiryMargin)
	_, err := s.DC(ctx, tx)
	require.ErrorIs(t, err, storage.ErrNotFound)
	_, err = s.TakeDCRequest(ctx, req)
	require.ErrorIs(t, err, storage.ErrNotFound)
	require.ErrorIs(t, s.SetDCResult(ctx, tx, []byte("r2")), storage.ErrNotFound)
}

// testDCRaceTake: of concurrent fetches of one request exactly one wins.
func testDCRaceTake(t *testing.T, s storage.DCStore) {
	ctx := t.Context()
	tx, req := dcIDs()
	require.NoError(t, s.CreateDC(ctx, tx, req, []byte("t"), longTTL))
	var wins, conflicts atomic.Int64
	var wg sync.WaitGroup
	for range racers {
		wg.Go(func() {
			_, err := s.TakeDCRequest(ctx, req)
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, storage.ErrConflict):
				conflicts.Add(1)
			}
		})
	}
	wg.Wait()
	require.Equal(t, int64(1), wins.Load())
	require.Equal(t, int64(racers-1), conflicts.Load())
}

// testDCRaceResult: of concurrent results exactly one is stored.
func testDCRaceResult(t *testing.T, s storage.DCStore) {
	ctx := t.Context()
	tx, req := dcIDs()
	require.NoError(t, s.CreateDC(ctx, tx, req, []byte("t"), longTTL))
	var wins atomic.Int64
	var winner atomic.Value
	var wg sync.WaitGroup
	for range racers {
		wg.Go(func() {
			v := []byte(id("res"))
			if s.SetDCResult(ctx, tx, v) == nil {
				wins.Add(1)
				winner.Store(v)
			}
		})
	}
	wg.Wait()
	require.Equal(t, int64(1), wins.Load())
	rec, err := s.DC(ctx, tx)
	require.NoError(t, err)
	require.Equal(t, winner.Load(), rec.Result)
}
