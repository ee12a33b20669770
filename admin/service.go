package admin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/netguard"
	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/storage"
)

// Actor is who makes a change and from where, for versions and the audit
// log.
type Actor struct {
	Name   string
	Role   Role
	Remote string
	// Via is "api" or "console".
	Via string
}

// ServiceOptions are a Service's dependencies.
type ServiceOptions struct {
	Store storage.PolicyStore
	// Base is the configuration of this instance (issuer, dev settings,
	// scopes…): the part of a config that is not policy. Compose joins it
	// with each policy document.
	Base *config.Config
	// Source is this instance's live policy, for the route tester.
	Source *policy.Source
	// Sync, when set, applies the store's head to Source right after a
	// commit, so this instance serves a change before answering it.
	Sync func(ctx context.Context) error
	Log  *zap.Logger
	Now  func() time.Time
	// Net guards URLs admins enter and every fetch the admin surface
	// makes; nil means the strict guard, with loopback allowed only when
	// base.Dev.AllowLoopbackHTTP is set.
	Net *netguard.Options
	// TagKey keys the entity tags (etagOf); instances sharing a store
	// must share it. New derives it from the session key when it is
	// not set.
	TagKey []byte
}

// Service is the admin surface's logic, shared by the REST API and the
// console: every read and every commit of the policy goes through it.
type Service struct {
	o      ServiceOptions
	net    netguard.Options
	log    *zap.Logger
	mu     sync.Mutex
	cache  map[uint64]config.Policy
	tagKey []byte
	// commit is held by the one write of this instance in progress.
	commit chan struct{}
}

// NewService returns a Service.
func NewService(o ServiceOptions) *Service {
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	net := netguard.Options{AllowLoopback: o.Base.Dev.AllowLoopbackHTTP}
	if o.Net != nil {
		net = *o.Net
	}
	return &Service{o: o, net: net, log: o.Log, cache: map[uint64]config.Policy{}, tagKey: o.TagKey, commit: make(chan struct{}, 1)}
}

// tag is the entity tag of v (etagOf under the service's key).
func (s *Service) tag(v any) string {
	s.mu.Lock()
	if s.tagKey == nil {
		s.tagKey = randomBytes(32)
	}
	key := s.tagKey
	s.mu.Unlock()
	return etagOf(key, v)
}

// keyTags sets the key of the entity tags unless the options gave one.
func (s *Service) keyTags(key []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.o.TagKey) == 0 {
		s.tagKey = key
	}
}

// Base returns the instance configuration policies are composed with.
func (s *Service) Base() *config.Config { return s.o.Base }

// Net returns the SSRF guard options of admin fetches.
func (s *Service) Net() netguard.Options { return s.net }

// head reads the current version and its document.
func (s *Service) head(ctx context.Context) (uint64, config.Policy, error) {
	v, err := s.o.Store.PolicyHead(ctx)
	if err != nil {
		return 0, config.Policy{}, storeError(err)
	}
	if v == 0 {
		return 0, config.Policy{}, nil
	}
	p, err := s.version(ctx, v)
	return v, p, err
}

func (s *Service) version(ctx context.Context, v uint64) (config.Policy, error) {
	s.mu.Lock()
	p, ok := s.cache[v]
	s.mu.Unlock()
	if ok {
		return p.Clone(), nil
	}
	pv, err := s.o.Store.PolicyVersion(ctx, v)
	if errors.Is(err, storage.ErrNotFound) {
		return config.Policy{}, errNotFound(fmt.Sprintf("version %d", v))
	}
	if err != nil {
		return config.Policy{}, storeError(err)
	}
	p, err = config.ParsePolicy(pv.Doc)
	if err != nil {
		return config.Policy{}, fmt.Errorf("admin: stored version %d does not parse: %w", v, err)
	}
	s.mu.Lock()
	if len(s.cache) > 64 {
		clear(s.cache)
	}
	s.cache[v] = p
	s.mu.Unlock()
	return p.Clone(), nil
}

func storeError(err error) error {
	if errors.Is(err, storage.ErrUnavailable) {
		return errUnavailable()
	}
	return err
}

// HeadETag is the entity tag of the whole policy at version v, for the
// writes that replace it (import, rollback).
func HeadETag(v uint64) string { return `"v` + strconv.FormatUint(v, 10) + `"` }

