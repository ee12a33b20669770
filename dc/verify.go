package dc

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/fedas/fedas/dc/dcql"
	"github.com/fedas/fedas/dc/sdjwt"
	"github.com/fedas/fedas/dc/statuslist"
)

// Response validation errors (OpenID4VP 1.0 §8.6). Each wraps
// ErrRejected, so a caller can map all of them to one refusal.
var (
	ErrRejected = errors.New("dc: vp_token rejected")
	// ErrPolicy: the Policy is unusable (no query, nonce or audience).
	ErrPolicy = fmt.Errorf("%w: invalid policy", ErrRejected)
	// ErrUnknownQuery: a vp_token key is not a credential query id (§8.1).
	ErrUnknownQuery = fmt.Errorf("%w: unknown credential query id", ErrRejected)
	// ErrCardinality: an empty entry, or several presentations without multiple.
	ErrCardinality = fmt.Errorf("%w: wrong number of presentations", ErrRejected)
	// ErrIssuer: the iss is not a trusted issuer, or its key or alg is not
	// acceptable for it (SD-JWT VC §3–§4).
	ErrIssuer = fmt.Errorf("%w: issuer not trusted", ErrRejected)
	// ErrPresentation: the SD-JWT (+KB) failed verification; the dc/sdjwt
	// sentinel is wrapped too (errors.Is(err, sdjwt.ErrKB)...).
	ErrPresentation = fmt.Errorf("%w: presentation invalid", ErrRejected)
	// ErrVCT: the vct is not allowed for the issuer or not requested.
	ErrVCT = fmt.Errorf("%w: vct not allowed", ErrRejected)
	// ErrMatch: the presentations do not satisfy the DCQL query (wraps the
	// dcql sentinel).
	ErrMatch = fmt.Errorf("%w: query not satisfied", ErrRejected)
	// ErrStatus: the status is not VALID, or its list is not acceptable
	// (a list that cannot be fetched is ErrUnavailable instead).
	ErrStatus = fmt.Errorf("%w: credential status not valid", ErrRejected)
	// ErrStatusMissing: the issuer requires a status claim and there is none.
	ErrStatusMissing = fmt.Errorf("%w: status claim required", ErrRejected)
	// ErrSubject: the subject claim is missing or not a single scalar.
	ErrSubject = fmt.Errorf("%w: subject claim missing", ErrRejected)
)

// TrustedIssuer is one configured credential issuer (docs/architecture.md "Local steps"). Exactly one of Keys and X5CRoots is set.
type TrustedIssuer struct {
	// Issuer is the exact iss value.
	Issuer string
	// Keys is a static JWKS; the issuer JWT's kid selects the key (a single
	// key also serves a JWT without kid).
	Keys *jose.JSONWebKeySet
	// X5CRoots validate the x5c chain; the leaf must be bound to Issuer.
	X5CRoots *x509.CertPool
	// VCTValues are the vct values this issuer may issue.
	VCTValues []string
	// Algs restrict the issuer JWT alg (within sdjwt.AllowedAlgs); empty:
	// the sdjwt allowlist.
	Algs []jose.SignatureAlgorithm
	// StatusRequired refuses credentials without a status claim.
	StatusRequired bool
	// SubjectClaim is the path of a stable, never reassigned claim
	// identifying the subject (OpenID4VP §14.4), e.g. ["sub"].
	SubjectClaim dcql.Path
}

// Policy is the verifier's expectation for one response.
type Policy struct {
	Issuers []TrustedIssuer
	Query   *dcql.Query
	// Nonce and Audience are the exact expected KB-JWT nonce and aud (the
	// full client_id with prefix, or the origin for the DC API; §8.6, §14.8).
	Nonce, Audience string
	// Now is the clock (required).
	Now func() time.Time
	// KBMaxAge bounds the KB-JWT age (0: sdjwt default).
	KBMaxAge time.Duration
	// KeepClaims are the top-level claim names copied to
	// VerifiedCredential.Claims; everything else is dropped (data
	// minimisation, docs/architecture.md "Local steps" storage).
	KeepClaims []string
}

// VerifiedCredential is one verified, matched presentation.
type VerifiedCredential struct {
	QueryID string
	Issuer  string
	VCT     string
	// Subject is Issuer + "|" + the SubjectClaim value (OpenID4VP §14.4).
	Subject string
	// Claims holds only the Policy.KeepClaims present.
	Claims map[string]any
	// HolderThumbprint is the RFC 7638 thumbprint of cnf.jwk.
	HolderThumbprint string
	// TransactionDataHashes from the KB-JWT, for the caller to compare (§8.4).
	TransactionDataHashes    []string
	TransactionDataHashesAlg string
}

// StatusChecker resolves a credential's status claim (Token Status List
// §8.3). *statuslist.Client implements it.
type StatusChecker interface {
	Check(ctx context.Context, statusClaim json.RawMessage) (statuslist.Status, error)
}

var _ StatusChecker = (*statuslist.Client)(nil)

