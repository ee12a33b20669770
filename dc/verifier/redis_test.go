package verifier

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/fedas/fedas/dc"
	"github.com/fedas/fedas/storage/redisstore"
	"github.com/fedas/fedas/storage/redistest"
)

func redisStore(t *testing.T, addrs []string, cluster bool) *redisstore.Store {
	t.Helper()
	s, err := redisstore.New(t.Context(), redisstore.Options{Addrs: addrs, Cluster: cluster, Prefix: "fedas:"}, zaptest.NewLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestRedis_Paths: every path of TestPaths_Happy on a real Redis (single
// node and cluster), and the keys a transaction leaves: two, each with a
// TTL ≤ MaxTTL, and their size (MEMORY USAGE; target ≤ 2 KB per
// transaction, docs/architecture.md "Local steps").
func TestRedis_Paths(t *testing.T) {
	single := redistest.Start(t)
	cluster := redistest.StartCluster(t)
	backends := map[string]func(t *testing.T) *redisstore.Store{
		"single":  func(t *testing.T) *redisstore.Store { return redisStore(t, []string{single.Addr()}, false) },
		"cluster": func(t *testing.T) *redisstore.Store { return redisStore(t, cluster.Addrs(), true) },
	}
	for name, mk := range backends {
		t.Run(name, func(t *testing.T) {
			for _, flow := range []dc.Flow{dc.FlowSameDevice, dc.FlowCrossDevice, dc.FlowDCAPI, dc.FlowInteractive} {
				t.Run(string(flow), func(t *testing.T) {
					e := newEnv(t, mk(t), nil)
					runHappy(t, e, flow, nil, false)
				})
			}
		})
	}

	// Size of one same-device transaction with a payment's transaction
	// data, after the verified result is stored.
	st := redisStore(t, []string{single.Addr()}, false)
	e := newEnv(t, st, nil)
	td := base64.RawURLEncoding.EncodeToString([]byte(`{"type":"urn:eudi:sca:payment:1","credential_ids":["pid"],"payload":{"amount":"10.00","currency":"EUR","payee":"ACME Shop GmbH"}}`))
	tx := e.begin(t, dc.FlowSameDevice, func(r *dc.BeginRequest) {
		r.TransactionData = []string{td}
		r.TTL = time.Minute
	})
	_, r := e.walletRun(t, tx, wallet{})
	require.Equal(t, http.StatusOK, r.status)
	_, ru := parseWalletURL(t, tx.RequestURI)
	reqID := ru[strings.LastIndexByte(ru, '/')+1:]
	ctx := t.Context()
	total := int64(0)
	for _, k := range []string{"fedas:dctx:{" + tx.ID + "}", "fedas:dcreq:{" + reqID + "}"} {
		n, err := st.Client().MemoryUsage(ctx, k).Result()
		require.NoError(t, err, k)
		ttl, err := st.Client().PTTL(ctx, k).Result()
		require.NoError(t, err)
		require.Greater(t, ttl, time.Duration(0), k)
		require.LessOrEqual(t, ttl, MaxTTL, k)
		total += n
	}
	t.Logf("one same-device transaction with transaction data and its verified result: %d bytes of Redis (MEMORY USAGE, both keys)", total)
	require.LessOrEqual(t, total, int64(2048), "≤ 2 KB per transaction")
}
