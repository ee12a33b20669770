// Package docs holds documents the binary serves: OpenAPI is the
// OpenAPI 3.1 description of the public endpoints (docs/openapi.json),
// served at /.well-known/openapi.json and checked against every exchange
// of the server package's tests (server/contract_test.go).
package docs

import _ "embed"

// OpenAPI is docs/openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte
