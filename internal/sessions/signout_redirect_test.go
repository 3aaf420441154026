package sessions

import (
	"context"
	"testing"
	"time"
)

// holderAt returns the clock of a test, a token and an active session,
// created and last active idle ago.
func holderAt(t *testing.T, idle time.Duration) (time.Time, string, Session) {
	t.Helper()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	token, err := newToken()
	if err != nil {
		t.Fatal(err)
	}
	return now, token, Session{ID: newID(sessionIDPrefix, now), UserID: "alice", ClientID: newID(clientIDPrefix, now),
		Status: StatusActive, CreatedAt: now.Add(-idle), LastActiveAt: now.Add(-idle), ExpiresAt: now.Add(time.Hour)}
}

// TestSignOutWithABadRedirectWritesNothing: DELETE /session checks its
// redirect URL in one place, before any transaction; a bad one answers
// after a refused credential and a bad session ID would have, finding
// that out with one read and no write (no activity touched, nothing
// locked or ended).
func TestSignOutWithABadRedirectWritesNothing(t *testing.T) {
	ctx := context.Background()
	// Last active an hour ago: an Authenticate would write its activity.
	now, token, self := holderAt(t, time.Hour)
	for _, c := range []struct {
		name string
		req  SignOutRequest
		code string
	}{
		{"plain", SignOutRequest{Token: token, RedirectURL: "https://evil.example/"}, CodeInvalidRedirectURL},
		{"named", SignOutRequest{Token: token, SessionID: self.ID, NamesSession: true, RedirectURL: "https://evil.example/"}, CodeInvalidRedirectURL},
		{"named, bad ID", SignOutRequest{Token: token, SessionID: "sess_x", NamesSession: true, RedirectURL: "https://evil.example/"}, CodeInvalidID},
		{"named, empty ID", SignOutRequest{Token: token, NamesSession: true, RedirectURL: "https://evil.example/"}, CodeInvalidID},
		{"malformed token", SignOutRequest{Token: "st_short", RedirectURL: "https://evil.example/"}, CodeUnauthenticated},
		{"backend", SignOutRequest{Backend: true, RedirectURL: "https://evil.example/"}, CodeForbidden},
	} {
		t.Run(c.name, func(t *testing.T) {
			store := &fakeStore{known: map[TokenHash]Session{HashToken(token): self}}
			svc := NewService(store, Config{Mode: ModeMulti, Lifetime: 2 * time.Hour, Now: func() time.Time { return now }})
			if _, err := svc.SignOut(ctx, c.req); codeOf(err) != c.code {
				t.Fatalf("SignOut: %v, want %s", err, c.code)
			}
			if store.touches != 0 || store.txs != 0 || len(store.lookups) > 1 {
				t.Errorf("%d look-ups, %d touches, %d transactions: want at most the token's read", len(store.lookups), store.touches, store.txs)
			}
		})
	}
}
