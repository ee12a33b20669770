package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fedas/fedas/rar"
)

// AuthorizationDetailsType is one Rich Authorization Request type a
// client may be allowed (RFC 9396 §2; docs/protocol.md "Rich
// authorization requests"). The OpenID4VCI type openid_credential is
// built in: configure it with type: openid_credential and
// credential_configuration_ids, and no fields.
type AuthorizationDetailsType struct {
	// Type is the authorization details type name (the objects' "type"
	// member), published in authorization_details_types_supported
	// (RFC 9396 §10).
	Type string `yaml:"type"`
	// Fields are the members a detail of this type may carry besides
	// type, by name; any other member is invalid_authorization_details.
	Fields map[string]AuthorizationDetailsField `yaml:"fields"`
	// CredentialConfigurationIDs, for openid_credential only, are the
	// credential_configuration_id values a detail may name (OpenID4VCI
	// 1.0 §5.1.1); required for that type.
	CredentialConfigurationIDs []string `yaml:"credential_configuration_ids"`
	// TransactionData maps details of this type to OpenID4VP transaction
	// data when a presentation approves them (OpenID4VP 1.0 §5.1, §8.4).
	// Without it, a presentation carries no transaction data for the
	// type: fedas never invents a generic transaction data type.
	TransactionData *TransactionDataMapping `yaml:"transaction_data"`
}

// AuthorizationDetailsField is the rule for one member of a detail.
type AuthorizationDetailsField struct {
	// Required refuses a detail without the member.
	Required bool `yaml:"required"`
	// Type is the member's JSON type: string, number, boolean, object or
	// array.
	Type string `yaml:"type"`
	// Enum, for string members only, lists the values allowed.
	Enum []string `yaml:"enum"`
}

// TransactionDataMapping builds one OpenID4VP transaction data entry per
// detail: {type, credential_ids, transaction_data_hashes_alg: [sha-256],
// mapped payload members} (OpenID4VP 1.0 §5.1, Appendix B.3.3).
type TransactionDataMapping struct {
	// Type is the transaction data type the target credential declares
	// (e.g. a payment type of the EUDI SCA rulebook); wallets refuse
	// types they do not know (OpenID4VP 1.0 §8.4).
	Type string `yaml:"type"`
	// CredentialIDs are the DCQL credential query ids the entry binds;
	// empty means every id of the query.
	CredentialIDs []string `yaml:"credential_ids"`
	// Payload maps transaction data member names to the detail's member
	// names (each among fields); type, credential_ids and
	// transaction_data_hashes_alg are reserved. A dotted name nests:
	// payload.amount is member amount of object payload, the shape of
	// the EUDI SCA rulebook (TS12 §4.2).
	Payload map[string]string `yaml:"payload"`
}

// RARTypes returns the configured types for rar.Parse,
// by name.
func (c *Config) RARTypes() map[string]rar.TypeConfig {
	out := make(map[string]rar.TypeConfig, len(c.AuthorizationDetailsTypes))
	for _, t := range c.AuthorizationDetailsTypes {
		if t.Type == rar.OpenIDCredential {
			out[t.Type] = rar.OpenIDCredentialType(t.CredentialConfigurationIDs)
			continue
		}
		tc := rar.TypeConfig{Fields: make(map[string]rar.FieldConfig, len(t.Fields))}
		for name, f := range t.Fields {
			tc.Fields[name] = rar.FieldConfig{Required: f.Required, Type: f.Type, Enum: slices.Clone(f.Enum)}
		}
		out[t.Type] = tc
	}
	return out
}

// RARMappings returns the configured mappings for
// rar.TransactionData, by authorization details type.
func (c *Config) RARMappings() map[string]rar.Mapping {
	out := map[string]rar.Mapping{}
	for _, t := range c.AuthorizationDetailsTypes {
		if m := t.TransactionData; m != nil {
			p := make(map[string]string, len(m.Payload))
			for k, v := range m.Payload {
				p[k] = v
			}
			out[t.Type] = rar.Mapping{Type: m.Type, CredentialIDs: slices.Clone(m.CredentialIDs), Payload: p}
		}
	}
	return out
}

// validateRAR checks authorization_details_types and the clients'
// references to them.
func (c *Config) validateRAR() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	seen := map[string]int{}
	for i, t := range c.AuthorizationDetailsTypes {
		p := fmt.Sprintf("authorization_details_types[%d]", i)
		switch j, dup := seen[t.Type]; {
		case t.Type == "":
			add("%s.type: required", p)
		case !printableASCII(t.Type):
			add("%s.type: %q must be printable ASCII", p, t.Type)
		case dup:
			add("%s.type: %q duplicates authorization_details_types[%d]", p, t.Type, j)
		default:
			seen[t.Type] = i
		}
		if t.Type == rar.OpenIDCredential {
			if len(t.CredentialConfigurationIDs) == 0 {
				add("%s.credential_configuration_ids: required for openid_credential (OpenID4VCI 1.0 §5.1.1)", p)
			}
			if len(t.Fields) > 0 {
				add("%s.fields: openid_credential is built in (credential_configuration_id, claims, locations); set no fields", p)
			}
		} else if len(t.CredentialConfigurationIDs) > 0 {
			add("%s.credential_configuration_ids: only for type openid_credential", p)
		}
		for name, f := range t.Fields {
			fp := fmt.Sprintf("%s.fields.%s", p, name)
			switch {
			case name == "type":
				add("%s: type is every detail's own member; do not configure it", fp)
			case !rar.ValidFieldType(f.Type):
				add("%s.type: %q is not one of string, number, boolean, object, array", fp, f.Type)
			case len(f.Enum) > 0 && f.Type != rar.TypeString:
				add("%s.enum: only string fields take an enum", fp)
			}
		}
		if m := t.TransactionData; m != nil {
			mp := p + ".transaction_data"
			if m.Type == "" {
				add("%s.type: required (the transaction data type the credential declares; OpenID4VP 1.0 §8.4)", mp)
			}
			if len(m.Payload) == 0 {
				add("%s.payload: map at least one member", mp)
			}
			fields := c.RARTypes()[t.Type].Fields
			names := make([]string, 0, len(m.Payload))
			for td := range m.Payload {
				names = append(names, td)
			}
			for td, field := range m.Payload {
				switch err := rar.CheckPayloadName(td, names); {
				case err == nil:
				case slices.Contains(rar.Reserved, strings.Split(td, ".")[0]):
					add("%s.payload.%s: reserved (fedas sets type, credential_ids and transaction_data_hashes_alg)", mp, td)
				default:
					add("%s.payload.%s: %v", mp, td, strings.TrimPrefix(err.Error(), "rar: "))
				}
				if _, ok := fields[field]; !ok {
					add("%s.payload.%s: %q is not a field of type %q", mp, td, field, t.Type)
				}
			}
		}
	}
	for i, cl := range c.Clients {
		for j, t := range cl.AuthorizationDetailsTypes {
			if _, ok := seen[t]; !ok {
				add("clients[%d].authorization_details_types[%d]: %q is not in authorization_details_types", i, j, t)
			}
		}
	}
	return errs
}

// RARTypeNames lists the configured type names in configuration order:
// the metadata's authorization_details_types_supported (RFC 9396 §10).
func (c *Config) RARTypeNames() []string {
	out := make([]string, 0, len(c.AuthorizationDetailsTypes))
	for _, t := range c.AuthorizationDetailsTypes {
		out = append(out, t.Type)
	}
	return out
}
