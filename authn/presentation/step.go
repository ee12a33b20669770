// Package presentation is the credential-presentation step of local
// sign-in (docs/protocol.md "Digital credentials"): the client collects
// an OpenID4VP 1.0 presentation from the user's wallet on one of three
// paths, fixed when the step begins — the Digital Credentials API
// (OpenID4VP App. A), a same-device wallet hand-off that returns a
// response_code (OpenID4VP §13.3), or a cross-device QR code the client
// polls for — and the verifier (dc.Verifier, internal or external)
// checks it. Each path completes only its own way, so a code from a
// wallet on another device cannot complete a session (OpenID4VP §14.2).
package presentation

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/dc"
	"github.com/fedas/fedas/dc/dcql"
	"github.com/fedas/fedas/dc/oid4vp"
	"github.com/fedas/fedas/flow"
	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/rar"
	"github.com/fedas/fedas/storage"
)

// Name is the step's stage name.
const Name = "presentation"

// AMR is the method reference of a presentation: proof of possession of
// the credential's holder key (RFC 8176 §2 "pop").
const AMR = "pop"

// Options configure a Step.
type Options struct {
	Verifier dc.Verifier
	// Config is the digital_credentials section (rules, queries,
	// lifetimes, issuers' claim maps).
	Config config.DigitalCredentials
	// TransactionData maps a session's authorization_details (RFC 9396)
	// to OpenID4VP transaction_data strings for the query's credential
	// ids (OpenID4VP §5.1, §8.4); nil: authorization_details bring none.
	TransactionData func(clientID, authorizationDetails string, credentialIDs []string) ([]string, error)
	Logger          *zap.Logger
}

// Step is the presentation step (flow.Step).
type Step struct {
	o       Options
	queries map[string]*dcql.Query
	claims  map[string]map[string]string // issuer → credential claim → ID token claim
}

var (
	_ flow.Step           = (*Step)(nil)
	_ flow.CredentialFree = (*Step)(nil)
	_ flow.HintTaker      = (*Step)(nil)
	_ flow.Ender          = (*Step)(nil)
)