// checkIfMatch compares If-Match with the current tag (RFC 9110 §13.1.1);
// "*" matches any current representation.
func checkIfMatch(ifMatch, current string) error {
	if ifMatch == "" {
		return errNoIfMatch()
	}
	if strings.TrimSpace(ifMatch) == "*" {
		return nil
	}
	for _, t := range strings.Split(ifMatch, ",") {
		if strings.TrimSpace(t) == current {
			return nil
		}
	}
	return errPrecondition()
}

// Committed is the result of a write.
type Committed struct {
	// Version is the policy version in force after the write (unchanged
	// when the write changed nothing).
	Version uint64 `json:"version"`
	// Changed is false for a write that left the policy as it was.
	Changed bool   `json:"changed"`
	Summary string `json:"summary,omitempty"`
}

// change applies mutate to the head policy and commits the result as the
// next version, or refuses it whole. mutate runs again on the new head
// when another writer commits first, so it must check preconditions
// (If-Match) itself against the policy it is given.
func (s *Service) change(ctx context.Context, a Actor, action, target string, mutate func(p *config.Policy) (prefix string, err error)) (Committed, error) {
	// Writers on this instance take turns: racing each other through the
	// store's compare-and-set, a dozen of them (a script's parallel
	// calls) would exhaust the retries below, which are for the writers
	// of other instances.
	select {
	case s.commit <- struct{}{}:
		defer func() { <-s.commit }()
	case <-ctx.Done():
		return Committed{}, ctx.Err()
	}
	for attempt := 0; attempt < 8; attempt++ {
		head, cur, err := s.head(ctx)
		if err != nil {
			return Committed{}, err
		}
		next := cur.Clone()
		prefix, err := mutate(&next)
		if err != nil {
			return Committed{}, err
		}
		if err := s.validate(cur, next, prefix); err != nil {
			return Committed{}, err
		}
		before, after := redactedYAML(cur), redactedYAML(next)
		if before == after {
			return Committed{Version: head}, nil
		}
		doc, err := config.MarshalPolicy(next)
		if err != nil {
			return Committed{}, err
		}
		now := s.o.Now().UTC()
		summary := summarize(cur, next)
		origin := a.Via
		if action == "rollback" || action == "import" {
			origin = action
		}
		v := storage.PolicyVersion{Version: head + 1, Parent: head, Doc: doc, Author: a.Name, Origin: origin, Time: now, Summary: summary}
		entry := storage.AuditEntry{Version: head + 1, Time: now, Actor: a.Name, Role: string(a.Role), Remote: a.Remote, Action: action, Target: target, Summary: summary, Diff: lineDiff(before, after)}
		err = s.o.Store.CommitPolicy(ctx, v, entry, s.o.Base.Admin.Retention)
		if errors.Is(err, storage.ErrConflict) {
			continue // another writer committed first: re-apply on its version
		}
		if err != nil {
			// The store may have applied the commit and lost only its
			// answer (a connection reset after the script ran): "nothing
			// was changed" must be true when said.
			landed, known := s.landed(ctx, v)
			switch {
			case !known:
				return Committed{}, &Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", RetryAfter: 2,
					Description: "the policy store failed during the commit, which may have been made: read the status and the resource before retrying"}
			case !landed:
				return Committed{}, storeError(err)
			}
		}
		s.log.Info("policy changed",
			zap.Uint64("version", v.Version), zap.String("actor", a.Name), zap.String("role", string(a.Role)),
			zap.String("remote", a.Remote), zap.String("via", a.Via), zap.String("action", action),
			zap.String("target", target), zap.String("summary", summary), zap.String("diff", entry.Diff))
		if s.o.Sync != nil {
			if err := s.o.Sync(ctx); err != nil {
				s.log.Warn("policy committed but not yet applied on this instance", zap.Uint64("version", v.Version), zap.Error(err))
			}
		}
		return Committed{Version: v.Version, Changed: true, Summary: summary}, nil
	}
	return Committed{}, &Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: "too many concurrent changes; nothing was changed", RetryAfter: 1}
}

// landed reports whether the store holds v as committed (known is false
// when the store cannot say).
func (s *Service) landed(ctx context.Context, v storage.PolicyVersion) (landed, known bool) {
	pv, err := s.o.Store.PolicyVersion(ctx, v.Version)
	if errors.Is(err, storage.ErrNotFound) {
		return false, true
	}
	if err != nil {
		return false, false
	}
	return bytes.Equal(pv.Doc, v.Doc) && pv.Author == v.Author && pv.Time.Equal(v.Time), true
}

