package federation

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/fedas/fedas/config"
)

// Explanation is where routing would send a client's user and why: the
// admin route tester's answer (issue 8 item 3).
type Explanation struct {
	// Target is what RouteClient returns when a client-only route
	// matches, else what Answer returns for the answers (zero when Answer
	// refuses them). Without a prompt and without a client route, neither
	// routes and the engine signs in locally: Target is then Local.
	Target Target
	// RouteIndex is the index in routes of the matching route; -1 for the
	// default route or when no route decides.
	RouteIndex int
	// Matched says why, e.g. "routes[2]: email domain bank.example",
	// "routes[0]: client demo-app (no prompt)", "default_route: local".
	Matched string
	// Issuer is the downstream's configured issuer when Target is a
	// downstream ("" if that downstream is not configured).
	Issuer string
	// Prompted reports that the prompt would be shown before routing, so
	// the answers are what Answer routes.
	Prompted bool
	// Invalid is why Answer would refuse the answers (the text after
	// "federation: invalid prompt answer: "), "" if it would accept them.
	Invalid string
}

// Explain reports where the user of clientID would be routed with the
// prompt answers (url.Values as a form would post them), using the very
// matching of RouteClient and Answer: first the client-only routes, then,
// if a prompt is configured, the answer through routes and the default
// route. It does not cover what the engine decides before federation
// (one of our apps for a request with native_callback_uri), and it never
// looks up users, as routing never does.
func (f *Federator) Explain(clientID string, answers url.Values) Explanation {
	if i, t := f.matchClient(clientID); i >= 0 {
		why := fmt.Sprintf("routes[%d]: client %s (no prompt)", i, clientID)
		if len(answers) > 0 {
			why = fmt.Sprintf("routes[%d]: client %s (no prompt; the answers are not asked)", i, clientID)
		}
		return f.explained(Explanation{Target: t, RouteIndex: i, Matched: why})
	}
	if f.prompt == nil {
		def := f.def
		if def == "" {
			def = "local (not set)"
		}
		return f.explained(Explanation{Target: f.defaultTarget(), RouteIndex: -1, Matched: "no client route and no prompt: default_route: " + def})
	}
	got, reason := f.validateAnswer(answers)
	if reason != "" {
		return Explanation{RouteIndex: -1, Prompted: true, Invalid: reason,
			Matched: "no client route: the prompt is shown and the answer refused"}
	}
	i, t := f.matchAnswer(clientID, got)
	e := Explanation{Target: t, RouteIndex: i, Prompted: true}
	if i >= 0 {
		e.Matched = fmt.Sprintf("routes[%d]: %s", i, describeRoute(f.routes[i], clientID, answerDomain(got)))
	} else {
		def := f.def
		if def == "" {
			def = "local (not set)"
		}
		e.Matched = "default_route: " + def
	}
	return f.explained(e)
}

// explained adds the downstream's issuer, or says it is not configured.
func (f *Federator) explained(e Explanation) Explanation {
	if e.Target.Downstream != "" {
		if iss, ok := f.Downstream(e.Target.Downstream); ok {
			e.Issuer = iss
		} else {
			e.Matched += fmt.Sprintf(" (downstream %s is not configured)", e.Target.Downstream)
		}
	}
	return e
}

// describeRoute names the conditions of an answer route that matched.
func describeRoute(r config.Route, clientID, domain string) string {
	var parts []string
	if len(r.Clients) > 0 {
		parts = append(parts, "client "+clientID)
	}
	for _, d := range r.EmailDomains {
		if strings.EqualFold(d, domain) {
			parts = append(parts, "email domain "+d)
			break
		}
	}
	if o := r.Option; o != nil {
		parts = append(parts, fmt.Sprintf("option %s=%s", o.Key, o.Value))
	}
	return strings.Join(parts, ", ")
}
