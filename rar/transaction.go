package rar

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// HashAlg is the one transaction_data_hashes_alg fedas offers
// (OpenID4VP 1.0 Appendix B.3.3.1: sha-256 is the default every wallet
// supports).
const HashAlg = "sha-256"

// Mapping turns details of one authorization details type into
// OpenID4VP transaction data of a type the target credential declares.
type Mapping struct {
	// Type is the transaction data type (OpenID4VP 1.0 §5.1), e.g. a
	// payment type of the EUDI SCA rulebook. Never invented: a wallet
	// must refuse a request carrying a type it does not know (§8.4).
	Type string
	// CredentialIDs are the DCQL credential query ids the entry binds
	// (§5.1 credential_ids); empty means every id of the query.
	CredentialIDs []string
	// Payload maps transaction data member names to the detail's member
	// names; a member the detail lacks is left out. A dotted name nests:
	// "payload.amount" is member amount of object payload, the shape of
	// the EUDI SCA rulebook (TS12 §4.2: the transaction details sit in a
	// payload object).
	Payload map[string]string
}

// CheckPayloadName reports why a Mapping.Payload name cannot be used: an
// empty segment, a Reserved first segment, or a name that is also the
// parent object of another name in all (both would set the same member).
func CheckPayloadName(name string, all []string) error {
	segs := strings.Split(name, ".")
	for _, s := range segs {
		if s == "" {
			return fmt.Errorf("rar: the transaction data member %s has an empty segment", quote(name))
		}
	}
	if slices.Contains(Reserved, segs[0]) {
		return fmt.Errorf("rar: the reserved member %s is set by fedas", quote(segs[0]))
	}
	for _, o := range all {
		if strings.HasPrefix(o, name+".") {
			return fmt.Errorf("rar: the transaction data member %s is also the object of %s", quote(name), quote(o))
		}
	}
	return nil
}

// Reserved are the transaction data members fedas sets itself: a
// Mapping's Payload must not name them (config.Validate refuses it).
var Reserved = []string{"type", "credential_ids", "transaction_data_hashes_alg"}

// TransactionData builds the OpenID4VP transaction_data request
// parameter (OpenID4VP 1.0 §5.1, §8.4, Appendix B.3.3) for details: for
// each detail whose type has a mapping, one base64url (no padding) string
// of the canonical JSON object {type, credential_ids,
// transaction_data_hashes_alg: ["sha-256"], mapped members}. A detail
// type without a mapping yields no entry: no generic type is ever
// invented. credentialIDs are the ids of the DCQL query the request
// carries: a mapping's CredentialIDs must be among them. The wallet
// hashes the exact strings returned (Appendix B.3.3.1), so the caller
// stores them as they are.
func TransactionData(details []Detail, mappings map[string]Mapping, credentialIDs []string) ([]string, error) {
	var out []string
	for _, d := range details {
		m, ok := mappings[d.typ]
		if !ok {
			continue
		}
		if m.Type == "" {
			return nil, fmt.Errorf("rar: the mapping of %s has no transaction data type", quote(d.typ))
		}
		ids := m.CredentialIDs
		if len(ids) == 0 {
			ids = credentialIDs
		}
		if len(ids) == 0 {
			return nil, errors.New("rar: transaction data needs at least one credential id")
		}
		for _, id := range ids {
			if !slices.Contains(credentialIDs, id) {
				return nil, fmt.Errorf("rar: credential id %s is not in the query", quote(id))
			}
		}
		obj := map[string]any{}
		names := make([]string, 0, len(m.Payload))
		for tdName := range m.Payload {
			names = append(names, tdName)
		}
		for tdName, field := range m.Payload {
			if err := CheckPayloadName(tdName, names); err != nil {
				return nil, fmt.Errorf("rar: the mapping of %s: %w", quote(d.typ), err)
			}
			if v, ok := d.fields[field]; ok {
				setMember(obj, strings.Split(tdName, "."), v)
			}
		}
		obj["type"] = m.Type
		obj["credential_ids"] = slices.Clone(ids)
		obj["transaction_data_hashes_alg"] = []string{HashAlg}
		b, err := canonical(obj)
		if err != nil {
			return nil, err
		}
		out = append(out, base64.RawURLEncoding.EncodeToString(b))
	}
	return out, nil
}

// setMember sets obj[path[0]]...[path[n-1]] = v, making the objects on
// the way (CheckPayloadName ruled out a member that is both).
func setMember(obj map[string]any, path []string, v any) {
	for _, p := range path[:len(path)-1] {
		next, ok := obj[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			obj[p] = next
		}
		obj = next
	}
	obj[path[len(path)-1]] = v
}
