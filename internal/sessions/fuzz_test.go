package sessions

// Fuzz targets for every parser of outside input in this package. Under a
// plain `go test` each runs its f.Add seeds and testdata/fuzz/FuzzXxx/*;
// `make fuzz` runs each for a bounded time. The properties: never a panic,
// and never a wrong acceptance: whatever a parser accepts has the form the
// rest of the service (and Postgres) relies on.

import (
	"encoding/base64"
	"encoding/json"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"
)

// FuzzIDs: an accepted session or client ID is its prefix and the one
// canonical (upper-case) spelling of a ULID, and the two kinds never pass
// for each other.
func FuzzIDs(f *testing.F) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	f.Add(newID(sessionIDPrefix, now))
	f.Add(newID(clientIDPrefix, now))
	f.Add("sess_01j0000000000000000000000z")
	f.Add("sess_7ZZZZZZZZZZZZZZZZZZZZZZZZZ")
	f.Add("sess_8ZZZZZZZZZZZZZZZZZZZZZZZZZ")
	f.Add("client_01J0000000000000000000000I")
	f.Add("sess_")
	f.Fuzz(func(t *testing.T, id string) {
		sess, client := ValidSessionID(id), ValidClientID(id)
		if sess && client {
			t.Fatalf("%q is both a session and a client ID", id)
		}
		for _, c := range []struct {
			ok     bool
			prefix string
		}{{sess, sessionIDPrefix}, {client, clientIDPrefix}} {
			if !c.ok {
				continue
			}
			rest, found := strings.CutPrefix(id, c.prefix)
			if !found {
				t.Fatalf("accepted %q without the prefix %q", id, c.prefix)
			}
			u, err := ulid.ParseStrict(rest)
			if err != nil || u.String() != rest {
				t.Fatalf("accepted %q, whose ULID part is not in canonical form (%v)", id, err)
			}
		}
		// The ULID part decides, whatever the prefix: the same 26
		// characters are a session ID exactly when they are a client ID.
		for _, p := range []string{sessionIDPrefix, clientIDPrefix} {
			if rest, ok := strings.CutPrefix(id, p); ok && ValidSessionID(sessionIDPrefix+rest) != ValidClientID(clientIDPrefix+rest) {
				t.Fatalf("%q: session and client ID rules disagree on %q", id, rest)
			}
		}
	})
}

// FuzzUserID: an accepted user ID is 1–255 bytes of valid UTF-8 with no
// control, format or other invisible character that a text column or a
// log line could choke on.
func FuzzUserID(f *testing.F) {
	for _, s := range []string{"user_123", "alice@example.com", "名前", "with space", "a\x00b", "\xff", "a\u200bb", "\u2028", strings.Repeat("x", 255)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if !ValidUserID(id) {
			return
		}
		if len(id) == 0 || len(id) > 255 || !utf8.ValidString(id) {
			t.Fatalf("accepted %q: %d bytes, valid UTF-8 %v", id, len(id), utf8.ValidString(id))
		}
		// The string is valid UTF-8, so a U+FFFD met here is the character
		// itself, not a bad byte: it is printable (a symbol, \p{S} in
		// openapi.yaml's pattern) and allowed like any other.
		for _, r := range id {
			if r == 0 || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || (r != ' ' && unicode.IsSpace(r)) {
				t.Fatalf("accepted %q, which holds %U", id, r)
			}
		}
	})
}

// FuzzWellFormedToken: a token passes exactly when it is "st_" and the
// canonical unpadded base64url encoding of 32 bytes, so each secret has
// one spelling and garbage never reaches the database.
func FuzzWellFormedToken(f *testing.F) {
	tok, err := newToken()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	f.Add("st_" + strings.Repeat("A", 42) + "B") // non-zero padding bits
	f.Add("st_" + strings.Repeat("+", 43))       // std, not URL, alphabet
	f.Add("st_" + strings.Repeat("A", 43) + "=") // padded
	f.Add("sk_" + tok[3:])
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		want := false
		if rest, ok := strings.CutPrefix(s, tokenPrefix); ok {
			b, err := base64.RawURLEncoding.DecodeString(rest)
			want = err == nil && len(b) == tokenRandBytes && base64.RawURLEncoding.EncodeToString(b) == rest
		}
		if got := WellFormedToken(s); got != want {
			t.Fatalf("WellFormedToken(%q) = %v, want %v", s, got, want)
		}
		// Any 32 bytes make a well-formed token, with one spelling.
		if len(s) >= tokenRandBytes {
			made := tokenPrefix + base64.RawURLEncoding.EncodeToString([]byte(s[:tokenRandBytes]))
			if !WellFormedToken(made) {
				t.Fatalf("a token made of 32 bytes, %q, is refused", made)
			}
		}
	})
}

