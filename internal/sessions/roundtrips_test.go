package sessions

import (
	"context"
	"slices"
	"testing"
	"time"
)

// tripStore records the round trips a call makes to the database, as the
// Postgres store makes them: every statement is one, BEGIN travels with a
// transaction's first statement, COMMIT with the statement after
// CommitAfterNext (or on its own after fn). Every lock finds self, the one
// active session there is.
type tripStore struct {
	self  Session
	trips []string
}

func (s *tripStore) SessionByTokenHash(context.Context, TokenHash) (Session, error) {
	s.trips = append(s.trips, "SessionByTokenHash")
	return s.self, nil
}

func (s *tripStore) TouchSession(context.Context, string, time.Time) error {
	s.trips = append(s.trips, "TouchSession")
	return nil
}

func (s *tripStore) InTx(_ context.Context, fn func(Tx) error) error {
	tx := &tripTx{s: s, first: true}
	if err := fn(tx); err != nil {
		return err
	}
	if !tx.committed {
		s.trips = append(s.trips, "COMMIT")
	}
	return nil
}

type tripTx struct {
	s                            *tripStore
	first, commitNext, committed bool
}

func (t *tripTx) stmt(name string) {
	if t.first {
		name, t.first = "BEGIN+"+name, false
	}
	if t.commitNext {
		name, t.commitNext, t.committed = name+"+COMMIT", false, true
	}
	t.s.trips = append(t.s.trips, name)
}

func (t *tripTx) CommitAfterNext()                         { t.commitNext = true }
func (t *tripTx) LockClient(context.Context, string) error { t.stmt("LockClient"); return nil }
func (t *tripTx) ClientExists(context.Context, string) (bool, error) {
	t.stmt("ClientExists")
	return true, nil
}
func (t *tripTx) LockUser(context.Context, string) error           { t.stmt("LockUser"); return nil }
func (t *tripTx) LockSignIn(context.Context, string, string) error { t.stmt("LockSignIn"); return nil }
func (t *tripTx) LockKnownUser(context.Context, string) error      { t.stmt("LockKnownUser"); return nil }
func (t *tripTx) LockSession(context.Context, string) (Session, error) {
	t.stmt("LockSession")
	return t.s.self, nil
}
func (t *tripTx) LockSessionsAndOwn(context.Context, Selector, string) (Session, error) {
	t.stmt("LockSessionsAndOwn")
	return t.s.self, nil
}
func (t *tripTx) LockClientOfToken(context.Context, TokenHash) (Session, error) {
	t.stmt("LockClientOfToken")
	return t.s.self, nil
}
func (t *tripTx) LockSessionByToken(context.Context, TokenHash) (Session, error) {
	t.stmt("LockSessionByToken")
	return t.s.self, nil
}
func (t *tripTx) LockSessions(context.Context, Selector) error { t.stmt("LockSessions"); return nil }
func (t *tripTx) Session(context.Context, string, Scope) (Session, error) {
	t.stmt("Session")
	return t.s.self, nil
}
func (t *tripTx) ListSessions(context.Context, ListFilter) ([]Session, error) {
	t.stmt("ListSessions")
	return nil, nil
}
func (t *tripTx) InsertSession(context.Context, Session, TokenHash, string) error {
	t.stmt("InsertSession")
	return nil
}
func (t *tripTx) InsertSessionOnNewClient(context.Context, Session, TokenHash, string) error {
	t.stmt("InsertSessionOnNewClient")
	return nil
}
func (t *tripTx) ExpireSessions(context.Context, Selector, Expiry, int) (int, error) {
	t.stmt("ExpireSessions")
	return 0, nil
}
func (t *tripTx) EndSessions(_ context.Context, _ Selector, e Ending) ([]Session, error) {
	t.stmt("EndSessions")
	ended := t.s.self
	ended.Status, ended.EndedAt = StatusEnded, &e.At
	return []Session{ended}, nil
}
func (t *tripTx) EvictSessions(context.Context, string, int, Ending) ([]Session, error) {
	t.stmt("EvictSessions")
	return nil, nil
}
func (t *tripTx) DeleteEndedBefore(context.Context, time.Time, int) (int, error) {
	t.stmt("DeleteEndedBefore")
	return 0, nil
}

