package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/pquerna/otp/totp"
	"go.uber.org/zap"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/internal/offsetclock"
	"github.com/fedas/fedas/reach/wake"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/storage/memory"
	"github.com/fedas/fedas/uq"
)

// The demo deployment's reach parties (docs/reach.md): our bank app on
// the user's phone, and a back office that asks questions with a
// client-credentials token (User Questioning -10 §4).
const (
	demoBankApp          = "https://bank.example/app"
	demoBackOffice       = "bank-backoffice"
	demoBackOfficeSecret = "bank-backoffice-secret"
	demoCallback         = "https://app.example/cb"
)

// demoReach is `fedas demo reach` (issue 12, docs/reach.md): two fedas
// instances of one deployment on loopback — one memory store, one wake
// hub, one signing key and HMAC secret — the initiating device (a TV
// app) and the back office talking to the first, our bank app on the
// user's phone to the second. It prints, with every request and answer
// in short form (tokens truncated):
//
//  1. a cross-device sign-in with number matching (RFC 10027 §6.1.3): a
//     wrong pick, then the right one after local user verification;
//  2. a User Questioning question answered on the phone, the User
//     Statement Token decoded and verified against the JWKS;
//  3. interaction_unavailable (no live device: 424 with a deep link) and
//     the sign-in completed by scanning the QR code in the app.
//
// It runs on the demo's own clock (polling intervals pass without
// waiting) and needs no network beyond loopback.
func demoReach(out io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()
	clock := &offsetclock.Clock{}
	tr := &transcript{out: out}

	a, b, stop, err := startReachDeployment(clock)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, stop)
	tr.name = map[string]string{hostOf(a): "fedas-1", hostOf(b): "fedas-2"}
	tr.say("fedas-1  %s   (the TV and the bank's back office talk to this instance)\n"+
		"fedas-2  %s   (the bank app on the user's phone talks to this one)\n"+
		"one deployment: one memory store, one wake hub, one signing key; reach enabled\n\n", a, b)

	tv, err := newDemoTV(ctx, tr, a)
	if err != nil {
		return err
	}
	alice, err := newDemoPhone(ctx, tr, b, "alice", "wonderland", "", clock.Now)
	if err != nil {
		return err
	}

	if err := sceneCrossDevice(ctx, tr, tv, alice, clock); err != nil {
		return fmt.Errorf("scene 1: %w", err)
	}
	if err := sceneQuestion(ctx, tr, a, alice, clock); err != nil {
		return fmt.Errorf("scene 2: %w", err)
	}
	if err := sceneUnavailable(ctx, tr, tv, b, clock); err != nil {
		return fmt.Errorf("scene 3: %w", err)
	}
	return nil
}

// startReachDeployment starts the two instances on one memory store and
// one in-process wake hub (as instances on one Redis share its channel).
func startReachDeployment(clock *offsetclock.Clock) (string, string, func(), error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", nil, err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return "", "", nil, err
	}
	st := memory.NewWithClock(clock.Now)
	hub := wake.NewMemory(wake.Options{})
	var stops []func()
	stop := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
		_ = hub.Close()
		_ = st.Close()
	}
	var urls []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			stop()
			return "", "", nil, err
		}
		cfg := config.Default()
		cfg.Issuer, cfg.Listen = "http://"+ln.Addr().String(), ln.Addr().String()
		demoReachConfig(cfg)
		if err := cfg.Validate(); err != nil {
			ln.Close()
			stop()
			return "", "", nil, err
		}
		srv, err := server.New(server.Options{Config: cfg, Store: st, Logger: zap.NewNop(), Now: clock.Now, HMACSecret: secret, SigningKey: key,
			Reach: server.ReachOptions{Hub: hub}})
		if err != nil {
			ln.Close()
			stop()
			return "", "", nil, err
		}
		go func() { _ = srv.Serve(ln) }()
		stops = append(stops, func() {
			c, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = srv.Shutdown(c)
		})
		urls = append(urls, cfg.Issuer)
	}
	return urls[0], urls[1], stop, nil
}

