package memory_test

import (
	"testing"

	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/memory"
	"github.com/fedas/fedas/storage/storagetest"
)

func newStore(t testing.TB) *memory.Store {
	s := memory.New()
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t testing.TB) storage.Store { return newStore(t) })
}

func TestPolicyConformance(t *testing.T) {
	storagetest.RunPolicy(t, func(t testing.TB) storage.PolicyStore { return newStore(t) })
}

func TestRateLimiterConformance(t *testing.T) {
	storagetest.RunRateLimiter(t, func(t testing.TB) storage.RateLimiter { return newStore(t) })
}

func TestLiveCounterConformance(t *testing.T) {
	storagetest.RunLiveCounter(t, func(t testing.TB) storage.LiveCounter { return newStore(t) })
}

func TestFailureCounterConformance(t *testing.T) {
	storagetest.RunFailureCounter(t, func(t testing.TB) storage.FailureCounter { return newStore(t) })
}

func TestDCStoreConformance(t *testing.T) {
	storagetest.RunDCStore(t, func(t testing.TB) storage.DCStore { return newStore(t) })
}

func TestReachStoreConformance(t *testing.T) {
	storagetest.RunReachStore(t, func(t testing.TB) storage.ReachStore { return newStore(t) })
}
