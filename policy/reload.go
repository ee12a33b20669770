package policy

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"go.uber.org/zap"

	"github.com/fedas/fedas/config"
)

// Reload builds a snapshot from the configuration load returns and
// publishes it. An invalid configuration changes nothing: the current
// snapshot keeps serving, and every problem is logged and returned. Parts
// of the configuration that are not policy (issuer, listen address,
// storage, keys, lifetimes, limits) take effect only at a restart; a
// change to them is logged as such (docs/operations.md "Reloading the configuration").
func (src *Source) Reload(load func() (*config.Config, error), o BuildOptions, log *zap.Logger) error {
	if log == nil {
		log = zap.NewNop()
	}
	cfg, err := load()
	if err == nil {
		err = cfg.Validate()
	}
	var snap *Snapshot
	if err == nil {
		snap, err = Build(cfg, o)
	}
	if err != nil {
		problems := config.Problems(err)
		for _, p := range problems {
			log.Warn("config reload refused: keeping the current policy", zap.String("problem", p))
		}
		return fmt.Errorf("config reload refused (%d problems): %w", len(problems), err)
	}
	old := src.Current()
	for _, f := range RestartOnly(old.Config, cfg) {
		log.Warn("config reload: this setting takes effect only after a restart", zap.String("setting", f))
	}
	src.Publish(snap)
	log.Info("config reloaded", zap.Uint64("version", snap.Version), zap.Strings("changes", Diff(old, snap)))
	return nil
}

// RestartOnly names the settings that differ between a and b and take
// effect only at a restart (everything that is not policy).
func RestartOnly(a, b *config.Config) []string {
	var out []string
	check := func(name string, x, y any) {
		if !reflect.DeepEqual(x, y) {
			out = append(out, name)
		}
	}
	check("issuer", a.Issuer, b.Issuer)
	check("listen", a.Listen, b.Listen)
	check("trusted_proxies", a.TrustedProxies, b.TrustedProxies)
	check("storage", a.Storage, b.Storage)
	check("keys", a.Keys.Instance(), b.Keys.Instance())
	check("lifetimes", a.Lifetimes, b.Lifetimes)
	check("limits", a.Limits, b.Limits)
	check("admin", a.Admin, b.Admin)
	check("dev", a.Dev, b.Dev)
	check("scopes", a.Scopes, b.Scopes)
	return out
}

// Diff describes what changed between two snapshots, for the log: ids
// added, removed or changed per kind, and whether routes or the prompt
// changed. It never includes secrets.
func Diff(a, b *Snapshot) []string {
	ca, cb := a.Config, b.Config
	var out []string
	out = diffByID(out, "client", ca.Clients, cb.Clients, func(c config.Client) string { return c.ID })
	out = diffByID(out, "user", ca.Users, cb.Users, func(u config.User) string { return u.Username })
	out = diffByID(out, "downstream", ca.Downstreams, cb.Downstreams, func(d config.Downstream) string { return d.ID })
	out = diffByID(out, "app", ca.Apps, cb.Apps, func(p config.App) string { return p.ID })
	if !reflect.DeepEqual(ca.Routes, cb.Routes) || ca.DefaultRoute != cb.DefaultRoute {
		out = append(out, "routes changed")
	}
	if !reflect.DeepEqual(ca.Prompt, cb.Prompt) {
		out = append(out, "prompt changed")
	}
	if x, y := ca.Keys.ActiveSigningKey, cb.Keys.ActiveSigningKey; x != y {
		// kids are public (published at jwks_uri).
		out = append(out, fmt.Sprintf("active signing key %s → %s", orFirst(x), orFirst(y)))
	}
	if len(out) == 0 {
		out = append(out, "no policy change")
	}
	return []string{strings.Join(out, "; ")}
}

// orFirst names an active_signing_key for the log.
func orFirst(kid string) string {
	if kid == "" {
		return "(first key)"
	}
	return kid
}

// diffByID appends "<kind> <id> added|removed|changed" for two lists of
// configuration entries keyed by id, in id order.
func diffByID[T any](out []string, kind string, a, b []T, id func(T) string) []string {
	old, cur := map[string]T{}, map[string]T{}
	for _, x := range a {
		old[id(x)] = x
	}
	for _, x := range b {
		cur[id(x)] = x
	}
	names := make([]string, 0, len(old)+len(cur))
	for n := range old {
		names = append(names, n)
	}
	for n := range cur {
		if _, ok := old[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		x, inOld := old[n]
		y, inCur := cur[n]
		switch {
		case !inOld:
			out = append(out, kind+" "+n+" added")
		case !inCur:
			out = append(out, kind+" "+n+" removed")
		case !reflect.DeepEqual(x, y):
			out = append(out, kind+" "+n+" changed")
		}
	}
	return out
}
