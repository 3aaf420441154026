package sessions

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestIDs(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	sid, cid := newID(sessionIDPrefix, now), newID(clientIDPrefix, now)
	if !ValidSessionID(sid) || !ValidClientID(cid) {
		t.Fatalf("fresh IDs %q %q are not valid", sid, cid)
	}
	if later := newID(sessionIDPrefix, now.Add(time.Millisecond)); later <= sid {
		t.Fatalf("IDs do not sort by time: %q then %q", sid, later)
	}
	for _, bad := range []string{
		"", "sess_", "sess_01J0000000000000000000000", "sess_01J000000000000000000000000",
		"sess_01j0000000000000000000000z", // lower case
		"sess_01J000000000000000000000U",  // U is not Crockford base32
		"client_01J0000000000000000000000Z", "SESS_01J0000000000000000000000Z",
		"sess_01J0000000000000000000000Z\n", "sess_81J0000000000000000000000Z", // overflows 128 bits
	} {
		if ValidSessionID(bad) {
			t.Errorf("ValidSessionID(%q) = true", bad)
		}
	}
	if ValidClientID(sid) || ValidSessionID(cid) {
		t.Error("a session ID passes as a client ID or the other way round")
	}
}

func TestTokens(t *testing.T) {
	tok, err := newToken()
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 46 || !WellFormedToken(tok) {
		t.Fatalf("fresh token %q is not well formed", tok)
	}
	other, _ := newToken()
	if tok == other || HashToken(tok) == HashToken(other) {
		t.Fatal("two tokens are equal")
	}
	for _, bad := range []string{"", "st_", tok[:45], tok + "A", "sk_" + tok[3:], "st_" + strings.Repeat("+", 43), "st_" + strings.Repeat("A", 42) + "B"} {
		if WellFormedToken(bad) {
			t.Errorf("WellFormedToken(%q) = true", bad)
		}
	}
}

