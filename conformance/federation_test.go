package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/conformance"
	"github.com/fedas/fedas/conformance/conformancetest"
	"github.com/fedas/fedas/server/servertest"
)

// The federation setup's test inputs (conformancetest.StartFederation).
const (
	fedClient    = conformancetest.FedClient
	fedSecret    = conformancetest.FedSecret
	fedRedirect  = conformancetest.FedRedirect
	fedCallback  = conformancetest.FedCallback
	carolPW      = conformancetest.CarolPassword
	carolAtAS2   = "carol@as2.example"
	daveAtLegacy = "dave@legacy.example"
)

// federationInputs configures env for the federation profile against AS1.
func federationInputs(e *conformance.Env) {
	e.ClientID = "demo-app"
	e.FederationPrompt = url.Values{"email": {carolAtAS2}}
	e.DownstreamUsername, e.DownstreamPassword = "carol", carolPW
	e.NativeCallbackURI = fedCallback
	e.UnsupportedPrompt = url.Values{"email": {daveAtLegacy}}
}

func runProfile(t *testing.T, issuer string, p conformance.Profile, configure func(*conformance.Env)) *conformance.Report {
	t.Helper()
	env := conformance.NewEnv(issuer, 10*time.Second)
	configure(env)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return conformance.Run(ctx, env, conformance.Checks(), []conformance.Profile{p})
}

func requireAll(t *testing.T, rep *conformance.Report, n int, want conformance.Status) {
	t.Helper()
	require.Len(t, rep.Results, n)
	for _, r := range rep.Results {
		assert.Equal(t, want, r.Status, "%s: %s", r.ID, r.Detail)
		if want != conformance.NotApplicable {
			assert.NotEmpty(t, r.Exchanges, r.ID)
		}
	}
}

// TestFederationProfile: against a real federating fedas (AS1 → AS2, two
// instances on loopback) every federation check passes; without the
// inputs each is not applicable, naming the missing flag; against a
// fedas that does not federate, the prompt checks fail.
func TestFederationProfile(t *testing.T) {
	s := conformancetest.StartFederation(t)
	n := len(conformance.FederationChecks())

	t.Run("all inputs", func(t *testing.T) {
		rep := runProfile(t, s.AS1.URL, conformance.ProfileFederation, federationInputs)
		requireAll(t, rep, n, conformance.Pass)
		assert.Equal(t, 0, rep.ExitCode())
		// No live value reaches the report: not the codes of either AS, not
		// the downstream's request_uri (in federation_body, in a deep_link).
		var out bytes.Buffer
		require.NoError(t, rep.WriteJSON(&out))
		for _, live := range []string{"ory_ac_", "urn:ietf:params:oauth:request_uri:", carolPW} {
			assert.NotContains(t, out.String(), live)
		}
		assert.Regexp(t, `"federation_body\\":\\"client_id=as1&request_uri=\[redacted \d+ chars sha256:[0-9a-f]{8}\]`, out.String())
	})

	t.Run("no inputs", func(t *testing.T) {
		rep := runProfile(t, s.AS1.URL, conformance.ProfileFederation, func(e *conformance.Env) { e.ClientID = "demo-app" })
		requireAll(t, rep, n, conformance.NotApplicable)
		for _, r := range rep.Results {
			assert.Regexp(t, `--(federation|unsupported)-prompt`, r.Detail, r.ID)
		}
		assert.Equal(t, 0, rep.ExitCode())
	})

	t.Run("only the prompt", func(t *testing.T) {
		rep := runProfile(t, s.AS1.URL, conformance.ProfileFederation, func(e *conformance.Env) {
			e.ClientID, e.FederationPrompt = "demo-app", url.Values{"email": {carolAtAS2}}
		})
		st := statuses(rep)
		for _, id := range []string{"federation-insufficient-information", "federation-federate-shape", "federation-body-works"} {
			assert.Equal(t, conformance.Pass, st[id], id)
		}
		for id, missing := range map[string]string{
			"federation-complete":                  "--downstream-username",
			"federation-response-uri-session":      "--downstream-username",
			"federation-native-callback-forwarded": "--native-callback-uri",
			"federation-federate-unsupported":      "--unsupported-prompt",
		} {
			assert.Equal(t, conformance.NotApplicable, st[id], id)
			assert.Contains(t, detail(rep, id), missing, id)
		}
	})

	t.Run("a server that does not federate", func(t *testing.T) {
		// AS2 has no prompt: it answers insufficient_authorization.
		rep := runProfile(t, s.AS2.URL, conformance.ProfileFederation, federationInputs)
		st := statuses(rep)
		assert.Equal(t, conformance.Fail, st["federation-insufficient-information"])
		assert.Contains(t, detail(rep, "federation-insufficient-information"), "want insufficient_information")
		assert.Equal(t, 1, rep.ExitCode())
	})
}

