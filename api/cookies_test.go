package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/api"
	"github.com/sessiond/sessiond/internal/sessions"
)

// cookieSettings sets the attributes of sessiond's cookies.
func cookieSettings(s api.CookieSettings) option {
	return func(_ *sessions.Config, a *api.Config) {
		a.CookieName, a.CookieDomain, a.CookiePath, a.CookieSameSite, a.CookieSecure = s.Name, s.Domain, s.Path, s.SameSite, s.Secure
	}
}

// plainHTTP lets net/http/cookiejar send the cookies over the test
// server's http:// (it keeps Secure cookies for https).
func plainHTTP(_ *sessions.Config, a *api.Config) { a.CookieSecure = false }

// browser is a client with a cookie jar, as a browser on the test
// server's origin; every answer is still validated against openapi.yaml.
type browser struct {
	e      *testEnv
	jar    *cookiejar.Jar
	client *http.Client
	url    *url.URL
}

func newBrowser(t *testing.T, e *testEnv) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(e.URL)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{e: e, jar: jar, url: u, client: &http.Client{Jar: jar, Transport: e.http.Transport}}
}

// signIn is what an app backend does: POST /sessions with the API key,
// its answer's Set-Cookie headers forwarded unchanged to the browser.
func (b *browser) signIn(t *testing.T, userID string) signedIn {
	t.Helper()
	body := map[string]any{"user_id": userID}
	if s, ok := b.whoAmI(t); ok {
		body["client_id"] = s.ClientID
	}
	r := b.e.do(t, http.MethodPost, "/sessions", backend, body)
	r.wantStatus(t, http.StatusCreated)
	var a signInAnswer
	r.decode(t, &a)
	b.jar.SetCookies(b.url, (&http.Response{Header: r.Header}).Cookies())
	return signedIn{ID: a.Session.ID, UserID: userID, ClientID: a.Session.ClientID, Token: a.Token}
}

// send makes a request from the browser, with its cookies.
func (b *browser) send(t *testing.T, method, path string, body any) response {
	t.Helper()
	var r io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, b.e.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return response{Status: resp.StatusCode, Header: resp.Header, Body: readAll(t, resp)}
}

// whoAmI is GET /session with the browser's cookies.
func (b *browser) whoAmI(t *testing.T) (session, bool) {
	t.Helper()
	r := b.send(t, http.MethodGet, "/session", nil)
	if r.Status != http.StatusOK {
		r.wantProblem(t, http.StatusUnauthorized, "unauthenticated")
		return session{}, false
	}
	var s session
	r.decode(t, &s)
	return s, true
}

// holds returns the jar's cookies by name.
func (b *browser) holds() map[string]string {
	got := map[string]string{}
	for _, c := range b.jar.Cookies(b.url) {
		got[c.Name] = c.Value
	}
	return got
}

// wantJar fails unless the jar holds exactly these cookies.
func (b *browser) wantJar(t *testing.T, want map[string]string) {
	t.Helper()
	if got := b.holds(); !maps.Equal(got, want) {
		t.Errorf("the browser holds %v,\nwant %v", names(got), names(want))
		for name, v := range want {
			if got[name] != v {
				t.Errorf("cookie %s: wrong or missing token", name)
			}
		}
	}
}