// browserBase is where a sign-out page lives, to resolve relative
// redirects against as a browser would.
var browserBase = mustURL("https://sessiond.invalid/signed-out/page")

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// FuzzCheckRedirectURL: an accepted redirect_url is echoed unchanged and
// lands either on the page's own origin (a relative path) or on an
// allowed origin, never anywhere else: no open redirect. The allowed
// origin itself comes through ParseOrigin, as the configuration's does.
func FuzzCheckRedirectURL(f *testing.F) {
	for _, c := range [][2]string{
		{"/goodbye", "https://app.example.com"},
		{"https://app.example.com/after?x=1#y", "https://app.example.com"},
		{"https://APP.example.com/", "https://app.example.com/"},
		{"//evil.com", "https://app.example.com"},
		{`/\evil.com`, "https://app.example.com"},
		{"/\t/evil.com", "https://app.example.com"},
		{"https://app.example.com@evil.com/", "https://app.example.com"},
		{"https://app.example.com.evil.com/", "https://app.example.com"},
		{"https:app.example.com", "https://app.example.com"},
		{"javascript:alert(1)//", "https://app.example.com"},
		{"http://localhost:3000/x", "http://localhost:3000"},
		{"http://[::1]:8080/", "http://[::1]:8080"},
		{"/.//evil.test", "https://app.example.com"},
		{"/a/..//evil.test", "https://app.example.com"},
		{"/%2e//evil.test", "https://app.example.com"},
		{"/.%2E//evil.test", "https://app.example.com"},
		{"/x/./y", "https://app.example.com"},
	} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, raw, origin string) {
		var allowed []string
		if o, err := ParseOrigin(origin); err == nil {
			allowed = []string{o}
		}
		got, err := checkRedirectURL(raw, allowed)
		if err != nil {
			if codeOf(err) != CodeInvalidRedirectURL {
				t.Fatalf("checkRedirectURL(%q): code %s, want %s", raw, codeOf(err), CodeInvalidRedirectURL)
			}
			return
		}
		if got != raw {
			t.Fatalf("checkRedirectURL(%q) = %q: not echoed as given", raw, got)
		}
		if raw == "" {
			return
		}
		if strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '\\' }) {
			t.Fatalf("accepted %q, which a browser would read differently (space, control or backslash)", raw)
		}
		if !utf8.ValidString(raw) {
			t.Fatalf("accepted %q, which is not UTF-8 and cannot be echoed in JSON as given", raw)
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("accepted %q, which does not parse: %v", raw, err)
		}
		dest := browserBase.ResolveReference(u)
		if strings.HasPrefix(raw, "/") {
			if strings.HasPrefix(raw, "//") || dest.Scheme != browserBase.Scheme || dest.Host != browserBase.Host {
				t.Fatalf("accepted relative %q, which leads to %s://%s", raw, dest.Scheme, dest.Host)
			}
			// Resolved as a browser resolves it, it must not be a "//host"
			// path that a server echoing it into Location turns into
			// another origin. The oracle is Go's RFC 3986 resolution with
			// the browser's reading of percent signs: %2e is a dot (the
			// WHATWG URL standard), any other escape (%2F included) stays
			// a plain character.
			browserPath := strings.NewReplacer("%2e", ".", "%2E", ".", "%", "X").Replace(strings.SplitN(strings.SplitN(raw, "#", 2)[0], "?", 2)[0])
			if ref, err := url.Parse(browserPath); err == nil {
				if p := browserBase.ResolveReference(ref).Path; strings.HasPrefix(p, "//") {
					t.Fatalf("accepted relative %q, whose resolved path %q starts with //", raw, p)
				}
			}
			return
		}
		if len(allowed) == 0 {
			t.Fatalf("accepted absolute %q with no allowed origin", raw)
		}
		if dest.User != nil || browserOrigin(dest) != allowed[0] {
			t.Fatalf("accepted %q, which is not on the allowed origin %q", raw, allowed[0])
		}
	})
}

