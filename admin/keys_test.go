package admin_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/admin"
	"github.com/fedas/fedas/admin/admintest"
	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/memory"
)

// twoSigningKeys configures keys.signing_keys with key-a (active) and a
// key without kid (its thumbprint), loaded as serve loads them.
func twoSigningKeys(tb testing.TB) func(*config.Config) {
	dir := tb.TempDir()
	var files []config.KeyFile
	for i, kid := range []string{"key-a", ""} {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(tb, err)
		der, err := x509.MarshalPKCS8PrivateKey(k)
		require.NoError(tb, err)
		p := filepath.Join(dir, []string{"a.pem", "b.pem"}[i])
		require.NoError(tb, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
		files = append(files, config.KeyFile{File: p, KID: kid})
	}
	return func(c *config.Config) {
		c.Keys.SigningKeys, c.Keys.ActiveSigningKey = files, "key-a"
		require.NoError(tb, c.Keys.LoadSigningKeys())
	}
}

// TestAPIKeys: GET /keys lists this instance's signing keys and which one
// signs; PUT /keys/active switches it as one audited commit, with the
// usual If-Match, and refuses a kid this instance does not hold, a
// malformed body and a read token. The versions show the change; the
// export carries keys.active_signing_key; the instance signs with the new
// key at once.
func TestAPIKeys(t *testing.T) {
	in, api := start(t, admintest.Options{Configure: twoSigningKeys(t)})
	w := in.WriteToken
	k, tag := get(t, api, v1+"/keys")
	keys := k["keys"].([]any)
	require.Len(t, keys, 2)
	first, second := keys[0].(map[string]any), keys[1].(map[string]any)
	require.Equal(t, map[string]any{"kid": "key-a", "alg": "ES256", "use": "sig", "active": true, "source": "keys.signing_keys[0]"}, first)
	kidB := second["kid"].(string)
	require.Equal(t, false, second["active"])
	require.Equal(t, "key-a", k["active_signing_key"])
	require.Equal(t, "key-a", k["active"])
	require.Equal(t, "key-a", k["serving"])

	m := refused(t, api.do(t, http.MethodPut, v1+"/keys/active", w, ifMatch(tag), map[string]any{"kid": "key-z"}), http.StatusBadRequest, "invalid_request")
	requireProblem(t, m, "keys.active_signing_key", "active_signing_key", `"key-z" is not one of this instance's signing keys (key-a, `+kidB+`)`)
	for _, body := range []any{map[string]any{}, map[string]any{"kid": 1}, map[string]any{"kid": "key-a", "x": 1}, map[string]any{"kid": "a b"}, map[string]any{"kid": ""}} {
		m = refused(t, api.do(t, http.MethodPut, v1+"/keys/active", w, ifMatch(tag), body), http.StatusBadRequest, "invalid_request")
		requireProblem(t, m, "kid", "kid", "required")
	}
	refused(t, api.do(t, http.MethodPut, v1+"/keys/active", w, nil, map[string]any{"kid": kidB}), http.StatusPreconditionRequired, "precondition_required")
	refused(t, api.do(t, http.MethodPut, v1+"/keys/active", w, ifMatch(`"stale"`), map[string]any{"kid": kidB}), http.StatusPreconditionFailed, "precondition_failed")
	refused(t, api.do(t, http.MethodPut, v1+"/keys/active", in.ReadToken, ifMatch(tag), map[string]any{"kid": kidB}), http.StatusForbidden, "insufficient_scope")
	require.EqualValues(t, 1, head(t, api), "nothing was committed")
	require.Equal(t, "key-a", in.Server.ActiveKID())

	r := api.do(t, http.MethodPut, v1+"/keys/active", w, ifMatch(tag), map[string]any{"kid": kidB})
	res := ok(t, r, http.StatusOK)
	require.Equal(t, true, res["changed"])
	require.Equal(t, "active signing key key-a → "+kidB, res["summary"])
	require.Equal(t, kidB, in.Server.ActiveKID(), "this instance applied it before answering")
	k, tag2 := get(t, api, v1+"/keys")
	require.Equal(t, r.Header.Get("ETag"), tag2)
	require.Equal(t, kidB, k["active"])
	require.Equal(t, kidB, k["serving"])
	require.Equal(t, true, k["keys"].([]any)[1].(map[string]any)["active"])
	ok(t, api.do(t, http.MethodPut, v1+"/keys/active", w, ifMatch(tag2), map[string]any{"kid": kidB}), http.StatusOK)
	require.EqualValues(t, 2, head(t, api), "an unchanged key commits nothing")

	audit := ok(t, api.do(t, http.MethodGet, v1+"/audit", in.ReadToken, nil, nil), http.StatusOK)["items"].([]any)
	last := audit[0].(map[string]any)
	require.Equal(t, "active_signing_key.update", last["action"])
	require.Equal(t, "keys.active_signing_key", last["target"])
	require.Equal(t, "writer", last["actor"])
	require.Contains(t, last["diff"], "active_signing_key: "+kidB)
	ex := api.do(t, http.MethodGet, v1+"/export", w, nil, nil)
	require.Contains(t, string(ex.Body), "active_signing_key: "+kidB)
	require.NotContains(t, string(ex.Body), "signing_keys", "key files are not policy")

	// A rollback is a key switch too.
	ok(t, api.do(t, http.MethodPost, v1+"/versions/1/rollback", w, ifMatch(`"v2"`), nil), http.StatusOK)
	require.Equal(t, "key-a", in.Server.ActiveKID())
}

// TestAPIKeys_Ephemeral: an instance without keys.signing_keys lists no
// key and cannot be given one by kid.
func TestAPIKeys_Ephemeral(t *testing.T) {
	in, api := start(t, admintest.Options{})
	k, tag := get(t, api, v1+"/keys")
	require.Empty(t, k["keys"])
	require.Equal(t, "", k["active"])
	m := refused(t, api.do(t, http.MethodPut, v1+"/keys/active", in.WriteToken, ifMatch(tag), map[string]any{"kid": "key-a"}), http.StatusBadRequest, "invalid_request")
	requireProblem(t, m, "keys.active_signing_key", "active_signing_key", "there are no keys.signing_keys")
}

// TestRetiredKeyWarnings: at start, a key the policy made active within
// the window that this instance no longer publishes is named, with the
// time until which its tokens stay valid; past the window, or while it is
// still published, nothing is said.
func TestRetiredKeyWarnings(t *testing.T) {
	st := memory.New()
	t.Cleanup(func() { _ = st.Close() })
	ctx := context.Background()
	t0 := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	commit := func(v uint64, kid string, at time.Time) {
		doc, err := config.MarshalPolicy(config.Policy{DefaultRoute: "local", Keys: config.PolicyKeys{ActiveSigningKey: kid}})
		require.NoError(t, err)
		require.NoError(t, st.CommitPolicy(ctx, storage.PolicyVersion{Version: v, Parent: v - 1, Doc: doc, Author: "t", Origin: "api", Time: at},
			storage.AuditEntry{Version: v, Time: at, Actor: "t", Action: "active_signing_key.update"}, 100))
	}
	commit(1, "old", t0)
	commit(2, "new", t0.Add(time.Minute)) // old signed until t0+1m
	onlyNew := []config.SigningKey{{KID: "new"}}
	window := 6 * time.Minute

	w, err := admin.RetiredKeyWarnings(ctx, st, onlyNew, t0.Add(3*time.Minute), window)
	require.NoError(t, err)
	require.Len(t, w, 1)
	require.Contains(t, w[0], `signing key "old" signed until 2030-01-01T12:01:00Z (policy version 1)`)
	require.Contains(t, w[0], "stay valid until 2030-01-01T12:07:00Z")

	w, err = admin.RetiredKeyWarnings(ctx, st, onlyNew, t0.Add(8*time.Minute), window)
	require.NoError(t, err)
	require.Empty(t, w, "past the window")
	w, err = admin.RetiredKeyWarnings(ctx, st, append(onlyNew, config.SigningKey{KID: "old"}), t0.Add(3*time.Minute), window)
	require.NoError(t, err)
	require.Empty(t, w, "still published")
	require.False(t, strings.Contains(strings.Join(w, ""), "new"))
}
