package policy

import (
	"errors"
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
		problems := splitErrors(err)
		for _, p := range problems {
			log.Warn("config reload refused: keeping the current policy", zap.String("problem", p))
		}
		return fmt.Errorf("config reload refused (%d problems): %w", len(problems), err)
	}
	old := src.Current()
	for _, f := range restartOnly(old.Config, cfg) {
		log.Warn("config reload: this setting takes effect only after a restart", zap.String("setting", f))
	}
	src.Publish(snap)
	log.Info("config reloaded", zap.Uint64("version", snap.Version), zap.Strings("changes", Diff(old, snap)))
	return nil
}

func splitErrors(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		if inner := errors.Unwrap(e); inner != nil {
			if _, multi := inner.(interface{ Unwrap() []error }); multi {
				walk(inner)
				return
			}
		}
		out = append(out, e.Error())
	}
	walk(err)
	return out
}

func restartOnly(a, b *config.Config) []string {
	var out []string
	check := func(name string, x, y any) {
		if !reflect.DeepEqual(x, y) {
			out = append(out, name)
		}
	}
	check("issuer", a.Issuer, b.Issuer)
	check("listen", a.Listen, b.Listen)
	check("storage", a.Storage, b.Storage)
	check("keys", a.Keys, b.Keys)
	check("lifetimes", a.Lifetimes, b.Lifetimes)
	check("limits", a.Limits, b.Limits)
	return out
}

// Diff describes what changed between two snapshots, for the log: ids
// added, removed or changed per kind, and whether routes or the prompt
// changed. It never includes secrets.
func Diff(a, b *Snapshot) []string {
	var out []string
	ids := func(kind string, x, y map[string]any) {
		var names []string
		for id := range x {
			names = append(names, id)
		}
		for id := range y {
			if _, ok := x[id]; !ok {
				names = append(names, id)
			}
		}
		sort.Strings(names)
		for _, id := range names {
			ox, inX := x[id]
			oy, inY := y[id]
			switch {
			case !inX:
				out = append(out, kind+" "+id+" added")
			case !inY:
				out = append(out, kind+" "+id+" removed")
			case !reflect.DeepEqual(ox, oy):
				out = append(out, kind+" "+id+" changed")
			}
		}
	}
	byID := func(n int, id func(int) string, v func(int) any) map[string]any {
		m := make(map[string]any, n)
		for i := 0; i < n; i++ {
			m[id(i)] = v(i)
		}
		return m
	}
	ca, cb := a.Config, b.Config
	ids("client", byID(len(ca.Clients), func(i int) string { return ca.Clients[i].ID }, func(i int) any { return ca.Clients[i] }),
		byID(len(cb.Clients), func(i int) string { return cb.Clients[i].ID }, func(i int) any { return cb.Clients[i] }))
	ids("user", byID(len(ca.Users), func(i int) string { return ca.Users[i].Username }, func(i int) any { return ca.Users[i] }),
		byID(len(cb.Users), func(i int) string { return cb.Users[i].Username }, func(i int) any { return cb.Users[i] }))
	ids("downstream", byID(len(ca.Downstreams), func(i int) string { return ca.Downstreams[i].ID }, func(i int) any { return ca.Downstreams[i] }),
		byID(len(cb.Downstreams), func(i int) string { return cb.Downstreams[i].ID }, func(i int) any { return cb.Downstreams[i] }))
	ids("app", byID(len(ca.Apps), func(i int) string { return ca.Apps[i].ID }, func(i int) any { return ca.Apps[i] }),
		byID(len(cb.Apps), func(i int) string { return cb.Apps[i].ID }, func(i int) any { return cb.Apps[i] }))
	if !reflect.DeepEqual(ca.Routes, cb.Routes) || ca.DefaultRoute != cb.DefaultRoute {
		out = append(out, "routes changed")
	}
	if !reflect.DeepEqual(ca.Prompt, cb.Prompt) {
		out = append(out, "prompt changed")
	}
	if len(out) == 0 {
		out = append(out, "no policy change")
	}
	return []string{strings.Join(out, "; ")}
}
