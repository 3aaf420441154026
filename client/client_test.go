package client_test

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/api"
	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/internal/db"
	"github.com/sessiond/sessiond/internal/pgtest"
	"github.com/sessiond/sessiond/internal/sessions"
)

// TestMain runs the package against one Postgres container.
func TestMain(m *testing.M) { pgtest.Main(m) }

const apiKey = "sk_client_test_0123456789"

// sessiondServer is a real sessiond (api.New over a real database) on a
// test HTTP server.
type sessiondServer struct {
	*httptest.Server
	Store *db.Store
}

// startSessiond starts a sessiond in the given mode on its own database.
// Its cookie is not Secure: the test browser talks plain HTTP.
func startSessiond(t *testing.T, mode sessions.Mode) *sessiondServer {
	t.Helper()
	store := pgtest.NewStore(t)
	svc := sessions.NewService(store, sessions.Config{Mode: mode, Lifetime: 168 * time.Hour, Retention: 720 * time.Hour})
	h, err := api.New(svc, api.Config{
		APIKeys: []string{apiKey}, CookieSecure: false, Ready: store.Ping, OpenAPI: sessiond.OpenAPI,
		RequestTimeout: 10 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &sessiondServer{Server: srv, Store: store}
}

func newClient(t *testing.T, baseURL, key string) *client.Client {
	t.Helper()
	c, err := client.New(baseURL, key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// loginAnswer is what the test app answers to POST /login; it shows the
// test the Set-Cookie headers sessiond gave the app.
type loginAnswer struct {
	Token             string   `json:"token"`
	SessionID         string   `json:"session_id"`
	SessiondSetCookie []string `json:"sessiond_set_cookie"`
}

// startApp starts the backend a browser talks to: POST /login signs the
// browser in through sd (as after a password check) and forwards the
// cookies; GET /me is protected by the middleware and answers the
// signed-in user's ID. served counts the requests that reached /me's
// handler.
func startApp(t *testing.T, sd *client.Client) (app *httptest.Server, served *int) {
	t.Helper()
	served = new(int)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		res, err := sd.SignIn(r.Context(), client.SignInParams{UserID: r.FormValue("user"), UserAgent: r.UserAgent()})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		client.ForwardCookies(w, res)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(loginAnswer{Token: res.Token, SessionID: res.Session.ID, SessiondSetCookie: res.SetCookies})
	})
	mux.Handle("GET /me", sd.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*served++
		s, ok := client.SessionFrom(r.Context())
		if !ok {
			http.Error(w, "no session in the context", http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, s.UserID)
	})))
	app = httptest.NewServer(mux)
	t.Cleanup(app.Close)
	return app, served
}

// browser is an HTTP client with a cookie jar.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

type answer struct {
	Status int
	Header http.Header
	Body   string
}

