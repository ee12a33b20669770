package rar

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func testTypes() map[string]TypeConfig {
	return map[string]TypeConfig{
		"payment_initiation": {Fields: map[string]FieldConfig{
			"instructedAmount": {Required: true, Type: TypeObject},
			"creditorName":     {Required: true, Type: TypeString},
			"currency":         {Type: TypeString, Enum: []string{"EUR", "CHF"}},
			"urgent":           {Type: TypeBoolean},
			"count":            {Type: TypeNumber},
			"locations":        {Type: TypeArray},
		}},
		OpenIDCredential: OpenIDCredentialType([]string{"pid_sd_jwt"}),
	}
}

const payment = `[{"type":"payment_initiation","instructedAmount":{"currency":"EUR","amount":"123.50"},"creditorName":"Merchant A"}]`

// TestParse_Refusals: every malformed or not-allowed authorization_details
// is refused with ErrInvalid (RFC 9396 §5 invalid_authorization_details),
// and its message names no value.
func TestParse_Refusals(t *testing.T) {
	deep := `[{"type":"payment_initiation","creditorName":"x","instructedAmount":` + strings.Repeat(`{"a":`, MaxDepth) + `1` + strings.Repeat(`}`, MaxDepth) + `}]`
	many := "[" + strings.TrimSuffix(strings.Repeat(`{"type":"openid_credential","credential_configuration_id":"pid_sd_jwt"},`, MaxDetails+1), ",") + "]"
	big := `[{"type":"payment_initiation","instructedAmount":{},"creditorName":"` + strings.Repeat("x", MaxBytes) + `"}]`
	cases := []struct {
		name, raw, want string
		types           map[string]TypeConfig
	}{
		{name: "not JSON", raw: `[{`, want: "not valid JSON"},
		{name: "not an array", raw: `{"type":"payment_initiation"}`, want: "must be a JSON array"},
		{name: "string", raw: `"payment_initiation"`, want: "must be a JSON array"},
		{name: "empty array", raw: `[]`, want: "empty"},
		{name: "element not an object", raw: `["payment_initiation"]`, want: "must be an object"},
		{name: "no type", raw: `[{"creditorName":"x"}]`, want: "needs a string type"},
		{name: "type not a string", raw: `[{"type":1}]`, want: "needs a string type"},
		{name: "unknown type", raw: `[{"type":"account_information"}]`, want: "'account_information' is not allowed for this client"},
		{name: "type not allowed for the client", raw: payment, types: map[string]TypeConfig{OpenIDCredential: OpenIDCredentialType([]string{"pid"})}, want: "not allowed for this client"},
		{name: "missing required field", raw: `[{"type":"payment_initiation","creditorName":"x"}]`, want: "'instructedAmount' is required"},
		{name: "field not allowed", raw: `[{"type":"payment_initiation","instructedAmount":{},"creditorName":"x","iban":"DE00"}]`, want: "'iban' is not allowed"},
		{name: "wrong type string", raw: `[{"type":"payment_initiation","instructedAmount":{},"creditorName":7}]`, want: "must be of type string"},
		{name: "wrong type object", raw: `[{"type":"payment_initiation","instructedAmount":"1","creditorName":"x"}]`, want: "must be of type object"},
		{name: "wrong type number", raw: `[{"type":"payment_initiation","instructedAmount":{},"creditorName":"x","count":"1"}]`, want: "must be of type number"},
		{name: "wrong type boolean", raw: `[{"type":"payment_initiation","instructedAmount":{},"creditorName":"x","urgent":1}]`, want: "must be of type boolean"},
		{name: "wrong type array", raw: `[{"type":"payment_initiation","instructedAmount":{},"creditorName":"x","locations":"a"}]`, want: "must be of type array"},
		{name: "null value", raw: `[{"type":"payment_initiation","instructedAmount":null,"creditorName":"x"}]`, want: "must be of type object"},
		{name: "enum", raw: `[{"type":"payment_initiation","instructedAmount":{},"creditorName":"x","currency":"USD"}]`, want: "not allowed"},
		{name: "duplicate member", raw: `[{"type":"payment_initiation","instructedAmount":{},"creditorName":"x","creditorName":"y"}]`, want: "duplicate member 'creditorName'"},
		{name: "duplicate type", raw: `[{"type":"openid_credential","type":"payment_initiation","instructedAmount":{},"creditorName":"x"}]`, want: "duplicate member 'type'"},
		{name: "duplicate by escape", raw: `[{"type":"payment_initiation","instructedAmount":{},"creditorName":"x","creditor\u004eame":"y"}]`, want: "duplicate member"},
		{name: "duplicate nested", raw: `[{"type":"payment_initiation","instructedAmount":{"a":1,"a":2},"creditorName":"x"}]`, want: "duplicate member 'a'"},
		{name: "too deep", raw: deep, want: "nested deeper"},
		{name: "too many", raw: many, want: "more than 10"},
		{name: "too large", raw: big, want: "larger than"},
		{name: "trailing data", raw: payment + `[]`, want: "data after"},
		{name: "invalid UTF-8", raw: "[{\"type\":\"payment_initiation\",\"instructedAmount\":{},\"creditorName\":\"\xff\"}]", want: "UTF-8"},
		{name: "credential configuration not configured", raw: `[{"type":"openid_credential","credential_configuration_id":"mdl"}]`, want: "not allowed"},
		{name: "credential configuration missing", raw: `[{"type":"openid_credential"}]`, want: "'credential_configuration_id' is required"},
		{name: "credential claims not an array", raw: `[{"type":"openid_credential","credential_configuration_id":"pid_sd_jwt","claims":{}}]`, want: "must be of type array"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			types := tc.types
			if types == nil {
				types = testTypes()
			}
			_, err := Parse(tc.raw, types)
			require.Error(t, err)
			require.True(t, errors.Is(err, ErrInvalid), "%v", err)
			require.Contains(t, err.Error(), tc.want)
			require.NotContains(t, err.Error(), "Merchant")
			require.NotContains(t, err.Error(), "USD")
			for _, r := range err.Error() {
				require.True(t, r >= 0x20 && r <= 0x7e && r != '"' && r != '\\', "error %q is outside RFC 6749 section 5.2 characters", err)
			}
		})
	}
}

