package api_test

// Hostile clients: garbage credentials and malformed requests never reach
// the database; slow and oversized clients are cut off by the server's
// limits; CORS answers only the configured origins.

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/api"
	"github.com/sessiond/sessiond/internal/sessions"
)

// fakeStore is a sessions.Store without a database: it knows the sessions
// in known and counts every call, so a test can tell whether a request got
// as far as the database. A transaction answers unavailable.
type fakeStore struct {
	mu      sync.Mutex
	known   map[sessions.TokenHash]sessions.Session
	lookups int
	touches int
	txs     int
}

func (s *fakeStore) SessionByTokenHash(_ context.Context, h sessions.TokenHash) (sessions.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lookups++
	if sess, ok := s.known[h]; ok {
		return sess, nil
	}
	return sessions.Session{}, sessions.ErrSessionNotFound
}

func (s *fakeStore) TouchSession(context.Context, string, time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.touches++
	return nil
}

func (s *fakeStore) InTx(context.Context, func(sessions.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.txs++
	return sessions.ErrUnavailable
}

// calls returns how many times the store was asked anything.
func (s *fakeStore) calls() (lookups, touches, txs int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookups, s.touches, s.txs
}

// newFakeHandler is sessiond's handler over store, with the test key and
// https://app.example.com as allowed redirect origin.
func newFakeHandler(t *testing.T, store sessions.Store, cfg func(*api.Config)) http.Handler {
	t.Helper()
	svc := sessions.NewService(store, sessions.Config{Lifetime: time.Hour, AllowedRedirectOrigins: []string{"https://app.example.com"}})
	acfg := api.Config{APIKeys: []string{apiKey}, OpenAPI: sessiond.OpenAPI, Logger: capturedLogger}
	if cfg != nil {
		cfg(&acfg)
	}
	h, err := api.New(svc, acfg)
	if err != nil {
		t.Fatal(err)
	}
	return countServed(h)
}

// newFakeEnv serves newFakeHandler over store; its client checks answers
// against openapi.yaml like every env's.
func newFakeEnv(t *testing.T, store sessions.Store) *testEnv {
	t.Helper()
	srv := httptest.NewServer(newFakeHandler(t, store, nil))
	t.Cleanup(srv.Close)
	return &testEnv{URL: srv.URL, http: &http.Client{Transport: &contractCheck{t: t, base: http.DefaultTransport}}}
}

// randomString is n characters drawn from alphabet.
func randomString(t *testing.T, alphabet string, n int) string {
	t.Helper()
	var b strings.Builder
	for range n {
		i, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			t.Fatal(err)
		}
		b.WriteByte(alphabet[i.Int64()])
	}
	return b.String()
}

const b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// garbageCredentials are credentials that are not even well-formed: no
// session token (st_ and the canonical base64url of 32 bytes) and no
// configured API key; random ones differ on every run.
func garbageCredentials(t *testing.T) []string {
	t.Helper()
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	body := base64.RawURLEncoding.EncodeToString(raw)
	g := []string{
		"nonsense", "st_", "st_" + body[:42], "st_" + body + "A", "ST_" + body, "st-" + body,
		"st_" + body[:42] + "B", "st_" + body[:20] + "+" + body[21:], "st_" + body[:20] + "/" + body[21:],
		"st_" + body + "=", "st_" + strings.Repeat("A", 4000),
		"sk_", "sk_short", "sk_test_not_the_configured_key", apiKey + "x", apiKey[:len(apiKey)-1],
		"sk_" + strings.Repeat("k", 300), strings.ToUpper(apiKey),
	}
	for range 60 {
		g = append(g,
			"st_"+randomString(t, b64url, 42),                              // a character short
			"st_"+randomString(t, b64url, 44),                              // a character long
			"st_"+randomString(t, b64url, 42)+randomString(t, "BCDFGH", 1), // bits beyond 32 bytes (E, 4, has none)
			"st_"+randomString(t, b64url+"+/=.~!", 21)+"."+randomString(t, b64url, 21),
			randomString(t, b64url+".~", 1+len(g)%60),
			"sk_"+randomString(t, b64url, 16+len(g)%40), // shaped like a key, not the key
		)
	}
	return g
}

