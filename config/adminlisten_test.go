package config

import "testing"

// TestAdmin_Enabled: the admin listener runs with a tokens file or an
// explicit address; the default address is used only when none is given.
func TestAdmin_Enabled(t *testing.T) {
	for _, tc := range []struct {
		name    string
		a       Admin
		enabled bool
		addr    string
	}{
		{"nothing set", Admin{}, false, DefaultAdminListen},
		{"tokens file", Admin{TokensFile: "/etc/fedas/admin-tokens"}, true, DefaultAdminListen},
		{"explicit address", Admin{Listen: "10.0.0.5:9100"}, true, "10.0.0.5:9100"},
		{"both", Admin{Listen: "127.0.0.1:9100", TokensFile: "t"}, true, "127.0.0.1:9100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a.Enabled(); got != tc.enabled {
				t.Errorf("Enabled() = %v, want %v", got, tc.enabled)
			}
			if got := tc.a.ListenAddr(); got != tc.addr {
				t.Errorf("ListenAddr() = %q, want %q", got, tc.addr)
			}
		})
	}
	// The defaults leave admin.listen empty, so that an explicit address
	// stays distinguishable; the embedded demo starts no admin listener.
	if d := Default(); d.Admin.Listen != "" || d.Admin.Enabled() {
		t.Errorf("the defaults fill admin.listen or start an admin listener: %+v", d.Admin)
	}
}