// demoReachConfig turns reach on over the embedded demo config: our bank
// app (client bank-app, scope reach:device) that demo-app's sign-ins go
// to, and the back office, a confidential client of the question scope
// with the client_credentials grant.
func demoReachConfig(c *config.Config) {
	c.Reach.Enabled = true
	c.Scopes = append(c.Scopes, config.ScopeReachDevice, config.ScopeQuestion)
	c.Clients = append(c.Clients,
		config.Client{ID: "bank-app", Name: "Bank app", FirstParty: true, TokenEndpointAuthMethod: "none",
			Scopes: []string{"openid", config.ScopeReachDevice}, GrantTypes: []string{"authorization_code", "refresh_token"}},
		config.Client{ID: demoBackOffice, Name: "Bank back office", TokenEndpointAuthMethod: "client_secret_basic",
			SecretSHA256: config.SecretDigest(demoBackOfficeSecret), Scopes: []string{config.ScopeQuestion}, GrantTypes: []string{"client_credentials"}})
	c.Apps = append(c.Apps, config.App{ID: "bank", ClientID: "bank-app", DeepLink: demoBankApp, Clients: []string{"demo-app"}})
}

// demoTV is the initiating device: demo-app on a TV, with its own DPoP
// key and no bank app installed.
type demoTV struct {
	client *sdk.Client
	tap    *tap
	// sessions are the auth_session values the TV was answered, in order.
	sessions []string
}

func newDemoTV(ctx context.Context, tr *transcript, issuer string) (*demoTV, error) {
	t := tr.tap("TV")
	t.userAgent = "DemoApp/2.1 (Android TV 14; Living room TV)"
	hc := sdk.NewHTTPClient()
	hc.Transport = t
	meta, err := sdk.Discover(ctx, hc, issuer)
	if err != nil {
		return nil, err
	}
	key, err := newDPoPKey()
	if err != nil {
		return nil, err
	}
	c := &sdk.Client{HTTP: hc, ClientID: "demo-app", Meta: meta, DPoP: key,
		OpenApp: func(context.Context, string) (url.Values, error) {
			tr.say("   (the TV has no bank app to open the deep link: it reaches the user's phone instead)\n\n")
			return nil, sdk.ErrNoApp
		}}
	tv := &demoTV{client: c, tap: t}
	t.onJSON = func(m map[string]any) {
		if v, ok := m["auth_session"].(string); ok {
			tv.sessions = append(tv.sessions, v)
		}
	}
	t.on = true
	return tv, nil
}

// signIn runs the TV's native sign-in for user with hooks and redeems the
// code.
func (tv *demoTV) signIn(ctx context.Context, user string, hooks *sdk.ReachHooks) (sdk.Token, error) {
	tv.client.Reach, tv.sessions = hooks, nil
	code, pk, err := tv.client.Authorize(ctx, url.Values{"scope": {"openid profile"}, "native_callback_uri": {demoCallback}, "login_hint": {user}}, nil)
	if err != nil {
		return sdk.Token{}, err
	}
	return tv.client.Exchange(ctx, code, pk)
}

// demoPhone is our bank app on a phone, signed in to fedas-2 with a
// DPoP-bound token of its user.
type demoPhone struct {
	app    *sdk.ReachApp
	tap    *tap
	cursor string
}

// newDemoPhone signs user in to the bank app (a password, and a TOTP
// code when totpSecret is set, at now: the servers' clock) with a fresh
// DPoP key, and registers the phone as a device.
func newDemoPhone(ctx context.Context, tr *transcript, issuer, user, password, totpSecret string, now func() time.Time) (*demoPhone, error) {
	t := tr.tap(user + "'s phone")
	hc := sdk.NewHTTPClient()
	hc.Timeout = time.Minute // longer than the longest inbox hold
	hc.Transport = t
	meta, err := sdk.Discover(ctx, hc, issuer)
	if err != nil {
		return nil, err
	}
	key, err := newDPoPKey()
	if err != nil {
		return nil, err
	}
	tr.say("──── %s: the user signs in to the bank app (native endpoint, DPoP key of the phone, scope reach:device)\n\n", user)
	t.on = true
	c := &sdk.Client{HTTP: hc, ClientID: "bank-app", Meta: meta, DPoP: key}
	ui := func(_ context.Context, r sdk.Response) (url.Values, error) {
		switch {
		case r.Challenge != nil && r.Challenge.Type == "password":
			return url.Values{"username": {user}, "password": {password}}, nil
		case r.Challenge != nil && r.Challenge.Type == "otp" && totpSecret != "":
			code, err := totp.GenerateCode(totpSecret, now())
			return url.Values{"otp": {code}}, err
		}
		return nil, fmt.Errorf("unexpected %s", r.Error)
	}
	code, pk, err := c.Authorize(ctx, url.Values{"scope": {"openid " + config.ScopeReachDevice}}, ui)
	if err != nil {
		return nil, err
	}
	tok, err := c.Exchange(ctx, code, pk)
	if err != nil {
		return nil, err
	}
	p := &demoPhone{app: &sdk.ReachApp{HTTP: hc, Meta: meta, DPoP: key, AccessToken: tok.AccessToken}, tap: t}
	d, err := p.app.Register(ctx, sdk.DeviceRegistration{Name: displayName(user) + "'s phone", Platform: "ios",
		Capabilities: []string{"app_auth", "question"}, Channels: []sdk.ReachChannel{{Type: "inbox"}}})
	if err != nil {
		return nil, err
	}
	tr.say("   the bank app registered the phone as device %s (its DPoP key is the device's identity)\n\n", short(d.ID))
	return p, nil
}