// validate composes p with the base configuration (the config file's own
// checks, every problem at once) and checks every URL an admin entered
// against the SSRF guard.
func (s *Service) validate(cur, p config.Policy, prefix string) error {
	var problems []error
	reported := map[string]bool{}
	// A secret reference names a variable or file of this host: one an
	// admin adds is held to the secrets directory and the FEDAS_SECRET_
	// prefix, or any host secret could be sent to a downstream of the
	// admin's choosing (docs/admin.md "Secrets").
	old := map[string]string{}
	for _, r := range secretRefs(cur) {
		old[r.key] = r.value
	}
	var refused []string
	for _, r := range secretRefs(p) {
		if r.value == "" || old[r.key] == r.value {
			continue
		}
		if msg := s.refProblem(r); msg != "" {
			problems = append(problems, fmt.Errorf("%s: %s", r.path, msg))
			refused = append(refused, r.path)
		}
	}
	// A refused reference is never read: the rest is validated without
	// it, and the problems its absence causes in its entry are not
	// reported twice.
	checked := p
	if len(refused) > 0 {
		checked = withoutRefs(p, refused)
	}
	cfg, err := config.Compose(s.o.Base, checked)
	if err != nil && len(refused) > 0 {
		var keep []error
		for _, line := range config.Problems(err) {
			if !underAny(line, refused) {
				keep = append(keep, errors.New(line))
			}
		}
		err = errors.Join(keep...)
	}
	if err != nil {
		problems = append(problems, err)
		for _, line := range config.Problems(err) {
			if m := problemPath.FindStringSubmatch(line); m != nil {
				reported[m[1]] = true
			}
		}
	} else if _, berr := policy.Build(cfg, policy.BuildOptions{}); berr != nil {
		// What Validate cannot see but serving would refuse (a malformed
		// inline key): every instance would keep its old version.
		problems = append(problems, buildProblem(p, berr))
	}
	for _, u := range enteredURLs(p) {
		if u.url == "" || reported[u.path] {
			continue
		}
		if gerr := netguard.CheckURL(u.url, s.net); gerr != nil {
			var ne *netguard.Error
			msg := gerr.Error()
			if errors.As(gerr, &ne) {
				msg = fmt.Sprintf("%q is not an allowed destination: %s", u.url, ne.Reason)
			}
			problems = append(problems, fmt.Errorf("%s: %s", u.path, msg))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return validationError(errors.Join(problems...), prefix)
}

// secretRef is one secret reference of a policy: key identifies it by
// entry id (so reordering is not a change), path by position.
type secretRef struct {
	key, path, value string
	env              bool
}

func secretRefs(p config.Policy) []secretRef {
	var out []secretRef
	add := func(kind, id string, i int, field, v string, env bool) {
		out = append(out, secretRef{key: kind + "/" + id + "/" + field, path: fmt.Sprintf("%s[%d].%s", kind, i, field), value: v, env: env})
	}
	for i, c := range p.Clients {
		add("clients", c.ID, i, "secret_env", c.SecretEnv, true)
		add("clients", c.ID, i, "secret_file", c.SecretFile, false)
		add("clients", c.ID, i, "jwks_file", c.JWKSFile, false)
	}
	for i, d := range p.Downstreams {
		add("downstreams", d.ID, i, "auth.key_env", d.Auth.KeyEnv, true)
		add("downstreams", d.ID, i, "auth.key_file", d.Auth.KeyFile, false)
		add("downstreams", d.ID, i, "auth.secret_env", d.Auth.SecretEnv, true)
		add("downstreams", d.ID, i, "auth.secret_file", d.Auth.SecretFile, false)
	}
	for i, u := range p.Users {
		add("users", u.Username, i, "totp_secret_env", u.TOTPSecretEnv, true)
		add("users", u.Username, i, "totp_secret_file", u.TOTPSecretFile, false)
	}
	return out
}

// withoutRefs returns a copy of p with the references at paths blanked.
func withoutRefs(p config.Policy, paths []string) config.Policy {
	p = p.Clone()
	drop := map[string]bool{}
	for _, x := range paths {
		drop[x] = true
	}
	for i := range p.Clients {
		c := &p.Clients[i]
		blank(drop, fmt.Sprintf("clients[%d].", i), map[string]*string{"secret_env": &c.SecretEnv, "secret_file": &c.SecretFile, "jwks_file": &c.JWKSFile})
	}
	for i := range p.Downstreams {
		a := &p.Downstreams[i].Auth
		blank(drop, fmt.Sprintf("downstreams[%d].", i), map[string]*string{"auth.key_env": &a.KeyEnv, "auth.key_file": &a.KeyFile, "auth.secret_env": &a.SecretEnv, "auth.secret_file": &a.SecretFile})
	}
	for i := range p.Users {
		u := &p.Users[i]
		blank(drop, fmt.Sprintf("users[%d].", i), map[string]*string{"totp_secret_env": &u.TOTPSecretEnv, "totp_secret_file": &u.TOTPSecretFile})
	}
	return p
}

func blank(drop map[string]bool, prefix string, fields map[string]*string) {
	for name, f := range fields {
		if drop[prefix+name] {
			*f = ""
		}
	}
}

// underAny reports whether a problem line is about the entry (or the
// auth block) of one of the refused references.
func underAny(line string, refs []string) bool {
	for _, r := range refs {
		scope := r
		if i := strings.LastIndex(r, "."); i > 0 {
			scope = r[:i]
		}
		if strings.HasPrefix(line, scope+":") || strings.HasPrefix(line, scope+".") {
			return true
		}
	}
	return false
}

// SecretEnvPrefix starts every environment variable a secret reference
// entered through the admin surface may name.
const SecretEnvPrefix = "FEDAS_SECRET_"

func (s *Service) refProblem(r secretRef) string {
	if r.env {
		if !strings.HasPrefix(r.value, SecretEnvPrefix) || len(r.value) == len(SecretEnvPrefix) {
			return fmt.Sprintf("%q: the admin surface may name only environment variables starting with %s", r.value, SecretEnvPrefix)
		}
		return ""
	}
	dir := s.o.Base.Admin.SecretsDir
	if dir == "" {
		return "the admin surface cannot add file references: set admin.secrets_dir, or use an inline key or a " + SecretEnvPrefix + " variable"
	}
	if !filepath.IsAbs(r.value) {
		return fmt.Sprintf("%q: give an absolute path inside admin.secrets_dir", r.value)
	}
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "admin.secrets_dir is not readable on this instance"
	}
	target := filepath.Clean(r.value)
	if t, err := filepath.EvalSymlinks(target); err == nil {
		target = t // a link inside the directory must not lead out of it
	}
	if rel, err := filepath.Rel(root, target); err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return fmt.Sprintf("%q is not inside admin.secrets_dir", r.value)
	}
	return ""
}

