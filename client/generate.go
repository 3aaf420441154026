package client

// The raw API client in ./gen is generated from openapi.yaml by
// oapi-codegen, whose version go.mod pins as a tool.
//go:generate go tool oapi-codegen -config gen/oapi-codegen.yaml ../openapi.yaml