// online reads the inbox once (wait=0): the device is present from now
// on, and the cursor is the newest entry.
func (p *demoPhone) online(ctx context.Context) error {
	_, next, err := p.app.Inbox(ctx, "", 0)
	if err == nil && next != "" {
		p.cursor = next
	}
	return err
}

// hold starts the app's inbox long poll; the answer is printed when
// the returned function is called (so that the transcript keeps its
// order while the poll waits in the background).
func (p *demoPhone) hold(ctx context.Context, tr *transcript) func() ([]sdk.InboxEntry, error) {
	type polled struct {
		es  []sdk.InboxEntry
		err error
	}
	done := make(chan polled, 1)
	p.tap.hold()
	go func() {
		es, next, err := p.app.Inbox(ctx, p.cursor, 25*time.Second)
		if err == nil && next != "" {
			p.cursor = next
		}
		done <- polled{es, err}
	}()
	tr.say("   (the bank app holds a long poll on its inbox: GET /reach/inbox?wait=25 at fedas-2)\n\n")
	return func() ([]sdk.InboxEntry, error) {
		r := <-done
		p.tap.release()
		return r.es, r.err
	}
}

// sceneCrossDevice is the cross-device redirect_to_app with number
// matching (docs/reach.md "Cross-device redirect_to_app").
func sceneCrossDevice(ctx context.Context, tr *transcript, tv *demoTV, phone *demoPhone, clock *offsetclock.Clock) error {
	tr.say("════ 1. Cross-device sign-in with number matching\n\n" +
		"alice starts the demo app on her TV. The TV has no bank app, so it asks fedas to reach\n" +
		"alice's phone; the TV shows a number, the phone offers three, alice picks the TV's.\n\n")
	if err := phone.online(ctx); err != nil {
		return err
	}
	woken := phone.hold(ctx, tr)
	var taskID string
	sleeps := 0
	var bindingCode string
	answered := false
	hooks := &sdk.ReachHooks{
		ShowBindingCode: func(ctx context.Context, code string) error {
			bindingCode = code
			tr.say("   the TV shows: \"Open the bank app on your phone and pick %s\"\n\n", code)
			es, err := woken()
			if err != nil {
				return err
			}
			if len(es) != 1 {
				return fmt.Errorf("the phone's inbox has %d entries, not 1", len(es))
			}
			taskID = es[0].Task
			tr.say("   the long poll returned at once: the wake-up names the task, not its content\n\n")
			t, err := phone.app.Task(ctx, taskID)
			if err != nil {
				return err
			}
			tr.say("   the phone shows: \"%s (%s) wants to sign you in\"\n", t.ClientName, t.ClientID)
			if t.Initiator != nil {
				loc := t.Initiator.Location
				if loc == "" {
					loc = "unknown (no IP geolocation in this deployment)"
				}
				tr.say("                    from %s, %q, location %s\n", t.Initiator.IP, t.Initiator.UserAgent, loc)
			}
			tr.say("                    \"Which number does the other screen show?\" %v\n\n", t.BindingChoices)
			return phone.app.Ack(ctx, taskID)
		},
		Sleep: func(ctx context.Context, d time.Duration) error {
			sleeps++
			if sleeps == 2 {
				right, err := strconv.Atoi(bindingCode)
				if err != nil {
					return err
				}
				t, err := phone.app.Task(ctx, taskID)
				if err != nil {
					return err
				}
				wrong := 0
				for _, c := range t.BindingChoices {
					if c != right {
						wrong = c
						break
					}
				}
				tr.say("   alice verifies herself on the phone (Face ID: amr hwk, face) and taps %d by mistake\n\n", wrong)
				_, err = phone.app.Respond(ctx, taskID, sdk.TaskAnswer{Decision: "approve", BindingChoice: &wrong, AMR: []string{"hwk", "face"}})
				var bm *sdk.BindingMismatch
				if !errors.As(err, &bm) {
					return fmt.Errorf("a wrong number was not a binding_mismatch: %v", err)
				}
				tr.say("   the phone: \"That is not the number on the other screen\" (%d attempts left); alice taps %d\n\n", bm.AttemptsLeft, right)
				st, err := phone.app.Respond(ctx, taskID, sdk.TaskAnswer{Decision: "approve", BindingChoice: &right, AMR: []string{"hwk", "face"}})
				if err != nil {
					return err
				}
				answered = st == "approved"
			}
			tr.say("   (the TV waits %s before polling)\n\n", d)
			clock.Advance(d)
			return nil
		},
	}
	tok, err := tv.signIn(ctx, "alice", hooks)
	if err != nil {
		return err
	}
	if !answered {
		return errors.New("the sign-in completed without the phone's approval")
	}
	if len(tv.sessions) < 2 || tv.sessions[0] == tv.sessions[len(tv.sessions)-1] {
		return errors.New("the completed poll did not rotate the auth_session")
	}
	first, rotated := tv.sessions[0], tv.sessions[len(tv.sessions)-1]
	tr.say("   (the completed poll answered a rotated auth_session, %s ≠ the first %s, which the TV\n"+
		"   posted to the native endpoint for its code; the first value is spent:)\n\n", short(rotated), short(first))
	r, err := tv.client.Post(ctx, tv.client.Meta.NativeEndpoint(), url.Values{"auth_session": {first}})
	if err != nil {
		return err
	}
	if r.Error != "invalid_session" {
		return fmt.Errorf("the first auth_session still answers %d %s", r.Status, r.Error)
	}
	tr.say("Signed in on the TV across devices: %s, token_type %s, access token %s (%d s)\n\n", idSummaryShort(tok), tok.TokenType, short(tok.AccessToken), tok.ExpiresIn)
	return nil
}

// sceneQuestion is the User Questioning API (-10 §4) answered through
// the phone: ask, poll (304), answer, poll (200 with the UST), verify.
func sceneQuestion(ctx context.Context, tr *transcript, issuer string, phone *demoPhone, clock *offsetclock.Clock) error {
	tr.say("════ 2. A question through the User Questioning API\n\n" +
		"The bank's back office (a confidential client, client_credentials grant, scope question)\n" +
		"asks alice to confirm a payee; she answers on her phone; the back office gets a signed\n" +
		"User Statement Token.\n\n")
	t := tr.tap("back office")
	hc := sdk.NewHTTPClient()
	hc.Transport = t
	meta, err := sdk.DiscoverUQ(ctx, hc, issuer)
	if err != nil {
		return err
	}
	t.on = true
	tok, err := clientCredentials(ctx, hc, issuer+server.PathToken, demoBackOffice, demoBackOfficeSecret, config.ScopeQuestion)
	if err != nil {
		return err
	}
	c := &sdk.UQClient{HTTP: hc, Meta: meta, AccessToken: tok}
	woken := phone.hold(ctx, tr)
	q := uq.Request{UserID: "alice@wonderland.example", UserIDType: uq.UserIDEmail,
		QuestionToDisplay: "Add \"Coffee Corner\" (IBAN …4711) as a new payee?", StatementsToDisplay: []string{"Yes, add it", "No, this was not me"},
		WishedACR: "phr", WishedAMR: []string{"face", "hwk"}}
	qid, err := c.Ask(ctx, q)
	if err != nil {
		return err
	}
	if _, err := c.Poll(ctx, qid, 0); !errors.Is(err, sdk.ErrPending) {
		return fmt.Errorf("the first poll was not pending: %v", err)
	}
	tr.say("   304: no answer yet\n\n")
	es, err := woken()
	if err != nil {
		return err
	}
	if len(es) != 1 || es[0].Kind != "question" {
		return fmt.Errorf("the phone's inbox has %v, not one question", es)
	}
	task, err := phone.app.Task(ctx, es[0].Task)
	if err != nil {
		return err
	}
	tr.say("   the phone shows: %s asks \"%s\" %q (wished acr %s)\n\n", task.ClientName, task.Question, task.Statements, task.WishedACR)
	if err := phone.app.Ack(ctx, task.ID); err != nil {
		return err
	}
	tr.say("   alice verifies herself (Face ID) and taps %q\n\n", q.StatementsToDisplay[0])
	if _, err := phone.app.Respond(ctx, task.ID, sdk.TaskAnswer{Decision: "answer", Statement: q.StatementsToDisplay[0], AMR: []string{"hwk", "face"}}); err != nil {
		return err
	}
	tr.say("   (the back office waits 1s before polling again: faster is high_rate_question)\n\n")
	clock.Advance(time.Second)
	ust, err := c.Poll(ctx, qid, 0)
	if err != nil {
		return err
	}
	hdr, claims, err := decodeJWT(ust)
	if err != nil {
		return err
	}
	tr.say("   the User Statement Token %s decodes to\n   header %s\n   claims %s\n\n", short(ust), hdr, claims)
	got, err := c.VerifyUST(ctx, ust, uq.Expect{ClientID: demoBackOffice, QuestionID: qid, Question: q.QuestionToDisplay,
		Statements: q.StatementsToDisplay, UserID: q.UserID, UserIDType: q.UserIDType})
	if err != nil {
		return fmt.Errorf("the UST does not verify: %w", err)
	}
	tr.say("UST verified: ES256 signature against %s, iss %s, aud %v, question and statements as asked;\n"+
		"alice (sub %s) answered %q with amr %v (acr %s)\n\n", meta.JWKSURI, got.Issuer, got.Audience, got.Subject, got.Statement, got.UsedAMR, got.UsedACR)
	return nil
}