// New builds the step; every query must parse (config.Validate checked).
func New(o Options) (*Step, error) {
	if o.Verifier == nil {
		return nil, errors.New("presentation: no verifier")
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	st := &Step{o: o, queries: map[string]*dcql.Query{}, claims: map[string]map[string]string{}}
	for name, q := range o.Config.Queries {
		parsed, err := dcql.Parse([]byte(q))
		if err != nil {
			return nil, fmt.Errorf("presentation: query %s: %w", name, err)
		}
		st.queries[name] = parsed
	}
	for _, ti := range o.Config.TrustedIssuers {
		st.claims[ti.Issuer] = ti.Claims
	}
	return st, nil
}

// Name implements flow.Step.
func (*Step) Name() string { return Name }

// Applies implements flow.Step: the step is chosen by its rule (Required),
// not by the user.
func (*Step) Applies(*policy.User) bool { return true }

// CredentialFree implements flow.CredentialFree: a presentation collects
// no secret of ours, so federating clients may be served it
// (docs/decisions.md Q10).
func (*Step) CredentialFree() bool { return true }

// TakesHint implements flow.HintTaker: a rule's login_hint names this
// method, not a user.
func (s *Step) TakesHint(c *policy.Client, hint string) bool {
	if hint == "" {
		return false
	}
	rules := s.o.Config.Rules
	if c != nil && c.DC != nil {
		rules = append(append([]config.DCRule(nil), c.DC.Rules...), rules...)
	}
	for _, r := range rules {
		if r.LoginHint == hint {
			return true
		}
	}
	return false
}

// Required reports whether a rule asks a presentation of client c for
// the validated request req, and which rule: the one place that decides
// (the server's chain choice and the step's query both read it).
func (s *Step) Required(c *policy.Client, req map[string]string) (config.DCRule, bool) {
	if c == nil || c.DC == nil || !s.o.Config.Enabled {
		return config.DCRule{}, false
	}
	for _, r := range append(append([]config.DCRule(nil), c.DC.Rules...), s.o.Config.Rules...) {
		if len(r.Clients) > 0 && !contains(r.Clients, c.GetID()) {
			continue
		}
		if r.LoginHint != "" && req["login_hint"] != r.LoginHint {
			continue
		}
		if r.ACRValue != "" && !contains(strings.Fields(req["acr_values"]), r.ACRValue) {
			continue
		}
		if r.AuthorizationDetailsType != "" && !hasDetailType(req["authorization_details"], r.AuthorizationDetailsType) {
			continue
		}
		return r, true
	}
	return config.DCRule{}, false
}

func hasDetailType(raw, typ string) bool {
	if raw == "" {
		return false
	}
	var details []struct {
		Type string `json:"type"`
	}
	if json.Unmarshal([]byte(raw), &details) != nil {
		return false
	}
	for _, d := range details {
		if d.Type == typ {
			return true
		}
	}
	return false
}

// state is the step's own part of the session: kept small (an
// auth_session stays within a few hundred bytes on the URL paths).
type state struct {
	Tx      string  `json:"tx"`
	Flow    dc.Flow `json:"f"`
	Dialect string  `json:"d"`
	// Req is the presentation request the client was given (a wallet URL,
	// or the DC API / Interactive Authorization request text).
	Req string `json:"r"`
	// Exp is the transaction's expiry (Unix seconds).
	Exp int64 `json:"e"`
	// Restarts counts transactions replaced after expiry.
	Restarts int `json:"n,omitempty"`
	// Poll is when the client may poll next without slow_down (Unix ms);
	// Interval the current polling interval in seconds.
	Poll     int64 `json:"p,omitempty"`
	Interval int   `json:"i,omitempty"`
	// Expired marks a transaction begun because the last one expired.
	Expired bool   `json:"x,omitempty"`
	ACR     string `json:"a,omitempty"`
}

// Challenge implements flow.Step: it begins a verifier transaction when
// the step becomes current, and renders the challenge from its state
// afterwards.
func (s *Step) Challenge(ctx context.Context, sc flow.StepContext) (flow.ChallengeSpec, json.RawMessage, error) {
	var st state
	if len(sc.Data) > 0 {
		if err := json.Unmarshal(sc.Data, &st); err != nil {
			return flow.ChallengeSpec{}, nil, err
		}
		return s.render(sc, st), sc.Data, nil
	}
	st, err := s.begin(ctx, sc, 0)
	if err != nil {
		return flow.ChallengeSpec{}, nil, err
	}
	data, err := stored(st)
	if err != nil {
		return flow.ChallengeSpec{}, nil, err
	}
	return s.render(sc, st), data, nil
}

// stored is the state as the session keeps it. A DC API or Interactive
// Authorization request (a signed request object with its certificate
// chain, ~2.5 KB) is shown once, in the answer that begins it, and is not
// kept: the client posts the wallet's answer, never asks for the request
// again, and an auth_session stays near 1 KB on every path.
func stored(st state) (json.RawMessage, error) {
	if st.Flow == dc.FlowDCAPI || st.Flow == dc.FlowInteractive {
		st.Req = ""
	}
	return json.Marshal(st)
}

// begin validates the request's presentation parameters for the client
// and starts a transaction (OpenID4VP §5; docs/protocol.md "Digital credentials").
func (s *Step) begin(ctx context.Context, sc flow.StepContext, restarts int) (state, error) {
	snapClient := sc.Client
	if snapClient == nil || snapClient.DC == nil {
		return state{}, flow.Refuse(400, "invalid_request", "This client is not set up for digital credentials.")
	}
	cdc := snapClient.DC
	req := sc.Request
	d := dialectFor(cdc, req)
	rule, ok := s.Required(snapClient, req)
	if !ok {
		return state{}, flow.Refuse(400, "invalid_request", "No digital credential is asked of this request.")
	}
	q := s.queries[rule.Query]
	br := dc.BeginRequest{Query: q, TTL: s.o.Config.RequestTTL, Binding: sc.Binding}
	// A session the device bound to its key, or one a federating AS's PAR
	// bound (dpop_jkt), or the downstream role, where the device sends no
	// proof to us (the federating AS holds the binding).
	bound := sc.DPoPJKT != "" || req["dpop_jkt"] != "" || snapClient.Federating
	f, refusal := pathOf(d, cdc, req, bound)
	if refusal != nil {
		return state{}, refusal
	}
	br.Flow = f
	switch {
	case d.name == config.DialectPDI:
		br.Issuance = true
	case f == dc.FlowSameDevice:
		br.RedirectURITemplate = withParam(req["openid4vp_redirect_uri"], d.redirectParam, "{RESPONSE_CODE}")
	case f == dc.FlowDCAPI:
		br.Origins = append([]string(nil), cdc.DCAPIOrigins...)
	}
	if ad := req["authorization_details"]; ad != "" && s.o.TransactionData != nil {
		ids := make([]string, 0, len(q.Credentials))
		for _, c := range q.Credentials {
			ids = append(ids, c.ID)
		}
		td, err := s.o.TransactionData(sc.ClientID, ad, ids)
		if err != nil {
			return state{}, flow.Refuse(400, "invalid_authorization_details", "The authorization_details cannot be approved with a digital credential.")
		}
		br.TransactionData = td
	}
	if rule.AuthorizationDetailsType != "" && rule.AuthorizationDetailsType != rar.OpenIDCredential && len(br.TransactionData) == 0 {
		// The rule asks the wallet to approve what authorization_details
		// say: without transaction data the presentation would approve
		// nothing (OpenID4VP App. B.3.3). Never invent a generic type.
		// openid_credential is the exception: there the presentation is
		// the holder authentication the issuer asks before issuing
		// (presentation during issuance, OpenID4VCI 1.1 Interactive
		// Authorization), not an approval of the details, which the code
		// and the token response carry (RFC 9396 §7).
		return state{}, flow.Refuse(400, "invalid_authorization_details", "The authorization_details cannot be approved with a digital credential.")
	}
	nonce, err := oid4vp.NewNonce()
	if err != nil {
		return state{}, err
	}
	br.Nonce = nonce
	tx, err := s.o.Verifier.Begin(ctx, br)
	if errors.Is(err, dc.ErrWrongFlow) {
		// The verifier does not serve this path (the external one: no DC
		// API, Interactive Authorization or issuance): the request's
		// choice, not an outage.
		return state{}, flow.Refuse(400, "invalid_request", "This presentation path is not offered here; use same_device or cross_device.")
	}
	if err != nil {
		return state{}, s.dependency(err)
	}
	st := state{Tx: tx.ID, Flow: f, Dialect: d.name, Exp: tx.ExpiresAt.Unix(), Restarts: restarts, Expired: restarts > 0, ACR: rule.ACR}
	switch f {
	case dc.FlowDCAPI, dc.FlowInteractive:
		st.Req = tx.Request
	default:
		st.Req = tx.RequestURI
	}
	if f == dc.FlowCrossDevice {
		st.Interval = s.interval()
		st.Poll = sc.Now.Add(time.Duration(st.Interval) * time.Second).UnixMilli()
	}
	return st, nil
}

func (s *Step) interval() int { return int(s.o.Config.PollInterval / time.Second) }

// pathOf decides the path from the request (the wallet-presentation
// draft's dc_api, openid4vp_flow_type and openid4vp_redirect_uri), once:
// it never changes for the transaction.
func pathOf(d dialect, cdc *config.ClientDC, req map[string]string, dpopBound bool) (dc.Flow, error) {
	bad := func(desc string) (dc.Flow, error) { return "", flow.Refuse(400, "invalid_request", desc) }
	switch d.name {
	case config.DialectIA:
		if !contains(splitList(req["interaction_types_supported"]), InteractionType) {
			return "", flow.Refuse(400, "missing_interaction_type", "This request needs the interaction type "+InteractionType+".")
		}
		return dc.FlowInteractive, nil
	case config.DialectPDI:
		// The wallet asks for itself: it is on this device.
		return dc.FlowSameDevice, nil
	}
	api, ft, ru := req["dc_api"], req["openid4vp_flow_type"], req["openid4vp_redirect_uri"]
	switch api {
	case "true":
		if ft != "" || ru != "" {
			return bad("openid4vp_flow_type and openid4vp_redirect_uri must not be sent with dc_api=true.")
		}
		if len(cdc.DCAPIOrigins) == 0 {
			return bad("This client has no Digital Credentials API origin registered.")
		}
		return dc.FlowDCAPI, nil
	case "", "false":
	default:
		return bad("dc_api must be true or false.")
	}
	switch ft {
	case "same_device":
		if ru == "" {
			return bad("A same_device flow needs openid4vp_redirect_uri.")
		}
		if !contains(cdc.OpenID4VPRedirectURIs, ru) {
			return bad("The openid4vp_redirect_uri is not registered for this client.")
		}
		return dc.FlowSameDevice, nil
	case "cross_device":
		if ru != "" {
			return bad("openid4vp_redirect_uri must not be sent with a cross_device flow.")
		}
		if cdc.DisableCrossDevice {
			return bad("Cross-device presentation is disabled for this client; use the Digital Credentials API or same_device.")
		}
		if !dpopBound && !cdc.CrossDeviceWithoutDPoP {
			return bad("A cross-device presentation needs a DPoP-bound session: send a DPoP proof (RFC 9449) with the initial request.")
		}
		return dc.FlowCrossDevice, nil
	case "":
		return bad("Say how the wallet is reached: dc_api=true, or openid4vp_flow_type=same_device or cross_device.")
	}
	return bad("openid4vp_flow_type must be same_device or cross_device.")
}

func (s *Step) render(sc flow.StepContext, st state) flow.ChallengeSpec {
	d, ok := dialects[st.Dialect]
	if !ok {
		d = dialects[config.DialectWallet]
	}
	spec := flow.ChallengeSpec{Type: "digital_credentials", Flow: string(st.Flow), Inputs: map[string]flow.Input{},
		Description: "Present a digital credential from your wallet.", Members: map[string]any{}}
	switch st.Flow {
	case dc.FlowDCAPI:
		spec.Inputs["vp_token"] = flow.Input{Title: "vp_token", Secret: true}
		spec.Inputs["response"] = flow.Input{Title: "response", Secret: true}
	case dc.FlowInteractive:
		spec.Inputs[d.responseMember] = flow.Input{Title: d.responseMember, Secret: true}
	case dc.FlowSameDevice:
		spec.Inputs[d.codeMember] = flow.Input{Title: d.codeMember, Secret: true}
	case dc.FlowCrossDevice:
		spec.Members["interval"] = st.Interval
	}
	if d.typeMember != "" {
		spec.Members[d.typeMember] = d.typeValue
	}
	switch {
	case st.Req == "":
		// Not kept (stored): the request was in the answer that began it.
	case d.requestObject:
		spec.Members[d.requestMember] = json.RawMessage(st.Req)
	default:
		spec.Members[d.requestMember] = st.Req
	}
	if left := st.Exp - sc.Now.Unix(); left > 0 {
		spec.Members["expires_in"] = left
	} else {
		spec.Members["expires_in"] = 0
	}
	if st.Expired {
		spec.Members["status"] = "expired"
	}
	return spec
}

// Verify implements flow.Step: the follow-up completes the transaction
// the way its path allows, and only that way.
func (s *Step) Verify(ctx context.Context, sc flow.StepContext, answers url.Values) (flow.StepResult, error) {
	var st state
	if err := json.Unmarshal(sc.Data, &st); err != nil || st.Tx == "" {
		return flow.StepResult{}, errors.New("presentation: corrupt step state")
	}
	d := dialects[st.Dialect]
	if err := s.stillAllowed(sc, st); err != nil {
		return flow.StepResult{}, err
	}
	if answers.Get("error") != "" {
		// The client or wallet gave up (presentation during issuance:
		// error=access_denied with the auth_session).
		return flow.StepResult{Result: flow.Denied, Description: "No credential was presented."}, nil
	}
	code := ""
	if d.codeMember != "" {
		code = answers.Get(d.codeMember)
	}
	var res dc.Result
	var err error
	switch st.Flow {
	case dc.FlowDCAPI, dc.FlowInteractive:
		data, ok := directResponse(d, answers)
		if !ok {
			return malformed("Send what the wallet returned (" + strings.Join(inputNames(d, st.Flow), " or ") + ")."), nil
		}
		res, err = s.o.Verifier.Submit(ctx, st.Tx, dc.DCAPIResponse{Data: data})
	case dc.FlowSameDevice:
		if code == "" {
			// Polling a same-device transaction never completes it (the
			// fixation guard): only the response_code does. Past its
			// expiry the poll gets the new transaction (docs/protocol.md
			// "Expiry"), as on every other path.
			if sc.Now.Unix() >= st.Exp {
				return s.restart(ctx, sc, st)
			}
			return s.pending(sc, st, false), nil
		}
		res, err = s.o.Verifier.Result(ctx, st.Tx, code)
	case dc.FlowCrossDevice:
		if code != "" || answers.Get("response_code") != "" || answers.Get("vp_token") != "" || answers.Get("response") != "" {
			return malformed("A cross-device presentation completes by polling with the auth_session alone."), nil
		}
		if now := sc.Now.UnixMilli(); now < st.Poll {
			// RFC 8628 §3.5: slow_down adds 5 s to the interval for good.
			st.Interval += 5
			st.Poll = now + int64(st.Interval)*1000
			return s.pending(sc, st, true), nil
		}
		st.Poll = sc.Now.UnixMilli() + int64(st.Interval)*1000
		res, err = s.o.Verifier.Result(ctx, st.Tx, "")
	default:
		return flow.StepResult{}, errors.New("presentation: unknown path")
	}
	expired := sc.Now.Unix() >= st.Exp
	switch {
	case errors.Is(err, dc.ErrPending) && !expired:
		return s.pending(sc, st, false), nil
	case errors.Is(err, dc.ErrPending), errors.Is(err, dc.ErrExpired):
		return s.restart(ctx, sc, st)
	case errors.Is(err, dc.ErrResponseCode):
		return flow.StepResult{Result: flow.Failed, Description: "The " + d.codeMember + " does not belong to this sign-in."}, nil
	case errors.Is(err, dc.ErrWrongFlow):
		return malformed("This presentation does not complete that way."), nil
	case errors.Is(err, dc.ErrRejected):
		s.refused(ctx, err)
		return denied(), nil
	case err != nil:
		return flow.StepResult{}, s.dependency(err)
	}
	switch res.Status {
	case dc.StatusVerified:
	case dc.StatusPending:
		if expired {
			return s.restart(ctx, sc, st)
		}
		return s.pending(sc, st, false), nil
	default:
		if res.WalletError == "access_denied" {
			return flow.StepResult{Result: flow.Denied, Description: "The wallet declined to present a credential."}, nil
		}
		s.refused(ctx, errors.New(safeCode(res.WalletError)))
		return denied(), nil
	}
	if len(res.Credentials) == 0 || res.Credentials[0].Subject == "" {
		s.refused(ctx, dc.ErrSubject)
		return denied(), nil
	}
	cred := res.Credentials[0]
	out := flow.StepResult{Result: flow.Passed, AMR: AMR, ACR: st.ACR,
		User:   &policy.User{Subject: Subject(cred.Subject)},
		Claims: s.mapClaims(cred)}
	return out, nil
}

// stillAllowed refuses a follow-up whose path the live policy no longer
// allows the client (a reload removed its openid4vp_redirect_uri, turned
// cross device off, removed every DC API origin, or its
// digital_credentials): nothing is issued on a path an admin took away,
// as for a removed native_callback_uri. The session is left as it is.
func (s *Step) stillAllowed(sc flow.StepContext, st state) error {
	gone := flow.Refuse(400, "invalid_session", "This sign-in's presentation is no longer allowed for the client; start again.")
	c := sc.Client
	if c == nil || c.DC == nil {
		return gone
	}
	if _, ok := s.Required(c, sc.Request); !ok {
		return gone
	}
	bound := sc.DPoPJKT != "" || sc.Request["dpop_jkt"] != "" || c.Federating
	if f, err := pathOf(dialectFor(c.DC, sc.Request), c.DC, sc.Request, bound); err != nil || f != st.Flow {
		return gone
	}
	return nil
}

// Ended implements flow.Ender: the code is minted, the transaction goes.
func (s *Step) Ended(ctx context.Context, sc flow.StepContext) {
	var st state
	if json.Unmarshal(sc.Data, &st) == nil && st.Tx != "" {
		if err := s.o.Verifier.Cancel(ctx, st.Tx); err != nil {
			s.o.Logger.Debug("could not end a verifier transaction", zap.Error(err))
		}
	}
}

// Subject is our sub for a credential subject (issuer + "|" + the
// issuer's stable claim, OpenID4VP §14.4): a digest, so that the claim
// value (often a national identifier) never appears in tokens or logs.
func Subject(credentialSubject string) string {
	sum := sha256.Sum256([]byte("fedas/dc-subject/v1|" + credentialSubject))
	return "dc." + base64.RawURLEncoding.EncodeToString(sum[:])
}

func (s *Step) mapClaims(cred dc.VerifiedCredential) map[string]any {
	m := s.claims[cred.Issuer]
	if len(m) == 0 {
		return nil
	}
	out := map[string]any{}
	for from, to := range m {
		if v, ok := cred.Claims[from]; ok {
			out[to] = v
		}
	}
	return out
}

// pending answers a poll: 403 insufficient_authorization with status
// pending (or slow_down) and the interval (docs/protocol.md "Polling").
func (s *Step) pending(sc flow.StepContext, st state, slow bool) flow.StepResult {
	r := flow.StepResult{Result: flow.Waiting, Interval: st.Interval, Description: "Waiting for the wallet."}
	if r.Interval == 0 {
		r.Interval = s.interval()
	}
	if slow {
		r.Status = "slow_down"
		r.Description = "Polling too fast: wait interval seconds between requests."
	}
	if d := dialects[st.Dialect]; d.typeMember != "" {
		r.Members = map[string]any{d.typeMember: d.typeValue}
	}
	if st.Flow == dc.FlowCrossDevice {
		r.Data, _ = json.Marshal(st)
	}
	return r
}

// restart replaces an expired transaction with a new one (new nonce, new
// request) at most MaxRestarts times (docs/protocol.md "Expiry").
func (s *Step) restart(ctx context.Context, sc flow.StepContext, st state) (flow.StepResult, error) {
	if st.Restarts >= s.o.Config.MaxRestarts {
		return flow.StepResult{Result: flow.Denied, Description: "The presentation request expired too often; start again."}, nil
	}
	_ = s.o.Verifier.Cancel(ctx, st.Tx)
	next, err := s.begin(ctx, sc, st.Restarts+1)
	if err != nil {
		return flow.StepResult{}, err
	}
	data, err := stored(next)
	if err != nil {
		return flow.StepResult{}, err
	}
	spec := s.render(sc, next)
	return flow.StepResult{Result: flow.Renewed, Data: data, Spec: &spec, Description: "The presentation request expired; here is a new one."}, nil
}

// dependency turns a verifier failure into the engine's dependency error
// (503 temporarily_unavailable with Retry-After): nothing changes.
func (s *Step) dependency(err error) error {
	if flow.IsRefusal(err) || errors.Is(err, storage.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: presentation verifier: %w", storage.ErrUnavailable, err)
}

func (s *Step) refused(ctx context.Context, err error) {
	// A reason code only: never a claim, disclosure or token.
	s.o.Logger.Info("presentation refused", zap.String("reason", safeCode(err.Error())))
	_ = ctx
}

func denied() flow.StepResult {
	return flow.StepResult{Result: flow.Denied, Description: "The presentation could not be verified."}
}

func malformed(desc string) flow.StepResult {
	return flow.StepResult{Result: flow.Malformed, Description: desc}
}

// directResponse is the response a client posts on the DC API and
// Interactive Authorization paths, as the JSON object the verifier takes:
// {"response": JWE} or {"vp_token": {...}} (OpenID4VP App. A.3, §8.3).
func directResponse(d dialect, answers url.Values) ([]byte, bool) {
	if d.responseMember != "" {
		v := answers.Get(d.responseMember)
		if v == "" || v[0] != '{' {
			return nil, false
		}
		return []byte(v), true
	}
	if jwe := answers.Get("response"); jwe != "" {
		b, _ := json.Marshal(map[string]string{"response": jwe})
		return b, true
	}
	if vp := answers.Get("vp_token"); vp != "" {
		// A JSON object (the JSON body) or its text (a form).
		if vp[0] != '{' {
			return nil, false
		}
		b, _ := json.Marshal(map[string]json.RawMessage{"vp_token": json.RawMessage(vp)})
		if !json.Valid(b) {
			return nil, false
		}
		return b, true
	}
	return nil, false
}

func inputNames(d dialect, f dc.Flow) []string {
	if f == dc.FlowInteractive {
		return []string{d.responseMember}
	}
	return []string{"vp_token", "response"}
}

// withParam appends name=value to a URI's query, keeping value literal
// (the {RESPONSE_CODE} placeholder).
func withParam(uri, name, value string) string {
	sep := "?"
	if strings.Contains(uri, "?") {
		sep = "&"
	}
	return uri + sep + url.QueryEscape(name) + "=" + value
}

func splitList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
}

func safeCode(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= 64 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == ':' || r == ' ' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
