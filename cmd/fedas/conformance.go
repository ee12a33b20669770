package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/fedas/fedas/conformance"
)

// conformanceCmd is `fedas conformance`: the black-box checks of an
// authorization server claiming the native endpoint (docs/conformance.md).
// The exit status is 0 exactly when no applicable check failed, 1 when
// one did, 2 for a usage error.
func conformanceCmd(args []string, s stdio) error {
	fs := newFlags("conformance", "conformance --issuer URL [--client-id ID] [--auth none|client_secret_basic:SECRET] [--username U --password P] [fipa inputs: --totp-secret B32 --third-party-client-id ID --other-client-id ID --web-param NAME=VALUE --session-ttl D] [--profile fipa,federation,downstream] [federation and downstream inputs: the --federation-* and --par-* flags below] [--json FILE] [--markdown FILE] [--timeout D] [--ca-file PEM]",
		"Runs black-box checks against the authorization server at --issuer (any server, not only fedas):\n"+
			"each check cites its spec section and ends pass, fail or not_applicable (a server without a\n"+
			"native endpoint in its metadata: every fipa check is not applicable; one whose metadata URL\n"+
			"errs, redirects, times out or serves something else than RFC 8414 metadata fails). Prints a\n"+
			"table; --json and --markdown also write the results with the HTTP exchanges that decided them\n"+
			"(docs/conformance.md).\n"+
			"Exit status: 0 when no applicable check failed, 1 when one did, 2 for a usage error.")
	issuer := fs.String("issuer", "", "the issuer identifier of the server under test (required)")
	clientID := fs.String("client-id", "", "a first-party client registered there (without it the request checks are not applicable)")
	auth := fs.String("auth", "none", "client authentication: none or client_secret_basic:SECRET")
	username := fs.String("username", "", "a test user's username, for the full sign-in checks")
	password := fs.String("password", "", "that user's password")
	profiles := fs.String("profile", "fipa", "comma-separated profiles to run: fipa, federation, downstream")
	jsonFile := fs.String("json", "", "also write the report as JSON to this file")
	mdFile := fs.String("markdown", "", "also write the report as Markdown (with the exchanges of failures) to this file")
	timeout := fs.Duration("timeout", 10*time.Second, "timeout of each HTTP request")
	caFile := fs.String("ca-file", "", "PEM file of CA certificates to trust too, for a server whose certificate a private CA issued")
	// federation/downstream profile inputs (docs/conformance.md): fedInputs
	// checks them and puts them in the Env.
	var fedPrompt, unsupportedPrompt []string
	fs.Func("federation-prompt", "NAME=VALUE answering the insufficient_information prompt so that the server federates (repeatable; federation profile)", func(v string) error {
		fedPrompt = append(fedPrompt, v)
		return nil
	})
	fs.Func("unsupported-prompt", "NAME=VALUE routing to a downstream without a native endpoint (repeatable; federation profile)", func(v string) error {
		unsupportedPrompt = append(unsupportedPrompt, v)
		return nil
	})
	dsUsername := fs.String("downstream-username", "", "a test user at the downstream the federation prompt routes to (password sign-in)")
	dsPassword := fs.String("downstream-password", "", "that user's password")
	nativeCallback := fs.String("native-callback-uri", "", "a native_callback_uri registered for --client-id; the downstream must answer redirect_to_app (or redirect_to_web) to a request carrying it")
	parClientID := fs.String("par-client-id", "", "a client registered there as a federating AS (downstream profile)")
	parAuth := fs.String("par-auth", "", "its client authentication: client_secret_basic:SECRET or private_key_jwt (with --par-key)")
	parKey := fs.String("par-key", "", "for --par-auth private_key_jwt: a file with the client's private JWK (JSON)")
	parRedirectURI := fs.String("par-redirect-uri", "", "a redirect_uri registered for --par-client-id, sent in its pushes")
	parExpiry := fs.Bool("par-expiry", false, "also check an expired request_uri: waits for a push's expires_in (90 s at fedas) to pass")
	fedInputs := func(env *conformance.Env) error {
		var err error
		if env.FederationPrompt, err = conformance.ParsePromptAnswers("--federation-prompt", fedPrompt); err != nil {
			return err
		}
		if env.UnsupportedPrompt, err = conformance.ParsePromptAnswers("--unsupported-prompt", unsupportedPrompt); err != nil {
			return err
		}
		if (*dsUsername == "") != (*dsPassword == "") {
			return errors.New("--downstream-username and --downstream-password go together")
		}
		switch {
		case *parAuth != "" && *parClientID == "":
			return errors.New("--par-auth needs --par-client-id")
		case (*parAuth == "private_key_jwt") != (*parKey != ""):
			return errors.New("--par-auth private_key_jwt and --par-key go together")
		case *parAuth == "private_key_jwt":
			b, err := os.ReadFile(*parKey)
			if err != nil {
				return fmt.Errorf("--par-key: %v", err)
			}
			if _, _, err := conformance.ParsePARKey(string(b)); err != nil {
				return fmt.Errorf("--par-key %s: %v", *parKey, err)
			}
			env.PARAuth, env.PARKey = conformance.ClientAuth{Method: "private_key_jwt"}, string(b)
		case *parAuth != "":
			if env.PARAuth, err = conformance.ParseClientAuth(*parAuth); err != nil || env.PARAuth.Method != "client_secret_basic" {
				return fmt.Errorf("--par-auth: want client_secret_basic:SECRET or private_key_jwt, got %q", *parAuth)
			}
		}
		env.DownstreamUsername, env.DownstreamPassword, env.NativeCallbackURI = *dsUsername, *dsPassword, *nativeCallback
		env.PARClientID, env.PARRedirectURI, env.PARExpiry = *parClientID, *parRedirectURI, *parExpiry
		return nil
	}
	// fipa inputs: each enables the checks that need it (docs/conformance.md).
	totpSecret := fs.String("totp-secret", "", "the test user's base32 TOTP secret (RFC 6238), for a sign-in with a one-time code")
	thirdParty := fs.String("third-party-client-id", "", "a registered public client that is not first-party (the native endpoint must refuse it: unauthorized_client)")
	otherClient := fs.String("other-client-id", "", "a second first-party public client (another client's follow-up must be refused)")
	webParams := url.Values{}
	fs.Func("web-param", "NAME=VALUE added to an initial request to make the server answer redirect_to_web (repeatable)", func(s string) error {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return fmt.Errorf("want NAME=VALUE, got %q", s)
		}
		webParams.Add(k, v)
		return nil
	})
	sessionTTL := fs.Duration("session-ttl", 0, "the server's auth_session lifetime: the expiry check waits this long plus 5 s")
	if done, err := parseFlags(fs, args, s); done {
		return err
	}
	if err := wantArgs(fs, 0, 0, s); err != nil {
		return err
	}
	usage := func(msg string) error {
		fmt.Fprintf(s.err, "fedas conformance: %s\n", msg)
		printUsage(s.err, fs)
		return usageError{msg}
	}
	if *issuer == "" {
		return usage("--issuer is required")
	}
	if _, err := conformance.MetadataURL(*issuer); err != nil {
		return usage(err.Error())
	}
	ca, err := conformance.ParseClientAuth(*auth)
	if err != nil {
		return usage(err.Error())
	}
	if ca.Method != "none" && *clientID == "" {
		return usage("--auth needs --client-id")
	}
	if (*username == "") != (*password == "") {
		return usage("--username and --password go together")
	}
	if *totpSecret != "" && *username == "" {
		return usage("--totp-secret needs --username and --password")
	}
	if *sessionTTL < 0 {
		return usage("--session-ttl must not be negative")
	}
	ps, err := conformance.ParseProfiles(*profiles)
	if err != nil {
		return usage(err.Error())
	}
	if *timeout <= 0 {
		return usage("--timeout must be positive")
	}
	env := conformance.NewEnv(*issuer, *timeout)
	if *caFile != "" {
		b, err := os.ReadFile(*caFile)
		if err != nil {
			return usage("--ca-file: " + err.Error())
		}
		if err := env.TrustCAs(b); err != nil {
			return usage("--ca-file " + *caFile + ": " + err.Error())
		}
	}
	env.ClientID, env.Auth, env.Username, env.Password = *clientID, ca, *username, *password
	if err := fedInputs(env); err != nil {
		return usage(err.Error())
	}
	env.TOTPSecret, env.ThirdPartyClientID, env.OtherClientID, env.WebParams, env.SessionTTL = *totpSecret, *thirdParty, *otherClient, webParams, *sessionTTL
	// The report files are created before the run, so that a path that
	// can't be written is a usage error, not the end of a long run.
	reports := []struct {
		name  string
		write func(*conformance.Report, *os.File) error
		f     *os.File
	}{
		{name: *jsonFile, write: func(r *conformance.Report, w *os.File) error { return r.WriteJSON(w) }},
		{name: *mdFile, write: func(r *conformance.Report, w *os.File) error { return r.WriteMarkdown(w) }},
	}
	for i := range reports {
		if reports[i].name == "" {
			continue
		}
		f, err := os.Create(reports[i].name)
		if err != nil {
			return usage(err.Error())
		}
		defer f.Close()
		reports[i].f = f
	}
	rep := conformance.Run(context.Background(), env, conformance.Checks(), ps)
	if err := rep.WriteTable(s.out); err != nil {
		return err
	}
	for _, r := range reports {
		if r.f == nil {
			continue
		}
		if err := r.write(rep, r.f); err != nil {
			return err
		}
		if err := r.f.Close(); err != nil {
			return err
		}
	}
	if n := rep.Failed(); n > 0 {
		return fmt.Errorf("conformance: %d applicable check(s) failed", n)
	}
	return nil
}
