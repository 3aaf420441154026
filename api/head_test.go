package api_test

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"
)

// HEAD answers every GET endpoint with the GET's status and headers and
// no body (RFC 9110 §9.3.2), so monitors can probe cheaply. The contract
// check validates each HEAD answer against its GET in openapi.yaml.
func TestHeadAnswersEveryGet(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.mustSignIn(t, "user_head", "")
	for _, tc := range []struct {
		name, path string
		c          cred
		status     int
	}{
		{"liveness", "/healthz", noCred, http.StatusOK},
		{"readiness", "/readyz", noCred, http.StatusOK},
		{"the document", "/openapi.yaml", noCred, http.StatusOK},
		{"who am I with the token", "/session", bearer(s.Token), http.StatusOK},
		{"who am I with the cookie", "/session", cookie(s.Token), http.StatusOK},
		{"who am I without a credential", "/session", noCred, http.StatusUnauthorized},
		{"one session", "/sessions/" + s.ID, backend, http.StatusOK},
		{"a malformed session ID", "/sessions/nope", backend, http.StatusBadRequest},
		{"a user's sessions", "/users/" + url.PathEscape(s.UserID) + "/sessions", backend, http.StatusOK},
		{"a client's sessions", "/clients/" + s.ClientID + "/sessions", backend, http.StatusOK},
		{"another user's sessions", "/users/someone_else/sessions", bearer(s.Token), http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			get := e.do(t, http.MethodGet, tc.path, tc.c, nil)
			head := e.do(t, http.MethodHead, tc.path, tc.c, nil)
			if get.Status != tc.status || head.Status != tc.status {
				t.Fatalf("GET %d, HEAD %d, want both %d", get.Status, head.Status, tc.status)
			}
			if len(head.Body) != 0 {
				t.Errorf("HEAD has a body: %q", head.Body)
			}
			for _, h := range []string{"Content-Type", "Cache-Control", "WWW-Authenticate"} {
				if g, hd := get.Header.Get(h), head.Header.Get(h); g != hd {
					t.Errorf("%s: GET %q, HEAD %q", h, g, hd)
				}
			}
			if head.Header.Get("X-Request-ID") == "" {
				t.Error("HEAD answer has no X-Request-ID")
			}
			if got, want := head.Header.Get("Content-Length"), strconv.Itoa(len(get.Body)); got != want {
				t.Errorf("HEAD Content-Length %q, want the GET body's %s", got, want)
			}
		})
	}

	t.Run("metrics", func(t *testing.T) {
		// The exposition changes between two requests, so only its
		// status and type are compared.
		get := e.do(t, http.MethodGet, "/metrics", noCred, nil)
		head := e.do(t, http.MethodHead, "/metrics", noCred, nil)
		if get.Status != http.StatusOK || head.Status != http.StatusOK || len(head.Body) != 0 {
			t.Fatalf("GET %d, HEAD %d with %d body bytes", get.Status, head.Status, len(head.Body))
		}
		if g, h := get.Header.Get("Content-Type"), head.Header.Get("Content-Type"); g != h {
			t.Errorf("Content-Type: GET %q, HEAD %q", g, h)
		}
	})

	t.Run("HEAD of a session is not a sign-out", func(t *testing.T) {
		e.wantActive(t, s)
	})
}

// HEAD is no way around a method an endpoint does not answer.
func TestHeadOnPostOnlyEndpointIsMethodNotAllowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do(t, http.MethodHead, "/sessions", backend, nil)
	r.wantStatus(t, http.StatusMethodNotAllowed)
	if len(r.Body) != 0 {
		t.Errorf("HEAD has a body: %q", r.Body)
	}
}
