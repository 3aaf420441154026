package sessions

import (
	"context"
	"errors"
	"iter"
	"slices"
	"testing"
	"time"
)

// account is a session a browser holds, with its token.
type account struct {
	sess  Session
	token string
}

func newBrowserWorld(t *testing.T, mode Mode) (*Service, *fakeStore, time.Time, func(user string, status Status, lastActive time.Duration) account) {
	t.Helper()
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	store := &fakeStore{known: map[TokenHash]Session{}}
	svc := NewService(store, Config{Mode: mode, Lifetime: 168 * time.Hour, Now: func() time.Time { return now }})
	add := func(user string, status Status, lastActive time.Duration) account {
		token, err := newToken()
		if err != nil {
			t.Fatal(err)
		}
		created := now.Add(-time.Hour)
		s := Session{ID: newID(sessionIDPrefix, created.Add(lastActive)), UserID: user, ClientID: "client_01J0000000000000000000000C",
			Status: status, CreatedAt: created, LastActiveAt: now.Add(lastActive), ExpiresAt: created.Add(168 * time.Hour)}
		store.known[HashToken(token)] = s
		return account{s, token}
	}
	return svc, store, now, add
}

func holding(active string, accounts ...account) Browser {
	b := Browser{Active: active, Accounts: map[string]string{}}
	for _, a := range accounts {
		b.Accounts[a.sess.ID] = a.token
	}
	return b
}

func TestSignInCookies(t *testing.T) {
	for _, mode := range []Mode{ModeSingle, ModeMulti} {
		svc, _, _, add := newBrowserWorld(t, mode)
		a := add("alice", StatusActive, 0)
		ch := svc.SignInCookies(SignInResult{Session: a.sess, Token: a.token, Ended: []Ended{{ID: "sess_old", Status: StatusReplaced}, {ID: "sess_evicted", Status: StatusEvicted}}})
		if ch.SetActive == nil || ch.SetActive.Token != a.token || ch.SetActive.MaxAge != 167*time.Hour {
			t.Errorf("%s: active cookie %+v, want the token for the rest of the lifetime (167h)", mode, ch.SetActive)
		}
		switch mode {
		case ModeSingle:
			if len(ch.SetAccounts) != 0 || len(ch.ClearAccounts) != 0 {
				t.Errorf("single: account cookies %+v", ch)
			}
		case ModeMulti:
			if len(ch.SetAccounts) != 1 || ch.SetAccounts[0].SessionID != a.sess.ID || !slices.Equal(ch.ClearAccounts, []string{"sess_old"}) {
				t.Errorf("multi: %+v, want alice's account cookie set and only the replaced one cleared", ch)
			}
		}
	}
}

func TestCookiesAfterEnd(t *testing.T) {
	ctx := context.Background()
	svc, store, _, add := newBrowserWorld(t, ModeMulti)
	alice := add("alice", StatusActive, -3*time.Minute)
	bob := add("bob", StatusActive, -1*time.Minute) // the most recently active
	carol := add("carol", StatusActive, -2*time.Minute)
	dave := add("dave", StatusRevoked, 0)
	caller := Holder(alice.sess)
	b := holding(alice.token, alice, bob, carol, dave)

	t.Run("the active account ended: the most recently active live one takes over", func(t *testing.T) {
		ch := svc.CookiesAfterEnd(ctx, caller, &b, EndResult{Ended: []Session{alice.sess}, CallerEnded: true})
		if ch.SetActive == nil || ch.SetActive.SessionID != bob.sess.ID || ch.SetActive.Token != bob.token {
			t.Fatalf("new active %+v, want bob", ch.SetActive)
		}
		slices.Sort(ch.ClearAccounts)
		want := []string{alice.sess.ID, dave.sess.ID}
		slices.Sort(want)
		if !slices.Equal(ch.ClearAccounts, want) || ch.ClearActive {
			t.Fatalf("cleared %v (active %v), want alice's and dead dave's account cookies", ch.ClearAccounts, ch.ClearActive)
		}
	})
	t.Run("another account ended: only its cookie goes", func(t *testing.T) {
		ch := svc.CookiesAfterEnd(ctx, caller, &b, EndResult{Ended: []Session{carol.sess}})
		if ch.SetActive != nil || ch.ClearActive || !slices.Equal(ch.ClearAccounts, []string{carol.sess.ID}) {
			t.Fatalf("%+v, want carol's account cookie cleared only", ch)
		}
	})
	t.Run("no live account left: the active cookie is cleared", func(t *testing.T) {
		only := holding(alice.token, alice, dave)
		ch := svc.CookiesAfterEnd(ctx, caller, &only, EndResult{Ended: []Session{alice.sess}, CallerEnded: true})
		if ch.SetActive != nil || !ch.ClearActive {
			t.Fatalf("%+v, want the active cookie cleared", ch)
		}
	})
	t.Run("a bearer caller's answer changes no cookie", func(t *testing.T) {
		if ch := svc.CookiesAfterEnd(ctx, caller, nil, EndResult{Ended: []Session{alice.sess}, CallerEnded: true}); !leavesCookiesAlone(ch) {
			t.Fatalf("%+v", ch)
		}
	})
	t.Run("the store failing: no account is made active", func(t *testing.T) {
		store.fail = true
		defer func() { store.fail = false }()
		ch := svc.CookiesAfterEnd(ctx, caller, &b, EndResult{Ended: []Session{alice.sess}, CallerEnded: true})
		if ch.SetActive != nil || !ch.ClearActive {
			t.Fatalf("%+v, want the active cookie cleared and nothing promoted", ch)
		}
	})
	t.Run("single mode promotes nobody", func(t *testing.T) {
		single, _, _, add := newBrowserWorld(t, ModeSingle)
		a, other := add("alice", StatusActive, 0), add("bob", StatusActive, 0)
		sb := holding(a.token, other)
		ch := single.CookiesAfterEnd(ctx, Holder(a.sess), &sb, EndResult{Ended: []Session{a.sess}, CallerEnded: true})
		if ch.SetActive != nil || !ch.ClearActive {
			t.Fatalf("%+v", ch)
		}
	})
}