// sceneUnavailable is the fallback when no device of the user is live
// (docs/decisions.md Q23): 424 interaction_unavailable with a deep link
// shown as a QR code, scanned with the app.
func sceneUnavailable(ctx context.Context, tr *transcript, tv *demoTV, issuer string, clock *offsetclock.Clock) error {
	tr.say("════ 3. No live device: interaction_unavailable and the QR code\n\n" +
		"bob's phone has the bank app and a registered device, but the app is not running (it holds\n" +
		"no inbox poll), so nothing can reach it. fedas answers 424 interaction_unavailable with a\n" +
		"deep link; the TV shows it as a QR code and bob scans it with the bank app.\n\n")
	bob, err := newDemoPhone(ctx, tr, issuer, "bob", "builder", "JBSWY3DPEHPK3PXP", clock.Now)
	if err != nil {
		return err
	}
	tr.say("   (bob closes the app: the phone is not present)\n\n")
	var scanned string
	hooks := &sdk.ReachHooks{
		ShowBindingCode: func(context.Context, string) error {
			return errors.New("a device of bob was reached: it should not have been live")
		},
		ShowQR: func(ctx context.Context, link, code string) error {
			tr.say("   the TV shows a QR code for %s\n   and: \"Scan with the bank app and pick %s\"\n\n", redactLink(link), code)
			u, err := url.Parse(link)
			if err != nil {
				return err
			}
			tr.say("   bob opens the bank app and scans the QR code: the app sends the deep link's reach_ref\n\n")
			t, err := bob.app.Scan(ctx, u.Query().Get("reach_ref"))
			if err != nil {
				return err
			}
			tr.say("   the phone shows: \"%s wants to sign you in\", choices %v\n\n", t.ClientName, t.BindingChoices)
			pick, err := strconv.Atoi(code)
			if err != nil {
				return err
			}
			tr.say("   bob verifies himself (fingerprint: amr hwk, fpt) and taps %d\n\n", pick)
			st, err := bob.app.Respond(ctx, t.ID, sdk.TaskAnswer{Decision: "approve", BindingChoice: &pick, AMR: []string{"hwk", "fpt"}})
			if err != nil {
				return err
			}
			scanned = st
			return nil
		},
		Sleep: func(_ context.Context, d time.Duration) error {
			tr.say("   (the TV waits %s before polling)\n\n", d)
			clock.Advance(d)
			return nil
		},
	}
	tok, err := tv.signIn(ctx, "bob", hooks)
	if err != nil {
		return err
	}
	if scanned != "approved" {
		return errors.New("the sign-in completed without the scan")
	}
	tr.say("QR sign-in completed on the TV: %s, token_type %s, access token %s\n", idSummaryShort(tok), tok.TokenType, short(tok.AccessToken))
	return nil
}

