package sessions

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

func newCountingService() (*Service, *fakeStore) {
	store := &fakeStore{}
	return NewService(store, Config{Lifetime: time.Hour, AllowedRedirectOrigins: []string{"https://app.example.com"}}), store
}

// TestGarbageTokensNeverReachTheStore: a credential that is not even
// well-formed is refused with the one unauthenticated error before any
// database work, so garbage cannot load the database or time its lookups.
func TestGarbageTokensNeverReachTheStore(t *testing.T) {
	svc, store := newCountingService()
	ctx := context.Background()
	tok, err := newToken()
	if err != nil {
		t.Fatal(err)
	}
	body := tok[len(tokenPrefix):]
	garbage := []string{
		"", "st_", "nonsense", tok[:len(tok)-1], tok + "A", "ST_" + body, "sk_" + body, " " + tok, tok + " ",
		"st_" + strings.Repeat("A", 42) + "B", // the last character carries bits beyond 32 bytes
		"st_" + body[:20] + "+" + body[21:],   // std alphabet
		"st_" + body[:20] + "=" + body[21:],
		"st_" + body[:42] + "=",
		"st_" + strings.Repeat("A", 4096),
		"sk_test_0123456789abcdef", // an API key is never a token
		"st_" + body[:42] + "\x00",
		"st_" + strings.Repeat("é", 21) + "A",
	}
	for _, g := range garbage {
		if _, err := svc.Authenticate(ctx, g); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("Authenticate(%q) = %v, want ErrUnauthenticated", g, err)
		}
	}
	if store.calls() != 0 {
		t.Fatalf("garbage reached the store: %d lookups, %d touches, %d transactions", len(store.lookups), store.touches, store.txs)
	}

	// The control: a well-formed token is looked up, by its SHA-256 only.
	if _, err := svc.Authenticate(ctx, tok); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("unknown token: %v, want ErrUnauthenticated", err)
	}
	if len(store.lookups) != 1 || store.lookups[0] != sha256.Sum256([]byte(tok)) {
		t.Fatalf("a well-formed token: lookups %x, want one by its SHA-256", store.lookups)
	}
}

// TestMalformedRequestsNeverReachTheStore: malformed IDs, user IDs, list
// queries, sign-in inputs and redirect URLs are refused before any
// database work, so a request that fails for them cannot change anything.
func TestMalformedRequestsNeverReachTheStore(t *testing.T) {
	svc, store := newCountingService()
	ctx := context.Background()
	backend := Backend("fp")
	goodSession, goodClient := "sess_01J00000000000000000000000", "client_01J00000000000000000000000"
	for _, c := range []struct {
		name string
		code string
		call func() error
	}{
		{"GetSession malformed", CodeInvalidID, func() error { _, err := svc.GetSession(ctx, backend, "sess_nope"); return err }},
		{"EndSession malformed", CodeInvalidID, func() error { _, err := svc.EndSession(ctx, backend, "nope", ""); return err }},
		{"EndSession bad redirect", CodeInvalidRedirectURL, func() error { _, err := svc.EndSession(ctx, backend, goodSession, "//evil.com"); return err }},
		{"EndUserSessions bad user", CodeInvalidID, func() error { _, err := svc.EndUserSessions(ctx, backend, "a\x00", "", ""); return err }},
		{"EndUserSessions bad except", CodeInvalidID, func() error { _, err := svc.EndUserSessions(ctx, backend, "alice", "sess_", ""); return err }},
		{"EndUserSessions bad redirect", CodeInvalidRedirectURL, func() error {
			_, err := svc.EndUserSessions(ctx, backend, "alice", "", "https://evil.com/")
			return err
		}},
		{"EndClientSessions malformed", CodeInvalidID, func() error { _, err := svc.EndClientSessions(ctx, backend, "client_x", ""); return err }},
		{"EndClientSessions bad redirect", CodeInvalidRedirectURL, func() error {
			_, err := svc.EndClientSessions(ctx, backend, goodClient, `/\evil.com`)
			return err
		}},
		{"ListUserSessions bad user", CodeInvalidID, func() error { _, err := svc.ListUserSessions(ctx, backend, "", ListQuery{}); return err }},
		{"ListUserSessions bad status", CodeInvalidRequest, func() error {
			_, err := svc.ListUserSessions(ctx, backend, "alice", ListQuery{Status: "gone"})
			return err
		}},
		{"ListClientSessions bad cursor", CodeInvalidRequest, func() error {
			_, err := svc.ListClientSessions(ctx, backend, goodClient, ListQuery{Cursor: "!!"})
			return err
		}},
		{"SignIn bad user", CodeInvalidRequest, func() error { _, err := svc.SignIn(ctx, backend, SignInInput{UserID: "\xff"}); return err }},
		{"SignIn bad client", CodeInvalidID, func() error {
			_, err := svc.SignIn(ctx, backend, SignInInput{UserID: "u", ClientID: "client_"})
			return err
		}},
		{"SignIn unstorable metadata", CodeInvalidRequest, func() error {
			_, err := svc.SignIn(ctx, backend, SignInInput{UserID: "u", Metadata: json.RawMessage(`{"k":"\u0000"}`)})
			return err
		}},
		{"SignIn by a holder", CodeForbidden, func() error {
			_, err := svc.SignIn(ctx, Holder(Session{ID: goodSession, UserID: "u", ClientID: goodClient}), SignInInput{UserID: "u"})
			return err
		}},
	} {
		if err := c.call(); codeOf(err) != c.code {
			t.Errorf("%s: %v, want %s", c.name, err, c.code)
		}
	}
	if store.calls() != 0 {
		t.Fatalf("malformed requests reached the store: %d lookups, %d touches, %d transactions", len(store.lookups), store.touches, store.txs)
	}
	// The control: a well-formed request does reach it.
	if _, err := svc.GetSession(ctx, backend, goodSession); !errors.Is(err, ErrSessionNotFound) || store.txs != 1 {
		t.Fatalf("well-formed GetSession: %v after %d transactions, want session_not_found after 1", err, store.txs)
	}
}