// browserOrigin is the origin a browser gives u (RFC 6454): lower-case
// scheme and host, and the port unless it is the scheme's default.
func browserOrigin(u *url.URL) string {
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6
	}
	if port == "" || (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		return scheme + "://" + host
	}
	return scheme + "://" + host + ":" + port
}

// FuzzParseOrigin: a configured origin is normalised to lower-case
// scheme://host[:port], once and for all (normalising again changes
// nothing), and URLs on it are then accepted as redirects.
func FuzzParseOrigin(f *testing.F) {
	for _, s := range []string{"https://app.example.com", "https://App.Example.com/", "http://localhost:3000", "http://[::1]:8080",
		"app.example.com", "https://app.example.com/path", "javascript:x", "https://u@h", "https://h?q", "https://h#f", "ftp://h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := ParseOrigin(s)
		if err != nil {
			return
		}
		if o != strings.ToLower(o) || !(strings.HasPrefix(o, "http://") || strings.HasPrefix(o, "https://")) {
			t.Fatalf("ParseOrigin(%q) = %q: not a lower-case http(s) origin", s, o)
		}
		if again, err := ParseOrigin(o); err != nil || again != o {
			t.Fatalf("ParseOrigin(%q) = %q, but ParseOrigin(%q) = %q, %v", s, o, o, again, err)
		}
		if !strings.ContainsFunc(o, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '\\' }) {
			if _, err := checkRedirectURL(o+"/after", []string{o}); err != nil {
				t.Fatalf("origin %q is allowed, yet %q is refused: %v", o, o+"/after", err)
			}
		}
	})
}

// FuzzParseListQuery: a list query either fails with invalid_request or
// yields a filter the store can run: a known status (or every status), a
// limit from 1 to 100, and a cursor that decodes to a session ID.
func FuzzParseListQuery(f *testing.F) {
	cursor := base64.RawURLEncoding.EncodeToString([]byte(newID(sessionIDPrefix, time.Unix(1e9, 0))))
	f.Add("", 0, "")
	f.Add("all", 100, cursor)
	f.Add("revoked", 1, "")
	f.Add("gone", 101, "!!")
	f.Add("Active", -1, "c2Vzc19ub3Bl")
	f.Add("active", 20, cursor+"=")
	f.Fuzz(func(t *testing.T, status string, limit int, cursor string) {
		var lf ListFilter
		err := parseListQuery(&lf, ListQuery{Status: status, Limit: limit, Cursor: cursor})
		if err != nil {
			if codeOf(err) != CodeInvalidRequest {
				t.Fatalf("code %s, want %s", codeOf(err), CodeInvalidRequest)
			}
			return
		}
		if _, ok := ParseStatus(string(lf.Status)); !ok && !(lf.Status == "" && status == "all") {
			t.Fatalf("status %q gave filter status %q", status, lf.Status)
		}
		if lf.Limit < 1 || lf.Limit > MaxListLimit {
			t.Fatalf("limit %d gave filter limit %d", limit, lf.Limit)
		}
		if (cursor == "") != (lf.BeforeID == "") || (lf.BeforeID != "" && !ValidSessionID(lf.BeforeID)) {
			t.Fatalf("cursor %q gave before-ID %q", cursor, lf.BeforeID)
		}
	})
}