// names lists cookie names only: the values are tokens.
func names(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

func (b *browser) wantSignedInAs(t *testing.T, s signedIn) {
	t.Helper()
	got, ok := b.whoAmI(t)
	if !ok || got.ID != s.ID {
		t.Fatalf("who am I: %q (signed in: %v), want %s's session %s", got.ID, ok, s.UserID, s.ID)
	}
}

func account(s signedIn) string { return "__session_" + s.ID }

func TestBrowserSingleMode(t *testing.T) {
	t.Parallel()
	t.Run("single/sign-in sets one cookie, sign-out clears it", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, plainHTTP)
		b := newBrowser(t, e)
		alice := b.signIn(t, "alice")
		b.wantJar(t, map[string]string{"__session": alice.Token})
		b.wantSignedInAs(t, alice)
		b.send(t, http.MethodDelete, "/session", nil).wantStatus(t, http.StatusOK)
		b.wantJar(t, map[string]string{})
		e.wantSignedOut(t, "ended", alice)
	})
	t.Run("single/a second sign-in in the browser replaces the first", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, plainHTTP)
		b := newBrowser(t, e)
		alice := b.signIn(t, "alice")
		bob := b.signIn(t, "bob")
		b.wantJar(t, map[string]string{"__session": bob.Token})
		e.wantSignedOut(t, "replaced", alice)
		b.wantSignedInAs(t, bob)
	})
	t.Run("single/a dead cookie is cleared by the 401", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, plainHTTP)
		b := newBrowser(t, e)
		alice := b.signIn(t, "alice")
		e.mustEnd(t, "/sessions/"+alice.ID, backend)
		if _, ok := b.whoAmI(t); ok {
			t.Fatal("who am I answered 200 for a revoked session")
		}
		b.wantJar(t, map[string]string{})
	})
	t.Run("single/ending the own session by ID clears the cookie", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, plainHTTP)
		b := newBrowser(t, e)
		alice := b.signIn(t, "alice")
		b.send(t, http.MethodDelete, "/sessions/"+alice.ID, nil).wantStatus(t, http.StatusOK)
		b.wantJar(t, map[string]string{})
		e.wantSignedOut(t, "ended", alice)
	})
}

