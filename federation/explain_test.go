package federation_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/federation"
)

const (
	bankIssuer  = "https://idp.bank.example"
	corpIssuer  = "https://login.corp.example"
	otherIssuer = "https://other.example"
)

// explainFed builds a Federator over fixed routes; prompt false leaves the
// prompt out, def is the default_route.
func explainFed(tb testing.TB, prompt bool, def string) *federation.Federator {
	tb.Helper()
	ds := func(id, iss string) config.Downstream {
		return config.Downstream{ID: id, Issuer: iss, ClientID: "fedas",
			Auth: config.DownstreamAuth{Method: "client_secret_basic", Secret: "s"}}
	}
	cfg := &config.Config{
		Downstreams: []config.Downstream{ds("bank", bankIssuer), ds("corp", corpIssuer), ds("other", otherIssuer)},
		Routes: []config.Route{
			0: {Clients: []string{"demo-app"}, Local: true},
			1: {Clients: []string{"partner-app"}, Downstream: "corp"},
			2: {EmailDomains: []string{"Bank.Example", "bank.test"}, Downstream: "bank"},
			3: {Option: &config.RouteOption{Key: "bank", Value: "firstBank"}, Downstream: "bank"},
			4: {Clients: []string{"mobile"}, Option: &config.RouteOption{Key: "bank", Value: "secondBank"}, App: "wallet"},
			5: {Clients: []string{"mobile"}, EmailDomains: []string{"corp.example"}, Downstream: "corp"},
			// Never reached for demo-app: its client-only route 0 decides
			// before the prompt.
			6: {Clients: []string{"demo-app"}, EmailDomains: []string{"demo.example"}, Downstream: "other"},
		},
		DefaultRoute: def,
	}
	if prompt {
		cfg.Prompt = &config.Prompt{
			Options: []config.PromptOption{{Key: "bank", Values: []config.PromptValue{
				{Value: "firstBank", Name: "First Bank"}, {Value: "secondBank", Name: "Second Bank"}}}},
			Inputs: []config.PromptInput{{Key: "email"}, {Key: "phone"}},
		}
	}
	f, err := federation.New(cfg, nil, nil)
	require.NoError(tb, err)
	return f
}