// buildProblem names the downstream a policy.Build error is about
// ("federation: downstream bank: key: …").
func buildProblem(p config.Policy, err error) error {
	msg := strings.TrimPrefix(err.Error(), "federation: ")
	for i, d := range p.Downstreams {
		if rest, ok := strings.CutPrefix(msg, "downstream "+d.ID+": "); ok {
			field := "auth"
			if strings.HasPrefix(rest, "key:") || d.Auth.Method == "private_key_jwt" {
				field = "auth.key"
			}
			return fmt.Errorf("downstreams[%d].%s: the key is not a usable private JWK: %s", i, field, strings.TrimPrefix(rest, "key: "))
		}
	}
	return err
}

type enteredURL struct{ path, url string }

// enteredURLs lists the URLs of a policy that fedas fetches or hands to
// clients: downstream issuers and logos, prompt logos, app deep links.
func enteredURLs(p config.Policy) []enteredURL {
	var out []enteredURL
	for i, d := range p.Downstreams {
		out = append(out, enteredURL{fmt.Sprintf("downstreams[%d].issuer", i), d.Issuer}, enteredURL{fmt.Sprintf("downstreams[%d].logo", i), d.Logo})
	}
	if pr := p.Prompt; pr != nil {
		out = append(out, enteredURL{"prompt.logo", pr.Logo})
		for i, o := range pr.Options {
			for j, v := range o.Values {
				out = append(out, enteredURL{fmt.Sprintf("prompt.options[%d].values[%d].logo", i, j), v.Logo})
			}
		}
	}
	for i, a := range p.Apps {
		out = append(out, enteredURL{fmt.Sprintf("apps[%d].deep_link", i), a.DeepLink})
	}
	return out
}

