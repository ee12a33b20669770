package dc_test

import (
	"context"
	"strings"
	"testing"

	"github.com/fedas/fedas/dc"
)

// FuzzVerifyVPToken: arbitrary presentation text never panics, and a
// refusal never quotes the input (errors carry no claim values).
func FuzzVerifyVPToken(f *testing.F) {
	f.Add(cred{iss: issA, vct: vctPID}.present(f))
	f.Add("a.b.c~x~")
	f.Add("~~~")
	p := policy(f, pidQuery)
	f.Fuzz(func(t *testing.T, s string) {
		_, err := dc.VerifyVPToken(context.Background(), map[string][]string{"pid": {s}}, p, checker)
		if err != nil && len(s) > 8 && strings.Contains(err.Error(), s) {
			t.Fatalf("error quotes input: %v", err)
		}
	})
}