// A 401 clears the dead active cookie (and its account cookie) and makes
// no account active, not even the browser's only live one: an account
// cookie may have been planted by another host of the site, and with the
// active cookie dead nothing says which client the browser is on.
func TestCookiesAfterAuthFailure(t *testing.T) {
	svc, _, _, add := newBrowserWorld(t, ModeMulti)
	alice := add("alice", StatusActive, 0)
	bob := add("bob", StatusEnded, 0)
	mallory := add("mallory", StatusActive, 0)

	ch := svc.CookiesAfterAuthFailure(holding(bob.token, alice, bob))
	if ch.SetActive != nil || !ch.ClearActive || !slices.Equal(ch.ClearAccounts, []string{bob.sess.ID}) {
		t.Fatalf("%+v, want bob's cookies cleared and nobody made active", ch)
	}
	// Only an account cookie, no active cookie: nothing to clear, nobody
	// promoted (the planted-cookie case of a fresh browser).
	if ch := svc.CookiesAfterAuthFailure(holding("", mallory)); !leavesCookiesAlone(ch) {
		t.Fatalf("only an account cookie: %+v, want no cookie change", ch)
	}
	// A token in another session's account cookie is not trusted.
	forged := Browser{Active: bob.token, Accounts: map[string]string{alice.sess.ID: mallory.token}}
	ch = svc.CookiesAfterAuthFailure(forged)
	if ch.SetActive != nil || !ch.ClearActive || len(ch.ClearAccounts) != 0 {
		t.Fatalf("%+v, want only the active cookie cleared", ch)
	}
}

// ReadBrowser is the one reader of sessiond's cookies: a name that
// appears twice is refused whichever copy would have won.
func TestReadBrowser(t *testing.T) {
	const sid, other = "sess_01J00000000000000000000000", "sess_01J00000000000000000000001"
	pairs := func(kv ...string) iter.Seq2[string, string] {
		return func(yield func(string, string) bool) {
			for i := 0; i+1 < len(kv); i += 2 {
				if !yield(kv[i], kv[i+1]) {
					return
				}
			}
		}
	}
	b, err := ReadBrowser("__session", pairs("theme", "dark", "__session", "st_a", "__session_"+sid, "st_a",
		"__session_"+other, "st_b", "__session_nope", "x", "__sessionx", "y"))
	if err != nil || b.Active != "st_a" || len(b.Accounts) != 2 || b.Accounts[sid] != "st_a" || b.Accounts[other] != "st_b" {
		t.Fatalf("ReadBrowser = %+v, %v", b, err)
	}
	for name, kv := range map[string][]string{
		"active twice":            {"__session", "st_attacker", "__session", "st_victim"},
		"active twice, one empty": {"__session", "", "__session", "st_victim"},
		"account twice":           {"__session", "st_a", "__session_" + sid, "st_x", "__session_" + sid, "st_a"},
	} {
		if b, err := ReadBrowser("__session", pairs(kv...)); !errors.Is(err, ErrDuplicateCookie) {
			t.Errorf("%s: %+v, %v; want ErrDuplicateCookie", name, b, err)
		}
	}
	// Other names twice are not sessiond's business.
	if _, err := ReadBrowser("__Host-s", pairs("__session", "a", "__session", "b", "__Host-s", "c")); err != nil {
		t.Errorf("another cookie twice: %v", err)
	}
}

