package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"testing/fstest"
)

// fakeSessiond stands in for sessiond in these unit tests only; the demo
// runs against the real one in its Chromium e2e tests.
func fakeSessiond(t *testing.T, wantClient bool) (*httptest.Server, *[]string) {
	t.Helper()
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Method+" "+r.URL.RequestURI()+" auth="+r.Header.Get("Authorization")+" cookie="+r.Header.Get("Cookie"))
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/sessions":
			body, _ := io.ReadAll(r.Body)
			if wantClient && !strings.Contains(string(body), `"client_id":"client_1"`) {
				t.Errorf("sign-in body %s: want the browser's client", body)
			}
			w.Header().Add("Set-Cookie", "__session=st_x; Path=/; HttpOnly; SameSite=Lax")
			w.Header().Add("Set-Cookie", "__session_sess_1=st_x; Path=/; HttpOnly; SameSite=Lax")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"session":{"id":"sess_1","user_id":"alice","client_id":"client_1"},"token":"st_x","ended":[]}`))
		case r.Method == http.MethodGet && r.URL.Path == "/session":
			if r.Header.Get("Cookie") == "" && r.Header.Get("Authorization") != "Bearer st_x" {
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"type":"about:blank","title":"Unauthorized","status":401,"code":"unauthenticated","detail":"no","request_id":"r1"}`))
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"id":"sess_1","user_id":"alice","client_id":"client_1"}`))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}

func demo(t *testing.T, upstream string) http.Handler {
	t.Helper()
	target, _ := url.Parse(upstream)
	s, _ := newSessiond(upstream, "sk_test")
	return handler(s, target, http.FS(fstest.MapFS{"index.html": {Data: []byte("page")}}))
}

func TestSignInForwardsSessiondCookiesAndStaysOnSite(t *testing.T) {
	up, seen := fakeSessiond(t, false)
	h := demo(t, up.URL)
	for _, tc := range []struct{ ret, want string }{
		{"/vue.html", "/vue.html"},
		{"//evil.example/", "/"},
		{"https://evil.example/", "/"},
		{`/\evil.example`, "/"},
		{"/\t/evil.example", "/"},
		{"/.//evil.example", "/"},
		{"/%2e//evil.example", "/"},
		{"", "/"},
	} {
		r := httptest.NewRequest(http.MethodPost, "/sign-in", strings.NewReader(url.Values{"user_id": {"alice"}, "return": {tc.ret}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != tc.want {
			t.Errorf("return %q: %d to %q, want 303 to %q", tc.ret, w.Code, w.Header().Get("Location"), tc.want)
		}
		if got := w.Header().Values("Set-Cookie"); len(got) != 2 || got[0] != "__session=st_x; Path=/; HttpOnly; SameSite=Lax" {
			t.Errorf("Set-Cookie %q: want sessiond's two headers unchanged", got)
		}
	}
	if !strings.Contains((*seen)[len(*seen)-1], "auth=Bearer sk_test") {
		t.Errorf("sign-in without the API key: %v", *seen)
	}
}

func TestSecondAccountJoinsTheBrowsersClient(t *testing.T) {
	up, seen := fakeSessiond(t, true)
	h := demo(t, up.URL)
	r := httptest.NewRequest(http.MethodPost, "/sign-in", strings.NewReader("user_id=bob"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(&http.Cookie{Name: "__session", Value: "st_x"})
	h.ServeHTTP(httptest.NewRecorder(), r)
	if len(*seen) != 2 || !strings.HasPrefix((*seen)[0], "GET /session ") {
		t.Fatalf("calls %v: want GET /session (the browser's client) then POST /sessions", *seen)
	}
}

func TestProxyServesSessiondUnderAPIAuth(t *testing.T) {
	up, seen := fakeSessiond(t, false)
	h := demo(t, up.URL)
	r := httptest.NewRequest(http.MethodGet, "/api/auth/session", nil)
	r.AddCookie(&http.Cookie{Name: "__session", Value: "st_x"})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK || (*seen)[0] != "GET /session auth= cookie=__session=st_x" {
		t.Errorf("proxied %d, upstream saw %v", w.Code, *seen)
	}
}

func TestMeIsBehindTheClientsMiddleware(t *testing.T) {
	up, _ := fakeSessiond(t, false)
	h := demo(t, up.URL)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/me", nil))
	if w.Code != http.StatusUnauthorized {
		t.Errorf("/api/me signed out: %d, want 401", w.Code)
	}
	r := httptest.NewRequest(http.MethodGet, "/api/me", nil)
	r.AddCookie(&http.Cookie{Name: "__session", Value: "st_x"})
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"user_id":"alice"`) {
		t.Errorf("/api/me signed in: %d %s", w.Code, w.Body)
	}
	up.Close()
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("/api/me with sessiond stopped: %d, want 503, never 401", w.Code)
	}
}

