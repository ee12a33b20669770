package admin_test

import (
	"context"
	"testing"

	"github.com/fedas/fedas/admin"
	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/memory"
	"github.com/fedas/fedas/storage/redistest"
)

// benchCommit measures one admin write end to end on this instance:
// read the head, validate the whole policy, commit, and apply it here.
func benchCommit(b *testing.B, st storage.PolicyStore) {
	cfg := config.Default()
	ctx := context.Background()
	src, fol, err := admin.StartLive(ctx, admin.LiveOptions{Store: st, Base: cfg, File: config.PolicyOf(cfg),
		Build: policy.BuildOptions{DPoPSeed: server.DownstreamDPoPSeed(make([]byte, 32))}})
	if err != nil {
		b.Fatal(err)
	}
	svc := admin.NewService(admin.ServiceOptions{Store: st, Base: cfg, Source: src, Sync: fol.Sync})
	who := admin.Actor{Name: "bench", Role: admin.RoleWrite, Via: "api"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, tag, err := svc.DefaultRoute(ctx)
		if err != nil {
			b.Fatal(err)
		}
		r := "deny"
		if i%2 == 1 {
			r = "local"
		}
		if _, _, err := svc.SetDefaultRoute(ctx, who, tag, r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCommit_Memory(b *testing.B) {
	m := memory.New()
	defer m.Close()
	benchCommit(b, m)
}

func BenchmarkCommit_Redis(b *testing.B) {
	rs := redistest.Start(b)
	st := sharedRedis(b, rs.Addr(), "fedas:bench:")
	benchCommit(b, st.(storage.PolicyStore))
}
