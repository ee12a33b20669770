package dcql

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
)

// Matching errors (OpenID4VP 1.0 §8.6, §14.9). Each wraps ErrNoMatch so a
// caller can map every one to a single refusal.
var (
	// ErrNoMatch: the vp_token does not satisfy the query.
	ErrNoMatch = errors.New("dcql: presentation does not satisfy the query")
	// ErrUnknownCredential: a vp_token key is not a credential query id.
	ErrUnknownCredential = fmt.Errorf("%w: unknown credential query id", ErrNoMatch)
	// ErrCardinality: an entry is empty, or holds several presentations for
	// a query without multiple.
	ErrCardinality = fmt.Errorf("%w: wrong number of presentations", ErrNoMatch)
	// ErrFormat: a presentation's format differs from the query's.
	ErrFormat = fmt.Errorf("%w: wrong format", ErrNoMatch)
	// ErrVCT: a presentation's vct is not in meta.vct_values.
	ErrVCT = fmt.Errorf("%w: vct not requested", ErrNoMatch)
	// ErrClaims: requested claims are missing or have none of the values.
	ErrClaims = fmt.Errorf("%w: requested claims not satisfied", ErrNoMatch)
	// ErrHolderBinding: holder binding required but not verified.
	ErrHolderBinding = fmt.Errorf("%w: holder binding required", ErrNoMatch)
	// ErrCredentialSets: a required credential set (or, without
	// credential_sets, a credential query) is not satisfied.
	ErrCredentialSets = fmt.Errorf("%w: required credentials missing", ErrNoMatch)
)

// Presented is the view of one verified presentation that Match needs. It
// must come from a verifier (dc/sdjwt) that has checked signatures,
// disclosures, key binding, nonce and audience; Match trusts it.
type Presented struct {
	// Format is the credential format identifier, e.g. FormatSDJWTVC.
	Format string
	// VCT is the verified vct claim (SD-JWT VC §3.2.2.1).
	VCT string
	// Claims is the processed payload (RFC 9901 §7.1 step 5 output),
	// decoded by encoding/json.
	Claims map[string]any
	// HolderBound: a key-binding proof was verified for this presentation.
	HolderBound bool
}

// Result says how a vp_token satisfied a query.
type Result struct {
	// Credentials maps each credential query id present in the vp_token to
	// how each of its presentations matched, in vp_token order.
	Credentials map[string][]CredentialMatch
	// CredentialSets holds, per credential set in query order, the index of
	// the first option satisfied, or -1 (only for an optional set).
	CredentialSets []int
}

// CredentialMatch describes one matched presentation.
type CredentialMatch struct {
	// ClaimSet is the index of the first claim set satisfied, or -1 when the
	// query has no claim_sets.
	ClaimSet int
}