// clientCredentials gets a client-credentials access token (RFC 6749
// §4.4) with HTTP Basic client authentication (§2.3.1).
func clientCredentials(ctx context.Context, hc *http.Client, endpoint, id, secret, scope string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.AccessToken == "" {
		return "", fmt.Errorf("client_credentials: HTTP %d", resp.StatusCode)
	}
	return out.AccessToken, nil
}

func newDPoPKey() (*dpop.Key, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return dpop.NewKey(k, jose.ES256)
}

func displayName(user string) string {
	if user == "" {
		return user
	}
	return strings.ToUpper(user[:1]) + user[1:]
}

// idSummaryShort names the ID token's user and how they authenticated.
func idSummaryShort(tok sdk.Token) string {
	_, claims, err := decodeJWT(tok.IDToken)
	if err != nil {
		return "no ID token"
	}
	var c map[string]any
	_ = json.Unmarshal([]byte(claims), &c)
	return fmt.Sprintf("sub %v (acr %v, amr %v)", c["sub"], c["acr"], c["amr"])
}

// decodeJWT returns a compact JWS's header and payload as compact JSON
// (not verified here).
func decodeJWT(tok string) (string, string, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", "", errors.New("not a compact JWS")
	}
	var out [2]string
	for i := range 2 {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return "", "", err
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, b); err != nil {
			return "", "", err
		}
		out[i] = buf.String()
	}
	return out[0], out[1], nil
}

func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return p.Host
}

// transcript is the demo's output: narration and exchanges in order.
type transcript struct {
	mu   sync.Mutex
	out  io.Writer
	name map[string]string // host → instance name
}

func (t *transcript) say(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.out, format, args...)
}

// tap makes a party's transport that prints its exchanges.
func (t *transcript) tap(party string) *tap {
	return &tap{party: party, tr: t, base: http.DefaultTransport}
}

// tap is a RoundTripper that prints each exchange in short form: the
// party, method, instance and path; the form or JSON sent; the status,
// Location and Retry-After; the JSON answered — secrets truncated. While
// held it keeps the lines for release (a long poll in the background).
type tap struct {
	party string
	tr    *transcript
	base  http.RoundTripper
	on    bool
	// onJSON, when set, sees every JSON object answered (before
	// truncation), on the caller's goroutine.
	onJSON func(map[string]any)
	// userAgent, when set, is the party's User-Agent (the phone shows
	// the initiating device's, RFC 10027 §6.1.1).
	userAgent string

	mu   sync.Mutex
	held bool
	buf  []string
}

func (t *tap) hold() {
	t.mu.Lock()
	t.held = true
	t.mu.Unlock()
}

func (t *tap) release() {
	t.mu.Lock()
	lines := t.buf
	t.buf, t.held = nil, false
	t.mu.Unlock()
	for _, l := range lines {
		t.tr.say("%s", l)
	}
}

func (t *tap) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.userAgent != "" {
		req = req.Clone(req.Context())
		req.Header.Set("User-Agent", t.userAgent)
	}
	var sent []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		sent = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil || !t.on {
		return resp, err
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(got))
	if t.onJSON != nil {
		var m map[string]any
		if json.Unmarshal(got, &m) == nil {
			t.onJSON(m)
		}
	}
	line := t.format(req, sent, resp, got)
	t.mu.Lock()
	if t.held {
		t.buf = append(t.buf, line)
		t.mu.Unlock()
		return resp, nil
	}
	t.mu.Unlock()
	t.tr.say("%s", line)
	return resp, nil
}

