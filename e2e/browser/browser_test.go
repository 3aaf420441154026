// Package browser tests sessiond in a real browser: Debian's Chromium at
// /usr/bin/chromium, driven by chromedp, against the real sessiond handler
// on real TCP listeners, real Postgres, and a tiny app backend. Host names
// are mapped to 127.0.0.1 with --host-resolver-rules, so cookies, CORS and
// SameSite behave as in production, in both deployments:
//
//   - proxied: sessiond behind the app's own origin
//     (http://app.example.test:P/api/auth → sessiond), host-only cookie;
//   - sibling: sessiond on http://auth.example.test:Q beside the app on
//     http://app.example.test:P, cookie for Domain=example.test, CORS with
//     credentials for the app's origin.
//
// The tests run over plain http with SESSIOND_COOKIE_SECURE=false and
// SameSite=Lax: Chromium keeps Secure cookies only from https origins (or
// localhost), and the *.example.test names are what make the sibling
// deployment real. Secure itself is covered by the api tests' Set-Cookie
// checks. When Chromium is missing the tests fail; they never skip.
package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/api"
	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/internal/pgtest"
	"github.com/sessiond/sessiond/internal/sessions"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// chromium is Debian's package; .ci/run installs it.
const chromium = "/usr/bin/chromium"

const (
	apiKey     = "sk_browser_0123456789abcdef"
	cookieName = "__session"
)

// deployment is one way of putting sessiond beside an app.
type deployment struct {
	name string
	// sibling: sessiond on auth.example.test, cookie for example.test;
	// otherwise proxied under the app's /api/auth.
	sibling bool
}

var deployments = []deployment{{name: "proxied"}, {name: "sibling", sibling: true}}

// world is one running deployment: sessiond, the app, a same-site page
// that is not an allowed origin, and a fresh browser.
type world struct {
	t        *testing.T
	svc      *sessions.Service
	sessiond string // as backends reach it
	appURL   string // http://app.example.test:P
	apiURL   string // sessiond as the page reaches it
	evilURL  string // http://evil.example.test:R, same site, not an allowed origin
	cookieAt string // the domain the browser files the cookies under
	ctx      context.Context
}

func listen(t *testing.T) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return ln, port
}

func serve(t *testing.T, ln net.Listener, h http.Handler) {
	t.Helper()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
}

func newWorld(t *testing.T, d deployment, mode sessions.Mode) *world {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("Chromium is needed at %s (apt-get install chromium): %v", chromium, err)
	}
	sdLn, sdPort := listen(t)
	appLn, appPort := listen(t)
	evilLn, evilPort := listen(t)
	w := &world{
		t:        t,
		sessiond: "http://127.0.0.1:" + sdPort,
		appURL:   "http://app.example.test:" + appPort,
		evilURL:  "http://evil.example.test:" + evilPort,
	}
	acfg := api.Config{
		APIKeys:        []string{apiKey},
		CookieName:     cookieName,
		CookieSecure:   false,
		CookieSameSite: "lax",
		OpenAPI:        sessiond.OpenAPI,
		RequestTimeout: 10 * time.Second,
		Logger:         slog.New(slog.DiscardHandler),
	}
	sd, err := client.New(w.sessiond, apiKey, client.WithCookieName(cookieName))
	if err != nil {
		t.Fatal(err)
	}
	a := &app{sessiond: sd, sessiondURL: w.sessiond, cookieName: cookieName}
	if d.sibling {
		acfg.CookieDomain = "example.test"
		acfg.CORSOrigins = []string{w.appURL}
		w.apiURL = "http://auth.example.test:" + sdPort
		w.cookieAt = ".example.test"
	} else {
		a.proxyPrefix = "/api/auth"
		w.apiURL = w.appURL + a.proxyPrefix
		w.cookieAt = "app.example.test"
	}
	a.pageAPI = w.apiURL
	store := pgtest.NewStore(t)
	acfg.Ready = store.Ping
	w.svc = sessions.NewService(store, sessions.Config{Mode: mode, Lifetime: 168 * time.Hour, Retention: 720 * time.Hour})
	handler, err := api.New(w.svc, acfg)
	if err != nil {
		t.Fatal(err)
	}
	serve(t, sdLn, handler)
	serve(t, appLn, a.handler())
	api := w.apiURL
	serve(t, evilLn, http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { servePage(rw, api) }))
	w.ctx = newBrowser(t)
	return w
}

