package api_test

import (
	"bytes"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/pgtest"
)

// doRaw is do with every header spelled out, for what cred cannot say:
// other schemes, raw cookies, X-Request-ID.
func (e *testEnv) doRaw(t *testing.T, method, path string, header http.Header, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, e.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return response{Status: resp.StatusCode, Header: resp.Header, Body: readAll(t, resp)}
}

func TestOperationalEndpoints(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	t.Run("healthz answers 200", func(t *testing.T) {
		r := e.do(t, http.MethodGet, "/healthz", noCred, nil)
		r.wantStatus(t, http.StatusOK)
		if !sameJSON(r.Body, `{"status":"ok"}`) {
			t.Errorf("body %s", r.Body)
		}
	})
	t.Run("readyz answers 200 while the database answers", func(t *testing.T) {
		r := e.do(t, http.MethodGet, "/readyz", noCred, nil)
		r.wantStatus(t, http.StatusOK)
		if !sameJSON(r.Body, `{"status":"ok"}`) {
			t.Errorf("body %s", r.Body)
		}
	})
	t.Run("openapi.yaml is the document the server implements", func(t *testing.T) {
		r := e.do(t, http.MethodGet, "/openapi.yaml", noCred, nil)
		r.wantStatus(t, http.StatusOK)
		if !bytes.Equal(r.Body, sessiond.OpenAPI) {
			t.Errorf("GET /openapi.yaml served %d bytes that differ from openapi.yaml (%d bytes)", len(r.Body), len(sessiond.OpenAPI))
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/yaml") {
			t.Errorf("Content-Type %q", ct)
		}
	})
	t.Run("metrics count requests by route, never by raw path", func(t *testing.T) {
		s := e.mustSignIn(t, "alice", "")
		e.do(t, http.MethodGet, "/sessions/"+s.ID, backend, nil).wantStatus(t, http.StatusOK)
		e.do(t, http.MethodGet, "/no/such/endpoint", noCred, nil)
		r := e.do(t, http.MethodGet, "/metrics", noCred, nil)
		r.wantStatus(t, http.StatusOK)
		for _, want := range []string{
			"sessiond_http_requests_total",
			"sessiond_http_request_duration_seconds",
			`method="POST",route="/sessions",status="201"`,
			`method="GET",route="/sessions/:id",status="200"`,
			`route="unmatched"`,
		} {
			if !bytes.Contains(r.Body, []byte(want)) {
				t.Errorf("metrics lack %s", want)
			}
		}
		for _, secret := range []string{s.ID, s.Token, apiKey, "/no/such/endpoint"} {
			if bytes.Contains(r.Body, []byte(secret)) {
				t.Errorf("metrics contain %q", secret)
			}
		}
	})
	t.Run("none of them needs credentials, and garbage ones do not hurt", func(t *testing.T) {
		for _, path := range []string{"/healthz", "/readyz", "/openapi.yaml", "/metrics"} {
			e.do(t, http.MethodGet, path, bearer("garbage"), nil).wantStatus(t, http.StatusOK)
		}
	})
}

// TestReadyzWithoutDatabase: a replica whose database is gone is alive but
// not ready, and says when to try again.
func TestReadyzWithoutDatabase(t *testing.T) {
	t.Parallel()
	store := pgtest.NewStore(t)
	e := newEnvOn(t, store)
	e.do(t, http.MethodGet, "/readyz", noCred, nil).wantStatus(t, http.StatusOK)
	store.Close()

	r := e.do(t, http.MethodGet, "/readyz", noCred, nil)
	r.wantProblem(t, http.StatusServiceUnavailable, "unavailable")
	if r.Header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After")
	}
	// Out of reach, not out of time: the answer and the metric say which.
	wantDetail(t, r, "The database is unavailable; try again shortly.")
	waitForMetric(t, e, `sessiond_http_unavailable_total{cause="database"} 1`)
	waitForMetric(t, e, `sessiond_http_unavailable_total{cause="deadline"} 0`)
	e.do(t, http.MethodGet, "/healthz", noCred, nil).wantStatus(t, http.StatusOK)
}

func TestRoutingFallbacks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, c := range []struct {
		name, method, path string
		status             int
		code               string
		allow              []string // the methods a 405 must offer
	}{
		{"unknown route", http.MethodGet, "/nope", 404, "not_found", nil},
		{"unknown route under a known prefix", http.MethodGet, "/users/alice", 404, "not_found", nil},
		{"unknown route deeper than a known one", http.MethodGet, "/sessions/" + anUnknownSession + "/tokens", 404, "not_found", nil},
		{"a trailing slash", http.MethodGet, "/session/", 404, "not_found", nil},
		{"a trailing slash on an ending endpoint", http.MethodDelete, "/sessions/" + anUnknownSession + "/", 404, "not_found", nil},
		{"a trailing slash on healthz", http.MethodGet, "/healthz/", 404, "not_found", nil},
		{"PUT /session", http.MethodPut, "/session", 405, "method_not_allowed", []string{"GET", "DELETE"}},
		{"POST /session", http.MethodPost, "/session", 405, "method_not_allowed", []string{"GET", "DELETE"}},
		{"GET /sessions", http.MethodGet, "/sessions", 405, "method_not_allowed", []string{"POST"}},
		{"PATCH /sessions/{id}", http.MethodPatch, "/sessions/" + anUnknownSession, 405, "method_not_allowed", []string{"GET", "DELETE"}},
		{"POST /healthz", http.MethodPost, "/healthz", 405, "method_not_allowed", []string{"GET"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			// With an API key too: the fallbacks come before anything else.
			for _, cr := range []cred{noCred, backend} {
				r := e.do(t, c.method, c.path, cr, nil)
				r.wantProblem(t, c.status, c.code)
				allow := r.Header.Get("Allow")
				for _, m := range c.allow {
					if !strings.Contains(allow, m) {
						t.Errorf("Allow %q lacks %s", allow, m)
					}
				}
			}
		})
	}
}

