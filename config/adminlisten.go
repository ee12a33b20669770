package config

// DefaultAdminListen is the admin listener's address when admin.listen is
// not set.
const DefaultAdminListen = "127.0.0.1:8081"

// Enabled reports whether the admin listener runs: with a tokens file
// (the API and console), or with an explicit address (for /metrics even
// without tokens). The default address is not filled in by the defaults,
// so that an explicit one stays distinguishable.
func (a Admin) Enabled() bool { return a.TokensFile != "" || a.Listen != "" }

// ListenAddr is the admin listener's address: Listen, or
// DefaultAdminListen.
func (a Admin) ListenAddr() string {
	if a.Listen != "" {
		return a.Listen
	}
	return DefaultAdminListen
}