func send(t *testing.T, hc *http.Client, req *http.Request) answer {
	t.Helper()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func get(t *testing.T, hc *http.Client, u string, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return send(t, hc, req)
}

func login(t *testing.T, hc *http.Client, app, user string) loginAnswer {
	t.Helper()
	resp, err := hc.PostForm(app+"/login", url.Values{"user": {user}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST /login = %d %s", resp.StatusCode, b)
	}
	var a loginAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	// ForwardCookies passed on exactly what sessiond sent, in order.
	if got := resp.Header.Values("Set-Cookie"); !slices.Equal(got, a.SessiondSetCookie) {
		t.Fatalf("the browser got Set-Cookie %q, sessiond sent %q", got, a.SessiondSetCookie)
	}
	return a
}

// jarCookie is the value of the cookie the browser holds for u.
func jarCookie(hc *http.Client, u, name string) (string, bool) {
	parsed, _ := url.Parse(u)
	for _, c := range hc.Jar.Cookies(parsed) {
		if c.Name == name {
			return c.Value, true
		}
	}
	return "", false
}

// wantProblem fails unless a is problem+json with this status and code
// and a request ID, and returns the problem.
func wantProblem(t *testing.T, a answer, status int, code string) client.Problem {
	t.Helper()
	var p client.Problem
	if a.Status != status || a.Header.Get("Content-Type") != "application/problem+json" || json.Unmarshal([]byte(a.Body), &p) != nil {
		t.Fatalf("got %d %s %s, want %d problem+json %s", a.Status, a.Header.Get("Content-Type"), a.Body, status, code)
	}
	if p.Code != code || p.Status != status || p.RequestID == "" {
		t.Fatalf("problem %+v, want %d %s with a request_id", p, status, code)
	}
	return p
}

func TestBrowserSignInForwardCookiesMiddlewareSignOut(t *testing.T) {
	t.Parallel()
	sd := startSessiond(t, sessions.ModeSingle)
	c := newClient(t, sd.URL, apiKey)
	app, served := startApp(t, c)
	b := browser(t)

	alice := login(t, b, app.URL, "alice")
	// sessiond issued the browser's cookies: the browser holds the session
	// cookie with the new token.
	if len(alice.SessiondSetCookie) == 0 {
		t.Fatal("sessiond sent no Set-Cookie on POST /sessions")
	}
	if v, ok := jarCookie(b, app.URL, "__session"); !ok || v != alice.Token {
		t.Fatalf("after sign-in the browser holds __session=%q (%v), want the new token", v, ok)
	}
	// Another person on another browser stays signed in throughout.
	bob := login(t, browser(t), app.URL, "bob")

	t.Run("the middleware accepts the cookie", func(t *testing.T) {
		a := get(t, b, app.URL+"/me")
		if a.Status != http.StatusOK || a.Body != "alice" {
			t.Fatalf("GET /me with the cookie = %d %q, want 200 alice", a.Status, a.Body)
		}
	})
	t.Run("the middleware accepts the bearer token", func(t *testing.T) {
		a := get(t, http.DefaultClient, app.URL+"/me", "Authorization", "Bearer "+bob.Token)
		if a.Status != http.StatusOK || a.Body != "bob" {
			t.Fatalf("GET /me with bob's token = %d %q, want 200 bob", a.Status, a.Body)
		}
	})

	res, err := c.SignOut(t.Context(), alice.Token, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Ended) != 1 || res.Ended[0].ID != alice.SessionID || res.Ended[0].Status != "ended" {
		t.Fatalf("sign-out ended %+v, want alice's session, ended", res.Ended)
	}

	before := *served
	t.Run("after sign-out the cookie is 401 from sessiond, passed through", func(t *testing.T) {
		a := get(t, b, app.URL+"/me", "X-Request-ID", "trace-alice-1")
		p := wantProblem(t, a, http.StatusUnauthorized, "unauthenticated")
		if p.RequestID != "trace-alice-1" || a.Header.Get("X-Request-ID") != "trace-alice-1" {
			t.Errorf("request ID %q / header %q, want sessiond to have seen the caller's trace-alice-1", p.RequestID, a.Header.Get("X-Request-ID"))
		}
		if !strings.HasPrefix(a.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("WWW-Authenticate %q", a.Header.Get("WWW-Authenticate"))
		}
	})
	t.Run("after sign-out the token is 401", func(t *testing.T) {
		wantProblem(t, get(t, http.DefaultClient, app.URL+"/me", "Authorization", "Bearer "+alice.Token), http.StatusUnauthorized, "unauthenticated")
		var p *client.Problem
		if _, err := c.Session(t.Context(), alice.Token); !errors.As(err, &p) || p.Code != "unauthenticated" {
			t.Fatalf("Session(alice's token) = %v, want unauthenticated", err)
		}
	})
	if *served != before {
		t.Errorf("the protected handler ran %d times for signed-out requests", *served-before)
	}
	t.Run("bob is still signed in", func(t *testing.T) {
		s, err := c.Session(t.Context(), bob.Token)
		if err != nil || s.UserID != "bob" || s.Status != "active" {
			t.Fatalf("Session(bob) = %+v, %v; want bob, active", s, err)
		}
	})
}

func TestMiddlewareWithoutCredentialIs401(t *testing.T) {
	t.Parallel()
	sd := startSessiond(t, sessions.ModeSingle)
	app, served := startApp(t, newClient(t, sd.URL, apiKey))
	for name, header := range map[string][]string{
		"no credential":             nil,
		"not a bearer scheme":       {"Authorization", "Basic YWxpY2U6c2VjcmV0"},
		"an empty bearer":           {"Authorization", "Bearer "},
		"another app's cookie only": {"Cookie", "theme=dark"},
		"an empty session cookie":   {"Cookie", "__session="},
	} {
		t.Run(name, func(t *testing.T) {
			a := get(t, http.DefaultClient, app.URL+"/me", header...)
			wantProblem(t, a, http.StatusUnauthorized, "unauthenticated")
			if a.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	t.Run("a garbage token: sessiond's 401", func(t *testing.T) {
		wantProblem(t, get(t, http.DefaultClient, app.URL+"/me", "Cookie", "__session=st_garbage"), http.StatusUnauthorized, "unauthenticated")
	})
	if *served != 0 {
		t.Errorf("the protected handler ran %d times", *served)
	}
}

// When sessiond cannot answer, the caller gets 503 and is not signed
// out: its cookie still works once sessiond is back.
func TestMiddlewareWhenSessiondIsDownIs503(t *testing.T) {
	t.Parallel()

	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		sd := startSessiond(t, sessions.ModeSingle)
		c := newClient(t, sd.URL, apiKey)
		app, served := startApp(t, c)
		alice := login(t, http.DefaultClient, app.URL, "alice")
		sd.Close()
		for _, header := range [][]string{{"Authorization", "Bearer " + alice.Token}, {"Cookie", "__session=" + alice.Token}} {
			a := get(t, http.DefaultClient, app.URL+"/me", header...)
			wantProblem(t, a, http.StatusServiceUnavailable, "unavailable")
			if a.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
		}
		if *served != 0 {
			t.Errorf("the protected handler ran %d times", *served)
		}
	})

	t.Run("sessiond answers 5xx (its database is gone)", func(t *testing.T) {
		t.Parallel()
		sd := startSessiond(t, sessions.ModeSingle)
		app, served := startApp(t, newClient(t, sd.URL, apiKey))
		alice := login(t, http.DefaultClient, app.URL, "alice")
		sd.Store.Close()
		a := get(t, http.DefaultClient, app.URL+"/me", "Authorization", "Bearer "+alice.Token)
		wantProblem(t, a, http.StatusServiceUnavailable, "unavailable")
		if *served != 0 {
			t.Errorf("the protected handler ran %d times", *served)
		}
	})

	t.Run("not problem+json (a proxy's error page)", func(t *testing.T) {
		t.Parallel()
		proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "<html>502 Bad Gateway</html>", http.StatusBadGateway)
		}))
		t.Cleanup(proxy.Close)
		app, _ := startApp(t, newClient(t, proxy.URL, apiKey))
		wantProblem(t, get(t, http.DefaultClient, app.URL+"/me", "Authorization", "Bearer st_x"), http.StatusServiceUnavailable, "unavailable")
		_, err := newClient(t, proxy.URL, apiKey).GetSession(t.Context(), "sess_01JAAAAAAAAAAAAAAAAAAAAAAA")
		var p *client.Problem
		if !errors.As(err, &p) || p.Status != http.StatusBadGateway || p.Code != "" {
			t.Fatalf("GetSession through a failing proxy = %v, want a 502 Problem without a code", err)
		}
	})
}

