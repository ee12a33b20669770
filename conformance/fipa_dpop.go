package conformance

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/fedas/fedas/internal/compactjws"
)

// dpopKey is one of the kit's own DPoP keys (ES256, RFC 9449 §4.2).
type dpopKey struct{ s *compactjws.Signer }

func newDPoPKey() (*dpopKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	s, err := compactjws.New(k, jose.ES256, map[string]any{"typ": "dpop+jwt", "jwk": jose.JSONWebKey{Key: k.Public()}})
	if err != nil {
		return nil, err
	}
	return &dpopKey{s: s}, nil
}

// proof is a DPoP header for a POST to u at the kit's time (RFC 9449 §4.2).
func (k *dpopKey) proof(env *Env, u string) (http.Header, error) {
	payload, err := json.Marshal(map[string]any{"jti": randomToken(16), "htm": http.MethodPost, "htu": u, "iat": env.now().Unix()})
	if err != nil {
		return nil, err
	}
	p, err := k.s.Sign(payload)
	if err != nil {
		return nil, err
	}
	return http.Header{"Dpop": {p}}, nil
}

// needDPoP: the server advertises ES256 DPoP proofs (RFC 9449 §5.1's
// dpop_signing_alg_values_supported); without it, it may ignore them.
func needDPoP(env *Env) string {
	algs, _ := env.Metadata["dpop_signing_alg_values_supported"].([]any)
	switch {
	case len(algs) == 0:
		return "the metadata has no dpop_signing_alg_values_supported: the server may ignore DPoP"
	case !slices.Contains(algs, any("ES256")):
		return "dpop_signing_alg_values_supported lacks ES256, the kit's algorithm"
	}
	return ""
}

// checkDPoPBinding starts a session with a proof for key A; a follow-up
// with a proof for key B, and one without a proof, must be refused, and
// one with A's proof must go on (FiPA-04 §9.6.1; docs/protocol.md
// "DPoP").
func checkDPoPBinding(ctx context.Context, env *Env) Result {
	a, err := newDPoPKey()
	if err != nil {
		return fail(nil, "DPoP key: %v", err)
	}
	b, err := newDPoPKey()
	if err != nil {
		return fail(nil, "DPoP key: %v", err)
	}
	nae := env.NativeEndpoint()
	withA := func() http.Header {
		h, _ := a.proof(env, nae)
		return h
	}
	startA := func(exs []Exchange) (url.Values, []Exchange, *Result) {
		form, _ := initialForm(env)
		resp, ex := env.post(ctx, nae, form, withA(), true)
		exs = append(exs, ex)
		switch {
		case resp == nil:
			r := fail(exs, "no answer: %s", ex.Error)
			return nil, exs, &r
		case resp.Str("error") != "insufficient_authorization":
			r := na(exs, "the initial request with a DPoP proof was answered %s, not insufficient_authorization", answerOf(resp))
			return nil, exs, &r
		}
		f, ok := followUp(env, resp)
		if !ok {
			r := na(exs, "the challenge has no inputs to answer")
			return nil, exs, &r
		}
		return f, exs, nil
	}
	form, exs, r := startA(nil)
	if r != nil {
		return *r
	}
	hb, err := b.proof(env, nae)
	if err != nil {
		return fail(exs, "DPoP proof: %v", err)
	}
	for _, probe := range []struct {
		what string
		hdr  http.Header
	}{{"a follow-up with a proof for another key", hb}, {"a follow-up without a DPoP proof", nil}} {
		resp, ex := env.post(ctx, nae, form, probe.hdr, true)
		exs = append(exs, ex)
		if res := wantRefused(exs, resp, probe.what, ""); res.Status != Pass {
			return res
		}
	}
	resp, ex := env.post(ctx, nae, form, withA(), true)
	exs = append(exs, ex)
	note := ""
	if resp != nil && resp.Str("error") == "invalid_session" {
		// The refusals ended the session (allowed, though it lets anyone
		// holding the auth_session end the device's sign-in): the key's
		// own follow-up is then checked on a fresh session.
		note = "; the refusals ended the first session"
		if form, exs, r = startA(exs); r != nil {
			return *r
		}
		resp, ex = env.post(ctx, nae, form, withA(), true)
		exs = append(exs, ex)
	}
	switch {
	case resp == nil:
		return fail(exs, "no answer to the follow-up with the session's key: %s", ex.Error)
	case resp.Str("error") != "insufficient_authorization" || resp.Str("auth_session") == "":
		return fail(exs, "the follow-up with the session's key was answered %s, want the challenge again (insufficient_authorization with a new auth_session)", answerOf(resp))
	}
	return pass(fmt.Sprintf("another key and no proof are refused; the session's key goes on%s", note), exs...)
}
