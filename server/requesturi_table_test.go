package server_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// requestURIKind is one kind of request_uri: its owner client, another
// client, how to make one, and its owner's rightful use at its own
// endpoint (asserted to succeed).
type requestURIKind struct {
	name, owner, other string
	make               func(t *testing.T, in instance) string
	ownerUse           func(t *testing.T, in instance, bank, ru string)
	// want maps "endpoint/own" or "endpoint/other" to the answer.
	want map[string]string
}

// Answers of the table.
const (
	ansForm      = "form page"       // our browser sign-in page (not consumed)
	ansErrorPage = "error page"      // an HTML error page, no redirect
	ansDeepLink  = "redirect_to_app" // the native endpoint's deep link (consumed)
	ansCompleted = "completed"       // the app completion's callback (consumed)
)

// TestRequestURITable: every kind of request_uri — a client's PAR (a
// browser client's and a federating client's), our deep-link push, our
// browser-fallback push — presented by its own client and by another at
// every endpoint that takes one: the native endpoint (client_id +
// request_uri), the browser endpoint (GET /oauth2/authorize) and the app
// completion API. Each answer is asserted, and after every use that does
// not consume it the owner still completes it at its own endpoint.
func TestRequestURITable(t *testing.T) {
	in := wrap(start(t, nil, appSecConfig, webConfig(partnerCB), noRateLimits)) // carol signs in for every row
	bank := "Bearer " + appToken(t, in, "bank-app")

	browserOwner := func(owner, redirect string) func(*testing.T, instance, string, string) {
		return func(t *testing.T, in instance, _ string, ru string) {
			s := requireFormPage(t, getURL(t, in.authorizeURL(owner, ru)), "username")
			requireCodeRedirect(t, in, in.carolSignsIn(t, s), redirect)
		}
	}
	kinds := []requestURIKind{
		{name: "PAR of a browser client", owner: "demo-partner", other: "partner2",
			make: func(t *testing.T, in instance) string {
				return pushAs(t, in, "demo-partner", partnerSecret, partnerCB).requestURI
			},
			ownerUse: browserOwner("demo-partner", partnerCB),
			want: map[string]string{"native/own": "unauthorized_client", "native/other": "invalid_request",
				"authorize/own": ansForm, "authorize/other": ansErrorPage, "app/own": "invalid_request", "app/other": "invalid_request"}},
		{name: "PAR of a federating client", owner: "fed-partner", other: "demo-app",
			make: func(t *testing.T, in instance) string { ru, _ := fedPartnerPAR(t, in, nil); return ru },
			ownerUse: func(t *testing.T, in instance, _ string, ru string) {
				requireDeepLink(t, post(t, in.native(), url.Values{"client_id": {"fed-partner"}, "request_uri": {ru}}), "fed-partner")
			},
			want: map[string]string{"native/own": ansDeepLink, "native/other": "invalid_request",
				"authorize/own": ansForm, "authorize/other": ansErrorPage, "app/own": "invalid_request", "app/other": "invalid_request"}},
		{name: "deep-link push", owner: "demo-app", other: "c2",
			make: func(t *testing.T, in instance) string {
				r, _ := in.localDeepLink(t, nil)
				return requireDeepLink(t, r, "demo-app")
			},
			ownerUse: func(t *testing.T, in instance, bank, ru string) {
				done := in.appCompleteWith(t, url.Values{"client_id": {"demo-app"}, "request_uri": {ru}}, withHeader("Authorization", bank))
				require.Equal(t, http.StatusOK, done.status, done.raw)
			},
			want: map[string]string{"native/own": "invalid_request", "native/other": "invalid_request",
				"authorize/own": ansErrorPage, "authorize/other": ansErrorPage, "app/own": ansCompleted, "app/other": "invalid_request"}},
		{name: "browser-fallback push", owner: "fp-conf", other: "demo-partner",
			make:     func(t *testing.T, in instance) string { ru, _ := fpConfFallback(t, in); return ru },
			ownerUse: browserOwner("fp-conf", fpConfWeb),
			want: map[string]string{"native/own": "invalid_request", "native/other": "invalid_request",
				"authorize/own": ansForm, "authorize/other": ansErrorPage, "app/own": "invalid_request", "app/other": "invalid_request"}},
	}
	endpoints := []struct {
		name string
		use  func(t *testing.T, client, ru string) reply
	}{
		{"native", func(t *testing.T, client, ru string) reply {
			return post(t, in.native(), url.Values{"client_id": {client}, "request_uri": {ru}})
		}},
		{"authorize", func(t *testing.T, client, ru string) reply { return getURL(t, in.authorizeURL(client, ru)) }},
		{"app", func(t *testing.T, client, ru string) reply {
			return in.appCompleteWith(t, url.Values{"client_id": {client}, "request_uri": {ru}}, withHeader("Authorization", bank))
		}},
	}
	for _, k := range kinds {
		for _, ep := range endpoints {
			for _, who := range []string{"own", "other"} {
				key := ep.name + "/" + who
				want := k.want[key]
				t.Run(k.name+"/"+key+"→"+want, func(t *testing.T) {
					client := k.owner
					if who == "other" {
						client = k.other
					}
					ru := k.make(t, in)
					r := ep.use(t, client, ru)
					consumed := false
					switch want {
					case ansForm:
						requireFormPage(t, r, "username")
					case ansErrorPage:
						requireErrorPage(t, r, http.StatusBadRequest)
					case ansDeepLink:
						requireDeepLink(t, r, k.owner)
						consumed = true
					case ansCompleted:
						require.Equal(t, http.StatusOK, r.status, r.raw)
						require.NotEmpty(t, r.str("callback"))
						consumed = true
					default:
						requireOAuthError(t, r, http.StatusBadRequest, want)
						require.Empty(t, r.str("deep_link"))
						require.Empty(t, r.str("auth_session"))
						require.Empty(t, r.str("callback"))
					}
					if consumed {
						// Used once: the same use again is refused.
						again := ep.use(t, client, ru)
						requireOAuthError(t, again, http.StatusBadRequest, "invalid_request")
						return
					}
					k.ownerUse(t, in, bank, ru)
				})
			}
		}
	}
}
