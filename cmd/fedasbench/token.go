package main

// The token scenario: the token endpoint alone (RFC 6749 §4.1.3, RFC 7636
// §4.5). Every measured flow is one authorization_code grant by the
// confidential first-party client bench-native, authenticated with -auth
// (FiPA-04 §4.1 lets a confidential first-party client use the native
// endpoint; it authenticates there as at the token endpoint), with PKCE
// S256 and scope openid (an ES256 ID token; -token-openid=false: scope
// profile, no ID token).
//
// The codes are minted before the measured window, untimed, through
// fedas's native endpoint (initial request → password challenge with a
// bcrypt.MinCost hash → code): process CPU cannot be split per request, so
// none is minted while the window runs. That bounds -n (tokenMaxFlows) and
// needs codes that outlive the minting: the scenario configures the
// longest code lifetime RFC 6749 §4.1.2 allows fedas (10 minutes).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/sdk"
)

const (
	tokenClientID = "bench-native"
	// tokenMaxFlows caps -n for the token scenario: every code is minted
	// before the window and must still be valid when it is redeemed.
	tokenMaxFlows = 50_000
	// codeLifetime is the token scenario's code lifetime at fedas and at
	// every peer.
	codeLifetime = 10 * time.Minute
	// mintConcurrency bounds the minting goroutines: fedas's password
	// gate runs half the CPUs' worth of bcrypt checks at once and sheds
	// the rest after a second's wait, so more would only queue.
	mintConcurrency = 8
)

var errTokenFlows = fmt.Errorf("-scenario token: -n must be at most %d (every code is minted before the window)", tokenMaxFlows)

// mintedCode is one authorization code ready to redeem: its PKCE verifier
// and, when the code came through an authorization endpoint, the
// redirect_uri the token request repeats (RFC 6749 §4.1.3).
type mintedCode struct {
	code, verifier, redirectURI string
}

// tokenEnv is the token scenario's state.
type tokenEnv struct {
	target tokenTarget
	minted int
	mint   time.Duration
}

// tokenStats is the token scenario's report.
type tokenStats struct {
	Client      string  `json:"client"`
	Scope       string  `json:"scope"`
	IDToken     bool    `json:"id_token"`
	CodesMinted int     `json:"codes_minted"`
	MintS       float64 `json:"mint_s"`
	Note        string  `json:"note"`
}

// tokenScope is the scenario's scope: openid (an ID token) or profile.
func tokenScope(openid bool) string {
	if openid {
		return "openid"
	}
	return "profile"
}

// codesNeeded is how many codes one target needs: the measured flows and
// the 1 + c warm-up flows.
func codesNeeded(o options) int { return o.maxFlows + 1 + o.concurrency }

// startToken starts fedas with the users and the confidential first-party
// client.
func (e *env) startToken(ctx context.Context, users []config.User) error {
	var err error
	if e.creds, err = newClientCreds(e.o.auth, tokenClientID); err != nil {
		return err
	}
	e.as1, err = e.start(ctx, "as1", func(c *config.Config) {
		c.Users = users
		c.Lifetimes.AuthorizationCode = codeLifetime
		c.Clients = append(c.Clients, e.creds.fedasClient(config.Client{Name: "fedasbench confidential first-party client",
			FirstParty: true, Scopes: []string{"openid", "profile", "email"}, GrantTypes: []string{"authorization_code"}}))
	}, nil)
	return err
}

// mintFedasCodes signs in codesNeeded times through the native endpoint.
func (e *env) mintFedasCodes(ctx context.Context) error {
	n := codesNeeded(e.o)
	scope := tokenScope(e.o.tokenOpenID)
	e.tok = &tokenEnv{target: tokenTarget{issuer: e.meta.Issuer, endpoint: e.meta.TokenEndpoint,
		codes: make(chan mintedCode, n), openid: e.o.tokenOpenID}}
	t0 := time.Now()
	err := mintParallel(ctx, n, func(ctx context.Context, i int) (mintedCode, error) {
		return e.mintNative(ctx, e.users[i%len(e.users)], scope)
	}, e.tok.target.codes)
	e.tok.minted, e.tok.mint = n, time.Since(t0)
	if err != nil {
		return fmt.Errorf("minting codes: %w", err)
	}
	return nil
}

// mintParallel calls mint n times from at most mintConcurrency goroutines
// and queues every code; the first error stops it.
func mintParallel(ctx context.Context, n int, mint func(context.Context, int) (mintedCode, error), out chan<- mintedCode) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range min(n, mintConcurrency) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				mctx, c := context.WithTimeout(ctx, flowTimeout)
				mc, err := mint(mctx, i)
				c()
				if err != nil {
					cancel(err)
					return
				}
				out <- mc
			}
		}()
	}
	wg.Wait()
	return context.Cause(ctx)
}