// TestTokensAreStoredAsHashesOnly: a sign-in hands the store the SHA-256
// of the new token and nothing from which the token could be recovered.
func TestTokensAreStoredAsHashesOnly(t *testing.T) {
	svc, store := newCountingService()
	res, err := svc.SignIn(context.Background(), Backend("fp"), SignInInput{UserID: "alice", UserAgent: "ua"})
	if err != nil {
		t.Fatal(err)
	}
	if !WellFormedToken(res.Token) {
		t.Fatalf("token %q is not well formed", res.Token)
	}
	if len(store.inserted) != 1 || store.inserted[0] != sha256.Sum256([]byte(res.Token)) {
		t.Fatalf("stored hashes %x, want the SHA-256 of the token", store.inserted)
	}
	if stored, _ := json.Marshal(store.stored); strings.Contains(string(stored), res.Token[len(tokenPrefix):]) {
		t.Fatalf("the stored session holds the token: %s", stored)
	}
}

// TestMetadataMustBeStorable: metadata that Postgres' jsonb would refuse
// or blow up is invalid_request, not an internal error.
func TestMetadataMustBeStorable(t *testing.T) {
	for raw, ok := range map[string]bool{
		`{}`: true, `{"plan":"pro","n":[1,2.5,-0,1e3,1E-3]}`: true, `{"k":"\ud83d\ude00"}`: true,
		`{"k":"\\u0000"}`:  true, // a backslash and "u0000", not an escape
		`{"k":"\\\u00e9"}`: true, `{"k":"\ufffd"}`: true, `{"k":"x\u0001"}`: true,
		`{"k":1e999}`:    true,
		`{"k":"\u0000"}`: false, `{"\u0000":1}`: false, `{"k":"\ud800"}`: false, `{"k":"\udc00"}`: false,
		`{"k":"\ud800\u0041"}`: false, `{"k":"\ud800x"}`: false, `{"k":"\\\ud800"}`: false,
		"{\"k\":\"\xff\"}": false, `{"k":1e-16384}`: false, `{"k":1e131072}`: false,
		`{"k":[1e2000,1e2000,1e2000]}`: false, `{"k":1e99999999999999999999}`: false,
		`{"k":"` + strings.Repeat("x", MaxMetadataBytes-20) + `","n":1e9}`: false,
	} {
		problem := metadataProblem([]byte(raw))
		if (problem == "") != ok {
			t.Errorf("metadataProblem(%.60q) = %q, want ok=%v", raw, problem, ok)
		}
		if _, err := validateSignIn(SignInInput{UserID: "u", Metadata: json.RawMessage(raw)}); (err == nil) != ok {
			t.Errorf("validateSignIn with metadata %.60q: %v, want ok=%v", raw, err, ok)
		}
	}
}

// The review's finding 11: IDs made in one millisecond, a session's and
// its client's among them, must not tell one another. With monotonic
// entropy each was the previous one plus less than 2^32; drawn
// independently, two 80-bit random parts are that close with probability
// about 2^-47.
func TestIDsAreUnpredictable(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	entropy := func(id string) *big.Int {
		u := ulid.MustParseStrict(id[strings.IndexByte(id, '_')+1:])
		return new(big.Int).SetBytes(u.Entropy())
	}
	near := new(big.Int).Lsh(big.NewInt(1), 33)
	prev := entropy(newID(sessionIDPrefix, now))
	for i := range 1000 {
		next := entropy(newID([]string{sessionIDPrefix, clientIDPrefix}[i%2], now))
		if d := new(big.Int).Sub(next, prev); d.CmpAbs(near) < 0 {
			t.Fatalf("ID %d of one millisecond is within %v of the one before: predictable", i, d)
		}
		prev = next
	}

	svc, _ := newCountingService()
	res, err := svc.SignIn(context.Background(), Backend("k"), SignInInput{UserID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if d := new(big.Int).Sub(entropy(res.Session.ClientID), entropy(res.Session.ID)); d.CmpAbs(near) < 0 {
		t.Fatalf("client ID %s is its session ID %s plus %v", res.Session.ClientID, res.Session.ID, d)
	}
}
