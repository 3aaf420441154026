package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/api"
	"github.com/sessiond/sessiond/internal/db"
	"github.com/sessiond/sessiond/internal/pgtest"
	"github.com/sessiond/sessiond/internal/sessions"
)

// TestMain runs the package against one Postgres container, with every
// log line of the run captured, and then fails the run if the log holds a
// session token or an API key (secrets_test.go).
func TestMain(m *testing.M) {
	captureLogs()
	os.Exit(checkLogsForSecrets(pgtest.Run(m)))
}

// apiKey is the backend key every test server accepts.
const apiKey = "sk_test_0123456789abcdef"

// testClock is the injected clock: it stands still until a test moves it.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testEnv is one sessiond: a real HTTP server over a real, empty database.
type testEnv struct {
	URL   string
	Store *db.Store
	Svc   *sessions.Service
	Clock *testClock
	http  *http.Client
}

type option func(*sessions.Config, *api.Config)

func multiMode(s *sessions.Config, _ *api.Config) { s.Mode = sessions.ModeMulti }

func maxSessions(n int) option {
	return func(s *sessions.Config, _ *api.Config) { s.MaxSessionsPerUser = n }
}

func inactivityTimeout(d time.Duration) option {
	return func(s *sessions.Config, _ *api.Config) { s.InactivityTimeout = d }
}

func allowRedirectOrigins(origins ...string) option {
	return func(s *sessions.Config, _ *api.Config) { s.AllowedRedirectOrigins = origins }
}

// newEnv starts a sessiond in single mode with a 168h lifetime, unless
// options say otherwise.
func newEnv(t testing.TB, opts ...option) *testEnv {
	t.Helper()
	store := pgtest.NewStore(t)
	return newEnvOn(t, store, opts...)
}

// newEnvOn starts another sessiond on an existing store's database: a
// second replica. Its request and readiness timeouts only catch a hang
// (hangUpBound): these tests assert outcomes, and on a loaded machine
// requests queued behind racing transactions may wait far longer than a
// production timeout allows. Tests of the timeouts set their own.
func newEnvOn(t testing.TB, store *db.Store, opts ...option) *testEnv {
	t.Helper()
	clock := &testClock{now: time.Now().UTC().Truncate(time.Second)}
	scfg := sessions.Config{Mode: sessions.ModeSingle, Lifetime: 168 * time.Hour, Retention: 720 * time.Hour, Now: clock.Now}
	acfg := api.Config{APIKeys: []string{apiKey}, CookieSecure: true, Ready: store.Ping, OpenAPI: sessiond.OpenAPI, RequestTimeout: hangUpBound, ReadyTimeout: hangUpBound,
		Logger: capturedLogger}
	for _, o := range opts {
		o(&scfg, &acfg)
	}
	svc := sessions.NewService(store, scfg)
	handler, err := api.New(svc, acfg)
	if err != nil {
		t.Fatal(err)
	}
	if acfg.AccessLog == api.AccessLogAll {
		// Every request it answers must leave an access-log line in the
		// sink (secrets_test.go); other modes log fewer on purpose.
		handler = countServed(handler)
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return &testEnv{
		URL:   srv.URL,
		Store: store,
		Svc:   svc,
		Clock: clock,
		http:  &http.Client{Transport: &contractCheck{t: t, base: http.DefaultTransport}},
	}
}

// contractCheck validates every response against openapi.yaml, so the
// document cannot drift from the server.
type contractCheck struct {
	t    testing.TB
	base http.RoundTripper
}

var contract = sync.OnceValues(func() (routers.Router, error) {
	// ip_address is "format: ipv4" or "format: ipv6"; kin-openapi checks
	// those only when asked to.
	openapi3.DefineIPv4Format()
	openapi3.DefineIPv6Format()
	doc, err := openapi3.NewLoader().LoadFromData(sessiond.OpenAPI)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, err
	}
	doc.Servers = nil // match any host: test servers listen on random ports
	return gorillamux.NewRouter(doc)
})

func (c *contractCheck) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))

	router, err := contract()
	if err != nil {
		c.t.Errorf("openapi.yaml does not load: %v", err)
		return resp, nil
	}
	// openapi.yaml lists GET operations only; HEAD answers each of them
	// (see its description) with the GET's status and headers and no body.
	routed := req
	head := req.Method == http.MethodHead
	if head {
		routed = req.Clone(req.Context())
		routed.Method = http.MethodGet
		if len(body) != 0 {
			c.t.Errorf("contract: HEAD %s answered %d with a body: %q", req.URL.Path, resp.StatusCode, body)
		}
	}
	route, params, err := router.FindRoute(routed)
	if err != nil {
		if head {
			// A HEAD fallback has no body to read a problem code from.
			if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
				c.t.Errorf("contract: HEAD %s has no GET in openapi.yaml but answered %d", req.URL.Path, resp.StatusCode)
			}
			return resp, nil
		}
		// Only the fallbacks may answer a path or method openapi.yaml lacks.
		if code := problemCodeOf(body); code != "not_found" && code != "method_not_allowed" {
			c.t.Errorf("contract: %s %s is not in openapi.yaml but answered %d %s", req.Method, req.URL.Path, resp.StatusCode, body)
		}
		return resp, nil
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: routed, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: head},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		c.t.Errorf("contract: %s %s answered %d, which openapi.yaml does not allow: %v\nbody: %s", req.Method, req.URL, resp.StatusCode, err, body)
	}
	return resp, nil
}