// mintNative is one native sign-in of user to a code.
func (e *env) mintNative(ctx context.Context, user, scope string) (mintedCode, error) {
	pk := sdk.NewPKCE()
	form := url.Values{"client_id": {tokenClientID}, "response_type": {"code"}, "scope": {scope},
		"code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}
	for range 16 {
		status, body, err := e.creds.postForm(ctx, e.hc, e.meta.NativeEndpoint(), e.meta.Issuer, form)
		if err != nil {
			return mintedCode{}, err
		}
		var r sdk.Response
		if err := json.Unmarshal(body, &r); err != nil {
			return mintedCode{}, fmt.Errorf("native endpoint: HTTP %d, not JSON", status)
		}
		r.Status = status
		switch {
		case r.Error == "temporarily_unavailable":
			// The password gate was full (503, the session unchanged):
			// post the same answer again.
			select {
			case <-ctx.Done():
				return mintedCode{}, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		case r.AuthorizationCode != "":
			return mintedCode{code: r.AuthorizationCode, verifier: pk.Verifier}, nil
		case r.Error == "insufficient_authorization" && r.Challenge != nil && r.Challenge.Type == "password" && r.AuthSession != "":
			form = url.Values{"auth_session": {r.AuthSession}, "password": {benchPassword}, "client_id": {tokenClientID}}
			if _, ok := r.Challenge.Inputs["username"]; ok {
				form.Set("username", user)
			}
		default:
			return mintedCode{}, &sdk.Err{Response: r}
		}
	}
	return mintedCode{}, errors.New("native endpoint: no code after 16 steps")
}

// token is one measured flow: one code redeemed at fedas.
func (w *worker) token(ctx context.Context) error {
	if err := w.e.tok.target.redeem(ctx, w.e.hc, w.e.creds); err != nil {
		return w.fail("as1 token", err)
	}
	return nil
}

// tokenTarget is a token endpoint with its queue of minted codes: fedas's
// or a peer's.
type tokenTarget struct {
	issuer, endpoint string
	codes            chan mintedCode
	openid           bool
}

var errNoCode = errors.New("no minted code left")

// redeem sends one authorization_code grant and checks the answer: 200,
// an access token and an ID token exactly when openid was asked for.
func (t *tokenTarget) redeem(ctx context.Context, hc *http.Client, creds *clientCreds) error {
	var mc mintedCode
	select {
	case mc = <-t.codes:
	default:
		return errNoCode
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {mc.code}, "code_verifier": {mc.verifier}}
	if mc.redirectURI != "" {
		form.Set("redirect_uri", mc.redirectURI)
	}
	status, body, err := creds.postForm(ctx, hc, t.endpoint, t.issuer, form)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		var e sdk.Response
		_ = json.Unmarshal(body, &e)
		e.Status = status
		return &sdk.Err{Response: e}
	}
	var tok sdk.Token
	if err := json.Unmarshal(body, &tok); err != nil {
		return fmt.Errorf("token response: %w", err)
	}
	switch {
	case tok.AccessToken == "" || !strings.EqualFold(tok.TokenType, "bearer"):
		return errors.New("token response without a Bearer access_token")
	case t.openid != (tok.IDToken != ""):
		return fmt.Errorf("token response: id_token present = %t, want %t", tok.IDToken != "", t.openid)
	}
	return nil
}

// authReport fills the report's client and token parts.
func (e *env) authReport(res *result) {
	res.Auth = e.o.auth
	res.UsersNote = "none: this scenario checks no password"
	if e.tok == nil {
		return
	}
	res.Users = len(e.users)
	res.UsersNote = fmt.Sprintf("%d generated users with bcrypt cost %d, signed in untimed before the window to mint the codes", res.Users, e.o.bcryptCost)
	res.Token = &tokenStats{Client: tokenClientID + " (confidential, first-party, " + e.o.auth + ")", Scope: tokenScope(e.o.tokenOpenID),
		IDToken: e.o.tokenOpenID, CodesMinted: e.tok.minted, MintS: e.tok.mint.Seconds(),
		Note: "one authorization_code grant with PKCE S256 per flow; codes minted through the native endpoint before the window (untimed, outside the CPU figures)"}
}

func (t *tokenStats) writeText(w io.Writer) {
	fmt.Fprintf(w, "token       client %s, scope %q (ID token %t); %d codes minted in %.1f s before the window\n",
		t.Client, t.Scope, t.IDToken, t.CodesMinted, t.MintS)
}