// TestParse_Canonical: accepted details re-encode canonically (sorted
// members, no whitespace, numbers as sent), and the encoding parses back
// to itself.
func TestParse_Canonical(t *testing.T) {
	raw := ` [ { "creditorName" : "Merchant <A> & Co", "type":"payment_initiation",
	  "instructedAmount": {"currency":"EUR","amount":"123.50"}, "count": 1.50e2, "urgent": true },
	  {"type":"openid_credential","credential_configuration_id":"pid_sd_jwt","claims":[{"path":["given_name"]}]} ] `
	ds, err := Parse(raw, testTypes())
	require.NoError(t, err)
	require.Len(t, ds, 2)
	require.Equal(t, "payment_initiation", ds[0].Type())
	v, ok := ds[0].Field("count")
	require.True(t, ok)
	require.Equal(t, json.Number("1.50e2"), v)
	enc, err := Encode(ds)
	require.NoError(t, err)
	const want = `[{"count":1.50e2,"creditorName":"Merchant <A> & Co","instructedAmount":{"amount":"123.50","currency":"EUR"},"type":"payment_initiation","urgent":true},` +
		`{"claims":[{"path":["given_name"]}],"credential_configuration_id":"pid_sd_jwt","type":"openid_credential"}]`
	require.Equal(t, want, enc)
	again, err := Parse(enc, testTypes())
	require.NoError(t, err)
	enc2, err := Encode(again)
	require.NoError(t, err)
	require.Equal(t, enc, enc2)
	// Exactly MaxDepth levels are fine.
	ok3 := `[{"type":"payment_initiation","creditorName":"x","instructedAmount":` + strings.Repeat(`{"a":`, MaxDepth-2) + `1` + strings.Repeat(`}`, MaxDepth-2) + `}]`
	_, err = Parse(ok3, testTypes())
	require.NoError(t, err)
}

// TestTransactionData_Vectors: the exact base64url strings for a mapped
// payment detail (OpenID4VP 1.0 §5.1, Appendix B.3.3), their decoded
// JSON, and no entry (never a generic type) for a type without a mapping.
func TestTransactionData_Vectors(t *testing.T) {
	ds, err := Parse(`[{"type":"payment_initiation","instructedAmount":{"currency":"EUR","amount":"123.50"},"creditorName":"Merchant A"},`+
		`{"type":"openid_credential","credential_configuration_id":"pid_sd_jwt"}]`, testTypes())
	require.NoError(t, err)
	mappings := map[string]Mapping{"payment_initiation": {
		Type:    "urn:eudi:sca:payment:1",
		Payload: map[string]string{"payee": "creditorName", "amount": "instructedAmount", "reference": "absent"},
	}}
	td, err := TransactionData(ds, mappings, []string{"pid"})
	require.NoError(t, err)
	require.Equal(t, []string{"eyJhbW91bnQiOnsiYW1vdW50IjoiMTIzLjUwIiwiY3VycmVuY3kiOiJFVVIifSwiY3JlZGVudGlhbF9pZHMiOlsicGlkIl0sInBheWVlIjoiTWVyY2hhbnQgQSIsInRyYW5zYWN0aW9uX2RhdGFfaGFzaGVzX2FsZyI6WyJzaGEtMjU2Il0sInR5cGUiOiJ1cm46ZXVkaTpzY2E6cGF5bWVudDoxIn0"}, td)
	b, err := base64.RawURLEncoding.DecodeString(td[0])
	require.NoError(t, err)
	require.Equal(t, `{"amount":{"amount":"123.50","currency":"EUR"},"credential_ids":["pid"],"payee":"Merchant A","transaction_data_hashes_alg":["sha-256"],"type":"urn:eudi:sca:payment:1"}`, string(b))
	var obj map[string]any
	require.NoError(t, json.Unmarshal(b, &obj))
	require.Equal(t, "urn:eudi:sca:payment:1", obj["type"])

	// Configured credential ids must be in the query.
	m := mappings["payment_initiation"]
	m.CredentialIDs = []string{"pid", "card"}
	_, err = TransactionData(ds, map[string]Mapping{"payment_initiation": m}, []string{"pid"})
	require.ErrorContains(t, err, "'card' is not in the query")
	m.CredentialIDs = []string{"card"}
	td, err = TransactionData(ds, map[string]Mapping{"payment_initiation": m}, []string{"pid", "card"})
	require.NoError(t, err)
	b, _ = base64.RawURLEncoding.DecodeString(td[0])
	require.Contains(t, string(b), `"credential_ids":["card"]`)

	for name, tc := range map[string]struct {
		m   map[string]Mapping
		ids []string
		err string
	}{
		"no mapping: no entry":   {m: nil, ids: []string{"pid"}},
		"no credential ids":      {m: mappings, ids: nil, err: "at least one credential id"},
		"reserved member":        {m: map[string]Mapping{"payment_initiation": {Type: "x", Payload: map[string]string{"type": "creditorName"}}}, ids: []string{"pid"}, err: "reserved member 'type'"},
		"mapping without a type": {m: map[string]Mapping{"payment_initiation": {}}, ids: []string{"pid"}, err: "no transaction data type"},
	} {
		t.Run(name, func(t *testing.T) {
			td, err := TransactionData(ds, tc.m, tc.ids)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Empty(t, td)
		})
	}
}