// FuzzSignInInput: a sign-in either fails with invalid_request or
// invalid_id, or its input is fit for Postgres: a valid user ID, a client
// ID or none, a user agent of valid UTF-8 without control characters, a
// canonical IP address, and metadata that jsonb stores as given (valid
// UTF-8; no \u0000; no unpaired surrogate; numbers a numeric can hold)
// within 4 KiB even with every exponent written out.
func FuzzSignInInput(f *testing.F) {
	f.Add("user_123", "", "Mozilla/5.0", "203.0.113.7", []byte(`{"plan":"pro","n":[1,2.5e3,-0]}`))
	f.Add("u", "client_01J0000000000000000000000Z", "", "::ffff:10.0.0.1", []byte(`null`))
	f.Add("u", "", "a\nb", "fe80::1%eth0", []byte(`"x"`))
	f.Add("u", "", "", "", []byte(`{"k":"\u0000"}`))
	f.Add("u", "", "", "", []byte(`{"k":"\ud800"}`))
	f.Add("u", "", "", "", []byte(`{"k":"\ud83d\ude00"}`))
	f.Add("u", "", "", "", []byte("{\"k\":\"\xff\"}"))
	f.Add("u", "", "", "", []byte(`{"k":1e-16384}`))
	f.Add("u", "", "", "", []byte(`{"k":[1e131071,1e131071]}`))
	f.Fuzz(func(t *testing.T, userID, clientID, userAgent, ip string, metadata []byte) {
		in, err := validateSignIn(SignInInput{UserID: userID, ClientID: clientID, UserAgent: userAgent, IPAddress: ip, Metadata: metadata})
		if err != nil {
			if code := codeOf(err); code != CodeInvalidRequest && code != CodeInvalidID {
				t.Fatalf("code %s", code)
			}
			return
		}
		if !ValidUserID(in.UserID) || (in.ClientID != "" && !ValidClientID(in.ClientID)) {
			t.Fatalf("accepted user %q, client %q", in.UserID, in.ClientID)
		}
		if !utf8.ValidString(in.UserAgent) || len(in.UserAgent) > MaxUserAgentBytes ||
			strings.ContainsFunc(in.UserAgent, unicode.IsControl) {
			t.Fatalf("accepted user agent %q", in.UserAgent)
		}
		if in.IPAddress != "" {
			a, err := netip.ParseAddr(in.IPAddress)
			if err != nil || a.String() != in.IPAddress || a.Is4In6() || a.Zone() != "" {
				t.Fatalf("accepted IP %q as %q", ip, in.IPAddress)
			}
		}
		wantStorableObject(t, in.Metadata)
	})
}

// wantStorableObject fails unless b is a JSON object that Postgres' jsonb
// stores as it is, and whose text as jsonb writes it (every number in
// full) fits in MaxMetadataBytes.
func wantStorableObject(t *testing.T, b []byte) {
	t.Helper()
	if !utf8.Valid(b) {
		t.Fatalf("accepted metadata %q: not UTF-8", b)
	}
	var m map[string]any
	objDec := json.NewDecoder(strings.NewReader(string(b)))
	objDec.UseNumber()
	if err := objDec.Decode(&m); err != nil || m == nil {
		t.Fatalf("accepted metadata %q: not a JSON object (%v)", b, err)
	}
	// Decoded strings say what the escapes meant: a NUL, or U+FFFD where
	// the text held none, is an escape jsonb refuses.
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			if strings.ContainsRune(v, 0) {
				t.Fatalf("accepted metadata %q: holds \\u0000", b)
			}
			if strings.ContainsRune(v, utf8.RuneError) && !strings.ContainsRune(string(b), utf8.RuneError) &&
				!strings.Contains(strings.ToLower(string(b)), `\ufffd`) {
				t.Fatalf("accepted metadata %q: holds an unpaired surrogate", b)
			}
		case map[string]any:
			for k, e := range v {
				walk(k)
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(m)
	size := len(b)
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		if n, ok := tok.(json.Number); ok {
			size += plainDecimalLength(string(n)) - len(n)
		}
	}
	// jsonb also adds a space after each ':' and ',': allow twice the size.
	if size > 2*MaxMetadataBytes {
		t.Fatalf("accepted metadata %q: about %d bytes once jsonb writes its numbers out", b, size)
	}
}

// plainDecimalLength is how long number n is written without an exponent,
// as Postgres' numeric writes it; at most a little over a million.
func plainDecimalLength(n string) int {
	mant, exp, _ := strings.Cut(strings.ToLower(n), "e")
	e := 0
	if exp != "" {
		neg := exp[0] == '-'
		exp = strings.TrimLeft(strings.TrimLeft(exp, "+-"), "0")
		if len(exp) > 6 {
			return 1 << 20
		}
		for _, d := range exp {
			e = e*10 + int(d-'0')
		}
		if neg {
			e = -e
		}
	}
	if e < 0 {
		e = -e
	}
	return len(mant) + e + 2
}
