package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/storage"
)

// The signing keys (docs/admin.md "Signing keys", docs/operations.md
// "Rotating the signing key"). The key files are per instance; which one
// signs is policy (config.PolicyKeys): PUT /admin/v1/keys/active commits
// it as the next version, which every instance applies within a second.
// An instance that does not hold the key refuses that version and keeps
// signing with the key it had (policy.Follower), so a key is activated
// only after every instance publishes it.

// KeyInfo is one signing key of this instance, as GET /admin/v1/keys
// lists it: public facts only.
type KeyInfo struct {
	// KID is the key's kid at jwks_uri and in the header of what it
	// signs.
	KID string `json:"kid"`
	// Alg and Use are what the JWK Set says of it (RFC 7517 §4.2, §4.4).
	Alg string `json:"alg"`
	Use string `json:"use"`
	// Active marks the key the head policy makes sign.
	Active bool `json:"active"`
	// Source is where this instance's configuration names it
	// ("keys.signing_keys[1]").
	Source string `json:"source"`
}

// Keys is GET /admin/v1/keys.
type Keys struct {
	// Keys are this instance's signing keys, all published at jwks_uri.
	Keys []KeyInfo `json:"keys"`
	// ActiveSigningKey is the head policy's keys.active_signing_key ("":
	// the first key).
	ActiveSigningKey string `json:"active_signing_key"`
	// Active is the kid the head policy makes sign here ("" when this
	// instance's key is ephemeral, or lacks the key the policy names).
	Active string `json:"active"`
	// Serving is the kid this instance signs with now: Active once it
	// applied the head.
	Serving string `json:"serving"`
	// Version is the head policy version read.
	Version uint64 `json:"version"`
}

// signingKeys are the base configuration's signing keys (loaded at start:
// key files take effect at a restart).
func (s *Service) signingKeys() ([]config.SigningKey, error) {
	keys, err := s.o.Base.Keys.Signing()
	if err != nil {
		return nil, &Error{Status: http.StatusInternalServerError, Code: "server_error", Description: "this instance's signing keys do not load"}
	}
	return keys, nil
}

// Keys lists this instance's signing keys and which one signs, with the
// ETag of keys.active_signing_key.
func (s *Service) Keys(ctx context.Context) (Keys, string, error) {
	head, p, err := s.head(ctx)
	if err != nil {
		return Keys{}, "", err
	}
	keys, err := s.signingKeys()
	if err != nil {
		return Keys{}, "", err
	}
	out := Keys{Keys: []KeyInfo{}, ActiveSigningKey: p.Keys.ActiveSigningKey, Version: head}
	want := p.Keys.ActiveSigningKey
	for _, k := range keys {
		if want == "" {
			want = k.KID // the first key
		}
		info := KeyInfo{KID: k.KID, Alg: "ES256", Use: "sig", Source: k.Path, Active: k.KID == want}
		if info.Active {
			out.Active = want
		}
		out.Keys = append(out.Keys, info)
	}
	if snap := s.o.Source.Current(); snap != nil {
		out.Serving = snap.Config.Keys.ActiveKID()
	}
	return out, s.tag(p.Keys), nil
}

// SetActiveKey makes kid the signing key of every instance, if ifMatch
// matches the ETag of keys.active_signing_key. The kid must be one of
// this instance's keys (config.Validate, through the commit's Compose).
func (s *Service) SetActiveKey(ctx context.Context, a Actor, ifMatch, kid string) (Committed, string, error) {
	var tag string
	res, err := s.change(ctx, a, "active_signing_key.update", "keys.active_signing_key", func(p *config.Policy) (string, error) {
		if err := checkIfMatch(ifMatch, s.tag(p.Keys)); err != nil {
			return "", err
		}
		p.Keys.ActiveSigningKey = kid
		tag = s.tag(p.Keys)
		return "keys", nil
	})
	return res, tag, err
}

func (a *Admin) getKeys(c echo.Context) error {
	k, tag, err := a.svc.Keys(c.Request().Context())
	if err != nil {
		return writeErr(c, err)
	}
	c.Response().Header().Set("ETag", tag)
	return c.JSON(http.StatusOK, k)
}

func (a *Admin) putActiveKey(c echo.Context) error {
	ifMatch, err := requireIfMatch(c)
	if err != nil {
		return writeErr(c, err)
	}
	body, err := jsonObject(c)
	if err != nil {
		return writeErr(c, err)
	}
	kid, ok := body["kid"].(string)
	if !ok || len(body) != 1 || !config.ValidKID(kid) {
		return writeErr(c, &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: `the body must be {"kid": "<kid of one of GET /admin/v1/keys>"}`,
			Problems: []Problem{{Path: "kid", Field: "kid", Message: fmt.Sprintf("required: 1 to %d characters of A-Z a-z 0-9 . _ ~ -", config.MaxKIDLen)}}})
	}
	res, tag, err := a.svc.SetActiveKey(c.Request().Context(), actorOf(c), ifMatch, kid)
	if err != nil {
		return writeErr(c, err)
	}
	return a.written(c, http.StatusOK, res, tag, nil)
}

// RetiredKeyWarnings tells an operator, at start, which signing keys the
// policy made active within window before now that this instance no
// longer publishes: ID tokens they signed may still be unexpired, and a
// verifier fetching our JWK Set from here cannot verify them. window is
// the ID token lifetime plus the verifiers' clock leeway. Only kids the
// policy names are known (a version with no active_signing_key signs with
// each instance's first key, which the store does not record). It reads
// versions back from the head while they were in force within the window,
// at most maxVersions of them.
func RetiredKeyWarnings(ctx context.Context, st storage.PolicyStore, published []config.SigningKey, now time.Time, window time.Duration) ([]string, error) {
	const maxVersions = 100
	have := map[string]bool{}
	for _, k := range published {
		have[k.KID] = true
	}
	head, err := st.PolicyHead(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	warned := map[string]bool{}
	until := now // the end of the version's time in force
	for v := head; v > 0 && head-v < maxVersions && now.Sub(until) <= window; v-- {
		pv, err := st.PolicyVersion(ctx, v)
		if errors.Is(err, storage.ErrNotFound) {
			break // beyond retention
		}
		if err != nil {
			return out, err
		}
		p, err := config.ParsePolicy(pv.Doc)
		if err != nil {
			return out, err
		}
		if kid := p.Keys.ActiveSigningKey; kid != "" && !have[kid] && !warned[kid] {
			warned[kid] = true
			out = append(out, fmt.Sprintf("signing key %q signed until %s (policy version %d) but is not in keys.signing_keys: ID tokens it signed stay valid until %s; keep its key file published until then (docs/operations.md \"Rotating the signing key\")",
				kid, until.UTC().Format(time.RFC3339), v, until.Add(window).UTC().Format(time.RFC3339)))
		}
		until = pv.Time
	}
	return out, nil
}
