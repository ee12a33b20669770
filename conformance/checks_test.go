package conformance_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/conformance"
)

// TestCheckIDsAndCitations: every check has a unique ID that starts with
// its profile, a title, and a spec citation of a section of FiPA-04 (§1,
// §4.1 metadata, §5.1 request, §5.2 response, §5.3 auth_session, §6 token,
// §9 security: docs/conformance.md), of the federation draft's §4, or of
// an RFC; and docs/conformance.md lists each ID with that citation.
func TestCheckIDsAndCitations(t *testing.T) {
	spec := regexp.MustCompile(`^(draft-ietf-oauth-first-party-apps-04 §(1|4\.1|5\.1|5\.2(\.[12](\.1(\.1)?)?)?|5\.3|6|9(\.\d+)*)` +
		`|fed-draft-00 §4(\.\d+)*` +
		`|RFC (6749|7636|8414|9101|9126|9449|7523) §\d+(\.\d+)*(, §\d+(\.\d+)*)*)$`)
	doc, err := os.ReadFile("../docs/conformance.md")
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, c := range conformance.Checks() {
		assert.False(t, seen[c.ID], "duplicate %s", c.ID)
		seen[c.ID] = true
		assert.True(t, strings.HasPrefix(c.ID, string(c.Profile)+"-"), c.ID)
		assert.NotEmpty(t, c.Title, c.ID)
		assert.Regexp(t, spec, c.Spec, c.ID)
		row := regexp.MustCompile("(?m)^\\| `" + regexp.QuoteMeta(c.ID) + "` \\|.*\\| ([^|]+) \\|$").FindStringSubmatch(string(doc))
		if assert.NotNil(t, row, "%s is not in docs/conformance.md's tables", c.ID) {
			assert.Equal(t, strings.ReplaceAll(c.Spec, "draft-ietf-oauth-first-party-apps-04", "FiPA-04"), row[1], c.ID)
		}
	}
}
