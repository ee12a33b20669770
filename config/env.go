package config

import (
	"fmt"
	"os"
	"strings"
)

// Environment variables read by the fedas command itself, not keys of
// the file (docs/config.md "Environment").
const (
	// EnvConfig names the config file when --config is not given.
	EnvConfig = "FEDAS_CONFIG"
	// EnvRequireConfig, set to 1 (the Docker image does), makes `fedas
	// serve` without a config file an error instead of a run of the
	// embedded demo with its public secrets; --demo still runs it.
	EnvRequireConfig = "FEDAS_REQUIRE_CONFIG"
)

// Override is one key that an environment variable (and a flag, where
// serve has one) can set on top of the file. The list is short on
// purpose: the addresses and key material that differ between the
// instances or environments sharing one file, and nothing of the policy
// (which lives in the policy store).
type Override struct {
	// Env is the variable: FEDAS_ and the key's YAML path in capitals,
	// with dots as underscores.
	Env string
	// Key is the YAML path it sets.
	Key string
	// Flag is serve's flag for the same key, if any.
	Flag string
	// Doc says what setting it does beyond setting the key.
	Doc string
	set func(c *Config, v string)
}

// Overrides lists every FEDAS_ override, in documentation order.
func Overrides() []Override { return append([]Override(nil), overrides...) }

var overrides = []Override{
	{Env: "FEDAS_ISSUER", Key: "issuer", Flag: "--issuer",
		set: func(c *Config, v string) { c.Issuer = v }},
	{Env: "FEDAS_LISTEN", Key: "listen", Flag: "--listen",
		Doc: "With the embedded demo config it moves the demo's issuer too, unless the issuer is set.",
		set: func(c *Config, v string) { c.Listen = v }},
	{Env: "FEDAS_STORAGE_REDIS_URL", Key: "storage.redis.url", Flag: "--redis",
		Doc: "Selects one Redis node: it replaces `url`, `addrs`, `cluster` and `master_name`; `username`, the password and `prefix` stay as the file has them.",
		set: func(c *Config, v string) {
			r := c.redis()
			r.URL, r.Addrs, r.Cluster, r.MasterName = v, nil, false, ""
		}},
	{Env: "FEDAS_STORAGE_REDIS_PASSWORD_FILE", Key: "storage.redis.password_file",
		Doc: "Replaces `password_env` too.",
		set: func(c *Config, v string) {
			r := c.redis()
			r.PasswordFile, r.PasswordEnv = v, ""
		}},
	{Env: "FEDAS_KEYS_SIGNING_KEY_FILE", Key: "keys.signing_key_file",
		Doc: "Replaces `signing_keys` too.",
		set: func(c *Config, v string) { c.Keys.SigningKeyFile, c.Keys.SigningKeys = v, nil }},
	{Env: "FEDAS_KEYS_HMAC_SECRET_FILE", Key: "keys.hmac_secret_file",
		Doc: "Replaces `hmac_secret_env` too.",
		set: func(c *Config, v string) { c.Keys.HMACSecretFile, c.Keys.HMACSecretEnv = v, "" }},
	{Env: "FEDAS_ADMIN_LISTEN", Key: "admin.listen", Flag: "--admin-listen",
		set: func(c *Config, v string) { c.Admin.Listen = v }},
	{Env: "FEDAS_ADMIN_TOKENS_FILE", Key: "admin.tokens_file", Flag: "--admin-tokens",
		Doc: "Starts the admin listener.",
		set: func(c *Config, v string) { c.Admin.TokensFile = v }},
}

// redis returns the Redis settings, creating them: an override of a
// Redis key selects Redis.
func (c *Config) redis() *Redis {
	if c.Storage.Redis == nil {
		c.Storage.Redis = &Redis{}
	}
	return c.Storage.Redis
}

// OverrideEnv is the environment variable for key, "" when it has none.
func OverrideEnv(key string) string {
	for _, o := range overrides {
		if o.Key == key {
			return o.Env
		}
	}
	return ""
}

// LookupEnv is os.LookupEnv for Options.Env.
func LookupEnv(name string) (string, bool) { return os.LookupEnv(name) }

// applyOverrides sets the keys that the environment and then the flags
// name (flag > env > file). An empty variable counts as unset: compose
// files and unit files often pass variables through empty. It returns
// which source set each key, for placing problems.
func (c *Config) applyOverrides(o Options) (map[string]string, []Problem) {
	sources := map[string]string{}
	var probs []Problem
	if o.Env != nil {
		for _, ov := range overrides {
			if v, ok := o.Env(ov.Env); ok && strings.TrimSpace(v) != "" {
				ov.set(c, v)
				sources[ov.Key] = ov.Env
			}
		}
	}
	for _, s := range o.Flags {
		ov, ok := overrideFor(s.Key)
		if !ok {
			probs = append(probs, Problem{Path: s.Key, Source: s.Source, Message: fmt.Sprintf("%s cannot be overridden", s.Key)})
			continue
		}
		ov.set(c, s.Value)
		sources[s.Key] = s.Source
	}
	return sources, probs
}

func overrideFor(key string) (Override, bool) {
	for _, o := range overrides {
		if o.Key == key {
			return o, true
		}
	}
	return Override{}, false
}