var sdjwtErrs = []error{
	sdjwt.ErrOptions, sdjwt.ErrTooLarge, sdjwt.ErrMalformed, sdjwt.ErrAlg, sdjwt.ErrTyp,
	sdjwt.ErrIssuerKey, sdjwt.ErrSignature, sdjwt.ErrSDAlg, sdjwt.ErrDisclosure,
	sdjwt.ErrDuplicateDigest, sdjwt.ErrUnreferenced, sdjwt.ErrForbiddenDisclose,
	sdjwt.ErrClaims, sdjwt.ErrExpired, sdjwt.ErrNotYetValid, sdjwt.ErrKBRequired, sdjwt.ErrKB,
}

// sentinel reduces err to its first known sentinel, so no message text
// from deeper layers (which might quote input) reaches our errors.
func sentinel(err error, known []error) error {
	for _, s := range known {
		if errors.Is(err, s) {
			return s
		}
	}
	return errors.New("unclassified")
}

// VerifyVPToken validates an OpenID4VP 1.0 vp_token (§8.6 steps 1–7, see
// doc.go) against p and returns one VerifiedCredential per presentation, in
// sorted query id then vp_token order. Any failure rejects the whole
// response. status may be nil only if no presentation carries a status
// claim and no issuer requires one. A status list that cannot be fetched
// is ErrUnavailable (not ErrRejected): the presentation is not refused.
func VerifyVPToken(ctx context.Context, vpToken map[string][]string, p Policy, status StatusChecker) ([]VerifiedCredential, error) {
	if p.Query == nil || p.Now == nil || p.Nonce == "" || p.Audience == "" {
		return nil, fmt.Errorf("%w: Query, Now, Nonce and Audience are required", ErrPolicy)
	}
	if err := p.Query.Validate(); err != nil {
		return nil, fmt.Errorf("%w: query: %w", ErrPolicy, sentinel(err, []error{dcql.ErrInvalidQuery, dcql.ErrUnsupported, dcql.ErrTooLarge}))
	}
	byQuery := make(map[string]*dcql.CredentialQuery, len(p.Query.Credentials))
	for i := range p.Query.Credentials {
		byQuery[p.Query.Credentials[i].ID] = &p.Query.Credentials[i]
	}
	issuers := make(map[string]*TrustedIssuer, len(p.Issuers))
	for i := range p.Issuers {
		issuers[p.Issuers[i].Issuer] = &p.Issuers[i]
	}
	ids := make([]string, 0, len(vpToken))
	for id := range vpToken {
		ids = append(ids, id)
	}
	sort.Strings(ids)

	type verified struct {
		qid string
		ti  *TrustedIssuer
		v   *sdjwt.Verified
	}
	var all []verified
	views := make(map[string][]dcql.Presented, len(vpToken))
	for _, id := range ids {
		cq, ok := byQuery[id]
		if !ok {
			return nil, ErrUnknownQuery
		}
		pres := vpToken[id]
		if len(pres) == 0 || (len(pres) > 1 && !cq.Multiple) {
			return nil, fmt.Errorf("%w: credential %q", ErrCardinality, id)
		}
		if cq.Format != dcql.FormatSDJWTVC {
			return nil, fmt.Errorf("%w: credential %q: %w", ErrMatch, id, dcql.ErrFormat)
		}
		for i, s := range pres {
			var ti *TrustedIssuer
			opts := sdjwt.Options{
				IssuerKeys: func(iss string, h jose.Header) (crypto.PublicKey, error) {
					t, ok := issuers[iss]
					if !ok {
						return nil, ErrIssuer
					}
					ti = t
					return t.key(h, p.Now)
				},
				Now:       p.Now,
				RequireKB: cq.RequireCryptographicHolderBinding,
				Nonce:     p.Nonce,
				Audience:  p.Audience,
				KBMaxAge:  p.KBMaxAge,
			}
			v, err := sdjwt.Verify(s, opts)
			if err != nil {
				if errors.Is(err, ErrIssuer) || errors.Is(err, sdjwt.ErrIssuerKey) {
					return nil, fmt.Errorf("%w: credential %q[%d]", ErrIssuer, id, i)
				}
				return nil, fmt.Errorf("%w: credential %q[%d]: %w", ErrPresentation, id, i, sentinel(err, sdjwtErrs))
			}
			if ti == nil || v.Issuer != ti.Issuer {
				return nil, fmt.Errorf("%w: credential %q[%d]", ErrIssuer, id, i)
			}
			if !contains(ti.VCTValues, v.VCT) || !contains(cq.Meta.VCTValues, v.VCT) {
				return nil, fmt.Errorf("%w: credential %q[%d]", ErrVCT, id, i)
			}
			all = append(all, verified{id, ti, v})
			views[id] = append(views[id], dcql.Presented{Format: dcql.FormatSDJWTVC, VCT: v.VCT, Claims: v.Claims, HolderBound: v.KeyBound})
		}
	}
	if _, err := dcql.Match(p.Query, views); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMatch, sentinel(err, []error{
			dcql.ErrUnknownCredential, dcql.ErrCardinality, dcql.ErrFormat, dcql.ErrVCT,
			dcql.ErrClaims, dcql.ErrHolderBinding, dcql.ErrCredentialSets, dcql.ErrNoMatch,
			dcql.ErrInvalidQuery, dcql.ErrUnsupported, dcql.ErrTooLarge}))
	}
	out := make([]VerifiedCredential, 0, len(all))
	idx := map[string]int{}
	for _, e := range all {
		i := idx[e.qid]
		idx[e.qid]++
		where := fmt.Sprintf("credential %q[%d]", e.qid, i)
		if len(e.v.Status) == 0 {
			if e.ti.StatusRequired {
				return nil, fmt.Errorf("%w: %s", ErrStatusMissing, where)
			}
		} else {
			if status == nil {
				return nil, fmt.Errorf("%w: %s: no status checker", ErrStatus, where)
			}
			st, err := status.Check(ctx, e.v.Status)
			if errors.Is(err, statuslist.ErrFetch) {
				// The issuer's list could not be had (unreachable, 5xx,
				// timeout): a failing dependency, not a verdict on the
				// presentation. Nothing is decided; the caller answers 503
				// and the same response may be sent again (docs/protocol.md
				// "Failures").
				return nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, where, statuslist.ErrFetch)
			}
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrStatus, where, sentinel(err, statusErrs))
			}
			if st != statuslist.Valid {
				return nil, fmt.Errorf("%w: %s: %s", ErrStatus, where, st)
			}
		}
		sub, err := subject(e.ti, e.v.Claims)
		if err != nil {
			return nil, fmt.Errorf("%w: %s", ErrSubject, where)
		}
		out = append(out, VerifiedCredential{
			QueryID:                  e.qid,
			Issuer:                   e.v.Issuer,
			VCT:                      e.v.VCT,
			Subject:                  sub,
			Claims:                   keep(e.v.Claims, p.KeepClaims),
			HolderThumbprint:         e.v.HolderThumbprint,
			TransactionDataHashes:    e.v.TransactionDataHashes,
			TransactionDataHashesAlg: e.v.TransactionDataHashesAlg,
		})
	}
	return out, nil
}