func (t *tap) format(req *http.Request, sent []byte, resp *http.Response, got []byte) string {
	var b strings.Builder
	inst := t.tr.name[req.URL.Host]
	if inst == "" {
		inst = req.URL.Host
	}
	path := req.URL.Path
	if req.URL.RawQuery != "" {
		path += "?" + plainQuery(redactQuery(req.URL.Query()))
	}
	var auth []string
	if a := req.Header.Get("Authorization"); a != "" {
		scheme, _, _ := strings.Cut(a, " ")
		auth = append(auth, "Authorization: "+scheme+" …")
	}
	if req.Header.Get("DPoP") != "" {
		auth = append(auth, "DPoP proof")
	}
	if w := req.Header.Get("Client-Timeout"); w != "" {
		auth = append(auth, "Client-Timeout: "+w)
	}
	fmt.Fprintf(&b, "── %s → %s %s %s", t.party, inst, req.Method, path)
	if len(auth) > 0 {
		fmt.Fprintf(&b, "   [%s]", strings.Join(auth, ", "))
	}
	b.WriteString("\n")
	if len(sent) > 0 {
		fmt.Fprintf(&b, "   %s\n", shortBody(req.Header.Get("Content-Type"), sent))
	}
	fmt.Fprintf(&b, "   → %d", resp.StatusCode)
	if loc := resp.Header.Get("Location"); loc != "" {
		fmt.Fprintf(&b, "  Location: %s", strings.TrimPrefix(loc, "http://"+req.URL.Host))
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		fmt.Fprintf(&b, "  Retry-After: %s", ra)
	}
	if len(got) > 0 {
		fmt.Fprintf(&b, "  %s", shortBody(resp.Header.Get("Content-Type"), got))
	}
	b.WriteString("\n\n")
	return b.String()
}

// secretMembers are shown truncated: tokens, codes, sessions, single-use
// references and credentials (nothing secret is printed whole).
var secretMembers = map[string]bool{
	"access_token": true, "refresh_token": true, "id_token": true, "auth_session": true, "authorization_code": true,
	"code": true, "code_verifier": true, "code_challenge": true, "user_statement_token": true, "request_uri": true,
	"reach_ref": true, "ref": true, "next": true, "after": true,
}

// hiddenMembers are never shown at all.
var hiddenMembers = map[string]bool{"password": true, "otp": true}

// short truncates a secret to its first 6 and last 4 characters (so
// that a rotated value is seen to differ), or to its first 4 when short.
func short(v string) string {
	switch {
	case len(v) > 20:
		return v[:6] + "…" + v[len(v)-4:]
	case len(v) > 8:
		return v[:4] + "…"
	}
	return v
}

// plainQuery renders q with sorted keys and unescaped values, for reading.
func plainQuery(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		for _, v := range q[k] {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, "&")
}

func redactQuery(q url.Values) url.Values {
	out := url.Values{}
	for k, vs := range q {
		for _, v := range vs {
			switch {
			case hiddenMembers[k]:
				v = "…"
			case secretMembers[k]:
				v = short(v)
			}
			out.Add(k, v)
		}
	}
	return out
}

// redactLink truncates a deep link's single-use parameters.
func redactLink(link string) string {
	u, err := url.Parse(link)
	if err != nil {
		return short(link)
	}
	q := redactQuery(u.Query())
	u.RawQuery = ""
	return u.String() + "?" + plainQuery(q)
}

// shortBody is a form or JSON body with its secrets truncated.
func shortBody(ctype string, body []byte) string {
	if strings.HasPrefix(ctype, "application/x-www-form-urlencoded") {
		q, err := url.ParseQuery(string(body))
		if err != nil {
			return "(form)"
		}
		return plainQuery(redactQuery(q))
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Sprintf("(%d bytes)", len(body))
	}
	v = redactJSON("", v)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "(json)"
	}
	return strings.TrimSpace(buf.String())
}

func redactJSON(key string, v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = redactJSON(k, e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = redactJSON(key, e)
		}
		return x
	case string:
		switch {
		case hiddenMembers[key]:
			return "…"
		case secretMembers[key]:
			return short(x)
		case key == "deep_link":
			return redactLink(x)
		}
	}
	return v
}