// holderAt returns the clock of a test, a token and the active session
// every lock of tripStore finds, created and last active idle ago.
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

// TestRoundTrips: what each hot call costs in round trips to the
// database, statement by statement — the budget BENCHMARKS.md sets (a sign-in:
// at most 3; a plain sign-out in single mode: 2) and the calls next to it.
func TestRoundTrips(t *testing.T) {
	ctx := context.Background()
	now, token, self := holderAt(t, 0)
	other := self
	other.ID = newID(sessionIDPrefix, now)
	for _, c := range []struct {
		name string
		mode Mode
		call func(*Service) error
		want []string
	}{
		{"sign-in on a new client", ModeSingle, func(s *Service) error {
			_, err := s.SignIn(ctx, Backend("k"), SignInInput{UserID: "bob"})
			return err
		}, []string{"BEGIN+LockUser", "InsertSessionOnNewClient+COMMIT"}},
		{"sign-in on a known client", ModeSingle, func(s *Service) error {
			_, err := s.SignIn(ctx, Backend("k"), SignInInput{UserID: "bob", ClientID: self.ClientID})
			return err
		}, []string{"BEGIN+LockSignIn", "EndSessions", "InsertSession+COMMIT"}},
		{"sign-out by token, single mode", ModeSingle, func(s *Service) error {
			_, err := s.SignOut(ctx, SignOutRequest{Token: token})
			return err
		}, []string{"BEGIN+LockSessionByToken", "EndSessions+COMMIT"}},
		{"sign-out by token, multi mode", ModeMulti, func(s *Service) error {
			_, err := s.SignOut(ctx, SignOutRequest{Token: token})
			return err
		}, []string{"BEGIN+LockClientOfToken", "EndSessions+COMMIT"}},
		{"a holder ends another session of its user", ModeMulti, func(s *Service) error {
			_, err := s.endSession(ctx, Holder(self), other.ID, "")
			return err
		}, []string{"BEGIN+Session", "LockSessionsAndOwn", "EndSessions+COMMIT"}},
		{"a holder signs out its other devices", ModeSingle, func(s *Service) error {
			_, err := s.EndUserSessions(ctx, Holder(self), "alice", self.ID, "")
			return err
		}, []string{"BEGIN+LockKnownUser", "Session", "LockSessionsAndOwn", "EndSessions+COMMIT"}},
		{"a backend ends one session", ModeSingle, func(s *Service) error {
			_, err := s.EndSession(ctx, Backend("k"), self.ID, "")
			return err
		}, []string{"BEGIN+Session", "LockSessions", "EndSessions+COMMIT"}},
		{"a backend signs a user out everywhere", ModeSingle, func(s *Service) error {
			_, err := s.EndUserSessions(ctx, Backend("k"), "alice", "", "")
			return err
		}, []string{"BEGIN+LockKnownUser", "LockSessions", "EndSessions+COMMIT"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			store := &tripStore{self: self}
			svc := NewService(store, Config{Mode: c.mode, Lifetime: time.Hour, Now: func() time.Time { return now }})
			if err := c.call(svc); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(store.trips, c.want) {
				t.Errorf("round trips %q, want %q", store.trips, c.want)
			}
		})
	}
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
			store := &tripStore{self: self}
			svc := NewService(store, Config{Mode: ModeMulti, Lifetime: 2 * time.Hour, Now: func() time.Time { return now }})
			if _, err := svc.SignOut(ctx, c.req); codeOf(err) != c.code {
				t.Fatalf("SignOut: %v, want %s", err, c.code)
			}
			for _, trip := range store.trips {
				if trip != "SessionByTokenHash" {
					t.Errorf("round trips %q: want at most the token's read", store.trips)
				}
			}
		})
	}
}