func TestSwitchActive(t *testing.T) {
	ctx := context.Background()
	svc, _, _, add := newBrowserWorld(t, ModeMulti)
	alice := add("alice", StatusActive, 0)
	bob := add("bob", StatusExpired, 0)
	b := holding(alice.token, alice, bob)

	sess, ch, err := svc.SwitchActive(ctx, b, alice.sess.ID)
	if err != nil || sess.ID != alice.sess.ID || ch.SetActive == nil || ch.SetActive.Token != alice.token {
		t.Fatalf("switch to alice: %v %+v %v", sess.ID, ch, err)
	}
	_, ch, err = svc.SwitchActive(ctx, b, bob.sess.ID)
	if !errors.Is(err, ErrSessionNotFound) || !slices.Equal(ch.ClearAccounts, []string{bob.sess.ID}) {
		t.Fatalf("switch to dead bob: %+v %v, want not found and his cookie cleared", ch, err)
	}
	stranger := add("carol", StatusActive, 0)
	if _, ch, err := svc.SwitchActive(ctx, b, stranger.sess.ID); !errors.Is(err, ErrSessionNotFound) || !leavesCookiesAlone(ch) {
		t.Fatalf("switch without the account cookie: %+v %v", ch, err)
	}
	for _, id := range []string{"", "sess_nope"} {
		if _, _, err := svc.SwitchActive(ctx, b, id); err == nil {
			t.Fatalf("switch to %q: no error", id)
		}
	}
}

// An account cookie that a sibling host planted for the parent domain holds
// a session on another client: it never becomes the browser's active
// account, on sign-out, after a 401, or by a switch.
func TestPlantedAccountCookiesAreNeverPromoted(t *testing.T) {
	ctx := context.Background()
	svc, store, _, add := newBrowserWorld(t, ModeMulti)
	alice := add("alice", StatusActive, -2*time.Minute)
	dead := add("alice", StatusRevoked, 0)
	planted := add("mallory", StatusActive, 0) // the most recently active
	planted.sess.ClientID = "client_01J0000000000000000000000M"
	store.known[HashToken(planted.token)] = planted.sess

	ch := svc.CookiesAfterEnd(ctx, Holder(alice.sess), ptr(holding(alice.token, alice, planted)),
		EndResult{Ended: []Session{alice.sess}, CallerEnded: true})
	if ch.SetActive != nil || !ch.ClearActive {
		t.Errorf("sign-out promoted %+v, want the active cookie cleared", ch.SetActive)
	}
	bob := add("bob", StatusActive, -time.Minute)
	ch = svc.CookiesAfterAuthFailure(holding(dead.token, bob, planted))
	if ch.SetActive != nil || !ch.ClearActive {
		t.Errorf("a 401 promoted %+v, want nobody", ch.SetActive)
	}
	if ch = svc.CookiesAfterAuthFailure(holding("", planted)); ch.SetActive != nil {
		t.Errorf("a 401 with only a planted account cookie promoted it: %+v", ch.SetActive)
	}
	if _, _, err := svc.SwitchActive(ctx, holding(alice.token, alice, planted), planted.sess.ID); !errors.Is(err, ErrSessionNotFound) {
		t.Errorf("switch to a planted account: %v, want ErrSessionNotFound", err)
	}
	// Without the planted one, the browser's own account takes over.
	ch = svc.CookiesAfterEnd(ctx, Holder(alice.sess), ptr(holding(alice.token, alice, bob, planted)),
		EndResult{Ended: []Session{alice.sess}, CallerEnded: true})
	if ch.SetActive == nil || ch.SetActive.SessionID != bob.sess.ID {
		t.Errorf("sign-out promoted %+v, want bob (the browser's own client)", ch.SetActive)
	}
}

func ptr[T any](v T) *T { return &v }

// leavesCookiesAlone reports whether ch changes no cookie.
func leavesCookiesAlone(ch CookieChanges) bool {
	return ch.SetActive == nil && !ch.ClearActive && len(ch.SetAccounts) == 0 && len(ch.ClearAccounts) == 0
}
