package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/ory/fosite"

	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/storage"
)

// fositeStore adapts a storage.Store to the storage interfaces fosite's
// handlers call (handler/oauth2, handler/pkce, PAR). It is the one place
// where fosite requesters are serialised (client ID + form + scopes +
// session JSON, as ory/hydra stores them) and rehydrated into the caller's
// session prototype.
type fositeStore struct {
	st storage.Store
	// policy is the current snapshot (a request's own, from its context).
	policy    *policy.Source
	lifetimes func(storage.Kind) time.Duration
}

var (
	_ fosite.Storage    = (*fositeStore)(nil)
	_ fosite.PARStorage = (*fositeStore)(nil)
)

// GetClient implements fosite.ClientManager.
func (s *fositeStore) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	c, ok := snapshotOf(ctx, s.policy).Client(id)
	if !ok {
		return nil, fosite.ErrNotFound
	}
	return c, nil
}

// ClientAssertionJWTValid implements fosite.ClientManager. The real check
// is the atomic MarkUsed in SetClientAssertionJWT: a check-then-set here
// would race (fosite GHSA-v3q9-2p3m-7g43).
func (s *fositeStore) ClientAssertionJWTValid(context.Context, string) error { return nil }

// SetClientAssertionJWT records a client assertion jti once (RFC 7523 §3
// item 7); a second use gets ErrJTIKnown.
func (s *fositeStore) SetClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error {
	// The jti is client input: store its digest, never the raw value.
	sum := sha256.Sum256([]byte(jti))
	err := s.st.MarkUsed(ctx, "jti:"+hex.EncodeToString(sum[:]), exp)
	switch {
	case errors.Is(err, storage.ErrConflict):
		return fosite.ErrJTIKnown
	case err != nil:
		return storageErr(err)
	}
	return nil
}

// storageErr maps backend failures into fosite errors: not-found stays
// fosite.ErrNotFound (so an unknown code is invalid_grant, never 500), an
// unavailable backend becomes temporarily_unavailable (503).
func storageErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrNotFound):
		return fosite.ErrNotFound
	case errors.Is(err, storage.ErrUnavailable):
		return fosite.ErrTemporarilyUnavailable.WithWrap(err).WithDebug(err.Error())
	}
	return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
}

func toRecord(r fosite.Requester) (storage.Record, error) {
	return toRecordWith(r, nil)
}

// toRecordWith is toRecord with the session's JSON already encoded
// (sess), or encoded here when sess is nil.
func toRecordWith(r fosite.Requester, sess json.RawMessage) (storage.Record, error) {
	if sess == nil {
		var err error
		if sess, err = json.Marshal(r.GetSession()); err != nil {
			return storage.Record{}, fmt.Errorf("encode session: %w", err)
		}
	}
	rec := storage.Record{
		RequestID:         r.GetID(),
		ClientID:          r.GetClient().GetID(),
		RequestedAt:       r.GetRequestedAt(),
		Form:              r.GetRequestForm().Encode(),
		RequestedScopes:   r.GetRequestedScopes(),
		GrantedScopes:     r.GetGrantedScopes(),
		RequestedAudience: r.GetRequestedAudience(),
		GrantedAudience:   r.GetGrantedAudience(),
		Session:           sess,
	}
	if ar, ok := r.(fosite.AuthorizeRequester); ok {
		rec.ResponseTypes = ar.GetResponseTypes()
		rec.State = ar.GetState()
		if u := ar.GetRedirectURI(); u != nil {
			rec.RedirectURI = u.String()
		}
	}
	return rec, nil
}

func (s *fositeStore) fromRecord(ctx context.Context, rec storage.Record, session fosite.Session) (*fosite.AuthorizeRequest, error) {
	client, ok := snapshotOf(ctx, s.policy).Client(rec.ClientID)
	if !ok {
		// The client was removed from configuration since: treat its
		// artefacts as gone.
		return nil, fosite.ErrNotFound
	}
	m := memoOf(ctx)
	var form url.Values
	if m != nil && m.dec.form != nil && m.dec.rawForm == rec.Form {
		form = m.dec.form
	} else {
		var err error
		if form, err = url.ParseQuery(rec.Form); err != nil {
			return nil, fosite.ErrServerError.WithDebug("stored form is corrupt")
		}
		if m != nil {
			m.dec.rawForm, m.dec.form = rec.Form, form
		}
	}
	if session != nil && len(rec.Session) > 0 {
		// fosite reads a code's record up to three times in one request
		// (its handler's Handle and Populate, the PKCE handler), each time
		// into the request's own session: decoding the same JSON into the
		// same session again changes nothing, so it is decoded once.
		if m == nil || !sameSession(m.dec.session, session) || !bytes.Equal(m.dec.rawSession, rec.Session) {
			if err := json.Unmarshal(rec.Session, session); err != nil {
				return nil, fosite.ErrServerError.WithDebug("stored session is corrupt")
			}
			if m != nil {
				m.dec.session, m.dec.rawSession = session, rec.Session
			}
		}
	}
	// Every field fosite.NewAuthorizeRequest would set is set below, so
	// its placeholder values (a client, empty lists) are not made.
	ar := &fosite.AuthorizeRequest{ResponseMode: fosite.ResponseModeDefault}
	ar.ID = rec.RequestID
	ar.RequestedAt = rec.RequestedAt
	ar.Client = client
	ar.Form = form
	ar.RequestedScope = rec.RequestedScopes
	ar.GrantedScope = rec.GrantedScopes
	ar.RequestedAudience = rec.RequestedAudience
	ar.GrantedAudience = rec.GrantedAudience
	ar.Session = session
	ar.ResponseTypes = rec.ResponseTypes
	ar.State = rec.State
	if rec.RedirectURI != "" {
		ar.RedirectURI, _ = url.Parse(rec.RedirectURI)
	}
	return ar, nil
}

func (s *fositeStore) create(ctx context.Context, kind storage.Kind, sig string, r fosite.Requester) error {
	m := memoOf(ctx)
	buffered := m != nil && m.tx && (kind == storage.KindAccess || kind == storage.KindRefresh)
	var sess json.RawMessage
	if buffered && sameSession(m.txSession, r.GetSession()) {
		// fosite writes a grant's access and refresh tokens back to back
		// in one transaction from the one session, unchanged in between
		// (handler/oauth2 PopulateTokenEndpointResponse): both records
		// carry the same session JSON, encoded once.
		sess = m.txSessionJSON
	}
	rec, err := toRecordWith(r, sess)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	if buffered {
		m.txSession, m.txSessionJSON = r.GetSession(), rec.Session
		m.writes = append(m.writes, storage.TokenWrite{Kind: kind, Signature: sig, Rec: rec, TTL: s.lifetimes(kind)})
		return nil
	}
	return storageErr(s.st.CreateToken(ctx, kind, sig, rec, s.lifetimes(kind)))
}

// codeMemo is per token request. It keeps the code record fosite reads
// twice (Handle, then Populate before invalidating) and the PKCE record.
// On a storage.CodeRedeemer backend (every fedas backend) both come from
// one atomic step that also marks the code redeemed and consumes the PKCE
// record: that step is the single-use decision (RFC 6749 §4.1.2), made
// before any token is minted, and fosite's later
// InvalidateAuthorizeCodeSession for the same code confirms it without
// another round trip (redeemed). A failed code_verifier, or any other
// failure after the read, burns the code (RFC 7636 §4.6;
// TestPKCE_Verifier). On a backend without storage.CodeRedeemer (none of
// ours) the code is read as it is and the atomic InvalidateCode decides. The memo
// also buffers the token writes between BeginTX and Commit (fosite
// storage.Transactional), which go out as one storage.TokenBatcher call.
type codeMemo struct {
	sig      string
	rec      storage.Record
	err      error
	pkceRead bool
	pkce     *storage.Record
	// redeemed: this request's RedeemCode of sig won.
	redeemed bool
	tx       bool
	writes   []storage.TokenWrite
	// txSession and txSessionJSON: the session of the last buffered
	// write and its JSON.
	txSession     fosite.Session
	txSessionJSON json.RawMessage
	// dec is what fromRecord decoded last.
	dec struct {
		rawForm    string
		form       url.Values
		session    fosite.Session
		rawSession json.RawMessage
	}
	// refresh is what a refresh request's checks found (refresh.go).
	refresh *refreshState
}

// sameSession reports whether a and b are the one *fosite.DefaultSession
// (fedas's only session type; comparing other dynamic types could panic).
func sameSession(a, b fosite.Session) bool {
	x, ok := a.(*fosite.DefaultSession)
	y, ok2 := b.(*fosite.DefaultSession)
	return ok && ok2 && x != nil && x == y
}

type memoKey struct{}

// withCodeMemo enables the memo for one request's context.
func withCodeMemo(ctx context.Context) context.Context {
	return context.WithValue(ctx, memoKey{}, &codeMemo{})
}

func memoOf(ctx context.Context) *codeMemo {
	m, _ := ctx.Value(memoKey{}).(*codeMemo)
	return m
}