func TestUserIDs(t *testing.T) {
	for id, want := range map[string]bool{
		"user_123": true, "alice@example.com": true, "名前": true, "with space": true,
		strings.Repeat("x", 255): true, strings.Repeat("x", 256): false,
		"": false, "a\tb": false, "a\x00": false, "\xff": false, "a\u200bb": false,
	} {
		if got := ValidUserID(id); got != want {
			t.Errorf("ValidUserID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestExpiry(t *testing.T) {
	created := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	s := Session{Status: StatusActive, CreatedAt: created, LastActiveAt: created.Add(time.Hour), ExpiresAt: created.Add(168 * time.Hour)}
	for _, c := range []struct {
		name    string
		now     time.Time
		idle    time.Duration
		want    Status
		endedAt time.Time
	}{
		{"within lifetime", created.Add(167 * time.Hour), 0, StatusActive, time.Time{}},
		{"at lifetime", created.Add(168 * time.Hour), 0, StatusExpired, created.Add(168 * time.Hour)},
		{"idle within timeout", created.Add(90 * time.Minute), time.Hour, StatusActive, time.Time{}},
		{"idle past timeout", created.Add(3 * time.Hour), time.Hour, StatusExpired, created.Add(2 * time.Hour)},
		{"lifetime before idle bound", created.Add(200 * time.Hour), 300 * time.Hour, StatusExpired, created.Add(168 * time.Hour)},
	} {
		got := s.asOf(c.now, c.idle)
		if got.Status != c.want {
			t.Errorf("%s: status %s, want %s", c.name, got.Status, c.want)
		}
		if c.want == StatusExpired && (got.EndedAt == nil || !got.EndedAt.Equal(c.endedAt)) {
			t.Errorf("%s: ended_at %v, want %v", c.name, got.EndedAt, c.endedAt)
		}
	}
	ended := s
	ended.Status = StatusRevoked
	if got := ended.asOf(created.Add(1000*time.Hour), 0); got.Status != StatusRevoked {
		t.Errorf("a terminal status changed to %s", got.Status)
	}
}

func TestRedirectURLs(t *testing.T) {
	allowed := []string{"https://app.example.com"}
	for raw, ok := range map[string]bool{
		"": true, "/": true, "/bye?x=1": true, "https://app.example.com/x": true, "https://app.example.com:443/x": true,
		"https://app.example.com:8443/x": false,
		"//evil.com":                     false, `/\evil.com`: false, "https://evil.com": false, "ftp://app.example.com": false,
		"https://user@app.example.com/": false, "relative": false, "/a b": false, "/\x7f": false, "/\xf40": false,
		// Paths that are "//..." once a browser removed their dot segments.
		"/.//evil.test": false, "/a/..//evil.test": false, "/././/evil.test": false, "/%2e//evil.test": false,
		"/%2E%2e//evil.test": false, "/a/.%2e//evil.test": false, "/..//evil.test": false,
		// An empty authority is still an authority: a browser skips the
		// extra slashes and reads a host.
		"///../..": false, "///evil.test": false, "////evil.test/x": false,
		// Dot segments that stay on a path of the page's origin.
		"/./a": true, "/a/../b": true, "/a//b": true, "/a/.": true, "/x?r=/.//evil.test": true, "/x#/.//evil": true,
	} {
		got, err := checkRedirectURL(raw, allowed)
		if (err == nil) != ok || (ok && got != raw) {
			t.Errorf("checkRedirectURL(%q) = %q, %v; want ok=%v", raw, got, err, ok)
		}
		if err != nil && codeOf(err) != CodeInvalidRedirectURL {
			t.Errorf("checkRedirectURL(%q): code %s", raw, codeOf(err))
		}
	}
	for in, want := range map[string]string{"https://App.Example.com/": "https://app.example.com", "http://localhost:3000": "http://localhost:3000",
		"https://app.example.com:443": "https://app.example.com", "http://app.example.com:80": "http://app.example.com",
		"https://app.example.com:80": "https://app.example.com:80"} {
		if got, err := ParseOrigin(in); err != nil || got != want {
			t.Errorf("ParseOrigin(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"app.example.com", "https://app.example.com/path", "javascript:x"} {
		if _, err := ParseOrigin(in); err == nil {
			t.Errorf("ParseOrigin(%q) accepted", in)
		}
	}
}

func TestSignInValidation(t *testing.T) {
	good := SignInInput{UserID: "u", IPAddress: "::ffff:10.0.0.1"}
	in, err := validateSignIn(good)
	if err != nil || in.IPAddress != "10.0.0.1" || string(in.Metadata) != "{}" {
		t.Fatalf("validateSignIn(%+v) = %+v, %v", good, in, err)
	}
	for field, bad := range map[string]SignInInput{
		"user_id":    {UserID: ""},
		"user_agent": {UserID: "u", UserAgent: "a\nb"},
		"ip_address": {UserID: "u", IPAddress: "fe80::1%eth0"},
		"metadata":   {UserID: "u", Metadata: json.RawMessage(`"x"`)},
	} {
		_, err := validateSignIn(bad)
		var e *Error
		if err == nil || !asError(err, &e) || e.Fields[field] == "" {
			t.Errorf("%s: got %v, want the field named", field, err)
		}
	}
}

func asError(err error, target **Error) bool {
	e, ok := err.(*Error)
	*target = e
	return ok
}

func TestListQuery(t *testing.T) {
	var f ListFilter
	if err := parseListQuery(&f, ListQuery{}); err != nil || f.Status != StatusActive || f.Limit != DefaultListLimit {
		t.Fatalf("defaults: %+v %v", f, err)
	}
	if err := parseListQuery(&f, ListQuery{Status: "all", Limit: 100}); err != nil || f.Status != "" || f.Limit != 100 {
		t.Fatalf("all/100: %+v %v", f, err)
	}
	for _, q := range []ListQuery{{Status: "gone"}, {Limit: 101}, {Limit: -1}, {Cursor: "!!"}, {Cursor: "c2Vzc19ub3Bl"}} {
		if err := parseListQuery(&f, q); codeOf(err) != CodeInvalidRequest {
			t.Errorf("parseListQuery(%+v) = %v, want invalid_request", q, err)
		}
	}
}

// TestCallerRules: the scope each caller hands the store (what it may see;
// the store's SQL applies it, tested in internal/db against Postgres) and
// what the sessions it ends become.
func TestCallerRules(t *testing.T) {
	own := Session{ID: "sess_1", UserID: "alice", ClientID: "client_1"}
	holder, key := Holder(own), Backend("fp")
	if got, want := holder.scope(), (Scope{UserID: "alice", ClientID: "client_1"}); got != want {
		t.Errorf("holder scope %+v, want %+v", got, want)
	}
	if got := key.scope(); got != (Scope{}) {
		t.Errorf("backend scope %+v, want every session", got)
	}
	if e := holder.ending(Ending{}); e.Status != StatusRevoked || e.OwnClientID != "client_1" || e.Actor != "session:sess_1" {
		t.Errorf("holder ending %+v", e)
	}
	if e := key.ending(Ending{}); e.Status != StatusRevoked || e.OwnClientID != "" || e.Actor != "api_key:fp" {
		t.Errorf("backend ending %+v", e)
	}
}

// codeOf is the code api answers for err: that of the *Error in its chain,
// or internal for anything else.
func codeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