// TestGarbageCredentialsNeverReachTheDatabase: a credential that is not
// even well-formed is the one 401 on every endpoint, as a bearer token
// or in the cookie, and the store is never asked; a well-formed unknown
// token is the same 401 after exactly one lookup (by hash).
func TestGarbageCredentialsNeverReachTheDatabase(t *testing.T) {
	t.Parallel()
	store := &fakeStore{}
	e := newFakeEnv(t, store)
	the401 := e.do(t, http.MethodGet, "/session", noCred, nil)
	the401.wantProblem(t, http.StatusUnauthorized, sessions.CodeUnauthenticated)
	want := problemWithoutRequestID(the401.Body)

	requests := []struct{ method, path string }{
		{http.MethodGet, "/session"},
		{http.MethodDelete, "/session"},
		{http.MethodPost, "/sessions"},
		{http.MethodGet, "/users/alice/sessions"},
		{http.MethodDelete, "/clients/client_01J00000000000000000000000/sessions"},
	}
	garbage := garbageCredentials(t)
	sent := 0
	for _, g := range garbage {
		for _, c := range []cred{bearer(g), cookie(g)} {
			for _, rq := range requests {
				var body any
				if rq.method == http.MethodPost {
					body = map[string]any{"user_id": "alice"}
				}
				r := e.do(t, rq.method, rq.path, c, body)
				sent++
				if r.Status != http.StatusUnauthorized || problemWithoutRequestID(r.Body) != want {
					t.Fatalf("%s %s with %+v: %d %s, want the one 401", rq.method, rq.path, c, r.Status, r.Body)
				}
			}
		}
	}
	if l, to, tx := store.calls(); l+to+tx != 0 {
		t.Fatalf("%d garbage requests made %d lookups, %d touches, %d transactions; want none", sent, l, to, tx)
	}
	t.Logf("%d requests with %d garbage credentials: all 401, no database work", sent, len(garbage))

	// The control: a well-formed (unknown) token is looked up once.
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	tok := "st_" + base64.RawURLEncoding.EncodeToString(raw)
	r := e.do(t, http.MethodGet, "/session", bearer(tok), nil)
	if r.Status != http.StatusUnauthorized || problemWithoutRequestID(r.Body) != want {
		t.Fatalf("unknown token: %d %s, want the one 401", r.Status, r.Body)
	}
	if l, to, tx := store.calls(); l != 1 || to+tx != 0 {
		t.Fatalf("a well-formed token made %d lookups, %d touches, %d transactions; want 1 lookup", l, to, tx)
	}
}

// TestMalformedRequestsNeverReachTheDatabase: with a valid API key,
// malformed IDs, queries, redirect URLs, bodies, media types and oversized
// bodies are refused with their 4xx before any database work, so such a
// request changes nothing. The control: a well-formed request reaches the
// store.
func TestMalformedRequestsNeverReachTheDatabase(t *testing.T) {
	t.Parallel()
	store := &fakeStore{}
	e := newFakeEnv(t, store)
	oversized := `{"user_id":"alice","metadata":{"k":"` + strings.Repeat("x", 70<<10) + `"}}`
	for _, c := range []struct {
		name, method, path string
		header             http.Header
		body               string
		status             int
		code               string
	}{
		{"malformed session ID", "GET", "/sessions/sess_nope", nil, "", 400, "invalid_id"},
		{"lower-case session ID", "DELETE", "/sessions/sess_01j00000000000000000000000", nil, "", 400, "invalid_id"},
		{"malformed client ID", "GET", "/clients/client_nope/sessions", nil, "", 400, "invalid_id"},
		{"user ID with a control character", "DELETE", "/users/a%00b/sessions", nil, "", 400, "invalid_id"},
		{"malformed except", "DELETE", "/users/alice/sessions?except=sess_", nil, "", 400, "invalid_id"},
		{"protocol-relative redirect", "DELETE", "/users/alice/sessions?redirect_url=//evil.com", nil, "", 400, "invalid_redirect_url"},
		{"backslash redirect", "DELETE", "/sessions/sess_01J00000000000000000000000?redirect_url=/%5Cevil.com", nil, "", 400, "invalid_redirect_url"},
		{"redirect to another origin", "DELETE", "/clients/client_01J00000000000000000000000/sessions?redirect_url=https://evil.com/", nil, "", 400, "invalid_redirect_url"},
		{"unknown status", "GET", "/users/alice/sessions?status=gone", nil, "", 400, "invalid_request"},
		{"limit 0", "GET", "/users/alice/sessions?limit=0", nil, "", 400, "invalid_request"},
		{"limit 101", "GET", "/users/alice/sessions?limit=101", nil, "", 400, "invalid_request"},
		{"forged cursor", "GET", "/users/alice/sessions?cursor=c2Vzc19ub3Bl", nil, "", 400, "invalid_request"},
		{"not JSON", "POST", "/sessions", http.Header{"Content-Type": {"application/json"}}, `{"user_id":`, 400, "invalid_request"},
		{"two objects", "POST", "/sessions", http.Header{"Content-Type": {"application/json"}}, `{"user_id":"a"}{}`, 400, "invalid_request"},
		{"unknown field", "POST", "/sessions", http.Header{"Content-Type": {"application/json"}}, `{"user_id":"a","admin":true}`, 400, "invalid_request"},
		{"unstorable metadata", "POST", "/sessions", http.Header{"Content-Type": {"application/json"}}, `{"user_id":"a","metadata":{"k":"\u0000"}}`, 400, "invalid_request"},
		{"not application/json", "POST", "/sessions", http.Header{"Content-Type": {"text/plain"}}, `{"user_id":"a"}`, 415, "unsupported_media_type"},
		{"body over the limit", "POST", "/sessions", http.Header{"Content-Type": {"application/json"}}, oversized, 413, "payload_too_large"},
		{"chunked body over the limit", "POST", "/sessions", http.Header{"Content-Type": {"application/json"}, "Transfer-Encoding": {"chunked"}}, oversized, 413, "payload_too_large"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{"Authorization": {"Bearer " + apiKey}}
			for k, v := range c.header {
				h[k] = v
			}
			req, err := http.NewRequest(c.method, e.URL+c.path, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header = h
			if h.Get("Transfer-Encoding") == "chunked" {
				req.ContentLength = -1 // no Content-Length: the limit must hold while reading
				req.Body = io.NopCloser(strings.NewReader(c.body))
				h.Del("Transfer-Encoding")
			}
			resp, err := e.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			r := response{Status: resp.StatusCode, Header: resp.Header, Body: readAll(t, resp)}
			r.wantProblem(t, c.status, c.code)
		})
	}
	if l, to, tx := store.calls(); l+to+tx != 0 {
		t.Fatalf("malformed requests made %d lookups, %d touches, %d transactions; want none", l, to, tx)
	}
	// The control: a well-formed request does reach the store (which is
	// down, so 503).
	e.do(t, http.MethodGet, "/sessions/sess_01J00000000000000000000000", backend, nil).wantProblem(t, http.StatusServiceUnavailable, "unavailable")
	if _, _, tx := store.calls(); tx != 1 {
		t.Fatalf("a well-formed request made %d transactions, want 1", tx)
	}
}

