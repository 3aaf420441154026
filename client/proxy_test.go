package client_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/internal/sessions"
)

// upstream is a real sessiond behind a front that keeps the headers of
// every request that reached it.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen []http.Header
}

func recordingSessiond(t *testing.T, mode sessions.Mode) *upstream {
	t.Helper()
	sd := startSessiond(t, mode)
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, r.Header.Clone())
		u.mu.Unlock()
		sd.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) calls() []http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.seen)
}

// appWithProxy is startApp's backend plus sessiond under /api/auth on the
// app's own origin, through client.Proxy.
func appWithProxy(t *testing.T, sd *upstream) *httptest.Server {
	t.Helper()
	app, _ := startApp(t, newClient(t, sd.URL, apiKey))
	target, err := url.Parse(sd.URL)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/auth/", http.StripPrefix("/api/auth", client.Proxy(target)))
	mux.Handle("/", app.Config.Handler)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestProxyServesThePagesCallsAndNothingElse(t *testing.T) {
	sd := recordingSessiond(t, sessions.ModeMulti)
	app := appWithProxy(t, sd)
	hc := browser(t)
	alice := login(t, hc, app.URL, "alice")

	t.Run("who is signed in, with only the headers sessiond reads", func(t *testing.T) {
		before := len(sd.calls())
		a := get(t, hc, app.URL+"/api/auth/session",
			"Authorization", "Bearer sk_the_apps_own_secret", "X-Forwarded-For", "203.0.113.9", "User-Agent", "the-browser", "Accept", "application/json")
		if a.Status != http.StatusOK || !strings.Contains(a.Body, alice.SessionID) {
			t.Fatalf("GET /api/auth/session = %d %s", a.Status, a.Body)
		}
		calls := sd.calls()[before:]
		if len(calls) != 1 {
			t.Fatalf("%d calls reached sessiond, want 1", len(calls))
		}
		h := calls[0]
		if h.Get("Authorization") != "" || h.Get("X-Forwarded-For") != "" || h.Get("User-Agent") == "the-browser" {
			t.Errorf("sessiond saw the app's headers: %v", h)
		}
		if h.Get("Cookie") == "" || h.Get("Accept") != "application/json" {
			t.Errorf("sessiond did not get the page's cookie and Accept: %v", h)
		}
		for name := range a.Header {
			if !slices.Contains([]string{"Content-Type", "Cache-Control", "Retry-After", "X-Request-Id", "Set-Cookie", "Content-Length", "Date"}, name) {
				t.Errorf("the page got sessiond's header %s", name)
			}
		}
	})

	t.Run("the operator's endpoints are a 404 without a call", func(t *testing.T) {
		before := len(sd.calls())
		for _, p := range []string{"/metrics", "/readyz", "/healthz", "/openapi.yaml", "/sessions/" + alice.SessionID, "/users/alice/sessions/x", "/", "/session/active/x"} {
			if a := get(t, hc, app.URL+"/api/auth"+p); a.Status != http.StatusNotFound {
				t.Errorf("GET /api/auth%s = %d, want 404", p, a.Status)
			}
		}
		if n := len(sd.calls()) - before; n != 0 {
			t.Errorf("%d calls reached sessiond", n)
		}
	})

	t.Run("a sign-out through it clears the browser's cookies", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodDelete, app.URL+"/api/auth/session", nil)
		if a := send(t, hc, req); a.Status != http.StatusOK {
			t.Fatalf("DELETE /api/auth/session = %d %s", a.Status, a.Body)
		}
		if v, ok := jarCookie(hc, app.URL, "__session"); ok {
			t.Errorf("the browser still holds __session=%s", v)
		}
		if a := get(t, hc, app.URL+"/api/auth/session"); a.Status != http.StatusUnauthorized {
			t.Errorf("after the sign-out GET /api/auth/session = %d", a.Status)
		}
	})
}

func TestProxyWithSessiondDownIs502(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	target, _ := url.Parse(down.URL)
	down.Close()
	w := httptest.NewRecorder()
	http.StripPrefix("/api/auth", client.Proxy(target)).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/auth/session", nil))
	if w.Code != http.StatusBadGateway {
		t.Errorf("sessiond down: %d, want 502", w.Code)
	}
}
