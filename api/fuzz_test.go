package api_test

// HTTP-level fuzz targets: hostile JSON bodies, query strings, path IDs and
// credentials against a real server over a real database. Each target
// builds one env (one database) for all its inputs; per input it checks
// that the answer is not a 5xx, that a 4xx is problem+json (and every
// answer is what openapi.yaml allows), and that a request that failed
// changed nothing in the database. Under a plain `go test` they run only
// their seeds (f.Add and testdata/fuzz/FuzzXxx/*); `make fuzz` runs each
// for a bounded time.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sessiond/sessiond/internal/sessions"
)

// fuzzClient sends requests for one fuzz input: answers are checked
// against openapi.yaml and reported to that input's t, redirects are
// answers, not followed.
func fuzzClient(t *testing.T) *http.Client {
	return &http.Client{
		Transport:     &contractCheck{t: t, base: http.DefaultTransport},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// exchange sends one request with the headers as given. ok is false
// when the input cannot be sent as HTTP at all (a header value with a
// newline, say); the fuzz input is then of no interest.
func (e *testEnv) exchange(t *testing.T, method, target string, header http.Header, body []byte) (r response, ok bool) {
	t.Helper()
	req, err := http.NewRequest(method, e.URL+target, bytes.NewReader(body))
	if err != nil {
		return response{}, false // not a URL (a bad escape in the path)
	}
	req.Header = header
	resp, err := fuzzClient(t).Do(req)
	if err != nil {
		if strings.Contains(err.Error(), "invalid header field") {
			return response{}, false
		}
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}, true
}

// httpSafe percent-encodes the bytes of s that may not appear as they are
// in a request target, so any fuzzed path or query is well-formed HTTP
// and reaches sessiond rather than net/http's own 400.
func httpSafe(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '#' {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// wantSafeAnswer fails unless r is not a 5xx, a 4xx is problem+json with
// its own status and a code, and a redirect stays on this server.
func wantSafeAnswer(t *testing.T, what string, r response) {
	t.Helper()
	switch {
	case r.Status >= 500:
		t.Fatalf("%s: %d %s", what, r.Status, r.Body)
	case r.Status >= 400:
		var p struct {
			Status int
			Code   string
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" || json.Unmarshal(r.Body, &p) != nil ||
			p.Status != r.Status || p.Code == "" {
			t.Fatalf("%s: %d with Content-Type %q and body %s, want problem+json", what, r.Status, ct, r.Body)
		}
	case r.Status >= 300:
		if loc := r.Header.Get("Location"); !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, `/\`) {
			t.Fatalf("%s: %d to %q, off this server", what, r.Status, loc)
		}
	}
}

// dbState is what any request could change: the number of sessions,
// active sessions, clients and audit events.
type dbState struct{ sessions, active, clients, events int }

func (e *testEnv) dbState(t testing.TB) dbState {
	t.Helper()
	var s dbState
	err := e.Store.Pool().QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM sessions), (SELECT count(*) FROM sessions WHERE status = 'active'),
		(SELECT count(*) FROM clients), (SELECT count(*) FROM session_events)`).Scan(&s.sessions, &s.active, &s.clients, &s.events)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// wantUnchanged fails unless the database is as it was before a request
// that failed (or only read).
func (e *testEnv) wantUnchanged(t *testing.T, what string, before dbState) {
	t.Helper()
	if after := e.dbState(t); after != before {
		t.Fatalf("%s changed the database: %+v, then %+v", what, before, after)
	}
}

// fuzzSignIn signs a user in through the service, for a fuzz target's
// fixtures: no HTTP client bound to a test is needed.
func (e *testEnv) fuzzSignIn(t testing.TB, userID, clientID string) signedIn {
	t.Helper()
	res, err := e.Svc.SignIn(context.Background(), sessions.Backend("fuzz"), sessions.SignInInput{UserID: userID, ClientID: clientID})
	if err != nil {
		t.Fatal(err)
	}
	return signedIn{ID: res.Session.ID, UserID: userID, ClientID: res.Session.ClientID, Token: res.Token}
}

// placeholders lets seeds name the fixtures' secrets and IDs, which exist
// only at run time.
func placeholders(s string, pairs ...string) string {
	return strings.NewReplacer(pairs...).Replace(s)
}

// FuzzSignInBody sends any body with any Content-Type to POST /sessions
// as a backend: 201 adds exactly one active session (with a token of the
// documented form), anything else changes nothing.
func FuzzSignInBody(f *testing.F) {
	e := newEnv(f, multiMode, maxSessions(3))
	existing := e.fuzzSignIn(f, "alice", "")
	for _, c := range [][2]string{
		{"application/json", `{"user_id":"alice","client_id":"$client","user_agent":"Mozilla/5.0","ip_address":"203.0.113.7","metadata":{"plan":"pro"}}`},
		{"application/json; charset=utf-8", `{"user_id":"bob"}`},
		{"application/json", `{"user_id":"bob","client_id":"client_01J00000000000000000000000"}`},
		{"application/json", `{"user_id":"bob","metadata":{"k":"\u0000"}}`},
		{"application/json", `{"user_id":"bob","metadata":{"k":"\udfff"}}`},
		{"application/json", `{"user_id":"bob","metadata":{"k":1e-20000}}`},
		{"application/json", `{"user_id":"bob","metadata":[1]}`},
		{"application/json", `{"user_id":"bob"} {"user_id":"eve"}`},
		{"application/json", `{"user_id":"bob","admin":true}`},
		{"application/json", `{"user_id":7}`},
		{"text/plain", `{"user_id":"bob"}`},
		{"", ``},
	} {
		f.Add(c[0], []byte(c[1]))
	}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		body = []byte(placeholders(string(body), "$client", existing.ClientID))
		header := http.Header{"Authorization": {"Bearer " + apiKey}}
		if contentType != "" {
			header.Set("Content-Type", contentType)
		}
		before := e.dbState(t)
		r, ok := e.exchange(t, http.MethodPost, "/sessions", header, body)
		if !ok {
			return
		}
		what := fmt.Sprintf("POST /sessions %q %q", contentType, body)
		wantSafeAnswer(t, what, r)
		if r.Status != http.StatusCreated {
			e.wantUnchanged(t, what, before)
			return
		}
		var a signInAnswer
		if err := json.Unmarshal(r.Body, &a); err != nil || !sessions.WellFormedToken(a.Token) || a.Session.Status != "active" {
			t.Fatalf("%s: 201 %s", what, r.Body)
		}
		after := e.dbState(t)
		if after.sessions != before.sessions+1 || after.active != before.active+1-len(a.Ended) {
			t.Fatalf("%s: one sign-in took the database from %+v to %+v, ending %d", what, before, after, len(a.Ended))
		}
	})
}

// FuzzListQuery sends any query string to the list endpoints, as a backend
// and as a holder: lists only read, so nothing ever changes, and a 200
// holds at most the asked-for number of sessions.
func FuzzListQuery(f *testing.F) {
	e := newEnv(f)
	holder := e.fuzzSignIn(f, "alice", "")
	for _, s := range []string{
		"", "status=all&limit=100", "status=revoked", "status=gone", "limit=0", "limit=101", "limit=-1",
		"limit=1e3", "limit=99999999999999999999", "cursor=%ff", "cursor=c2Vzc19ub3Bl", "status=active&status=all",
		"status=%00", "limit=%201", "cursor=" + strings.Repeat("A", 4000),
	} {
		f.Add(uint8(0), s)
		f.Add(uint8(3), s)
	}
	f.Fuzz(func(t *testing.T, who uint8, query string) {
		path := "/users/alice/sessions"
		if who&1 == 1 {
			path = "/clients/" + holder.ClientID + "/sessions"
		}
		header := http.Header{"Authorization": {"Bearer " + apiKey}}
		if who&2 == 2 {
			header.Set("Authorization", "Bearer "+holder.Token)
		}
		target := path + "?" + httpSafe(query)
		before := e.dbState(t)
		r, ok := e.exchange(t, http.MethodGet, target, header, nil)
		if !ok {
			return
		}
		wantSafeAnswer(t, "GET "+target, r)
		e.wantUnchanged(t, "GET "+target, before)
		if _, err := url.ParseQuery(httpSafe(query)); err != nil && problemCodeOf(r.Body) != "invalid_request" {
			t.Fatalf("GET %s: a query that does not parse (%v) answered %d %s, want 400 invalid_request", target, err, r.Status, r.Body)
		}
		if r.Status == http.StatusOK {
			var a listAnswer
			if err := json.Unmarshal(r.Body, &a); err != nil || len(a.Data) > sessions.MaxListLimit {
				t.Fatalf("GET %s: 200 %s", target, r.Body)
			}
		}
	})
}

// FuzzEndingQuery sends any session_id, except and redirect_url to the
// ending endpoints as a session holder, spliced raw into the query string
// (";", "%", "&" and all), as a hostile client would send them. A query
// that does not parse is refused; a refusal ends nothing (the holder's
// token still works and the database is unchanged); a 200 ends no more
// than the parameters, as the server must have read them, allow, and
// echoes an accepted redirect_url that stays on the page's origin or an
// allowed one.
func FuzzEndingQuery(f *testing.F) {
	const allowed = "https://app.example.com"
	e := newEnv(f, multiMode, allowRedirectOrigins(allowed))
	n := 0
	for _, c := range []struct {
		route                       uint8
		sessionID, except, redirect string
	}{
		{0, "", "", "/goodbye"},
		{0, "$self", "", "https://app.example.com/bye?x=1"},
		{0, "$other", "", ""},
		{0, "sess_01J00000000000000000000000", "", ""},
		{0, "not-an-id", "", ""},
		{0, "$self", "", "//evil.com"},
		{0, "", "", `/\evil.com`},
		{0, "", "", "https://app.example.com@evil.com/"},
		{1, "", "$self", "/"},
		{1, "", "sess_", "/"},
		{1, "", "$self", "javascript:alert(1)"},
		{2, "", "", "https://APP.example.com/x"},
		{2, "", "", "http://app.example.com/"},
		{1, "", "$self;redirect_url=/bye", ""},
		{1, "", "$self%", ""},
		{0, "$other;", "", ""},
		{0, "", "", "https://evil.example/%zz"},
		{0, "$other&session_id=$self", "", ""},
		{1, "", "$self&except=$other", "/"},
		{0, "$other", "", "/&sessionId=x"},
	} {
		f.Add(c.route, c.sessionID, c.except, c.redirect)
	}
	f.Fuzz(func(t *testing.T, route uint8, sessionID, except, redirect string) {
		// A fresh holder each time: a new user on her own client, with bob
		// there too and herself elsewhere, so every ending has something to
		// end.
		n++
		user := fmt.Sprintf("alice%d", n)
		self := e.fuzzSignIn(t, user, "")
		e.fuzzSignIn(t, "bob", self.ClientID)
		other := e.fuzzSignIn(t, user, "")
		sub := func(s string) string { return placeholders(s, "$self", self.ID, "$other", other.ID) }
		var pairs []string
		if redirect != "" {
			pairs = append(pairs, "redirect_url="+redirect)
		}
		var path string
		switch route % 3 {
		case 0:
			path = "/session"
			if sessionID != "" {
				pairs = append(pairs, "session_id="+sub(sessionID))
			}
		case 1:
			path = "/users/" + user + "/sessions"
			if except != "" {
				pairs = append(pairs, "except="+sub(except))
			}
		case 2:
			path = "/clients/" + self.ClientID + "/sessions"
		}
		raw := httpSafe(strings.Join(pairs, "&"))
		target := path + "?" + raw
		// What the server may read, if anything: the query parsed strictly.
		parsed, parseErr := url.ParseQuery(raw)
		header := http.Header{"Authorization": {"Bearer " + self.Token}}
		before := e.dbState(t)
		r, ok := e.exchange(t, http.MethodDelete, target, header, nil)
		if !ok {
			return
		}
		what := "DELETE " + target
		wantSafeAnswer(t, what, r)
		if parseErr != nil && problemCodeOf(r.Body) != "invalid_request" {
			t.Fatalf("%s: a query that does not parse (%v) answered %d %s, want 400 invalid_request", what, parseErr, r.Status, r.Body)
		}
		if r.Status != http.StatusOK {
			e.wantUnchanged(t, what, before)
			if who, ok := e.exchange(t, http.MethodGet, "/session", header, nil); !ok || who.Status != http.StatusOK {
				t.Fatalf("%s: refused with %d, yet the holder's token now answers %d", what, r.Status, who.Status)
			}
			return
		}
		var a endAnswer
		if err := json.Unmarshal(r.Body, &a); err != nil {
			t.Fatalf("%s: 200 %s", what, r.Body)
		}
		redirect = parsed.Get("redirect_url")
		for _, s := range a.Ended {
			if id := parsed.Get("session_id"); id != "" && s.ID != id {
				t.Fatalf("%s: asked to end %s, ended %s", what, id, s.ID)
			}
			if id := parsed.Get("except"); id != "" && s.ID == id {
				t.Fatalf("%s: ended %s, the session it was asked to keep", what, id)
			}
		}
		switch {
		case redirect == "" && a.RedirectURL != nil:
			t.Fatalf("%s: redirect_url %q without one asked for", what, *a.RedirectURL)
		case redirect != "" && (a.RedirectURL == nil || *a.RedirectURL != redirect):
			t.Fatalf("%s: redirect_url %v, want %q echoed", what, a.RedirectURL, redirect)
		case redirect != "" && !stays(redirect, allowed):
			t.Fatalf("%s: accepted redirect_url %q, which leaves the page's origin and %s", what, redirect, allowed)
		}
		for _, s := range a.Ended {
			if s.Status != "ended" && s.Status != "revoked" {
				t.Fatalf("%s: ended a session as %q", what, s.Status)
			}
		}
	})
}

// stays reports whether a browser sent to redirect from a page on
// sessiond.invalid lands on that origin or on allowed.
func stays(redirect, allowed string) bool {
	base, _ := url.Parse("https://sessiond.invalid/page")
	u, err := url.Parse(redirect)
	if err != nil || strings.ContainsAny(redirect, "\\\t\r\n ") {
		return false
	}
	dest := base.ResolveReference(u)
	// A browser's origin leaves out the scheme's default port.
	origin := strings.ToLower(dest.Scheme + "://" + dest.Host)
	if dest.Scheme == "https" {
		origin = strings.TrimSuffix(origin, ":443")
	} else if dest.Scheme == "http" {
		origin = strings.TrimSuffix(origin, ":80")
	}
	return dest.User == nil && (origin == "https://sessiond.invalid" || origin == allowed)
}

// FuzzPathIDs puts any session, client or user ID into the paths, escaped
// or raw, and reads or ends with it as a backend or a holder: a read
// changes nothing, and a refusal ends nothing.
func FuzzPathIDs(f *testing.F) {
	e := newEnv(f, multiMode)
	holder := e.fuzzSignIn(f, "alice", "")
	for _, id := range []string{
		"$self", "$client", "alice", "sess_01J00000000000000000000000", "client_01J00000000000000000000000",
		"sess_01j00000000000000000000000", "..", "a/b", "%2F", "%00", "ü", "\xff", "x/", strings.Repeat("u", 256), "",
		"a+b", "ops+eu/alice", "a%2Bb", "a%zz",
	} {
		f.Add(uint8(0), id)        // GET /sessions/{id}, backend, escaped
		f.Add(uint8(1|2|1<<3), id) // DELETE /users/{id}/sessions, holder, escaped
		f.Add(uint8(2|4|2<<3), id) // GET /clients/{id}/sessions, holder, raw
		f.Add(uint8(1|4|2<<3), id) // DELETE /clients/{id}/sessions, backend, raw
	}
	f.Fuzz(func(t *testing.T, how uint8, id string) {
		id = placeholders(id, "$self", holder.ID, "$client", holder.ClientID)
		method := http.MethodGet
		if how&1 == 1 {
			method = http.MethodDelete
		}
		header := http.Header{"Authorization": {"Bearer " + apiKey}}
		if how&2 == 2 {
			header.Set("Authorization", "Bearer "+holder.Token)
		}
		seg := url.PathEscape(id)
		if how&4 == 4 {
			seg = httpSafe(id)
		}
		if seg == "" {
			// "/users//sessions" is 400 invalid_id, a path openapi.yaml
			// cannot name (its parameters are never empty).
			return
		}
		target := [...]string{"/sessions/" + seg, "/users/" + seg + "/sessions", "/clients/" + seg + "/sessions"}[(how>>3)%3]
		before := e.dbState(t)
		r, ok := e.exchange(t, method, target, header, nil)
		if !ok {
			return
		}
		what := method + " " + target
		wantSafeAnswer(t, what, r)
		if method == http.MethodGet || r.Status != http.StatusOK {
			e.wantUnchanged(t, what, before)
		}
		// A path segment is decoded as a path: "+" is a plus.
		if r.Status == http.StatusOK && (how>>3)%3 == 1 {
			want, err := url.PathUnescape(seg)
			var a struct{ Data, Ended []session }
			if err != nil || json.Unmarshal(r.Body, &a) != nil {
				t.Fatalf("%s: 200 %s for a segment that does not decode (%v)", what, r.Body, err)
			}
			for _, s := range append(a.Data, a.Ended...) {
				if s.UserID != want {
					t.Fatalf("%s: answered with a session of %q, not of %q", what, s.UserID, want)
				}
			}
		}
		if method == http.MethodDelete && r.Status == http.StatusOK {
			// The holder may be gone: sign in again for the next input.
			holder = e.fuzzSignIn(t, "alice", holder.ClientID)
		}
	})
}

// FuzzCredentials sends any Authorization and Cookie headers: the answer
// is 200 only when the holder's token or the API key is in them, any
// refusal is the one 401 body, and nothing ever changes.
func FuzzCredentials(f *testing.F) {
	e := newEnv(f)
	holder := e.fuzzSignIn(f, "alice", "")
	for _, c := range [][2]string{
		{"Bearer $token", ""},
		{"bearer $token", ""},
		{"Bearer   $token  ", ""},
		{"Bearer $key", ""},
		{"", "__session=$token"},
		{"", "__session=$key"},
		{"", "other=1; __session=$token; __session=x"},
		{"", "__session=$token; __session=$token"},
		{"", "__session=$token; __session_sess_01J00000000000000000000000=x; __session_sess_01J00000000000000000000000=$token"},
		{"", `__session="$token"`},
		// Account cookies (multi mode's, here in single mode): a
		// well-formed one with a token of another session changes nothing.
		{"", "__session_sess_01J00000000000000000000000=$token"},
		{"", "__session=x; __session_sess_01J00000000000000000000000=$token"},
		{"Basic $token", "__session=$token"},
		{"Bearer st_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", ""},
		{"Bearer sk_", ""},
		{"Bearer $key$key", ""},
		{"Bearer", ""},
		{"Bearer\t$token", ""},
	} {
		f.Add(uint8(0), c[0], c[1])
		f.Add(uint8(1), c[0], c[1])
	}
	the401 := e.fuzzAnon(f)
	f.Fuzz(func(t *testing.T, route uint8, authorization, cookie string) {
		authorization = placeholders(authorization, "$token", holder.Token, "$key", apiKey)
		cookie = placeholders(cookie, "$token", holder.Token, "$key", apiKey)
		header := http.Header{}
		if authorization != "" {
			header.Set("Authorization", authorization)
		}
		if cookie != "" {
			header.Set("Cookie", cookie)
		}
		target := "/session"
		if route%2 == 1 {
			target = "/users/alice/sessions"
		}
		before := e.dbState(t)
		r, ok := e.exchange(t, http.MethodGet, target, header, nil)
		if !ok {
			return
		}
		what := fmt.Sprintf("GET %s with Authorization %q, Cookie %q", target, authorization, cookie)
		wantSafeAnswer(t, what, r)
		e.wantUnchanged(t, what, before)
		if authorization == "" && r.Status != http.StatusUnauthorized && sessiondCookieTwice(header) {
			t.Fatalf("%s: %d, want 401 for a sessiond cookie name given twice", what, r.Status)
		}
		presented := authorization + " " + cookie
		switch r.Status {
		case http.StatusOK:
			if !strings.Contains(presented, holder.Token) && !strings.Contains(presented, apiKey) {
				t.Fatalf("%s: 200 without the token or the key", what)
			}
		case http.StatusForbidden:
			if !strings.Contains(authorization, apiKey) {
				t.Fatalf("%s: 403 without the key", what)
			}
		case http.StatusUnauthorized:
			if got := problemWithoutRequestID(r.Body); got != the401 {
				t.Fatalf("%s: 401 body %s, want the one 401 %s", what, got, the401)
			}
		default:
			t.Fatalf("%s: %d %s", what, r.Status, r.Body)
		}
	})
}

// sessiondCookieTwice reports whether the Cookie header, as net/http reads
// it, holds the session cookie's name or one account cookie's name twice.
func sessiondCookieTwice(h http.Header) bool {
	seen := map[string]bool{}
	for _, c := range (&http.Request{Header: h}).Cookies() {
		if c.Name != "__session" && !(strings.HasPrefix(c.Name, "__session_") && sessions.ValidSessionID(c.Name[len("__session_"):])) {
			continue
		}
		if seen[c.Name] {
			return true
		}
		seen[c.Name] = true
	}
	return false
}

// fuzzAnon returns the body of the one 401, without its request ID.
func (e *testEnv) fuzzAnon(t testing.TB) string {
	t.Helper()
	resp, err := http.Get(e.URL + "/session")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /session without credentials: %d %s", resp.StatusCode, b)
	}
	return problemWithoutRequestID(b)
}

// problemWithoutRequestID re-encodes a problem body without request_id,
// the one field that differs between two equal answers.
func problemWithoutRequestID(body []byte) string {
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil {
		return "not JSON: " + string(body)
	}
	delete(p, "request_id")
	b, _ := json.Marshal(p)
	return string(b)
}
