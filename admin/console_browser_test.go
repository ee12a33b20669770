package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/admin/admintest"
	"github.com/fedas/fedas/admin/probe"
	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/federation/fedtest"
	"github.com/fedas/fedas/internal/chromium"
	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/storage/redistest"
)

// artifactsDir is where screenshots go: testdata/artifacts/console when
// FEDAS_ARTIFACTS is set (to look at them), else a temporary directory.
func artifactsDir(t *testing.T) string {
	t.Helper()
	if os.Getenv("FEDAS_ARTIFACTS") == "" {
		return t.TempDir()
	}
	dir := filepath.Join("testdata", "artifacts", "console")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// TestConsole_Chromium drives the console in a real headless Chromium,
// on a two-instance deployment sharing one real redis-server: sign in,
// add a downstream with a bad issuer (the error appears beside the issuer
// field), fix it to a mock downstream AS and save, check it, add an
// email-domain route to it and ask the route tester; the other instance
// serves the change within a second, and a native federated sign-in on
// its public listener reaches that downstream; a rollback from the
// console then stops it federating there, within a second.
func TestConsole_Chromium(t *testing.T) {
	exe := chromium.Path(t)
	key := newFedKey(t)
	var set jose.JSONWebKeySet
	require.NoError(t, json.Unmarshal([]byte(key.public), &set))
	ds := fedtest.Start(t, fedtest.Options{ClientKeys: &set})
	rs := redistest.Start(t)
	tokens, writeToken, _ := admintest.Tokens(t, t.TempDir())
	secret := []byte("console-test-shared-hmac-secret-0123456789")
	var ins []*admintest.Instance
	for range 2 {
		ins = append(ins, admintest.Start(t, admintest.Options{
			Store: sharedRedis(t, rs.Addr(), "fedas:console:"), HMACSecret: secret, TokensFile: tokens,
			Interval: policy.DefaultFollowInterval,
			Configure: func(c *config.Config) {
				c.Dev.AllowLoopbackHTTP = true
				c.Prompt = &config.Prompt{Inputs: []config.PromptInput{{Key: "email", Title: "Email", Hint: "you@example.com"}}}
			}}))
	}
	in, other := ins[0], ins[1]
	in.WriteToken = writeToken
	shots := artifactsDir(t)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "profile")),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()

	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		require.NoError(t, err, "screenshot %s", name)
		require.NoError(t, os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644))
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.TextContent(chromedp.CSS(sel)))
		require.NoError(t, err, "text of %s", sel)
		return strings.TrimSpace(s)
	}
	title := func() string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Title())
		require.NoError(t, err)
		return s
	}

	// Sign in with the write token.
	require.NoError(t, chromedp.Do(bctx,
		chromedp.Navigate(in.AdminURL+"/console/downstreams"),
		chromedp.WaitVisible(chromedp.ID("token")),
	), "the console sends us to sign in")
	require.Equal(t, "Sign in · fedas admin", title())
	shot("01-login")
	require.NoError(t, chromedp.Do(bctx,
		chromedp.SendKeys(chromedp.ID("token"), in.WriteToken),
		chromedp.Click(chromedp.ID("sign-in")),
	), "sign in")
	require.NoError(t, chromedp.Do(bctx,
		chromedp.WaitVisible(chromedp.ID("new")),
	), "sign in, back on the page asked for")
	loc, err := chromedp.Run(bctx, chromedp.Location())
	require.NoError(t, err)
	require.Equal(t, in.AdminURL+"/console/downstreams", loc)
	require.NotContains(t, loc, in.WriteToken)
	require.NoError(t, chromedp.Do(bctx,
		chromedp.Navigate(in.AdminURL+"/console/"),
		chromedp.WaitVisible(chromedp.ID("policy-version")),
	))
	require.Equal(t, "1", text("#policy-version"))
	shot("02-overview")

	// A downstream with a bad issuer: the error is beside the field.
	require.NoError(t, chromedp.Do(bctx,
		chromedp.Click(chromedp.CSS(`a[href="/console/downstreams"]`)),
		chromedp.WaitVisible(chromedp.ID("new")),
		chromedp.Click(chromedp.ID("new")),
		chromedp.WaitVisible(chromedp.ID("f-id")),
		chromedp.SendKeys(chromedp.ID("f-id"), "bank"),
		chromedp.SendKeys(chromedp.ID("f-issuer"), "ftp://x"),
		chromedp.SendKeys(chromedp.ID("f-name"), "Bank"),
		chromedp.SendKeys(chromedp.ID("f-client-id"), "as1"),
		chromedp.SetValue(chromedp.ID("f-auth-method"), "private_key_jwt"),
		chromedp.SetValue(chromedp.ID("f-auth-key"), key.private),
		chromedp.SendKeys(chromedp.ID("f-scopes"), "openid=openid\nemail=email"),
		chromedp.SendKeys(chromedp.ID("f-claims"), "email"),
		chromedp.Click(chromedp.ID("save")),
		chromedp.WaitVisible(chromedp.CSS(".error-summary")),
	), "save a downstream with a bad issuer")
	described, err := chromedp.Run(bctx, chromedp.Evaluate[string](`(() => {
		const input = document.getElementById("f-issuer");
		return (input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean)
			.map(id => document.getElementById(id).textContent).join(" | ");
	})()`))
	require.NoError(t, err)
	require.Contains(t, described, "must use https", "the issuer's error is what its aria-describedby names")
	invalid, err := chromedp.Run(bctx, chromedp.AttributeValue(chromedp.ID("f-issuer"), "aria-invalid"))
	require.NoError(t, err)
	require.Equal(t, "true", invalid.Value)
	require.Contains(t, text(".error-summary"), "Issuer")
	require.Equal(t, "Bank", mustValue(bctx, t, "f-name"), "the input is kept")
	shot("03-downstream-error")

	// Fixed to the mock's issuer, saved.
	require.NoError(t, chromedp.Do(bctx,
		chromedp.SetValue(chromedp.ID("f-issuer"), ds.URL),
		chromedp.SetValue(chromedp.ID("f-auth-key"), key.private),
		chromedp.Click(chromedp.ID("save")),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
	), "save the fixed downstream")
	require.Equal(t, "Saved: version 2.", text(".flash"))

	// The downstream check: every step, the real PAR included, is ok.
	parsBefore := ds.Count(fedtest.PAR)
	require.NoError(t, chromedp.Do(bctx,
		chromedp.Click(chromedp.CSS(`a[href="/console/downstreams/bank/edit"]`)),
		chromedp.WaitVisible(chromedp.ID("check")),
		chromedp.Click(chromedp.ID("check")),
		chromedp.WaitVisible(chromedp.ID("verdict")),
	), "run the downstream check")
	require.Equal(t, "Check downstream bank · fedas admin", title())
	require.Contains(t, text("#verdict"), "No step failed")
	parStatus := text("table.steps tbody tr:last-child td")
	require.Equal(t, probe.StepPAR, text("table.steps tbody tr:last-child th"))
	require.Equal(t, "ok", parStatus)
	require.Equal(t, parsBefore+1, ds.Count(fedtest.PAR), "the check made one real PAR")
	shot("04-downstream-check")

	// A route for bank.example to it.
	require.NoError(t, chromedp.Do(bctx,
		chromedp.Navigate(in.AdminURL+"/console/routes/new"),
		chromedp.WaitVisible(chromedp.ID("f-target")),
		chromedp.SetValue(chromedp.ID("f-target"), "downstream:bank"),
		chromedp.SendKeys(chromedp.ID("f-email-domains"), "bank.example"),
		chromedp.Click(chromedp.ID("save")),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
	), "add a route")
	require.Equal(t, "Saved: version 3.", text(".flash"))
	require.Contains(t, text("table tbody"), "email @bank.example")
	shot("05-routes")

	// The route tester sends jane there.
	require.NoError(t, chromedp.Do(bctx,
		chromedp.Click(chromedp.CSS(`a[href="/console/route-test"]`)),
		chromedp.WaitVisible(chromedp.ID("f-email")),
		chromedp.SetValue(chromedp.ID("f-client-id"), "demo-app"),
		chromedp.SendKeys(chromedp.ID("f-email"), "jane@bank.example"),
		chromedp.Click(chromedp.ID("test")),
		chromedp.WaitVisible(chromedp.ID("answer")),
	), "ask the route tester")
	require.Equal(t, "downstream", text("#answer-target"))
	require.Equal(t, "bank", text("#answer-downstream"))
	require.Contains(t, text("#answer-route"), "route-1")
	shot("06-route-test")

	require.NoError(t, chromedp.Do(bctx,
		chromedp.Click(chromedp.CSS(`a[href="/console/audit"]`)),
		chromedp.WaitVisible(chromedp.CSS("table.audit")),
	))
	require.Contains(t, text("table.audit tbody"), "routes.create")
	shot("07-audit")
	require.NoError(t, chromedp.Do(bctx,
		chromedp.Click(chromedp.CSS(`a[href="/console/versions"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/console/versions/2"]`)),
	))
	shot("08-versions")
	require.NoError(t, chromedp.Do(bctx,
		chromedp.Click(chromedp.CSS(`a[href="/console/versions/2"]`)),
		chromedp.WaitVisible(chromedp.ID("rollback")),
	))
	shot("09-version")

	// Import from discovery prefills a new downstream from the metadata.
	require.NoError(t, chromedp.Do(bctx,
		chromedp.Navigate(in.AdminURL+"/console/discover"),
		chromedp.WaitVisible(chromedp.ID("f-issuer")),
		chromedp.SendKeys(chromedp.ID("f-issuer"), ds.URL),
		chromedp.Click(chromedp.ID("discover")),
		chromedp.WaitVisible(chromedp.ID("steps-title")),
	), "discover the mock")
	require.Equal(t, ds.URL, mustValue(bctx, t, "f-issuer"))
	require.Equal(t, "New downstream · fedas admin", title())
	shot("10-discovery")
	require.NoError(t, chromedp.Do(bctx,
		chromedp.Navigate(in.AdminURL+"/console/prompt"),
		chromedp.WaitVisible(chromedp.ID("f-inputs-email")),
	))
	shot("12-prompt")
	require.NoError(t, chromedp.Do(bctx,
		chromedp.Navigate(in.AdminURL+"/console/clients/demo-app/edit"),
		chromedp.WaitVisible(chromedp.ID("f-token-endpoint-auth-method")),
	))
	shot("13-client")

	// Narrow screens: the downstream form at 375 px.
	require.NoError(t, chromedp.Do(bctx,
		chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile),
		chromedp.Navigate(in.AdminURL+"/console/downstreams/bank/edit"),
		chromedp.WaitVisible(chromedp.ID("f-issuer")),
	))
	width, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
	require.NoError(t, err)
	require.LessOrEqual(t, width, 375, "no horizontal scrolling at 375 px")
	shot("11-downstream-375px")

	// Outside the browser: the other instance serves the change within a
	// second, and a native sign-in on its public listener is federated to
	// the mock downstream, whose PAR and token endpoints accept our
	// private_key_jwt.
	waitApplied(t, other, 3, time.Second)
	hc := sdk.NewHTTPClient()
	meta, err := sdk.Discover(ctx, hc, other.URL)
	require.NoError(t, err)
	c := &sdk.Client{HTTP: hc, ClientID: "demo-app", Meta: meta}
	var federationURIs []string
	c.OnExchange = func(_ string, _ string, _ url.Values, _ int, body []byte) {
		var r sdk.Response
		_ = json.Unmarshal(body, &r)
		if r.Error == "federate" {
			federationURIs = append(federationURIs, r.FederationURI)
		}
	}
	pars := ds.Count(fedtest.PAR)
	code, pk, err := c.Authorize(ctx, url.Values{"scope": {"openid email"}}, func(_ context.Context, r sdk.Response) (url.Values, error) {
		return url.Values{"email": {"jane@bank.example"}}, nil
	})
	require.NoError(t, err)
	require.Equal(t, []string{ds.Endpoint(fedtest.Native)}, federationURIs, "federated to the downstream the console added")
	require.Equal(t, pars+1, ds.Count(fedtest.PAR), "our PAR went to that downstream")
	par := ds.Requests(fedtest.PAR)
	require.Equal(t, "as1", par[len(par)-1].Form.Get("client_id"))
	require.Equal(t, 201, par[len(par)-1].Status)
	tok, err := c.Exchange(ctx, code, pk)
	require.NoError(t, err)
	require.NotEmpty(t, tok.AccessToken)

	// Roll back to the bootstrap version from the console: within a
	// second the other instance no longer federates jane anywhere.
	require.NoError(t, chromedp.Do(bctx,
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(in.AdminURL+"/console/versions/1"),
		chromedp.WaitVisible(chromedp.ID("rollback")),
		chromedp.Click(chromedp.ID("rollback")),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
	), "roll back from the console")
	require.Contains(t, text(".flash"), "version 4")
	shot("14-rolled-back")
	waitApplied(t, other, 4, time.Second)
	require.Empty(t, other.Server.Policy().Current().Config.Downstreams)
	federationURIs = nil
	pars = ds.Count(fedtest.PAR)
	_, _, err = c.Authorize(ctx, url.Values{"scope": {"openid email"}}, func(_ context.Context, r sdk.Response) (url.Values, error) {
		if r.Error == "insufficient_information" {
			return url.Values{"email": {"jane@bank.example"}}, nil
		}
		require.Equal(t, "insufficient_authorization", r.Error, "signed in locally after the rollback")
		return nil, errors.New("stop at the local challenge")
	})
	require.ErrorContains(t, err, "stop at the local challenge")
	require.Empty(t, federationURIs, "no federate after the rollback")
	require.Equal(t, pars, ds.Count(fedtest.PAR), "no PAR after the rollback")
}

func mustValue(ctx context.Context, t *testing.T, id string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID(id)))
	require.NoError(t, err)
	return v
}