// cred is how a request authenticates: none, an API key or a token as a
// bearer credential, or a token in the session cookie.
type cred struct {
	bearer string
	cookie string
}

var noCred = cred{}

func bearer(s string) cred { return cred{bearer: s} }
func cookie(s string) cred { return cred{cookie: s} }

var backend = bearer(apiKey)

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// do sends one request; body, if not nil, is sent as JSON (a string is
// sent as it is).
func (e *testEnv) do(t *testing.T, method, path string, c cred, body any) response {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	if c.cookie != "" {
		req.AddCookie(&http.Cookie{Name: "__session", Value: c.cookie})
	}
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

func problemCodeOf(body []byte) string {
	var p struct{ Code string }
	_ = json.Unmarshal(body, &p)
	return p.Code
}

// wantProblem fails unless r is the problem with this status and code.
func (r response) wantProblem(t *testing.T, status int, code string) {
	t.Helper()
	if r.Status != status || problemCodeOf(r.Body) != code {
		t.Fatalf("got %d %s, want %d %s", r.Status, r.Body, status, code)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json", ct)
	}
}

func (r response) wantStatus(t *testing.T, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("got %d %s, want %d", r.Status, r.Body, status)
	}
}

// session is the JSON session object.
type session struct {
	ID           string          `json:"id"`
	UserID       string          `json:"user_id"`
	ClientID     string          `json:"client_id"`
	Status       string          `json:"status"`
	CreatedAt    time.Time       `json:"created_at"`
	LastActiveAt time.Time       `json:"last_active_at"`
	ExpiresAt    time.Time       `json:"expires_at"`
	EndedAt      *time.Time      `json:"ended_at"`
	UserAgent    *string         `json:"user_agent"`
	IPAddress    *string         `json:"ip_address"`
	Metadata     json.RawMessage `json:"metadata"`
}

type signInAnswer struct {
	Session session `json:"session"`
	Token   string  `json:"token"`
	Ended   []struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	} `json:"ended"`
}

type endAnswer struct {
	Ended       []session `json:"ended"`
	RedirectURL *string   `json:"redirect_url"`
}

type listAnswer struct {
	Data       []session `json:"data"`
	NextCursor *string   `json:"next_cursor"`
}

// signedIn is a session a test created, with its token.
type signedIn struct {
	ID, UserID, ClientID, Token string
}

// mustSignIn signs userID in on clientID ("" for a new client).
func (e *testEnv) mustSignIn(t *testing.T, userID, clientID string) signedIn {
	t.Helper()
	body := map[string]any{"user_id": userID}
	if clientID != "" {
		body["client_id"] = clientID
	}
	r := e.do(t, http.MethodPost, "/sessions", backend, body)
	r.wantStatus(t, http.StatusCreated)
	var a signInAnswer
	r.decode(t, &a)
	return signedIn{ID: a.Session.ID, UserID: userID, ClientID: a.Session.ClientID, Token: a.Token}
}

// mustEnd sends an ending request and returns what it ended.
func (e *testEnv) mustEnd(t *testing.T, path string, c cred) endAnswer {
	t.Helper()
	r := e.do(t, http.MethodDelete, path, c, nil)
	r.wantStatus(t, http.StatusOK)
	var a endAnswer
	r.decode(t, &a)
	return a
}

// statusOf reads a session's status as a backend sees it.
func (e *testEnv) statusOf(t *testing.T, id string) string {
	t.Helper()
	r := e.do(t, http.MethodGet, "/sessions/"+id, backend, nil)
	r.wantStatus(t, http.StatusOK)
	var s session
	r.decode(t, &s)
	return s.Status
}

// wantActive fails unless every token still answers GET /session with 200.
func (e *testEnv) wantActive(t *testing.T, ss ...signedIn) {
	t.Helper()
	for _, s := range ss {
		if r := e.do(t, http.MethodGet, "/session", bearer(s.Token), nil); r.Status != http.StatusOK {
			t.Errorf("session of %s on %s: GET /session = %d, want 200 (still active)", s.UserID, s.ClientID, r.Status)
		}
	}
}

// wantSignedOut fails unless every token answers GET /session with 401 and
// its session has the given status.
func (e *testEnv) wantSignedOut(t *testing.T, status string, ss ...signedIn) {
	t.Helper()
	for _, s := range ss {
		if r := e.do(t, http.MethodGet, "/session", bearer(s.Token), nil); r.Status != http.StatusUnauthorized {
			t.Errorf("session of %s on %s: GET /session = %d, want 401", s.UserID, s.ClientID, r.Status)
		}
		if got := e.statusOf(t, s.ID); got != status {
			t.Errorf("session of %s on %s: status %q, want %q", s.UserID, s.ClientID, got, status)
		}
	}
}

// endedIDs lists the IDs of an ending answer.
func endedIDs(a endAnswer) []string {
	ids := make([]string, 0, len(a.Ended))
	for _, s := range a.Ended {
		ids = append(ids, s.ID)
	}
	return ids
}

func q(params ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(params); i += 2 {
		v.Set(params[i], params[i+1])
	}
	return "?" + v.Encode()
}

func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameJSON reports whether got holds the same JSON value as want.
func sameJSON(got json.RawMessage, want string) bool {
	var a, b any
	return json.Unmarshal(got, &a) == nil && json.Unmarshal([]byte(want), &b) == nil && reflect.DeepEqual(a, b)
}