// serveWithLimits serves handler with api.NewHTTPServer on a loopback
// port and returns the address.
func serveWithLimits(t *testing.T, handler http.Handler, limits api.ServerLimits) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := api.NewHTTPServer(ln.Addr().String(), handler, limits, nil)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// waitForClose reads conn until the server closes it (or the test's own
// deadline passes) and returns when that happened and what was read.
func waitForClose(t *testing.T, conn net.Conn, deadline time.Time) (time.Time, string) {
	t.Helper()
	_ = conn.SetReadDeadline(deadline)
	got, err := io.ReadAll(conn)
	at := time.Now()
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server still kept the connection open at the test's deadline; read %q", got)
	}
	return at, string(got)
}

// trickle writes s to conn one byte per interval until stop is closed or
// a write fails.
func trickle(conn net.Conn, s string, interval time.Duration, stop <-chan struct{}) {
	for i := 0; i < len(s); i++ {
		select {
		case <-stop:
			return
		case <-time.After(interval):
		}
		if _, err := conn.Write([]byte{s[i]}); err != nil {
			return
		}
	}
}

// TestSlowClientsAreCutOff: the limits of api.NewHTTPServer cut off a
// client that trickles its headers (slowloris) after ReadHeaderTimeout, one
// that trickles its body after ReadTimeout, and an idle kept-alive
// connection after IdleTimeout; the test sets short limits instead of
// sleeping through the production ones.
func TestSlowClientsAreCutOff(t *testing.T) {
	t.Parallel()
	handler := newFakeHandler(t, &fakeStore{}, nil)
	const (
		short   = 300 * time.Millisecond
		long    = 20 * time.Second
		giveUp  = 5 * time.Second // the test's own bound
		trickly = 25 * time.Millisecond
	)

	t.Run("trickled headers: ReadHeaderTimeout", func(t *testing.T) {
		t.Parallel()
		addr := serveWithLimits(t, handler, api.ServerLimits{ReadHeaderTimeout: short, ReadTimeout: long, IdleTimeout: long})
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		stop := make(chan struct{})
		defer close(stop)
		go trickle(conn, "GET /healthz HTTP/1.1\r\nHost: sessiond\r\nX-Slow: "+strings.Repeat("a", 1000)+"\r\n\r\n", trickly, stop)
		at, got := waitForClose(t, conn, start.Add(giveUp))
		if d := at.Sub(start); d < short-50*time.Millisecond || d > short+time.Second {
			t.Fatalf("cut off after %s, want about %s", d, short)
		}
		if strings.Contains(got, "200 OK") {
			t.Fatalf("the trickled request was served: %q", got)
		}
	})

	t.Run("trickled body: ReadTimeout", func(t *testing.T) {
		t.Parallel()
		addr := serveWithLimits(t, handler, api.ServerLimits{ReadHeaderTimeout: long, ReadTimeout: short, IdleTimeout: long})
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		body := `{"user_id":"` + strings.Repeat("a", 200) + `"}`
		fmt.Fprintf(conn, "POST /sessions HTTP/1.1\r\nHost: sessiond\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", apiKey, len(body))
		stop := make(chan struct{})
		defer close(stop)
		go trickle(conn, body, trickly, stop)
		at, got := waitForClose(t, conn, start.Add(giveUp))
		if d := at.Sub(start); d < short-50*time.Millisecond || d > short+time.Second {
			t.Fatalf("cut off after %s, want about %s", d, short)
		}
		if strings.Contains(got, "201 Created") {
			t.Fatalf("the trickled request was served: %q", got)
		}
	})

	t.Run("idle keep-alive: IdleTimeout", func(t *testing.T) {
		t.Parallel()
		addr := serveWithLimits(t, handler, api.ServerLimits{ReadHeaderTimeout: long, ReadTimeout: long, IdleTimeout: short})
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprint(conn, "GET /healthz HTTP/1.1\r\nHost: sessiond\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /healthz: %d", resp.StatusCode)
		}
		idle := time.Now()
		at, _ := waitForClose(t, conn, idle.Add(giveUp))
		if d := at.Sub(idle); d < short-50*time.Millisecond || d > short+time.Second {
			t.Fatalf("idle connection closed after %s, want about %s", d, short)
		}
	})
}

