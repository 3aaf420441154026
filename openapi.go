// Package sessiond holds what belongs to the whole module: the OpenAPI
// document the server implements.
package sessiond

import _ "embed"

// OpenAPI is openapi.yaml, served at GET /openapi.yaml and used by the
// tests to validate every request and response.
//
//go:embed openapi.yaml
var OpenAPI []byte