func (s *fositeStore) token(ctx context.Context, kind storage.Kind, sig string) (storage.Record, error) {
	m := memoOf(ctx)
	if m == nil || (kind != storage.KindCode && kind != storage.KindPKCE) {
		return s.st.Token(ctx, kind, sig)
	}
	if m.sig != sig {
		if cr, ok := s.st.(storage.CodeRedeemer); ok {
			rec, pkce, err := cr.RedeemCode(ctx, sig)
			if err != nil && !errors.Is(err, storage.ErrInvalidated) && !errors.Is(err, storage.ErrNotFound) {
				return storage.Record{}, err
			}
			m.sig, m.rec, m.err, m.pkceRead, m.pkce = sig, rec, err, true, pkce
			m.redeemed = err == nil
			return s.token(ctx, kind, sig)
		}
		rec, err := s.st.Token(ctx, kind, sig)
		if kind == storage.KindCode && (err == nil || errors.Is(err, storage.ErrInvalidated)) {
			m.sig, m.rec, m.err, m.pkceRead, m.redeemed = sig, rec, err, false, false
		}
		return rec, err
	}
	if kind == storage.KindPKCE {
		if !m.pkceRead {
			return s.st.Token(ctx, kind, sig)
		}
		if m.pkce == nil {
			return storage.Record{}, storage.ErrNotFound
		}
		return *m.pkce, nil
	}
	return m.rec, m.err
}

// BeginTX implements fosite's storage.Transactional: access and refresh
// token writes are buffered until Commit.
func (s *fositeStore) BeginTX(ctx context.Context) (context.Context, error) {
	m := memoOf(ctx)
	if m == nil {
		ctx = withCodeMemo(ctx)
		m = memoOf(ctx)
	}
	m.tx, m.writes, m.txSession, m.txSessionJSON = true, nil, nil, nil
	return ctx, nil
}

// Commit writes the buffered tokens in one step (one pipeline on Redis).
func (s *fositeStore) Commit(ctx context.Context) error {
	m := memoOf(ctx)
	if m == nil || !m.tx {
		return nil
	}
	writes := m.writes
	m.tx, m.writes, m.txSession, m.txSessionJSON = false, nil, nil, nil
	return s.writeTokens(ctx, writes)
}

// writeTokens stores tokens in one step where the backend can (one
// pipeline on Redis).
func (s *fositeStore) writeTokens(ctx context.Context, writes []storage.TokenWrite) error {
	if b, ok := s.st.(storage.TokenBatcher); ok {
		return storageErr(b.CreateTokens(ctx, writes, storage.KindPKCE, nil))
	}
	for _, w := range writes {
		if err := s.st.CreateToken(ctx, w.Kind, w.Signature, w.Rec, w.TTL); err != nil {
			return storageErr(err)
		}
	}
	return nil
}

// Rollback drops the buffered writes.
func (s *fositeStore) Rollback(ctx context.Context) error {
	if m := memoOf(ctx); m != nil {
		m.tx, m.writes, m.txSession, m.txSessionJSON = false, nil, nil, nil
	}
	return nil
}

func (s *fositeStore) get(ctx context.Context, kind storage.Kind, sig string, session fosite.Session) (fosite.Requester, error) {
	rec, err := s.token(ctx, kind, sig)
	if err != nil && !errors.Is(err, storage.ErrInvalidated) {
		return nil, storageErr(err)
	}
	ar, ferr := s.fromRecord(ctx, rec, session)
	if ferr != nil {
		return nil, ferr
	}
	if errors.Is(err, storage.ErrInvalidated) {
		if kind == storage.KindRefresh {
			// A rotated refresh token: inactive for introspection and
			// revocation (RFC 7662 §2.2, RFC 7009 §2.2); the refresh
			// grant reads the store itself (refresh.go).
			return ar, fosite.ErrInactiveToken
		}
		return ar, fosite.ErrInvalidatedAuthorizeCode
	}
	return ar, nil
}

// CreateAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage.
func (s *fositeStore) CreateAuthorizeCodeSession(ctx context.Context, sig string, r fosite.Requester) error {
	return s.create(ctx, storage.KindCode, sig, r)
}

// GetAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage; a
// redeemed code comes back with fosite.ErrInvalidatedAuthorizeCode so that
// fosite revokes what the first redemption issued (RFC 6749 §4.1.2).
func (s *fositeStore) GetAuthorizeCodeSession(ctx context.Context, sig string, session fosite.Session) (fosite.Requester, error) {
	return s.get(ctx, storage.KindCode, sig, session)
}

// InvalidateAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage.
// It is the single atomic step that decides which concurrent redemption
// wins; losers get invalid_grant instead of fosite's default 500.
func (s *fositeStore) InvalidateAuthorizeCodeSession(ctx context.Context, sig string) error {
	if m := memoOf(ctx); m != nil && m.redeemed && m.sig == sig {
		// This request's RedeemCode already invalidated the code, and won.
		return nil
	}
	err := s.st.InvalidateCode(ctx, sig)
	if errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrNotFound) {
		return fosite.ErrInvalidGrant.WithHint("The authorization code has already been used.")
	}
	return storageErr(err)
}