func TestBrowserMultiMode(t *testing.T) {
	t.Parallel()
	t.Run("multi/sign-in sets the active cookie and an account cookie per account", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, multiMode, plainHTTP)
		b := newBrowser(t, e)
		alice := b.signIn(t, "alice")
		bob := b.signIn(t, "bob")
		if alice.ClientID != bob.ClientID {
			t.Fatalf("bob signed in on client %s, want alice's %s", bob.ClientID, alice.ClientID)
		}
		b.wantJar(t, map[string]string{"__session": bob.Token, account(alice): alice.Token, account(bob): bob.Token})
		b.wantSignedInAs(t, bob)
		e.wantActive(t, alice, bob)
	})
	t.Run("multi/signing the same user in again replaces its account cookie", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, multiMode, plainHTTP)
		b := newBrowser(t, e)
		alice := b.signIn(t, "alice")
		again := b.signIn(t, "alice")
		b.wantJar(t, map[string]string{"__session": again.Token, account(again): again.Token})
		e.wantSignedOut(t, "replaced", alice)
	})
	t.Run("multi/switch, sign out the active account, then all accounts", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, multiMode, plainHTTP)
		b := newBrowser(t, e)
		alice := b.signIn(t, "alice")
		bob := b.signIn(t, "bob")
		carol := b.signIn(t, "carol")

		// Switch to alice: the active cookie now holds her token.
		r := b.send(t, http.MethodPost, "/session/active", map[string]string{"session_id": alice.ID})
		r.wantStatus(t, http.StatusOK)
		var s session
		if r.decode(t, &s); s.ID != alice.ID {
			t.Fatalf("switch answered session %s, want alice's %s", s.ID, alice.ID)
		}
		b.wantSignedInAs(t, alice)
		b.wantJar(t, map[string]string{"__session": alice.Token, account(alice): alice.Token, account(bob): bob.Token, account(carol): carol.Token})

		// Sign out the active account: another live account becomes active.
		b.send(t, http.MethodDelete, "/session"+q("session_id", alice.ID), nil).wantStatus(t, http.StatusOK)
		e.wantSignedOut(t, "ended", alice)
		e.wantActive(t, bob, carol)
		now, ok := b.whoAmI(t)
		if !ok || (now.ID != bob.ID && now.ID != carol.ID) {
			t.Fatalf("after signing alice out: who am I %q (%v), want bob or carol", now.ID, ok)
		}
		active := map[string]signedIn{bob.ID: bob, carol.ID: carol}[now.ID]
		b.wantJar(t, map[string]string{"__session": active.Token, account(bob): bob.Token, account(carol): carol.Token})

		// Sign out one that is not active: only its account cookie goes.
		other := map[string]signedIn{bob.ID: carol, carol.ID: bob}[now.ID]
		b.send(t, http.MethodDelete, "/sessions/"+other.ID, nil).wantStatus(t, http.StatusOK)
		b.wantJar(t, map[string]string{"__session": active.Token, account(active): active.Token})
		b.wantSignedInAs(t, active)

		// Sign out of all accounts.
		b.send(t, http.MethodDelete, "/session", nil).wantStatus(t, http.StatusOK)
		b.wantJar(t, map[string]string{})
		e.wantSignedOut(t, "ended", active, other)
		e.wantSignedOut(t, "ended", alice)
	})
	t.Run("multi/signing out the last account clears the active cookie", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, multiMode, plainHTTP)
		b := newBrowser(t, e)
		alice := b.signIn(t, "alice")
		b.send(t, http.MethodDelete, "/session"+q("session_id", alice.ID), nil).wantStatus(t, http.StatusOK)
		b.wantJar(t, map[string]string{})
	})
	t.Run("multi/switching needs the account cookie", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, multiMode, plainHTTP)
		b := newBrowser(t, e)
		alice := b.signIn(t, "alice")
		stranger := e.mustSignIn(t, "mallory", "")
		b.send(t, http.MethodPost, "/session/active", map[string]string{"session_id": stranger.ID}).
			wantProblem(t, http.StatusNotFound, "session_not_found")
		b.wantSignedInAs(t, alice)
		// Nor does the active cookie or a bearer token stand in for it.
		r := e.do(t, http.MethodPost, "/session/active", cookie(stranger.Token), map[string]string{"session_id": stranger.ID})
		r.wantProblem(t, http.StatusNotFound, "session_not_found")
		r = e.do(t, http.MethodPost, "/session/active", bearer(stranger.Token), map[string]string{"session_id": stranger.ID})
		r.wantProblem(t, http.StatusNotFound, "session_not_found")
		b.send(t, http.MethodPost, "/session/active", map[string]string{"session_id": "nope"}).
			wantProblem(t, http.StatusBadRequest, "invalid_id")
		b.send(t, http.MethodPost, "/session/active", map[string]string{}).
			wantProblem(t, http.StatusBadRequest, "invalid_request")
		b.wantJar(t, map[string]string{"__session": alice.Token, account(alice): alice.Token})
		e.wantActive(t, alice, stranger)
	})
	t.Run("multi/switching to a dead account is 404 and clears its cookie", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, multiMode, plainHTTP)
		b := newBrowser(t, e)
		alice := b.signIn(t, "alice")
		bob := b.signIn(t, "bob")
		e.mustEnd(t, "/sessions/"+alice.ID, backend)
		b.send(t, http.MethodPost, "/session/active", map[string]string{"session_id": alice.ID}).
			wantProblem(t, http.StatusNotFound, "session_not_found")
		b.wantJar(t, map[string]string{"__session": bob.Token, account(bob): bob.Token})
		b.wantSignedInAs(t, bob)
	})
	t.Run("multi/a dead active cookie is cleared; a live account becomes active only when picked", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, multiMode, plainHTTP)
		b := newBrowser(t, e)
		alice := b.signIn(t, "alice")
		bob := b.signIn(t, "bob")
		e.mustEnd(t, "/sessions/"+bob.ID, backend) // bob is active
		if _, ok := b.whoAmI(t); ok {
			t.Fatal("who am I answered 200 for a revoked active session")
		}
		// A 401 promotes nobody: an account cookie may have been planted.
		b.wantJar(t, map[string]string{account(alice): alice.Token})
		b.send(t, http.MethodPost, "/session/active", map[string]string{"session_id": alice.ID}).wantStatus(t, http.StatusOK)
		b.wantJar(t, map[string]string{"__session": alice.Token, account(alice): alice.Token})
		b.wantSignedInAs(t, alice)
	})
	t.Run("multi/a dead active cookie with no live account: every cookie cleared, the last when tried", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, multiMode, plainHTTP)
		b := newBrowser(t, e)
		alice := b.signIn(t, "alice")
		bob := b.signIn(t, "bob")
		e.mustEnd(t, "/clients/"+alice.ClientID+"/sessions", backend)
		if _, ok := b.whoAmI(t); ok {
			t.Fatal("who am I answered 200 for a revoked client")
		}
		// The 401 clears the active cookie and its account cookie; the
		// other account cookie goes when the page tries it.
		b.wantJar(t, map[string]string{account(alice): alice.Token})
		b.send(t, http.MethodPost, "/session/active", map[string]string{"session_id": alice.ID}).
			wantProblem(t, http.StatusNotFound, "session_not_found")
		b.wantJar(t, map[string]string{})
		e.wantSignedOut(t, "revoked", alice, bob)
	})
	t.Run("multi/a bearer caller's answer sets no cookie", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, multiMode)
		alice := e.mustSignIn(t, "alice", "")
		r := e.do(t, http.MethodDelete, "/session", bearer(alice.Token), nil)
		r.wantStatus(t, http.StatusOK)
		if sc := r.Header.Values("Set-Cookie"); len(sc) != 0 {
			t.Errorf("Set-Cookie %d headers on a bearer sign-out", len(sc))
		}
	})
}

