package api

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

// TestAPIKeyMatcher: the matcher holds only the SHA-256 of each key, finds
// every configured key (the last of several too, since it compares against
// all of them), names it by its fingerprint, and refuses near misses.
func TestAPIKeyMatcher(t *testing.T) {
	keys := []string{"sk_first_0123456789abcdef", "sk_second_0123456789abcdef", "sk_third_0123456789abcdef"}
	k, err := parseAPIKeys(keys)
	if err != nil {
		t.Fatal(err)
	}
	if held := fmt.Sprintf("%+v", k); strings.Contains(held, "0123456789abcdef") {
		t.Fatalf("the matcher holds a key in the clear: %s", held)
	}
	for i, key := range keys {
		sum := sha256.Sum256([]byte(key))
		fp, ok := k.match(key)
		if !ok || fp != hex.EncodeToString(sum[:6]) {
			t.Errorf("key %d: match = %q, %v; want its fingerprint", i+1, fp, ok)
		}
	}
	last := keys[len(keys)-1]
	for _, miss := range []string{
		"", "sk_", last[:len(last)-1], last + "f", strings.ToUpper(last), " " + last, last[:len(last)-1] + "0",
		"sk_" + strings.Repeat("x", 300), "st_third_0123456789abcdef",
	} {
		if fp, ok := k.match(miss); ok {
			t.Errorf("match(%q) = %q: a near miss was accepted", miss, fp)
		}
	}
	if _, err := parseAPIKeys([]string{"sk_short"}); err == nil || strings.Contains(err.Error(), "sk_short") {
		t.Errorf("a too-short key: %v; want an error that does not quote it", err)
	}
}
