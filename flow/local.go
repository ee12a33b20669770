package flow

import (
	"context"
	"errors"
	"slices"

	"github.com/fedas/fedas/events"
	"github.com/fedas/fedas/policy"
)

// chain is the sign-in chain for client c's request on channel ch.
// ChainFor chooses only for the native endpoint: our browser pages render
// password and OTP challenges, not a presentation's paths.
func (e *Engine) chain(c *policy.Client, req map[string]string, ch Channel) []Step {
	if e.o.ChainFor != nil && c != nil && ch == ChannelNative {
		return e.o.ChainFor(c, req)
	}
	return e.o.Steps
}

// credentialFree reports whether the chain's first step collects no
// secret of ours (CredentialFree), so that a client barred from
// credential challenges (docs/decisions.md Q10) may still be served it.
func credentialFree(steps []Step) bool {
	if len(steps) == 0 {
		return false
	}
	cf, ok := steps[0].(CredentialFree)
	return ok && cf.CredentialFree()
}

// hintIsMethod reports whether a step of the chain reads login_hint as
// the name of a method (login_hint=wallet), not of a user.
func hintIsMethod(steps []Step, c *policy.Client, hint string) bool {
	for _, st := range steps {
		if ht, ok := st.(HintTaker); ok && ht.TakesHint(c, hint) {
			return true
		}
	}
	return false
}

// startLocal begins a local sign-in with the first step of the client's
// chain. hint names the user when a prompt answer did.
func (e *Engine) startLocal(ctx context.Context, st starter, hint string) (Outcome, error) {
	steps := e.chain(st.client, st.req, st.channel)
	if !st.cred && !credentialFree(steps) {
		return e.webFallback(ctx, st.snap, st.client.GetID(), st.req, st.jkt, "")
	}
	s := st.session(e, "")
	if lh := st.req["login_hint"]; !hintIsMethod(steps, st.client, lh) {
		s.hint(lh)
	}
	s.hint(hint)
	return e.beginLocal(ctx, st.snap, s)
}

// beginLocal makes the first step of the chain current, stores the new
// session and answers its challenge.
func (e *Engine) beginLocal(ctx context.Context, snap *policy.Snapshot, s *session) (Outcome, error) {
	// The session's handle exists before its first step begins, so that a
	// step binding something outside the session to it (a verifier
	// transaction: StepContext.Binding) names the session it will be.
	value, h, err := newHandle()
	if err != nil {
		return nil, err
	}
	s.ID, s.StepHash, s.h = h.id, h.stepHash, h
	if err := e.enterStep(ctx, snap, s, 0, nil); err != nil {
		return nil, err
	}
	if err := e.store(ctx, s); err != nil {
		return nil, err
	}
	return e.challenge(ctx, snap, s, value, "")
}

// localFromSession moves an existing session (after a prompt answer) to
// local sign-in.
func (e *Engine) localFromSession(ctx context.Context, snap *policy.Snapshot, s *session, hint string) (Outcome, error) {
	s.hint(hint)
	s.Failures = 0
	if err := e.enterStep(ctx, snap, s, 0, nil); err != nil {
		return nil, err
	}
	value, err := e.advance(ctx, s)
	if err != nil {
		return nil, err
	}
	return e.challenge(ctx, snap, s, value, "")
}

// enterStep makes the first step from index i that applies to u current;
// it returns false in s.Stage == "" when none is left.
// Steps named in skip were satisfied already (StepResult.Satisfied).
func (e *Engine) enterStep(ctx context.Context, snap *policy.Snapshot, s *session, i int, u *policy.User, skip ...string) error {
	steps := e.chain(clientOf(snap, s.ClientID), s.Request, s.x.Channel)
	for ; i < len(steps); i++ {
		if steps[i].Applies(u) && !slices.Contains(skip, steps[i].Name()) {
			s.Stage, s.x.Step, s.x.StepData = steps[i].Name(), i, nil
			spec, data, err := steps[i].Challenge(ctx, e.stepContext(snap, s))
			if err != nil {
				return err
			}
			s.x.StepData, s.spec = data, &spec
			return nil
		}
	}
	s.Stage = ""
	return nil
}

func clientOf(snap *policy.Snapshot, id string) *policy.Client {
	c, _ := snap.Client(id)
	return c
}

func (e *Engine) stepContext(snap *policy.Snapshot, s *session) StepContext {
	return StepContext{Users: snap.Users(), Replay: e.o.Replay, Now: e.o.Now(), Username: s.Username, Data: s.x.StepData,
		ClientID: s.ClientID, Client: clientOf(snap, s.ClientID), Request: s.Request, Binding: bindingOf(s.ID), DPoPJKT: s.DPoPJKT}
}

// bindingOf is the digest a step may store outside the session to name
// it (StepContext.Binding): never the ID itself, which is half of the
// auth_session value.
func bindingOf(id string) string {
	return digest([]byte("fedas/step-binding/v1|" + id))
}

func (e *Engine) current(snap *policy.Snapshot, s *session) (Step, bool) {
	steps := e.chain(clientOf(snap, s.ClientID), s.Request, s.x.Channel)
	if s.x.Step < 0 || s.x.Step >= len(steps) || steps[s.x.Step].Name() != s.Stage {
		return nil, false
	}
	return steps[s.x.Step], true
}

