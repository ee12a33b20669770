package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestParsePolicy_AcceptsEveryConfigKey: ParsePolicy reads a whole config
// file (SIGHUP, `fedas serve --config`, admin import), so every top-level
// key of Config must be one it knows — a key added to Config and not to
// policyFile made every file using it fail to serve (reach did).
func TestParsePolicy_AcceptsEveryConfigKey(t *testing.T) {
	ct := reflect.TypeOf(Config{})
	for i := 0; i < ct.NumField(); i++ {
		name, _, _ := strings.Cut(ct.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			_, err := ParsePolicy([]byte(name + ": null\n"))
			require.NoError(t, err, "a config file with %q is refused by ParsePolicy", name)
		})
	}
}