func TestErrorsAreProblems(t *testing.T) {
	t.Parallel()
	sd := startSessiond(t, sessions.ModeSingle)
	c := newClient(t, sd.URL, apiKey)
	for _, tc := range []struct {
		name   string
		call   func() error
		status int
		code   string
		field  string
	}{
		{"unknown session", func() error {
			_, err := c.GetSession(t.Context(), "sess_01JAAAAAAAAAAAAAAAAAAAAAAA")
			return err
		}, 404, "session_not_found", ""},
		{"malformed session ID", func() error { _, err := c.GetSession(t.Context(), "nope"); return err }, 400, "invalid_id", ""},
		{"empty user ID", func() error { _, err := c.SignIn(t.Context(), client.SignInParams{}); return err }, 400, "invalid_request", "user_id"},
		{"bad IP address", func() error {
			_, err := c.SignIn(t.Context(), client.SignInParams{UserID: "u", IPAddress: "300.1.1.1"})
			return err
		}, 400, "invalid_request", "ip_address"},
		{"unknown client", func() error {
			_, err := c.SignIn(t.Context(), client.SignInParams{UserID: "u", ClientID: "client_01JAAAAAAAAAAAAAAAAAAAAAAA"})
			return err
		}, 404, "client_not_found", ""},
		{"wrong API key", func() error {
			_, err := newClient(t, sd.URL, "sk_wrong_0123456789abcdef").SignIn(t.Context(), client.SignInParams{UserID: "u"})
			return err
		}, 401, "unauthenticated", ""},
		{"a limit over 100", func() error {
			_, err := c.ListUserSessions(t.Context(), "u", client.ListOptions{Limit: 101})
			return err
		}, 400, "invalid_request", "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var p *client.Problem
			if !errors.As(err, &p) {
				t.Fatalf("error %v (%T), want a *client.Problem", err, err)
			}
			if p.Status != tc.status || p.Code != tc.code || p.RequestID == "" || p.RequestID != p.Header.Get("X-Request-ID") {
				t.Fatalf("problem %+v, want %d %s with the answer's request ID", p, tc.status, tc.code)
			}
			if tc.field != "" && p.Errors[tc.field] == "" {
				t.Errorf("errors %v, want a reason for %s", p.Errors, tc.field)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.code) || strings.Contains(msg, "sk_") {
				t.Errorf("Error() = %q: want the code, never a key", msg)
			}
		})
	}
}