// newBrowser starts a headless Chromium with a fresh profile; every
// *.example.test name resolves to 127.0.0.1.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("host-resolver-rules", "MAP *.example.test 127.0.0.1"),
	}
	// A generous bound that only catches a hang; no assertion is about time.
	ctx, cancelTimeout := context.WithTimeout(context.Background(), 3*time.Minute)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc(); cancelTimeout() })
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return browserCtx
}

// open loads a page.
func (w *world) open(url string) {
	w.t.Helper()
	if err := chromedp.Do(w.ctx, chromedp.Navigate(url), chromedp.WaitReady("h1")); err != nil {
		w.t.Fatalf("open %s: %v", url, err)
	}
}

// answer is what the page's call() returns.
type answer struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
	Error  string          `json:"error"`
}

// js runs an expression of the open page that returns a promise of an
// answer.
func (w *world) js(expr string) answer {
	w.t.Helper()
	a, err := chromedp.Run(w.ctx, chromedp.Evaluate[answer](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		w.t.Fatalf("page: %s: %v", expr, err)
	}
	return a
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// call fetches sessiond from the open page with the browser's cookies.
func (w *world) call(method, path string, body any) answer {
	w.t.Helper()
	expr := fmt.Sprintf("call(%s, %s)", jsString(method), jsString(path))
	if body != nil {
		b, _ := json.Marshal(body)
		expr = fmt.Sprintf("call(%s, %s, %s)", jsString(method), jsString(path), b)
	}
	return w.js(expr)
}

// signIn signs user in through the app's backend, from the app's page.
func (w *world) signIn(user string) string {
	w.t.Helper()
	a := w.js(fmt.Sprintf("signIn(%s, %s)", jsString(user), jsString(password(user))))
	var out struct {
		SessionID string `json:"session_id"`
	}
	if a.Status != http.StatusOK || json.Unmarshal(a.Body, &out) != nil || out.SessionID == "" {
		w.t.Fatalf("sign-in of %s through the app: %d %s", user, a.Status, a.Body)
	}
	return out.SessionID
}

type sessionJSON struct {
	ID       string `json:"id"`
	UserID   string `json:"user_id"`
	ClientID string `json:"client_id"`
}

// whoAmI is GET /session from the page: the session, or "" on a 401.
func (w *world) whoAmI() sessionJSON {
	w.t.Helper()
	a := w.call(http.MethodGet, "/session", nil)
	switch a.Status {
	case http.StatusOK:
		var s sessionJSON
		if err := json.Unmarshal(a.Body, &s); err != nil {
			w.t.Fatalf("who am I: %s", a.Body)
		}
		return s
	case http.StatusUnauthorized:
		return sessionJSON{}
	}
	w.t.Fatalf("who am I: %d %s %s", a.Status, a.Body, a.Error)
	return sessionJSON{}
}

// jar is the browser's cookie jar, by name, as Chromium holds it
// (CDP Storage.getCookies), each cookie checked for the deployment's
// attributes.
func (w *world) jar() map[string]*network.Cookie {
	w.t.Helper()
	res, err := chromedp.CallBrowser(w.ctx, storage.GetCookies, storage.GetCookiesParams{})
	if err != nil {
		w.t.Fatalf("read the cookie jar: %v", err)
	}
	out := map[string]*network.Cookie{}
	for _, c := range res.Cookies {
		if c.Name != cookieName && !strings.HasPrefix(c.Name, cookieName+"_") {
			w.t.Errorf("the browser holds an unexpected cookie %s", c.Name)
			continue
		}
		if c.Domain != w.cookieAt || c.Path != "/" || !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax {
			w.t.Errorf("cookie %s: Domain=%s Path=%s HttpOnly=%v SameSite=%s, want Domain=%s Path=/ HttpOnly SameSite=Lax",
				c.Name, c.Domain, c.Path, c.HTTPOnly, c.SameSite, w.cookieAt)
		}
		out[c.Name] = c
	}
	return out
}

// wantJar fails unless the browser holds exactly the active cookie for
// active ("" for none) and the account cookies of accounts.
func (w *world) wantJar(active string, accounts ...string) {
	w.t.Helper()
	jar := w.jar()
	want := []string{}
	if active != "" {
		want = append(want, cookieName)
	}
	for _, id := range accounts {
		want = append(want, cookieName+"_"+id)
	}
	got := make([]string, 0, len(jar))
	for name := range jar {
		got = append(got, name)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		w.t.Fatalf("the browser holds cookies %v, want %v", got, want)
	}
	if active != "" && w.tokenStatus(jar[cookieName].Value) != active {
		w.t.Fatalf("the active cookie is not session %s", active)
	}
	for _, id := range accounts {
		if s := w.tokenStatus(jar[cookieName+"_"+id].Value); s != id {
			w.t.Fatalf("account cookie of %s holds the token of %q", id, s)
		}
	}
}

// tokenStatus is the session a token answers GET /session for, asked as
// a backend would with the bearer token, or "" when it answers 401.
func (w *world) tokenStatus(token string) string {
	w.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, w.sessiond+"/session", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		return ""
	}
	var s sessionJSON
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&s) != nil {
		w.t.Fatalf("GET /session with a token: %d", resp.StatusCode)
	}
	return s.ID
}