// CreatePKCERequestSession implements pkce.PKCERequestStorage.
func (s *fositeStore) CreatePKCERequestSession(ctx context.Context, sig string, r fosite.Requester) error {
	return s.create(ctx, storage.KindPKCE, sig, r)
}

// GetPKCERequestSession implements pkce.PKCERequestStorage.
func (s *fositeStore) GetPKCERequestSession(ctx context.Context, sig string, session fosite.Session) (fosite.Requester, error) {
	return s.get(ctx, storage.KindPKCE, sig, session)
}

// DeletePKCERequestSession implements pkce.PKCERequestStorage. It does
// nothing: our PKCE request is the code's own record (CreateCode), read
// through the code memo, and dies with the code, which the atomic
// InvalidateCode makes single-use. Deleting it would cost a round trip
// and protect nothing.
func (s *fositeStore) DeletePKCERequestSession(context.Context, string) error { return nil }

// CreateAccessTokenSession implements oauth2.AccessTokenStorage.
func (s *fositeStore) CreateAccessTokenSession(ctx context.Context, sig string, r fosite.Requester) error {
	return s.create(ctx, storage.KindAccess, sig, r)
}

// GetAccessTokenSession implements oauth2.AccessTokenStorage.
func (s *fositeStore) GetAccessTokenSession(ctx context.Context, sig string, session fosite.Session) (fosite.Requester, error) {
	return s.get(ctx, storage.KindAccess, sig, session)
}

// DeleteAccessTokenSession implements oauth2.AccessTokenStorage.
func (s *fositeStore) DeleteAccessTokenSession(ctx context.Context, sig string) error {
	return storageErr(s.st.DeleteToken(ctx, storage.KindAccess, sig))
}

// CreateRefreshTokenSession implements oauth2.RefreshTokenStorage.
func (s *fositeStore) CreateRefreshTokenSession(ctx context.Context, sig, _ string, r fosite.Requester) error {
	return s.create(ctx, storage.KindRefresh, sig, r)
}

// GetRefreshTokenSession implements oauth2.RefreshTokenStorage.
func (s *fositeStore) GetRefreshTokenSession(ctx context.Context, sig string, session fosite.Session) (fosite.Requester, error) {
	return s.get(ctx, storage.KindRefresh, sig, session)
}

// DeleteRefreshTokenSession implements oauth2.RefreshTokenStorage.
func (s *fositeStore) DeleteRefreshTokenSession(ctx context.Context, sig string) error {
	return storageErr(s.st.DeleteToken(ctx, storage.KindRefresh, sig))
}

// RotateRefreshToken implements oauth2.RefreshTokenStorage for the
// interface's sake: fosite's refresh handler is not wired; refreshGrant
// (refresh.go) rotates, per client, with storage's atomic
// InvalidateRefresh.
func (s *fositeStore) RotateRefreshToken(context.Context, string, string) error { return nil }

// RevokeRefreshToken implements oauth2.TokenRevocationStorage (RFC 7009 §2.1).
func (s *fositeStore) RevokeRefreshToken(ctx context.Context, requestID string) error {
	return storageErr(s.st.RevokeRequest(ctx, storage.KindRefresh, requestID))
}

// RevokeAccessToken implements oauth2.TokenRevocationStorage (RFC 7009 §2.1).
func (s *fositeStore) RevokeAccessToken(ctx context.Context, requestID string) error {
	return storageErr(s.st.RevokeRequest(ctx, storage.KindAccess, requestID))
}

// CreatePARSession implements fosite.PARStorage (RFC 9126 §2.2).
func (s *fositeStore) CreatePARSession(ctx context.Context, requestURI string, r fosite.AuthorizeRequester) error {
	return s.create(ctx, storage.KindPAR, requestURI, r)
}

// errPARViaFosite: fosite reads a pushed request back only in its own
// authorization endpoint, which fedas does not use; every request_uri is
// looked up, checked and consumed by flow.Engine.take alone.
var errPARViaFosite = errors.New("server: pushed requests are consumed by the flow engine only")

// GetPARSession implements fosite.PARStorage. fedas never reaches it (see
// errPARViaFosite); it consumes nothing.
func (s *fositeStore) GetPARSession(context.Context, string) (fosite.AuthorizeRequester, error) {
	return nil, fosite.ErrServerError.WithWrap(errPARViaFosite)
}

// DeletePARSession implements fosite.PARStorage; GetPARSession already
// consumed the request.
func (s *fositeStore) DeletePARSession(context.Context, string) error { return nil }