// TestEveryAnswerHasTheSafetyHeaders: answers carry sessions and tokens, so
// none may be cached or sniffed; successes, problems and fallbacks alike.
func TestEveryAnswerHasTheSafetyHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.mustSignIn(t, "alice", "")
	for _, c := range []struct {
		name, method, path string
		cred               cred
		body               any
		notJSON            bool // send a text/plain body instead
		status             int
	}{
		{"sign-in", http.MethodPost, "/sessions", backend, map[string]any{"user_id": "bob"}, false, 201},
		{"who am I", http.MethodGet, "/session", bearer(s.Token), nil, false, 200},
		{"a list", http.MethodGet, "/users/alice/sessions", backend, nil, false, 200},
		{"a 400", http.MethodGet, "/sessions/nope", backend, nil, false, 400},
		{"a 401", http.MethodGet, "/session", noCred, nil, false, 401},
		{"a 403", http.MethodPost, "/sessions", bearer(s.Token), map[string]any{"user_id": "bob"}, false, 403},
		{"a 404", http.MethodGet, "/sessions/" + anUnknownSession, backend, nil, false, 404},
		{"an unknown route", http.MethodGet, "/nope", noCred, nil, false, 404},
		{"a wrong method", http.MethodPut, "/session", noCred, nil, false, 405},
		{"a 415", http.MethodPost, "/sessions", backend, nil, true, 415},
		{"healthz", http.MethodGet, "/healthz", noCred, nil, false, 200},
		{"readyz", http.MethodGet, "/readyz", noCred, nil, false, 200},
		{"metrics", http.MethodGet, "/metrics", noCred, nil, false, 200},
		{"openapi.yaml", http.MethodGet, "/openapi.yaml", noCred, nil, false, 200},
		{"sign-out", http.MethodDelete, "/session", bearer(s.Token), nil, false, 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r response
			if c.notJSON {
				r = e.doRaw(t, c.method, c.path, http.Header{"Authorization": {"Bearer " + apiKey}, "Content-Type": {"text/plain"}}, "user_id=bob")
			} else {
				r = e.do(t, c.method, c.path, c.cred, c.body)
			}
			r.wantStatus(t, c.status)
			if got := r.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", got)
			}
			if got := r.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q, want nosniff", got)
			}
			if r.Header.Get("X-Request-ID") == "" {
				t.Errorf("no X-Request-ID")
			}
		})
	}
}

var wellFormedRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// TestRequestID: a caller's well-formed X-Request-ID is echoed, anything
// else replaced by a fresh one; a problem names the same ID in its body.
func TestRequestID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, c := range []struct {
		name, sent string
		echoed     bool
	}{
		{"a UUID", "0b6e3f5c-4d0a-4c56-9d1e-2f9f6f1b7a10", true},
		{"letters, digits and ._:-", "req.42_a:b-C", true},
		{"128 characters", strings.Repeat("a", 128), true},
		{"none", "", false},
		{"129 characters", strings.Repeat("a", 129), false},
		{"a space", "req 42", false},
		{"markup", "<script>", false},
		{"a slash", "a/b", false},
		{"non-ASCII", "réq", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{}
			if c.sent != "" {
				h.Set("X-Request-ID", c.sent)
			}
			for _, path := range []string{"/healthz", "/session"} { // a success and a 401
				r := e.doRaw(t, http.MethodGet, path, h, "")
				got := r.Header.Get("X-Request-ID")
				switch {
				case c.echoed && got != c.sent:
					t.Errorf("%s: X-Request-ID %q, want %q echoed", path, got, c.sent)
				case !c.echoed && (got == c.sent || !wellFormedRequestID.MatchString(got)):
					t.Errorf("%s: X-Request-ID %q for %q sent, want a fresh well-formed one", path, got, c.sent)
				}
				if r.Status >= 400 {
					var p struct {
						RequestID string `json:"request_id"`
					}
					r.decode(t, &p)
					if p.RequestID != got {
						t.Errorf("%s: problem request_id %q, header %q", path, p.RequestID, got)
					}
				}
			}
		})
	}
	t.Run("generated IDs differ", func(t *testing.T) {
		a := e.do(t, http.MethodGet, "/healthz", noCred, nil).Header.Get("X-Request-ID")
		b := e.do(t, http.MethodGet, "/healthz", noCred, nil).Header.Get("X-Request-ID")
		if a == b {
			t.Errorf("two requests got the same X-Request-ID %q", a)
		}
	})
	t.Run("problems of every kind carry it", func(t *testing.T) {
		for _, path := range []string{"/nope", "/sessions/nope"} {
			want := "trace" + strings.ReplaceAll(path, "/", "_")
			h := http.Header{"X-Request-ID": {want}, "Authorization": {"Bearer " + apiKey}}
			r := e.doRaw(t, http.MethodGet, path, h, "")
			if r.Status < 400 {
				t.Fatalf("%s: %d, want a problem", path, r.Status)
			}
			var p struct {
				RequestID string `json:"request_id"`
			}
			r.decode(t, &p)
			if p.RequestID != want || r.Header.Get("X-Request-ID") != want {
				t.Errorf("%s: request_id %q, header %q, want %q", path, p.RequestID, r.Header.Get("X-Request-ID"), want)
			}
		}
	})
}