func TestBackendEndsAndLists(t *testing.T) {
	t.Parallel()
	sd := startSessiond(t, sessions.ModeMulti)
	c := newClient(t, sd.URL, apiKey)
	ctx := t.Context()
	signIn := func(user, clientID string) client.SignInResult {
		t.Helper()
		res, err := c.SignIn(ctx, client.SignInParams{UserID: user, ClientID: clientID, IPAddress: "::ffff:203.0.113.7", Metadata: map[string]any{"plan": "pro"}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	laptop := signIn("carol", "")
	phone := signIn("carol", "")
	tablet := signIn("carol", "")
	dave := signIn("dave/with slash", laptop.Session.ClientID) // a second account on the laptop

	if ip := laptop.Session.IPAddress; ip == nil || *ip != "203.0.113.7" {
		t.Errorf("ip_address %v, want the IPv4 address unmapped", ip)
	}
	if laptop.Session.Metadata["plan"] != "pro" {
		t.Errorf("metadata %v", laptop.Session.Metadata)
	}

	page, err := c.ListUserSessions(ctx, "carol", client.ListOptions{Limit: 2})
	if err != nil || len(page.Sessions) != 2 || page.NextCursor == "" || page.Sessions[0].ID != tablet.Session.ID {
		t.Fatalf("first page %+v, %v: want tablet first and a cursor", page, err)
	}
	next, err := c.ListUserSessions(ctx, "carol", client.ListOptions{Limit: 2, Cursor: page.NextCursor})
	if err != nil || len(next.Sessions) != 1 || next.Sessions[0].ID != laptop.Session.ID || next.NextCursor != "" {
		t.Fatalf("second page %+v, %v: want the laptop only, last page", next, err)
	}
	onLaptop, err := c.ListClientSessions(ctx, laptop.Session.ClientID, client.ListOptions{})
	if err != nil || len(onLaptop.Sessions) != 2 {
		t.Fatalf("laptop accounts %+v, %v: want carol and dave", onLaptop, err)
	}
	if dave.Session.UserID != "dave/with slash" {
		t.Errorf("user ID %q", dave.Session.UserID)
	}

	// Sign carol out of other devices: the phone stays.
	res, err := c.EndUserSessions(ctx, "carol", phone.Session.ID)
	if err != nil || len(res.Ended) != 2 {
		t.Fatalf("EndUserSessions except phone = %+v, %v; want laptop and tablet ended", res, err)
	}
	for _, s := range res.Ended {
		if s.Status != "revoked" {
			t.Errorf("%s is %s, want revoked", s.ID, s.Status)
		}
	}
	if _, err := c.Session(ctx, phone.Token); err != nil {
		t.Errorf("the phone was kept but Session = %v", err)
	}
	if _, err := c.Session(ctx, dave.Token); err != nil {
		t.Errorf("dave on the laptop is another user but Session = %v", err)
	}

	// End exactly one session, twice: the second time ends nothing and is no error.
	for i, want := range []int{1, 0} {
		res, err := c.EndSession(ctx, phone.Session.ID)
		if err != nil || len(res.Ended) != want {
			t.Fatalf("EndSession #%d = %+v, %v; want %d ended", i+1, res, err, want)
		}
	}
	got, err := c.GetSession(ctx, phone.Session.ID)
	if err != nil || got.Status != "revoked" || got.EndedAt == nil {
		t.Fatalf("phone %+v, %v; want revoked with ended_at", got, err)
	}

	res, err = c.EndClientSessions(ctx, laptop.Session.ClientID)
	if err != nil || len(res.Ended) != 1 || res.Ended[0].ID != dave.Session.ID {
		t.Fatalf("EndClientSessions(laptop) = %+v, %v; want dave's session (carol's was already revoked)", res, err)
	}
	if _, err := c.Session(ctx, dave.Token); err == nil {
		t.Error("dave's token still works after EndClientSessions")
	}
	all, err := c.ListUserSessions(ctx, "carol", client.ListOptions{Status: "all"})
	if err != nil || len(all.Sessions) != 3 {
		t.Fatalf("all of carol's sessions %+v, %v; want 3", all, err)
	}
}

// A request carrying one of sessiond's cookie names twice — the session
// cookie or an account cookie — is refused by the middleware with 401
// before sessiond is asked, with no cookie change; BrowserSession refuses
// it too (ErrDuplicateCookie), so a sign-in handler never takes a client
// ID from a planted copy. A single cookie still works, and the app's own
// cookies never reach sessiond.
func TestDuplicateSessionCookiesAreRefused(t *testing.T) {
	t.Parallel()
	sd := startSessiond(t, sessions.ModeMulti)
	var asked atomic.Int32
	counted := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/session" {
			asked.Add(1)
			if r.Header.Get("Cookie") != "" && strings.Contains(r.Header.Get("Cookie"), "theme=") {
				t.Errorf("the app's own cookie reached sessiond: %q", r.Header.Get("Cookie"))
			}
		}
		sd.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(counted.Close)
	c := newClient(t, counted.URL, apiKey)
	app, served := startApp(t, c)
	victim, err := c.SignIn(t.Context(), client.SignInParams{UserID: "victim"})
	if err != nil {
		t.Fatal(err)
	}
	attacker, err := c.SignIn(t.Context(), client.SignInParams{UserID: "mallory"})
	if err != nil {
		t.Fatal(err)
	}
	acct := "__session_" + victim.Session.ID
	for name, cookie := range map[string]string{
		"the session cookie twice, the attacker's first": "__session=" + attacker.Token + "; __session=" + victim.Token + "; " + acct + "=" + victim.Token,
		"an account cookie twice":                        "__session=" + victim.Token + "; " + acct + "=" + attacker.Token + "; " + acct + "=" + victim.Token,
	} {
		t.Run(name, func(t *testing.T) {
			before := asked.Load()
			a := get(t, http.DefaultClient, app.URL+"/me", "Cookie", cookie)
			wantProblem(t, a, http.StatusUnauthorized, "unauthenticated")
			if set := a.Header.Values("Set-Cookie"); len(set) != 0 {
				t.Errorf("set cookies %q, want none", set)
			}
			req := httptest.NewRequest(http.MethodPost, "/sign-in", nil)
			req.Header.Set("Cookie", cookie)
			if s, err := c.BrowserSession(t.Context(), req); !errors.Is(err, client.ErrDuplicateCookie) {
				t.Errorf("BrowserSession = %+v, %v; want ErrDuplicateCookie", s, err)
			}
			if n := asked.Load() - before; n != 0 {
				t.Errorf("sessiond was asked %d times, want never", n)
			}
		})
	}
	if *served != 0 {
		t.Errorf("the protected handler ran %d times", *served)
	}
	// One of each still works, through the middleware and BrowserSession.
	one := "theme=dark; __session=" + victim.Token + "; " + acct + "=" + victim.Token
	if a := get(t, http.DefaultClient, app.URL+"/me", "Cookie", one); a.Status != http.StatusOK || a.Body != "victim" {
		t.Fatalf("GET /me with one cookie each = %d %q, want 200 victim", a.Status, a.Body)
	}
	req := httptest.NewRequest(http.MethodPost, "/sign-in", nil)
	req.Header.Set("Cookie", one)
	if s, err := c.BrowserSession(t.Context(), req); err != nil || s.ID != victim.Session.ID {
		t.Fatalf("BrowserSession = %+v, %v; want the victim's session", s, err)
	}
	if _, err := c.BrowserSession(t.Context(), httptest.NewRequest(http.MethodPost, "/sign-in", nil)); !errors.Is(err, client.ErrNoSessionCookie) {
		t.Fatalf("BrowserSession without a cookie: %v, want ErrNoSessionCookie", err)
	}
}

// RedirectPath is sessiond's own rule for relative redirect paths.
func TestRedirectPath(t *testing.T) {
	for raw, want := range map[string]string{
		"/": "/", "/settings?tab=2": "/settings?tab=2", "": "/", "//evil.test": "/", `/\evil.test`: "/",
		"/\t/evil.test": "/", "/.//evil.test": "/", "https://evil.test/": "/", "javascript:alert(1)": "/", "relative": "/",
	} {
		if got := client.RedirectPath(raw, "/"); got != want {
			t.Errorf("RedirectPath(%q) = %q, want %q", raw, got, want)
		}
	}
}