// TestOversizedHeadersAre431: with the production MaxHeaderBytes (32 KiB),
// a request whose headers are far larger is 431 without reaching the
// handler, and headers well within the limit are served.
func TestOversizedHeadersAre431(t *testing.T) {
	t.Parallel()
	addr := serveWithLimits(t, newFakeHandler(t, &fakeStore{}, nil), api.ServerLimits{})
	for _, c := range []struct {
		size int
		want int
	}{{8 << 10, http.StatusOK}, {64 << 10, http.StatusRequestHeaderFieldsTooLarge}} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/healthz", nil)
		req.Header.Set("X-Padding", strings.Repeat("p", c.size))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%d KiB of headers: %d, want %d", c.size>>10, resp.StatusCode, c.want)
		}
	}
}

// TestHTTPServerLimits: the server sessiond runs has every limit set, and
// a zero field takes the production value.
func TestHTTPServerLimits(t *testing.T) {
	t.Parallel()
	d := api.DefaultServerLimits
	if d.ReadHeaderTimeout <= 0 || d.ReadTimeout < d.ReadHeaderTimeout || d.WriteTimeout <= 0 || d.IdleTimeout <= 0 ||
		d.MaxHeaderBytes <= 0 || d.MaxHeaderBytes > 64<<10 {
		t.Fatalf("DefaultServerLimits %+v: every limit must be set", d)
	}
	srv := api.NewHTTPServer(":0", http.NotFoundHandler(), api.ServerLimits{ReadHeaderTimeout: time.Second}, nil)
	if srv.ReadHeaderTimeout != time.Second || srv.ReadTimeout != d.ReadTimeout || srv.WriteTimeout != d.WriteTimeout ||
		srv.IdleTimeout != d.IdleTimeout || srv.MaxHeaderBytes != d.MaxHeaderBytes {
		t.Fatalf("NewHTTPServer with only ReadHeaderTimeout set: %+v", srv)
	}
}

// withCORS configures the env's CORS origins.
func withCORS(origins ...string) option {
	return func(_ *sessions.Config, a *api.Config) { a.CORSOrigins = origins }
}

// corsHeaders returns the Access-Control-* headers of an answer.
func corsHeaders(h http.Header) http.Header {
	out := http.Header{}
	for k, v := range h {
		if strings.HasPrefix(k, "Access-Control-") {
			out[k] = v
		}
	}
	return out
}

// preflight sends a browser's CORS preflight for a credentialed DELETE.
// OPTIONS is not in openapi.yaml, so it goes around the contract check.
func preflight(t *testing.T, e *testEnv, origin string) (int, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodOptions, e.URL+"/session", nil)
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", "DELETE")
	req.Header.Set("Access-Control-Request-Headers", "authorization")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// TestCORS: with SESSIOND_CORS_ORIGINS set, a preflight and a credentialed
