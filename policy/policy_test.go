package policy_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/policy"
)

func snapshot(tb testing.TB, edit func(*config.Config)) (*config.Config, *policy.Snapshot) {
	tb.Helper()
	cfg := config.Default()
	if edit != nil {
		edit(cfg)
	}
	s, err := policy.Build(cfg, policy.BuildOptions{})
	require.NoError(tb, err)
	return cfg, s
}

func TestSnapshot_Lookups(t *testing.T) {
	_, s := snapshot(t, func(c *config.Config) {
		c.Apps = []config.App{{ID: "bank", ClientID: "demo-partner", DeepLink: "https://bank.example/app", Clients: []string{"demo-app"}}}
	})
	c, ok := s.Client("demo-app")
	require.True(t, ok)
	require.True(t, c.FirstParty)
	_, ok = s.Client("nobody")
	require.False(t, ok)
	u, ok, err := s.Users().User(context.Background(), "bob")
	require.NoError(t, err)
	require.True(t, ok)
	require.NotEmpty(t, u.TOTPSecret)
	_, ok, _ = s.Users().User(context.Background(), "mallory")
	require.False(t, ok)
	a, ok := s.App("bank")
	require.True(t, ok)
	require.Equal(t, "demo-partner", a.ClientID)
	a, ok = s.AppForClient("demo-partner")
	require.True(t, ok)
	require.Equal(t, "bank", a.ID)
	require.Nil(t, s.Fed, "no downstreams: local sign-in only")
}

func TestSource_PublishAndContext(t *testing.T) {
	_, s1 := snapshot(t, nil)
	_, s2 := snapshot(t, nil)
	src := policy.NewSource(s1)
	require.Same(t, s1, src.Current())
	require.EqualValues(t, 1, s1.Version)
	src.Publish(s2)
	require.Same(t, s2, src.Current())
	require.EqualValues(t, 2, s2.Version)
	ctx := policy.WithSnapshot(context.Background(), s1)
	require.Same(t, s1, policy.FromContext(ctx), "a request keeps the snapshot it started with")
	require.Nil(t, policy.FromContext(context.Background()))
}

func TestSource_Reload(t *testing.T) {
	_, s := snapshot(t, nil)
	src := policy.NewSource(s)
	core, logs := observer.New(zap.DebugLevel)
	log := zap.New(core)

	tests := []struct {
		name    string
		load    func() (*config.Config, error)
		swapped bool
		logged  string
	}{
		{"valid, one client more", func() (*config.Config, error) {
			c := config.Default()
			c.Clients = append(c.Clients, config.Client{ID: "extra", TokenEndpointAuthMethod: "none", FirstParty: true,
				GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid"}})
			return c, nil
		}, true, "client extra added"},
		{"unreadable", func() (*config.Config, error) { return nil, errors.New("open fedas.yaml: permission denied") }, false, "permission denied"},
		{"invalid: two problems", func() (*config.Config, error) {
			c := config.Default()
			c.Issuer = ""
			c.DefaultRoute = "nowhere"
			return c, nil
		}, false, "issuer"},
		{"restart-only change", func() (*config.Config, error) {
			c := config.Default()
			c.Lifetimes.AccessToken *= 2
			return c, nil
		}, true, "lifetimes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := src.Current()
			logs.TakeAll()
			err := src.Reload(tc.load, policy.BuildOptions{}, log)
			if tc.swapped {
				require.NoError(t, err)
				require.NotSame(t, before, src.Current())
				require.Greater(t, src.Current().Version, before.Version)
			} else {
				require.Error(t, err)
				require.Same(t, before, src.Current(), "an invalid config keeps the current policy")
			}
			var all []string
			for _, e := range logs.All() {
				all = append(all, e.Message, fmt.Sprint(e.ContextMap()))
			}
			require.Contains(t, strings.Join(all, "\n"), tc.logged)
		})
	}
}