func detail(rep *conformance.Report, id string) string {
	for _, r := range rep.Results {
		if r.ID == id {
			return r.Detail
		}
	}
	return ""
}

// rewriting puts in behind a proxy: editRequest may change each form
// request (path, parsed body) before it is passed on, editResponse each
// JSON answer; in's URL in answers becomes the proxy's.
func rewriting(t *testing.T, in *servertest.Instance, editRequest func(path string, form url.Values), editResponse func(path string, body map[string]any)) string {
	var front *httptest.Server
	front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var reqBody bytes.Buffer
		_, _ = reqBody.ReadFrom(r.Body)
		if form, err := url.ParseQuery(reqBody.String()); err == nil && editRequest != nil && r.Method == http.MethodPost {
			editRequest(r.URL.Path, form)
			reqBody.Reset()
			reqBody.WriteString(form.Encode())
		}
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, in.URL+r.URL.RequestURI(), bytes.NewReader(reqBody.Bytes()))
		req.Header = r.Header.Clone()
		req.Header.Del("Content-Length")
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		body := bytes.ReplaceAll(buf.Bytes(), []byte(in.URL), []byte(front.URL))
		var obj map[string]any
		if json.Unmarshal(body, &obj) == nil && editResponse != nil {
			editResponse(r.URL.Path, obj)
			body, _ = json.Marshal(obj)
		}
		for k, v := range resp.Header {
			if k != "Content-Length" {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(body)
	}))
	t.Cleanup(front.Close)
	return front.URL
}

// TestFederationProfile_Broken: a federating AS that breaks one rule (a
// proxy in front of AS1 breaks it) fails the check of that rule, with
// the exchange that shows it, and the run exits 1.
func TestFederationProfile_Broken(t *testing.T) {
	s := conformancetest.StartFederation(t)
	for _, tc := range []struct {
		name         string
		editRequest  func(path string, form url.Values)
		editResponse func(path string, body map[string]any)
		fails        []string
		inDetail     string
		passes       []string
	}{
		{"federation_body without request_uri", nil, func(_ string, body map[string]any) {
			if fb, ok := body["federation_body"].(string); ok {
				v, _ := url.ParseQuery(fb)
				v.Del("request_uri")
				body["federation_body"] = v.Encode()
			}
		}, []string{"federation-federate-shape", "federation-body-works"}, "federation_body has no request_uri",
			[]string{"federation-insufficient-information", "federation-federate-unsupported"}},
		// AS1 never sees the callback, so it cannot reach AS2: what a
		// federating AS that does not forward it looks like from outside.
		{"native_callback_uri not forwarded", func(path string, form url.Values) { form.Del("native_callback_uri") }, nil,
			[]string{"federation-native-callback-forwarded"}, "the callback did not reach it",
			[]string{"federation-federate-shape", "federation-body-works", "federation-complete", "federation-response-uri-session"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			front := rewriting(t, s.AS1, tc.editRequest, tc.editResponse)
			rep := runProfile(t, front, conformance.ProfileFederation, federationInputs)
			st := statuses(rep)
			for _, id := range tc.fails {
				assert.Equal(t, conformance.Fail, st[id], "%s: %s", id, detail(rep, id))
			}
			for _, id := range tc.passes {
				assert.Equal(t, conformance.Pass, st[id], "%s: %s", id, detail(rep, id))
			}
			assert.Contains(t, detail(rep, tc.fails[0]), tc.inDetail)
			for _, r := range rep.Results {
				if r.ID == tc.fails[0] {
					require.NotEmpty(t, r.Exchanges)
				}
			}
			assert.Equal(t, 1, rep.ExitCode())
		})
	}
}
