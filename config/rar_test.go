package config_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/rar"
)

func paymentType() config.AuthorizationDetailsType {
	return config.AuthorizationDetailsType{
		Type: "payment_initiation",
		Fields: map[string]config.AuthorizationDetailsField{
			"creditorName":     {Required: true, Type: "string"},
			"instructedAmount": {Required: true, Type: "object"},
		},
		TransactionData: &config.TransactionDataMapping{Type: "urn:eudi:sca:payment:1", Payload: map[string]string{"payee": "creditorName"}},
	}
}

// TestValidate_AuthorizationDetailsTypes: every misconfigured RAR type,
// mapping or client reference is reported with its path.
func TestValidate_AuthorizationDetailsTypes(t *testing.T) {
	for name, tc := range map[string]struct {
		edit func(c *config.Config)
		want string // "" means valid
	}{
		"valid": {edit: func(c *config.Config) {}},
		"openid_credential": {edit: func(c *config.Config) {
			c.AuthorizationDetailsTypes = append(c.AuthorizationDetailsTypes, config.AuthorizationDetailsType{Type: "openid_credential", CredentialConfigurationIDs: []string{"pid"}})
		}},
		"no type": {edit: func(c *config.Config) { c.AuthorizationDetailsTypes[0].Type = "" }, want: "authorization_details_types[0].type: required"},
		"duplicate": {edit: func(c *config.Config) {
			c.AuthorizationDetailsTypes = append(c.AuthorizationDetailsTypes, paymentType())
		}, want: `authorization_details_types[1].type: "payment_initiation" duplicates authorization_details_types[0]`},
		"bad field type": {edit: func(c *config.Config) {
			c.AuthorizationDetailsTypes[0].Fields["x"] = config.AuthorizationDetailsField{Type: "int"}
		}, want: `authorization_details_types[0].fields.x.type: "int" is not one of`},
		"enum on a number": {edit: func(c *config.Config) {
			c.AuthorizationDetailsTypes[0].Fields["x"] = config.AuthorizationDetailsField{Type: "number", Enum: []string{"1"}}
		}, want: "fields.x.enum: only string fields"},
		"type as a field": {edit: func(c *config.Config) {
			c.AuthorizationDetailsTypes[0].Fields["type"] = config.AuthorizationDetailsField{Type: "string"}
		}, want: "fields.type: type is every detail's own member"},
		"openid_credential without ids": {edit: func(c *config.Config) {
			c.AuthorizationDetailsTypes = append(c.AuthorizationDetailsTypes, config.AuthorizationDetailsType{Type: "openid_credential"})
		}, want: "authorization_details_types[1].credential_configuration_ids: required for openid_credential"},
		"ids on another type": {edit: func(c *config.Config) {
			c.AuthorizationDetailsTypes[0].CredentialConfigurationIDs = []string{"pid"}
		}, want: "credential_configuration_ids: only for type openid_credential"},
		"mapping without a type": {edit: func(c *config.Config) { c.AuthorizationDetailsTypes[0].TransactionData.Type = "" }, want: "transaction_data.type: required"},
		"reserved payload member": {edit: func(c *config.Config) {
			c.AuthorizationDetailsTypes[0].TransactionData.Payload["credential_ids"] = "creditorName"
		}, want: "transaction_data.payload.credential_ids: reserved"},
		"payload of an unknown field": {edit: func(c *config.Config) {
			c.AuthorizationDetailsTypes[0].TransactionData.Payload["amount"] = "amount"
		}, want: `transaction_data.payload.amount: "amount" is not a field of type "payment_initiation"`},
		"nested payload (TS12 payload object)": {edit: func(c *config.Config) {
			c.AuthorizationDetailsTypes[0].TransactionData.Payload = map[string]string{"payload.payee": "creditorName", "payload.amount": "instructedAmount"}
		}},
		"payload member and its parent": {edit: func(c *config.Config) {
			c.AuthorizationDetailsTypes[0].TransactionData.Payload = map[string]string{"payload": "creditorName", "payload.amount": "instructedAmount"}
		}, want: `transaction_data.payload.payload: the transaction data member 'payload' is also the object of 'payload.amount'`},
		"reserved nested root": {edit: func(c *config.Config) {
			c.AuthorizationDetailsTypes[0].TransactionData.Payload["type.x"] = "creditorName"
		}, want: "transaction_data.payload.type.x: reserved"},
		"client names an unknown type": {edit: func(c *config.Config) {
			c.Clients[0].AuthorizationDetailsTypes = []string{"account_information"}
		}, want: `clients[0].authorization_details_types[0]: "account_information" is not in authorization_details_types`},
	} {
		t.Run(name, func(t *testing.T) {
			c := config.Default()
			c.AuthorizationDetailsTypes = []config.AuthorizationDetailsType{paymentType()}
			c.Clients[0].AuthorizationDetailsTypes = []string{"payment_initiation"}
			tc.edit(c)
			err := c.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestRARTypes: the configured types and mappings as the rar package
// takes them; openid_credential is the built-in type.
func TestRARTypes(t *testing.T) {
	c := config.Default()
	c.AuthorizationDetailsTypes = []config.AuthorizationDetailsType{paymentType(), {Type: "openid_credential", CredentialConfigurationIDs: []string{"pid"}}}
	types := c.RARTypes()
	require.Equal(t, rar.OpenIDCredentialType([]string{"pid"}), types["openid_credential"])
	require.True(t, types["payment_initiation"].Fields["creditorName"].Required)
	require.Equal(t, map[string]rar.Mapping{"payment_initiation": {Type: "urn:eudi:sca:payment:1", Payload: map[string]string{"payee": "creditorName"}}}, c.RARMappings())
}