// TestCookieAttributes: every cookie sessiond sets or clears carries
// exactly the configured attributes and HttpOnly, so a clearing cookie
// always matches the one the browser holds.
func TestCookieAttributes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		settings api.CookieSettings
		want     http.Cookie // Name, Domain, Path, Secure, SameSite
	}{
		{"defaults: host-only, Path=/, Lax, Secure", api.CookieSettings{Secure: true},
			http.Cookie{Name: "__session", Path: "/", Secure: true, SameSite: http.SameSiteLaxMode}},
		{"parent domain, strict, a path", api.CookieSettings{Name: "sid", Domain: "example.test", Path: "/app", SameSite: "strict", Secure: true},
			http.Cookie{Name: "sid", Domain: "example.test", Path: "/app", Secure: true, SameSite: http.SameSiteStrictMode}},
		{"SameSite=None with Secure", api.CookieSettings{Domain: ".Example.TEST", SameSite: "none", Secure: true},
			http.Cookie{Name: "__session", Domain: "example.test", Path: "/", Secure: true, SameSite: http.SameSiteNoneMode}},
		{"not Secure (http in development)", api.CookieSettings{SameSite: "lax"},
			http.Cookie{Name: "__session", Path: "/", SameSite: http.SameSiteLaxMode}},
		// The recommended name behind the app's own origin: no other host
		// can set or shadow a __Host- cookie, and the account cookies
		// (__Host-session_sess_...) inherit the prefix.
		{"__Host- name: host-only, Path=/, Secure, account cookies prefixed too", api.CookieSettings{Name: "__Host-session", Secure: true},
			http.Cookie{Name: "__Host-session", Path: "/", Secure: true, SameSite: http.SameSiteLaxMode}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, multiMode, cookieSettings(tc.settings))
			check := func(what string, h http.Header, wantNames map[string]bool, cleared bool) {
				t.Helper()
				set := (&http.Response{Header: h}).Cookies()
				if len(set) != len(wantNames) {
					t.Fatalf("%s: %d Set-Cookie headers, want %d", what, len(set), len(wantNames))
				}
				for _, c := range set {
					if !wantNames[c.Name] {
						t.Errorf("%s: unexpected cookie %s", what, c.Name)
					}
					if c.Domain != tc.want.Domain || c.Path != tc.want.Path || c.Secure != tc.want.Secure ||
						c.SameSite != tc.want.SameSite || !c.HttpOnly {
						t.Errorf("%s: cookie %s has Domain=%q Path=%q Secure=%v SameSite=%v HttpOnly=%v, want Domain=%q Path=%q Secure=%v SameSite=%v HttpOnly",
							what, c.Name, c.Domain, c.Path, c.Secure, c.SameSite, c.HttpOnly, tc.want.Domain, tc.want.Path, tc.want.Secure, tc.want.SameSite)
					}
					if cleared && (c.MaxAge >= 0 || c.Value != "") {
						t.Errorf("%s: cookie %s not cleared (Max-Age=0 and no value)", what, c.Name)
					}
					if !cleared && c.MaxAge != int((168*time.Hour).Seconds()) {
						t.Errorf("%s: cookie %s Max-Age=%d, want the session's lifetime", what, c.Name, c.MaxAge)
					}
				}
			}
			name := tc.want.Name
			r := e.do(t, http.MethodPost, "/sessions", backend, map[string]any{"user_id": "alice"})
			r.wantStatus(t, http.StatusCreated)
			var a signInAnswer
			r.decode(t, &a)
			check("sign-in", r.Header, map[string]bool{name: true, name + "_" + a.Session.ID: true}, false)

			withCookies := func(method, path string) response {
				t.Helper()
				h := http.Header{}
				h.Add("Cookie", (&http.Cookie{Name: name, Value: a.Token}).String())
				h.Add("Cookie", (&http.Cookie{Name: name + "_" + a.Session.ID, Value: a.Token}).String())
				return e.raw(t, method, path, h)
			}
			r = withCookies(http.MethodDelete, "/session")
			r.wantStatus(t, http.StatusOK)
			check("sign-out", r.Header, map[string]bool{name: true, name + "_" + a.Session.ID: true}, true)

			r = withCookies(http.MethodGet, "/session")
			r.wantProblem(t, http.StatusUnauthorized, "unauthenticated")
			check("401 for the dead cookies", r.Header, map[string]bool{name: true, name + "_" + a.Session.ID: true}, true)
		})
	}
}