// summarize says in one line what changed ("downstream bank added; routes
// changed").
func summarize(a, b config.Policy) string {
	x := &policy.Snapshot{Config: &config.Config{}}
	y := &policy.Snapshot{Config: &config.Config{}}
	x.Config.Clients, x.Config.Users, x.Config.Downstreams, x.Config.Prompt, x.Config.Routes, x.Config.DefaultRoute, x.Config.Apps = a.Clients, a.Users, a.Downstreams, a.Prompt, a.Routes, a.DefaultRoute, a.Apps
	y.Config.Clients, y.Config.Users, y.Config.Downstreams, y.Config.Prompt, y.Config.Routes, y.Config.DefaultRoute, y.Config.Apps = b.Clients, b.Users, b.Downstreams, b.Prompt, b.Routes, b.DefaultRoute, b.Apps
	x.Config.Keys.ActiveSigningKey, y.Config.Keys.ActiveSigningKey = a.Keys.ActiveSigningKey, b.Keys.ActiveSigningKey
	return strings.Join(policy.Diff(x, y), "; ")
}

func collectionOf(k Kind) (collection, error) {
	c, ok := collections[k]
	if !ok {
		return nil, errNotFound("collection " + string(k))
	}
	return c, nil
}

// List returns a collection, its ETag and the policy version read.
func (s *Service) List(ctx context.Context, k Kind) ([]Resource, string, uint64, error) {
	c, err := collectionOf(k)
	if err != nil {
		return nil, "", 0, err
	}
	v, p, err := s.head(ctx)
	if err != nil {
		return nil, "", 0, err
	}
	items, err := c.list(p)
	return items, c.listETag(p, s.tag), v, err
}

// Get returns one entry and its ETag.
func (s *Service) Get(ctx context.Context, k Kind, id string) (Resource, string, error) {
	c, err := collectionOf(k)
	if err != nil {
		return nil, "", err
	}
	_, p, err := s.head(ctx)
	if err != nil {
		return nil, "", err
	}
	r, tag, ok, err := c.get(p, id, s.tag)
	if err != nil {
		return nil, "", err
	}
	if !ok {
		return nil, "", errNotFound(c.singular() + " " + strconv.Quote(id))
	}
	return r, tag, nil
}

// Create adds an entry (its id from the body's "id"); 409 when the id is
// taken.
func (s *Service) Create(ctx context.Context, a Actor, k Kind, body Resource) (Committed, string, error) {
	c, err := collectionOf(k)
	if err != nil {
		return Committed{}, "", err
	}
	id, _ := body["id"].(string)
	if id == "" {
		return Committed{}, "", &Error{Status: 400, Code: "invalid_request", Description: "the body has no id", Problems: []Problem{{Path: "id", Field: "id", Message: "required"}}}
	}
	var tag string
	res, err := s.change(ctx, a, string(k)+".create", string(k)+"/"+id, func(p *config.Policy) (string, error) {
		if c.index(*p, id) >= 0 {
			return "", errf(http.StatusConflict, "conflict", fmt.Sprintf("%s %q already exists", c.singular(), id))
		}
		i, err := c.put(p, id, body)
		if err != nil {
			return "", err
		}
		tag, _ = c.etag(*p, id, s.tag)
		return fmt.Sprintf("%s[%d]", k, i), nil
	})
	return res, tag, err
}

// Update replaces an entry if ifMatch matches its ETag.
func (s *Service) Update(ctx context.Context, a Actor, k Kind, id, ifMatch string, body Resource) (Committed, string, error) {
	c, err := collectionOf(k)
	if err != nil {
		return Committed{}, "", err
	}
	if bid, ok := body["id"].(string); ok && bid != id {
		return Committed{}, "", &Error{Status: 400, Code: "invalid_request", Description: "the body's id differs from the URL's", Problems: []Problem{{Path: "id", Field: "id", Message: "must be " + strconv.Quote(id) + " (ids cannot be renamed: create a new entry)"}}}
	}
	var tag string
	res, err := s.change(ctx, a, string(k)+".update", string(k)+"/"+id, func(p *config.Policy) (string, error) {
		cur, ok := c.etag(*p, id, s.tag)
		if !ok {
			return "", errNotFound(c.singular() + " " + strconv.Quote(id))
		}
		if err := checkIfMatch(ifMatch, cur); err != nil {
			return "", err
		}
		i, err := c.put(p, id, body)
		if err != nil {
			return "", err
		}
		tag, _ = c.etag(*p, id, s.tag)
		return fmt.Sprintf("%s[%d]", k, i), nil
	})
	return res, tag, err
}

