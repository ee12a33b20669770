package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"
)

// Policy is the part of the configuration that can change while fedas
// runs: what the admin API edits and the policy store versions
// (docs/admin.md). It is written in the config file's format, with the
// same keys, so a policy export is a valid config file fragment and a
// config file is a valid import. Secrets stay references (key_env,
// key_file, secret_env, …) that every instance resolves itself; only an
// inline downstream key is stored as given.
type Policy struct {
	Clients      []Client     `yaml:"clients,omitempty"`
	Users        []User       `yaml:"users,omitempty"`
	Downstreams  []Downstream `yaml:"downstreams,omitempty"`
	Prompt       *Prompt      `yaml:"prompt,omitempty"`
	Routes       []Route      `yaml:"routes,omitempty"`
	DefaultRoute string       `yaml:"default_route,omitempty"`
	Apps         []App        `yaml:"apps,omitempty"`
	// Keys is the live part of keys: which signing key signs
	// (policykeys.go).
	Keys PolicyKeys `yaml:"keys,omitempty"`
}

// policyFile is a whole config file read for its policy part only: every
// other key is accepted and ignored, and unknown keys are still errors.
type policyFile struct {
	Policy `yaml:",inline"`
	Rest   struct {
		Issuer    any `yaml:"issuer"`
		Listen    any `yaml:"listen"`
		Trusted   any `yaml:"trusted_proxies"`
		Dev       any `yaml:"dev"`
		Storage   any `yaml:"storage"`
		Scopes    any `yaml:"scopes"`
		Lifetimes any `yaml:"lifetimes"`
		Limits    any `yaml:"limits"`
		Admin     any `yaml:"admin"`
		DC        any `yaml:"digital_credentials"`
		Reach     any `yaml:"reach"`

		// RAR types are instance configuration (config/rar.go).
		AuthorizationDetailsTypes any `yaml:"authorization_details_types"`
	} `yaml:",inline"`
}

// ParsePolicy reads the policy part of a YAML document: a policy export or
// a whole config file (its other keys are ignored). Secrets are not
// resolved and nothing is validated: Compose does both. Unnamed routes are
// named route-1, route-2, … by position.
func ParsePolicy(b []byte) (Policy, error) {
	var f policyFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return Policy{}, fmt.Errorf("parse: %w", err)
	}
	f.Policy.NameRoutes()
	// The canonical form (a YAML round trip: empty lists and maps as
	// stored) so that two readings of equal documents compare equal.
	return f.Policy.Clone(), nil
}

// NameRoutes gives every unnamed route the id route-N (N its 1-based
// position), skipping ids already taken.
func (p *Policy) NameRoutes() {
	taken := map[string]bool{}
	for _, r := range p.Routes {
		taken[r.ID] = true
	}
	for i := range p.Routes {
		if p.Routes[i].ID != "" {
			continue
		}
		n := i + 1
		id := fmt.Sprintf("route-%d", n)
		for taken[id] {
			n++
			id = fmt.Sprintf("route-%d", n)
		}
		p.Routes[i].ID, taken[id] = id, true
	}
}

// MarshalPolicy writes p in the config file's format.
func MarshalPolicy(p Policy) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(p); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Clone returns a deep copy of p (through its YAML form, which holds every
// field of the policy).
func (p Policy) Clone() Policy {
	b, err := MarshalPolicy(p)
	if err != nil {
		panic("config: policy does not marshal: " + err.Error())
	}
	var out Policy
	if err := yaml.Unmarshal(b, &out); err != nil {
		panic("config: policy does not round-trip: " + err.Error())
	}
	return out
}

// PolicyOf returns the policy part of c as it is (resolved secrets
// included); for a policy document with references, use ParsePolicy on
// the file instead.
func PolicyOf(c *Config) Policy {
	return Policy{Clients: c.Clients, Users: c.Users, Downstreams: c.Downstreams, Prompt: c.Prompt, Routes: c.Routes, DefaultRoute: c.DefaultRoute, Apps: c.Apps,
		Keys: PolicyKeys{ActiveSigningKey: c.Keys.ActiveSigningKey}}.Clone()
}

// Compose returns base with its policy part replaced by p: defaults
// applied, secrets resolved from their references, and validated like a
// config file. Every problem is returned at once, each with its path.
// base is not modified.
func Compose(base *Config, p Policy) (*Config, error) {
	c := *base
	p = p.Clone()
	c.Clients, c.Users, c.Downstreams, c.Prompt, c.Routes, c.DefaultRoute, c.Apps = p.Clients, p.Users, p.Downstreams, p.Prompt, p.Routes, p.DefaultRoute, p.Apps
	c.Keys.ActiveSigningKey = p.Keys.ActiveSigningKey
	c.applyDefaults()
	if err := errors.Join(c.resolveSecrets(), c.Validate()); err != nil {
		return nil, err
	}
	return &c, nil
}

// Problems lists the problems of an error from Load, Parse, Validate or
// Compose, one line each ("path: message"): those report every problem at
// once, joined (errors.Join), possibly under a prefix such as the file
// name, which is dropped so that each line starts with its path.
func Problems(err error) []string {
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
		for _, l := range strings.Split(e.Error(), "\n") {
			if l != "" {
				out = append(out, l)
			}
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}