// challenge renders the current step's challenge.
func (e *Engine) challenge(ctx context.Context, snap *policy.Snapshot, s *session, value, desc string) (Outcome, error) {
	step, ok := e.current(snap, s)
	if !ok {
		return invalidSession(), nil
	}
	var spec ChallengeSpec
	if s.spec != nil {
		spec = *s.spec
	} else {
		var err error
		if spec, _, err = step.Challenge(ctx, e.stepContext(snap, s)); err != nil {
			return nil, err
		}
	}
	if desc == "" {
		desc = spec.Description
	}
	return Challenge{AuthSession: value, Description: desc, Spec: spec}, nil
}

// continueLocal verifies the current step's answers and moves on: the
// next step that applies, or our code.
func (e *Engine) continueLocal(ctx context.Context, r Request, s *session) (Outcome, error) {
	step, ok := e.current(r.Policy, s)
	if !ok {
		// The chain changed under the session (a reload): start again.
		e.end(ctx, s)
		return invalidSession(), nil
	}
	sc := e.stepContext(r.Policy, s)
	sc.ClientIP = r.ClientIP
	res, err := step.Verify(ctx, sc, r.Form)
	if err != nil {
		return nil, err
	}
	switch res.Result {
	case Malformed:
		return invalidRequest(res.Description), nil
	case Throttled:
		// Nothing was checked: the session stays as it was, its value
		// good after the wait (docs/decisions.md Q28).
		e.o.Events.Emit(ctx, events.Event{Name: events.SignInThrottled, Method: step.Name(), ClientID: s.ClientID, Scope: res.Scope})
		out := SlowDown(res.RetryAfter, res.Description)
		out.AuthSession = r.Form.Get("auth_session")
		return out, nil
	case Failed:
		return e.fail(ctx, r.Policy, s, res.Description, step.Name(), "wrong_answer")
	case Waiting:
		// Nothing changed but the step's own bookkeeping (the time of the
		// last poll): the session keeps its value (docs/protocol.md
		// "Polling"), so a poll costs no rotation.
		value := r.Form.Get("auth_session")
		if res.Data != nil {
			s.x.StepData = res.Data
			if err := e.keep(ctx, s); err != nil {
				// A concurrent poll stored its bookkeeping first: if the
				// value still names the session, this poll is answered as
				// one (it was not invalid_session: the client would give up
				// a live sign-in); if the session moved on, invalid_session.
				var rf *errRefused
				if !errors.As(err, &rf) {
					return nil, err
				}
				if _, lerr := e.load(ctx, value); lerr != nil {
					return nil, err
				}
			}
		}
		status := res.Status
		if status == "" {
			status = "pending"
		}
		return Pending{AuthSession: value, Description: res.Description, Interval: res.Interval, Status: status, Members: res.Members}, nil
	case Renewed:
		s.x.StepData, s.spec = res.Data, res.Spec
		value, err := e.advance(ctx, s)
		if err != nil {
			return nil, err
		}
		return e.challenge(ctx, r.Policy, s, value, res.Description)
	case Denied:
		e.signIn(ctx, false, step.Name(), s.ClientID, "", "denied")
		if err := e.finish(ctx, s); err != nil {
			return nil, err
		}
		return accessDenied(res.Description), nil
	case Passed:
	default:
		return nil, errUnknownResult
	}
	if res.User != nil {
		if s.x.User != "" && s.x.User != res.User.Username {
			// A hinted user is the only user this session may sign in.
			return e.fail(ctx, r.Policy, s, "The username or password is not correct.", step.Name(), "other_user")
		}
		s.Username, s.Subject, s.x.User = res.User.Username, res.User.Subject, res.User.Username
		s.x.Hinted = false
	}
	if res.AMR != "" {
		s.AMR = append(s.AMR, res.AMR)
	}
	if res.ACR != "" {
		s.x.ACR = res.ACR
	}
	for k, v := range res.Claims {
		if s.x.IDClaims == nil {
			s.x.IDClaims = map[string]any{}
		}
		s.x.IDClaims[k] = v
	}
	s.AuthTime = e.o.Now()
	s.Failures = 0
	e.signIn(ctx, true, step.Name(), s.ClientID, "", "")
	var skip []string
	for _, sat := range res.Satisfied {
		if sat.AMR != "" {
			s.AMR = append(s.AMR, sat.AMR)
		}
		skip = append(skip, sat.Step)
		e.signIn(ctx, true, sat.Step, s.ClientID, "", "")
	}
	u, _, err := r.Policy.Users().User(ctx, s.Username)
	if err != nil {
		return nil, err
	}
	if err := e.enterStep(ctx, r.Policy, s, s.x.Step+1, &u, skip...); err != nil {
		return nil, err
	}
	if s.Stage != "" {
		value, err := e.advance(ctx, s)
		if err != nil {
			return nil, err
		}
		return e.challenge(ctx, r.Policy, s, value, "")
	}
	out, err := e.complete(ctx, r.Policy, s)
	if en, ok := step.(Ender); ok && err == nil {
		en.Ended(ctx, sc)
	}
	return out, err
}

// fail counts a wrong answer to the step named method: the session
// survives with a new step value until MaxFailures, then it ends.
func (e *Engine) fail(ctx context.Context, snap *policy.Snapshot, s *session, desc, method, reason string) (Outcome, error) {
	s.Failures++
	if s.Failures >= e.o.MaxFailures {
		reason = "too_many_failures"
	}
	e.signIn(ctx, false, method, s.ClientID, "", reason)
	if s.Failures >= e.o.MaxFailures {
		if err := e.finish(ctx, s); err != nil {
			return nil, err
		}
		return accessDenied("Too many failed attempts; start again."), nil
	}
	value, err := e.advance(ctx, s)
	if err != nil {
		return nil, err
	}
	return e.challenge(ctx, snap, s, value, desc)
}