// tokens are the tokens the browser holds now, by cookie name.
func (w *world) tokens() map[string]string {
	w.t.Helper()
	out := map[string]string{}
	for name, c := range w.jar() {
		out[name] = c.Value
	}
	return out
}

// revoke ends a session with the API key, as a backend (or an admin) does.
func (w *world) revoke(id string) {
	w.t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, w.sessiond+"/sessions/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		w.t.Fatalf("revoke %s: %d", id, resp.StatusCode)
	}
}

func forEachDeployment(t *testing.T, mode sessions.Mode, test func(t *testing.T, w *world)) {
	for _, d := range deployments {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			test(t, newWorld(t, d, mode))
		})
	}
}

func TestSignInWhoAmISignOut(t *testing.T) {
	t.Parallel()
	forEachDeployment(t, sessions.ModeSingle, func(t *testing.T, w *world) {
		w.open(w.appURL + "/")
		if s := w.whoAmI(); s.ID != "" {
			t.Fatalf("a fresh browser is signed in as %s", s.UserID)
		}
		alice := w.signIn("alice")
		w.wantJar(alice)
		if s := w.whoAmI(); s.ID != alice || s.UserID != "alice" {
			t.Fatalf("who am I from the page: %+v, want alice's session %s", s, alice)
		}
		held := w.tokens()

		if a := w.call(http.MethodDelete, "/session", nil); a.Status != http.StatusOK {
			t.Fatalf("sign-out from the page: %d %s %s", a.Status, a.Body, a.Error)
		}
		w.wantJar("")
		if s := w.whoAmI(); s.ID != "" {
			t.Fatalf("after sign-out who am I is %s, want 401", s.UserID)
		}
		for name, token := range held {
			if w.tokenStatus(token) != "" {
				t.Errorf("the token of cookie %s still answers 200 after sign-out", name)
			}
		}
	})
}