// Delete removes an entry if ifMatch matches its ETag. The result must
// still be valid: a downstream a route uses cannot be deleted alone.
func (s *Service) Delete(ctx context.Context, a Actor, k Kind, id, ifMatch string) (Committed, error) {
	c, err := collectionOf(k)
	if err != nil {
		return Committed{}, err
	}
	return s.change(ctx, a, string(k)+".delete", string(k)+"/"+id, func(p *config.Policy) (string, error) {
		cur, ok := c.etag(*p, id, s.tag)
		if !ok {
			return "", errNotFound(c.singular() + " " + strconv.Quote(id))
		}
		if err := checkIfMatch(ifMatch, cur); err != nil {
			return "", err
		}
		c.remove(p, id)
		return "", nil
	})
}

// ReplaceAll replaces a whole collection (for routes: their order, which
// decides the first match) if ifMatch matches the collection's ETag.
func (s *Service) ReplaceAll(ctx context.Context, a Actor, k Kind, ifMatch string, items []Resource) (Committed, string, error) {
	c, err := collectionOf(k)
	if err != nil {
		return Committed{}, "", err
	}
	var tag string
	res, err := s.change(ctx, a, string(k)+".replace", string(k), func(p *config.Policy) (string, error) {
		if err := checkIfMatch(ifMatch, c.listETag(*p, s.tag)); err != nil {
			return "", err
		}
		if err := c.replaceAll(p, items); err != nil {
			return "", err
		}
		p.NameRoutes() // as the stored document will be read, so that tag is the list's next ETag
		tag = c.listETag(*p, s.tag)
		return "", nil
	})
	return res, tag, err
}

// Prompt returns the prompt (nil when none) and its ETag.
func (s *Service) Prompt(ctx context.Context) (Resource, string, error) {
	_, p, err := s.head(ctx)
	if err != nil {
		return nil, "", err
	}
	if p.Prompt == nil {
		return nil, s.tag(p.Prompt), nil
	}
	r, err := toResource(p.Prompt)
	return r, s.tag(p.Prompt), err
}

// SetPrompt replaces the prompt (body nil: removes it) if ifMatch matches.
func (s *Service) SetPrompt(ctx context.Context, a Actor, ifMatch string, body Resource) (Committed, string, error) {
	var tag string
	action := "prompt.update"
	if body == nil {
		action = "prompt.delete"
	}
	res, err := s.change(ctx, a, action, "prompt", func(p *config.Policy) (string, error) {
		if err := checkIfMatch(ifMatch, s.tag(p.Prompt)); err != nil {
			return "", err
		}
		if body == nil {
			p.Prompt = nil
		} else {
			var pr config.Prompt
			if err := fromResource(body, &pr); err != nil {
				return "", err
			}
			p.Prompt = &pr
		}
		tag = s.tag(p.Prompt)
		return "prompt", nil
	})
	return res, tag, err
}

// DefaultRoute returns default_route ("" means local) and its ETag.
func (s *Service) DefaultRoute(ctx context.Context) (string, string, error) {
	_, p, err := s.head(ctx)
	return p.DefaultRoute, s.tag(p.DefaultRoute), err
}

// SetDefaultRoute sets default_route if ifMatch matches.
func (s *Service) SetDefaultRoute(ctx context.Context, a Actor, ifMatch, route string) (Committed, string, error) {
	var tag string
	res, err := s.change(ctx, a, "default_route.update", "default_route", func(p *config.Policy) (string, error) {
		if err := checkIfMatch(ifMatch, s.tag(p.DefaultRoute)); err != nil {
			return "", err
		}
		p.DefaultRoute = route
		tag = s.tag(p.DefaultRoute)
		return "default_route", nil
	})
	return res, tag, err
}

// VersionInfo describes one version for the history.
type VersionInfo struct {
	Version uint64    `json:"version"`
	Author  string    `json:"author"`
	Origin  string    `json:"origin"`
	Time    time.Time `json:"time"`
	Summary string    `json:"summary"`
	// Current marks the head.
	Current bool `json:"current"`
}

