package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/fedas/fedas/flow"
	"github.com/fedas/fedas/storage"
)

// pushStore implements flow.PushStore over storage: clients' PARs are the
// records fosite's PAR handler writes (KindPAR); our own pushes have kinds
// of their own, and their request_uri says which, so a lookup reads one
// keyspace only. Deciding whether a push may be used, and consuming it,
// is the engine's (flow.take).
type pushStore struct{ s *Server }

var _ flow.PushStore = pushStore{}

const (
	pushAppTag = "fedas-app."
	pushWebTag = "fedas-web."
)

func pushKindOf(ru string) (storage.Kind, flow.PushKind) {
	rest := strings.TrimPrefix(ru, flow.RequestURIPrefix)
	switch {
	case strings.HasPrefix(rest, pushAppTag):
		return storage.KindPushApp, flow.PushApp
	case strings.HasPrefix(rest, pushWebTag):
		return storage.KindPushWeb, flow.PushWeb
	}
	return storage.KindPAR, flow.PushClient
}

// ownPush is the session reference our pushes keep in Record.Session.
type ownPush struct {
	Session string `json:"fedas_session,omitempty"`
}

// Push implements flow.PushStore (RFC 9126 §2.2 lifetimes and shape).
func (p pushStore) Push(ctx context.Context, in flow.Pushed) (string, int, error) {
	kind, tag := storage.KindPushWeb, pushWebTag
	switch in.Kind {
	case flow.PushApp:
		kind, tag = storage.KindPushApp, pushAppTag
	case flow.PushWeb:
	default:
		return "", 0, fmt.Errorf("server: cannot push kind %d", in.Kind)
	}
	sess, _ := json.Marshal(ownPush{Session: in.Session})
	rec := storage.Record{
		RequestID:       randomURLSafe(16),
		ClientID:        in.ClientID,
		RequestedAt:     p.s.now().UTC(),
		Form:            in.Form.Encode(),
		RequestedScopes: strings.Fields(in.Form.Get("scope")),
		GrantedScopes:   strings.Fields(in.Form.Get("scope")),
		ResponseTypes:   []string{"code"},
		State:           in.Form.Get("state"),
		RedirectURI:     in.Form.Get("redirect_uri"),
		Session:         sess,
	}
	ru := flow.RequestURIPrefix + tag + randomURLSafe(32)
	ttl := p.s.cfg.Lifetimes.PushedRequest
	if err := p.s.store.CreateToken(ctx, kind, ru, rec, ttl); err != nil {
		return "", 0, err
	}
	return ru, int(ttl / time.Second), nil
}

// Peek implements flow.PushStore.
func (p pushStore) Peek(ctx context.Context, ru string) (flow.Pushed, error) {
	kind, pk := pushKindOf(ru)
	rec, err := p.s.store.Token(ctx, kind, ru)
	if err != nil {
		return flow.Pushed{}, err
	}
	return fromPushRecord(pk, rec)
}

// Consume implements flow.PushStore: one atomic step.
func (p pushStore) Consume(ctx context.Context, ru string) (flow.Pushed, error) {
	kind, pk := pushKindOf(ru)
	rec, err := p.s.store.ConsumeToken(ctx, kind, ru)
	if err != nil {
		return flow.Pushed{}, err
	}
	return fromPushRecord(pk, rec)
}

func fromPushRecord(pk flow.PushKind, rec storage.Record) (flow.Pushed, error) {
	form, err := url.ParseQuery(rec.Form)
	if err != nil {
		return flow.Pushed{}, fmt.Errorf("%w: corrupt pushed request", storage.ErrNotFound)
	}
	out := flow.Pushed{Kind: pk, ClientID: rec.ClientID, Form: form}
	if rec.RedirectURI != "" {
		form.Set("redirect_uri", rec.RedirectURI)
	}
	if pk == flow.PushClient {
		// fosite stores the scopes it granted at PAR time.
		scopes := rec.GrantedScopes
		if len(scopes) == 0 {
			scopes = rec.RequestedScopes
		}
		form.Set("scope", strings.Join(scopes, " "))
		return out, nil
	}
	var own ownPush
	_ = json.Unmarshal(rec.Session, &own)
	out.Session = own.Session
	return out, nil
}