func TestTwoAccountsInOneBrowser(t *testing.T) {
	t.Parallel()
	forEachDeployment(t, sessions.ModeMulti, func(t *testing.T, w *world) {
		w.open(w.appURL + "/")
		alice := w.signIn("alice")
		bob := w.signIn("bob")
		w.wantJar(bob, alice, bob)
		if s := w.whoAmI(); s.ID != bob {
			t.Fatalf("after bob's sign-in the page is %q, want bob", s.UserID)
		}

		// Switch to alice without signing in again.
		if a := w.call(http.MethodPost, "/session/active", map[string]string{"session_id": alice}); a.Status != http.StatusOK {
			t.Fatalf("switch to alice: %d %s %s", a.Status, a.Body, a.Error)
		}
		w.wantJar(alice, alice, bob)
		if s := w.whoAmI(); s.ID != alice {
			t.Fatalf("after switching the page is %q, want alice", s.UserID)
		}
		held := w.tokens()

		// Sign out the active account: bob becomes active.
		if a := w.call(http.MethodDelete, "/session?session_id="+alice, nil); a.Status != http.StatusOK {
			t.Fatalf("sign out alice: %d %s %s", a.Status, a.Body, a.Error)
		}
		w.wantJar(bob, bob)
		if s := w.whoAmI(); s.ID != bob {
			t.Fatalf("after signing alice out the page is %q, want bob", s.UserID)
		}
		if w.tokenStatus(held[cookieName+"_"+alice]) != "" {
			t.Error("alice's token still answers 200 after her sign-out")
		}

		// Sign out of all accounts.
		carol := w.signIn("carol")
		w.wantJar(carol, bob, carol)
		held = w.tokens()
		if a := w.call(http.MethodDelete, "/session", nil); a.Status != http.StatusOK {
			t.Fatalf("sign out of all accounts: %d %s %s", a.Status, a.Body, a.Error)
		}
		w.wantJar("")
		if s := w.whoAmI(); s.ID != "" {
			t.Fatalf("after signing out of all accounts the page is %s", s.UserID)
		}
		for name, token := range held {
			if w.tokenStatus(token) != "" {
				t.Errorf("the token of cookie %s still answers 200", name)
			}
		}
	})
}

func TestDeadCookieIsCleared(t *testing.T) {
	t.Parallel()
	forEachDeployment(t, sessions.ModeMulti, func(t *testing.T, w *world) {
		w.open(w.appURL + "/")
		alice := w.signIn("alice")
		bob := w.signIn("bob")
		w.revoke(bob) // the active account, ended elsewhere
		if s := w.whoAmI(); s.ID != "" {
			t.Fatalf("who am I with a revoked cookie: %s, want 401", s.UserID)
		}
		// The 401 cleared the dead cookies and made nobody active (an
		// account cookie may have been planted); the page switches to alice.
		w.wantJar("", alice)
		if a := w.call(http.MethodPost, "/session/active", map[string]string{"session_id": alice}); a.Status != http.StatusOK {
			t.Fatalf("switch to alice: %d %s %s", a.Status, a.Body, a.Error)
		}
		w.wantJar(alice, alice)
		if s := w.whoAmI(); s.ID != alice {
			t.Fatalf("the page is %q, want alice", s.UserID)
		}
		w.revoke(alice)
		if s := w.whoAmI(); s.ID != "" {
			t.Fatalf("who am I with a revoked cookie: %s, want 401", s.UserID)
		}
		w.wantJar("")
	})
}

func TestOtherSameSitePageEndsNothing(t *testing.T) {
	t.Parallel()
	forEachDeployment(t, sessions.ModeMulti, func(t *testing.T, w *world) {
		w.open(w.appURL + "/")
		alice := w.signIn("alice")
		bob := w.signIn("bob")

		// A page on evil.example.test: the same site, so SameSite=Lax
		// cookies go along, but not an allowed CORS origin.
		w.open(w.evilURL + "/")
		for _, path := range []string{"/session", "/session?session_id=" + alice, "/sessions/" + bob, "/clients/x/sessions"} {
			if a := w.call(http.MethodDelete, path, nil); a.Status != 0 {
				t.Errorf("DELETE %s from another origin: the page read %d, want a refused preflight", path, a.Status)
			}
		}
		if a := w.call(http.MethodPost, "/session/active", map[string]string{"session_id": alice}); a.Status != 0 {
			t.Errorf("POST /session/active (JSON) from another origin: the page read %d", a.Status)
		}
		// A "simple" request skips the preflight and reaches sessiond
		// with the cookies, but is not JSON, so it is refused (415).
		w.js(fmt.Sprintf(`fetch(%s, {method: "POST", mode: "no-cors", credentials: "include",
			headers: {"Content-Type": "text/plain"}, body: %s}).then(() => ({status: 0}), () => ({status: 0}))`,
			jsString(w.apiURL+"/session/active"), jsString(`{"session_id":"`+alice+`"}`)))

		w.wantJar(bob, alice, bob)
		w.open(w.appURL + "/")
		if s := w.whoAmI(); s.ID != bob {
			t.Fatalf("after the other page, the app is %q, want bob still", s.UserID)
		}
		for name, token := range w.tokens() {
			if w.tokenStatus(token) == "" {
				t.Errorf("the token of cookie %s was ended by another origin", name)
			}
		}
	})
}