// History lists retained versions, newest first.
func (s *Service) History(ctx context.Context, before uint64, limit int) ([]VersionInfo, uint64, error) {
	head, err := s.o.Store.PolicyHead(ctx)
	if err != nil {
		return nil, 0, storeError(err)
	}
	vs, err := s.o.Store.PolicyHistory(ctx, before, clampLimit(limit))
	if err != nil {
		return nil, 0, storeError(err)
	}
	out := make([]VersionInfo, 0, len(vs))
	for _, v := range vs {
		out = append(out, VersionInfo{Version: v.Version, Author: v.Author, Origin: v.Origin, Time: v.Time, Summary: v.Summary, Current: v.Version == head})
	}
	return out, head, nil
}

func clampLimit(n int) int {
	if n <= 0 || n > 200 {
		return 50
	}
	return n
}

// VersionDetail is one version with its redacted document and its diff
// against the head (what a rollback to it would change).
type VersionDetail struct {
	VersionInfo
	Document string `json:"document"`
	// DiffToHead shows how the head differs from this version: the
	// change a rollback to it would make.
	DiffToHead string `json:"diff_to_head"`
	// DiffFromParent is the change this version made.
	DiffFromParent string `json:"diff_from_parent"`
}

// Version returns one retained version.
func (s *Service) Version(ctx context.Context, v uint64) (VersionDetail, error) {
	pv, err := s.o.Store.PolicyVersion(ctx, v)
	if errors.Is(err, storage.ErrNotFound) {
		return VersionDetail{}, errNotFound(fmt.Sprintf("version %d", v))
	}
	if err != nil {
		return VersionDetail{}, storeError(err)
	}
	p, err := s.version(ctx, v)
	if err != nil {
		return VersionDetail{}, err
	}
	head, hp, err := s.head(ctx)
	if err != nil {
		return VersionDetail{}, err
	}
	d := VersionDetail{VersionInfo: VersionInfo{Version: pv.Version, Author: pv.Author, Origin: pv.Origin, Time: pv.Time, Summary: pv.Summary, Current: pv.Version == head}}
	d.Document = redactedYAML(p)
	d.DiffToHead = lineDiff(redactedYAML(hp), d.Document)
	if pv.Parent > 0 {
		if pp, err := s.version(ctx, pv.Parent); err == nil {
			d.DiffFromParent = lineDiff(redactedYAML(pp), d.Document)
		}
	}
	return d, nil
}

// Rollback commits version v's document as the next version, if ifMatch
// is the head's tag (HeadETag).
func (s *Service) Rollback(ctx context.Context, a Actor, v uint64, ifMatch string) (Committed, error) {
	// Only a retained version can be rolled back to, even if this
	// instance still has an older one cached.
	if _, err := s.o.Store.PolicyVersion(ctx, v); errors.Is(err, storage.ErrNotFound) {
		return Committed{}, errNotFound(fmt.Sprintf("version %d", v))
	} else if err != nil {
		return Committed{}, storeError(err)
	}
	old, err := s.version(ctx, v)
	if err != nil {
		return Committed{}, err
	}
	return s.change(ctx, a, "rollback", fmt.Sprintf("versions/%d", v), func(p *config.Policy) (string, error) {
		head, _ := s.o.Store.PolicyHead(ctx)
		if err := checkIfMatch(ifMatch, HeadETag(head)); err != nil {
			return "", err
		}
		*p = old.Clone()
		return "", nil
	})
}

// Export returns the head policy in the config file's format, secrets
// as stored (references, and inline keys: export needs the write role).
func (s *Service) Export(ctx context.Context) ([]byte, uint64, error) {
	v, p, err := s.head(ctx)
	if err != nil {
		return nil, 0, err
	}
	b, err := config.MarshalPolicy(p)
	return b, v, err
}