func TestExplain(t *testing.T) {
	feds := map[string]*federation.Federator{
		"unset": explainFed(t, true, ""),
		"local": explainFed(t, true, "local"),
		"deny":  explainFed(t, true, "deny"),
		"other": explainFed(t, true, "other"),
		"ghost": explainFed(t, true, "ghost"),
		"none":  explainFed(t, false, "deny"),
	}
	v := func(kv ...string) url.Values {
		out := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	local, deny := federation.Target{Local: true}, federation.Target{Deny: true}
	ds := func(id string) federation.Target { return federation.Target{Downstream: id} }
	invalid := func(reason string) federation.Explanation {
		return federation.Explanation{RouteIndex: -1, Prompted: true, Invalid: reason,
			Matched: "no client route: the prompt is shown and the answer refused"}
	}
	for _, tc := range []struct {
		name    string
		fed     string
		client  string
		answers url.Values
		want    federation.Explanation
	}{
		// Clients only: no prompt, answers not used.
		{"client only local", "unset", "demo-app", nil,
			federation.Explanation{Target: local, RouteIndex: 0, Matched: "routes[0]: client demo-app (no prompt)"}},
		{"client only ignores answers", "unset", "demo-app", v("email", "jane@demo.example"),
			federation.Explanation{Target: local, RouteIndex: 0, Matched: "routes[0]: client demo-app (no prompt; the answers are not asked)"}},
		{"client only downstream", "deny", "partner-app", nil,
			federation.Explanation{Target: ds("corp"), RouteIndex: 1, Issuer: corpIssuer, Matched: "routes[1]: client partner-app (no prompt)"}},
		{"client only without prompt", "none", "partner-app", nil,
			federation.Explanation{Target: ds("corp"), RouteIndex: 1, Issuer: corpIssuer, Matched: "routes[1]: client partner-app (no prompt)"}},
		{"no client route, no prompt", "none", "x", v("email", "jane@bank.example"),
			federation.Explanation{Target: federation.Target{Deny: true}, RouteIndex: -1, Matched: "no client route and no prompt: default_route: deny"}},

		// Email domains, case-insensitive on both sides.
		{"email domain", "deny", "x", v("email", "jane@bank.example"),
			federation.Explanation{Target: ds("bank"), RouteIndex: 2, Issuer: bankIssuer, Prompted: true, Matched: "routes[2]: email domain Bank.Example"}},
		{"email domain upper case", "deny", "x", v("email", "Jane@BANK.TEST"),
			federation.Explanation{Target: ds("bank"), RouteIndex: 2, Issuer: bankIssuer, Prompted: true, Matched: "routes[2]: email domain bank.test"}},
		{"email domain before option", "deny", "x", v("email", "jane@bank.example", "bank", "secondBank"),
			federation.Explanation{Target: ds("bank"), RouteIndex: 2, Issuer: bankIssuer, Prompted: true, Matched: "routes[2]: email domain Bank.Example"}},
		{"email domain and client", "deny", "mobile", v("email", "jane@corp.example"),
			federation.Explanation{Target: ds("corp"), RouteIndex: 5, Issuer: corpIssuer, Prompted: true, Matched: "routes[5]: client mobile, email domain corp.example"}},
		{"email domain of another client's route", "deny", "x", v("email", "jane@corp.example"),
			federation.Explanation{Target: deny, RouteIndex: -1, Prompted: true, Matched: "default_route: deny"}},
		{"subdomain is another domain", "deny", "x", v("email", "jane@eu.bank.example"),
			federation.Explanation{Target: deny, RouteIndex: -1, Prompted: true, Matched: "default_route: deny"}},

		// Options, and app routes.
		{"option", "deny", "x", v("bank", "firstBank"),
			federation.Explanation{Target: ds("bank"), RouteIndex: 3, Issuer: bankIssuer, Prompted: true, Matched: "routes[3]: option bank=firstBank"}},
		{"option with unmatched email", "deny", "x", v("bank", "firstBank", "email", "jane@nowhere.example"),
			federation.Explanation{Target: ds("bank"), RouteIndex: 3, Issuer: bankIssuer, Prompted: true, Matched: "routes[3]: option bank=firstBank"}},
		{"app route", "deny", "mobile", v("bank", "secondBank"),
			federation.Explanation{Target: federation.Target{App: "wallet"}, RouteIndex: 4, Prompted: true, Matched: "routes[4]: client mobile, option bank=secondBank"}},
		{"app route of another client", "deny", "x", v("bank", "secondBank"),
			federation.Explanation{Target: deny, RouteIndex: -1, Prompted: true, Matched: "default_route: deny"}},
		{"phone routes by default", "other", "x", v("phone", "+15551234567"),
			federation.Explanation{Target: ds("other"), RouteIndex: -1, Issuer: otherIssuer, Prompted: true, Matched: "default_route: other"}},

		// Default routes.
		{"default unset", "unset", "x", v("email", "jane@nowhere.example"),
			federation.Explanation{Target: local, RouteIndex: -1, Prompted: true, Matched: "default_route: local (not set)"}},
		{"default local", "local", "x", v("email", "jane@nowhere.example"),
			federation.Explanation{Target: local, RouteIndex: -1, Prompted: true, Matched: "default_route: local"}},
		{"default deny", "deny", "x", v("email", "jane@nowhere.example"),
			federation.Explanation{Target: deny, RouteIndex: -1, Prompted: true, Matched: "default_route: deny"}},
		{"default downstream", "other", "x", v("email", "jane@nowhere.example"),
			federation.Explanation{Target: ds("other"), RouteIndex: -1, Issuer: otherIssuer, Prompted: true, Matched: "default_route: other"}},
		{"default downstream not configured", "ghost", "x", v("email", "jane@nowhere.example"),
			federation.Explanation{Target: ds("ghost"), RouteIndex: -1, Prompted: true, Matched: "default_route: ghost (downstream ghost is not configured)"}},
		{"session keys are allowed", "deny", "x", v("auth_session", "s", "client_id", "x", "bank", "firstBank"),
			federation.Explanation{Target: ds("bank"), RouteIndex: 3, Issuer: bankIssuer, Prompted: true, Matched: "routes[3]: option bank=firstBank"}},

		// Invalid answers: the reasons Answer gives.
		{"unknown option value", "deny", "x", v("bank", "thirdBank"), invalid("bank is not one of the offered values")},
		{"option value case matters", "deny", "x", v("bank", "FIRSTBANK"), invalid("bank is not one of the offered values")},
		{"bad email", "deny", "x", v("email", "jane"), invalid("email is not a valid address")},
		{"email with a name", "deny", "x", v("email", "Jane <jane@bank.example>"), invalid("email is not a valid address")},
		{"email with two @", "deny", "x", v("email", `"a@b"@bank.example`), invalid("email is not a valid address")},
		{"email too long", "deny", "x", v("email", strings.Repeat("a", 250)+"@bank.example"), invalid("email is too long")},
		{"bad phone", "deny", "x", v("phone", "555-1234"), invalid("phone must be in E.164 form (+15551234567)")},
		{"unknown key", "deny", "x", v("bank", "firstBank", "password", "hunter2"), invalid("unexpected parameter")},
		{"nothing answered", "deny", "x", nil, invalid("answer the prompt")},
		{"only session keys", "deny", "x", v("auth_session", "s"), invalid("answer the prompt")},
		{"invalid option before unknown key", "deny", "x", v("bank", "thirdBank", "password", "x"), invalid("bank is not one of the offered values")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := feds[tc.fed]
			got := f.Explain(tc.client, tc.answers)
			require.Equal(t, tc.want, got)
			requireSameAsRouting(t, f, tc.client, tc.answers, got)
		})
	}
}

// requireSameAsRouting checks Explain against what the engine asks of the
// Federator: RouteClient first, then, with a prompt, Answer.
func requireSameAsRouting(tb testing.TB, f *federation.Federator, client string, answers url.Values, e federation.Explanation) {
	tb.Helper()
	if t, ok := f.RouteClient(client); ok {
		require.Equal(tb, t, e.Target)
		require.False(tb, e.Prompted)
		require.Empty(tb, e.Invalid)
		require.GreaterOrEqual(tb, e.RouteIndex, 0)
		return
	}
	t, err := f.Answer(client, answers)
	if !f.HasPrompt() {
		require.ErrorIs(tb, err, federation.ErrInvalidAnswer)
		require.False(tb, e.Prompted)
		require.Equal(tb, f.DefaultRoute(), e.Target, "the engine applies default_route")
		return
	}
	require.True(tb, e.Prompted)
	require.Equal(tb, t, e.Target)
	if err != nil {
		require.ErrorIs(tb, err, federation.ErrInvalidAnswer)
		require.Equal(tb, federation.ErrInvalidAnswer.Error()+": "+e.Invalid, err.Error())
		require.Equal(tb, -1, e.RouteIndex)
		return
	}
	require.Empty(tb, e.Invalid)
}
