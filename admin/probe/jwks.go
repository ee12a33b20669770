package probe

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/netguard"
)

// privateMembers carry private or symmetric key material (RFC 7518
// §6.2.2, §6.3.2, §6.4; RFC 8037 §2). federation's JWKS cache ignores a key
// that has any of them; go-jose would parse it without complaint.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"}

// defaultIDTokenAlgs is federation's allow-list when id_token_algs is
// empty (FAPI 2.0 Security Profile §5.4.1).
var defaultIDTokenAlgs = []string{"ES256", "PS256", "EdDSA"}

// jwksStep fetches jwks_uri (RFC 8414 §2) and keeps the keys federation's
// JWKS cache would keep: public signing keys with a kid, first of each kid
// (RFC 7517 §4.5). It fails without any, and warns when none fits the
// downstream's id_token_algs, since every ID token would then be refused.
func jwksStep(ctx context.Context, c *client, d config.Downstream, md *metadata, o Options) Step {
	s := Step{Name: StepJWKS, Status: StatusFail}
	if md.JWKSURI == "" {
		s.Detail = "no jwks_uri (RFC 8414 §2): fedas cannot verify the downstream's ID tokens"
		return s
	}
	if err := netguard.CheckURL(md.JWKSURI, o.Net); err != nil {
		s.Detail = "jwks_uri refused: " + errText(err)
		return s
	}
	s.URL = safeURL(md.JWKSURI)
	body, detail, err := c.getJSON(ctx, md.JWKSURI)
	if err != nil {
		s.Detail = detail
		return s
	}
	keys, skipped, err := parseJWKS(body)
	if err != nil {
		s.Detail = err.Error()
		return s
	}
	var labels []string
	for _, k := range keys {
		labels = append(labels, keyLabel(k))
	}
	skippedText := ""
	if len(skipped) > 0 {
		skippedText = fmt.Sprintf("; %d skipped (%s)", len(skipped), countReasons(skipped))
	}
	if len(keys) == 0 {
		s.Detail = "the JWK set (RFC 7517 §5) has no usable public signing key" + skippedText
		return s
	}
	s.Status = StatusOK
	s.Detail = fmt.Sprintf("%d public signing key(s): %s", len(keys), strings.Join(labels, ", ")) + skippedText
	algs := d.IDTokenAlgs
	if len(algs) == 0 {
		algs = defaultIDTokenAlgs
	}
	for _, k := range keys {
		for _, a := range algs {
			if keyFits(k, a) {
				return s
			}
		}
	}
	warn(&s, "no key fits the id_token_algs "+quoteList(algs)+": fedas would refuse every ID token")
	return s
}

// parseJWKS returns the usable keys and, for each skipped key, why.
func parseJWKS(body []byte) ([]jose.JSONWebKey, []string, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, nil, fmt.Errorf("not a JWK set: not a JSON object with a keys array (RFC 7517 §5)")
	}
	if set.Keys == nil {
		return nil, nil, fmt.Errorf("not a JWK set: no keys member (RFC 7517 §5)")
	}
	var keys []jose.JSONWebKey
	var skipped []string
	seen := map[string]bool{}
	for _, raw := range set.Keys {
		var members map[string]json.RawMessage
		if err := json.Unmarshal(raw, &members); err != nil {
			skipped = append(skipped, "not a JSON object")
			continue
		}
		private := false
		for _, m := range privateMembers {
			if _, ok := members[m]; ok {
				private = true
			}
		}
		if private {
			skipped = append(skipped, "publishes private or symmetric key material")
			continue
		}
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			skipped = append(skipped, "unsupported or malformed key")
			continue
		}
		switch {
		case k.KeyID == "":
			skipped = append(skipped, "no kid")
		case k.Use != "" && k.Use != "sig":
			skipped = append(skipped, "use is not sig")
		case !k.Valid() || !k.IsPublic():
			skipped = append(skipped, "not a valid public key")
		case seen[k.KeyID]:
			skipped = append(skipped, "duplicate kid")
		default:
			seen[k.KeyID] = true
			keys = append(keys, k)
		}
	}
	return keys, skipped, nil
}

// keyLabel names a key by kid and alg, or by type when it has no alg.
func keyLabel(k jose.JSONWebKey) string {
	if k.Algorithm == "" {
		return "kid " + quote(k.KeyID) + " (no alg, " + keyType(k) + ")"
	}
	return "kid " + quote(k.KeyID) + " (" + quote(k.Algorithm) + ")"
}

func keyType(k jose.JSONWebKey) string {
	switch pk := k.Key.(type) {
	case *ecdsa.PublicKey:
		return "EC " + pk.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d bits", pk.N.BitLen())
	case ed25519.PublicKey:
		return "OKP Ed25519"
	}
	return fmt.Sprintf("%T", k.Key)
}

// keyFits reports whether k can verify alg: its alg when it names one
// (RFC 7517 §4.4), else its key type.
func keyFits(k jose.JSONWebKey, alg string) bool {
	if k.Algorithm != "" {
		return k.Algorithm == alg
	}
	switch pk := k.Key.(type) {
	case *ecdsa.PublicKey:
		return alg == "ES256" && pk.Curve == elliptic.P256()
	case *rsa.PublicKey:
		return alg == "PS256" || alg == "RS256"
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// countReasons is "2 × no kid, 1 × use is not sig", in a stable order.
func countReasons(reasons []string) string {
	n := map[string]int{}
	for _, r := range reasons {
		n[r]++
	}
	keys := make([]string, 0, len(n))
	for r := range n {
		keys = append(keys, r)
	}
	sort.Strings(keys)
	out := make([]string, len(keys))
	for i, r := range keys {
		out[i] = fmt.Sprintf("%d × %s", n[r], r)
	}
	return strings.Join(out, ", ")
}