// Import replaces the whole policy with a YAML document (a policy export
// or a config file: its other keys are ignored) if ifMatch is the head's
// tag.
func (s *Service) Import(ctx context.Context, a Actor, doc []byte, ifMatch string) (Committed, error) {
	refuse := func(msg string) error {
		return &Error{Status: 400, Code: "invalid_request", Description: "the document is not a valid policy", Problems: []Problem{{Message: msg}}}
	}
	if n, err := parseYAML(doc); err != nil {
		return Committed{}, refuse(err.Error())
	} else if n == nil {
		// An empty body (a file that was not read) would otherwise
		// import as the empty policy and remove every entry.
		return Committed{}, refuse("the document is empty: to remove every entry, import {}")
	}
	np, err := config.ParsePolicy(doc)
	if err != nil {
		return Committed{}, &Error{Status: 400, Code: "invalid_request", Description: "the document is not a valid policy", Problems: []Problem{{Message: strings.TrimPrefix(err.Error(), "parse: ")}}}
	}
	return s.change(ctx, a, "import", "policy", func(p *config.Policy) (string, error) {
		head, _ := s.o.Store.PolicyHead(ctx)
		if err := checkIfMatch(ifMatch, HeadETag(head)); err != nil {
			return "", err
		}
		*p = np.Clone()
		return "", nil
	})
}

// Audit lists audit entries, newest first.
func (s *Service) Audit(ctx context.Context, before uint64, limit int) ([]storage.AuditEntry, error) {
	es, err := s.o.Store.PolicyAudit(ctx, before, clampLimit(limit))
	return es, storeError(err)
}

// Head returns the current version number.
func (s *Service) Head(ctx context.Context) (uint64, error) {
	v, err := s.o.Store.PolicyHead(ctx)
	return v, storeError(err)
}

// RouteQuery is a route tester question: which client, and what the user
// would answer at the prompt.
type RouteQuery struct {
	ClientID string            `json:"client_id" yaml:"client_id"`
	Email    string            `json:"email,omitempty" yaml:"email"`
	Phone    string            `json:"phone,omitempty" yaml:"phone"`
	Options  map[string]string `json:"options,omitempty" yaml:"options"`
}

// RouteAnswer is where the query's user would go and why.
type RouteAnswer struct {
	// Version is the policy version this instance serves, which answered.
	Version uint64 `json:"version"`
	// Target is "downstream", "local", "app" or "deny"; "" when the
	// answer would be refused.
	Target     string `json:"target"`
	Downstream string `json:"downstream,omitempty"`
	Issuer     string `json:"issuer,omitempty"`
	App        string `json:"app,omitempty"`
	Route      string `json:"route,omitempty"`
	RouteIndex int    `json:"route_index"`
	Why        string `json:"why"`
	Prompted   bool   `json:"prompted"`
	Invalid    string `json:"invalid,omitempty"`
}

// TestRoute answers a route tester question with the live policy of this
// instance, through the very matching the native endpoint uses
// (federation.Federator.Explain).
func (s *Service) TestRoute(q RouteQuery) (RouteAnswer, error) {
	snap := s.o.Source.Current()
	ans := RouteAnswer{Version: snap.PolicyVersion, RouteIndex: -1}
	if q.ClientID != "" {
		if _, ok := snap.Client(q.ClientID); !ok {
			return ans, &Error{Status: 400, Code: "invalid_request", Description: "unknown client", Problems: []Problem{{Path: "client_id", Field: "client_id", Message: strconv.Quote(q.ClientID) + " is not a registered client"}}}
		}
	}
	if snap.Fed == nil {
		ans.Target, ans.Why = "local", "no downstream, prompt or route is configured: every sign-in is local"
		return ans, nil
	}
	answers := url.Values{}
	if q.Email != "" {
		answers.Set("email", q.Email)
	}
	if q.Phone != "" {
		answers.Set("phone", q.Phone)
	}
	keys := make([]string, 0, len(q.Options))
	for k := range q.Options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		answers.Set(k, q.Options[k])
	}
	e := snap.Fed.Explain(q.ClientID, answers)
	ans.Why, ans.Prompted, ans.Invalid, ans.RouteIndex, ans.Issuer = e.Matched, e.Prompted, e.Invalid, e.RouteIndex, e.Issuer
	if e.RouteIndex >= 0 && e.RouteIndex < len(snap.Config.Routes) {
		ans.Route = snap.Config.Routes[e.RouteIndex].ID
	}
	switch t := e.Target; {
	case e.Invalid != "":
	case t.Deny:
		ans.Target = "deny"
	case t.Downstream != "":
		ans.Target, ans.Downstream = "downstream", t.Downstream
	case t.App != "":
		ans.Target, ans.App = "app", t.App
	default:
		ans.Target = "local"
	}
	return ans, nil
}