// Match checks that vpToken — the vp_token object (OpenID4VP 1.0 §8.1),
// keyed by credential query id, its presentations already verified —
// satisfies q (§8.6 and §6.4). It is all-or-nothing: any presentation that
// does not satisfy its credential query fails the whole response rather
// than being discarded, since a conforming wallet never sends one.
//
// The claims checked for a presentation are all of q's claims without
// claim_sets, or else the first claim set (query order, §6.4.1) whose claims
// are all present; a claim with values must have one of them (best effort,
// never a security check: see doc.go). A presentation for an optional
// credential query (one in no required credential set) is checked the same
// way. An invalid q fails with the Validate error (ErrInvalidQuery, ...).
func Match(q *Query, vpToken map[string][]Presented) (*Result, error) {
	// Validate again (bounded, cheap): a Query built in code gets the same
	// guarantees (unique ids, known claim ids) as one from Parse.
	if err := q.Validate(); err != nil {
		return nil, err
	}
	byID := make(map[string]*CredentialQuery, len(q.Credentials))
	for i := range q.Credentials {
		byID[q.Credentials[i].ID] = &q.Credentials[i]
	}
	// Sorted keys: the first error reported does not depend on map order.
	keys := make([]string, 0, len(vpToken))
	for k := range vpToken {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	res := &Result{Credentials: make(map[string][]CredentialMatch, len(vpToken))}
	for _, id := range keys {
		cq, ok := byID[id]
		if !ok {
			return nil, fmt.Errorf("%w: a vp_token key is not in the query", ErrUnknownCredential)
		}
		pres := vpToken[id]
		if len(pres) == 0 {
			return nil, fmt.Errorf("%w: credential %q: empty array", ErrCardinality, id)
		}
		if len(pres) > 1 && !cq.Multiple {
			return nil, fmt.Errorf("%w: credential %q: %d presentations without multiple", ErrCardinality, id, len(pres))
		}
		ms := make([]CredentialMatch, 0, len(pres))
		for i, p := range pres {
			m, err := matchOne(cq, p)
			if err != nil {
				return nil, fmt.Errorf("credential %q[%d]: %w", id, i, err)
			}
			ms = append(ms, m)
		}
		res.Credentials[id] = ms
	}
	present := func(id string) bool { _, ok := res.Credentials[id]; return ok }
	if len(q.CredentialSets) == 0 {
		// §6.4: without credential_sets every credential query is required.
		for _, c := range q.Credentials {
			if !present(c.ID) {
				return nil, fmt.Errorf("%w: credential %q", ErrCredentialSets, c.ID)
			}
		}
		return res, nil
	}
	res.CredentialSets = make([]int, len(q.CredentialSets))
	for i, s := range q.CredentialSets {
		res.CredentialSets[i] = -1
		for j, opt := range s.Options {
			all := true
			for _, id := range opt {
				if !present(id) {
					all = false
					break
				}
			}
			if all {
				res.CredentialSets[i] = j
				break
			}
		}
		if res.CredentialSets[i] < 0 && s.Required {
			return nil, fmt.Errorf("%w: credential_sets[%d] has no satisfied option", ErrCredentialSets, i)
		}
	}
	return res, nil
}

func matchOne(cq *CredentialQuery, p Presented) (CredentialMatch, error) {
	m := CredentialMatch{ClaimSet: -1}
	if p.Format != cq.Format {
		return m, ErrFormat
	}
	vctOK := false
	for _, v := range cq.Meta.VCTValues {
		if p.VCT == v {
			vctOK = true
			break
		}
	}
	if !vctOK {
		return m, ErrVCT
	}
	if cq.RequireCryptographicHolderBinding && !p.HolderBound {
		return m, ErrHolderBinding
	}
	if len(cq.Claims) == 0 {
		return m, nil
	}
	if len(cq.ClaimSets) == 0 {
		for j := range cq.Claims {
			if err := claimSatisfied(&cq.Claims[j], p.Claims); err != nil {
				return m, err
			}
		}
		return m, nil
	}
	byID := make(map[string]*ClaimQuery, len(cq.Claims))
	for j := range cq.Claims {
		byID[cq.Claims[j].ID] = &cq.Claims[j]
	}
	ok := make(map[string]bool, len(cq.Claims))
	for k, set := range cq.ClaimSets {
		all := true
		for _, id := range set {
			sat, seen := ok[id]
			if !seen {
				sat = claimSatisfied(byID[id], p.Claims) == nil
				ok[id] = sat
			}
			if !sat {
				all = false
				break
			}
		}
		if all {
			m.ClaimSet = k
			return m, nil
		}
	}
	return m, fmt.Errorf("%w: no claim set satisfied", ErrClaims)
}

// claimSatisfied: the path selects something (§7.2) and, when values is
// given, one selected element equals one value in type and value (§6.3).
func claimSatisfied(cl *ClaimQuery, claims map[string]any) error {
	if cl == nil {
		return fmt.Errorf("%w: unknown claim id", ErrClaims)
	}
	sel, err := Resolve(claims, cl.Path)
	if err != nil {
		return fmt.Errorf("%w: %s missing", ErrClaims, cl.Path)
	}
	if len(cl.Values) == 0 {
		return nil
	}
	for _, e := range sel {
		for _, v := range cl.Values {
			if valueEqual(e, v) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: %s has none of the requested values", ErrClaims, cl.Path)
}

// valueEqual compares a claim element with a query value (string, int64 or
// bool) exactly in type and value; a JSON number matches an integer value
// only when it is that integer.
func valueEqual(claim, want any) bool {
	switch w := want.(type) {
	case string:
		s, ok := claim.(string)
		return ok && s == w
	case bool:
		b, ok := claim.(bool)
		return ok && b == w
	case int64:
		switch c := claim.(type) {
		case float64:
			return c == math.Trunc(c) && c >= -(1<<63) && c < 1<<63 && int64(c) == w
		case json.Number:
			n, err := c.Int64()
			return err == nil && n == w
		case int:
			return int64(c) == w
		case int64:
			return c == w
		}
	}
	return false
}