// raw sends a request with exactly these headers and no body.
func (e *testEnv) raw(t *testing.T, method, path string, h http.Header) response {
	t.Helper()
	return e.rawBody(t, method, path, h, "")
}

func TestCookieSettingsAreChecked(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		settings api.CookieSettings
		names    string
	}{
		{api.CookieSettings{SameSite: "none"}, "SESSIOND_COOKIE_SAMESITE"},
		{api.CookieSettings{SameSite: "sometimes", Secure: true}, "SESSIOND_COOKIE_SAMESITE"},
		{api.CookieSettings{Domain: "https://example.com", Secure: true}, "SESSIOND_COOKIE_DOMAIN"},
		{api.CookieSettings{Domain: "example.com:8080", Secure: true}, "SESSIOND_COOKIE_DOMAIN"},
		{api.CookieSettings{Domain: "exa mple.com", Secure: true}, "SESSIOND_COOKIE_DOMAIN"},
		{api.CookieSettings{Domain: "127.0.0.1", Secure: true}, "SESSIOND_COOKIE_DOMAIN"},
		{api.CookieSettings{Path: "app", Secure: true}, "SESSIOND_COOKIE_PATH"},
		{api.CookieSettings{Path: "/a;b", Secure: true}, "SESSIOND_COOKIE_PATH"},
		{api.CookieSettings{Name: "a b", Secure: true}, "SESSIOND_COOKIE_NAME"},
		{api.CookieSettings{Name: "__Host-s", Secure: true, Domain: "example.com"}, "SESSIOND_COOKIE_NAME"},
		{api.CookieSettings{Name: "__Secure-s"}, "SESSIOND_COOKIE_NAME"},
	} {
		_, err := api.New(nil, api.Config{CookieName: tc.settings.Name, CookieDomain: tc.settings.Domain, CookiePath: tc.settings.Path,
			CookieSameSite: tc.settings.SameSite, CookieSecure: tc.settings.Secure})
		if err == nil || !strings.HasPrefix(err.Error(), tc.names+":") {
			t.Errorf("%+v: error %v, want one naming %s", tc.settings, err, tc.names)
		}
	}
	if _, err := api.New(nil, api.Config{CookieSameSite: "none", CookieSecure: true, CookieDomain: "example.com", CookiePath: "/auth"}); err != nil {
		t.Errorf("good settings refused: %v", err)
	}
}

