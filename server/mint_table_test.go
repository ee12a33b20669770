package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/federation/fedtest"
	"github.com/fedas/fedas/sdk"
)

// minted is a code of ours and how its client redeems it.
type minted struct {
	tokenURL string
	// form is the token request (grant, code, code_verifier, client_id or
	// redirect_uri as the client sends them).
	form url.Values
	auth []func(*http.Request)
	// browser: delivered through a browser, so bound to form's
	// redirect_uri (RFC 6749 §4.1.3).
	browser bool
}

// mintPath is one way a code of ours is minted. setup starts the servers
// once and returns a minter: k binds the request to a key (the device's
// proof, or dpop_jkt in the client's PAR); nil means no DPoP.
type mintPath struct {
	name  string
	setup func(t *testing.T) func(t *testing.T, k *dpop.Key) minted
}

func proofs(t *testing.T, k *dpop.Key, htu string) []func(*http.Request) {
	if k == nil {
		return nil
	}
	return []func(*http.Request){withProof(t, k, htu)}
}

var mintPaths = []mintPath{
	{"local", func(t *testing.T) func(*testing.T, *dpop.Key) minted {
		in := wrap(start(t, nil))
		return func(t *testing.T, k *dpop.Key) minted {
			pk := sdk.NewPKCE()
			r := post(t, in.native(), url.Values{"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {"openid"},
				"code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}, proofs(t, k, in.native())...)
			r = answerPassword(t, in.native(), r, "carol", "carol-pw", proofs(t, k, in.native())...)
			require.Equal(t, http.StatusOK, r.status, r.raw)
			return minted{tokenURL: in.token(), form: codeForm("demo-app", r.str("authorization_code"), pk)}
		}
	}},
	{"federated AS1→AS2", func(t *testing.T) func(*testing.T, *dpop.Key) minted {
		as1, _ := pair(t, nil, nil, nil, nil)
		return func(t *testing.T, k *dpop.Key) minted {
			code, pk := fedasHopCode(t, as1, k)
			return minted{tokenURL: as1.token(), form: codeForm("demo-app", code, pk)}
		}
	}},
	{"chain AS1→AS2→AS3", func(t *testing.T) func(*testing.T, *dpop.Key) minted {
		as1 := threeHops(t)
		return func(t *testing.T, k *dpop.Key) minted {
			pk := sdk.NewPKCE()
			r := post(t, as1.native(), url.Values{"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {"openid"},
				"code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}, proofs(t, k, as1.native())...)
			requireOAuthError(t, r, http.StatusBadRequest, "insufficient_information")
			fed1 := post(t, as1.native(), url.Values{"auth_session": {r.str("auth_session")}, "email": {"carol@as2.example"}}, proofs(t, k, as1.native())...)
			requireFederate(t, fed1)
			fed2 := postBody(t, fed1.str("federation_uri"), "application/x-www-form-urlencoded", fed1.str("federation_body"))
			requireFederate(t, fed2)
			r = postBody(t, fed2.str("federation_uri"), "application/x-www-form-urlencoded", fed2.str("federation_body"))
			r = answerPassword(t, fed2.str("federation_uri"), r, "carol", "carol-pw")
			require.Equal(t, http.StatusOK, r.status, r.raw)
			r = post(t, fed2.str("response_uri"), url.Values{"auth_session": {fed2.str("auth_session")}, "authorization_code": {r.str("authorization_code")}})
			require.Equal(t, http.StatusOK, r.status, r.raw)
			r = post(t, fed1.str("response_uri"), url.Values{"auth_session": {fed1.str("auth_session")}, "authorization_code": {r.str("authorization_code")}}, proofs(t, k, fed1.str("response_uri"))...)
			require.Equal(t, http.StatusOK, r.status, r.raw)
			return minted{tokenURL: as1.token(), form: codeForm("demo-app", r.str("authorization_code"), pk)}
		}
	}},
	{"web callback (Q7 fallback at AS2)", func(t *testing.T) func(*testing.T, *dpop.Key) minted {
		as1, as2 := webFallbackPair(t)
		return func(t *testing.T, k *dpop.Key) minted {
			fed, cb, pk := webLeg(t, as1, as2, k)
			r := post(t, fed.str("response_uri"), url.Values{"auth_session": {fed.str("auth_session")}, "response_code": {cb.Get("response_code")}}, proofs(t, k, fed.str("response_uri"))...)
			require.Equal(t, http.StatusOK, r.status, r.raw)
			return minted{tokenURL: as1.token(), form: codeForm("demo-app", r.str("authorization_code"), pk)}
		}
	}},
	{"web callback (Q19 browser hop)", func(t *testing.T) func(*testing.T, *dpop.Key) minted {
		e := browserFedEnv(t, fedtest.Options{IssParameter: true})
		return func(t *testing.T, k *dpop.Key) minted {
			web, cb, pk := browserHop(t, e, k)
			back := getURL(t, cb)
			require.Equal(t, http.StatusSeeOther, back.status, back.raw)
			loc, err := url.Parse(back.header.Get("Location"))
			require.NoError(t, err)
			r := post(t, e.as1.native(), url.Values{"auth_session": {web.str("auth_session")}, "response_code": {loc.Query().Get("response_code")}}, proofs(t, k, e.as1.native())...)
			require.Equal(t, http.StatusOK, r.status, r.raw)
			return minted{tokenURL: e.as1.token(), form: codeForm("demo-app", r.str("authorization_code"), pk)}
		}
	}},
	{"app completion, local", func(t *testing.T) func(*testing.T, *dpop.Key) minted {
		in := wrap(start(t, nil, appSecConfig))
		bank := "Bearer " + appToken(t, in, "bank-app")
		return func(t *testing.T, k *dpop.Key) minted {
			pk := sdk.NewPKCE()
			r := post(t, in.native(), url.Values{"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {"openid"},
				"native_callback_uri": {"https://app.example/cb"}, "code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}, proofs(t, k, in.native())...)
			ru := requireDeepLink(t, r, "demo-app")
			done := in.appCompleteWith(t, url.Values{"client_id": {"demo-app"}, "request_uri": {ru}}, withHeader("Authorization", bank))
			require.Equal(t, http.StatusOK, done.status, done.raw)
			out := post(t, in.native(), url.Values{"auth_session": {r.str("auth_session")}, "authorization_code": {done.str("authorization_code")}}, proofs(t, k, in.native())...)
			require.Equal(t, http.StatusOK, out.status, out.raw)
			return minted{tokenURL: in.token(), form: codeForm("demo-app", out.str("authorization_code"), pk)}
		}
	}},
	{"app completion, downstream role", func(t *testing.T) func(*testing.T, *dpop.Key) minted {
		in := wrap(start(t, nil, appSecConfig))
		bank := "Bearer " + appToken(t, in, "bank-app")
		return func(t *testing.T, k *dpop.Key) minted {
			extra := url.Values{}
			if k != nil {
				extra.Set("dpop_jkt", k.JKT)
			}
			ru, pk := fedPartnerPAR(t, in, extra)
			link := requireDeepLink(t, post(t, in.native(), url.Values{"client_id": {"fed-partner"}, "request_uri": {ru}}), "fed-partner")
			done := in.appCompleteWith(t, url.Values{"client_id": {"fed-partner"}, "request_uri": {link}}, withHeader("Authorization", bank))
			require.Equal(t, http.StatusOK, done.status, done.raw)
			return minted{tokenURL: in.token(), form: codeForm("", done.str("authorization_code"), pk), auth: []func(*http.Request){basic("fed-partner", fedPartnerSecret)}}
		}
	}},
	{"browser endpoint (client PAR)", func(t *testing.T) func(*testing.T, *dpop.Key) minted {
		in := wrap(start(t, nil, twoRedirects))
		return func(t *testing.T, k *dpop.Key) minted {
			code, pk := browserCode(t, in, k)
			f := codeForm("", code, pk)
			f.Set("redirect_uri", partnerCB)
			return minted{tokenURL: in.token(), form: f, auth: []func(*http.Request){basic("demo-partner", partnerSecret)}, browser: true}
		}
	}},
}

// threeHops starts AS1 → AS2 → AS3 (TestFederation_ThreeHops) and
// returns AS1.
func threeHops(t *testing.T) instance {
	t.Helper()
	k12, k23 := newFedKey(t, "k12"), newFedKey(t, "k23")
	as3 := wrap(start(t, nil, func(c *config.Config) {
		c.Clients = append(c.Clients, federatingClient("as2", k23, true))
	}))
	as2 := wrap(start(t, nil, func(c *config.Config) {
		c.Clients = append(c.Clients, federatingClient("as1", k12, false))
		c.Downstreams = append(c.Downstreams, downstreamOf("as3", as3.URL, "as2", k23))
		c.Routes = append(c.Routes, config.Route{Downstream: "as3", Clients: []string{"as1"}})
	}))
	return wrap(start(t, nil, func(c *config.Config) {
		c.Downstreams = append(c.Downstreams, downstreamOf("as2", as2.URL, "as1", k12))
		emailPrompt(c, "as2.example", "as2")
	}))
}

func (m minted) redeem(t *testing.T, proof *dpop.Key, edit func(url.Values)) reply {
	t.Helper()
	f := url.Values{}
	for k, v := range m.form {
		f[k] = v
	}
	if edit != nil {
		edit(f)
	}
	opts := append([]func(*http.Request){}, m.auth...)
	if proof != nil {
		opts = append(opts, withProof(t, proof, m.tokenURL))
	}
	return post(t, m.tokenURL, f, opts...)
}

// TestMintTable: every path that mints a code of ours, with and without
// DPoP, redeemed at the token endpoint: the right proof (or none for an
// unbound code) → 200, token_type DPoP when bound; no proof or another
// key's → invalid_dpop_proof when bound; a browser code with another or
// no redirect_uri → invalid_grant. Each failure burns its code, so every
// row mints afresh.
func TestMintTable(t *testing.T) {
	for _, p := range mintPaths {
		t.Run(p.name, func(t *testing.T) {
			mint := p.setup(t)
			t.Run("without DPoP", func(t *testing.T) {
				r := mint(t, nil).redeem(t, nil, nil)
				require.Equal(t, http.StatusOK, r.status, r.raw)
				require.True(t, strings.EqualFold("Bearer", r.str("token_type")), r.raw)
				if m := mint(t, nil); m.browser {
					requireOAuthError(t, m.redeem(t, nil, func(f url.Values) { f.Set("redirect_uri", partnerCB2) }), http.StatusBadRequest, "invalid_grant")
					requireOAuthError(t, mint(t, nil).redeem(t, nil, func(f url.Values) { f.Del("redirect_uri") }), http.StatusBadRequest, "invalid_grant")
				}
			})
			t.Run("with DPoP", func(t *testing.T) {
				k := dpopKey(t)
				requireOAuthError(t, mint(t, k).redeem(t, nil, nil), http.StatusBadRequest, "invalid_dpop_proof")
				requireOAuthError(t, mint(t, k).redeem(t, dpopKey(t), nil), http.StatusBadRequest, "invalid_dpop_proof")
				m := mint(t, k)
				r := m.redeem(t, k, nil)
				require.Equal(t, http.StatusOK, r.status, r.raw)
				require.Equal(t, "DPoP", r.str("token_type"))
				if m.browser {
					requireOAuthError(t, mint(t, k).redeem(t, k, func(f url.Values) { f.Set("redirect_uri", partnerCB2) }), http.StatusBadRequest, "invalid_grant")
					requireOAuthError(t, mint(t, k).redeem(t, k, func(f url.Values) { f.Del("redirect_uri") }), http.StatusBadRequest, "invalid_grant")
				}
			})
		})
	}
}
