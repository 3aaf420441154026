package sessiond_test

import (
	"context"
	"sort"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/sessiond/sessiond"
)

// TestOpenAPIIsToolReady holds openapi.yaml to what generators and
// linters need, so an operation added later cannot quietly break them:
// every operation has a unique operationId, no HEAD operation is listed
// (HEAD answers every GET, as the description says), and every answer
// declares the X-Request-ID header the server always sends.
func TestOpenAPIIsToolReady(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(sessiond.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	paths := doc.Paths.InMatchingOrder()
	sort.Strings(paths)
	for _, path := range paths {
		for method, op := range doc.Paths.Value(path).Operations() {
			where := method + " " + path
			if method == "HEAD" {
				t.Errorf("%s: HEAD operations are not listed; every GET answers HEAD", where)
			}
			switch other, dup := seen[op.OperationID]; {
			case op.OperationID == "":
				t.Errorf("%s has no operationId", where)
			case dup:
				t.Errorf("%s and %s share the operationId %q", where, other, op.OperationID)
			}
			seen[op.OperationID] = where
			for status, resp := range op.Responses.Map() {
				h, ok := resp.Value.Headers["X-Request-ID"]
				if !ok || h.Value == nil || !h.Value.Required {
					t.Errorf("%s answer %s does not declare the required X-Request-ID header", where, status)
				}
			}
		}
	}
	if len(seen) < 13 {
		t.Errorf("found %d operations, want at least 13", len(seen))
	}
}
