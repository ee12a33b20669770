package rar

import (
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTransactionData_Nested: dotted payload names build the EUDI SCA
// rulebook shape (TS12 §4.2: the details in a payload object) as the
// exact canonical string; a name that is also another's parent object,
// an empty segment or a reserved first segment is refused.
func TestTransactionData_Nested(t *testing.T) {
	types := map[string]TypeConfig{"sca_payment": {Fields: map[string]FieldConfig{
		"amount": {Type: TypeNumber}, "currency": {Type: TypeString}, "payee": {Type: TypeObject}}}}
	ds, err := Parse(`[{"type":"sca_payment","amount":9.90,"currency":"EUR","payee":{"name":"M","id":"1"}}]`, types)
	require.NoError(t, err)
	m := Mapping{Type: "urn:eudi:sca:payment:1", Payload: map[string]string{"payload.amount": "amount", "payload.currency": "currency", "payload.payee": "payee"}}
	td, err := TransactionData(ds, map[string]Mapping{"sca_payment": m}, []string{"pid"})
	require.NoError(t, err)
	want := `{"credential_ids":["pid"],"payload":{"amount":9.90,"currency":"EUR","payee":{"id":"1","name":"M"}},"transaction_data_hashes_alg":["sha-256"],"type":"urn:eudi:sca:payment:1"}`
	require.Equal(t, []string{base64.RawURLEncoding.EncodeToString([]byte(want))}, td)
	for name, payload := range map[string]map[string]string{
		"parent and child": {"payload": "payee", "payload.amount": "amount"},
		"empty segment":    {"payload..amount": "amount"},
		"reserved root":    {"type.x": "amount"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := TransactionData(ds, map[string]Mapping{"sca_payment": {Type: "x", Payload: payload}}, []string{"pid"})
			require.Error(t, err)
		})
	}
}
