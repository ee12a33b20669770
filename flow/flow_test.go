package flow_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/fedas/fedas/flow"
	"github.com/fedas/fedas/storage/memory"
)

// issuer records the grants it is asked to issue.
type issuer struct{ n atomic.Int32 }

func (i *issuer) IssueCode(_ context.Context, g flow.Grant) (string, error) {
	i.n.Add(1)
	return "code-for-" + g.Subject, nil
}

func (i *issuer) RedeemCode(context.Context, string, string, string) (flow.Grant, error) {
	return flow.Grant{}, errors.New("not used")
}

func engine(t *testing.T) (*flow.Engine, *issuer) {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	require.NoError(t, err)
	st := memory.New()
	t.Cleanup(func() { _ = st.Close() })
	iss := &issuer{}
	return flow.New(flow.Options{
		Sessions: st, Replay: st, Issuer: iss, TTL: time.Minute, MaxFailures: 3,
		Users: []flow.User{{Username: "u", Subject: "sub-u", PasswordHash: string(h)}},
	}), iss
}

func challenge(t *testing.T, err error) *flow.Error {
	t.Helper()
	var fe *flow.Error
	require.ErrorAs(t, err, &fe)
	return fe
}

// The state machine without HTTP: start, a wrong answer, the right one,
// and every used value dead afterwards.
func TestEngine_PasswordFlow(t *testing.T) {
	e, iss := engine(t)
	ctx := context.Background()
	c := challenge(t, e.Start(ctx, flow.Client{ID: "app", CredentialChallenges: true}, map[string]string{"scope": "openid"}))
	require.Equal(t, 403, c.Status)
	require.Equal(t, "password", c.Challenge.Type)
	s0 := c.AuthSession

	_, err := e.Continue(ctx, "", s0, url.Values{"username": {"u"}, "password": {"bad"}})
	c = challenge(t, err)
	require.Equal(t, "insufficient_authorization", c.Code)
	s1 := c.AuthSession
	require.NotEqual(t, s0, s1)

	out, err := e.Continue(ctx, "", s1, url.Values{"username": {"u"}, "password": {"pw"}})
	require.NoError(t, err)
	require.Equal(t, "code-for-sub-u", out.Code)
	require.Equal(t, "openid", out.Request["scope"])

	for _, v := range []string{s0, s1} {
		_, err := e.Continue(ctx, "", v, url.Values{"username": {"u"}, "password": {"pw"}})
		require.Equal(t, "invalid_session", challenge(t, err).Code)
	}
	require.EqualValues(t, 1, iss.n.Load())
}

func TestEngine_MalformedHandles(t *testing.T) {
	e, _ := engine(t)
	for _, v := range []string{"", "x", strings.Repeat("A", 63), strings.Repeat("A", 65), strings.Repeat("*", 64), strings.Repeat("A", 10000)} {
		_, err := e.Continue(context.Background(), "", v, url.Values{})
		require.Equal(t, "invalid_session", challenge(t, err).Code, "%q", v)
	}
}

// Of 50 concurrent right answers with one value, exactly one issues a code.
func TestEngine_ConcurrentStep(t *testing.T) {
	e, iss := engine(t)
	ctx := context.Background()
	s := challenge(t, e.Start(ctx, flow.Client{ID: "app", CredentialChallenges: true}, nil)).AuthSession
	var wg sync.WaitGroup
	gate := make(chan struct{})
	var wins atomic.Int32
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			if _, err := e.Continue(ctx, "", s, url.Values{"username": {"u"}, "password": {"pw"}}); err == nil {
				wins.Add(1)
			}
		}()
	}
	close(gate)
	wg.Wait()
	require.EqualValues(t, 1, wins.Load())
	require.EqualValues(t, 1, iss.n.Load())
}

// A client without credential challenges (a federating client that did
// not opt in) gets redirect_to_web, never a password challenge.
func TestEngine_NoCredentialChallenges(t *testing.T) {
	e, _ := engine(t)
	c := challenge(t, e.Start(context.Background(), flow.Client{ID: "as1", Federating: true}, nil))
	require.Equal(t, "redirect_to_web", c.Code)
	require.Equal(t, 403, c.Status)
	require.Nil(t, c.Challenge)
}