// A sessiond cookie name that appears twice — the active cookie or an
// account cookie — means another host of the site (or another path)
// planted one copy, and nothing tells which is the browser's own: the
// request is 401, sets no cookie and ends nothing, on every route that
// reads cookies. (Before, the first copy won: a sign-out with the
// attacker's cookie first ended the attacker's session and cleared the
// victim's cookies while the victim's session stayed active.)
func TestDuplicateCookieNamesAreRefused(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct {
		name string
		opts []option
	}{{"single", nil}, {"multi", []option{multiMode}}} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, mode.opts...)
			victim := e.mustSignIn(t, "victim", "")
			attacker := e.mustSignIn(t, "mallory", "")
			active := func(tok string) string { return (&http.Cookie{Name: "__session", Value: tok}).String() }
			acct := func(s signedIn, tok string) string {
				return (&http.Cookie{Name: "__session_" + s.ID, Value: tok}).String()
			}
			for _, tc := range []struct {
				name    string
				cookies []string
			}{
				{"active cookie twice, the attacker's first", []string{active(attacker.Token), active(victim.Token), acct(victim, victim.Token)}},
				{"active cookie twice, in one header", []string{active(attacker.Token) + "; " + active(victim.Token)}},
				{"an account cookie twice", []string{active(victim.Token), acct(victim, attacker.Token), acct(victim, victim.Token)}},
			} {
				for _, call := range []struct{ method, path string }{
					{http.MethodGet, "/session"},
					{http.MethodDelete, "/session"},
					{http.MethodDelete, "/session?session_id=" + victim.ID},
					{http.MethodDelete, "/sessions/" + victim.ID},
					{http.MethodGet, "/session/events"},
				} {
					h := http.Header{}
					for _, c := range tc.cookies {
						h.Add("Cookie", c)
					}
					r := e.raw(t, call.method, call.path, h)
					r.wantProblem(t, http.StatusUnauthorized, "unauthenticated")
					if set := r.Header.Values("Set-Cookie"); len(set) != 0 {
						t.Errorf("%s: %s %s set cookies %q, want none", tc.name, call.method, call.path, set)
					}
				}
				// POST /session/active reads the account cookies too.
				h := http.Header{"Content-Type": {"application/json"}}
				for _, c := range tc.cookies {
					h.Add("Cookie", c)
				}
				r := e.rawBody(t, http.MethodPost, "/session/active", h, `{"session_id":"`+victim.ID+`"}`)
				r.wantProblem(t, http.StatusUnauthorized, "unauthenticated")
				if set := r.Header.Values("Set-Cookie"); len(set) != 0 {
					t.Errorf("%s: POST /session/active set cookies %q, want none", tc.name, set)
				}
			}
			for _, s := range []signedIn{victim, attacker} {
				e.do(t, http.MethodGet, "/session", bearer(s.Token), nil).wantStatus(t, http.StatusOK)
			}
		})
	}
}

// A request whose only sessiond cookie is an account cookie — a fresh
// browser, or one right after "sign out of all accounts", that another
// host of the site planted __session_<its sid>=<its token> in — is 401
// and never makes that account active: no Set-Cookie of the active
// cookie, on GET /session and on a plain cross-origin GET /session/events.
// Only the explicit sign-out of the active account promotes another.
func TestAccountCookieIsNotPromotedOn401(t *testing.T) {
	t.Parallel()
	e := newEnv(t, multiMode)
	planted := e.mustSignIn(t, "mallory", "")
	for _, path := range []string{"/session", "/session/events"} {
		h := http.Header{"Origin": {"https://evil.example"}}
		h.Add("Cookie", (&http.Cookie{Name: "__session_" + planted.ID, Value: planted.Token}).String())
		r := e.raw(t, http.MethodGet, path, h)
		r.wantProblem(t, http.StatusUnauthorized, "unauthenticated")
		for _, c := range (&http.Response{Header: r.Header}).Cookies() {
			if c.Name == "__session" && c.Value != "" {
				t.Errorf("GET %s set the active cookie to %q: the planted account was promoted", path, c.Value)
			}
		}
	}
	// A dead active cookie beside it: the dead one is cleared, the
	// planted account is still not promoted.
	dead := e.mustSignIn(t, "victim", "")
	e.mustEnd(t, "/session", bearer(dead.Token))
	h := http.Header{}
	h.Add("Cookie", (&http.Cookie{Name: "__session", Value: dead.Token}).String())
	h.Add("Cookie", (&http.Cookie{Name: "__session_" + planted.ID, Value: planted.Token}).String())
	r := e.raw(t, http.MethodGet, "/session", h)
	r.wantProblem(t, http.StatusUnauthorized, "unauthenticated")
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == "__session" && c.Value != "" {
			t.Errorf("the 401 set the active cookie to %q, want it cleared", c.Value)
		}
	}
}

// rawBody sends a request with exactly these headers and body.
func (e *testEnv) rawBody(t *testing.T, method, path string, h http.Header, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, e.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return response{Status: resp.StatusCode, Header: resp.Header, Body: readAll(t, resp)}
}