// Cookie tossing, in a real browser: a page on another host of the site
// (evil.example.test) sets __session=<its own live token> for the parent
// domain — with Path=/ beside the app's host-only cookie, and with the
// longer paths /session and /signin beside the sibling deployment's
// parent-domain cookie (the same name, Domain and Path would replace that
// one outright, which is why that deployment must trust every host of the
// domain). The browser then sends two cookies named __session and nothing
// tells which is the user's: sessiond answers 401 and changes no cookie, the
// app refuses to sign a second account in on either copy's client, and no
// session ends. (Before, the first copy won.)
func TestTossedCookieIsNeverTrusted(t *testing.T) {
	t.Parallel()
	forEachDeployment(t, sessions.ModeMulti, func(t *testing.T, w *world) {
		w.open(w.appURL + "/")
		victim := w.signIn("victim")
		held := w.tokens()
		mallory, err := w.svc.SignIn(context.Background(), sessions.Backend("test"), sessions.SignInInput{UserID: "mallory"})
		if err != nil {
			t.Fatal(err)
		}
		w.open(w.evilURL + "/")
		paths := []string{"/session", "/signin"}
		if w.cookieAt != ".example.test" {
			paths = append(paths, "/") // beside the host-only cookie
		}
		for _, path := range paths {
			w.js(fmt.Sprintf(`(async () => { document.cookie = %s; return {status: 200}; })()`,
				jsString(cookieName+"="+mallory.Token+"; domain=example.test; path="+path)))
		}

		w.open(w.appURL + "/")
		before := w.rawJar()
		if n := before[cookieName]; n != 1+len(paths) {
			t.Fatalf("the browser holds %d cookies named %s, want the victim's and the tossed ones", n, cookieName)
		}
		a := w.call(http.MethodGet, "/session", nil)
		if a.Status != http.StatusUnauthorized {
			t.Fatalf("who am I with a tossed duplicate: %d %s, want 401", a.Status, a.Body)
		}
		if a := w.call(http.MethodDelete, "/session", nil); a.Status != http.StatusUnauthorized {
			t.Fatalf("sign-out with a tossed duplicate: %d %s, want 401", a.Status, a.Body)
		}
		signIn := w.js(fmt.Sprintf("signIn(%s, %s)", jsString("bob"), jsString(password("bob"))))
		if signIn.Status != http.StatusUnauthorized {
			t.Fatalf("a second account's sign-in with a tossed duplicate: %d %s, want 401", signIn.Status, signIn.Body)
		}
		if after := w.rawJar(); !maps.Equal(before, after) {
			t.Fatalf("the cookies changed: %v, then %v", before, after)
		}
		for name, token := range held {
			if w.tokenStatus(token) != victim {
				t.Errorf("the victim's cookie %s no longer answers 200", name)
			}
		}
		if w.tokenStatus(mallory.Token) != mallory.Session.ID {
			t.Error("the tossed session was ended")
		}
	})
}

// rawJar counts the browser's cookies by name, whatever their attributes.
func (w *world) rawJar() map[string]int {
	w.t.Helper()
	res, err := chromedp.CallBrowser(w.ctx, storage.GetCookies, storage.GetCookiesParams{})
	if err != nil {
		w.t.Fatalf("read the cookie jar: %v", err)
	}
	out := map[string]int{}
	for _, c := range res.Cookies {
		out[c.Name]++
	}
	return out
}