func TestSessiondDown(t *testing.T) {
	up, _ := fakeSessiond(t, false)
	h := demo(t, up.URL)
	up.Close()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/auth/session", nil))
	if w.Code != http.StatusBadGateway {
		t.Errorf("proxy to a stopped sessiond: %d, want 502 (the page shows it cannot reach the service)", w.Code)
	}
	r := httptest.NewRequest(http.MethodPost, "/sign-in", strings.NewReader("user_id=alice"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusBadGateway || len(w.Header().Values("Set-Cookie")) != 0 {
		t.Errorf("sign-in with sessiond stopped: %d %v, want 502 and no cookie", w.Code, w.Header().Values("Set-Cookie"))
	}
}

// The sign-in form is refused from another origin (CSRF): a browser marks
// a cross-site POST with Sec-Fetch-Site or, in older browsers, Origin; the
// demo answers 403 and never asks sessiond. Its own pages still sign in.
func TestSignInFormRefusesCrossSiteRequests(t *testing.T) {
	up, seen := fakeSessiond(t, false)
	h := demo(t, up.URL)
	post := func(header ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "http://demo.test/sign-in", strings.NewReader("user_id=alice&return=/vue.html"))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for name, header := range map[string][]string{
		"cross-site":                   {"Sec-Fetch-Site", "cross-site"},
		"same-site, another host":      {"Sec-Fetch-Site", "same-site"},
		"another origin, no Sec-Fetch": {"Origin", "https://evil.example"},
	} {
		if w := post(header...); w.Code != http.StatusForbidden || len(w.Header().Values("Set-Cookie")) != 0 {
			t.Errorf("%s: %d, Set-Cookie %q; want 403 and no cookie", name, w.Code, w.Header().Values("Set-Cookie"))
		}
	}
	if len(*seen) != 0 {
		t.Fatalf("sessiond was asked %v for a cross-site sign-in", *seen)
	}
	for name, header := range map[string][]string{
		"same-origin":              {"Sec-Fetch-Site", "same-origin"},
		"its own origin":           {"Origin", "http://demo.test"},
		"not a browser (no marks)": nil,
	} {
		if w := post(header...); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/vue.html" {
			t.Errorf("%s: %d to %q, want 303 to /vue.html", name, w.Code, w.Header().Get("Location"))
		}
	}
}

// A sign-in whose request carries the session cookie twice (a sibling host
// planted one for the parent domain) is refused: the planted copy must not
// choose the client the new session joins, and the demo cannot tell which
// copy is the browser's own. sessiond is not asked at all.
func TestSignInWithADuplicatedSessionCookieIsRefused(t *testing.T) {
	up, seen := fakeSessiond(t, false)
	h := demo(t, up.URL)
	for _, cookie := range []string{
		"__session=st_attacker; __session=st_x",
		"__session=st_x; __session_sess_01J00000000000000000000000=st_attacker; __session_sess_01J00000000000000000000000=st_x",
	} {
		r := httptest.NewRequest(http.MethodPost, "/sign-in", strings.NewReader("user_id=bob"))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Cookie", cookie)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized || len(w.Header().Values("Set-Cookie")) != 0 {
			t.Errorf("%s: %d, Set-Cookie %q; want 401 and no cookie", cookie, w.Code, w.Header().Values("Set-Cookie"))
		}
	}
	if len(*seen) != 0 {
		t.Fatalf("sessiond was asked %v", *seen)
	}
}