var statusErrs = []error{
	statuslist.ErrMalformed, statuslist.ErrType, statuslist.ErrAlgorithm, statuslist.ErrSignature,
	statuslist.ErrSubject, statuslist.ErrIssuedAt, statuslist.ErrExpired, statuslist.ErrTTL,
	statuslist.ErrBits, statuslist.ErrEncoding, statuslist.ErrCompression, statuslist.ErrTooLarge,
	statuslist.ErrIndex, statuslist.ErrClaim, statuslist.ErrFetch, statuslist.ErrForbiddenURI,
	context.Canceled, context.DeadlineExceeded,
}

// key returns the issuer's key for header h: alg in the issuer's list,
// then a static key by kid or the x5c leaf chained to X5CRoots.
func (t *TrustedIssuer) key(h jose.Header, now func() time.Time) (crypto.PublicKey, error) {
	if len(t.Algs) > 0 {
		ok := false
		for _, a := range t.Algs {
			if string(a) == h.Algorithm {
				ok = true
			}
		}
		if !ok {
			return nil, ErrIssuer
		}
	}
	switch {
	case t.Keys != nil && t.X5CRoots == nil:
		var ks []jose.JSONWebKey
		if h.KeyID != "" {
			ks = t.Keys.Key(h.KeyID)
		} else if len(t.Keys.Keys) == 1 {
			ks = t.Keys.Keys
		}
		if len(ks) != 1 || !ks[0].IsPublic() {
			return nil, ErrIssuer
		}
		return ks[0].Key, nil
	case t.X5CRoots != nil && t.Keys == nil:
		k, err := sdjwt.X5CIssuerKeys(t.X5CRoots, now)(t.Issuer, h)
		if err != nil {
			return nil, ErrIssuer
		}
		return k, nil
	}
	return nil, ErrIssuer
}

// subject is iss|value of the SubjectClaim (OpenID4VP §14.4: a claim value
// is unique only within its issuer).
func subject(t *TrustedIssuer, claims map[string]any) (string, error) {
	if len(t.SubjectClaim) == 0 {
		return "", ErrSubject
	}
	vals, err := dcql.Resolve(claims, t.SubjectClaim)
	if err != nil || len(vals) != 1 {
		return "", ErrSubject
	}
	var s string
	switch v := vals[0].(type) {
	case string:
		s = v
	case json.Number:
		s = v.String()
	default:
		return "", ErrSubject
	}
	if s == "" {
		return "", ErrSubject
	}
	return t.Issuer + "|" + s, nil
}

func keep(claims map[string]any, names []string) map[string]any {
	out := map[string]any{}
	for _, n := range names {
		if v, ok := claims[n]; ok {
			out[n] = v
		}
	}
	return out
}

func contains(l []string, s string) bool {
	for _, e := range l {
		if e == s {
			return true
		}
	}
	return false
}