// request from a configured origin are allowed for that origin, with
// credentials; from any other origin, or with no origin configured, no
// answer carries an Access-Control-* header, so a browser keeps the answer
// from the page.
func TestCORS(t *testing.T) {
	t.Parallel()
	const app = "https://app.example.com"
	others := []string{"https://evil.example", "null", "http://app.example.com", "https://app.example.com:8443",
		"https://app.example.com.evil.example", "https://sub.app.example.com", "https://APP.EXAMPLE.COM"}

	withOrigin := func(origin string) http.Header { return http.Header{"Origin": {origin}} }
	whoAmI := func(t *testing.T, e *testEnv, token, origin string) response {
		t.Helper()
		h := withOrigin(origin)
		h.Set("Cookie", "__session="+token)
		r, ok := e.exchange(t, http.MethodGet, "/session", h, nil)
		if !ok {
			t.Fatal("could not send")
		}
		return r
	}

	t.Run("configured", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, withCORS(app))
		s := e.fuzzSignIn(t, "alice", "")

		status, h := preflight(t, e, app)
		if status/100 != 2 || h.Get("Access-Control-Allow-Origin") != app || h.Get("Access-Control-Allow-Credentials") != "true" ||
			!strings.Contains(h.Get("Access-Control-Allow-Methods"), "DELETE") ||
			!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "authorization") {
			t.Errorf("preflight from %s: %d %v, want it allowed with credentials", app, status, corsHeaders(h))
		}
		r := whoAmI(t, e, s.Token, app)
		r.wantStatus(t, http.StatusOK)
		if r.Header.Get("Access-Control-Allow-Origin") != app || r.Header.Get("Access-Control-Allow-Credentials") != "true" ||
			!strings.Contains(strings.ToLower(r.Header.Get("Access-Control-Expose-Headers")), "x-request-id") {
			t.Errorf("credentialed GET from %s: %v, want it allowed with credentials", app, corsHeaders(r.Header))
		}

		for _, o := range others {
			if status, h := preflight(t, e, o); len(corsHeaders(h)) > 0 || status/100 == 2 {
				t.Errorf("preflight from %s: %d %v, want no CORS headers and no 2xx", o, status, corsHeaders(h))
			}
			r := whoAmI(t, e, s.Token, o)
			if len(corsHeaders(r.Header)) > 0 {
				t.Errorf("credentialed GET from %s: %v, want no CORS headers", o, corsHeaders(r.Header))
			}
			r.wantStatus(t, http.StatusOK) // served as without CORS: the browser keeps it from the page
		}
	})

	t.Run("none configured", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		s := e.fuzzSignIn(t, "alice", "")
		for _, o := range append([]string{app}, others...) {
			if status, h := preflight(t, e, o); len(corsHeaders(h)) > 0 || status/100 == 2 {
				t.Errorf("preflight from %s: %d %v, want no CORS headers and no 2xx", o, status, corsHeaders(h))
			}
			r := whoAmI(t, e, s.Token, o)
			r.wantStatus(t, http.StatusOK)
			if len(corsHeaders(r.Header)) > 0 {
				t.Errorf("credentialed GET from %s: %v, want no CORS headers", o, corsHeaders(r.Header))
			}
		}
	})
}

// knownSession is a fakeStore holding one active session, and its token.
func knownSession(t *testing.T) (*fakeStore, string) {
	t.Helper()
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	tok := "st_" + base64.RawURLEncoding.EncodeToString(raw)
	now := time.Now().UTC()
	return &fakeStore{known: map[sessions.TokenHash]sessions.Session{sha256.Sum256([]byte(tok)): {
		ID: "sess_01J00000000000000000000001", UserID: "alice", ClientID: "client_01J00000000000000000000001",
		Status: sessions.StatusActive, CreatedAt: now, LastActiveAt: now, ExpiresAt: now.Add(time.Hour), Metadata: []byte(`{}`),
	}}}, tok
}

// TestTokensAreLookedUpByHash: the store is asked for the SHA-256 of the
// presented token, never the token: the fake knows only the hash, and the
// holder is recognised.
func TestTokensAreLookedUpByHash(t *testing.T) {
	t.Parallel()
	store, tok := knownSession(t)
	e := newFakeEnv(t, store)
	e.do(t, http.MethodGet, "/session", bearer(tok), nil).wantStatus(t, http.StatusOK)
	e.do(t, http.MethodGet, "/session", cookie(tok), nil).wantStatus(t, http.StatusOK)
	if l, _, _ := store.calls(); l != 2 {
		t.Fatalf("%d lookups, want 2", l)
	}
}
