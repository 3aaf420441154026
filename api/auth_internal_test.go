package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sessiond/sessiond/internal/pgtest"
	"github.com/sessiond/sessiond/internal/sessions"
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

// The plain DELETE /session (a session token, no session_id) is
// authenticated inside the sign-out's own transaction, not by
// authenticate: once it succeeded, whatever runs after the handler finds
// the caller, as on every other route, instead of callerOf's panic (a
// 500). Both credentials: a bearer token and the active cookie.
func TestPlainSignOutRecordsItsCaller(t *testing.T) {
	t.Parallel()
	store := pgtest.NewStore(t)
	svc := sessions.NewService(store, sessions.Config{Mode: sessions.ModeSingle, Lifetime: time.Hour, Retention: time.Hour})
	jar, err := newCookies(CookieSettings{Secure: true})
	if err != nil {
		t.Fatal(err)
	}
	h := &handlers{svc: svc, cookies: jar}
	for _, how := range []string{"bearer", "cookie"} {
		t.Run(how, func(t *testing.T) {
			signedIn, err := svc.SignIn(context.Background(), sessions.Backend("test"), sessions.SignInInput{UserID: "alice"})
			if err != nil {
				t.Fatal(err)
			}
			var seen sessions.Caller
			r := gin.New()
			r.DELETE("/session", h.signOut, func(c *gin.Context) { seen = callerOf(c) })
			req := httptest.NewRequest(http.MethodDelete, "/session", nil)
			if how == "bearer" {
				req.Header.Set("Authorization", "Bearer "+signedIn.Token)
			} else {
				req.AddCookie(&http.Cookie{Name: "__session", Value: signedIn.Token})
			}
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("DELETE /session: %d %s", rec.Code, rec.Body)
			}
			if seen.IsBackend() || seen.Session.ID != signedIn.Session.ID {
				t.Fatalf("the caller after the handler is %+v, want the holder of %s", seen, signedIn.Session.ID)
			}
		})
	}
}
