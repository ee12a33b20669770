package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/pquerna/otp/totp"
	"go.uber.org/zap"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/storage/memory"
)

// demo starts two fedas instances on loopback — AS1 federates users whose
// email is @bank.example to AS2 — and walks a scripted native client
// through the federated flow of the federation draft's Appendix A.1,
// printing every request and response.
//
// `fedas demo app` runs the app-to-app variant: AS2 answers
// redirect_to_app, a simulated bank app (signed in to AS2 itself)
// completes the deep link, and the client returns to AS1's response_uri.
func demo(args []string, out io.Writer) error {
	appVariant := len(args) > 0 && args[0] == "app"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	log := zap.NewNop()

	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	priv := jose.JSONWebKey{Key: k, KeyID: "as1-at-as2", Algorithm: string(jose.ES256), Use: "sig"}
	privJSON, _ := json.Marshal(priv)
	pubJSON, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{priv.Public()}})

	// AS2: the bank that holds bob's account; AS1 is registered there as
	// a federating client that may receive credential challenges.
	as2, stop2, err := startDemoAS(func(c *config.Config) {
		if appVariant {
			c.Clients = append(c.Clients, config.Client{ID: "bank-app", Name: "Bank app", FirstParty: true, TokenEndpointAuthMethod: "none",
				Scopes: []string{"openid"}, GrantTypes: []string{"authorization_code", "refresh_token"}})
			c.Apps = []config.App{{ID: "bank", ClientID: "bank-app", DeepLink: "https://bank.example/app", DownstreamRole: true}}
		}
		c.Clients = append(c.Clients, config.Client{
			ID: "as1", Name: "AS1 (federating)", Federating: true, AllowCredentialChallenges: !appVariant,
			TokenEndpointAuthMethod: "private_key_jwt", JWKS: string(pubJSON), SigningAlg: "ES256",
			Scopes: []string{"openid", "profile", "email"}, GrantTypes: []string{"authorization_code"},
			RedirectURIs:       []string{"https://as1.example/web-callback"},
			NativeCallbackURIs: []string{"https://app.example/cb"},
		})
	}, log)
	if err != nil {
		return err
	}
	defer stop2()
	// AS1: the AS the app knows; routes @bank.example to AS2.
	as1, stop1, err := startDemoAS(func(c *config.Config) {
		c.Downstreams = []config.Downstream{{
			ID: "bank", Issuer: as2, Name: "Bank", ClientID: "as1",
			Auth:   config.DownstreamAuth{Method: "private_key_jwt", Key: string(privJSON)},
			Scopes: map[string]string{"openid": "openid", "email": "email"},
		}}
		c.Prompt = &config.Prompt{Inputs: []config.PromptInput{{Key: "email", Title: "Email", Hint: "you@example.com"}}}
		c.Routes = []config.Route{{Downstream: "bank", EmailDomains: []string{"bank.example"}}}
	}, log)
	if err != nil {
		return err
	}
	defer stop1()
	fmt.Fprintf(out, "AS1 (federating) %s\nAS2 (downstream)  %s\n\n", as1, as2)

	hc := sdk.NewHTTPClient()
	meta, err := sdk.Discover(ctx, hc, as1)
	if err != nil {
		return err
	}
	step := 0
	client := &sdk.Client{HTTP: hc, ClientID: "demo-app", Meta: meta,
		OnExchange: func(method, u string, form url.Values, status int, body []byte) {
			step++
			shown := url.Values{}
			for k, v := range form {
				if k == "password" || k == "code_verifier" {
					v = []string{"…"}
				}
				shown[k] = v
			}
			fmt.Fprintf(out, "── %d. %s %s\n   %s\n   → HTTP %d %s\n\n", step, method, u, shown.Encode(), status, strings.TrimSpace(string(body)))
		}}
	ui := func(_ context.Context, r sdk.Response) (url.Values, error) {
		switch {
		case r.Error == "insufficient_information":
			return url.Values{"email": {"bob@bank.example"}}, nil
		case r.Challenge != nil && r.Challenge.Type == "password":
			return url.Values{"username": {"bob"}, "password": {"builder"}}, nil
		case r.Challenge != nil && r.Challenge.Type == "otp":
			code, err := totp.GenerateCode("JBSWY3DPEHPK3PXP", time.Now())
			return url.Values{"otp": {code}}, err
		}
		return nil, fmt.Errorf("unexpected %s", r.Error)
	}
	if appVariant {
		open, err := demoApp(ctx, hc, as2, ui, out)
		if err != nil {
			return err
		}
		client.OpenApp = open
	}
	code, pk, err := client.Authorize(ctx, url.Values{"scope": {"openid email"}, "native_callback_uri": {"https://app.example/cb"}}, ui)
	if err != nil {
		return err
	}
	tok, err := client.Exchange(ctx, code, pk)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Signed in at AS1 through AS2 without a browser: access token %s… (%d s)\n", tok.AccessToken[:12], tok.ExpiresIn)
	return nil
}

// demoApp signs bob in to the bank app at AS2 (the app is a first-party
// client there) and returns an OpenApp that completes deep links as the
// app would, printing what it does.
func demoApp(ctx context.Context, hc *http.Client, as2 string, ui sdk.UI, out io.Writer) (func(context.Context, string) (url.Values, error), error) {
	meta, err := sdk.Discover(ctx, hc, as2)
	if err != nil {
		return nil, err
	}
	app := &sdk.Client{HTTP: hc, ClientID: "bank-app", Meta: meta}
	code, pk, err := app.Authorize(ctx, url.Values{"scope": {"openid"}}, ui)
	if err != nil {
		return nil, err
	}
	tok, err := app.Exchange(ctx, code, pk)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "(the bank app on this device is signed in to AS2 as bob)\n\n")
	return func(ctx context.Context, link string) (url.Values, error) {
		fmt.Fprintf(out, "── the OS opens the bank app with the deep link\n   %s\n\n", link)
		cb, params, err := app.CompleteApp(ctx, link, tok.AccessToken)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(out, "── the bank app completed the request at AS2 and invokes the client's native_callback_uri\n   %s\n\n", cb)
		return params, nil
	}, nil
}

func startDemoAS(edit func(*config.Config), log *zap.Logger) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	cfg := config.Default()
	cfg.Issuer, cfg.Listen = "http://"+ln.Addr().String(), ln.Addr().String()
	edit(cfg)
	if err := cfg.Validate(); err != nil {
		ln.Close()
		return "", nil, err
	}
	st := memory.New()
	srv, err := server.New(server.Options{Config: cfg, Store: st, Logger: log})
	if err != nil {
		ln.Close()
		return "", nil, err
	}
	go func() { _ = srv.Serve(ln) }()
	return cfg.Issuer, func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = st.Close()
	}, nil
}
